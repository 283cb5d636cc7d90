// skiff-init (native/init, docs/init.md) outside a VM: run as PID 1 of a new pid + mount namespace
// (`unshare --pid --fork --mount-proc skiff-init --test ...`) with shell scripts as skiff-agent and sshd, a config
// directory laid out like fw_cfg's sysfs tree, a FIFO as the power button and a loop device as the data disk.
// The boot of the real VM is tested with the image (tests of the VM tier).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  openSync,
  writeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

const CANDIDATES = [join(REPO, 'dist/bin/skiff-init'), join(REPO, 'native/build/Release/skiff-init')];
const INIT = CANDIDATES.find((p) => existsSync(p)) ?? CANDIDATES[0];
const HOST_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
const AUTHORIZED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtest user@host\n';

const dirs: string[] = [];
const running: Booted[] = [];

beforeAll(() => {
  if (!existsSync(INIT)) throw new Error(`${INIT} is missing: run npm run build:native first`);
});
afterEach(() => {
  for (const b of running.splice(0)) if (b.proc.exitCode === null) b.proc.kill('SIGKILL');
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined | false, ms = 10_000, out?: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${out ? `\nconsole:\n${out()}` : ''}`);
    await sleep(25);
  }
}

interface Setup {
  dir: string;
  root: string; // --root-dir
  fw: string; // --fw-cfg
  events: string; // what the fake agent and sshd write
  input: string; // --input-dir
}

/** A test directory: fw_cfg-like blobs, an agent and an sshd script that log to `events`. */
function setup(config: object | string | null = { hostname: 'skiff-test' }, agentBody = ''): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-init-'));
  dirs.push(dir);
  const s: Setup = {
    dir,
    root: join(dir, 'root'),
    fw: join(dir, 'fw'),
    events: join(dir, 'events'),
    input: join(dir, 'input'),
  };
  mkdirSync(s.root);
  mkdirSync(s.input);
  const blob = (name: string, text: string) => {
    mkdirSync(join(s.fw, name), { recursive: true });
    writeFileSync(join(s.fw, name, 'raw'), text);
  };
  if (config !== null) blob('config', typeof config === 'string' ? config : JSON.stringify(config));
  blob('ssh_host_ed25519_key', HOST_KEY);
  blob('authorized_keys', AUTHORIZED);
  writeFileSync(s.events, '');
  // Each line: "<who> <event> <pid in the namespace> <monotonic seconds> [args]".
  const prelude = `#!/bin/sh
export E=${s.events}
now() { cut -d' ' -f1 /proc/uptime; }
`;
  writeFileSync(
    join(dir, 'agent'),
    `${prelude}
echo "agent start $$ $(now) $*" >> $E
echo "agent says hello"
trap 'echo "agent term $$ $(now)" >> $E; echo "agent stopping"; exit 0' TERM
${agentBody}
while :; do sleep 0.05; done
`,
  );
  writeFileSync(
    join(dir, 'sshd'),
    `${prelude}
echo "sshd start $$ $(now) $*" >> $E
trap 'echo "sshd term $$ $(now)" >> $E; exit 0' TERM
while :; do sleep 0.05; done
`,
  );
  chmodSync(join(dir, 'agent'), 0o755);
  chmodSync(join(dir, 'sshd'), 0o755);
  return s;
}

interface Booted {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  /** skiff-init's pid as seen from here (the child of unshare). */
  initPid: () => number;
}

function boot(s: Setup, extra: string[] = [], opts: { net?: boolean; modules?: boolean } = {}): Booted {
  const args = [
    '--test',
    '--root-dir',
    s.root,
    '--no-mounts',
    ...(opts.modules ? [] : ['--no-modules']),
    '--fw-cfg',
    s.fw,
    '--agent',
    join(s.dir, 'agent'),
    '--sshd',
    join(s.dir, 'sshd'),
    '--input-dir',
    s.input,
    ...(opts.net ? [] : ['--no-network']),
    ...extra,
  ];
  // With --net, eth0 is one end of a veth pair made in the new network namespace before skiff-init starts.
  const cmd = opts.net
    ? [
        '--pid',
        '--fork',
        '--kill-child',
        '--mount-proc',
        '--net',
        '--uts',
        'sh',
        '-c',
        'ip link add eth0 type veth peer name peer0 && ip link set peer0 up && exec "$@"',
        'sh',
        INIT,
        ...args,
      ]
    : ['--pid', '--fork', '--kill-child', '--mount-proc', INIT, ...args];
  const proc = spawn('unshare', cmd, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const b: Booted = {
    proc,
    out: () => out,
    exited,
    initPid: () => {
      const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim();
      return Number(children.split(' ')[0]);
    },
  };
  running.push(b);
  return b;
}

function events(s: Setup): string[][] {
  return readFileSync(s.events, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '));
}

async function ready(b: Booted): Promise<void> {
  await until('skiff-init: ready', () => b.out().includes('skiff-init: ready'), 10_000, b.out);
}

async function stop(b: Booted, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  process.kill(b.initPid(), signal);
  const code = await Promise.race([b.exited, sleep(20_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') throw new Error(`skiff-init did not exit after ${signal}\nconsole:\n${b.out()}`);
  return code;
}

/** The pid, as seen here, of the process that is `nspid` in skiff-init's pid namespace. */
function hostPid(b: Booted, nspid: number): number | undefined {
  const init = b.initPid();
  const ns = readlinkSync(`/proc/${init}/ns/pid`);
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readlinkSync(`/proc/${p}/ns/pid`) !== ns) continue;
      const line = readFileSync(`/proc/${p}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m);
      const ids = line ? line[1].trim().split(/\s+/).map(Number) : [];
      if (ids[ids.length - 1] === nspid) return Number(p);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

const mode = (p: string) => statSync(p).mode & 0o777;
const parentOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
};

