// Exec instances: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked, or detached), POST /exec/{id}/resize,
// GET /exec/{id}/json. Kept in memory per container, as dockerd. The process runs through Tasks.Exec with the
// container's own process settings (capabilities, rlimits, no-new-privileges …) and the exec's args, env, cwd, user.
import { randomBytes } from 'node:crypto';
import { errorMessage, logger } from '../../common/log.js';
import {
  badRequest,
  conflict,
  notFoundError,
  type ContainerRecordView,
  type Daemon,
  type ExecRegistry,
  type RequestContext,
} from '../contracts.js';
import { frame, STDOUT } from '../server/frames.js';
import { isNotFound } from '../supervisor.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys, Pump, sizeParams } from './attach.js';
import { readInRoot } from './archive.js';
import { ALL_KNOWN_CAPS, parseGroup, parsePasswd, resolveUser } from './spec.js';

const log = logger('exec');

export interface ExecConfig {
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  DetachKeys: string;
  Tty: boolean;
  ConsoleSize: [number, number] | null;
  Env: string[];
  Cmd: string[];
  Privileged: boolean;
  User: string;
  WorkingDir: string;
}

export interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  /** null until it has exited. */
  exitCode: number | null;
  pid: number;
  startedOnce: boolean;
  /** Resolves once Tasks.Start has answered (or failed). */
  started: Promise<void>;
  markStarted: () => void;
  createdAt: number;
}

const maxPerContainer = 256;

export class Execs implements ExecRegistry {
  private readonly byId = new Map<string, ExecRecord>();
  private readonly byContainer = new Map<string, Set<string>>();

  add(rec: ExecRecord): void {
    this.byId.set(rec.id, rec);
    let set = this.byContainer.get(rec.containerId);
    if (!set) this.byContainer.set(rec.containerId, (set = new Set()));
    set.add(rec.id);
    if (set.size > maxPerContainer)
      for (const id of set) {
        const r = this.byId.get(id);
        if (r && r.exitCode !== null) {
          set.delete(id);
          this.byId.delete(id);
          if (set.size <= maxPerContainer) break;
        }
      }
  }

  get(id: string): ExecRecord {
    const r = this.byId.get(id);
    if (!r) throw notFoundError(`No such exec instance: ${id}`);
    return r;
  }

  idsOf(containerId: string): string[] {
    return [...(this.byContainer.get(containerId) ?? [])];
  }

  forget(containerId: string): void {
    for (const id of this.byContainer.get(containerId) ?? []) this.byId.delete(id);
    this.byContainer.delete(containerId);
  }
}

// ---------------------------------------------------------------------------------------------- config

const strArr = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The create body → ExecConfig (400 without a command). */
export function execConfig(body: Record<string, unknown>): ExecConfig {
  const cmd = strArr(body.Cmd);
  if (cmd.length === 0) throw badRequest('No exec command specified');
  const cs = body.ConsoleSize;
  let consoleSize: [number, number] | null = null;
  if (Array.isArray(cs) && cs.length === 2 && cs.every((x) => Number.isInteger(x) && x >= 0))
    consoleSize = [cs[0] as number, cs[1] as number];
  return {
    AttachStdin: body.AttachStdin === true,
    AttachStdout: body.AttachStdout === true,
    AttachStderr: body.AttachStderr === true,
    DetachKeys: typeof body.DetachKeys === 'string' ? body.DetachKeys : '',
    Tty: body.Tty === true,
    ConsoleSize: consoleSize,
    Env: strArr(body.Env),
    Cmd: cmd,
    Privileged: body.Privileged === true,
    User: typeof body.User === 'string' ? body.User : '',
    WorkingDir: typeof body.WorkingDir === 'string' ? body.WorkingDir : '',
  };
}

/** Env lists merged by key, later entries winning (the exec's over the container's). */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const k = e.includes('=') ? e.slice(0, e.indexOf('=')) : e;
    out.delete(k);
    out.set(k, e);
  }
  return [...out.values()];
}

type Json = Record<string, unknown>;

/**
 * The OCI process for the exec: the container's (from its spec) with the exec's args, env, cwd, user and terminal;
 * privileged gets every capability. `user` is resolved by the caller.
 */
