// What the skiff CLI prints: the start progress (one updating line on a terminal, a line per change otherwise),
// status as text and JSON, the ssh command line, the ssh-config block and docker-env per shell.
import { describe, expect, it } from 'vitest';
import { Progress } from '../../electron/cli/commands.js';
import {
  ago,
  dockerEnv,
  progressLine,
  sshArgs,
  sshConfigBlock,
  statusJson,
  statusText,
  type HostStatus,
} from '../../electron/cli/format.js';

function st(patch: Partial<HostStatus>): HostStatus {
  return {
    state: 'STOPPED',
    step: '',
    percent: 0,
    reason: '',
    since: { seconds: String(Date.UTC(2025, 0, 2, 3, 4, 5) / 1000), nanos: 250_000_000 },
    docker_socket: '',
    agent_socket: '',
    ssh_port: 0,
    qemu_pid: 0,
    accel: '',
    accel_reason: '',
    ports: [],
    warnings: [],
    ...patch,
  };
}

describe('progress', () => {
  it('progressLine', () => {
    expect(progressLine({ state: 'STARTING', step: 'ssh', percent: 70 })).toBe('Starting Skiff: ssh (70%)');
    expect(progressLine({ state: 'STARTING', step: '', percent: 140 })).toBe('Starting Skiff: preparing (100%)');
    expect(progressLine({ state: 'STOPPING', step: '', percent: 0 })).toBe('Stopping Skiff…');
    expect(progressLine({ state: 'RUNNING', step: '', percent: 100 })).toBe('Skiff is running');
  });

  it('on a terminal: one line rewritten in place, cleared at the end', () => {
    let w = '';
    const p = new Progress((s) => (w += s), true);
    p.update({ state: 'STOPPED', step: '', percent: 0 }); // the stream's first status: not progress
    p.update({ state: 'STARTING', step: 'keys', percent: 5 });
    p.update({ state: 'STARTING', step: 'keys', percent: 5 }); // same line: not redrawn
    p.update({ state: 'STARTING', step: 'ssh', percent: 30 });
    p.done();
    expect(w).toBe('\r\x1b[2KStarting Skiff: keys (5%)\r\x1b[2KStarting Skiff: ssh (30%)\r\x1b[2K');
  });

  it('not on a terminal: a plain line per change', () => {
    let w = '';
    const p = new Progress((s) => (w += s), false);
    p.update({ state: 'STARTING', step: 'keys', percent: 5 });
    p.update({ state: 'STARTING', step: 'keys', percent: 5 });
    p.update({ state: 'STARTING', step: 'disk', percent: 10 });
    p.update({ state: 'ERROR', step: '', percent: 0 });
    p.done();
    expect(w).toBe('Starting Skiff: keys (5%)\nStarting Skiff: disk (10%)\n');
  });
});

