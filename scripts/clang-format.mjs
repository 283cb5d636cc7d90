// Formats or checks every C and C++ file under native/ (not native/build/) with clang-format and native/.clang-format.
// Usage: node scripts/clang-format.mjs --check | --write
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2];
if (mode !== '--check' && mode !== '--write') {
  console.error('usage: node scripts/clang-format.mjs --check | --write');
  process.exit(2);
}

function sources(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== join(root, 'native', 'build')) out.push(...sources(path));
    } else if (/\.(c|h|cc)$/.test(entry.name)) {
      out.push(path);
    }
  }
  return out;
}

const files = sources(join(root, 'native')).sort();
const version = spawnSync('clang-format', ['--version'], { encoding: 'utf8' });
if (version.error) {
  console.error('clang-format: not installed (apt-get install clang-format, or run `sudo bash .ci/install-deps`)');
  process.exit(1);
}
if (files.length === 0) process.exit(0);
const args = mode === '--check' ? ['--dry-run', '--Werror', '--style=file'] : ['-i', '--style=file'];
const r = spawnSync('clang-format', [...args, ...files], { cwd: root, encoding: 'utf8' });
if (r.status !== 0) {
  // --dry-run prints one warning per differing line: show the files and a few of the lines.
  const text = `${r.stdout}${r.stderr}`;
  const bad = [...new Set([...text.matchAll(/^(\S+?):\d+:\d+: (?:error|warning)/gm)].map((m) => relative(root, m[1])))];
  console.error(text.split('\n').slice(0, 40).join('\n'));
  if (bad.length > 0) {
    console.error(`clang-format: ${bad.length} file(s) not formatted: ${bad.join(' ')}`);
    console.error('run `npm run format` (or `node scripts/clang-format.mjs --write`) to fix them');
  }
  process.exit(1);
}
if (mode === '--check') console.log(`clang-format: ${files.length} C/C++ files formatted`);
