// What container create does with volumes: add an anonymous volume for each image VOLUME no user mount covers,
// make (or find) every volume a mount names, copy the image's content into the empty ones, and record the host
// path each one binds (MountPoint.Source) and the name of the anonymous ones.
import { badRequest, type ContainerRecordView, type Daemon, type PreparedRootfs } from '../contracts.js';
import { cleanContainerPath, type MountPoint } from '../containers/spec.js';

/**
 * Resolve the volume mounts of a new container in place (with its merged Config.Volumes and HostConfig.VolumesFrom).
 * `created` gets the name of each volume made here (so a create that fails later can remove the anonymous ones
 * again); on failure here they are removed already.
 */
export async function resolveVolumeMounts(
  daemon: Daemon,
  mounts: MountPoint[],
  c: { config: Record<string, unknown>; hostConfig: Record<string, unknown>; rootfs: PreparedRootfs },
  created: string[],
): Promise<void> {
  const { rootfs } = c;
  const imageVolumes = c.config.Volumes as Record<string, unknown> | null | undefined;
  const volumesFrom = c.hostConfig.VolumesFrom as string[] | null | undefined;
  const taken = new Set(mounts.map((m) => m.Destination));
  // --volumes-from c[:ro|:rw]: the other container's volumes and binds at the same paths (the user's own win).
  for (const spec of volumesFrom ?? []) {
    const [ref = '', mode = ''] = spec.split(':');
    if (mode !== '' && mode !== 'ro' && mode !== 'rw') throw badRequest(`invalid mode for volumes-from: ${mode}`);
    const other = (await daemon.containers.get(ref)) as ContainerRecordView & { mountPoints?: MountPoint[] };
    for (const m of other.mountPoints ?? []) {
      if (m.Type === 'tmpfs' || taken.has(m.Destination)) continue;
      taken.add(m.Destination);
      mounts.push({ ...m, RW: mode === 'ro' ? false : mode === 'rw' ? true : m.RW, noCopy: true });
    }
  }
  for (const path of Object.keys(imageVolumes ?? {})) {
    const dst = cleanContainerPath(path, 'volume');
    if (taken.has(dst) || dst === '/') continue;
    taken.add(dst);
    mounts.push({
      Type: 'volume',
      Name: '',
      Source: '',
      Destination: dst,
      Driver: 'local',
      Mode: '',
      RW: true,
      Propagation: '',
    });
  }
  try {
    for (const m of mounts) {
      if (m.Type !== 'volume') continue;
      const isNew = !m.Name || !daemon.volumes.get(m.Name);
      const opts = { anonymous: !m.Name, labels: m.volumeLabels, options: m.volumeOptions ?? null };
      const v = await daemon.volumes.ensure(m.Name || undefined, opts);
      if (isNew) created.push(v.name);
      m.Name = v.name;
      m.Source = await daemon.volumes.mountFor(v.name, { rootfs, containerPath: m.Destination, noCopy: m.noCopy });
    }
  } catch (err) {
    await daemon.volumes.removeAnonymous(created).catch(() => undefined);
    throw err;
  }
}

/** The names of a container's volumes (for `docker rm -v`). */
export function volumeNames(mounts: MountPoint[]): string[] {
  return mounts.filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name!);
}
