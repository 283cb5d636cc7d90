// skiffd with a real distribution image (issue 4: "test images made from a debootstrapped Debian"): a minimal
// Debian bookworm rootfs made by debootstrap (once per machine, cached under the test cache), `docker import`ed as
// debian:bookworm, then driven with the real docker CLI: /etc/debian_version, -u resolved from the image's
// /etc/passwd, dpkg, bash as the default command, and a long-running container with exec, cp both ways and diff.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../native/helpers.js';
import { DaemonHarness, SKIFFD, startDaemon } from './daemon-harness.js';

const SUITE = 'bookworm';
const CACHE = join(tmpdir(), 'skiff-test-cache');
const ROOTFS_TAR = join(CACHE, 'debian-rootfs.tar');
/** Written after the tar is complete: what the test expects of the image (from the rootfs it was made of). */
const MARKER = join(CACHE, 'debian-rootfs.complete');

interface RootfsFacts {
  mirror: string;
  debianVersion: string;
  /** Packages dpkg records as installed (Status: install ok installed). */
  packages: number;
  seconds: number;
}

let d: DaemonHarness;
let facts: RootfsFacts;
let scratch: string;

async function docker(...args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * The Debian mirror this machine's apt uses for the suite (deb822 .sources or one-line .list files), so that
 * debootstrap goes where apt already goes; SKIFF_DEBIAN_MIRROR overrides it.
 */
function debianMirror(): string {
  if (process.env.SKIFF_DEBIAN_MIRROR) return process.env.SKIFF_DEBIAN_MIRROR.replace(/\/+$/, '');
  const files = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) files.push(...readdirSync(dir).map((f) => join(dir, f)));
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) =>
          stanza
            .split('\n')
            .filter((l) => !l.startsWith('#'))
            .find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
            ?.slice(name.length + 1)
            .trim()
            .split(/\s+/) ?? [];
        if (field('Enabled')[0] === 'no') continue;
        if (field('Types').includes('deb') && field('Suites').includes(SUITE) && field('URIs')[0])
          return field('URIs')[0]!.replace(/\/+$/, '');
      }
    } else if (f.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s/.exec(line);
        if (m && m[2] === SUITE) return m[1]!.replace(/\/+$/, '');
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

function sh(cmd: string, args: string[], what: string, timeoutMs: number): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0)
    throw new Error(
      `${what}: ${cmd} exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ''}\n${r.stderr}`,
    );
  return r.stdout;
}

/** The cached rootfs tar, made with debootstrap when missing. */
function debianRootfs(): { tar: string; facts: RootfsFacts } {
  if (existsSync(MARKER) && existsSync(ROOTFS_TAR))
    return { tar: ROOTFS_TAR, facts: JSON.parse(readFileSync(MARKER, 'utf8')) as RootfsFacts };
  rmSync(MARKER, { force: true });
  if (spawnSync('debootstrap', ['--version']).error)
    throw new Error('debootstrap is not installed: run .ci/install-deps');
  const mirror = debianMirror();
  // debootstrap's own downloader, so that a proxy it would use is used here too.
  const probe = spawnSync(
    'wget',
    ['-q', '-T', '20', '-t', '2', '-O', '/dev/null', `${mirror}/dists/${SUITE}/Release`],
    {
      encoding: 'utf8',
      timeout: 90_000,
    },
  );
  if (probe.status !== 0)
    throw new Error(
      `the Debian mirror ${mirror} is unreachable (wget ${mirror}/dists/${SUITE}/Release exited ` +
        `${probe.status ?? probe.signal}): debootstrap needs it once per machine to make ` +
        `the Debian test image (${ROOTFS_TAR}); SKIFF_DEBIAN_MIRROR names another mirror`,
    );
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, 'debootstrap-'));
  const started = Date.now();
  try {
    const root = join(work, 'root');
    // In a mount namespace of its own: the /proc and /sys debootstrap mounts in the target cannot outlive it.
    const r = spawnSync(
      'unshare',
      ['-m', '--propagation', 'private', 'debootstrap', '--variant=minbase', SUITE, root, mirror],
      { encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 64 << 20 },
    );
    if (r.status !== 0) {
      const logFile = join(root, 'debootstrap', 'debootstrap.log');
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '';
      throw new Error(
        `debootstrap --variant=minbase ${SUITE} from ${mirror} failed (${r.status ?? r.signal}):\n` +
          `${r.stdout.split('\n').slice(-15).join('\n')}\n${r.stderr}\n${log}`,
      );
    }
    const status = readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8');
    const packages = (status.match(/^Status: install ok installed$/gm) ?? []).length;
    const debianVersion = readFileSync(join(root, 'etc/debian_version'), 'utf8').trim();
    // As distribution images are made: no device nodes (the runtime makes /dev), no downloaded .debs or lists.
    const tmp = `${ROOTFS_TAR}.${process.pid}`;
    sh(
      'tar',
      [
        '--numeric-owner',
        '--xattrs',
        '--exclude=./dev/*',
        '--exclude=./proc/*',
        '--exclude=./sys/*',
        '--exclude=./var/cache/apt/archives/*.deb',
        '--exclude=./var/lib/apt/lists/*',
        '-C',
        root,
        '-cf',
        tmp,
        '.',
      ],
      'tar of the Debian rootfs',
      5 * 60_000,
    );
    renameSync(tmp, ROOTFS_TAR);
    const made: RootfsFacts = { mirror, debianVersion, packages, seconds: Math.round((Date.now() - started) / 1000) };
    writeFileSync(MARKER, JSON.stringify(made));
    return { tar: ROOTFS_TAR, facts: made };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  requireRoot();
  if (!existsSync(SKIFFD)) throw new Error(`${SKIFFD} is missing: run npm run build first`);
  const rootfs = debianRootfs();
  facts = rootfs.facts;
  scratch = mkdtempSync(join(tmpdir(), 'skiff-debian-'));
  d = await startDaemon();
  const out = await docker('import', '--change', 'CMD ["bash"]', rootfs.tar, 'debian:bookworm');
  expect(out.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
}, 20 * 60_000);