export function execProcess(
  containerProcess: Json,
  cfg: ExecConfig,
  user: { uid: number; gid: number; additionalGids: number[] } | undefined,
): Json {
  const p: Json = { ...containerProcess };
  p.args = cfg.Cmd;
  p.env = mergeEnv(strArr(containerProcess.env), cfg.Env);
  if (cfg.WorkingDir) p.cwd = cfg.WorkingDir;
  if (!p.cwd) p.cwd = '/';
  p.terminal = cfg.Tty;
  if (user) p.user = { ...((containerProcess.user as Json) ?? {}), ...user };
  if (cfg.Tty && cfg.ConsoleSize) p.consoleSize = { height: cfg.ConsoleSize[0], width: cfg.ConsoleSize[1] };
  else delete p.consoleSize;
  if (cfg.Privileged) {
    const all = ALL_KNOWN_CAPS.map((c) => (c.startsWith('CAP_') ? c : `CAP_${c}`));
    p.capabilities = { bounding: all, effective: all, permitted: all, inheritable: all, ambient: all };
    p.noNewPrivileges = false;
    delete p.apparmorProfile;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------- handlers

const newExecId = (): string => randomBytes(32).toString('hex');

function ensureRunning(c: ContainerRecordView): void {
  if (c.state.status === 'paused') throw conflict(`Container ${c.id} is paused, unpause the container before exec`);
  if (c.state.status === 'restarting')
    throw conflict(`Container ${c.id} is restarting, wait until the container is running`);
  if (c.state.status !== 'running') throw conflict(`Container ${c.id} is not running`);
}

export async function handleExecCreate(daemon: Daemon, execs: Execs, ctx: RequestContext): Promise<void> {
  const c = await daemon.containers.get(ctx.params.id as string);
  const body = await ctx.json<Json>();
  const cfg = execConfig(body ?? {});
  if (cfg.DetachKeys) parseDetachKeys(cfg.DetachKeys);
  ensureRunning(c);
  let markStarted!: () => void;
  const started = new Promise<void>((r) => (markStarted = r));
  const rec: ExecRecord = {
    id: newExecId(),
    containerId: c.id,
    config: cfg,
    running: false,
    exitCode: null,
    pid: 0,
    startedOnce: false,
    started,
    markStarted,
    createdAt: Date.now(),
  };
  execs.add(rec);
  daemon.events.emit({
    Type: 'container',
    Action: `exec_create: ${cfg.Cmd.join(' ')}`,
    Actor: { ID: c.id, Attributes: { execID: rec.id, image: c.image, name: c.name.replace(/^\//, '') } },
  });
  ctx.send({ Id: rec.id }, 201);
}

async function containerProcess(daemon: Daemon, c: ContainerRecordView): Promise<Json> {
  const got = await daemon.supervisor.containers.get(daemon.containers.taskId(c));
  const spec = JSON.parse(got.container.spec.toString('utf8')) as Json;
  return (spec.process as Json) ?? {};
}

async function resolveExecUser(
  daemon: Daemon,
  c: ContainerRecordView,
  user: string,
): Promise<{ uid: number; gid: number; additionalGids: number[] } | undefined> {
  if (!user) return undefined;
  if (/^\d+(:\d+)?$/.test(user)) {
    const [u, g] = user.split(':');
    if (g !== undefined) return { uid: Number(u), gid: Number(g), additionalGids: [] };
  }
  const root = `/proc/${c.state.pid}/root`;
  const text = async (p: string): Promise<string> => {
    try {
      return (await readInRoot(root, p, 1 << 20)).toString('utf8');
    } catch {
      return '';
    }
  };
  return resolveUser(user, parsePasswd(await text('/etc/passwd')), parseGroup(await text('/etc/group')));
}

export async function handleExecStart(daemon: Daemon, execs: Execs, ctx: RequestContext): Promise<void> {
  const rec = execs.get(ctx.params.id as string);
  const body = await ctx.json<Json>();
  const detach = body?.Detach === true;
  if (Array.isArray(body?.ConsoleSize) && body.ConsoleSize.length === 2)
    rec.config.ConsoleSize = [Number(body.ConsoleSize[0]) || 0, Number(body.ConsoleSize[1]) || 0];
  if (rec.running) throw conflict(`Error: Exec command ${rec.id} is already running`);
  if (rec.startedOnce) throw conflict(`Error: Exec command ${rec.id} has already run`);
  const c = await daemon.containers.get(rec.containerId);
  ensureRunning(c);
  rec.startedOnce = true;
  const sup = daemon.supervisor;
  const task = daemon.containers.taskId(c);
  const cfg = rec.config;
  let proc: Json;
  try {
    proc = execProcess(await containerProcess(daemon, c), cfg, await resolveExecUser(daemon, c, cfg.User));
    await sup.tasks.exec(task, rec.id, proc, cfg.Tty, cfg.AttachStdin && !detach);
  } catch (err) {
    rec.exitCode = 126;
    rec.markStarted();
    throw err;
  }
  const exited = (code: number): void => {
    if (rec.exitCode === null) rec.exitCode = code;
    rec.running = false;
  };
  const startIt = async (): Promise<void> => {
    try {
      const { pid } = await sup.tasks.start(task, rec.id);
      rec.pid = pid;
      rec.running = rec.exitCode === null;
    } catch (err) {
      rec.exitCode = 126;
      throw err;
    } finally {
      rec.markStarted();
    }
    daemon.events.emit({
      Type: 'container',
      Action: `exec_start: ${cfg.Cmd.join(' ')}`,
      Actor: { ID: c.id, Attributes: { execID: rec.id, image: c.image, name: c.name.replace(/^\//, '') } },
    });
    if (cfg.Tty && cfg.ConsoleSize && cfg.ConsoleSize[0] > 0 && cfg.ConsoleSize[1] > 0)
      await sup.tasks
        .resizePty(task, rec.id, cfg.ConsoleSize[1], cfg.ConsoleSize[0])
        .catch((err: unknown) => log.debug(`exec resize: ${errorMessage(err)}`));
  };
  /** Record the exit (Tasks.Wait), then let the supervisor forget the process. */
  const reap = async (pumpDone: Promise<void>): Promise<void> => {
    try {
      const w = await sup.tasks.wait(task, rec.id);
      exited(w.exit_status);
      await Promise.race([pumpDone, new Promise((r) => setTimeout(r, 5000).unref())]);
      await sup.tasks.delete(task, rec.id);
    } catch (err) {
      if (rec.exitCode === null) exited(isNotFound(err) ? 137 : 126);
      log.debug(`exec ${rec.id}: ${errorMessage(err)}`);
    }
    daemon.events.emit({
      Type: 'container',
      Action: 'exec_die',
      Actor: {
        ID: c.id,
        Attributes: { execID: rec.id, exitCode: String(rec.exitCode), image: c.image, name: c.name.replace(/^\//, '') },
      },
    });
  };
  if (detach) {
    await startIt();
    void reap(Promise.resolve());
    ctx.res.writeHead(200, { 'Content-Length': '0' });
    ctx.res.end();
    return;
  }
  const socket = await ctx.hijack({ multiplexed: !cfg.Tty });
  const pump = new Pump({
    sup,
    containerId: task,
    execId: rec.id,
    socket,
    multiplexed: !cfg.Tty,
    stdout: cfg.AttachStdout,
    stderr: cfg.AttachStderr,
    stdin: cfg.AttachStdin,
    onStdinEnd: 'close',
    closeStdinOnDetach: false,
    detachKeys: cfg.AttachStdin ? parseDetachKeys(cfg.DetachKeys || DEFAULT_DETACH_KEYS) : Buffer.alloc(0),
    onExit: (e) => exited(e.exit_status),
  });
  await pump.connect();
  try {
    await startIt();
  } catch (err) {
    // As dockerd: the reason goes to the client on its stdout stream, so `docker exec` prints it.
    const why = `${errorMessage(err)}\r\n`;
    if (!socket.destroyed) socket.write(cfg.Tty ? why : frame(STDOUT, why));
    pump.detach(true);
    log.debug(`exec start ${rec.id}: ${errorMessage(err)}`);
    return;
  }
  void reap(pump.done);
}

export async function handleExecResize(daemon: Daemon, execs: Execs, ctx: RequestContext): Promise<void> {
  const rec = execs.get(ctx.params.id as string);
  const { h, w } = sizeParams(ctx);
  // The CLI resizes right after its start answer came: give Tasks.Start a moment.
  await Promise.race([rec.started, new Promise((r) => setTimeout(r, 2000).unref())]);
  if (!rec.running) throw conflict(`Exec ${rec.id} is not running`);
  const c = await daemon.containers.get(rec.containerId);
  await daemon.supervisor.tasks.resizePty(daemon.containers.taskId(c), rec.id, w, h).catch((err: unknown) => {
    if (rec.config.Tty) throw err;
  });
  ctx.res.writeHead(200, { 'Content-Length': '0' });
  ctx.res.end();
}

export function execInspect(rec: ExecRecord): Json {
  const [entrypoint, ...args] = rec.config.Cmd;
  return {
    CanRemove: false,
    ContainerID: rec.containerId,
    DetachKeys: rec.config.DetachKeys,
    ExitCode: rec.exitCode,
    ID: rec.id,
    OpenStderr: rec.config.AttachStderr,
    OpenStdin: rec.config.AttachStdin,
    OpenStdout: rec.config.AttachStdout,
    ProcessConfig: {
      arguments: args,
      entrypoint,
      privileged: rec.config.Privileged,
      tty: rec.config.Tty,
      user: rec.config.User,
    },
    Running: rec.running,
    Pid: rec.pid,
  };
}

export function handleExecInspect(execs: Execs, ctx: RequestContext): void {
  ctx.send(execInspect(execs.get(ctx.params.id as string)));
}
