// Per-VM SSH keys in ~/.skiff/<vm>/ (0700): the user's ed25519 key pair (the host agent logs in with it) and the
// VM's SSH host key pair. Both are made HERE on first start (ssh-keygen) and handed to the guest through fw_cfg, so
// the host pins a key it made itself: the known_hosts file holds it, and the SSH session accepts that key only
// (its blob compared byte for byte). No key crosses a network; the guest allows no passwords.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { ensurePrivateDir, type VmPaths } from './paths.js';

const run = promisify(execFile);

export interface PublicKey {
  type: string;
  /** The wire-format key blob (base64-decoded). */
  blob: Buffer;
  comment: string;
}

/** Parse "ssh-ed25519 AAAA… comment" (an authorized_keys / .pub line), or a known_hosts line with a host field. */
export function parsePublicKey(line: string, withHost = false): PublicKey {
  const fields = line.trim().split(/\s+/);
  const [type, b64, ...rest] = withHost ? fields.slice(1) : fields;
  if (!type || !b64 || !/^ssh-|^ecdsa-/.test(type)) throw new Error(`not an SSH public key line: "${line.trim()}"`);
  const blob = Buffer.from(b64, 'base64');
  // The blob starts with the key type as an SSH string: check it says what the line says.
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len < 0 || blob.subarray(4, 4 + len).toString('latin1') !== type)
    throw new Error(`corrupt SSH public key (${type}): its blob does not start with its type`);
  return { type, blob, comment: rest.join(' ') };
}

export function hostAlias(vm: string): string {
  return `skiff-${vm}`;
}

export class HostKeyMismatchError extends Error {
  constructor(readonly pinFile: string) {
    super(
      `the VM's SSH host key does not match the one pinned in ${pinFile}: refusing to connect ` +
        '(if the VM was reset on purpose, run `skiff reset`, which makes new keys)',
    );
    this.name = 'HostKeyMismatchError';
  }
}

/** The key pinned in known_hosts for this VM's alias. */
export function pinnedHostKey(knownHosts: string, alias: string): PublicKey {
  if (!existsSync(knownHosts))
    throw new Error(`no pinned host key: ${knownHosts} is missing (start the VM once to make the keys)`);
  for (const line of readFileSync(knownHosts, 'utf8').split('\n')) {
    const host = line.trim().split(/\s+/)[0];
    if (!host || line.trim().startsWith('#')) continue;
    if (host.split(',').includes(alias)) return parsePublicKey(line, true);
  }
  throw new Error(`no host key for ${alias} is pinned in ${knownHosts}`);
}

/**
 * An ssh2 hostVerifier accepting exactly the pinned key blob. A refusal is remembered in `state.mismatch` so the
 * session can report it as a HostKeyMismatchError rather than ssh2's bare "verification failed".
 */
export function pinnedVerifier(
  pinned: Buffer,
  pinFile: string,
): { verify: (key: Buffer) => boolean; state: { mismatch?: HostKeyMismatchError } } {
  const state: { mismatch?: HostKeyMismatchError } = {};
  return {
    state,
    verify: (key: Buffer) => {
      const ok = Buffer.isBuffer(key) && key.length === pinned.length && key.equals(pinned);
      if (!ok) state.mismatch = new HostKeyMismatchError(pinFile);
      return ok;
    },
  };
}

async function keygen(file: string, comment: string): Promise<void> {
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  try {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(
        'ssh-keygen is not installed: install OpenSSH (Debian: apt-get install openssh-client; macOS and ' +
          'Windows 10+ ship it)',
      );
    throw new Error(`ssh-keygen failed: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`);
  }
  chmodSync(file, 0o600);
  chmodSync(`${file}.pub`, 0o600);
}

export interface VmKeys {
  /** The user's private key (OpenSSH format) for the session. */
  userPrivateKey: Buffer;
  userPublic: PublicKey;
  /** The pinned host key. */
  hostPublic: PublicKey;
  /** true when this call made new keys. */
  created: { user: boolean; host: boolean };
}

/**
 * Make the keys that are missing, pin the host key, and return them. A host key pair made now replaces the pin;
 * an existing pin is never rewritten to match a different key.
 */
export async function ensureKeys(p: VmPaths): Promise<VmKeys> {
  ensurePrivateDir(p.dir);
  const created = { user: false, host: false };
  if (!existsSync(p.userKey) || !existsSync(p.userPub)) {
    await keygen(p.userKey, `skiff-user@${p.name}`);
    created.user = true;
  }
  if (!existsSync(p.hostKey) || !existsSync(p.hostPub)) {
    await keygen(p.hostKey, `skiff-host@${p.name}`);
    created.host = true;
  }
  for (const f of [p.userKey, p.userPub, p.hostKey, p.hostPub]) chmodSync(f, 0o600);
  const hostPublic = parsePublicKey(readFileSync(p.hostPub, 'utf8'));
  const alias = hostAlias(p.name);
  if (created.host || !existsSync(p.knownHosts)) {
    writeFileSync(p.knownHosts, `${alias} ${hostPublic.type} ${hostPublic.blob.toString('base64')}\n`, {
      mode: 0o600,
    });
    chmodSync(p.knownHosts, 0o600);
  }
  return {
    userPrivateKey: readFileSync(p.userKey),
    userPublic: parsePublicKey(readFileSync(p.userPub, 'utf8')),
    hostPublic,
    created,
  };
}