describe('skiff-init', () => {
  it('is a static executable (it runs before any library is there)', () => {
    const r = spawnSync('readelf', ['-l', INIT], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/INTERP/);
  });

  it('refuses to run when it is not PID 1, and refuses unknown options in test mode', () => {
    const r = spawnSync(INIT, ['--test'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/must run as PID 1/);
    const u = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', INIT, '--test', '--bogus'], {
      encoding: 'utf8',
    });
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/unknown argument --bogus/);
  });

  it('writes the keys and network files, starts sshd and the agent, then stops the agent first on SIGTERM', async () => {
    const s = setup({ hostname: 'skiff-test', agentArgs: ['--flag', 'value with space'] });
    const b = boot(s);
    await ready(b);
    await until('both started', () => events(s).filter((e) => e[1] === 'start').length === 2, 5000, b.out);
    const ev = events(s);
    const agent = ev.find((e) => e[0] === 'agent')!;
    expect(agent.slice(4).join(' ')).toBe(
      `--root ${s.root}/var/lib/skiff --run ${s.root}/run/skiff --flag value with space`,
    );
    expect(ev.find((e) => e[0] === 'sshd')!.slice(4)).toEqual(['-D', '-e']);
    // keys from the fw_cfg blobs, with the modes sshd insists on
    expect(readFileSync(join(s.root, 'etc/ssh/ssh_host_ed25519_key'), 'utf8')).toBe(HOST_KEY);
    expect(mode(join(s.root, 'etc/ssh/ssh_host_ed25519_key'))).toBe(0o600);
    // outside /root: the user's home may be shared into the VM at /root
    expect(readFileSync(join(s.root, 'etc/ssh/skiff_authorized_keys'), 'utf8')).toBe(AUTHORIZED);
    expect(mode(join(s.root, 'etc/ssh/skiff_authorized_keys'))).toBe(0o600);
    expect(existsSync(join(s.root, 'run/sshd'))).toBe(true);
    expect(readFileSync(join(s.root, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 10.0.2.3\n');
    expect(readFileSync(join(s.root, 'etc/hosts'), 'utf8')).toMatch(/^10\.0\.2\.15\tskiff-test$/m);
    // the agent's output: on the console with its name, and in its log file
    await until('agent output', () => b.out().includes('agent: agent says hello'), 5000, b.out);
    expect(readFileSync(join(s.root, 'run/skiff/log/agent.log'), 'utf8')).toMatch(/^agent says hello$/m);
    // one "ready" line, after the agent started
    expect(b.out().match(/skiff-init: ready/g)).toHaveLength(1);
    expect(b.out()).toMatch(/^\[ *\d+\.\d{6}\] skiff-init: ready$/m);

    expect(await stop(b)).toBe(0);
    const out = b.out();
    expect(out).toMatch(/skiff-init: powering off \(SIGTERM\)/);
    expect(out).toMatch(/skiff-init: skiff-agent stopped/);
    expect(out).toMatch(/agent: agent stopping/);
    const after = events(s);
    const agentTerm = after.find((e) => e[0] === 'agent' && e[1] === 'term');
    const sshdTerm = after.find((e) => e[0] === 'sshd' && e[1] === 'term');
    expect(agentTerm, out).toBeDefined();
    expect(sshdTerm, out).toBeDefined();
    // graceful order: the agent got SIGTERM and exited before everything else was told to stop
    expect(after.indexOf(agentTerm!)).toBeLessThan(after.indexOf(sshdTerm!));
    expect(out.indexOf('skiff-agent stopped')).toBeLessThan(out.indexOf('stopping all processes'));
  });

  it('restarts the agent when it dies, with a growing back-off', async () => {
    const s = setup();
    const b = boot(s);
    await ready(b);
    const starts = () => events(s).filter((e) => e[0] === 'agent' && e[1] === 'start');
    await until('agent start', () => starts().length === 1, 5000, b.out);
    for (let n = 1; n <= 3; n++) {
      const pid = hostPid(b, Number(starts()[n - 1][2]));
      expect(pid).toBeGreaterThan(1);
      process.kill(pid!, 'SIGKILL');
      await until(`restart ${n}`, () => starts().length === n + 1, 10_000, b.out);
    }
    const out = b.out();
    expect(out).toMatch(/agent exited \(killed by signal 9 \(Killed\)\) after \d+ ms: restart 1 in 200 ms/);
    expect(out).toMatch(/restart 2 in 400 ms/);
    expect(out).toMatch(/restart 3 in 800 ms/);
    // the delays are real: each restart came at least its delay after the kill
    const t = starts().map((e) => Number(e[3]));
    expect(t[3] - t[2]).toBeGreaterThanOrEqual(0.7);
    // the agent's pid changed and sshd was not touched
    expect(new Set(starts().map((e) => e[2])).size).toBe(4);
    expect(events(s).filter((e) => e[0] === 'sshd' && e[1] === 'start')).toHaveLength(1);
    expect(await stop(b)).toBe(0);
  });

  it('reaps orphans: a double-forked child is re-parented to skiff-init and not left a zombie', async () => {
    const s = setup(
      { hostname: 'skiff-test' },
      // the orphan: its parent (a subshell) exits at once; it records its pid and lives for 1 s
      `( sh -c 'echo $$ > $E.orphan; exec sleep 1' & )`,
    );
    const b = boot(s);
    await ready(b);
    const orphan = await until(
      'orphan pid',
      () => {
        const t = existsSync(`${s.events}.orphan`) ? readFileSync(`${s.events}.orphan`, 'utf8').trim() : '';
        return t ? Number(t) : undefined;
      },
      5000,
      b.out,
    );
    const init = b.initPid();
    const orphanHost = hostPid(b, orphan);
    expect(orphanHost).toBeGreaterThan(1);
    await until(
      'orphan re-parented to skiff-init',
      () => parentOf(orphanHost!) === init || parentOf(orphanHost!) === undefined,
    );
    expect(parentOf(orphanHost!)).toBe(init);
    // after the sleep: gone from /proc entirely (a zombie would still be listed, state Z)
    await until('orphan reaped', () => !existsSync(`/proc/${orphanHost}`), 5000, b.out);
    const zombies = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const st = readFileSync(`/proc/${p}/stat`, 'utf8');
          const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
          return fields[0] === 'Z' && Number(fields[1]) === init;
        } catch {
          return false;
        }
      });
    expect(zombies).toEqual([]);
    expect(await stop(b)).toBe(0);
  });

  it('powers off on KEY_POWER from an input device, and SIGKILLs what ignores SIGTERM', async () => {
    const s = setup(
      { hostname: 'skiff-test' },
      // a stubborn process: ignores SIGTERM, so only the SIGKILL after the grace period ends it
      `( sh -c 'trap "" TERM; echo "stubborn $$" >> $E; while :; do sleep 0.05; done' & )`,
    );
    const fifo = join(s.input, 'event3');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const b = boot(s, ['--kill-grace-ms', '1000']);
    await ready(b);
    expect(b.out()).toMatch(/power button: watching 1 input device/);
    await until('stubborn process', () => events(s).some((e) => e[0] === 'stubborn'), 5000, b.out);
    // struct input_event on x86_64: timeval (16 bytes), type u16, code u16, value s32
    const ev = (type: number, code: number, value: number) => {
      const buf = Buffer.alloc(24);
      buf.writeUInt16LE(type, 16);
      buf.writeUInt16LE(code, 18);
      buf.writeInt32LE(value, 20);
      return buf;
    };
    const EV_SYN = 0,
      EV_KEY = 1,
      KEY_POWER = 116,
      KEY_A = 30;
    // a key that is not the power button, and a release: nothing happens
    // one writer for the whole test (skiff-init drops an input device at EOF); non-blocking: never hangs the test
    const w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(w, Buffer.concat([ev(EV_KEY, KEY_A, 1), ev(EV_KEY, KEY_POWER, 0), ev(EV_SYN, 0, 0)]));
    await sleep(300);
    expect(b.out()).not.toMatch(/powering off/);
    expect(b.proc.exitCode).toBeNull();
    writeSync(w, Buffer.concat([ev(EV_KEY, KEY_POWER, 1), ev(EV_SYN, 0, 0)]));
    const code = await Promise.race([b.exited, sleep(15_000).then(() => 'timeout')]);
    closeSync(w);
    expect(code, b.out()).toBe(0);
    const out = b.out();
    expect(out).toMatch(/skiff-init: powering off \(power button\)/);
    expect(out).toMatch(/killing the processes left \(SIGKILL\)/);
    expect(out).toMatch(/all processes stopped/);
  });

  it('a missing or invalid config is a clear FATAL error (test mode: exit 1)', async () => {
    const missing = boot(setup(null));
    expect(await missing.exited).toBe(1);
    expect(missing.out()).toMatch(/skiff-init: FATAL: fw_cfg blob opt\/skiff\/config: .*config\/raw is missing/);
    expect(missing.out()).not.toMatch(/skiff-init: ready/);

    const bad = boot(setup({ hostname: 'skiff', shares: [{ tag: 'home' }] }));
    expect(await bad.exited).toBe(1);
    expect(bad.out()).toMatch(/FATAL: config \(opt\/skiff\/config\): shares\[0\]/);

    const type = boot(setup({ shares: [{ tag: 'home', path: '/home', type: 'nfs' }] }));
    expect(await type.exited).toBe(1);
    expect(type.out()).toMatch(
      /FATAL: config \(opt\/skiff\/config\): shares\[0\]\.type: "9p" or "virtiofs", not "nfs"/,
    );

    const json = boot(setup('{"hostname": '));
    expect(await json.exited).toBe(1);
    expect(json.out()).toMatch(/FATAL: config is not valid JSON/);
  });

  it('a share that cannot be mounted and a missing kernel module are warnings, not fatal', async () => {
    const s = setup({
      hostname: 'skiff-test',
      shares: [
        { tag: 'nosuchtag', path: '/home/someone' },
        { tag: 'nosuchfs', path: '/home/other', type: 'virtiofs' },
      ],
    });
    const list = join(s.dir, 'modules');
    // only a missing file: nothing is loaded into this host's kernel
    writeFileSync(list, '# modules\nbuiltin ext4\nkernel/drivers/nothing/skiff_no_such_module.ko\n');
    const b2 = boot(s, ['--modules-list', list], { modules: true });
    await ready(b2);
    const out = b2.out();
    expect(out).toMatch(/warning: kernel module skiff_no_such_module: .*: No such file or directory/);
    expect(out).toMatch(/kernel modules: 0 loaded, 0 already there, 1 missing, 0 failed/);
    expect(out).toMatch(/warning: share nosuchtag on .*\/home\/someone: mount 9p/);
    expect(out).toMatch(/warning: share nosuchfs on .*\/home\/other: mount virtiofs/);
    expect(existsSync(join(s.root, 'home/someone'))).toBe(true);
    expect(await stop(b2)).toBe(0);
  });

  it('configures lo and eth0 (10.0.2.15/24, default via 10.0.2.2) and the hostname in its own namespaces', async () => {
    const s = setup(
      { hostname: 'skiffnet' },
      `ip -4 -o addr show > $E.addr; ip route show > $E.route; hostname > $E.hostname; ip -o link show lo >> $E.addr`,
    );
    const b = boot(s, [], { net: true });
    await ready(b);
    await until('network dump', () => existsSync(`${s.events}.addr`) && readFileSync(`${s.events}.addr`, 'utf8'));
    await sleep(200);
    const addr = readFileSync(`${s.events}.addr`, 'utf8');
    expect(addr).toMatch(/eth0\s+inet 10\.0\.2\.15\/24/);
    expect(addr).toMatch(/lo\s+inet 127\.0\.0\.1\/8/);
    expect(readFileSync(`${s.events}.route`, 'utf8')).toMatch(/^default via 10\.0\.2\.2 dev eth0/m);
    expect(readFileSync(`${s.events}.hostname`, 'utf8').trim()).toBe('skiffnet');
    expect(b.out()).toMatch(/skiff-init: network: lo up, eth0 10\.0\.2\.15\/24, default route via 10\.0\.2\.2/);
    expect(await stop(b)).toBe(0);
  });

  it('formats the data disk on first boot only, mounts it on /var/lib/skiff and unmounts it at power-off', async (ctx) => {
    const probe = spawnSync('losetup', ['-f'], { encoding: 'utf8' });
    if (probe.status !== 0) ctx.skip(); // no loop devices on this machine (the VM tier covers the real disk)
    const dir = mkdtempSync(join(tmpdir(), 'skiff-init-disk-'));
    dirs.push(dir);
    const image = join(dir, 'data.img');
    writeFileSync(image, '');
    expect(spawnSync('truncate', ['-s', '64M', image]).status).toBe(0);
    const lo = spawnSync('losetup', ['-f', '--show', image], { encoding: 'utf8' });
    expect(lo.status, lo.stderr).toBe(0);
    const dev = lo.stdout.trim();
    try {
      // the agent records how the disk is mounted, keeps a file on it, and reads what an earlier boot left
      const agent = `grep " $2 " /proc/self/mountinfo > $E.mount; cat $2/kept 2>/dev/null > $E.kept; echo boot >> $2/kept`;
      const s = setup({ hostname: 'skiff-test', dataDevice: dev }, agent);
      const first = boot(s);
      await ready(first);
      expect(first.out()).toMatch(new RegExp(`data disk ${dev}: no ext4 file system: formatting it \\(first boot\\)`));
      expect(first.out()).toMatch(new RegExp(`data disk ${dev}: formatted in \\d+ ms`));
      await until('mount info', () => existsSync(`${s.events}.mount`) && readFileSync(`${s.events}.mount`, 'utf8'));
      const mount = readFileSync(`${s.events}.mount`, 'utf8');
      expect(mount).toMatch(new RegExp(`${s.root}/var/lib/skiff \\S*noatime.* - ext4 ${dev} `));
      expect(readFileSync(`${s.events}.kept`, 'utf8')).toBe('');
      expect(await stop(first)).toBe(0);
      expect(first.out()).toMatch(new RegExp(`unmounted ${s.root}/var/lib/skiff`));
      const blkid = spawnSync('blkid', ['-o', 'export', dev], { encoding: 'utf8' });
      expect(blkid.stdout).toMatch(/^LABEL=skiff-data$/m);
      expect(blkid.stdout).toMatch(/^TYPE=ext4$/m);

      // second boot: the ext4 magic is there, so no mkfs, and the data is kept
      rmSync(`${s.events}.mount`);
      const second = boot(s);
      await ready(second);
      await until('mount info', () => existsSync(`${s.events}.mount`) && readFileSync(`${s.events}.mount`, 'utf8'));
      expect(second.out()).not.toMatch(/formatting/);
      expect(second.out()).toMatch(new RegExp(`data disk ${dev} mounted on ${s.root}/var/lib/skiff`));
      expect(readFileSync(`${s.events}.kept`, 'utf8')).toBe('boot\n');
      expect(await stop(second)).toBe(0);
    } finally {
      spawnSync('losetup', ['-d', dev]);
    }
  });
});
