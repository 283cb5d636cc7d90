// `skiff <command> [options]`: the argument parser (pure, unit-tested). Global options go anywhere before `--`:
// --vm NAME (default "default"), -h/--help, --version. Each command takes its own flags.

export const COMMANDS = [
  'start',
  'stop',
  'restart',
  'status',
  'reset',
  'shell',
  'logs',
  'ssh-config',
  'context',
  'docker-env',
  'help',
  'version',
] as const;
export type Command = (typeof COMMANDS)[number];

export type Shell = 'sh' | 'fish' | 'powershell';

export interface Parsed {
  command: Command;
  vm: string;
  /** status --json */
  json: boolean;
  /** reset -f/--force */
  force: boolean;
  /** logs -f/--follow */
  follow: boolean;
  /** logs -n/--lines N */
  lines: number;
  /** context --use */
  use: boolean;
  /** stop --quit: also end the host agent */
  quit: boolean;
  /** docker-env --shell */
  shell: Shell;
  /** shell -- CMD…: run a command instead of an interactive shell */
  rest: string[];
  /** help: the command asked about */
  topic?: Command;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Which flags each command accepts (besides the global ones). */
const FLAGS: Record<Command, string[]> = {
  start: [],
  stop: ['--quit'],
  restart: [],
  status: ['--json'],
  reset: ['--force', '-f'],
  shell: [],
  logs: ['--follow', '-f', '--lines', '-n'],
  'ssh-config': [],
  context: ['--use'],
  'docker-env': ['--shell'],
  help: [],
  version: [],
};

const SHELLS: Record<string, Shell> = {
  sh: 'sh',
  bash: 'sh',
  zsh: 'sh',
  posix: 'sh',
  fish: 'fish',
  powershell: 'powershell',
  pwsh: 'powershell',
};

function isCommand(s: string): s is Command {
  return (COMMANDS as readonly string[]).includes(s);
}

export function parseArgs(argv: string[]): Parsed {
  const out: Parsed = {
    command: 'help',
    vm: process.env.SKIFF_VM || 'default',
    json: false,
    force: false,
    follow: false,
    lines: 200,
    use: false,
    quit: false,
    shell: 'sh',
    rest: [],
  };
  let command: Command | undefined;
  let wantHelp = false;
  const flags: string[] = [];
  const value = (i: number, flag: string): string => {
    const v = argv[i];
    if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i] as string;
    let inline: string | undefined;
    if (a === '--') {
      out.rest = argv.slice(i + 1);
      break;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const take = (): string => (inline !== undefined ? inline : value(++i, a));
    if (a === '--vm') out.vm = take();
    else if (a === '-h' || a === '--help') wantHelp = true;
    else if (a === '--version' || a === '-v') command ??= 'version';
    else if (a.startsWith('-')) {
      flags.push(a);
      if (a === '--json') out.json = true;
      else if (a === '--force') out.force = true;
      else if (a === '--follow') out.follow = true;
      else if (a === '-f') {
        // resolved below: reset -f is --force, logs -f is --follow (as in tail and docker logs)
      } else if (a === '--lines' || a === '-n') {
        const v = take();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1) throw new UsageError(`${a} needs a number of lines (1 or more), not "${v}"`);
        out.lines = n;
      } else if (a === '--use') out.use = true;
      else if (a === '--quit') out.quit = true;
      else if (a === '--shell') {
        const v = take();
        const s = SHELLS[v.toLowerCase()];
        if (!s) throw new UsageError(`--shell must be sh, bash, zsh, fish or powershell, not "${v}"`);
        out.shell = s;
      } else throw new UsageError(`unknown option ${a}`);
      if (inline !== undefined && !['--vm', '--lines', '--shell'].includes(a))
        throw new UsageError(`${a} takes no value`);
    } else if (command === undefined) {
      if (!isCommand(a)) throw new UsageError(`unknown command "${a}"`);
      command = a;
    } else if (command === 'help' && out.topic === undefined && isCommand(a)) out.topic = a;
    else if (command === 'shell') {
      // `skiff shell uname -a` runs a command, as `skiff shell -- uname -a` does
      out.rest = argv.slice(i);
      break;
    } else throw new UsageError(`unexpected argument "${a}" for ${command}`);
  }
  if (wantHelp) {
    out.topic = command && command !== 'help' ? command : out.topic;
    out.command = 'help';
  } else out.command = command ?? 'help';
  if (flags.includes('-f')) {
    if (out.command === 'logs') out.follow = true;
    else out.force = true;
  }
  if (out.command !== 'help') {
    const allowed = FLAGS[out.command];
    for (const f of flags) if (!allowed.includes(f)) throw new UsageError(`${out.command} has no option ${f}`);
    if (out.rest.length > 0 && out.command !== 'shell')
      throw new UsageError(`${out.command} takes no arguments after --`);
  }
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(out.vm))
    throw new UsageError(`invalid VM name "${out.vm}": 1-32 of a-z 0-9 _ -, starting with a letter or digit`);
  return out;
}

const USAGE: Record<Command, string> = {
  start: 'start                 start the VM (and its host agent), showing the progress',
  stop: 'stop [--quit]         stop the VM cleanly; --quit also ends the host agent',
  restart: 'restart               stop, then start the VM',
  status: 'status [--json]       the VM state, accelerator, sockets, forwarded ports and warnings',
  reset: 'reset [-f|--force]    factory reset: delete the data disk (images, containers, volumes) and keys',
  shell: 'shell [-- CMD…]       an interactive shell in the VM as root (or run CMD)',
  logs: 'logs [-n N] [-f]      the VM console, skiff-agent and host agent logs (-f: follow the host files)',
  'ssh-config': 'ssh-config            print a Host block for ~/.ssh/config (`ssh skiff-<vm>`)',
  context: 'context [--use]       create/update the docker context `skiff`; --use makes it current',
  'docker-env': 'docker-env [--shell sh|fish|powershell]  print DOCKER_HOST for your shell (eval it)',
  help: 'help [COMMAND]        this help',
  version: 'version               the version',
};

export function usage(topic?: Command): string {
  if (topic && topic !== 'help')
    return `usage: skiff ${USAGE[topic]}\n\nglobal options: --vm NAME (default "default")\n`;
  return [
    'usage: skiff <command> [--vm NAME] [options]',
    '',
    'Skiff runs Linux containers in a small VM; these commands drive its host agent',
    '(~/.skiff/<vm>/hostagent.sock; $SKIFF_HOME replaces ~/.skiff).',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${USAGE[c]}`),
    '',
    'global options:',
    '  --vm NAME             which VM (default "default", or $SKIFF_VM)',
    '  -h, --help            help (also: skiff COMMAND --help)',
    '  --version             the version',
    '',
    'exit codes: 0 done, 1 failed, 2 bad usage, 3 Skiff is not running (no host agent)',
    '',
  ].join('\n');
}
