// PLACEHOLDER written by the skiffd server/system/main engineer so that main.ts builds before this module exists.
// The module's owner (docs/daemon.md) owns this file and may replace it entirely: main.ts only needs the exports
// below (service factories may be async; register is a RegisterRoutes).
import { DockerError, type Daemon, type ImageService, type RegisterRoutes } from '../contracts.js';

const todo = (): never => {
  throw new DockerError(501, 'images are not implemented yet');
};

export function createImageService(_daemon: Daemon): ImageService | Promise<ImageService> {
  return {
    resolve: async () => todo(),
    prepareRootfs: async () => todo(),
    removeRootfs: async () => todo(),
    setInUse: () => undefined,
    diskUsage: async () => todo(),
  };
}

export const register: RegisterRoutes = () => undefined;
