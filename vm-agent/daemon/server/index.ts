// The HTTP side of skiffd (docs/daemon.md "server/"): what other modules may import from here.
//
// For route handlers (RequestContext in contracts.ts):
// - Throw DockerError (notFoundError, conflict, ...) to answer `{"message"}` as application/json; 304 has no body.
//   Anything else thrown is a 500 with its message. After a stream began, a throw cuts the connection.
// - ctx.stream() flushes 200 headers at once and writes JSON + "\r\n" per object (events, progress).
// - Answers whose body comes later (wait): ctx.res.writeHead(200, {'Content-Type': 'application/json'}),
//   ctx.res.flushHeaders(), then ctx.res.end(JSON.stringify(body) + '\n').
// - ctx.hijack({ multiplexed: !tty }) consumes the JSON body (read it first with ctx.json() if you need it), answers
//   101 UPGRADED (Upgrade: tcp) or 200 without Upgrade, and returns the socket: stdin comes in (a client EOF is
//   only a half-close: keep writing output), output goes out, through FrameWriter when multiplexed. End it when done.
// - HEAD routes fall back to GET ones (Node drops the body); register HEAD yourself when it differs.
export { FrameReader, FrameWriter, frame, MULTIPLEXED_STREAM, RAW_STREAM, STDERR, STDIN, STDOUT } from './frames.js';
export { SYSTEM_ERROR, type StreamId } from './frames.js';
export { streamContentType } from './hijack.js';
export { commonHeaders, sendError, startApiServer, type ApiServer, type ApiServerOptions } from './http.js';
export { parseBool, parseFilters } from './parse.js';
export { HttpRouter, type Method, type RouteMatch } from './router.js';
export { compareVersions, versionAtLeast } from './version.js';
