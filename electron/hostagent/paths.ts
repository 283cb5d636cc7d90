// Where a VM's files live on the host: ~/.skiff/<vm>/ (0700), or $SKIFF_HOME/<vm>/ (tests). Unix socket paths must
// stay under 104 bytes (macOS's sun_path); every socket path is checked here.
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The longest unix socket path we create (macOS's sun_path is 104 bytes with the NUL). */
export const MAX_SOCKET_PATH = 103;

export function skiffHome(): string {
  return process.env.SKIFF_HOME || join(homedir(), '.skiff');
}

export function checkVmName(name: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name))
    throw new Error(`invalid VM name "${name}": 1-32 of a-z 0-9 _ -, starting with a letter or digit`);
  return name;
}

export interface VmPaths {
  name: string;
  dir: string;
  /** The user's key pair (the session logs in as root with it). */
  userKey: string;
  userPub: string;
  /** The VM's SSH host key pair, made here and handed to the guest by fw_cfg. */
  hostKey: string;
  hostPub: string;
  /** The pin: "skiff-<vm> ssh-ed25519 AAAA…", the only host key the session accepts. */
  knownHosts: string;
  /** opt/skiff/config for skiff-init (hostname, shares, agent args). */
  guestConfig: string;
  dataDisk: string;
  serialLog: string;
  qemuLog: string;
  qmpSocket: string;
  qemuPid: string;
  settings: string;
  /** The forwarded sockets. */
  dockerSocket: string;
  agentSocket: string;
  /** The host agent's own gRPC socket, pidfile and lock. */
  hostagentSocket: string;
  hostagentPid: string;
  hostagentLog: string;
  state: string;
}

export function vmPaths(name: string, home = skiffHome()): VmPaths {
  checkVmName(name);
  const dir = join(home, name);
  const p = (f: string): string => join(dir, f);
  const paths: VmPaths = {
    name,
    dir,
    userKey: p('id_ed25519'),
    userPub: p('id_ed25519.pub'),
    hostKey: p('ssh_host_ed25519_key'),
    hostPub: p('ssh_host_ed25519_key.pub'),
    knownHosts: p('known_hosts'),
    guestConfig: p('guest-config.json'),
    dataDisk: p('data.qcow2'),
    serialLog: p('serial.log'),
    qemuLog: p('qemu.log'),
    qmpSocket: p('qmp.sock'),
    qemuPid: p('qemu.pid'),
    settings: p('settings.json'),
    dockerSocket: p('docker.sock'),
    agentSocket: p('agent.sock'),
    hostagentSocket: p('hostagent.sock'),
    hostagentPid: p('hostagent.pid'),
    hostagentLog: p('hostagent.log'),
    state: p('state.json'),
  };
  for (const s of [paths.qmpSocket, paths.dockerSocket, paths.agentSocket, paths.hostagentSocket]) checkSocketPath(s);
  return paths;
}

export function checkSocketPath(path: string): string {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw new Error(
      `socket path ${path} is ${Buffer.byteLength(path)} bytes, longer than the ${MAX_SOCKET_PATH} a unix socket ` +
        'allows on macOS: set SKIFF_HOME to a shorter directory',
    );
  return path;
}

/** Make `dir` (and parents) and force it to 0700; refuse a symlink or a non-directory. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (process.platform !== 'win32') {
    if (typeof process.getuid === 'function' && st.uid !== process.getuid())
      throw new Error(`${dir} belongs to uid ${st.uid}, not to this user: refusing to keep keys and sockets there`);
    if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  }
}
