// `npm test`: build, lint, then every Vitest project (unit, native, ... see vitest.config.ts), and a count.
// The last line printed is always `N passed, N failed`. A failed build or lint counts as one failure each (and the
// tests still run, so that one run shows everything that is wrong); skipped tests are reported on an earlier line.
// Exit status: 0 only when nothing failed and at least one test passed.
// Options: --no-build, --no-lint (for a quick loop), and anything after `--` goes to vitest.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const dashdash = argv.indexOf('--');
const own = dashdash === -1 ? argv : argv.slice(0, dashdash);
const vitestArgs = dashdash === -1 ? [] : argv.slice(dashdash + 1);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const tmp = mkdtempSync(join(tmpdir(), 'skiff-test-'));
const failures = [];
/** Runs a step with its output in a file: one line when it passes, the last lines of its output when it fails. */
function step(name, cmd, args) {
  const t0 = Date.now();
  const logFile = join(tmp, `${name}.log`);
  const fd = openSync(logFile, 'w');
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.status === 0) {
    console.log(`== ${name}: ok (${secs} s)`);
    return;
  }
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n');
  console.log(`== ${name}: FAILED (${why}, ${secs} s): ${[cmd, ...args].join(' ')}`);
  if (lines.length > 120) console.log(`   ... (${lines.length - 120} earlier lines left out)`);
  console.log(lines.slice(-120).join('\n'));
  failures.push(`${name} (${why})`);
}

if (process.getuid?.() !== 0) {
  console.log('note: not root: the tiers that need root (native, and the addon unit tests) will FAIL, not skip');
}
if (!own.includes('--no-build')) {
  step('build', npm, ['run', '--silent', 'build']);
  // The VM image (cached by the hash of its inputs; minutes the first time: debootstrap), for the vm tier and the
  // host agent's and CLI's tests with a real VM.
  step('vm image', npm, ['run', '--silent', 'build:vm-image']);
}
if (!own.includes('--no-lint')) step('lint', npm, ['run', '--silent', 'lint']);

const jsonFile = join(tmp, 'vitest.json');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
console.log('\n== tests: vitest run (all projects)');
const run = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${jsonFile}`, ...vitestArgs],
  { cwd: root, stdio: 'inherit' },
);

// Failures that are not failed tests (build, lint, a file that could not run) were pushed to `failures`: each
// counts as one.
let passed = 0;
let failedTests = 0;
let skipped = 0;
let report = null;
try {
  report = JSON.parse(readFileSync(jsonFile, 'utf8'));
} catch (e) {
  failures.push(`vitest wrote no report (${e.code ?? e.message}; exit ${run.status ?? run.signal})`);
}
rmSync(tmp, { recursive: true, force: true });

if (report) {
  passed = report.numPassedTests;
  failedTests = report.numFailedTests;
  skipped = report.numPendingTests + report.numTodoTests;
  // A file that failed before its tests ran (an import error; a setup file that refused because this is not root)
  // has no failed test of its own: count it as one failure so that it cannot vanish from the count.
  for (const file of report.testResults) {
    const failedHere = file.assertionResults.filter((a) => a.status === 'failed').length;
    if (file.status === 'failed' && failedHere === 0) {
      const first = (file.message || 'failed before any test ran').trim().split('\n')[0];
      failures.push(`${relative(root, file.name)}: ${first}`);
    }
  }
  if (run.status !== 0 && failedTests === 0 && failures.length === 0) {
    failures.push(`vitest exited ${run.status ?? run.signal} with no failed test`);
  }
}
if (passed + failedTests === 0) failures.push('no test ran');

const failed = failedTests + failures.length;
console.log('');
if (failures.length > 0) {
  console.log(`${failures.length} failure(s) besides failed tests, each counted as one below:`);
  for (const f of failures) console.log(`  - ${f}`);
}
console.log(`${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
