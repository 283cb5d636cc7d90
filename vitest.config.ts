// Vitest projects, one per test tier (docs/ARCHITECTURE.md "Tests"). `npm test` runs them all through
// scripts/test.mjs; `npx vitest run --project <name>` runs one. Later tiers (integration, vm, gui) go here.
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
    ],
  },
});
