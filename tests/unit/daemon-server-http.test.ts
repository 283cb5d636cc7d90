// skiffd's HTTP server end to end on a temp unix socket, with stub routes: the common headers, errors, JSON bodies,
// JSON-lines streams, and hijack (101 UPGRADED with the JSON body stripped from stdin; 200 raw without Upgrade).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerError, notFoundError } from '../../vm-agent/daemon/contracts.js';
import { frame, FrameReader, HttpRouter, startApiServer, type ApiServer } from '../../vm-agent/daemon/server/index.js';

let dir = '';
let socket = '';
let api: ApiServer;
const seen: Record<string, unknown> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiffd-http-'));
  socket = join(dir, 'sub', 'docker.sock');
  const r = new HttpRouter();
  r.add('GET', '/echo/{id}', (ctx) =>
    ctx.send({ id: ctx.params.id, v: ctx.apiVersion, all: ctx.bool('all'), f: [...ctx.filters()] }),
  );
  r.add('POST', '/json', async (ctx) => ctx.send(await ctx.json(), 201));
  r.add('POST', '/nothing', (ctx) => ctx.noContent());
  r.add('GET', '/missing', () => {
    throw notFoundError('No such container: x');
  });
  r.add('GET', '/boom', () => {
    throw new Error('kaboom');
  });
  r.add('GET', '/unchanged', () => {
    throw new DockerError(304, '');
  });
  r.add('GET', '/lines', (ctx) => {
    const s = ctx.stream();
    s.write({ a: 1 });
    s.write({ b: 2 });
    s.end();
  });
  r.add('POST', '/containers/{id}/attach', async (ctx) => {
    seen.body = await ctx.json();
    const tty = ctx.bool('tty');
    const conn = await ctx.hijack({ multiplexed: !tty });
    const say = (s: string) => conn.write(tty ? Buffer.from(s) : frame(1, s));
    say('hello\n');
    let stdin = '';
    conn.on('data', (c: Buffer) => {
      stdin += c.toString();
      if (stdin.endsWith('\n')) {
        say(`got ${stdin}`);
        conn.end();
      }
    });
    if (ctx.bool('nostdin')) conn.end();
  });
  api = await startApiServer({ socket, router: r, version: { api: '1.50', minApi: '1.24', engine: '28.2.2' } });
});

