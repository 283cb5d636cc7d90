// skiff: the command line of Skiff. `skiff <command> [--vm NAME]` talks skiff.host.v1 to the host agent on
// ~/.skiff/<vm>/hostagent.sock ($SKIFF_HOME replaces ~/.skiff); `skiff start` launches the host agent when none
// runs. See docs/cli.md. Exit codes: 0 done, 1 failed, 2 bad usage, 3 Skiff is not running.
import { parseArgs, UsageError } from './args.js';
import { CliError } from './client.js';
import { runCommand } from './commands.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`skiff: ${err.message} (see \`skiff --help\`)\n`);
      return 2;
    }
    throw err;
  }
  try {
    return await runCommand(parsed);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`skiff: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`skiff: ${String(err)}\n`);
    process.exit(1);
  },
);
