// skiff-agent's gRPC handler wrappers with a real @grpc/grpc-js server and client on a unix socket and a small test
// proto: results and errors of unary calls, server streams that end, fail, are cancelled or outrun the client, bidi
// streams; and the EngineError → gRPC status table of docs/agent.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  status,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../vm-agent/agent/contracts.js';
import {
  bidi,
  dockerTime,
  drained,
  serverStream,
  timestamp,
  timestampFromNanos,
  toDate,
  toStatus,
  unary,
} from '../../vm-agent/agent/grpc.js';
import { ApiError } from '../../vm-agent/common/errors.js';
import { protoLoaderOptions } from '../../vm-agent/common/grpc.js';

const proto = `
syntax = "proto3";
package agenttest;
message Req { string what = 1; int32 n = 2; }
message Res { string text = 1; bytes blob = 2; }
service T {
  rpc Unary(Req) returns (Res);
  rpc Stream(Req) returns (stream Res);
  rpc Bidi(stream Req) returns (stream Res);
}
`;

interface Req {
  what: string;
  n: number;
}
interface Res {
  text: string;
  blob?: Buffer;
}

let dir = '';
let server: Server;
let client: Client & Record<string, (...args: unknown[]) => unknown>;

/** What the handlers saw, for the tests to wait on. */
const events: Record<string, (v: unknown) => void> = {};
const happened = (name: string): Promise<unknown> => new Promise((r) => (events[name] = r));
const tell = (name: string, v?: unknown): void => events[name]?.(v);

function failure(what: string): unknown {
  switch (what) {
    case 'missing':
      return new EngineError(404, 'No such container: web');
    case 'name':
      return new EngineError(
        409,
        'Conflict. The container name "/web" is already in use by container "abc". You have to remove (or rename) that container to be able to reuse that name.',
      );
    case 'running':
      return new EngineError(409, 'container is running: stop it first');
    case 'down':
      return new EngineError(0, 'the engine is not running (skiffd at /run/skiff/docker.sock: ECONNREFUSED)');
    case 'api':
      return new ApiError(status.INVALID_ARGUMENT, 'ids is required');
    default:
      return new Error(`kaboom: ${what}`);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-grpc-'));
  writeFileSync(join(dir, 't.proto'), proto);
  const pkg = loadPackageDefinition(loadSync(join(dir, 't.proto'), protoLoaderOptions));
  const T = (pkg.agenttest as Record<string, ServiceClientConstructor>).T;

  server = new Server();
  server.addService(T.service, {
    Unary: unary<Req, Res>(async (req) => {
      if (req.what === 'ok') return { text: `hello ${req.n}` };
      throw failure(req.what);
    }),
    Stream: serverStream<Req, Res>(async (req, write, call, signal) => {
      if (req.what === 'count') {
        for (let i = 0; i < req.n; i++) write({ text: `#${i}` });
        return;
      }
      if (req.what === 'fail-after-two') {
        write({ text: 'one' });
        write({ text: 'two' });
        throw failure('missing');
      }
      if (req.what === 'wait-for-cancel') {
        write({ text: 'started' });
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        tell('stream-cancelled', signal.aborted);
        // A handler that writes once more and waits for the client must not hang on a client that is gone.
        if (!write({ text: 'too late' })) await drained(call);
        tell('drained-after-cancel', true);
        throw new Error('the client is gone: this error goes nowhere');
      }
      if (req.what === 'flood') {
        // 64 KiB messages to a client that does not read: write must say "wait" at some point.
        let waits = 0;
        const blob = Buffer.alloc(64 << 10, 7);
        for (let i = 0; i < req.n && !signal.aborted; i++) {
          if (!write({ text: String(i), blob })) {
            waits++;
            await drained(call);
          }
        }
        tell('flood-waits', waits);
        return;
      }
      throw failure(req.what);
    }),
    Bidi: bidi<Req, Res>(async (call, signal) => {
      let seen = 0;
      for await (const m of call as AsyncIterable<Req>) {
        if (m.what === 'fail') throw failure('running');
        if (m.what === 'hold') {
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
          tell('bidi-cancelled', signal.aborted);
          return;
        }
        seen++;
        call.write({ text: `echo ${m.what}` });
      }
      call.write({ text: `saw ${seen}` });
    }),
  });
  const addr = `unix://${join(dir, 'agent.sock')}`;
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  client = new T(addr, credentials.createInsecure()) as unknown as typeof client;
});

