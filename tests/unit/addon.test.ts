// The native addon (dist/native/skiff_native.node, built by `npm run build`). Mounting needs root: each case runs
// node in a child process inside a private mount namespace (`unshare -m --propagation private`), so nothing it
// mounts reaches the host. Not root: these tests fail, they do not skip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const addonPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/native/skiff_native.node');
let dir = '';

/** Runs `body` (CommonJS, with `addon`, `fs` and `dir` in scope) in a new private mount namespace; returns its
 *  last stdout line parsed as JSON. */
function inMountNs(body: string): Record<string, unknown> {
  // Checked in each test, so that each one fails (and says why) rather than being skipped.
  if (process.getuid?.() !== 0) throw new Error('the addon tests need root (mount, unshare): run them as root');
  if (!existsSync(addonPath)) throw new Error(`${addonPath} missing: run \`npm run build\` first`);
  const script = `
    const addon = require(process.env.ADDON);
    const fs = require('node:fs');
    const dir = process.env.DIR;
    const out = (() => { ${body} })();
    process.stdout.write(JSON.stringify(out) + '\\n');
  `;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', process.execPath, '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ADDON: addonPath, DIR: dir },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

function mountLine(mountinfo: string, target: string): string | undefined {
  // mountinfo field 5 is the mount point (spaces escaped as \040).
  return mountinfo.split('\n').find((l) => l.split(' ')[4] === target);
}

describe('skiff_native addon', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-addon-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exports mount, umount and the mount flags', () => {
    const out = inMountNs(`return { mount: typeof addon.mount, umount: typeof addon.umount, flags: addon.flags };`);
    expect(out.mount).toBe('function');
    expect(out.umount).toBe('function');
    expect(out.flags).toMatchObject({ MS_RDONLY: 1, MS_REMOUNT: 32, MS_BIND: 4096, MS_REC: 16384, MNT_DETACH: 2 });
  });

  it('mounts a tmpfs that shows in /proc/self/mountinfo, in the namespace only', () => {
    const out = inMountNs(`
      addon.mount('skiff-test', dir, 'tmpfs', 0, 'size=1m,mode=0750');
      fs.writeFileSync(dir + '/inside', 'x');
      const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
      const mode = fs.statSync(dir).mode & 0o7777;
      addon.umount(dir);
      const after = fs.readFileSync('/proc/self/mountinfo', 'utf8');
      return { mountinfo, mode, after, insideAfter: fs.existsSync(dir + '/inside') };
    `);
    const line = mountLine(out.mountinfo as string, dir);
    expect(line, `no mount at ${dir} in the child's mountinfo`).toBeDefined();
    expect(line).toMatch(/ - tmpfs skiff-test rw,.*size=1024k/);
    expect(out.mode).toBe(0o750);
    // umount removed it, and the file written on the tmpfs went with it.
    expect(mountLine(out.after as string, dir)).toBeUndefined();
    expect(out.insideAfter).toBe(false);
    // The host's namespace never saw it.
    expect(mountLine(readFileSync('/proc/self/mountinfo', 'utf8'), dir)).toBeUndefined();
    expect(existsSync(join(dir, 'inside'))).toBe(false);
  });

  it('remounts read-only with MS_REMOUNT | MS_RDONLY, after which writes fail with EROFS', () => {
    const out = inMountNs(`
      addon.mount('skiff-test', dir, 'tmpfs', 0, 'size=1m');
      addon.mount('', dir, '', addon.flags.MS_REMOUNT | addon.flags.MS_RDONLY);
      let code = null;
      try { fs.writeFileSync(dir + '/f', 'x'); } catch (e) { code = e.code; }
      return { code, mountinfo: fs.readFileSync('/proc/self/mountinfo', 'utf8') };
    `);
    expect(out.code).toBe('EROFS');
    expect(mountLine(out.mountinfo as string, dir)?.split(' ')[5]).toMatch(/^ro\b/);
  });

  it('a missing mount point gives an error with errno ENOENT and the path in the message', () => {
    const out = inMountNs(`
      const bad = dir + '/no/such/dir';
      try { addon.mount('tmpfs', bad, 'tmpfs', 0); return { threw: false }; }
      catch (e) { return { threw: true, errno: e.errno, syscall: e.syscall, message: e.message, bad }; }
    `);
    expect(out.threw).toBe(true);
    expect(out.errno).toBe(constants.errno.ENOENT);
    expect(out.syscall).toBe('mount');
    expect(out.message).toContain(out.bad as string);
    expect(out.message).toMatch(/No such file or directory/);
  });

  it('umount of a path that is not a mount point gives EINVAL with the path', () => {
    const out = inMountNs(`
      try { addon.umount(dir); return { threw: false }; }
      catch (e) { return { threw: true, errno: e.errno, message: e.message }; }
    `);
    expect(out).toMatchObject({ threw: true, errno: constants.errno.EINVAL });
    expect(out.message).toContain(dir);
  });

  it('throws a TypeError on wrong arguments', () => {
    const out = inMountNs(`
      try { addon.mount(); return { threw: false }; }
      catch (e) { return { threw: true, type: e.constructor.name, message: e.message }; }
    `);
    expect(out).toMatchObject({ threw: true, type: 'TypeError' });
    expect(out.message).toMatch(/mount\(source, target/);
  });
});
