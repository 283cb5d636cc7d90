// The `skiff` commands. Each returns the exit code; failures are CliErrors with the message to print as is.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { dockerContextName, ensureDockerContext, keepDockerContext } from '../hostagent/docker-context.js';
import { vmPaths, type VmPaths } from '../hostagent/paths.js';
import { usage, type Parsed } from './args.js';
import {
  CliError,
  EXIT_NOT_RUNNING,
  HostClient,
  lastLines,
  launchHostagent,
  notRunningMessage,
  quitHostagent,
  socketAnswers,
} from './client.js';
import {
  dockerEnv,
  progressLine,
  sshArgs,
  sshConfigBlock,
  statusJson,
  statusText,
  type HostStatus,
  type SshTarget,
} from './format.js';

export const VERSION = '0.1.0';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const out = (s: string): void => void process.stdout.write(s);
const err = (s: string): void => void process.stderr.write(s);

/**
 * The progress of a lifecycle operation on stderr: one line rewritten in place on a terminal ("Starting Skiff:
 * ssh (70%)"), a line per change otherwise.
 */
export class Progress {
  private last = '';
  private drawn = false;
  constructor(
    private readonly write: (s: string) => void = err,
    private readonly tty = Boolean(process.stderr.isTTY),
  ) {}

  update(s: Pick<HostStatus, 'state' | 'step' | 'percent'>): void {
    if (s.state !== 'STARTING' && s.state !== 'STOPPING') return;
    const line = progressLine(s);
    if (line === this.last) return;
    this.last = line;
    if (this.tty) {
      this.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else this.write(`${line}\n`);
  }

  /** End the updating line (before the final message). */
  done(): void {
    if (this.tty && this.drawn) this.write('\r\x1b[2K');
    this.drawn = false;
  }
}

function contextHint(p: VmPaths): string {
  const name = dockerContextName(p.name);
  return `  docker --context ${name} …  (or: docker context use ${name}; or: eval "$(skiff docker-env)")\n`;
}

function runningMessage(p: VmPaths, s: HostStatus, verb: string): string {
  return (
    `Skiff ${verb} (vm ${p.name}${s.accel ? `, ${s.accel}` : ''}).\n` +
    `Docker socket: unix://${s.docker_socket || p.dockerSocket}\n` +
    contextHint(p) +
    (s.warnings.length > 0 ? `warnings:\n${s.warnings.map((w) => `  - ${w}`).join('\n')}\n` : '')
  );
}

/** Run Start or Restart, showing WatchStatus's progress; RUNNING → 0, ERROR → the reason and exit 1. */
async function lifecycle(c: HostClient, op: 'start' | 'restart'): Promise<number> {
  const p = c.paths;
  const progress = new Progress();
  const t0 = Date.now();
  // Subscribe first (the stream sends the current status at once), so that no step is missed.
  let subscribed: () => void = () => undefined;
  const ready = new Promise<void>((r) => (subscribed = r));
  let settled: () => void = () => undefined;
  const final = new Promise<void>((r) => (settled = r));
  let began = false;
  const stopWatch = c.watch(
    (s) => {
      if (!began) {
        began = true;
        subscribed();
        return; // the status before the operation
      }
      progress.update(s);
      if (s.state === 'RUNNING' || s.state === 'ERROR') settled();
    },
    () => {
      subscribed();
      settled();
    },
  );
  await Promise.race([ready, sleep(2000)]);
  // The stream and the call's answer travel apart: let the stream catch up (its last steps) before the verdict.
  const drain = (): Promise<unknown> => Promise.race([final, sleep(1000)]);
  let s: HostStatus;
  try {
    s = await (op === 'start' ? c.start() : c.restart());
  } catch (e) {
    await drain();
    stopWatch();
    progress.done();
    const reason = (e as Error).message;
    throw new CliError(
      `Skiff failed to ${op} (vm ${p.name}): ${reason}\n` +
        `(the VM console: skiff logs${p.name === 'default' ? '' : ` --vm ${p.name}`}; files in ${p.dir})`,
    );
  }
  await drain();
  stopWatch();
  progress.done();
  const ctx = keepDockerContext(p.name, p.dockerSocket, s.warnings);
  out(runningMessage(p, s, `is running after ${((Date.now() - t0) / 1000).toFixed(1)} s`));
  if (ctx?.change === 'created') out(`Created the docker context "${ctx.name}".\n`);
  return 0;
}

async function start(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  let c = await HostClient.connect(p);
  if (!c) {
    err(`Starting the host agent for vm ${p.name}…\n`);
    c = await launchHostagent(p);
  }
  try {
    const s = await c.status();
    if (s.state === 'RUNNING') {
      keepDockerContext(p.name, p.dockerSocket, s.warnings);
      out(runningMessage(p, s, 'is already running'));
      return 0;
    }
    return await lifecycle(c, 'start');
  } finally {
    c.close();
  }
}

async function restart(a: Parsed): Promise<number> {
  const c = await HostClient.require(vmPaths(a.vm));
  try {
    return await lifecycle(c, 'restart');
  } finally {
    c.close();
  }
}

async function stop(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  const c = await HostClient.connect(p);
  if (!c) {
    out(`${notRunningMessage(p).replace(/: run `skiff start`$/, '')}: nothing to stop.\n`);
    return 0;
  }
  const progress = new Progress();
  const stopWatch = c.watch((s) => progress.update(s));
  try {
    await c.stop();
  } finally {
    stopWatch();
    progress.done();
    c.close();
  }
  if (a.quit) {
    await quitHostagent(p);
    out(`Skiff stopped (vm ${p.name}); the host agent exited.\n`);
  } else out(`Skiff stopped (vm ${p.name}).\n`);
  return 0;
}

async function status(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  const c = await HostClient.connect(p);
  if (!c) {
    const msg = notRunningMessage(p);
    if (a.json) out(`${JSON.stringify({ vm: p.name, state: 'NOT_RUNNING', reason: msg }, null, 2)}\n`);
    else err(`${msg}\n`);
    return EXIT_NOT_RUNNING;
  }
  try {
    const s = await c.status();
    out(a.json ? `${JSON.stringify(statusJson(p.name, s), null, 2)}\n` : statusText(p.name, s));
    return 0;
  } finally {
    c.close();
  }
}

function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) =>
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    }),
  );
}

