// GET /version and the /_ping answers.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DaemonConfig, RequestContext } from '../contracts.js';
import { goArch, hostFacts } from './host.js';

/** Skiff's own version (package.json), shown as a component beside the Docker-compatible engine version. */
export const SKIFF_VERSION = '0.1.0';

/** When this program was built: the bundle's modification time (what `docker version` prints as Built). */
function buildTime(): string {
  try {
    return statSync(fileURLToPath(import.meta.url)).mtime.toISOString();
  } catch {
    return '';
  }
}

export function versionBody(config: DaemonConfig): Record<string, unknown> {
  const h = hostFacts();
  const common = {
    ApiVersion: config.version.api,
    Arch: goArch(),
    BuildTime: buildTime(),
    Experimental: 'false',
    GitCommit: 'skiff',
    GoVersion: `node${process.versions.node}`,
    KernelVersion: h.kernelVersion,
    MinAPIVersion: config.version.minApi,
    Os: 'linux',
  };
  return {
    Platform: { Name: 'Skiff Engine' },
    Components: [
      { Name: 'Engine', Version: config.version.engine, Details: common },
      { Name: 'skiffd', Version: SKIFF_VERSION, Details: { GitCommit: 'skiff' } },
      { Name: 'skiff-supervisor', Version: SKIFF_VERSION, Details: { GitCommit: 'skiff' } },
      { Name: 'skiff-runtime', Version: SKIFF_VERSION, Details: { GitCommit: 'skiff' } },
    ],
    Version: config.version.engine,
    ApiVersion: config.version.api,
    MinAPIVersion: config.version.minApi,
    GitCommit: 'skiff',
    GoVersion: common.GoVersion,
    Os: 'linux',
    Arch: goArch(),
    KernelVersion: h.kernelVersion,
    BuildTime: common.BuildTime,
  };
}

/** HEAD and GET /_ping: "OK" as text/plain with the headers the CLI reads. */
export function ping(ctx: RequestContext): void {
  const res = ctx.res;
  res.writeHead(200, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': '2',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Builder-Version': '1',
    Swarm: 'inactive',
  });
  res.end(ctx.req.method === 'HEAD' ? undefined : 'OK');
}
