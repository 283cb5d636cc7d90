// The guest's root filesystem, staged in a directory: a copy of the cached debootstrap tree, pruned hard, plus the
// host's Node.js, the project's programs, skiff-init as /init, the kernel modules and the configuration files.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { BuildError, run, runText } from './util.js';

/** Paths removed from the staged tree: documentation, package management, perl, locales, init systems. */
const PRUNE = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/bash-completion',
  'usr/share/common-licenses',
  'usr/share/bug',
  'usr/share/menu',
  'usr/share/gcc',
  'usr/share/gdb',
  'usr/share/pixmaps',
  'usr/share/debconf',
  'usr/share/keyrings',
  'usr/share/perl5',
  'usr/share/dpkg',
  'usr/share/pam-configs',
  'usr/share/zsh',
  // apt and dpkg, and their state: nothing is installed in a running guest (the root is in RAM)
  'var/lib/apt',
  'var/lib/dpkg',
  'var/cache/apt',
  'var/cache/debconf',
  'var/cache/ldconfig',
  'var/log',
  'etc/apt',
  'etc/dpkg',
  'usr/lib/apt',
  'usr/lib/dpkg',
  'etc/debconf.conf',
  // perl is only needed by maintainer scripts, which ran at debootstrap time
  'usr/lib/x86_64-linux-gnu/perl-base',
  'usr/lib/x86_64-linux-gnu/perl',
  // iconv modules: nothing in the guest converts charsets
  'usr/lib/x86_64-linux-gnu/gconv',
  // systemd and sysvinit leftovers: skiff-init is the init
  'usr/lib/systemd',
  'etc/systemd',
  'usr/lib/tmpfiles.d',
  'usr/lib/sysusers.d',
  'etc/init.d',
  'etc/rc0.d',
  'etc/rc1.d',
  'etc/rc2.d',
  'etc/rc3.d',
  'etc/rc4.d',
  'etc/rc5.d',
  'etc/rc6.d',
  'etc/rcS.d',
  'etc/cron.daily',
  'etc/logrotate.d',
  'etc/update-motd.d',
  // made by openssh-server's postinst at debootstrap time: shared by every image, so never used (fw_cfg gives one)
  'etc/ssh/ssh_host_rsa_key',
  'etc/ssh/ssh_host_rsa_key.pub',
  'etc/ssh/ssh_host_ecdsa_key',
  'etc/ssh/ssh_host_ecdsa_key.pub',
  'etc/ssh/ssh_host_ed25519_key',
  'etc/ssh/ssh_host_ed25519_key.pub',
  '.skiff-complete',
];
/** Programs (in usr/bin, usr/sbin) removed by name prefix: apt*, dpkg*, perl*, debconf*. */
const PRUNE_PROGRAMS = /^(apt|dpkg|perl|debconf)/;

/** The sshd configuration (docs/vm-image.md "SSH"): keys only, root only, and stream-local forwarding for the
 * host agent's docker.sock and agent.sock. skiff-init writes the two key files from fw_cfg on every boot. */
export const SSHD_CONFIG = `# Skiff VM: written by build/vm-image (docs/vm-image.md "SSH"). skiff-init writes the host key and the
# authorized key from fw_cfg (opt/skiff/ssh_host_ed25519_key, opt/skiff/authorized_keys) on every boot.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/skiff_authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UsePAM no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
UseDNS no
PrintMotd no
PrintLastLog no
ClientAliveInterval 15
ClientAliveCountMax 4
MaxStartups 100:30:200
PidFile /run/sshd.pid
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
`;

/** The project's programs and where they go in the guest (the bundles find their siblings, addon and protos). */
export const SKIFF_PROGRAMS = [
  'skiff-agent',
  'skiffd',
  'skiff-supervisor',
  'skiff-runtime',
  'skiff-shim',
  'skiff-docker-init',
];
export const GUEST_LIB = 'usr/lib/skiff';

function rm(root: string, rel: string): void {
  rmSync(join(root, rel), { recursive: true, force: true });
}

function write(root: string, rel: string, text: string, mode = 0o644): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  if (existsSync(p) || isLink(p)) unlinkSync(p);
  writeFileSync(p, text, { mode });
  chmodSync(p, mode);
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Copy a file into the tree at `rel`, replacing what is there (a symlink is replaced, not written through). */
export function install(root: string, src: string, rel: string, mode = 0o755): void {
  const dst = join(root, rel);
  mkdirSync(dirname(dst), { recursive: true });
  if (existsSync(dst) || isLink(dst)) unlinkSync(dst);
  copyFileSync(src, dst);
  chmodSync(dst, mode);
}

/** A fresh copy of the cached debootstrap tree at `stage`. */
export function copyRootfs(cached: string, stage: string): void {
  rmSync(stage, { recursive: true, force: true });
  run('cp', ['-a', cached, stage]);
}

export function prune(root: string): void {
  for (const rel of PRUNE) rm(root, rel);
  for (const dir of ['usr/bin', 'usr/sbin'])
    for (const name of readdirSync(join(root, dir))) if (PRUNE_PROGRAMS.test(name)) rm(root, `${dir}/${name}`);
  for (const name of readdirSync(join(root, 'usr/lib/x86_64-linux-gnu')))
    if (name.startsWith('libapt-')) rm(root, `usr/lib/x86_64-linux-gnu/${name}`);
  // Time zones: containers bring their own; the guest runs in UTC.
  const zi = join(root, 'usr/share/zoneinfo');
  for (const name of readdirSync(zi)) if (name !== 'UTC' && name !== 'Etc') rm(root, `usr/share/zoneinfo/${name}`);
  mkdirSync(join(root, 'var/log'), { recursive: true });
}

