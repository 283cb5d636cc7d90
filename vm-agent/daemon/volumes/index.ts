// volumes/ (docs/networking.md, Volumes): the local driver's named and anonymous volumes (store.ts), their mounts
// and copy-up (mount.ts), the service the containers use (service.ts) and the /volumes routes (routes.ts).
import type { Daemon, VolumeService } from '../contracts.js';
import { Volumes } from './service.js';

export { register } from './routes.js';
export { Volumes } from './service.js';

/** Made before the container service (which tells it who uses which volume); loads the volumes from disk. */
export async function createVolumeService(daemon: Daemon): Promise<VolumeService> {
  const v = new Volumes(daemon);
  v.init();
  return Promise.resolve(v);
}
