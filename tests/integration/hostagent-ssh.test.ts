// The host agent's keys, SSH session and forwards against a REAL OpenSSH server (Debian's sshd on 127.0.0.1),
// without the VM: the keys the host agent makes are the server's host key and authorized key, as in the VM.
// Proves: key files and modes, the pinned host key (a different key is refused with the clear error, and never
// retried), exec, reconnection after sshd restarts, the unix-socket forward (0600 socket) to a unix server, and
// TCP port forwards driven by added/removed events, with a taken host port reported as a warning.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortForwarder, UnixForward, type PublishedPort } from '../../electron/hostagent/forwards.js';
import { ensureKeys, HostKeyMismatchError, hostAlias, pinnedHostKey } from '../../electron/hostagent/keys.js';
import { vmPaths, type VmPaths } from '../../electron/hostagent/paths.js';
import { SshSession } from '../../electron/hostagent/ssh.js';
import { freePort, startSshd, type TestSshd } from './hostagent-sshd.js';

let home = '';
let p: VmPaths;
let sshd: TestSshd;
const sessions: SshSession[] = [];

function session(pinned: Buffer, port = sshd.port): SshSession {
  const s = new SshSession({
    host: '127.0.0.1',
    port,
    username: 'root',
    privateKey: readFileSync(p.userKey),
    hostKey: pinned,
    pinFile: p.knownHosts,
    keepaliveMs: 1000,
    minDelayMs: 100,
    maxDelayMs: 500,
  });
  sessions.push(s);
  return s.start();
}

/** Send `msg` to a socket and collect everything until the other side ends. */
function roundTrip(target: string | { port: number; host: string }, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = typeof target === 'string' ? connect(target) : connect(target.port, target.host);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', reject);
    s.on('end', () => resolve(got));
    s.on('connect', () => s.end(msg));
  });
}

/** An echo server that prefixes its answers, so a test sees which server answered. */
function echoServer(prefix: string): Server {
  return createServer({ allowHalfOpen: true }, (c) => {
    let got = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (got += d));
    c.on('end', () => c.end(`${prefix}:${got}`));
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'skiff-ha-'));
  p = vmPaths('test', home);
  await ensureKeys(p);
  sshd = await startSshd(home, p.hostKey, p.userPub);
});

