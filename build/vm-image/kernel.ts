// The kernel side of the image: the uncompressed ELF for PVH boot, and the modules the engine needs.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { BuildError, run, runText } from './util.js';

/**
 * Modules the guest loads at boot (skiff-init, in the order of /etc/skiff/modules) — what is built in (=y) in the
 * kernel is skipped by modprobe. Anything else the kernel asks for later (an nft expression, a filesystem) is
 * autoloaded through /sbin/modprobe from the same staged tree, which is why the dependencies of the whole ruleset
 * are here too and nothing more.
 */
export const MODULES = [
  // devices: microvm has virtio-mmio, pc/q35 virtio-pci
  'virtio_mmio',
  'virtio_pci',
  'virtio_blk', // the data disk
  'virtio_net', // eth0 (slirp)
  'virtio_rng', // entropy for sshd's first connection
  'virtio_console',
  'qemu_fw_cfg', // config, SSH host key and authorized key from the host
  'button', // ACPI power button: QMP system_powerdown
  'evdev', // /dev/input/event* where skiff-init reads KEY_POWER
  // filesystems
  'ext4', // /var/lib/skiff on the data disk
  'overlay', // image layers
  '9p', // shared folders (virtio-9p)
  '9pnet_virtio',
  'virtiofs', // shared folders by virtio-fs where the host has virtiofsd
  // container networking (vm-agent/daemon/networks: bridge.ts, firewall.ts's `ip skiff` table)
  'veth',
  'bridge',
  'tun',
  'nf_tables',
  'nf_conntrack',
  'nf_nat',
  'nft_chain_nat', // type nat hooks
  'nft_nat', // dnat to
  'nft_masq', // masquerade
  'nft_ct', // ct state / ct status dnat
  'nft_fib_ipv4', // fib daddr type local
  // host <-> guest
  'vmw_vsock_virtio_transport',
];

/** Kernels built with CONFIG_NET_9P unset cannot share folders by 9p: those modules are left out, not an error. */
const OPTIONAL = new Set(['9p', '9pnet_virtio', 'virtiofs']);

/** `CONFIG_X` of the kernel's config: 'y', 'm' or undefined (not set). */
export function kernelConfig(kernelDir: string, kver: string): Map<string, string> {
  const text = readFileSync(join(kernelDir, 'boot', `config-${kver}`), 'utf8');
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const kv = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (kv?.[1] && kv[2] !== undefined) m.set(kv[1], kv[2]);
  }
  return m;
}

export interface StagedModules {
  /** Module names in load order, dependencies first. */
  names: string[];
  /** The same modules' files relative to /lib/modules/<kver> (the lines of /etc/skiff/modules). */
  files: string[];
}

/**
 * Copy MODULES and their dependencies from the unpacked kernel package into `root`/lib/modules/<kver>, run depmod
 * there, and return them in load order (dependencies first) for /etc/skiff/modules.
 */
export function stageModules(kernelDir: string, kver: string, root: string): StagedModules {
  const config = kernelConfig(kernelDir, kver);
  if (config.get('CONFIG_MODULE_COMPRESS_NONE') !== 'y')
    throw new BuildError(`kernel ${kver} compresses its modules: the builder only handles uncompressed .ko files`);
  const srcBase = join(kernelDir, 'lib', 'modules', kver);
  // The package carries no modules.dep (made at install time): make one in the unpacked tree to resolve with.
  if (!existsSync(join(srcBase, 'modules.dep'))) run('depmod', ['-b', kernelDir, kver]);
  const order: string[] = [];
  const files: string[] = [];
  for (const m of MODULES) {
    let out: string;
    try {
      out = runText('modprobe', ['--show-depends', '-S', kver, '-d', kernelDir, m]);
    } catch (err) {
      if (OPTIONAL.has(m)) continue;
      throw new BuildError(`kernel ${kver} has no module ${m}: ${(err as Error).message}`);
    }
    for (const line of out.split('\n')) {
      const path = /^insmod (\S+\.ko)/.exec(line)?.[1];
      if (!path || files.includes(path)) continue;
      files.push(path);
      order.push(basename(path, '.ko').replace(/-/g, '_'));
    }
  }
  const dstBase = join(root, 'lib', 'modules', kver);
  for (const f of files) {
    const dst = join(dstBase, relative(srcBase, f));
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(f, dst);
  }
  // depmod needs to know what is built in to resolve requests for it (modules.builtin*) and keeps modules.order.
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order'])
    if (existsSync(join(srcBase, f))) copyFileSync(join(srcBase, f), join(dstBase, f));
  run('depmod', ['-b', root, kver]);
  return { names: order, files: files.map((f) => relative(srcBase, f)) };
}

/** The first offset of `magic` in `buf` at or after `from`, or -1. */
function find(buf: Buffer, magic: number[], from = 0): number {
  return buf.indexOf(Buffer.from(magic), from);
}

/**
 * The uncompressed vmlinux ELF inside a bzImage, for `qemu -kernel` PVH boot (CONFIG_PVH: the ELF carries the
 * Xen/PVH entry note, so QEMU jumps straight into the 64-bit kernel: no real-mode setup, no decompression in the
 * guest, which costs seconds under TCG). The compressed payload's place is in the boot protocol header:
 * payload_offset at 0x248 and payload_length at 0x24c, relative to the protected-mode code after the setup sectors.
 */
export function extractVmlinux(bzImage: string, outFile: string): void {
  const data = readFileSync(bzImage);
  if (data.readUInt32LE(0x202) !== 0x53726448) throw new BuildError(`${bzImage} is not a bzImage (no HdrS)`);
  const setupSects = data[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + data.readUInt32LE(0x248);
  const payload = data.subarray(start, start + data.readUInt32LE(0x24c));
  let out: Buffer;
  if (find(payload, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) === 0) {
    out = run('xz', ['-dc', '--single-stream'], { input: payload });
  } else if (find(payload, [0x02, 0x21, 0x4c, 0x18]) === 0) {
    // lz4 legacy frame; the kernel's build appends the 4-byte uncompressed size, which lz4 would misread
    out = run('lz4', ['-dc'], { input: payload.subarray(0, payload.length - 4) });
  } else if (find(payload, [0x28, 0xb5, 0x2f, 0xfd]) === 0) {
    out = run('zstd', ['-dc'], { input: payload.subarray(0, payload.length - 4) });
  } else if (find(payload, [0x1f, 0x8b]) === 0) {
    out = run('gzip', ['-dc'], { input: payload.subarray(0, payload.length - 4) });
  } else {
    throw new BuildError(
      `${bzImage}: unknown kernel compression (payload starts ${payload.subarray(0, 6).toString('hex')})`,
    );
  }
  if (out.readUInt32BE(0) !== 0x7f454c46) throw new BuildError(`${bzImage}: the decompressed kernel is not an ELF`);
  writeFileSync(outFile, out);
}
