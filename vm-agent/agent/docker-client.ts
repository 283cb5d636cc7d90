// A client of skiffd's Docker Engine API over its unix socket (contracts.ts DockerClient). Every failure is an
// EngineError: the engine's status and message, or status 0 when the engine cannot be reached (it is down or being
// restarted by the agent), so that the gRPC layer can say "try again in a moment".
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import { EngineError, type DockerClient, type DockerRequest } from './contracts.js';

/** Errors that mean the engine is not there (not started, restarting, died mid-answer). */
const connectionCodes = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTCONN', 'ECONNABORTED']);

/** The engine's error body: `{"message": "..."}` as dockerd sends it, or the text itself. */
function errorText(status: number, body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (parsed && typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: the text is the message
  }
  if (text) return text;
  return status === 304 ? 'not modified' : `the engine answered ${status} without a message`;
}

/** The path with its query: undefined left out, booleans as 1/0 (dockerd's BoolValue), objects as JSON. */
export function buildPath(path: string, query: DockerRequest['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (typeof v === 'boolean') params.append(k, v ? '1' : '0');
    else if (typeof v === 'object') params.append(k, JSON.stringify(v));
    else params.append(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A reused keep-alive connection turned out to be closed (sent again once). */
class StaleConnection extends Error {}

export class HttpDockerClient implements DockerClient {
  private readonly agent: Agent;

  constructor(readonly socketPath: string) {
    this.agent = new Agent({ keepAlive: true });
  }

  /** Closes idle keep-alive connections (the agent shutting down). */
  close(): void {
    this.agent.destroy();
  }

  /** A connection failure as EngineError(0); anything else (an abort, a parse error) as it is. */
  private connectionError(err: unknown): unknown {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code && connectionCodes.has(code)) {
      return new EngineError(0, `the engine is not running (skiffd at ${this.socketPath}: ${code})`);
    }
    return err;
  }

  private body(req: DockerRequest | undefined): { data?: Buffer; headers: Record<string, string> } {
    const headers: Record<string, string> = { ...(req?.headers ?? {}) };
    if (req?.body === undefined) return { headers };
    const data = Buffer.from(JSON.stringify(req.body));
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(data.length);
    return { data, headers };
  }

  /** Sends a request; resolves with a 2xx response, rejects with an EngineError for anything else. */
  private async send(method: string, path: string, req: DockerRequest | undefined): Promise<IncomingMessage> {
    try {
      return await this.attempt(method, path, req);
    } catch (err) {
      // A kept-alive connection the engine closed while idle fails before any answer: the request never reached
      // the engine, so sending it again on a fresh connection is safe (node's documented reusedSocket pattern).
      if (err instanceof StaleConnection) return this.attempt(method, path, req);
      throw err;
    }
  }

  private attempt(method: string, path: string, req: DockerRequest | undefined): Promise<IncomingMessage> {
    const signal = req?.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const { data, headers } = this.body(req);
    return new Promise<IncomingMessage>((resolve, reject) => {
      let res: IncomingMessage | undefined;
      const onAbort = (): void => {
        if (res) res.destroy();
        creq.destroy(abortError(signal as AbortSignal));
      };
      const creq: ClientRequest = request(
        { socketPath: this.socketPath, agent: this.agent, method, path: buildPath(path, req?.query), headers },
        (r) => {
          res = r;
          const status = r.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            // A stream may outlive this call: keep the abort wired until the response is done with.
            r.once('close', () => signal?.removeEventListener('abort', onAbort));
            resolve(r);
            return;
          }
          readAll(r).then(
            (body) => {
              signal?.removeEventListener('abort', onAbort);
              reject(new EngineError(status, errorText(status, body)));
            },
            (err: unknown) => {
              signal?.removeEventListener('abort', onAbort);
              reject(this.connectionError(err));
            },
          );
        },
      );
      creq.on('error', (err: NodeJS.ErrnoException) => {
        signal?.removeEventListener('abort', onAbort);
        if (!res && creq.reusedSocket && err.code === 'ECONNRESET' && !signal?.aborted) reject(new StaleConnection());
        else reject(this.connectionError(err));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      creq.end(data);
    });
  }

  async json<T = unknown>(method: string, path: string, req?: DockerRequest): Promise<T> {
    const res = await this.send(method, path, req);
    let body: Buffer;
    try {
      body = await readAll(res);
    } catch (err) {
      if (req?.signal?.aborted) throw abortError(req.signal);
      throw this.connectionError(err);
    }
    const text = body.toString('utf8');
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new EngineError(500, `the engine answered ${method} ${path} with something that is not JSON: ${text}`);
    }
  }

  stream(method: string, path: string, req?: DockerRequest): Promise<IncomingMessage> {
    return this.send(method, path, req);
  }

  /** One object per line; lines may be split across chunks and end in \n or \r\n. An abort ends it quietly. */
  async *jsonLines<T = unknown>(method: string, path: string, req?: DockerRequest): AsyncIterable<T> {
    const res = await this.send(method, path, req);
    const signal = req?.signal;
    let pending = '';
    const parse = (line: string): T | undefined => {
      const trimmed = line.trim();
      if (trimmed === '') return undefined;
      try {
        return JSON.parse(trimmed) as T;
      } catch {
        throw new EngineError(500, `the engine sent a line that is not JSON: ${trimmed}`);
      }
    };
    try {
      res.setEncoding('utf8');
      for await (const chunk of res) {
        pending += chunk as string;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const obj = parse(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
          if (obj !== undefined) yield obj;
        }
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw this.connectionError(err);
    } finally {
      // The consumer stopped early (break, return): let go of the connection.
      if (!res.complete) res.destroy();
    }
    if (signal?.aborted) return;
    const last = parse(pending);
    if (last !== undefined) yield last;
  }

  /**
   * POST with `Upgrade: tcp`: the engine answers 101 and the connection becomes raw (stdin in, output out). Bytes
   * the HTTP parser read past the headers are pushed back so that nothing of the output is lost.
   */
  hijack(path: string, req?: DockerRequest): Promise<Duplex> {
    const signal = req?.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const { data, headers } = this.body(req);
    headers.Connection = 'Upgrade';
    headers.Upgrade = 'tcp';
    return new Promise<Duplex>((resolve, reject) => {
      // Its own connection (agent false): an upgraded socket never goes back to a pool.
      const creq = request({
        socketPath: this.socketPath,
        agent: false,
        method: 'POST',
        path: buildPath(path, req?.query),
        headers,
      });
      let settled = false;
      const onAbort = (): void => {
        creq.destroy(abortError(signal as AbortSignal));
      };
      const done = (): void => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
      };
      creq.on('upgrade', (_res, socket, head) => {
        done();
        if (head.length > 0) socket.unshift(head);
        if (signal) {
          const onStreamAbort = (): void => {
            socket.destroy();
          };
          signal.addEventListener('abort', onStreamAbort, { once: true });
          socket.once('close', () => signal.removeEventListener('abort', onStreamAbort));
        }
        resolve(socket);
      });
      creq.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // Older engines answer 200 and then use the connection raw: output is the "body", input goes to the socket.
          done();
          const socket = res.socket;
          const duplex = Duplex.from({ readable: res, writable: socket });
          signal?.addEventListener('abort', () => duplex.destroy(), { once: true });
          resolve(duplex);
          return;
        }
        readAll(res).then(
          (body) => {
            done();
            reject(new EngineError(status, errorText(status, body)));
          },
          (err: unknown) => {
            done();
            reject(this.connectionError(err));
          },
        );
      });
      creq.on('error', (err) => {
        if (settled) return;
        done();
        reject(this.connectionError(err));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      creq.end(data);
    });
  }
}
