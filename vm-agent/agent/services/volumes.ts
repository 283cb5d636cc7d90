// skiff.agent.v1 Volumes: list (with each volume's size and the containers using it), inspect, create, remove and
// prune, on skiffd's Docker API. Sizes come from GET /system/df, users from the containers' mounts.
import { invalidArgument } from '../../common/errors.js';
import type { DockerClient, ServiceFactory } from '../contracts.js';
import { unary } from '../grpc.js';
import {
  dockerFilters,
  volumePruneResult,
  volumeSizes,
  volumeUsers,
  volumeView,
  type EngineContainer,
  type EngineVolume,
  type StringList,
  type VolumeMsg,
} from './resource-views.js';

/** What a volume's view needs besides the volume: sizes and users of every volume. */
async function usage(docker: DockerClient): Promise<{ sizes: Map<string, number>; users: Map<string, string[]> }> {
  const [df, containers] = await Promise.all([
    docker.json<{ Volumes?: EngineVolume[] | null }>('GET', '/system/df'),
    docker.json<EngineContainer[]>('GET', '/containers/json', { query: { all: true } }),
  ]);
  return { sizes: volumeSizes(df), users: volumeUsers(containers) };
}

function volumePath(name: string): string {
  if (!name) throw invalidArgument('a volume name is required');
  return `/volumes/${encodeURIComponent(name)}`;
}

/** One volume as VolumeDetail: the view and the engine's document. */
async function detail(docker: DockerClient, name: string): Promise<{ volume: VolumeMsg; json: string }> {
  const [doc, u] = await Promise.all([docker.json<EngineVolume>('GET', volumePath(name)), usage(docker)]);
  return { volume: volumeView(doc, u.sizes, u.users), json: JSON.stringify(doc) };
}

export const volumesService: ServiceFactory = (engine) => {
  const docker = engine.docker;
  return {
    List: unary(async (req: { filters: Record<string, StringList> }) => {
      const [res, u] = await Promise.all([
        docker.json<{ Volumes?: EngineVolume[] | null }>('GET', '/volumes', {
          query: { filters: dockerFilters(req.filters) },
        }),
        usage(docker),
      ]);
      return { volumes: (res.Volumes ?? []).map((v) => volumeView(v, u.sizes, u.users)) };
    }),

    Inspect: unary((req: { name: string }) => detail(docker, req.name)),

    Create: unary(async (req: { name: string; labels: Record<string, string>; options: Record<string, string> }) => {
      const created = await docker.json<EngineVolume>('POST', '/volumes/create', {
        body: { Name: req.name, Labels: req.labels ?? {}, DriverOpts: req.options ?? {} },
      });
      return detail(docker, created.Name);
    }),

    Remove: unary(async (req: { name: string; force: boolean }) => {
      // in use → 409 → FAILED_PRECONDITION with the engine's message (which names the containers)
      await docker.json('DELETE', volumePath(req.name), { query: { force: req.force || undefined } });
      return {};
    }),

    Prune: unary(async (req: { all: boolean }) => {
      // without all=true the engine prunes only anonymous volumes
      const res = await docker.json<Parameters<typeof volumePruneResult>[0]>('POST', '/volumes/prune', {
        query: { filters: req.all ? { all: ['true'] } : undefined },
      });
      return volumePruneResult(res);
    }),
  };
};
