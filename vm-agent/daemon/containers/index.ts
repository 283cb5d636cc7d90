// PLACEHOLDER written by the skiffd server/system/main engineer so that main.ts builds before this module exists.
// The module's owner (docs/daemon.md) owns this file and may replace it entirely: main.ts only needs the exports
// below (service factories may be async; register is a RegisterRoutes).
import { DockerError, type ContainerService, type Daemon, type RegisterRoutes } from '../contracts.js';

const todo = (): never => {
  throw new DockerError(501, 'containers are not implemented yet');
};

export function createContainerService(_daemon: Daemon): ContainerService | Promise<ContainerService> {
  return {
    get: async () => todo(),
    list: async () => [],
    taskId: (c) => c.id,
    wait: async () => todo(),
  };
}

export const register: RegisterRoutes = () => undefined;
