// skiff.agent.v1 Networks: list, inspect, create and remove on skiffd's Docker API. The running containers on each
// network come from GET /containers/json (the network list does not carry them).
import { invalidArgument } from '../../common/errors.js';
import type { DockerClient, ServiceFactory } from '../contracts.js';
import { unary } from '../grpc.js';
import {
  dockerFilters,
  networkCreateBody,
  networkMembers,
  networkView,
  type EngineContainer,
  type EngineNetwork,
  type NetworkMsg,
  type StringList,
} from './resource-views.js';

/** Running containers' network memberships (without all: only running ones). */
async function members(docker: DockerClient): Promise<Map<string, string[]>> {
  return networkMembers(await docker.json<EngineContainer[]>('GET', '/containers/json'));
}

function networkPath(id: string): string {
  if (!id) throw invalidArgument('a network name or id is required');
  return `/networks/${encodeURIComponent(id)}`;
}

async function detail(docker: DockerClient, id: string): Promise<{ network: NetworkMsg; json: string }> {
  const [doc, m] = await Promise.all([docker.json<EngineNetwork>('GET', networkPath(id)), members(docker)]);
  return { network: networkView(doc, m), json: JSON.stringify(doc) };
}

export const networksService: ServiceFactory = (engine) => {
  const docker = engine.docker;
  return {
    List: unary(async (req: { filters: Record<string, StringList> }) => {
      const [nets, m] = await Promise.all([
        docker.json<EngineNetwork[]>('GET', '/networks', { query: { filters: dockerFilters(req.filters) } }),
        members(docker),
      ]);
      return { networks: nets.map((n) => networkView(n, m)) };
    }),

    Inspect: unary((req: { id: string }) => detail(docker, req.id)),

    Create: unary(
      async (req: {
        name: string;
        subnet: string;
        gateway: string;
        internal: boolean;
        labels: Record<string, string>;
      }) => {
        if (!req.name) throw invalidArgument('a network name is required');
        if (req.gateway && !req.subnet) throw invalidArgument('a gateway needs a subnet: give both, or neither');
        const created = await docker.json<{ Id: string }>('POST', '/networks/create', {
          body: networkCreateBody(req),
        });
        return detail(docker, created.Id);
      },
    ),

    Remove: unary(async (req: { id: string }) => {
      // bridge, host and none: 403 → FAILED_PRECONDITION with the engine's "pre-defined network" message
      await docker.json('DELETE', networkPath(req.id));
      return {};
    }),
  };
};
