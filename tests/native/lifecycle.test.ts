// The runtime's command line and life cycle, checked from the host and from inside busybox containers.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, writeFileSync, openSync, closeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Runtime,
  cgroupDirsNamed,
  cleanupScratch,
  hasRunc,
  hostMountsContaining,
  makeBundle,
  requireRoot,
  scratchDir,
  uniqueId,
  waitFor,
} from './helpers.js';

const rt = new Runtime();
beforeAll(() => requireRoot());
afterEach(() => rt.cleanup());
afterAll(() => cleanupScratch());

describe('create, start, state, delete', () => {
  it('goes created → running → stopped and leaves nothing behind', () => {
    const b = makeBundle(['/bin/sh', '-c', 'read x; echo done'], (c) => {
      c.process.terminal = false;
    });
    // stdin from a fifo we hold: the process blocks on `read` until we write.
    const id = uniqueId();
    const c = rt.create(b, id);
    expect(c.code, c.stderr).toBe(0);
    const created = rt.state(id);
    expect(created.status).toBe('created');
    expect(created.pid).toBeGreaterThan(0);
    expect(created.id).toBe(id);
    expect(created.bundle).toBe(b.dir);
    expect(existsSync(join(rt.root, id, 'exec.fifo'))).toBe(true);
    // the init waits in the container's pid namespace as pid 1, running the sealed runtime copy
    expect(readFileSync(`/proc/${created.pid}/status`, 'utf8')).toMatch(/NSpid:\s+\d+\s+1\n/);
    expect(readlinkSync(`/proc/${created.pid}/exe`)).toMatch(/^\/memfd:skiff-runtime/);

    const s = rt.cmd(['start', id]);
    expect(s.code, s.stderr).toBe(0);
    expect(existsSync(join(rt.root, id, 'exec.fifo'))).toBe(false);
    // stdin is /dev/null: read gets EOF, the shell echoes and exits
    waitFor(() => rt.state(id).status === 'stopped');
    expect(rt.state(id).pid).toBe(0);
    const d = rt.cmd(['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expect(existsSync(join(rt.root, id))).toBe(false);
    expect(cgroupDirsNamed(id)).toEqual([]);
    expect(rt.cmd(['state', id]).stderr).toMatch(/does not exist/);
  });

  it('start twice is refused; start of an unknown container names it', () => {
    const b = makeBundle(['/bin/sleep', '30']);
    const id = rt.create(b).id;
    expect(rt.cmd(['start', id]).code).toBe(0);
    expect(rt.state(id).status).toBe('running');
    const again = rt.cmd(['start', id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/running, not created/);
    const unknown = rt.cmd(['start', 'no-such-container']);
    expect(unknown.stderr).toMatch(/container no-such-container does not exist/);
  });

  it('refuses a second container with the same id', () => {
    const b = makeBundle(['/bin/sleep', '30']);
    const id = rt.create(b).id;
    const dup = rt.create(b, id);
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/already exists/);
    expect(rt.state(id).status).toBe('created');
  });

  it('delete refuses a running container, --force kills it and removes the cgroup', () => {
    const b = makeBundle(['/bin/sleep', '300']);
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    const pid = rt.state(id).pid;
    const d = rt.cmd(['delete', id]);
    expect(d.code).not.toBe(0);
    expect(d.stderr).toMatch(/running.*--force/);
    expect(rt.cmd(['delete', '--force', id]).code).toBe(0);
    expect(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z').toBe(
      false,
    );
    expect(cgroupDirsNamed(id)).toEqual([]);
    expect(rt.cmd(['delete', '--force', id]).code).toBe(0); // already gone: fine with --force
  });

  it('deletes a created container without starting it', () => {
    const b = makeBundle(['/bin/true']);
    const id = rt.create(b).id;
    const pid = rt.state(id).pid;
    expect(rt.cmd(['delete', id]).code).toBe(0);
    waitFor(() => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z');
    expect(existsSync(join(rt.root, id))).toBe(false);
  });

  it('writes the pid file and detects pid reuse through the start time', () => {
    const b = makeBundle(['/bin/sleep', '30']);
    const pidFile = join(b.dir, 'pid');
    const id = rt.create(b, uniqueId(), ['--pid-file', pidFile]).id;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBe(rt.state(id).pid);
    // forge a different start time: the runtime must then consider the process gone
    const statePath = join(rt.root, id, 'state.json');
    const saved = JSON.parse(readFileSync(statePath, 'utf8'));
    saved.start_time += 1;
    writeFileSync(statePath, JSON.stringify(saved));
    expect(rt.state(id).status).toBe('stopped');
    saved.start_time -= 1;
    writeFileSync(statePath, JSON.stringify(saved));
    expect(rt.state(id).status).toBe('created');
  });
});

describe('run', () => {
  it('passes stdio straight through and returns the exit code', () => {
    const b = makeBundle(['/bin/sh', '-c', 'echo out; echo err >&2; exit 7']);
    const r = rt.run(b);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(7);
  });

  it('leaks no file descriptor but 0-2 into the container', () => {
    const b = makeBundle(['/bin/ls', '/proc/self/fd']);
    const r = rt.run(b);
    expect(r.code, r.stderr).toBe(0);
    // ls itself opens one fd for the directory it lists
    expect(r.stdout.split('\n').filter(Boolean).map(Number).sort()).toEqual([0, 1, 2, 3]);
  });

  it('keeps --preserve-fds open, and only those', () => {
    const b = makeBundle(['/bin/sh', '-c', 'cat <&3; ls /proc/self/fd | wc -l']);
    const file = join(b.dir, 'extra');
    writeFileSync(file, 'from fd 3\n');
    const fd = openSync(file, 'r');
    // the shell of spawnSync gets fd 3 from stdio; then we also leak fd 4 which must not arrive
    const r = spawnSync(
      'sh',
      [
        '-c',
        `exec 4</etc/hostname; exec "$@"`,
        'sh',
        rt.binary,
        '--root',
        rt.root,
        'run',
        '--preserve-fds',
        '1',
        '--bundle',
        b.dir,
        uniqueId(),
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe', fd],
      },
    );
    closeSync(fd);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('from fd 3\n5\n'); // 0 1 2 3 + the fd ls opens
  });

  it('runs as pid 1 with the config hostname, env, cwd and rlimits', () => {
    const b = makeBundle(['/bin/sh', '-c', 'echo $$ $(hostname) $FOO $(pwd) $(ulimit -n)'], (c) => {
      c.hostname = 'box';
      c.process.env.push('FOO=bar');
      c.process.cwd = '/tmp';
    });
    const r = rt.run(b);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1 box bar /tmp 1024\n');
  });

  it('sets HOME from the container’s /etc/passwd when the config has none, as runc does', () => {
    const env = ['PATH=/bin:/usr/bin'];
    const root = rt.run(makeBundle(['/bin/sh', '-c', 'echo $HOME'], (c) => (c.process.env = env)));
    expect(root.stdout).toBe('/root\n');
    const nobody = rt.run(
      makeBundle(['/bin/sh', '-c', 'echo $HOME'], (c) => {
        c.process.env = env;
        c.process.user = { uid: 65534, gid: 65534 };
      }),
    );
    expect(nobody.stdout).toBe('/home\n');
    const unknown = rt.run(
      makeBundle(['/bin/sh', '-c', 'echo $HOME'], (c) => {
        c.process.env = env;
        c.process.user = { uid: 4242, gid: 4242 };
      }),
    );
    expect(unknown.stdout).toBe('/\n');
    const given = rt.run(makeBundle(['/bin/sh', '-c', 'echo $HOME'], (c) => c.process.env.push('HOME=/given')));
    expect(given.stdout).toBe('/given\n');
  });

  it('resets signal dispositions the runtime ignores (SIGPIPE) before exec', () => {
    const b = makeBundle(['/bin/grep', 'SigIgn', '/proc/self/status']); // not sh: it ignores SIGINT itself
    const r = rt.run(b);
    expect(r.stdout).toMatch(/SigIgn:\s+0+\n/);
  });

  it('reports a missing executable at create time, leaving nothing behind', () => {
    const b = makeBundle(['/no/such/program']);
    const id = uniqueId();
    const c = rt.create(b, id);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toMatch(/exec \/no\/such\/program: No such file or directory/);
    expect(existsSync(join(rt.root, id))).toBe(false);
    expect(cgroupDirsNamed(id)).toEqual([]);
    const c2 = rt.create(makeBundle(['nosuchcmd']), id);
    expect(c2.stderr).toMatch(/executable file not found in \$PATH/);
  });

  it('refuses a working directory outside the container (CVE-2024-21626)', () => {
    const b = makeBundle(['/bin/pwd'], (c) => {
      c.process.cwd = '/proc/self/fd/7';
      c.process.noNewPrivileges = false;
    });
    const r = rt.run(b);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/working directory \/proc\/self\/fd\/7/);
  });
});

describe('kill', () => {
  it('takes signal names and numbers, and --all reaches every process', () => {
    const b = makeBundle(['/bin/sh', '-c', 'trap "echo got-usr1 > /tmp/x" USR1; while :; do sleep 0.05; done'], (c) => {
      c.root.readonly = false;
    });
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    spawnSync('sleep', ['0.2']);
    expect(rt.cmd(['kill', id, 'SIGUSR1']).code).toBe(0);
    waitFor(() => existsSync(join(b.rootfs, 'tmp/x')));
    expect(rt.cmd(['kill', id, 'bogus']).stderr).toMatch(/unknown signal "bogus"/);
    expect(rt.cmd(['kill', '--all', id, '9']).code).toBe(0);
    waitFor(() => rt.state(id).status === 'stopped');
    const again = rt.cmd(['kill', id, 'KILL']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/not running/);
  });
});

describe('exec', () => {
  it('runs a process in the container namespaces and returns its exit code', () => {
    const b = makeBundle(['/bin/sleep', '300'], (c) => (c.hostname = 'ctr'));
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    const r = rt.cmd(['exec', id, '/bin/sh', '-c', 'hostname; echo $$; ls /proc/self/fd | wc -l; exit 3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    const [host, pid, fds] = r.stdout.trim().split('\n');
    expect(host).toBe('ctr');
    expect(Number(pid)).toBeGreaterThan(1); // in the container's pid namespace
    expect(Number(fds)).toBe(4);
    expect(rt.cmd(['exec', '--user', '65534:65534', id, 'sh', '-c', 'echo $HOME']).stdout).toBe('/home\n');
    const withEnv = rt.cmd([
      'exec',
      '--env',
      'A=1',
      '--cwd',
      '/tmp',
      '--user',
      '65534:65534',
      id,
      'sh',
      '-c',
      'echo $A $(pwd) $(id -u):$(id -g)',
    ]);
    expect(withEnv.stdout).toBe('1 /tmp 65534:65534\n');
  });

  it('takes a --process file and --detach with a pid file', () => {
    const b = makeBundle(['/bin/sleep', '300']);
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    const proc = join(b.dir, 'process.json');
    writeFileSync(
      proc,
      JSON.stringify({ args: ['/bin/sleep', '100'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }),
    );
    const pidFile = join(b.dir, 'exec.pid');
    // stdio on /dev/null: a detached process keeps its stdout open, and a pipe would never see EOF
    const r = spawnSync(
      'sh',
      [
        '-c',
        `exec "$@" </dev/null >/dev/null 2>${b.dir}/exec.err`,
        'sh',
        rt.binary,
        '--root',
        rt.root,
        'exec',
        '--process',
        proc,
        '--detach',
        '--pid-file',
        pidFile,
        id,
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, readFileSync(`${b.dir}/exec.err`, 'utf8')).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe('/bin/sleep\x00100\x00');
    const ps = rt.cmd(['ps', '--format', 'json', id]);
    expect(JSON.parse(ps.stdout)).toContain(pid);
  });

  it('is refused in a stopped container and for a missing program', () => {
    const b = makeBundle(['/bin/sleep', '300']);
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    expect(rt.cmd(['exec', id, 'nosuch']).stderr).toMatch(/executable file not found/);
    rt.cmd(['kill', id, 'KILL']);
    waitFor(() => rt.state(id).status === 'stopped');
    expect(rt.cmd(['exec', id, 'true']).stderr).toMatch(/it is stopped/);
  });

  it('runs from a sealed copy: the runtime binary on disk cannot be reached for writing (CVE-2019-5736)', () => {
    const b = makeBundle(['/bin/sleep', '300']);
    const id = rt.create(b).id;
    const init = rt.state(id).pid;
    // what a container process would find through /proc/<pid>/exe of a runtime process inside it
    const exe = `/proc/${init}/exe`;
    expect(readlinkSync(exe)).toMatch(/memfd:skiff-runtime/);
    const w = spawnSync('sh', ['-c', `echo x > ${exe}`], { encoding: 'utf8' });
    expect(w.status).not.toBe(0);
    expect(w.stderr).toMatch(/Operation not permitted|Text file busy|Permission denied/);
  });
});

describe('events and update', () => {
  it('events --stats reports the cgroup figures; update reads resources from stdin', () => {
    const b = makeBundle(['/bin/sleep', '300'], (c) => {
      c.linux.resources.pids = { limit: 50 };
    });
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    const ev = JSON.parse(rt.cmd(['events', '--stats', id]).stdout);
    expect(ev).toMatchObject({ type: 'stats', id, data: { pids: { current: 1, limit: 50 } } });
    expect(ev.data.memory.usage.usage).toBeGreaterThan(0);
    expect(ev.data.cpu.usage.total).toBeGreaterThan(0);
    const u = rt.cmd(['update', '--resources', '-', id], { input: '{"pids":{"limit":77}}' });
    expect(u.code, u.stderr).toBe(0);
    expect(JSON.parse(rt.cmd(['events', '--stats', id]).stdout).data.pids.limit).toBe(77);
    const bad = rt.cmd(['update', '--resources', '-', id], { input: '{"pids":' });
    expect(bad.stderr).toMatch(/resources on stdin is not valid JSON/);
  });
});

describe('list, ps, features, --version, logs', () => {
  it('lists containers as a table, quietly and as JSON', () => {
    const b = makeBundle(['/bin/sleep', '300']);
    const id = rt.create(b).id;
    expect(rt.cmd(['list', '-q']).stdout.split('\n')).toContain(id);
    const json = JSON.parse(rt.cmd(['list', '--format', 'json']).stdout);
    expect(json.find((c: { id: string }) => c.id === id)).toMatchObject({ status: 'created', bundle: b.dir });
    expect(rt.cmd(['list']).stdout).toMatch(new RegExp(`^ID\\s+PID\\s+STATUS[^]*${id}\\s+\\d+\\s+created`, 'm'));
  });

  it('ps shows the container processes through ps(1)', () => {
    const b = makeBundle(['/bin/sleep', '300']);
    const id = rt.create(b).id;
    rt.cmd(['start', id]);
    const t = rt.cmd(['ps', id]);
    expect(t.stdout).toMatch(/^UID\s+PID/);
    expect(t.stdout).toMatch(/sleep 300/);
    expect(t.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('features describes this build', () => {
    const f = JSON.parse(rt.cmd(['features']).stdout);
    expect(f.ociVersionMin).toBe('1.0.0');
    expect(f.hooks).toContain('createContainer');
    expect(f.linux.namespaces).toEqual(expect.arrayContaining(['user', 'cgroup', 'time']));
    expect(f.linux.capabilities).toContain('CAP_SYS_ADMIN');
    expect(f.linux.seccomp.enabled).toBe(true);
    expect(f.mountOptions).toContain('rbind');
    expect(rt.cmd(['--version']).stdout).toMatch(/^skiff-runtime version \d+\.\d+\.\d+\nspec: 1\.2\.0\n$/);
  });

  it('writes errors to --log as JSON and to stderr as text', () => {
    const log = join(scratchDir(), 'log.json');
    const r = rt.cmd(['--log', log, '--log-format', 'json', 'state', 'missing']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('skiff-runtime: container missing does not exist\n');
    const line = JSON.parse(readFileSync(log, 'utf8').trim());
    expect(line).toMatchObject({ level: 'error', msg: 'container missing does not exist' });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });
});

describe('bad configs: clear errors, nothing left behind', () => {
  function expectClean(id: string): void {
    expect(existsSync(join(rt.root, id))).toBe(false);
    expect(cgroupDirsNamed(id)).toEqual([]);
    expect(hostMountsContaining(id)).toEqual([]);
  }
  const cases: Array<[string, (b: ReturnType<typeof makeBundle>) => void, RegExp]> = [
    [
      'invalid JSON',
      (b) => writeFileSync(join(b.dir, 'config.json'), '{"ociVersion": "1.0.2", '),
      /config.json is not valid JSON/,
    ],
    [
      'a wrong type',
      (b) => {
        b.config.process.args = 'sh';
        b.save();
      },
      /process\.args must be an array/,
    ],
    [
      'a missing rootfs',
      (b) => {
        b.config.root.path = 'nope';
        b.save();
      },
      /nope.*No such file or directory/,
    ],
    [
      'an unknown namespace path',
      (b) => {
        b.config.linux.namespaces.push({ type: 'cgroup', path: '/proc/1/ns/nope' });
        b.save();
      },
      /linux\.namespaces\[5\]\.path \/proc\/1\/ns\/nope: No such file or directory/,
    ],
    [
      'a namespace path of the wrong type',
      (b) => {
        b.config.linux.namespaces[1].path = '/proc/self/ns/ipc';
        b.save();
      },
      /is not a network namespace/,
    ],
    [
      'an unknown namespace type',
      (b) => {
        b.config.linux.namespaces.push({ type: 'bogus' });
        b.save();
      },
      /"bogus" is not a namespace type/,
    ],
    [
      'an unsupported ociVersion',
      (b) => {
        b.config.ociVersion = '2.0.0';
        b.save();
      },
      /ociVersion "2.0.0" is not supported/,
    ],
    [
      'a relative cwd',
      (b) => {
        b.config.process.cwd = 'tmp';
        b.save();
      },
      /process\.cwd must be an absolute path/,
    ],
    [
      'a user namespace without mappings',
      (b) => {
        b.config.linux.namespaces.push({ type: 'user' });
        b.save();
      },
      /needs linux\.uidMappings/,
    ],
    [
      'a hook with a relative path',
      (b) => {
        b.config.hooks = { prestart: [{ path: 'x' }] };
        b.save();
      },
      /hooks\.prestart\[0\]\.path must be absolute/,
    ],
  ];
  for (const [name, breakIt, message] of cases) {
    it(name, () => {
      const b = makeBundle(['/bin/true']);
      breakIt(b);
      const id = uniqueId();
      const r = rt.create(b, id);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expectClean(id);
    });
  }
});

describe('hooks', () => {
  it('runs all six kinds in order with the state on stdin', () => {
    const b = makeBundle(['/bin/true'], (c) => (c.root.readonly = false));
    const log = join(b.dir, 'hooks.log');
    const script = join(b.dir, 'hook.sh');
    // createContainer runs before pivot_root (host paths), startContainer inside the container (its own paths)
    writeFileSync(script, `#!/bin/sh\nread state\necho "$1 $state" >> ${log}\n`);
    chmodSync(script, 0o755);
    writeFileSync(join(b.rootfs, 'hook.sh'), `#!/bin/sh\nread state\necho "startContainer $state" > /started\n`);
    chmodSync(join(b.rootfs, 'hook.sh'), 0o755);
    const hook = (kind: string) => [{ path: script, args: ['hook.sh', kind] }];
    b.config.hooks = {
      prestart: hook('prestart'),
      createRuntime: hook('createRuntime'),
      createContainer: hook('createContainer'),
      startContainer: [{ path: '/hook.sh', args: ['hook.sh'] }],
      poststart: hook('poststart'),
      poststop: hook('poststop'),
    };
    b.config.annotations = { 'org.example': 'yes' };
    b.save();
    const id = uniqueId();
    const r = rt.run(b, id);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual([
      'prestart',
      'createRuntime',
      'createContainer',
      'poststart',
      'poststop',
    ]);
    const states = lines.map((l) => JSON.parse(l.slice(l.indexOf(' ') + 1)));
    for (const s of states) expect(s).toMatchObject({ id, bundle: b.dir, annotations: { 'org.example': 'yes' } });
    expect(states[0].status).toBe('creating');
    expect(states[3].status).toBe('running');
    expect(states[4].status).toBe('stopped');
    expect(states[0].pid).toBeGreaterThan(0);
    expect(readFileSync(join(b.rootfs, 'started'), 'utf8')).toMatch(/^startContainer \{/);
  });

  it('kills a hook that hangs past its timeout and fails the create cleanly', () => {
    const b = makeBundle(['/bin/true'], (c) => {
      c.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
    });
    const id = uniqueId();
    const t0 = Date.now();
    const r = rt.create(b, id);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hook createRuntime\[0\] \(\/bin\/sleep\) timed out after 1s/);
    expect(existsSync(join(rt.root, id))).toBe(false);
    expect(cgroupDirsNamed(id)).toEqual([]);
  });

  it('a failing prestart hook fails the create', () => {
    const b = makeBundle(['/bin/true'], (c) => {
      c.hooks = { prestart: [{ path: '/bin/false' }] };
    });
    const r = rt.create(b);
    expect(r.stderr).toMatch(/hook prestart\[0\] \(\/bin\/false\) exited with status 1/);
  });
});

describe.runIf(hasRunc())('the same bundle through runc', () => {
  const runc = new Runtime('/usr/sbin/runc');
  afterAll(() => runc.cleanup());
  it('gives the same output for identity, limits and namespaces', () => {
    const script =
      'id; hostname; ulimit -n; grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status; ls /proc/self/fd; ls /dev; readlink /proc/self/ns/pid >/dev/null && echo ok';
    const b = makeBundle(['/bin/sh', '-c', script]);
    const ours = rt.run(b);
    const theirs = runc.run(b);
    expect(ours.stderr).toBe('');
    expect(theirs.code).toBe(0);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.code).toBe(0);
  });
});
