// PLACEHOLDER written by the skiffd server/system/main engineer so that main.ts builds before this module exists.
// The module's owner (docs/daemon.md) owns this file and may replace it entirely: main.ts only needs the exports
// below (service factories may be async; register is a RegisterRoutes).
import type { Daemon, RegisterRoutes, RegistryService } from '../contracts.js';

/** undefined: no registry client yet (POST /auth answers 501). */
export function createRegistryService(
  _daemon: Daemon,
): RegistryService | undefined | Promise<RegistryService | undefined> {
  return undefined;
}

export const register: RegisterRoutes = () => undefined;