describe('status', () => {
  const now = new Date(Date.UTC(2025, 0, 2, 3, 9, 7));

  it('ago', () => {
    expect(ago(new Date(now.getTime() - 5000), now)).toBe('5s');
    expect(ago(new Date(now.getTime() - 192_000), now)).toBe('3m 12s');
    expect(ago(new Date(now.getTime() - 7_500_000), now)).toBe('2h 5m');
    expect(ago(new Date(now.getTime() - 100 * 3600_000), now)).toBe('4d 4h');
  });

  it('RUNNING: since, accelerator, sockets, ports, warnings', () => {
    const s = st({
      state: 'RUNNING',
      docker_socket: '/h/.skiff/default/docker.sock',
      agent_socket: '/h/.skiff/default/agent.sock',
      ssh_port: 40022,
      qemu_pid: 1234,
      accel: 'tcg',
      accel_reason: 'no usable /dev/kvm',
      ports: [
        {
          listen: '0.0.0.0:8080',
          container_port: 80,
          protocol: 'tcp',
          container_name: 'web',
          listening: true,
          warning: '',
        },
        {
          listen: '127.0.0.1:80',
          container_port: 80,
          protocol: 'tcp',
          container_name: '',
          listening: false,
          warning: 'port 80 is privileged',
        },
      ],
      warnings: ['shares unavailable'],
    });
    expect(statusText('default', s, now)).toBe(
      [
        'Skiff (vm default): RUNNING since 2025-01-02T03:04:05.250Z (5m 1s ago)',
        '  accelerator:    tcg (no usable /dev/kvm)',
        '  docker socket:  unix:///h/.skiff/default/docker.sock',
        '  agent socket:   unix:///h/.skiff/default/agent.sock',
        '  ssh:            127.0.0.1:40022 (skiff shell, skiff ssh-config)',
        '  qemu pid:       1234',
        '  ports:',
        '    0.0.0.0:8080 → web:80/tcp (listening)',
        '    127.0.0.1:80 → 80/tcp (not listening: port 80 is privileged)',
        '  warnings:',
        '    - shares unavailable',
        '',
      ].join('\n'),
    );
    expect(statusJson('default', s)).toMatchObject({
      vm: 'default',
      state: 'RUNNING',
      since: '2025-01-02T03:04:05.250Z',
      dockerHost: 'unix:///h/.skiff/default/docker.sock',
      sshPort: 40022,
      accel: 'tcg',
      ports: [{ listen: '0.0.0.0:8080', containerPort: 80, containerName: 'web', listening: true }, {}],
      warnings: ['shares unavailable'],
    });
  });

  it('STARTING shows the step, ERROR the reason over several lines', () => {
    expect(statusText('dev', st({ state: 'STARTING', step: 'ssh', percent: 30 }), now)).toMatch(
      /^Skiff \(vm dev\): STARTING — ssh \(30%\) since /,
    );
    const e = statusText('default', st({ state: 'ERROR', reason: 'QEMU exited\n--- serial log ---\npanic' }), now);
    expect(e).toContain(
      '  reason:         QEMU exited\n                  --- serial log ---\n                  panic\n',
    );
    expect(e).not.toContain('ports');
  });
});

describe('ssh', () => {
  const t = { vm: 'default', port: 40022, identity: '/h/.skiff/default/id_ed25519', knownHosts: '/h/k h/known_hosts' };

  it('the ssh command line pins the host key through the alias', () => {
    const a = sshArgs(t, [], 'linux');
    expect(a.slice(0, 2)).toEqual(['-F', '/dev/null']);
    expect(a).toEqual(
      expect.arrayContaining([
        'UserKnownHostsFile=/h/k h/known_hosts',
        'StrictHostKeyChecking=yes',
        'HostKeyAlias=skiff-default',
        'BatchMode=yes',
      ]),
    );
    expect(a.slice(-3)).toEqual(['-p', '40022', 'root@127.0.0.1']);
    expect(sshArgs(t, ['uname', '-a'], 'linux').slice(-3)).toEqual(['--', 'uname', '-a']);
    expect(sshArgs(t, [], 'win32')).not.toContain('/dev/null');
  });

  it('ssh-config block', () => {
    expect(sshConfigBlock(t)).toBe(
      [
        '# Skiff VM "default": the port changes at every start of the VM; run `skiff ssh-config` again after one.',
        'Host skiff-default',
        '  HostName 127.0.0.1',
        '  Port 40022',
        '  User root',
        '  IdentityFile /h/.skiff/default/id_ed25519',
        '  IdentitiesOnly yes',
        '  UserKnownHostsFile "/h/k h/known_hosts"',
        '  StrictHostKeyChecking yes',
        '  HostKeyAlias skiff-default',
        '  UpdateHostKeys no',
        '',
      ].join('\n'),
    );
  });
});

describe('docker-env', () => {
  it('per shell', () => {
    expect(dockerEnv('/h/.skiff/default/docker.sock', 'sh').split('\n')[0]).toBe(
      "export DOCKER_HOST='unix:///h/.skiff/default/docker.sock'",
    );
    expect(dockerEnv("/h/it's/docker.sock", 'sh').split('\n')[0]).toBe(
      "export DOCKER_HOST='unix:///h/it'\\''s/docker.sock'",
    );
    expect(dockerEnv('/h/d.sock', 'fish').split('\n')[0]).toBe('set -gx DOCKER_HOST "unix:///h/d.sock";');
    expect(dockerEnv('/h/d.sock', 'powershell').split('\n')[0]).toBe('$Env:DOCKER_HOST = "unix:///h/d.sock"');
    for (const sh of ['sh', 'fish', 'powershell'] as const)
      expect(
        dockerEnv('/x', sh)
          .split('\n')
          .slice(1, -1)
          .every((l) => l.startsWith('#')),
      ).toBe(true);
  });
});
