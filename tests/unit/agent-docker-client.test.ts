// skiff-agent's Docker API client against a real HTTP server on a unix socket that answers as the engine does:
// JSON and error bodies, 304, JSON lines split across writes, an abortable event stream, a multiplexed log stream
// split at odd offsets, a 101 hijack that echoes stdin, and sockets with no engine behind them (status 0).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../vm-agent/agent/contracts.js';
import { buildPath, HttpDockerClient } from '../../vm-agent/agent/docker-client.js';
import { demux, logLines, splitTimestamp, type Frame } from '../../vm-agent/agent/frames.js';
import { DockerError, notFoundError } from '../../vm-agent/daemon/contracts.js';
import { frame, HttpRouter, startApiServer, type ApiServer } from '../../vm-agent/daemon/server/index.js';

let dir = '';
let socket = '';
let server: Server;
let client: HttpDockerClient;
const seen: { closed: string[] } = { closed: [] };
const served = new WeakSet<Socket>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes the pieces one by one with a pause in between, so that the client sees them as separate chunks. */
async function writeSlowly(res: ServerResponse, pieces: Array<string | Buffer>): Promise<void> {
  for (const p of pieces) {
    res.write(p);
    await sleep(5);
  }
  res.end();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => resolve(b));
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const logFrames = Buffer.concat([
  frame(1, '2024-05-01T10:00:00.123456789Z hello\n2024-05-01T10:00:01.000000001Z wor'),
  frame(1, 'ld\n'),
  frame(2, '2024-05-01T10:00:02.5Z oops\n'),
  frame(1, ''),
  frame(1, Buffer.alloc(70_000, 'x')),
]);

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://engine');
  switch (`${req.method} ${url.pathname}`) {
    case 'GET /echo':
      return json(res, 200, { path: req.url, query: Object.fromEntries(url.searchParams) });
    case 'POST /body':
      return json(res, 201, { type: req.headers['content-type'], body: JSON.parse(await readBody(req)) });
    case 'DELETE /empty':
      res.writeHead(204).end();
      return;
    case 'GET /missing':
      return json(res, 404, { message: 'No such container: web' });
    case 'GET /conflict':
      return json(res, 409, { message: 'container is running: stop it first' });
    case 'GET /text':
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end('plain trouble\n');
      return;
    case 'GET /same':
      res.writeHead(304).end();
      return;
    case 'GET /stale':
      // The second request on a kept-alive connection finds it closed (as an engine that timed it out).
      if (served.has(req.socket)) {
        req.socket.destroy();
        return;
      }
      served.add(req.socket);
      return json(res, 200, { fresh: true });
    case 'GET /notjson':
      res.writeHead(200).end('{nope');
      return;
    case 'POST /pull':
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return writeSlowly(res, [
        '{"status":"Pulling from library/busybox","id":"latest"}\r\n{"sta',
        'tus":"Downloading","progressDetail":{"current":1,"total":2},"id":"abc"}\r',
        '\n',
        '\r\n{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\r\n{"status":"no newline at end"}',
      ]);
    case 'GET /events': {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      let n = 0;
      const t = setInterval(() => res.write(`${JSON.stringify({ Type: 'container', Action: 'start', n: n++ })}\n`), 10);
      res.on('close', () => {
        clearInterval(t);
        seen.closed.push('events');
      });
      return;
    }
    case 'GET /dies': {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"n":1}\n');
      await sleep(20);
      res.socket?.destroy();
      return;
    }
    case 'GET /logs': {
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' });
      // Odd offsets: inside a header, right after one, inside a payload.
      const cuts = [3, 8, 9, 20, 33, 70, 71, 90, 100, 1000, 5000];
      const pieces: Buffer[] = [];
      let at = 0;
      for (const c of cuts) {
        pieces.push(logFrames.subarray(at, c));
        at = c;
      }
      pieces.push(logFrames.subarray(at));
      return writeSlowly(res, pieces);
    }
    case 'GET /logs-tty':
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' });
      return writeSlowly(res, ['one\ntw', 'o\n', 'three']);
    case 'GET /logs-syserr':
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' });
      res.end(Buffer.concat([frame(1, 'a\n'), frame(3, 'log file is gone')]));
      return;
    default:
      return json(res, 404, { message: 'page not found' });
  }
}

