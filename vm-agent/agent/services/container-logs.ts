// Containers.Logs: GET /containers/{id}/logs, one LogEntry per frame the engine writes (a line), or per raw chunk
// for a container with a tty (its output has no frames and no stdout/stderr split).
import type { ServerWritableStream } from '@grpc/grpc-js';
import { unavailable } from '../../common/errors.js';
import { toTimestamp, type Timestamp } from '../../common/timestamp.js';
import type { Engine } from '../contracts.js';
import { demux, LineSplitter, splitTimestamp, type Frame } from '../frames.js';
import { dockerTime, drained, timestamp } from '../grpc.js';

export interface LogsRequestMsg {
  id: string;
  follow: boolean;
  tail: number;
  since: Timestamp | null;
  until: Timestamp | null;
  timestamps: boolean;
}

export interface LogEntryMsg {
  stream: 'STDOUT' | 'STDERR';
  data: Buffer;
  time?: Timestamp | null;
}

export const LOGS_ENGINE_GONE = 'the engine restarted; reopen the logs';

/** Raw chunks of a tty container's log; with timestamps, lines (each carries its stamp). */
async function* ttyFrames(res: AsyncIterable<Buffer>, byLine: boolean): AsyncIterable<Frame> {
  const lines = new LineSplitter();
  for await (const chunk of res) {
    if (!byLine) yield { stream: 'stdout', data: chunk };
    else for (const line of lines.push(chunk)) yield { stream: 'stdout', data: line };
  }
  const rest = lines.flush();
  if (rest) yield { stream: 'stdout', data: rest };
}

/** A frame as a LogEntry, its timestamp split off when they were asked for. */
export function logEntry(f: Frame, timestamps: boolean): LogEntryMsg {
  const stream = f.stream === 'stderr' ? 'STDERR' : 'STDOUT';
  if (!timestamps) return { stream, data: f.data };
  const { time, stamp, data } = splitTimestamp(f.data);
  // The stamp keeps the engine's nanoseconds; the Date only milliseconds.
  return { stream, data, time: (stamp ? toTimestamp(stamp) : null) ?? timestamp(time) };
}

/** The Logs handler's body. */
export async function streamLogs(
  engine: Engine,
  req: LogsRequestMsg,
  write: (m: LogEntryMsg) => boolean,
  call: ServerWritableStream<LogsRequestMsg, LogEntryMsg>,
  signal: AbortSignal,
): Promise<void> {
  const id = encodeURIComponent(req.id);
  const inspect = await engine.docker.json<{ Config?: { Tty?: boolean } }>('GET', `/containers/${id}/json`, {
    signal,
  });
  const tty = inspect.Config?.Tty === true;
  const res = await engine.docker.stream('GET', `/containers/${id}/logs`, {
    query: {
      follow: req.follow,
      stdout: true,
      stderr: true,
      tail: req.tail > 0 ? req.tail : 'all',
      since: req.since ? dockerTime(req.since) : undefined,
      until: req.until ? dockerTime(req.until) : undefined,
      timestamps: req.timestamps,
    },
    signal,
  });
  const frames = tty ? ttyFrames(res, req.timestamps) : demux(res);
  try {
    for await (const f of frames) {
      if (f.stream === 'stdin') continue;
      if (!write(logEntry(f, req.timestamps))) await drained(call);
      if (signal.aborted) return;
    }
  } catch (err) {
    if (signal.aborted) return;
    // The response broke off (or ended mid-frame): skiffd died or was restarted under us.
    if (!res.complete) throw unavailable(LOGS_ENGINE_GONE);
    throw err;
  }
  // A clean end is the engine's: the container stopped or was removed (follow), or the log was all sent.
  if (!signal.aborted && !res.complete) throw unavailable(LOGS_ENGINE_GONE);
}
