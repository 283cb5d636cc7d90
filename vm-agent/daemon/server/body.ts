// Request bodies. A normal request's body is read from the IncomingMessage; an Upgrade request's body (attach, exec
// start) is not parsed by Node: its Content-Length bytes are taken from the socket (after `head`) and whatever the
// client sent beyond them is put back, to be read as stdin.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** Read a whole request body (JSON bodies only: uploads are streamed by their handlers from `req`). */
export async function readRequestBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The Content-Length bytes of an upgraded request's body; the rest goes back to the socket, which is left as Node
 * hands it to 'upgrade' listeners (not flowing until someone reads it), so no stdin is lost.
 */
export function readUpgradeBody(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<Buffer> {
  const want = Number.parseInt(req.headers['content-length'] ?? '0', 10) || 0;
  if (head.length >= want) {
    if (head.length > want) socket.unshift(head.subarray(want));
    return Promise.resolve(head.subarray(0, want));
  }
  return new Promise((resolve, reject) => {
    let buf = head;
    const finish = (err?: Error): void => {
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('error', finish);
      if (err) return reject(err);
      if (buf.length > want) socket.unshift(buf.subarray(want));
      resolve(buf.subarray(0, want));
    };
    const onReadable = (): void => {
      let c: Buffer | null;
      while (buf.length < want && (c = socket.read() as Buffer | null) !== null) buf = Buffer.concat([buf, c]);
      if (buf.length >= want) finish();
    };
    const onEnd = (): void =>
      finish(new Error(`the client closed the connection after ${buf.length} of ${want} body bytes`));
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('error', finish);
  });
}