/** Upgrade requests (attach, exec start): 101 and an echo, or an error answer on the raw socket. */
function upgrade(req: IncomingMessage, sock: Socket, head: Buffer): void {
  sock.on('error', () => {}); // the client may hang up first
  const want = Number(req.headers['content-length'] ?? 0);
  let body = head;
  const answer = (): void => {
    const url = new URL(req.url ?? '/', 'http://engine');
    if (url.pathname === '/exec/nope/start') {
      const msg = JSON.stringify({ message: 'No such exec instance: nope' });
      sock.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${msg.length}\r\n\r\n${msg}`,
      );
      return;
    }
    if (url.pathname === '/old/start') {
      // An older engine: 200 and then the connection raw, without the upgrade.
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nhi\n');
      sock.on('data', (c: Buffer) => sock.write(`echo ${c.toString()}`));
      sock.on('end', () => sock.end('bye\n'));
      return;
    }
    const tty = url.searchParams.get('tty') === '1';
    const out = (s: string): Buffer => (tty ? Buffer.from(s) : frame(1, s));
    // The first output goes in the same write as the headers: the client must not lose it.
    sock.write(
      Buffer.concat([
        Buffer.from('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n'),
        out(`body ${body.toString()}\n`),
      ]),
    );
    sock.on('data', (c: Buffer) => sock.write(out(`echo ${c.toString()}`)));
    sock.on('end', () => sock.end(out('bye\n')));
  };
  if (body.length >= want) return answer();
  const more = (c: Buffer): void => {
    body = Buffer.concat([body, c]);
    if (body.length >= want) {
      sock.off('data', more);
      answer();
    }
  };
  sock.on('data', more);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-docker-'));
  socket = join(dir, 'docker.sock');
  server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => res.destroy(err as Error));
  });
  server.on('upgrade', upgrade);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  client = new HttpDockerClient(socket);
});

afterAll(async () => {
  client?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown> | (() => Promise<unknown>)): Promise<EngineError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    return err as EngineError;
  }
  throw new Error('expected an EngineError, got success');
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('query strings', () => {
  it('leaves undefined out, sends booleans as 1/0 and objects as JSON', () => {
    expect(buildPath('/containers/json', undefined)).toBe('/containers/json');
    expect(
      buildPath('/containers/json', {
        all: true,
        size: false,
        limit: 5,
        before: undefined,
        filters: { label: ['a=b'] },
      }),
    ).toBe('/containers/json?all=1&size=0&limit=5&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D');
    expect(buildPath('/x?a=1', { b: 'c d' })).toBe('/x?a=1&b=c+d');
  });
});

describe('json()', () => {
  it('parses JSON answers and sends the query', async () => {
    const got = await client.json<{ query: Record<string, string> }>('GET', '/echo', {
      query: { all: true, filters: { status: ['running'] }, skip: undefined },
    });
    expect(got.query).toEqual({ all: '1', filters: '{"status":["running"]}' });
  });

  it('sends JSON bodies with their Content-Type', async () => {
    expect(await client.json('POST', '/body', { body: { Image: 'busybox', Cmd: ['true'] } })).toEqual({
      type: 'application/json',
      body: { Image: 'busybox', Cmd: ['true'] },
    });
  });

  it('answers undefined for an empty answer', async () => {
    expect(await client.json('DELETE', '/empty')).toBeUndefined();
  });

  it('reuses its connections (keep-alive) for many requests in a row', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => client.json('DELETE', '/empty')));
    expect(all).toEqual(Array(20).fill(undefined));
  });

  it("turns an error answer into EngineError with the engine's message or the body text", async () => {
    const nf = await rejection(client.json('GET', '/missing'));
    expect([nf.status, nf.message]).toEqual([404, 'No such container: web']);
    const c = await rejection(client.json('GET', '/conflict'));
    expect([c.status, c.message]).toEqual([409, 'container is running: stop it first']);
    const t = await rejection(client.json('GET', '/text'));
    expect([t.status, t.message]).toEqual([500, 'plain trouble']);
    const same = await rejection(client.json('GET', '/same'));
    expect([same.status, same.message]).toEqual([304, 'not modified']);
  });

  it('sends a request again when its kept-alive connection turns out to be closed', async () => {
    const own = new HttpDockerClient(socket);
    expect(await own.json('GET', '/stale')).toEqual({ fresh: true });
    expect(await own.json('GET', '/stale')).toEqual({ fresh: true });
    own.close();
  });

  it('says so when a 2xx answer is not JSON', async () => {
    const e = await rejection(client.json('GET', '/notjson'));
    expect(e.message).toMatch(/not JSON: \{nope/);
  });

  it('rejects at once with an aborted signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(client.json('GET', '/echo', { signal: ac.signal })).rejects.toThrow(/abort/i);
  });
});

describe('no engine', () => {
  it('is status 0 when the socket does not exist (ENOENT)', async () => {
    const gone = new HttpDockerClient(join(dir, 'nothing.sock'));
    const e = await rejection(gone.json('GET', '/_ping'));
    expect(e.status).toBe(0);
    expect(e.message).toBe(`the engine is not running (skiffd at ${join(dir, 'nothing.sock')}: ENOENT)`);
    expect((await rejection(gone.stream('GET', '/logs'))).status).toBe(0);
    expect((await rejection(gone.hijack('/exec/x/start'))).status).toBe(0);
    expect((await rejection(() => collect(gone.jsonLines('GET', '/events')))).status).toBe(0);
  });

  it('is status 0 when nobody listens on the path (ECONNREFUSED)', async () => {
    const path = join(dir, 'stale.sock');
    writeFileSync(path, '');
    const e = await rejection(new HttpDockerClient(path).json('GET', '/_ping'));
    expect(e.status).toBe(0);
    expect(e.message).toMatch(/the engine is not running \(skiffd at .*stale\.sock: ECONNREFUSED\)/);
  });

  it('is status 0 when the engine dies in the middle of a stream', async () => {
    const got: unknown[] = [];
    const e = await rejection(async () => {
      for await (const x of client.jsonLines('GET', '/dies')) got.push(x);
    });
    expect(got).toEqual([{ n: 1 }]);
    expect(e.status).toBe(0);
  });
});

describe('jsonLines()', () => {
  it('yields one object per line across chunk splits and \\r\\n, error lines included', async () => {
    expect(await collect(client.jsonLines('POST', '/pull', { query: { fromImage: 'busybox' } }))).toEqual([
      { status: 'Pulling from library/busybox', id: 'latest' },
      { status: 'Downloading', progressDetail: { current: 1, total: 2 }, id: 'abc' },
      { errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' },
      { status: 'no newline at end' },
    ]);
  });

  it('throws EngineError for an error answer before the stream', async () => {
    const e = await rejection(() => collect(client.jsonLines('GET', '/missing')));
    expect(e.status).toBe(404);
  });

  it('ends quietly when its signal is aborted, and closes the connection', async () => {
    const ac = new AbortController();
    const got: unknown[] = [];
    for await (const e of client.jsonLines<{ n: number }>('GET', '/events', { signal: ac.signal })) {
      got.push(e);
      if (got.length === 3) ac.abort();
    }
    expect(got.length).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 50 && !seen.closed.includes('events'); i++) await sleep(10);
    expect(seen.closed).toContain('events');
  });

  it('closes the connection when the consumer stops early', async () => {
    seen.closed = [];
    for await (const e of client.jsonLines<{ n: number }>('GET', '/events')) {
      if (e.n === 1) break;
    }
    for (let i = 0; i < 50 && !seen.closed.includes('events'); i++) await sleep(10);
    expect(seen.closed).toContain('events');
  });
});

describe('stream() and frames', () => {
  it('demultiplexes a log stream split at odd offsets, and splits lines and timestamps', async () => {
    const res = await client.stream('GET', '/logs', { query: { stdout: true, stderr: true, timestamps: true } });
    const frames: Frame[] = await collect(demux(res));
    expect(frames.map((f) => [f.stream, f.data.length])).toEqual([
      ['stdout', 71],
      ['stdout', 3],
      ['stderr', 28],
      ['stdout', 0],
      ['stdout', 70_000],
    ]);
    expect(Buffer.concat(frames.map((f) => f.data))).toHaveLength(71 + 3 + 28 + 70_000);

    const lines = await collect(logLines(await client.stream('GET', '/logs'), false));
    expect(lines.slice(0, 3).map((l) => [l.stream, l.data.toString()])).toEqual([
      ['stdout', '2024-05-01T10:00:00.123456789Z hello\n'],
      ['stdout', '2024-05-01T10:00:01.000000001Z world\n'],
      ['stderr', '2024-05-01T10:00:02.5Z oops\n'],
    ]);
    expect(lines[3].data).toHaveLength(70_000); // no newline: flushed at the end

    const first = splitTimestamp(lines[0].data);
    expect(first.time?.toISOString()).toBe('2024-05-01T10:00:00.123Z');
    expect(first.stamp).toBe('2024-05-01T10:00:00.123456789Z');
    expect(first.data.toString()).toBe('hello\n');
    expect(splitTimestamp(lines[2].data).time?.toISOString()).toBe('2024-05-01T10:00:02.500Z');
  });

  it('reads a tty container (raw stream) as stdout lines', async () => {
    const lines = await collect(logLines(await client.stream('GET', '/logs-tty'), true));
    expect(lines.map((l) => [l.stream, l.data.toString()])).toEqual([
      ['stdout', 'one\n'],
      ['stdout', 'two\n'],
      ['stdout', 'three'],
    ]);
  });

  it("turns the engine's error frame (stream 3) into an EngineError", async () => {
    const got: string[] = [];
    const e = await rejection(async () => {
      for await (const f of demux(await client.stream('GET', '/logs-syserr'))) got.push(f.data.toString());
    });
    expect(got).toEqual(['a\n']);
    expect(e.message).toBe('log file is gone');
  });

  it('fails clearly on a raw stream read as multiplexed, and on a frame cut short', async () => {
    await expect(collect(demux([Buffer.from('hello world\n')]))).rejects.toThrow(/not a multiplexed stream/);
    await expect(collect(demux([frame(1, 'abc').subarray(0, 10)]))).rejects.toThrow(/middle of a frame/);
  });

  it('checks the status before handing the stream over', async () => {
    expect((await rejection(client.stream('GET', '/missing'))).message).toBe('No such container: web');
  });

  it('leaves a line without a timestamp whole', () => {
    expect(splitTimestamp(Buffer.from('no stamp here at all\n'))).toEqual({
      data: Buffer.from('no stamp here at all\n'),
    });
    expect(splitTimestamp(Buffer.from('2024-13-99T99:99:99Z x')).time).toBeUndefined();
  });
});

describe('hijack()', () => {
  async function readUntil(s: NodeJS.ReadableStream, done: (all: Buffer) => boolean): Promise<Buffer> {
    let all = Buffer.alloc(0);
    for await (const c of s) {
      all = Buffer.concat([all, c as Buffer]);
      if (done(all)) break;
    }
    return all;
  }

  it('sends the JSON body, keeps the output that came with the 101, and carries stdin both ways', async () => {
    const conn = await client.hijack('/exec/abc/start', { body: { Detach: false, Tty: false } });
    const frames: Frame[] = [];
    const reader = (async () => {
      for await (const f of demux(conn)) frames.push(f);
    })();
    conn.write('ping\n');
    await sleep(30);
    conn.end();
    await reader;
    expect(frames.map((f) => f.data.toString())).toEqual([
      'body {"Detach":false,"Tty":false}\n',
      'echo ping\n',
      'bye\n',
    ]);
  });

  it('works raw for a tty', async () => {
    const conn = await client.hijack('/exec/abc/start', { query: { tty: true }, body: { Tty: true } });
    const first = await readUntil(conn, (b) => b.includes('\n'));
    expect(first.toString()).toBe('body {"Tty":true}\n');
    conn.destroy();
  });

  it('takes a 200 answer with the connection raw (older engines)', async () => {
    const conn = await client.hijack('/old/start', { body: {} });
    let all = '';
    const reader = (async () => {
      for await (const c of conn) all += (c as Buffer).toString();
    })();
    await sleep(20);
    conn.write('z\n');
    await sleep(20);
    conn.end();
    await reader;
    expect(all).toBe('hi\necho z\nbye\n');
  });

  it('throws the engine error when the engine does not upgrade', async () => {
    const e = await rejection(client.hijack('/exec/nope/start', { body: {} }));
    expect([e.status, e.message]).toEqual([404, 'No such exec instance: nope']);
  });

  it('closes the connection when its signal is aborted', async () => {
    const ac = new AbortController();
    const conn = await client.hijack('/exec/abc/start', { body: {}, signal: ac.signal });
    const closed = new Promise((r) => conn.once('close', r));
    ac.abort();
    await closed;
    expect(conn.destroyed).toBe(true);
  });
});

describe("against skiffd's own HTTP server", () => {
  // The engine's real HTTP layer (routing, error bodies, JSON lines, hijack with 101 UPGRADED) with stub routes.
  let api: ApiServer;
  let engine: HttpDockerClient;

  beforeAll(async () => {
    const r = new HttpRouter();
    r.add('GET', '/containers/json', (ctx) => ctx.send([{ Id: 'abc', all: ctx.bool('all'), f: [...ctx.filters()] }]));
    r.add('POST', '/containers/{id}/start', (ctx) => {
      if (ctx.params.id === 'running') throw new DockerError(304, '');
      if (ctx.params.id === 'web') return ctx.noContent();
      throw notFoundError(`No such container: ${ctx.params.id}`);
    });
    r.add('GET', '/events', (ctx) => {
      const s = ctx.stream();
      s.write({ Type: 'container', Action: 'create' });
      s.write({ Type: 'container', Action: 'start' });
      s.end();
    });
    r.add('POST', '/exec/{id}/start', async (ctx) => {
      const body = await ctx.json<{ Tty: boolean }>();
      const conn = await ctx.hijack({ multiplexed: !body.Tty });
      const say = (s: string) => conn.write(body.Tty ? Buffer.from(s) : frame(1, s));
      say(`started ${ctx.params.id}\n`);
      conn.on('data', (c: Buffer) => say(`got ${c.toString()}`));
      conn.on('end', () => conn.end());
    });
    api = await startApiServer({
      socket: join(dir, 'skiffd.sock'),
      router: r,
      version: { api: '1.50', minApi: '1.24', engine: '28.2.2' },
    });
    engine = new HttpDockerClient(join(dir, 'skiffd.sock'));
  });

  afterAll(async () => {
    engine?.close();
    await api?.close();
  });

  it('lists with a boolean and filters as skiffd parses them', async () => {
    expect(
      await engine.json('GET', '/containers/json', { query: { all: true, filters: { status: ['running'] } } }),
    ).toEqual([{ Id: 'abc', all: true, f: [['status', ['running']]] }]);
  });

  it('gets 204 as undefined, 304 and 404 as EngineErrors', async () => {
    expect(await engine.json('POST', '/containers/web/start')).toBeUndefined();
    expect((await rejection(engine.json('POST', '/containers/running/start'))).status).toBe(304);
    const nf = await rejection(engine.json('POST', '/v1.50/containers/nope/start'));
    expect([nf.status, nf.message]).toEqual([404, 'No such container: nope']);
  });

  it('reads its JSON lines', async () => {
    expect(await collect(engine.jsonLines('GET', '/events'))).toEqual([
      { Type: 'container', Action: 'create' },
      { Type: 'container', Action: 'start' },
    ]);
  });

  it('hijacks an exec start: the body reaches skiffd, output is multiplexed, stdin flows, EOF ends it', async () => {
    const conn = await engine.hijack('/exec/e1/start', { body: { Detach: false, Tty: false } });
    const out: string[] = [];
    const reader = (async () => {
      for await (const f of demux(conn)) out.push(`${f.stream}:${f.data.toString()}`);
    })();
    conn.write('x\n');
    await sleep(30);
    conn.end();
    await reader;
    expect(out).toEqual(['stdout:started e1\n', 'stdout:got x\n']);
  });

  it('hijacks a tty exec raw', async () => {
    const conn = await engine.hijack('/exec/e2/start', { body: { Detach: false, Tty: true } });
    conn.end('y');
    let all = '';
    for await (const c of conn) all += (c as Buffer).toString();
    expect(all).toBe('started e2\ngot y');
  });
});
