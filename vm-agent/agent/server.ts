// The agent's gRPC server: every skiff.agent.v1 service (proto/agent.proto) on one unix socket, each made by its
// services/*.ts factory from the engine.
import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Server, ServerCredentials, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProto } from '../common/grpc.js';
import { logger } from '../common/log.js';
import type { Engine, ServiceFactory } from './contracts.js';
import { socketAnswers } from './engine.js';
import { containersService } from './services/containers.js';
import { imagesService } from './services/images.js';
import { networksService } from './services/networks.js';
import { portsService } from './services/ports.js';
import { systemService } from './services/system.js';
import { vmService } from './services/vm.js';
import { volumesService } from './services/volumes.js';

const log = logger('agent');

const SERVICES: Record<string, ServiceFactory> = {
  System: systemService,
  Containers: containersService,
  Images: imagesService,
  Volumes: volumesService,
  Networks: networksService,
  Ports: portsService,
  Vm: vmService,
};

export interface AgentServer {
  server: Server;
  socketPath: string;
  /** Stop taking calls; open streams are cancelled after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/** A socket file left by an agent that is gone is removed; one that still answers is an error. */
async function claimSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket: move it away`);
  if (await socketAnswers(path, 500))
    throw new Error(`another process is serving ${path}: stop it first, or give another --socket`);
  rmSync(path, { force: true });
}

export async function startAgentServer(engine: Engine, socketPath: string): Promise<AgentServer> {
  const v1 = ((loadProto('agent.proto').skiff as GrpcObject).agent as GrpcObject).v1 as GrpcObject;
  const server = new Server({ 'grpc.max_receive_message_length': 64 << 20 });
  for (const [name, factory] of Object.entries(SERVICES))
    server.addService((v1[name] as ServiceClientConstructor).service, factory(engine));

  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  await claimSocket(socketPath);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(new Error(`cannot listen on ${socketPath}: ${err.message}`)) : resolve(),
    ),
  );
  // Root and the agent's group only: whoever reaches it runs containers.
  chmodSync(socketPath, 0o660);
  log.info(`serving skiff.agent.v1 on ${socketPath}`);

  const close = async (graceMs = 2000): Promise<void> => {
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    rmSync(socketPath, { force: true });
  };
  return { server, socketPath, close };
}
