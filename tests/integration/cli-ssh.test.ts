// `skiff shell` and `skiff ssh-config` run the SYSTEM ssh with the VM's key and the pinned known_hosts the host
// agent writes (keys.ts: "skiff-<vm> ssh-ed25519 …", matched through HostKeyAlias). Checked here against Debian's
// real sshd on 127.0.0.1 with those keys (no VM): the command line logs in and runs a command, the ssh-config block
// works with `ssh skiff-<vm>`, and a server with another host key is refused.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshArgs, sshConfigBlock, type SshTarget } from '../../electron/cli/format.js';
import { ensureKeys } from '../../electron/hostagent/keys.js';
import { vmPaths, type VmPaths } from '../../electron/hostagent/paths.js';
import { startSshd, type TestSshd } from './hostagent-sshd.js';

const home = mkdtempSync(join(tmpdir(), 'skiff-clissh-'));
let p: VmPaths;
let sshd: TestSshd;
let t: SshTarget;

beforeAll(async () => {
  p = vmPaths('default', home);
  await ensureKeys(p);
  sshd = await startSshd(home, p.hostKey, p.userPub);
  t = { vm: 'default', port: sshd.port, identity: p.userKey, knownHosts: p.knownHosts };
});
afterAll(async () => {
  await sshd?.stop();
  rmSync(home, { recursive: true, force: true });
});

const ssh = (args: string[]) => spawnSync('ssh', args, { encoding: 'utf8', timeout: 30_000, stdin: 'ignore' } as never);

describe('ssh into the VM with the pinned key', () => {
  it('the shell command line logs in and runs a command', () => {
    const r = spawnSync('ssh', sshArgs(t, ['echo', 'hello', '$USER']), { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hello root\n');
  });

  it('the ssh-config block makes `ssh skiff-default` work', () => {
    const cfg = join(home, 'ssh_config');
    writeFileSync(cfg, sshConfigBlock(t));
    const r = spawnSync('ssh', ['-F', cfg, '-o', 'BatchMode=yes', 'skiff-default', 'id', '-u'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ status: 0, stdout: '0\n' });
  });

  it('a server with another host key is refused', async () => {
    const dir = mkdtempSync(join(home, 'other-'));
    const otherKey = join(dir, 'key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const other = await startSshd(dir, otherKey, p.userPub);
    try {
      const r = ssh(sshArgs({ ...t, port: other.port }, ['echo', 'should-not-run']));
      expect(r.status).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    } finally {
      await other.stop();
    }
  });
});
