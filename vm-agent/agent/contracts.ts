// The contracts between skiff-agent's modules (docs/agent.md). The gRPC API itself is proto/agent.proto; each
// service file turns it into calls on skiffd's Docker API through DockerClient.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';

// ---------------------------------------------------------------------------------------------- the Docker API client

export interface DockerRequest {
  /** Query parameters; undefined values are left out, objects (filters) are JSON-encoded. */
  query?: Record<string, string | number | boolean | object | undefined>;
  /** A JSON body. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Aborts the request (and closes a stream). */
  signal?: AbortSignal;
}

/**
 * A client of skiffd's Docker Engine API over its unix socket (docker-client.ts). Every failure is an EngineError:
 * the engine's HTTP status and message, or status 0 when the engine cannot be reached (down or restarting).
 */
export interface DockerClient {
  readonly socketPath: string;
  /** A request whose answer is JSON (or empty: undefined). */
  json<T = unknown>(method: string, path: string, req?: DockerRequest): Promise<T>;
  /** A request whose answer is a stream (logs, stats, exports): the response once its status was checked. */
  stream(method: string, path: string, req?: DockerRequest): Promise<IncomingMessage>;
  /** A JSON-lines answer (events, pull progress), one parsed object at a time; ends when the engine ends it. */
  jsonLines<T = unknown>(method: string, path: string, req?: DockerRequest): AsyncIterable<T>;
  /** POST with `Upgrade: tcp` (exec start, attach): the raw connection, multiplexed unless the process has a tty. */
  hijack(path: string, req?: DockerRequest): Promise<Duplex>;
}

/** The engine said no (status and its message), or could not be reached (status 0). */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

// ---------------------------------------------------------------------------------------------- the engine processes

export type ProcessState = 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPED';

export interface ProcessHealth {
  name: string;
  state: ProcessState;
  pid: number;
  restarts: number;
  lastExit: string;
  since: Date;
}

/** A Docker event as skiffd streams it (GET /events). */
export interface DockerEventMsg {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

/** An event of the agent's own: the engine's health ("engine": ready, restarting, down). */
export type EngineEventListener = (e: DockerEventMsg) => void;

/** What every service can reach (engine.ts). */
export interface Engine {
  docker: DockerClient;
  /** The agent's settings. */
  config: AgentConfig;
  /** skiffd and skiff-supervisor as the agent keeps them. */
  health(): ProcessHealth[];
  /** skiffd answers /_ping and its supervisor is up. */
  ready(): boolean;
  /**
   * Every Docker event (and the agent's "engine" events) from now on, across skiffd restarts (the agent resubscribes
   * with `since` so none is lost). Returns the unsubscribe function.
   */
  subscribe(listener: EngineEventListener): () => void;
}

export interface AgentConfig {
  /** Where the agent serves skiff.agent.v1 (/run/skiff/agent.sock). */
  socket: string;
  /** skiffd's Docker API socket (/run/skiff/docker.sock). */
  dockerSocket: string;
  supervisorSocket: string;
  /** skiffd's --data-root (disk use is measured on its file system). */
  dataRoot: string;
  /** Where the engine's run-time state lives (/run/skiff). */
  runDir: string;
  /** The programs the agent starts. */
  skiffd: string;
  supervisor: string;
  runtime: string;
  shim: string;
  /** More skiffd flags (--bip …). */
  skiffdArgs: string[];
  logLevel: string;
}

/** Each services/*.ts exports one: the handlers of one proto service. */
export type ServiceFactory = (engine: Engine) => UntypedServiceImplementation;