afterAll(async () => {
  for (const s of sessions) s.close();
  await sshd?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('keys', () => {
  it('makes the key pairs 0600 in a 0700 directory and pins the host key', async () => {
    expect(statSync(p.dir).mode & 0o777).toBe(0o700);
    for (const f of [p.userKey, p.userPub, p.hostKey, p.hostPub, p.knownHosts])
      expect(statSync(f).mode & 0o777, f).toBe(0o600);
    const pin = pinnedHostKey(p.knownHosts, hostAlias('test'));
    expect(pin.type).toBe('ssh-ed25519');
    expect(readFileSync(p.hostPub, 'utf8')).toContain(pin.blob.toString('base64'));
    // A second call keeps the keys.
    const again = await ensureKeys(p);
    expect(again.created).toEqual({ user: false, host: false });
    expect(again.hostPublic.blob.equals(pin.blob)).toBe(true);
  });
});

describe('ssh session', () => {
  it('connects with the pinned key and runs commands', async () => {
    const s = session(pinnedHostKey(p.knownHosts, hostAlias('test')).blob);
    await s.waitReady(10_000);
    const r = await s.exec('echo hello; id -u; echo err >&2; exit 3');
    expect(r).toMatchObject({ code: 3, stdout: 'hello\n0\n', stderr: 'err\n' });
  });

  it('refuses a host key other than the pinned one, with the clear error, and does not retry', async () => {
    const other = await ensureKeys(vmPaths('other', home));
    const s = session(other.hostPublic.blob);
    const err = await s.waitReady(10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect((err as Error).message).toContain(
      `the VM's SSH host key does not match the one pinned in ${p.knownHosts}: refusing to connect`,
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(s.state).toBe('failed');
    expect(s.attempts).toBe(1);
    await expect(s.exec('true')).rejects.toBeInstanceOf(HostKeyMismatchError);
  });

  it('waits for a server that is not up yet, and reconnects after it restarts', async () => {
    const s = session(pinnedHostKey(p.knownHosts, hostAlias('test')).blob);
    await s.waitReady(10_000);
    const downs: Error[] = [];
    s.on('down', (e: Error) => downs.push(e));
    const port = sshd.port;
    // sshd -D: a SIGTERM ends the listener and the session processes.
    await sshd.stop();
    await expect.poll(() => downs.length, { timeout: 20_000 }).toBeGreaterThan(0);
    expect(s.state).toBe('connecting');
    await expect(s.exec('true')).rejects.toThrow(/not connected/);
    sshd = await startSshd(home, p.hostKey, p.userPub, port);
    await s.waitReady(15_000);
    expect((await s.exec('echo back')).stdout).toBe('back\n');
  });
});

describe('forwards', () => {
  let s: SshSession;
  const servers: Server[] = [];
  beforeAll(async () => {
    s = session(pinnedHostKey(p.knownHosts, hostAlias('test')).blob);
    await s.waitReady(10_000);
  });
  afterAll(async () => {
    for (const srv of servers) srv.close();
  });

  it('forwards a 0600 unix socket in the VM directory to a unix socket on the other side', async () => {
    const remote = join(home, 'remote.sock');
    const srv = echoServer('unix');
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(remote, () => r()));
    const fwd = new UnixForward(s, p.dockerSocket, remote);
    await fwd.start();
    expect(statSync(p.dockerSocket).mode & 0o777).toBe(0o600);
    expect(await roundTrip(p.dockerSocket, 'ping')).toBe('unix:ping');
    // Several at once, each on its own channel.
    const many = await Promise.all([1, 2, 3, 4, 5].map((i) => roundTrip(p.dockerSocket, `m${i}`)));
    expect(many).toEqual(['unix:m1', 'unix:m2', 'unix:m3', 'unix:m4', 'unix:m5']);
    await fwd.stop();
    await expect(roundTrip(p.dockerSocket, 'x')).rejects.toThrow(/ENOENT/);
  });

  it('a missing remote socket closes the local connection (no crash)', async () => {
    const fwd = new UnixForward(s, p.agentSocket, join(home, 'nothing-here.sock'));
    await fwd.start();
    expect(await roundTrip(p.agentSocket, 'x')).toBe('');
    await expect.poll(() => fwd.failures).toBe(1);
    await fwd.stop();
  });

  it('forwards published TCP ports as they are added and removed; a taken port is a warning', async () => {
    // The "VM" is this host: the target listens on 127.0.0.1:<port>, the forward on 127.0.0.2:<same port>.
    const port = await freePort();
    const target = echoServer('tcp');
    servers.push(target);
    await new Promise<void>((r) => target.listen(port, '127.0.0.1', () => r()));
    const fwd = new PortForwarder(s, '127.0.0.1');
    const changes: number[] = [];
    fwd.on('change', () => changes.push(1));
    const pub: PublishedPort = {
      host_ip: '127.0.0.2',
      host_port: port,
      container_port: 80,
      protocol: 'tcp',
      container_name: 'web',
    };
    fwd.added(pub);
    await fwd.settled();
    expect(fwd.list()).toMatchObject([{ listen: `127.0.0.2:${port}`, state: 'listening' }]);
    expect(await roundTrip({ host: '127.0.0.2', port }, 'hello')).toBe('tcp:hello');

    // A host port already taken (by the target itself on 127.0.0.1): a warning, and the other forward still works.
    fwd.added({ ...pub, host_ip: '127.0.0.1', container_name: 'db' });
    await fwd.settled();
    expect(fwd.warnings()).toEqual([
      `127.0.0.1:${port} is already in use on this host: container db's port 80 is not forwarded (free the port, or publish another one)`,
    ]);
    expect(await roundTrip({ host: '127.0.0.2', port }, 'still')).toBe('tcp:still');

    // UDP is not forwarded yet: said so.
    fwd.added({ ...pub, protocol: 'udp' });
    expect(fwd.warnings()[1]).toMatch(/only TCP ports are forwarded/);

    fwd.removed(pub);
    await new Promise((r) => setTimeout(r, 50));
    await expect(roundTrip({ host: '127.0.0.2', port }, 'gone')).rejects.toThrow(/ECONNREFUSED/);
    expect(changes.length).toBeGreaterThanOrEqual(3);
    await fwd.stop();
    expect(fwd.list()).toEqual([]);
  });
});
