// `npm run bench -- <name> [options]` runs bench/<name>.ts with tsx. bench/harness.ts holds the shared harness;
// procs.ts and daemons.ts are helpers the benchmarks share, not benchmarks.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const benches = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && !['harness.ts', 'procs.ts', 'daemons.ts'].includes(f))
  .map((f) => f.slice(0, -3));
const [name, ...rest] = process.argv.slice(2);

if (!name || name === '--help' || name === '-h') {
  console.log(`usage: npm run bench -- <name> [--n N] [--warmup N] [--only a,b] [--json]
benchmarks: ${benches.join(', ')}
Each runs Skiff and its peers alternately in one run and prints medians, min/max and ratios.`);
  process.exit(name ? 0 : 2);
}
const file = join(root, 'bench', `${name}.ts`);
if (!benches.includes(name) || !existsSync(file)) {
  console.error(`bench: no benchmark "${name}" (have: ${benches.join(', ')})`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { cwd: root, stdio: 'inherit' });
if (r.error) console.error(`bench: ${r.error.message}`);
process.exit(r.status ?? 1);
