// networks/: bridges, container endpoints, published ports and the embedded DNS (docs/networking.md). main.ts makes
// the service with createNetworkService before the container service, and registers the /networks routes.
//
// After a restart the container service must call `recover(isRunning)` once it knows which containers still run
// (it is made after this service): endpoints and ports of containers that stopped while skiffd was away are dropped,
// and the host ports of the running ones are reserved again.
import type { Daemon, NetworkService, RegisterRoutes } from '../contracts.js';
import { registerNetworkRoutes } from './routes.js';
import { Networks } from './service.js';
import type { NetworkManager } from './types.js';

export { Networks } from './service.js';

export type NetworkServiceImpl = NetworkService &
  NetworkManager & {
    /** See above: call once after start-up, when the running containers are known. */
    recover(isRunning: (id: string) => boolean): Promise<void>;
  };

/** Loads the state and makes the predefined networks, bridges, firewall rules and DNS listeners. */
export async function createNetworkService(daemon: Daemon): Promise<NetworkServiceImpl> {
  const n = new Networks(daemon);
  await n.init();
  return n;
}

export const register: RegisterRoutes = (router, daemon) => {
  const n = daemon.networks;
  if (!(n instanceof Networks)) throw new Error('networks: the daemon has no network service of this module');
  registerNetworkRoutes(router, daemon, n);
};