/** The configuration files of the guest (skiff-init does the per-boot parts: keys, network, mounts). */
export function configure(root: string, moduleFiles: string[]): void {
  write(root, 'etc/ssh/sshd_config', SSHD_CONFIG);
  // skiff-init loads these in order (finit_module): paths relative to /lib/modules/<kver>, dependencies first
  const header = '# kernel modules skiff-init loads at boot, in order: written by build/vm-image (kernel.ts MODULES)\n';
  write(root, 'etc/skiff/modules', header + moduleFiles.map((m) => `${m}\n`).join(''));
  write(root, 'etc/hostname', 'skiff\n');
  write(root, 'etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\tskiff\n::1\t\tlocalhost ip6-localhost ip6-loopback\n');
  // QEMU user networking's DNS; skiffd's embedded DNS forwards to it
  write(root, 'etc/resolv.conf', 'nameserver 10.0.2.3\n');
  write(root, 'etc/motd', '');
  // mount points and directories sshd and the agent expect
  for (const [rel, mode] of [
    ['root', 0o700],
    ['root/.ssh', 0o700],
    ['run/sshd', 0o755],
    ['run/skiff', 0o755],
    ['var/lib/skiff', 0o711],
    ['tmp', 0o1777],
  ] as const) {
    mkdirSync(join(root, rel), { recursive: true });
    chmodSync(join(root, rel), mode);
  }
}

/** The shared libraries `file` loads (ldd on the host), as absolute paths the way ldd names them. */
function sharedLibs(file: string): string[] {
  // ldd fails (status 1) on a static binary: that is the "no libraries" answer
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (/not a dynamic executable|statically linked/.test(out)) return [];
  if (r.status !== 0) throw new BuildError(`ldd ${file} failed: ${out || r.error?.message}`);
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    if (/not found/.test(line))
      throw new BuildError(`${file}: a shared library is missing on this host: ${line.trim()}`);
    const m = /=> (\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/**
 * Copy host binaries' shared libraries into the tree at the same paths. They replace the tree's own copies: the
 * host's node needs the host's libstdc++ and libc (same Debian release in CI, so the same files).
 */
export function installLibs(root: string, binaries: string[]): string[] {
  const libs = [...new Set(binaries.flatMap(sharedLibs))].sort();
  for (const lib of libs) {
    // the file itself where the host keeps it, and the name ldd used as the same symlink (libstdc++.so.6 -> ...)
    const real = realpathSync(lib);
    install(root, real, real.slice(1), 0o755);
    if (lstatSync(lib).isSymbolicLink()) {
      const link = join(root, lib.slice(1));
      if (existsSync(link) || isLink(link)) unlinkSync(link);
      symlinkSync(readlinkSync(lib), link);
    }
  }
  return libs;
}

/** node, our programs, the addon, the protos and skiff-init. */
export function installSkiff(root: string, dist: string, nodeBinary: string, initBinary: string): void {
  install(root, nodeBinary, 'usr/bin/node');
  // The host's node may carry its symbol table and debug info (~12 MB of ~100); .dynsym, which addons link
  // against, stays.
  run('strip', ['--strip-unneeded', join(root, 'usr/bin/node')]);
  for (const p of SKIFF_PROGRAMS) install(root, join(dist, 'bin', p), `${GUEST_LIB}/bin/${p}`);
  install(root, join(dist, 'native', 'skiff_native.node'), `${GUEST_LIB}/native/skiff_native.node`);
  for (const f of readdirSync(join(dist, 'proto')).sort())
    install(root, join(dist, 'proto', f), `${GUEST_LIB}/proto/${f}`, 0o644);
  install(root, initBinary, 'init');
}

/** Whether an x86_64 ELF file names a program interpreter (PT_INTERP), i.e. is dynamically linked. */
function hasInterpreter(file: string): boolean {
  const elf = readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46) return false; // a script (the node bundles)
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  for (let i = 0; i < elf.readUInt16LE(0x38); i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

/**
 * Run the staged programs inside the tree (chroot) so a library pruned too hard or missing fails the build, not
 * the boot: node loads the addon, sshd accepts its config, nft, ip and mkfs start.
 */
export function verify(root: string): void {
  const inRoot = (cmd: string, ...args: string[]): string => runText('chroot', [root, cmd, ...args]);
  const addon = `/${GUEST_LIB}/native/skiff_native.node`;
  const probe = `const a=require(${JSON.stringify(addon)});if(typeof a.mount!=='function')process.exit(3);console.log(process.version)`;
  inRoot('/usr/bin/node', '-e', probe);
  for (const p of [...SKIFF_PROGRAMS.map((p) => `/${GUEST_LIB}/bin/${p}`), '/init']) {
    if (!hasInterpreter(join(root, p))) continue; // static: nothing to load (and ld.so --list would crash)
    const out = runText('chroot', [root, '/lib64/ld-linux-x86-64.so.2', '--list', p]).trim();
    if (/not found/.test(out)) throw new BuildError(`${p} misses a shared library in the image:\n${out}`);
  }
  const key = join(root, 'tmp', 'verify-hostkey');
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  inRoot('/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '/tmp/verify-hostkey');
  try {
    inRoot('/usr/sbin/sshd', '-t', '-f', '/etc/ssh/sshd_config', '-h', '/tmp/verify-hostkey');
  } finally {
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
  }
  inRoot('/usr/sbin/nft', '--version');
  inRoot('/usr/sbin/ip', '-V');
  inRoot('/usr/sbin/mkfs.ext4', '-V');
  inRoot('/usr/sbin/modprobe', '--version');
  inRoot('/bin/busybox', 'true');
}