async function reset(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  const what =
    `skiff reset deletes vm ${p.name}'s data disk (every image, container and volume in it) and its SSH keys; ` +
    'settings are kept';
  if (!a.force) {
    if (!process.stdin.isTTY)
      throw new CliError(`${what}. Not a terminal, so nothing was asked: run it again with --force to confirm.`);
    const answer = await ask(`${what}.\nReset? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) {
      err('Nothing was deleted.\n');
      return 1;
    }
  }
  let c = await HostClient.connect(p);
  if (!c) c = await launchHostagent(p);
  const progress = new Progress();
  const stopWatch = c.watch((s) => progress.update(s));
  try {
    await c.reset();
  } finally {
    stopWatch();
    progress.done();
    c.close();
  }
  out(`Skiff vm ${p.name} was reset: \`skiff start\` makes a new data disk and new keys.\n`);
  return 0;
}

/** The VM's ssh target from a RUNNING status; a clear error otherwise. */
async function sshTarget(a: Parsed): Promise<SshTarget> {
  const p = vmPaths(a.vm);
  const c = await HostClient.require(p);
  let s: HostStatus;
  try {
    s = await c.status();
  } finally {
    c.close();
  }
  if (s.state !== 'RUNNING' || !s.ssh_port)
    throw new CliError(`the VM ${p.name} is not running (${s.state}): run \`skiff start\``, EXIT_NOT_RUNNING);
  for (const f of [p.userKey, p.knownHosts])
    if (!existsSync(f)) throw new CliError(`${f} is missing: run \`skiff restart\` to make the VM's keys again`);
  return { vm: p.name, port: s.ssh_port, identity: p.userKey, knownHosts: p.knownHosts };
}

async function shell(a: Parsed): Promise<number> {
  const t = await sshTarget(a);
  const ssh = process.platform === 'win32' ? 'ssh.exe' : 'ssh';
  return new Promise((resolve, reject) => {
    const child = spawn(ssh, sshArgs(t, a.rest), { stdio: 'inherit' });
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new CliError(
              'ssh is not installed: install an OpenSSH client (Debian/Ubuntu: apt-get install openssh-client; ' +
                'macOS and Windows 10+ ship it)',
            )
          : e,
      ),
    );
    child.once('exit', (code, signal) => {
      if (code === 255)
        err(`skiff: ssh could not reach the VM on 127.0.0.1:${t.port} (exit 255): see \`skiff status\`\n`);
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}

async function sshConfig(a: Parsed): Promise<number> {
  out(sshConfigBlock(await sshTarget(a)));
  return 0;
}

function section(title: string, body: string): string {
  const text = body.trimEnd();
  return `==> ${title} <==\n${text ? `${text}\n` : '(empty)\n'}\n`;
}

/** Print what a file gains from `offset` on; returns the new offset (0 after a rotation). */
function readFrom(file: string, offset: number, header: string, lastHeader: { v: string }): number {
  if (!existsSync(file)) return 0;
  const size = statSync(file).size;
  if (size < offset) offset = 0; // rotated (serial.log is renamed to .1 at every boot)
  if (size === offset) return offset;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    if (lastHeader.v !== header) {
      out(`\n==> ${header} <==\n`);
      lastHeader.v = header;
    }
    out(buf.subarray(0, n).toString('utf8'));
    return offset + n;
  } finally {
    closeSync(fd);
  }
}

async function logs(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  const c = await HostClient.connect(p);
  if (c) {
    try {
      const d = await c.diagnostics(a.lines);
      out(section(`VM console (${p.serialLog})`, d.serial_log));
      out(section('skiff-agent (/var/log/skiff-agent.log in the VM)', d.agent_log || '(the VM is not running)'));
      out(section(`host agent (${p.hostagentLog})`, d.hostagent_log));
      if (d.qemu_command) out(section('QEMU command', d.qemu_command));
      const versions = Object.entries(d.versions)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
      if (versions) out(section('versions', versions));
    } finally {
      c.close();
    }
  } else {
    err(`(${notRunningMessage(p)}; showing the files in ${p.dir})\n`);
    out(section(`VM console (${p.serialLog})`, lastLines(p.serialLog, a.lines)));
    out(section(`host agent (${p.hostagentLog})`, lastLines(p.hostagentLog, a.lines)));
  }
  if (!a.follow) return 0;
  err(
    `(following ${p.serialLog} and ${p.hostagentLog} on the host; Ctrl-C to end. The skiff-agent log inside the ` +
      'VM is not followed: the host agent gives its tail only, use `skiff shell -- tail -f /var/log/skiff-agent.log`)\n',
  );
  const files = [
    { file: p.serialLog, header: 'VM console', offset: existsSync(p.serialLog) ? statSync(p.serialLog).size : 0 },
    {
      file: p.hostagentLog,
      header: 'host agent',
      offset: existsSync(p.hostagentLog) ? statSync(p.hostagentLog).size : 0,
    },
  ];
  const lastHeader = { v: '' };
  for (;;) {
    for (const f of files) f.offset = readFrom(f.file, f.offset, f.header, lastHeader);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function context(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  const r = ensureDockerContext({ vm: p.name, socket: p.dockerSocket, use: a.use });
  out(`docker context "${r.name}" ${r.change}: ${r.host}\n`);
  if (r.current) out(`"${r.name}" is now the current docker context.\n`);
  else out(`Use it: docker --context ${r.name} …, or make it the current one: skiff context --use\n`);
  if (r.current && process.env.DOCKER_HOST)
    err(`note: DOCKER_HOST is set in this shell (${process.env.DOCKER_HOST}) and overrides the current context\n`);
  if (!(await socketAnswers(p.dockerSocket)))
    err(`note: nothing answers on ${p.dockerSocket} yet: run \`skiff start\`\n`);
  return 0;
}

async function dockerEnvCmd(a: Parsed): Promise<number> {
  const p = vmPaths(a.vm);
  out(dockerEnv(p.dockerSocket, a.shell));
  if (!(await socketAnswers(p.dockerSocket)))
    err(`note: nothing answers on ${p.dockerSocket} yet: run \`skiff start\`\n`);
  return 0;
}

export async function runCommand(a: Parsed): Promise<number> {
  switch (a.command) {
    case 'help':
      out(usage(a.topic));
      return 0;
    case 'version':
      out(`skiff ${VERSION}\n`);
      return 0;
    case 'start':
      return start(a);
    case 'stop':
      return stop(a);
    case 'restart':
      return restart(a);
    case 'status':
      return status(a);
    case 'reset':
      return reset(a);
    case 'shell':
      return shell(a);
    case 'logs':
      return logs(a);
    case 'ssh-config':
      return sshConfig(a);
    case 'context':
      return context(a);
    case 'docker-env':
      return dockerEnvCmd(a);
  }
}
