// GET /system/df: images from the ImageService (with how many containers use each), containers as list
// summaries, volumes with their size and users; no build cache yet.
import { DockerError, type ContainerRecordView, type Daemon } from '../contracts.js';

/** A module not written yet (501) counts as empty here. */
const unlessMissing = <T>(p: Promise<T>, empty: T): Promise<T> =>
  p.catch((err: unknown) => {
    if (err instanceof DockerError && err.status === 501) return empty;
    throw err;
  });

function containerSummary(c: ContainerRecordView): Record<string, unknown> {
  const cfg = c.config as { Cmd?: string[] | null; Entrypoint?: string[] | null; Labels?: Record<string, string> };
  const cmd = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])].join(' ');
  return {
    Id: c.id,
    Names: [c.name],
    Image: c.image,
    ImageID: c.imageId,
    Command: cmd,
    Created: Math.floor(Date.parse(c.created) / 1000) || 0,
    Ports: [],
    SizeRw: 0,
    SizeRootFs: 0,
    Labels: cfg.Labels ?? {},
    State: c.state.status,
    Status: c.state.status,
    HostConfig: { NetworkMode: (c.hostConfig.NetworkMode as string | undefined) ?? 'default' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

export async function diskUsageBody(daemon: Daemon): Promise<Record<string, unknown>> {
  const [du, containers] = await Promise.all([
    unlessMissing(daemon.images.diskUsage(), { images: [], layersSize: 0 }),
    unlessMissing(daemon.containers.list(), []),
  ]);
  const users = new Map<string, number>();
  for (const c of containers) users.set(c.imageId, (users.get(c.imageId) ?? 0) + 1);
  const images = du.images.map((img) => {
    if (img === null || typeof img !== 'object') return img;
    const id = (img as { Id?: string }).Id;
    return id === undefined ? img : { ...img, Containers: users.get(id) ?? 0 };
  });
  return {
    LayersSize: du.layersSize,
    Images: images,
    Containers: containers.map(containerSummary),
    Volumes: daemon.volumes?.diskUsage() ?? [],
    BuildCache: [],
  };
}
