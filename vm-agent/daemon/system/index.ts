// system/ (docs/daemon.md): /_ping, /version, /info, /events, /system/df, /auth. main.ts makes the event bus
// (`createEventBus`) and passes it as Daemon.events, then calls `register`.
import { serverError, type Daemon, type RegisterRoutes } from '../contracts.js';
import { postAuth } from './auth.js';
import { diskUsageBody } from './df.js';
import { getEvents, MemoryEventBus } from './events.js';
import { infoBody } from './info.js';
import { registerUnsupported } from './unsupported.js';
import { ping, versionBody } from './version.js';

export { eventMatches, MemoryEventBus, type StampedEvent } from './events.js';
export { parseTimestamp } from './time.js';

export const createEventBus = (): MemoryEventBus => new MemoryEventBus();

function bus(daemon: Daemon): MemoryEventBus {
  if (!(daemon.events instanceof MemoryEventBus)) throw serverError('the event bus cannot be subscribed to');
  return daemon.events;
}

export const register: RegisterRoutes = (router, daemon) => {
  router.add('GET', '/_ping', ping);
  router.add('HEAD', '/_ping', ping);
  router.add('GET', '/version', (ctx) => ctx.send(versionBody(daemon.config)));
  router.add('GET', '/info', async (ctx) => ctx.send(await infoBody(daemon, bus(daemon).subscribers)));
  router.add('GET', '/events', (ctx) => getEvents(ctx, bus(daemon)));
  router.add('GET', '/system/df', async (ctx) => ctx.send(await diskUsageBody(daemon)));
  router.add('POST', '/auth', (ctx) => postAuth(ctx, daemon));
  registerUnsupported(router, daemon);
};
