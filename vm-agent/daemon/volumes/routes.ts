// The /volumes endpoints (dockerd 28's shapes and wording).
import { badRequest, serverError, type Daemon, type RegisterRoutes } from '../contracts.js';
import { Volumes } from './service.js';

/** The daemon's volume service as this module made it. */
export function volumesOf(daemon: Daemon): Volumes {
  const v = daemon.volumes;
  if (!(v instanceof Volumes)) throw serverError('volumes: the daemon has no volume service of this module');
  return v;
}

type StringMap = Record<string, string> | null | undefined;

function stringMap(v: unknown, what: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
    throw badRequest(`invalid ${what}: a map of strings is expected`);
  return v as Record<string, string>;
}

export const register: RegisterRoutes = (router, daemon) => {
  router.add('POST', '/volumes/create', async (ctx) => {
    const body = await ctx.json<{ Name?: unknown; Driver?: unknown; DriverOpts?: StringMap; Labels?: StringMap }>();
    if (body.Name !== undefined && typeof body.Name !== 'string')
      throw badRequest('invalid Name: a string is expected');
    if (body.Driver !== undefined && typeof body.Driver !== 'string')
      throw badRequest('invalid Driver: a string is expected');
    const svc = volumesOf(daemon);
    const v = svc.create(body.Name || undefined, {
      driver: body.Driver,
      labels: stringMap(body.Labels, 'Labels'),
      options: stringMap(body.DriverOpts, 'DriverOpts'),
    });
    ctx.send(svc.inspect(v.name), 201);
  });
  router.add('GET', '/volumes', (ctx) => ctx.send(volumesOf(daemon).list(ctx.filters())));
  router.add('POST', '/volumes/prune', async (ctx) =>
    ctx.send(await volumesOf(daemon).prune(ctx.filters(), ctx.apiVersion)),
  );
  router.add('GET', '/volumes/{name}', (ctx) => ctx.send(volumesOf(daemon).inspect(ctx.params.name!)));
  router.add('DELETE', '/volumes/{name}', async (ctx) => {
    await volumesOf(daemon).remove(ctx.params.name!, ctx.bool('force'));
    ctx.noContent();
  });
};