afterAll(async () => {
  await d?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('a debootstrapped Debian image', () => {
  it('is listed and inspected with CMD bash and one layer', async () => {
    const images = await docker('images', '--format', '{{.Repository}}:{{.Tag}}');
    expect(images.split('\n')).toContain('debian:bookworm');
    const [img] = JSON.parse(await docker('image', 'inspect', 'debian:bookworm'));
    expect(img.Config.Cmd).toEqual(['bash']);
    expect(img.Os).toBe('linux');
    expect(img.RootFS.Layers).toHaveLength(1);
    expect(img.Size).toBeGreaterThan(50 << 20);
  });

  it('run --rm cat /etc/debian_version: 12.x', async () => {
    const v = (await docker('run', '--rm', 'debian:bookworm', 'cat', '/etc/debian_version')).trim();
    expect(v).toMatch(/^12\.\d+$/);
    expect(v).toBe(facts.debianVersion);
  });

  it('-u nobody resolves uid and gid from the image /etc/passwd and /etc/group', async () => {
    expect((await docker('run', '--rm', '-u', 'nobody', 'debian:bookworm', 'id')).trim()).toBe(
      'uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)',
    );
    // user:group, both by name from the image's files.
    expect((await docker('run', '--rm', '-u', 'daemon:tty', 'debian:bookworm', 'id', '-u', '-n')).trim()).toBe(
      'daemon',
    );
    expect((await docker('run', '--rm', '-u', 'daemon:tty', 'debian:bookworm', 'id', '-g', '-n')).trim()).toBe('tty');
  });

  it('dpkg -l lists every installed package', async () => {
    const out = await docker('run', '--rm', 'debian:bookworm', 'bash', '-c', 'dpkg -l | wc -l; dpkg -l | grep -c ^ii');
    const [lines, installed] = out.trim().split('\n').map(Number);
    expect(installed).toBe(facts.packages);
    expect(installed).toBeGreaterThan(50);
    expect(lines).toBeGreaterThan(installed!); // dpkg -l's header lines
    const names = await docker('run', '--rm', 'debian:bookworm', 'dpkg-query', '-W', '-f', '${Package}\n');
    expect(names.split('\n')).toEqual(expect.arrayContaining(['apt', 'bash', 'base-files', 'dpkg', 'coreutils']));
  });

  it("bash -c 'echo $BASH_VERSION'; the default command is bash reading stdin", async () => {
    expect((await docker('run', '--rm', 'debian:bookworm', 'bash', '-c', 'echo $BASH_VERSION')).trim()).toMatch(
      /^5\.2\.\d+/,
    );
    const r = await d.docker(['run', '--rm', '-i', 'debian:bookworm'], {
      input: 'echo "bash $BASH_VERSION as $(id -un) in $PWD"; exit 7\n',
    });
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/^bash 5\.2\.\d+\S* as root in \/\n$/);
  });

  describe('a long-running container', () => {
    let id: string;
    beforeAll(async () => {
      id = (await docker('run', '-d', '--name', 'deb', 'debian:bookworm', 'sleep', '300')).trim();
    });
    afterAll(async () => {
      await d.docker(['rm', '-f', 'deb']);
    });

    it('runs; exec sees its process, the image environment and users', async () => {
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      const ps = await docker('ps', '--filter', 'name=deb', '--format', '{{.Image}} {{.Status}} {{.Command}}');
      expect(ps.trim()).toMatch(/^debian:bookworm Up .* "sleep 300"$/);
      expect((await docker('exec', 'deb', 'cat', '/proc/1/cmdline')).split('\0').filter(Boolean)).toEqual([
        'sleep',
        '300',
      ]);
      expect((await docker('exec', '-u', 'nobody', '-w', '/var/lib', 'deb', 'bash', '-c', 'id -un; pwd')).trim()).toBe(
        'nobody\n/var/lib',
      );
      expect((await docker('exec', 'deb', 'bash', '-c', 'echo $PATH; grep ^ID= /etc/os-release')).trim()).toBe(
        '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nID=debian',
      );
      const r = await d.docker(['exec', 'deb', 'bash', '-c', 'echo out; echo err >&2; exit 4']);
      expect(r).toEqual({ code: 4, stdout: 'out\n', stderr: 'err\n' });
    });

    it('docker cp copies a file and a directory in, and out', async () => {
      const inFile = join(scratch, 'greeting.txt');
      writeFileSync(inFile, 'hello from the host\n');
      await docker('cp', inFile, 'deb:/tmp/greeting.txt');
      expect(await docker('exec', 'deb', 'cat', '/tmp/greeting.txt')).toBe('hello from the host\n');
      const inDir = join(scratch, 'conf');
      mkdirSync(join(inDir, 'sub'), { recursive: true });
      writeFileSync(join(inDir, 'sub', 'a.conf'), 'a=1\n');
      await docker('cp', inDir, 'deb:/root/');
      expect(await docker('exec', 'deb', 'cat', '/root/conf/sub/a.conf')).toBe('a=1\n');

      const outFile = join(scratch, 'os-release');
      // /etc/os-release is a symlink to ../usr/lib/os-release: -L copies what it points to.
      await docker('cp', '-L', 'deb:/etc/os-release', outFile);
      expect(readFileSync(outFile, 'utf8')).toMatch(/^VERSION_CODENAME=bookworm$/m);
      // A file the container wrote comes back as written; a directory with it.
      await docker(
        'exec',
        'deb',
        'bash',
        '-c',
        'mkdir -p /srv/out && seq 1 1000 > /srv/out/numbers && chmod 640 /srv/out/numbers',
      );
      await docker('cp', 'deb:/srv/out', join(scratch, 'out'));
      const numbers = join(scratch, 'out', 'numbers');
      expect(readFileSync(numbers, 'utf8').split('\n').filter(Boolean)).toHaveLength(1000);
      expect(statSync(numbers).mode & 0o777).toBe(0o640);
      // Through stdout as a tar.
      const tar = await d.docker(['cp', 'deb:/etc/debian_version', '-']);
      expect(tar.code).toBe(0);
      expect(tar.stdout).toContain('debian_version');
      expect(tar.stdout).toContain(facts.debianVersion);
    });

    it('docker diff lists what the container added, changed and deleted', async () => {
      await docker('exec', 'deb', 'bash', '-c', 'rm /etc/motd && echo x >> /etc/issue && touch /root/made-by-exec');
      // Mount points the image lacks (here /etc/hosts) are made in the writable layer; like dockerd (which keeps
      // them in an init layer), diff does not show them.
      const lines = (await docker('diff', 'deb')).trim().split('\n');
      expect(lines).not.toContain('A /etc/hosts');
      expect(lines).toEqual(
        expect.arrayContaining([
          'C /etc',
          'D /etc/motd',
          'C /etc/issue',
          'C /root',
          'A /root/made-by-exec',
          'A /root/conf',
          'A /root/conf/sub/a.conf',
          'C /tmp',
          'A /tmp/greeting.txt',
          'C /srv',
          'A /srv/out',
          'A /srv/out/numbers',
        ]),
      );
      for (const l of lines) expect(l).toMatch(/^[ACD] \//);
      // Nothing the image already had, unchanged, shows up.
      expect(lines.some((l) => l.startsWith('C /usr') || l.startsWith('A /usr'))).toBe(false);
    });

    it('stop: sleep as PID 1 ignores SIGTERM and is killed after the timeout', async () => {
      await docker('stop', '-t', '1', 'deb');
      const [c] = JSON.parse(await docker('inspect', 'deb'));
      expect(c.State.Status).toBe('exited');
      expect(c.State.ExitCode).toBe(137);
    });
  });
});
