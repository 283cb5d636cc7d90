// The HTTP side of skiffd (docs/daemon.md "server/"): what other modules may import from here.
export { FrameReader, FrameWriter, frame, MULTIPLEXED_STREAM, RAW_STREAM, STDERR, STDIN, STDOUT } from './frames.js';
export { SYSTEM_ERROR, type StreamId } from './frames.js';
export { streamContentType } from './hijack.js';
export { commonHeaders, sendError, startApiServer, type ApiServer, type ApiServerOptions } from './http.js';
export { parseBool, parseFilters } from './parse.js';
export { HttpRouter, type Method, type RouteMatch } from './router.js';
export { compareVersions, versionAtLeast } from './version.js';
