// The agent's gRPC handler wrappers (unary, server stream, bidi stream) and how errors become gRPC statuses
// (docs/agent.md "Errors"): the engine's HTTP status picks the code, its message is passed on as is.
import {
  Metadata,
  status,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { ApiError } from '../common/errors.js';
import { errorMessage, logger } from '../common/log.js';
import { toTimestamp, type Timestamp } from '../common/timestamp.js';
import { EngineError } from './contracts.js';

const log = logger('agent-grpc');

export interface GrpcStatus extends Error {
  code: status;
  details: string;
  metadata: Metadata;
}

export const ENGINE_UNAVAILABLE = 'the engine is restarting; try again in a moment';

/** A name taken (a container, network or volume name), as opposed to any other conflict. */
const nameTaken = /\bname\b.*\balready in use\b|\balready exists\b/i;

/** A connection to the engine that broke (a body or stream read after the status: not an EngineError yet). */
function cutOff(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED';
}

/** The gRPC code for an engine answer. */
const portTaken = /port is already allocated|ports are allocated|address already in use/i;

export function engineCode(err: EngineError): status {
  switch (err.status) {
    case 0:
      return status.UNAVAILABLE;
    case 400:
      return status.INVALID_ARGUMENT;
    case 404:
      return status.NOT_FOUND;
    case 304:
      return status.FAILED_PRECONDITION;
    case 403: // dockerd's "forbidden" is a state that does not allow it (an endpoint already on a network …)
    case 409:
      return nameTaken.test(err.message) ? status.ALREADY_EXISTS : status.FAILED_PRECONDITION;
    case 501:
      return status.UNIMPLEMENTED;
    default:
      // dockerd answers a host port in use with a 500; for the GUI it is a state to change, not a crash.
      return portTaken.test(err.message) ? status.FAILED_PRECONDITION : status.INTERNAL;
  }
}

/** Any error as a gRPC status (code, details for a person, metadata). */
export function toStatus(err: unknown): GrpcStatus {
  let code: status;
  let details: string;
  if (err instanceof EngineError) {
    code = engineCode(err);
    details = err.status === 0 ? `${err.message}; ${ENGINE_UNAVAILABLE}` : err.message;
    if (err.status === 304 && !details) details = 'nothing to do: already in that state';
  } else if (err instanceof ApiError) {
    code = err.code;
    details = err.message;
  } else if (cutOff(err)) {
    // A stream from the engine (logs, stats, an exec) that broke off: the engine went away in the middle.
    code = status.UNAVAILABLE;
    details = `the connection to the engine broke off (${errorMessage(err)}); ${ENGINE_UNAVAILABLE}`;
  } else {
    code = status.INTERNAL;
    details = errorMessage(err);
  }
  if (code === status.INTERNAL) log.error(details);
  else log.debug(`${status[code]}: ${details}`);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

/** A unary handler from an async function; a rejection becomes the call's status. */
export function unary<Req, Res>(
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): void => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => cb(null, res),
        (err: unknown) => cb(toStatus(err)),
      );
  };
}

/** An AbortSignal aborted when the client cancels the call (or its connection goes). */
function cancelSignal(call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>): {
  signal: AbortSignal;
  cancelled: () => boolean;
} {
  const ac = new AbortController();
  let cancelled = false;
  call.on('cancelled', () => {
    cancelled = true;
    ac.abort(new Error('the client cancelled the call'));
  });
  return { signal: ac.signal, cancelled: () => cancelled || call.cancelled };
}

/**
 * Resolves when the call can take more messages (after write returned false), or when the client is gone. Server
 * streams that forward a fast source (logs, pull progress) await this so that they do not buffer without bound.
 */
export function drained(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
): Promise<void> {
  return new Promise<void>((resolve) => {
    // Nothing to wait for: already drained, or the client is gone (write answers false after a cancel).
    if (call.cancelled || call.destroyed || call.writableEnded || !call.writableNeedDrain) {
      resolve();
      return;
    }
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
}

/**
 * A server-streaming handler: fn writes messages (write answers false when the client is behind: await
 * `drained(call)` before the next one) and its promise settles the call: resolved ends the stream, rejected ends it
 * with the error's status. `signal` is aborted when the client cancels; fn should stop then.
 */
export function serverStream<Req, Res>(
  fn: (
    req: Req,
    write: (msg: Res) => boolean,
    call: ServerWritableStream<Req, Res>,
    signal: AbortSignal,
  ) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>): void => {
    const { signal, cancelled } = cancelSignal(call as ServerWritableStream<unknown, unknown>);
    const write = (msg: Res): boolean => {
      if (cancelled()) return false;
      return call.write(msg);
    };
    Promise.resolve()
      .then(() => fn(call.request, write, call, signal))
      .then(
        () => {
          if (!cancelled()) call.end();
        },
        (err: unknown) => {
          if (cancelled()) log.debug(`after cancel: ${errorMessage(err)}`);
          else call.emit('error', toStatus(err));
        },
      );
  };
}

/**
 * A bidi-streaming handler: fn owns the call; its promise settles it as for serverStream. fn may read the client's
 * messages with `for await (const m of call)`: leaving that loop does not destroy the call (Node's default would,
 * and the answers and the status written after it would be lost).
 */
export function bidi<Req, Res>(
  fn: (call: ServerDuplexStream<Req, Res>, signal: AbortSignal) => Promise<void>,
): handleBidiStreamingCall<Req, Res> {
  return (call: ServerDuplexStream<Req, Res>): void => {
    const { signal, cancelled } = cancelSignal(call as ServerDuplexStream<unknown, unknown>);
    Object.defineProperty(call, Symbol.asyncIterator, {
      value: () => call.iterator({ destroyOnReturn: false }),
    });
    Promise.resolve()
      .then(() => fn(call, signal))
      .then(
        () => {
          if (!cancelled()) call.end();
        },
        (err: unknown) => {
          if (cancelled()) log.debug(`after cancel: ${errorMessage(err)}`);
          else call.emit('error', toStatus(err));
        },
      );
  };
}

// ---------------------------------------------------------------------------------------------- times

/**
 * google.protobuf.Timestamp from what the Docker API gives: RFC 3339 strings (nanoseconds kept), Dates, or numbers
 * as unix seconds (the API's "Created" of lists). Unset or zero ("0001-01-01T00:00:00Z", 0) is null.
 */
export function timestamp(v: Date | string | number | undefined | null): Timestamp | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (v === '' || v.startsWith('0001-01-01')) return null;
    return toTimestamp(v);
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) return null;
    const seconds = Math.floor(v);
    return { seconds: String(seconds), nanos: Math.round((v - seconds) * 1e9) };
  }
  const ms = v.getTime();
  if (Number.isNaN(ms)) return null;
  return { seconds: String(Math.floor(ms / 1000)), nanos: (((ms % 1000) + 1000) % 1000) * 1e6 };
}

/** A Timestamp from nanoseconds since the epoch (events' timeNano). */
export function timestampFromNanos(n: number | bigint | string): Timestamp {
  const big = BigInt(typeof n === 'number' ? Math.round(n) : n);
  return { seconds: String(big / 1_000_000_000n), nanos: Number(big % 1_000_000_000n) };
}

/** A Timestamp as the Docker API's `since`/`until` query value ("seconds.nanoseconds"). */
export function dockerTime(t: Timestamp): string {
  return `${String(t.seconds)}.${String(t.nanos ?? 0).padStart(9, '0')}`;
}

/** A Timestamp as a Date (milliseconds). */
export function toDate(t: Timestamp): Date {
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}
