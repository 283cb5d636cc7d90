// A real OpenSSH server for the host agent's tests: Debian's /usr/sbin/sshd on 127.0.0.1, a free port, with the host
// key and the authorized key given by the test (the keys the host agent made), public keys only. Needs root (sshd's
// privilege separation) and openssh-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export interface TestSshd {
  port: number;
  proc: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

/** Start sshd in the foreground (-D), logging to stderr (-e), and wait until its port accepts connections. */
/** `port`: listen there (a restart on the same port); default: a free one. */
export async function startSshd(
  dir: string,
  hostKey: string,
  authorizedKeys: string,
  port?: number,
): Promise<TestSshd> {
  if (!existsSync(SSHD))
    throw new Error(`${SSHD} is missing: install Debian's openssh-server (apt-get install openssh-server)`);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
  port ??= await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (d: string) => (log += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sshd exited (${proc.exitCode}): ${log}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    proc,
    log: () => log,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null || !proc.pid) return;
      // The per-connection sshd processes (children of the listener) outlive a SIGTERM to the listener: end them
      // too, by pid, so that open sessions really drop.
      for (const child of childPids(proc.pid)) {
        try {
          process.kill(child, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
