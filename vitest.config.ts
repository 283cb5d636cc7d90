// Vitest projects, one per test tier (docs/ARCHITECTURE.md "Tests"). `npm test` runs them all through
// scripts/test.mjs; `npx vitest run --project <name>` runs one. Later tiers (vm, gui) go here.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          // The runtime against busybox bundles: needs root and namespaces. Each file runs alone, in order,
          // because the tests mount, make cgroups and start containers on the host.
          name: 'native',
          include: ['tests/native/**/*.test.ts'],
          setupFiles: ['tests/setup/require-root.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // The VM-side services (supervisor, ...) in native mode on this host, driven over gRPC with the real
          // shim and runtime: root, mounts, cgroups; one file at a time, each in its own mount namespace.
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          setupFiles: ['tests/setup/require-root.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          // The VM image (build/vm-image) booted by QEMU (TCG on these machines) and driven over SSH: root (the
          // image build runs debootstrap and chroot), one file at a time; building the image the first time takes
          // minutes, a boot under TCG tens of seconds.
          name: 'vm',
          include: ['tests/vm/**/*.test.ts'],
          setupFiles: ['tests/setup/require-root.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