afterAll(async () => {
  client?.close();
  await new Promise<void>((r) => server?.tryShutdown(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function callUnary(req: Partial<Req>): Promise<Res> {
  return new Promise((resolve, reject) =>
    client.Unary(req, (err: ServiceError | null, res: Res) => (err ? reject(err) : resolve(res))),
  );
}

function readAll(stream: ClientReadableStream<Res> | ClientDuplexStream<Partial<Req>, Res>): Promise<{
  got: string[];
  err?: ServiceError;
}> {
  return new Promise((resolve) => {
    const got: string[] = [];
    stream.on('data', (m: Res) => got.push(m.text));
    stream.on('error', (err: ServiceError) => resolve({ got, err }));
    stream.on('end', () => resolve({ got }));
  });
}

async function unaryError(what: string): Promise<ServiceError> {
  try {
    await callUnary({ what });
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error(`${what}: expected an error`);
}

describe('unary', () => {
  it('answers what the function resolves with', async () => {
    expect(await callUnary({ what: 'ok', n: 7 })).toMatchObject({ text: 'hello 7' });
  });

  it('turns engine errors into codes with the engine message as is', async () => {
    const nf = await unaryError('missing');
    expect([nf.code, nf.details]).toEqual([status.NOT_FOUND, 'No such container: web']);
    const name = await unaryError('name');
    expect(name.code).toBe(status.ALREADY_EXISTS);
    expect(name.details).toMatch(/^Conflict\. The container name "\/web" is already in use/);
    expect((await unaryError('running')).code).toBe(status.FAILED_PRECONDITION);
    const down = await unaryError('down');
    expect(down.code).toBe(status.UNAVAILABLE);
    expect(down.details).toMatch(/ECONNREFUSED\); the engine is restarting; try again in a moment$/);
    const api = await unaryError('api');
    expect([api.code, api.details]).toEqual([status.INVALID_ARGUMENT, 'ids is required']);
    const other = await unaryError('what');
    expect([other.code, other.details]).toEqual([status.INTERNAL, 'kaboom: what']);
  });
});

describe('server streams', () => {
  it('end when the function resolves', async () => {
    const r = await readAll(client.Stream({ what: 'count', n: 3 }) as ClientReadableStream<Res>);
    expect(r).toEqual({ got: ['#0', '#1', '#2'] });
  });

  it('deliver what was written, then the error as a status', async () => {
    const r = await readAll(client.Stream({ what: 'fail-after-two' }) as ClientReadableStream<Res>);
    expect(r.got).toEqual(['one', 'two']);
    expect([r.err?.code, r.err?.details]).toEqual([status.NOT_FOUND, 'No such container: web']);
  });

  it('fail at once with the status of an early error', async () => {
    const r = await readAll(client.Stream({ what: 'down' }) as ClientReadableStream<Res>);
    expect([r.got, r.err?.code]).toEqual([[], status.UNAVAILABLE]);
  });

  it('abort the signal when the client cancels', async () => {
    const cancelled = happened('stream-cancelled');
    const s = client.Stream({ what: 'wait-for-cancel' }) as ClientReadableStream<Res>;
    s.on('error', () => {}); // CANCELLED, as asked
    await new Promise((r) => s.once('data', r));
    const after = happened('drained-after-cancel');
    s.cancel();
    expect(await cancelled).toBe(true);
    expect(await after).toBe(true);
  });

  it('let the function wait while the client is behind, and lose nothing', async () => {
    const waits = happened('flood-waits');
    const s = client.Stream({ what: 'flood', n: 200 }) as ClientReadableStream<Res>;
    s.pause();
    await new Promise((r) => setTimeout(r, 300));
    const r = readAll(s);
    s.resume();
    const { got, err } = await r;
    expect(err).toBeUndefined();
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    expect(await waits).toBeGreaterThan(0);
  });
});

describe('bidi streams', () => {
  it('end when the function resolves after the client half-closes', async () => {
    const s = client.Bidi() as ClientDuplexStream<Partial<Req>, Res>;
    const r = readAll(s);
    s.write({ what: 'a' });
    s.write({ what: 'b' });
    s.end();
    expect(await r).toEqual({ got: ['echo a', 'echo b', 'saw 2'] });
  });

  it('end with the status of an error', async () => {
    const s = client.Bidi() as ClientDuplexStream<Partial<Req>, Res>;
    const r = readAll(s);
    s.write({ what: 'a' });
    s.write({ what: 'fail' });
    const { got, err } = await r;
    expect(got).toEqual(['echo a']);
    expect([err?.code, err?.details]).toEqual([status.FAILED_PRECONDITION, 'container is running: stop it first']);
    s.end();
  });

  it('abort the signal when the client cancels', async () => {
    const cancelled = happened('bidi-cancelled');
    const s = client.Bidi() as ClientDuplexStream<Partial<Req>, Res>;
    s.on('error', () => {});
    s.write({ what: 'hold' });
    await new Promise((r) => setTimeout(r, 50));
    s.cancel();
    expect(await cancelled).toBe(true);
  });
});

describe('toStatus', () => {
  const code = (status_: number, message = 'm') => toStatus(new EngineError(status_, message)).code;

  it('maps engine statuses as docs/agent.md says', () => {
    expect(code(404)).toBe(status.NOT_FOUND);
    expect(code(400)).toBe(status.INVALID_ARGUMENT);
    expect(code(304)).toBe(status.FAILED_PRECONDITION);
    expect(code(409, 'Address already in use')).toBe(status.FAILED_PRECONDITION);
    expect(code(409, 'network with name front already exists')).toBe(status.ALREADY_EXISTS);
    expect(code(409, 'volume name data is already in use')).toBe(status.ALREADY_EXISTS);
    expect(code(0)).toBe(status.UNAVAILABLE);
    expect(code(501)).toBe(status.UNIMPLEMENTED);
    expect(code(500)).toBe(status.INTERNAL);
    expect(
      code(
        500,
        'driver failed programming external connectivity on endpoint web: Bind for 0.0.0.0:8080 failed: port is already allocated',
      ),
    ).toBe(status.FAILED_PRECONDITION);
    expect(code(503)).toBe(status.INTERNAL);
  });

  it('keeps the message, says what to do when the engine is away, and carries metadata', () => {
    const s = toStatus(new EngineError(0, 'the engine is not running (skiffd at /x: ENOENT)'));
    expect(s.details).toBe(
      'the engine is not running (skiffd at /x: ENOENT); the engine is restarting; try again in a moment',
    );
    expect(s.message).toBe(s.details);
    expect(s.metadata).toBeDefined();
    expect(toStatus('a string').details).toBe('a string');
    const cut = toStatus(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    expect([cut.code, cut.details]).toEqual([
      status.UNAVAILABLE,
      'the connection to the engine broke off (aborted); the engine is restarting; try again in a moment',
    ]);
  });
});

describe('times', () => {
  it('converts what the Docker API gives to Timestamps', () => {
    expect(timestamp('2024-05-01T10:00:00.123456789Z')).toEqual({ seconds: '1714557600', nanos: 123456789 });
    expect(timestamp('0001-01-01T00:00:00Z')).toBeNull();
    expect(timestamp('')).toBeNull();
    expect(timestamp(undefined)).toBeNull();
    expect(timestamp(0)).toBeNull();
    expect(timestamp(1714557600)).toEqual({ seconds: '1714557600', nanos: 0 });
    expect(timestamp(new Date('2024-05-01T10:00:00.250Z'))).toEqual({ seconds: '1714557600', nanos: 250_000_000 });
    expect(timestampFromNanos('1714557600123456789')).toEqual({ seconds: '1714557600', nanos: 123456789 });
    expect(dockerTime({ seconds: '1714557600', nanos: 5 })).toBe('1714557600.000000005');
    expect(toDate({ seconds: '1714557600', nanos: 250_000_000 }).toISOString()).toBe('2024-05-01T10:00:00.250Z');
  });
});
