// Bundles each TS entry point into one executable JS file in dist/bin (esbuild), and copies proto/ to dist/proto
// so the bundles find their .proto files at run time (vm-agent/common/grpc.ts looks beside dist/bin).
// Add skiffd, skiff-agent and the skiff CLI to `entries` as they are written.
import { chmodSync, cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** [source entry, output name in dist/bin] */
const entries = [
  ['vm-agent/supervisor/main.ts', 'skiff-supervisor'],
  ['vm-agent/daemon/main.ts', 'skiffd'],
  ['electron/hostagent/main.ts', 'skiff-hostagent'],
  ['vm-agent/agent/main.ts', 'skiff-agent'],
  ['electron/cli/main.ts', 'skiff'],
];

// The bundles are ESM; bundled CommonJS dependencies (grpc-js) call require() for Node's built-ins.
const banner = [
  '#!/usr/bin/env node',
  "import { createRequire as __skiffCreateRequire } from 'node:module';",
  'const require = __skiffCreateRequire(import.meta.url);',
  // ssh2 finds files by __dirname, which ESM lacks.
  "import { dirname as __skiffDirname } from 'node:path';",
  "import { fileURLToPath as __skiffFileURLToPath } from 'node:url';",
  'const __filename = __skiffFileURLToPath(import.meta.url);',
  'const __dirname = __skiffDirname(__filename);',
].join('\n');

mkdirSync(join(root, 'dist', 'bin'), { recursive: true });
rmSync(join(root, 'dist', 'proto'), { recursive: true, force: true });
cpSync(join(root, 'proto'), join(root, 'dist', 'proto'), { recursive: true });

const only = process.argv.slice(2);
for (const [entry, name] of entries) {
  if (only.length > 0 && !only.includes(name)) continue;
  const src = join(root, entry);
  if (!existsSync(src)) throw new Error(`build-ts: ${entry} is missing`);
  const outfile = join(root, 'dist', 'bin', name);
  const t0 = Date.now();
  await build({
    entryPoints: [src],
    outfile,
    bundle: true,
    // ssh2's optional native speed-up (its install script is not allowed here): required at run time inside a
    // try, so leaving it out of the bundle just means ssh2's pure-JS path.
    external: ['cpu-features'],
    platform: 'node',
    target: 'node20',
    format: 'esm',
    banner: { js: banner },
    sourcemap: true,
    sourcesContent: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
  console.log(`build-ts: dist/bin/${name} (${Date.now() - t0} ms)`);
}
