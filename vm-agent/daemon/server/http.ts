// The Engine API's HTTP server on a unix socket: version prefixes, the common headers, routing, errors. Requests
// with an Upgrade header (attach, exec start) arrive through the 'upgrade' event and get a ServerResponse of their
// own, so handlers answer them like any other request until they hijack.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { DockerError } from '../contracts.js';
import { errorMessage, logger } from '../../common/log.js';
import { readUpgradeBody } from './body.js';
import { Context } from './context.js';
import type { UpgradeInfo } from './hijack.js';
import type { HttpRouter } from './router.js';
import { checkVersion, splitVersion } from './version.js';

const log = logger('api');

export interface ApiServerOptions {
  /** The unix socket path. */
  socket: string;
  router: HttpRouter;
  version: { api: string; minApi: string; engine: string };
}

export interface ApiServer {
  server: Server;
  /** Stop accepting, end idle connections, drop the socket file; streams in flight are cut. */
  close(): Promise<void>;
}

/** The headers on every answer, as dockerd sends them (Go's canonical spelling). */
export function commonHeaders(version: ApiServerOptions['version']): Record<string, string> {
  return {
    'Api-Version': version.api,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: `Docker/${version.engine} (linux)`,
  };
}

/** Answer a failed request: DockerError → its status and `{"message"}`; anything else → 500. */
export function sendError(res: ServerResponse, err: unknown): void {
  const status = err instanceof DockerError ? err.status : 500;
  const message = errorMessage(err);
  if (status >= 500) log.warn(`${status}: ${message}`);
  if (res.headersSent) {
    // A stream already begun: nothing to answer with but cutting it.
    log.debug(`error after the answer began: ${message}`);
    if (!res.writableEnded) res.destroy();
    return;
  }
  if (status === 304 || status === 204) {
    res.writeHead(status);
    res.end();
    return;
  }
  const body = JSON.stringify({ message }) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const headers = commonHeaders(opts.version);

  async function handle(req: IncomingMessage, res: ServerResponse, upgrade?: UpgradeInfo): Promise<void> {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    const url = new URL(req.url ?? '/', 'http://docker');
    const { version, path } = splitVersion(url.pathname);
    log.debug(`${req.method} ${req.url}`);
    try {
      const m = opts.router.match(req.method ?? 'GET', path);
      if (!m) throw new DockerError(404, 'page not found');
      if (version !== undefined) checkVersion(version, opts.version.minApi, opts.version.api);
      const ctx = new Context(req, res, m.params, url.searchParams, version ?? opts.version.api, upgrade, headers);
      await m.handler(ctx);
    } catch (err) {
      sendError(res, err);
    }
  }

  const server = createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => {
    void handle(req, res);
  });
  server.timeout = 0;

  // Hijacked connections are no longer the HTTP server's: kept here so close() can cut them.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    res.once('finish', () => socket.end());
    socket.on('error', (err) => log.debug(`upgraded connection: ${err.message}`));
    const body = readUpgradeBody(req, socket, head);
    body.catch(() => socket.destroy());
    void handle(req, res, { socket, body });
  });

  server.on('clientError', (err, socket) => {
    log.debug(`client error: ${err.message}`);
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  return new Promise((resolve, reject) => {
    mkdirSync(dirname(opts.socket), { recursive: true });
    if (existsSync(opts.socket)) unlinkSync(opts.socket);
    server.once('error', reject);
    server.listen(opts.socket, () => {
      server.off('error', reject);
      chmodSync(opts.socket, 0o660);
      resolve({
        server,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
            // Streams (events, logs -f, attach) would hold close() forever: cut them after a moment.
            setTimeout(() => {
              server.closeAllConnections();
              for (const s of upgraded) s.destroy();
            }, 1000).unref();
            try {
              unlinkSync(opts.socket);
            } catch {
              /* already gone */
            }
          }),
      });
    });
  });
}
