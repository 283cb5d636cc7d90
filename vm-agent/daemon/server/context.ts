// The RequestContext of contracts.ts for one request: query parsing, the JSON body, answers, JSON-lines streams
// and hijacking (hijack.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { badRequest, type Filters, type RequestContext } from '../contracts.js';
import { readRequestBody } from './body.js';
import { hijackConnection, type UpgradeInfo } from './hijack.js';
import { parseBool, parseFilters } from './parse.js';

export class Context implements RequestContext {
  private body: Promise<Buffer> | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Record<string, string>,
    readonly query: URLSearchParams,
    readonly apiVersion: string,
    /** Set for requests that came through the server's 'upgrade' event: their socket and body. */
    private readonly upgrade: UpgradeInfo | undefined,
    /** The headers every answer carries (also written on a raw 101). */
    private readonly commonHeaders: Record<string, string>,
  ) {}

  bool(name: string, dflt = false): boolean {
    return parseBool(this.query.get(name), dflt);
  }

  filters(): Filters {
    return parseFilters(this.query.get('filters'));
  }

  /** The raw body, read once. */
  rawBody(): Promise<Buffer> {
    this.body ??= this.upgrade ? this.upgrade.body : readRequestBody(this.req);
    return this.body;
  }

  async json<T = unknown>(): Promise<T> {
    const raw = await this.rawBody();
    const text = raw.toString('utf8').trim();
    if (text === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw badRequest(`invalid JSON: ${(err as Error).message}`);
    }
  }

  send(body: unknown, status = 200): void {
    const text = JSON.stringify(body) + '\n';
    this.res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    this.res.end(text);
  }

  noContent(): void {
    this.res.writeHead(204);
    this.res.end();
  }

  stream(contentType = 'application/json'): { write(obj: unknown): void; end(): void; closed: Promise<void> } {
    const res = this.res;
    res.writeHead(200, { 'Content-Type': contentType });
    res.flushHeaders();
    const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    return {
      write: (obj) => {
        if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(obj) + '\r\n');
      },
      end: () => {
        if (!res.writableEnded) res.end();
      },
      closed,
    };
  }

  async hijack(opts: { multiplexed: boolean }): Promise<Duplex> {
    await this.rawBody(); // the JSON body is not stdin
    return hijackConnection(this, opts.multiplexed, this.upgrade, this.commonHeaders);
  }
}