afterAll(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

function call(
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Raw bytes over a fresh connection until the server closes it. */
function raw(text: string | Buffer, then?: (write: (s: string) => void, got: () => string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let out = Buffer.alloc(0);
    s.on('data', (c: Buffer) => (out = Buffer.concat([out, c])));
    s.on('end', () => resolve(out.toString('latin1')));
    s.on('error', reject);
    s.write(text);
    then?.(
      (x) => s.write(x),
      () => out.toString('latin1'),
    );
    setTimeout(() => s.destroy(new Error(`timed out; got ${JSON.stringify(out.toString('latin1'))}`)), 5000);
  });
}

describe('answers', () => {
  it('makes the socket 0660 in a directory it creates', () => {
    expect(statSync(socket).mode & 0o777).toBe(0o660);
  });

  it('puts the common headers on every answer and serves versioned and unversioned paths', async () => {
    const a = await call('GET', '/v1.41/echo/x?all=1&filters=%7B%22label%22%3A%5B%22a%22%5D%7D');
    expect(a.status).toBe(200);
    expect(a.headers['api-version']).toBe('1.50');
    expect(a.headers['ostype']).toBe('linux');
    expect(a.headers['docker-experimental']).toBe('false');
    expect(a.headers['server']).toBe('Docker/28.2.2 (linux)');
    expect(a.headers['content-type']).toBe('application/json');
    expect(JSON.parse(a.body)).toEqual({ id: 'x', v: '1.41', all: true, f: [['label', ['a']]] });
    expect(JSON.parse((await call('GET', '/echo/y')).body)).toMatchObject({ id: 'y', v: '1.50', all: false });
  });

  it('errors: DockerError status and message, 500 for the rest, 404 page not found, 400 on bad versions', async () => {
    const nf = await call('GET', '/v1.50/missing');
    expect([nf.status, nf.headers['content-type'], JSON.parse(nf.body)]).toEqual([
      404,
      'application/json',
      { message: 'No such container: x' },
    ]);
    const boom = await call('GET', '/boom');
    expect([boom.status, JSON.parse(boom.body)]).toEqual([500, { message: 'kaboom' }]);
    const page = await call('GET', '/v1.50/nope');
    expect([page.status, JSON.parse(page.body), page.headers['ostype']]).toEqual([
      404,
      { message: 'page not found' },
      'linux',
    ]);
    const old = await call('GET', '/v1.20/echo/x');
    expect(old.status).toBe(400);
    expect(JSON.parse(old.body).message).toMatch(/^client version 1\.20 is too old/);
    const unchanged = await call('GET', '/unchanged');
    expect([unchanged.status, unchanged.body]).toEqual([304, '']);
  });

  it('json(): the body, {} when empty, 400 when not JSON; noContent is 204', async () => {
    expect(JSON.parse((await call('POST', '/json', '{"a":[1]}')).body)).toEqual({ a: [1] });
    expect(JSON.parse((await call('POST', '/json')).body)).toEqual({});
    const bad = await call('POST', '/json', '{nope');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).message).toMatch(/^invalid JSON/);
    expect((await call('POST', '/nothing')).status).toBe(204);
  });

  it('stream(): JSON lines', async () => {
    const r = await call('GET', '/lines');
    expect(r.headers['content-type']).toBe('application/json');
    expect(
      r.body
        .split('\r\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    ).toEqual([{ a: 1 }, { b: 2 }]);
  });
});

describe('hijack', () => {
  const upgradeReq = (path: string, body: string) =>
    `POST ${path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

  it('101 UPGRADED, multiplexed; the JSON body is consumed and what follows is stdin', async () => {
    // body and the first stdin bytes in the same packet, as a fast client sends them
    const out = await raw(upgradeReq('/v1.50/containers/c1/attach', '{"Detach":false}') + 'ping\n');
    const [head, ...rest] = out.split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 101 UPGRADED');
    expect(lines).toContain('Content-Type: application/vnd.docker.multiplexed-stream');
    expect(lines).toContain('Connection: Upgrade');
    expect(lines).toContain('Upgrade: tcp');
    expect(lines).toContain('Api-Version: 1.50');
    expect(seen.body).toEqual({ Detach: false });
    const frames = new FrameReader().push(Buffer.from(rest.join('\r\n\r\n'), 'latin1'));
    expect(frames.map((f) => [f.stream, f.payload.toString()])).toEqual([
      [1, 'hello\n'],
      [1, 'got ping\n'],
    ]);
  });

  it('stdin sent after the 101 arrives; a TTY stream is raw; old API versions get raw-stream', async () => {
    const out = await raw(upgradeReq('/v1.41/containers/c1/attach?tty=1', ''), (write, got) => {
      const t = setInterval(() => {
        if (got().includes('hello')) {
          clearInterval(t);
          write('late\n');
        }
      }, 10);
    });
    const [head, body] = out.split('\r\n\r\n');
    expect(head).toContain('Content-Type: application/vnd.docker.raw-stream');
    expect(body).toBe('hello\ngot late\n');
  });

  it('without Upgrade: 200 with the stream content type, raw bytes, closed at the end', async () => {
    const out = await raw(
      'POST /v1.50/containers/c1/attach?nostdin=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\n\r\n{}',
    );
    const [head, body] = out.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(head).toContain('Content-Type: application/vnd.docker.multiplexed-stream');
    expect(head).not.toMatch(/Transfer-Encoding/i);
    const frames = new FrameReader().push(Buffer.from(body, 'latin1'));
    expect(frames.map((f) => f.payload.toString())).toEqual(['hello\n']);
  });

  it('an Upgrade request that fails before hijacking gets a normal JSON error', async () => {
    const out = await raw(upgradeReq('/v1.50/nope/attach', ''));
    expect(out.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    expect(out).toContain('Content-Type: application/json');
    expect(out).toContain('{"message":"page not found"}');
  });
});
