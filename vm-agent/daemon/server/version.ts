// API versions: parsing the `/v1.xx` prefix and checking it against the range the daemon serves, worded as dockerd
// words it.
import { badRequest } from '../contracts.js';

/** Compare two "major.minor" versions: negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when `v` is at least `min` ("1.42"). */
export const versionAtLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0;

/** Split `/v1.50/containers/json` into the version and the rest; unversioned paths give no version. */
export function splitVersion(path: string): { version: string | undefined; path: string } {
  const m = /^\/v([0-9][0-9.]*)(\/.*)?$/.exec(path);
  if (!m) return { version: undefined, path };
  return { version: m[1], path: m[2] ?? '/' };
}

/** A 400 DockerError when `v` is outside [min, max]. */
export function checkVersion(v: string, min: string, max: string): void {
  if (compareVersions(v, min) < 0)
    throw badRequest(
      `client version ${v} is too old. Minimum supported API version is ${min}, please upgrade your client to a newer version`,
    );
  if (compareVersions(v, max) > 0)
    throw badRequest(`client version ${v} is too new. Maximum supported API version is ${max}`);
}
