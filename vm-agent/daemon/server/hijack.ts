// Taking over a connection for attach and exec start (docker-api-notes.md "Hijack"). With `Upgrade: tcp` the
// request came through the server's 'upgrade' event: answer `101 UPGRADED` on the raw socket and hand it over
// (stdin in, output out). Without it answer 200 with the stream content type and no framing of HTTP's own (the
// connection closes at the end); there is no stdin then.
import type { ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import type { RequestContext } from '../contracts.js';
import { MULTIPLEXED_STREAM, RAW_STREAM } from './frames.js';
import { versionAtLeast } from './version.js';

export interface UpgradeInfo {
  socket: Duplex;
  /** The Content-Length bytes of JSON the client sent before its stdin. */
  body: Promise<Buffer>;
}

/** multiplexed-stream from API 1.42 when not a TTY; raw-stream otherwise. */
export function streamContentType(apiVersion: string, multiplexed: boolean): string {
  return multiplexed && versionAtLeast(apiVersion, '1.42') ? MULTIPLEXED_STREAM : RAW_STREAM;
}

export function hijackConnection(
  ctx: RequestContext,
  multiplexed: boolean,
  upgrade: UpgradeInfo | undefined,
  commonHeaders: Record<string, string>,
): Duplex {
  const contentType = streamContentType(ctx.apiVersion, multiplexed);
  if (upgrade) {
    const socket = upgrade.socket;
    ctx.res.detachSocket(socket as never);
    const lines = ['HTTP/1.1 101 UPGRADED', `Content-Type: ${contentType}`, 'Connection: Upgrade', 'Upgrade: tcp'];
    for (const [k, v] of Object.entries(commonHeaders)) lines.push(`${k}: ${v}`);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    return socket;
  }
  return plainStream(ctx.res, contentType);
}

/** 200 with the stream content type; writes go to the response unframed, the readable side is empty. */
function plainStream(res: ServerResponse, contentType: string): Duplex {
  res.useChunkedEncodingByDefault = false; // no Content-Length, no chunks: the body ends when the connection does
  res.shouldKeepAlive = false;
  res.writeHead(200, { 'Content-Type': contentType, Connection: 'close' });
  res.flushHeaders();
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (res.destroyed || res.writableEnded) return cb();
      res.write(chunk, () => cb());
    },
    final(cb) {
      res.end(() => cb());
    },
    destroy(err, cb) {
      if (!res.writableEnded) res.destroy();
      cb(err);
    },
  });
  d.push(null);
  res.once('close', () => d.destroy());
  return d;
}
