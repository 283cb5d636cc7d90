// PLACEHOLDER written by the skiffd server/system/main engineer so that main.ts builds before this module exists.
// The module's owner (docs/daemon.md) owns this file and may replace it entirely: main.ts only needs the exports
// below (service factories may be async; register is a RegisterRoutes).
import type { RegisterRoutes } from '../contracts.js';

export const register: RegisterRoutes = () => undefined;
