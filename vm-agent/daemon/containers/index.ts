// containers/: the container store and life cycle (service.ts), Docker → OCI spec (spec.ts, seccomp.ts), the API
// views (views.ts) and the routes below. The stream endpoints (logs, attach, wait, exec, stats, archive...) are
// registered by streams-index.ts on top of the ContainerService made here.
import type { ContainerService, Daemon, RegisterRoutes, RequestContext } from '../contracts.js';
import { badRequest } from '../contracts.js';
import { duBytes } from './host.js';
import { Containers } from './service.js';
import type { Json } from './spec.js';
import type { ContainerRecord } from './store.js';
import { filterList, inspectView, listView, type NetView } from './views.js';

export { Containers } from './service.js';

/** Made once the image service is there; reconciles with the supervisor before answering. */
export async function createContainerService(daemon: Daemon): Promise<ContainerService> {
  const c = new Containers(daemon);
  await c.init();
  return c;
}

function svc(daemon: Daemon): Containers {
  const c = daemon.containers;
  if (!(c instanceof Containers)) throw new Error('containers: the daemon has no container service of this module');
  return c;
}

/** `t` (seconds) of stop/restart; undefined when absent. */
function timeout(ctx: RequestContext): number | undefined {
  const t = ctx.query.get('t') ?? ctx.query.get('timeout');
  if (t === null || t === '') return undefined;
  if (!/^-?\d+$/.test(t)) throw badRequest(`invalid value for t: ${t}`);
  return Number(t);
}

function sizes(rec: ContainerRecord): { rw: number; rootFs: number } {
  const rw = duBytes(rec.rootfs.upperDir);
  let rootFs = rw;
  for (const l of rec.rootfs.lowerDirs) rootFs += duBytes(l);
  return { rw, rootFs };
}

export const register: RegisterRoutes = (router, daemon) => {
  router.add('POST', '/containers/create', async (ctx) => {
    const body = await ctx.json<Json>();
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('Config cannot be empty in order to create a container');
    const platform = ctx.query.get('platform');
    if (platform && !/^linux(\/|$)/.test(platform))
      throw badRequest(`image operating system "${platform}" cannot be used on this platform`);
    ctx.send(await svc(daemon).create(body, ctx.query.get('name')), 201);
  });

  router.add('GET', '/containers/json', async (ctx) => {
    const c = svc(daemon);
    const filters = ctx.filters();
    const ancestorIds = new Set<string>();
    for (const a of filters.get('ancestor') ?? []) {
      const img = await daemon.images.resolve(a);
      if (img) ancestorIds.add(img.id);
    }
    const limitQ = ctx.query.get('limit');
    const limit = limitQ && /^-?\d+$/.test(limitQ) ? Number(limitQ) : 0;
    const list = filterList(c.store.list(), {
      all: ctx.bool('all'),
      limit,
      filters,
      lookup: (ref) => c.store.get(ref),
      ancestorIds,
      portsOf: (id) => daemon.networks.portsOf(id),
      networksOf: (id) => Object.entries(daemon.networks.endpointsOf(id)).flatMap(([name, e]) => [name, e.networkId]),
    });
    const withSize = ctx.bool('size');
    ctx.send(list.map((r) => listView(r, withSize ? sizes(r) : undefined, netView(daemon, r.id))));
  });

  router.add('GET', '/containers/{id}/json', async (ctx) => {
    const rec = svc(daemon).store.get(ctx.params.id!);
    ctx.send(
      inspectView(
        rec,
        ctx.bool('size') ? sizes(rec) : undefined,
        daemon.execs?.idsOf(rec.id) ?? [],
        netView(daemon, rec.id),
      ),
    );
  });

  router.add('POST', '/containers/{id}/start', async (ctx) => {
    await svc(daemon).start(ctx.params.id!);
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/stop', async (ctx) => {
    await svc(daemon).stop(ctx.params.id!, timeout(ctx), ctx.query.get('signal') || undefined);
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/restart', async (ctx) => {
    await svc(daemon).restart(ctx.params.id!, timeout(ctx), ctx.query.get('signal') || undefined);
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/kill', async (ctx) => {
    await svc(daemon).kill(ctx.params.id!, ctx.query.get('signal') || undefined);
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/pause', async (ctx) => {
    await svc(daemon).pause(ctx.params.id!);
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/unpause', async (ctx) => {
    await svc(daemon).unpause(ctx.params.id!);
    ctx.noContent();
  });

  router.add('DELETE', '/containers/{id}', async (ctx) => {
    if (ctx.bool('link')) throw badRequest('Legacy links are not supported');
    await svc(daemon).remove(ctx.params.id!, { force: ctx.bool('force'), volumes: ctx.bool('v') });
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/rename', async (ctx) => {
    await svc(daemon).rename(ctx.params.id!, ctx.query.get('name') ?? '');
    ctx.noContent();
  });

  router.add('POST', '/containers/{id}/update', async (ctx) => {
    const body = await ctx.json<Json>();
    ctx.send(await svc(daemon).update(ctx.params.id!, body ?? {}));
  });

  router.add('POST', '/containers/prune', async (ctx) => {
    ctx.send(await svc(daemon).prune(ctx.filters()));
  });
};

function netView(daemon: Daemon, id: string): NetView {
  return { endpoints: daemon.networks.endpointsOf(id), ports: daemon.networks.portsOf(id) };
}
