// Containers.Exec: a bidi stream over Docker's exec (POST /containers/{id}/exec, then a hijacked
// POST /exec/{id}/start). The client's stdin goes to the connection, the process's output comes back as messages, and
// the stream ends with the exit code from GET /exec/{id}/json.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import { invalidArgument, unavailable } from '../../common/errors.js';
import { errorMessage, logger } from '../../common/log.js';
import { EngineError, type Engine } from '../contracts.js';
import { demux, type Frame } from '../frames.js';
import { drained } from '../grpc.js';

const log = logger('agent-exec');

export interface ExecStartMsg {
  container: string;
  command: string[];
  tty: boolean;
  stdin: boolean;
  env: string[];
  user: string;
  workdir: string;
  cols: number;
  rows: number;
}

export interface ExecInputMsg {
  input?: 'start' | 'stdin' | 'resize' | 'close_stdin';
  start?: ExecStartMsg | null;
  stdin?: Buffer;
  resize?: { cols: number; rows: number } | null;
  close_stdin?: boolean;
}

export type ExecOutputMsg = { stdout: Buffer } | { stderr: Buffer } | { exit_code: number };

type Call = ServerDuplexStream<ExecInputMsg, ExecOutputMsg>;

export const EXEC_ENGINE_GONE = 'the engine restarted; the exec session ended';

/** The first message, or null when the client ends (or cancels) without one. */
function firstMessage(call: Call): Promise<ExecInputMsg | null> {
  return new Promise((resolve) => {
    const onData = (m: ExecInputMsg): void => {
      done();
      call.pause(); // hold the rest until the session is there to take it
      resolve(m);
    };
    const onEnd = (): void => {
      done();
      resolve(null);
    };
    const done = (): void => {
      call.off('data', onData);
      call.off('end', onEnd);
      call.off('cancelled', onEnd);
    };
    call.on('data', onData);
    call.on('end', onEnd);
    call.on('cancelled', onEnd);
  });
}

/** Waits for the exec's exit code: the connection can close a moment before the engine records the exit. */
async function exitCode(engine: Engine, execId: string, signal: AbortSignal): Promise<number> {
  for (let i = 0; ; i++) {
    const info = await engine.docker.json<{ Running?: boolean; ExitCode?: number | null }>(
      'GET',
      `/exec/${execId}/json`,
      { signal },
    );
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
    if (i >= 50) throw new Error(`exec ${execId}: its output ended but the engine reports no exit code`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Feeds the client's messages after `start` into the session: stdin, resize, close_stdin. */
function forwardInput(engine: Engine, call: Call, socket: Duplex, execId: string, stdin: boolean): void {
  const resize = (cols: number, rows: number): void => {
    engine.docker
      .json('POST', `/exec/${execId}/resize`, { query: { h: rows, w: cols } })
      .catch((err: unknown) => log.debug(`resize ${execId}: ${errorMessage(err)}`));
  };
  call.on('data', (m: ExecInputMsg) => {
    switch (m.input) {
      case 'stdin':
        if (!stdin || !m.stdin || m.stdin.length === 0 || socket.writableEnded) return;
        // Backpressure: stop reading the client until the process has taken what it has.
        if (!socket.write(m.stdin)) {
          call.pause();
          socket.once('drain', () => call.resume());
        }
        return;
      case 'resize':
        if (m.resize && m.resize.cols > 0 && m.resize.rows > 0) resize(m.resize.cols, m.resize.rows);
        return;
      case 'close_stdin':
        if (m.close_stdin && !socket.writableEnded) socket.end();
        return;
      case 'start':
        log.debug(`exec ${execId}: a second start message, ignored`);
        return;
    }
  });
  // The client will send nothing more: that is the end of stdin (the engine ignores it when stdin is not attached).
  call.on('end', () => {
    if (!socket.writableEnded && !socket.destroyed) socket.end();
  });
  call.resume();
}

async function* rawOutput(socket: Duplex): AsyncIterable<Frame> {
  for await (const chunk of socket as AsyncIterable<Buffer>) yield { stream: 'stdout', data: chunk };
}

/** The Exec handler's body. */
export async function runExec(engine: Engine, call: Call, signal: AbortSignal): Promise<void> {
  const first = await firstMessage(call);
  if (signal.aborted) return;
  if (!first || first.input !== 'start' || !first.start)
    throw invalidArgument('the first Exec message must carry start (the container and the command)');
  const s = first.start;
  if (!s.container) throw invalidArgument('start.container is required');
  if (!s.command || s.command.length === 0) throw invalidArgument('start.command is required');

  const created = await engine.docker.json<{ Id: string }>(
    'POST',
    `/containers/${encodeURIComponent(s.container)}/exec`,
    {
      body: {
        AttachStdin: s.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: s.tty,
        Env: s.env.length > 0 ? s.env : undefined,
        User: s.user || undefined,
        WorkingDir: s.workdir || undefined,
        Cmd: s.command,
        ConsoleSize: s.rows > 0 && s.cols > 0 ? [s.rows, s.cols] : undefined,
      },
      signal,
    },
  );
  const execId = created.Id;
  const socket = await engine.docker.hijack(`/exec/${execId}/start`, { body: { Detach: false, Tty: s.tty }, signal });
  socket.on('error', (err) => log.debug(`exec ${execId} connection: ${errorMessage(err)}`));
  forwardInput(engine, call, socket, execId, s.stdin);

  try {
    const frames = s.tty ? rawOutput(socket) : demux(socket);
    for await (const f of frames) {
      if (f.stream === 'stdin') continue;
      if (!call.write(f.stream === 'stderr' ? { stderr: f.data } : { stdout: f.data })) await drained(call);
      if (signal.aborted) return;
    }
  } catch (err) {
    if (signal.aborted) return;
    log.debug(`exec ${execId} output: ${errorMessage(err)}`);
    // Fall through: the exit code tells whether the process ended or the engine went away.
  } finally {
    if (signal.aborted) socket.destroy();
  }

  let code: number;
  try {
    code = await exitCode(engine, execId, signal);
  } catch (err) {
    if (signal.aborted) return;
    // Down (0), or back without our exec (404: exec sessions do not survive a restart).
    if (err instanceof EngineError && (err.status === 0 || err.status === 404)) throw unavailable(EXEC_ENGINE_GONE);
    throw err;
  }
  socket.destroy();
  call.write({ exit_code: code });
}
