// Builds native/binding.gyp with node-gyp (configure once, then incremental) and copies the executables
// to dist/bin/ and the addon to dist/native/.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
const require = createRequire(import.meta.url);

function nodeGyp() {
  // npm ships node-gyp; npm run puts it on PATH, but resolve it explicitly so the script also runs bare.
  const candidates = [
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ];
  try {
    candidates.unshift(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not a dependency: use npm's */
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error('node-gyp not found: install npm (it ships node-gyp) or `npm i -D node-gyp`');
  return found;
}

const gyp = nodeGyp();
const run = (...args) => execFileSync(process.execPath, [gyp, ...args], { cwd: native, stdio: 'inherit' });
// binding.gyp lists runtime/*.c and shim/*.c when configured: configure again whenever those lists or
// binding.gyp itself change.
const sources = ['runtime', 'shim']
  .flatMap((dir) =>
    readdirSync(join(native, dir))
      .filter((f) => f.endsWith('.c'))
      .map((f) => `${dir}/${f}`),
  )
  .sort()
  .concat(readFileSync(join(native, 'binding.gyp'), 'utf8'))
  .join('\n');
const stamp = join(native, 'build', 'sources.txt');
const stale = !existsSync(stamp) || readFileSync(stamp, 'utf8') !== sources;
if (stale || process.argv.includes('--rebuild')) {
  run('configure');
  writeFileSync(stamp, sources);
}
run('build', '-j', 'max');

const release = join(native, 'build', 'Release');
mkdirSync(join(root, 'dist', 'bin'), { recursive: true });
mkdirSync(join(root, 'dist', 'native'), { recursive: true });
/** Copy then rename: a program that is running (the shim of a live container) is replaced, never written over. */
function install(src, dst) {
  const tmp = `${dst}.tmp-${process.pid}`;
  copyFileSync(src, tmp);
  renameSync(tmp, dst);
}
for (const program of ['skiff-runtime', 'skiff-shim', 'skiff-docker-init', 'skiff-init'])
  install(join(release, program), join(root, 'dist', 'bin', program));
install(join(release, 'skiff_native.node'), join(root, 'dist', 'native', 'skiff_native.node'));
