// The contracts between skiffd's modules (docs/daemon.md). Each module implements its part and depends on the
// others only through these types, so they can be built and tested apart.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SupervisorClient } from './supervisor.js';

// ---------------------------------------------------------------------------------------------- errors

/** An error with the HTTP status Docker gives it; the server answers `{"message": message}`. */
export class DockerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DockerError';
  }
}
export const badRequest = (m: string): DockerError => new DockerError(400, m);
export const notFoundError = (m: string): DockerError => new DockerError(404, m);
export const conflict = (m: string): DockerError => new DockerError(409, m);
export const serverError = (m: string): DockerError => new DockerError(500, m);
export const notModified = (): DockerError => new DockerError(304, '');

// ---------------------------------------------------------------------------------------------- HTTP routing

/** Docker filters (`?filters=`), normalised from both the map and the legacy list form: name → values. */
export type Filters = Map<string, string[]>;

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Path parameters: `/containers/{id}/start` gives `params.id`. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the client asked for (path prefix), or the daemon's own for unversioned paths. */
  apiVersion: string;
  /** Docker's boolean query parsing: "", 0, no, false, none are false; absent is `dflt`. */
  bool(name: string, dflt?: boolean): boolean;
  filters(): Filters;
  /** The JSON body (`{}` when empty); a 400 when it is not JSON. */
  json<T = unknown>(): Promise<T>;
  /** Send JSON with a status (default 200) and `Content-Type: application/json`. */
  send(body: unknown, status?: number): void;
  /** 204 with no body. */
  noContent(): void;
  /** Begin a JSON-lines stream (events, progress): headers flushed at once. */
  stream(contentType?: string): { write(obj: unknown): void; end(): void; closed: Promise<void> };
  /**
   * Take over the connection for attach / exec start. With `Upgrade: tcp` answers 101, else 200 with a raw or
   * multiplexed stream content type. Any JSON body the client sent has been consumed; `socket` carries stdin in
   * and output out.
   */
  hijack(opts: { multiplexed: boolean }): Promise<Duplex>;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

export interface Router {
  /** `path` like `/containers/{id}/json`; served with and without a `/v1.xx` prefix. */
  add(method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE', path: string, handler: Handler): void;
}

/** Every module exports one of these; main.ts calls them all. */
export type RegisterRoutes = (router: Router, daemon: Daemon) => void;

// ---------------------------------------------------------------------------------------------- events

/** A Docker event (GET /events): Type, Action, Actor; the bus adds time, timeNano, scope and legacy fields. */
export interface DockerEvent {
  Type: 'container' | 'image' | 'volume' | 'network' | 'daemon';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

export interface EventBus {
  emit(e: DockerEvent): void;
}

// ---------------------------------------------------------------------------------------------- images

/** The OCI image config's `config` part (what container create merges). */
export interface ImageRuntimeConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  Healthcheck?: unknown;
}

export interface ImageRecord {
  /** sha256:<config digest> */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  created: string;
  size: number;
  config: ImageRuntimeConfig;
  /** The full image config JSON as stored. */
  raw: Record<string, unknown>;
}

/** What a container needs of its image's filesystem: mounts for the supervisor (overlay of snapshots + rw). */
export interface PreparedRootfs {
  mounts: Array<{ type: string; source: string; options: string[] }>;
  /** The writable layer (overlay upperdir) on the host: `docker diff`, `docker cp` into a stopped container. */
  upperDir: string;
  /** The image's layer dirs, lowest first (to read a stopped container's files with the upper dir). */
  lowerDirs: string[];
}

/** Writes one blob: bytes are hashed as they are written; commit verifies the digest (and size) and stores it. */
export interface BlobWriter {
  write(chunk: Buffer | Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly written: number;
  /** Verify against the expected digest/size (if given), fsync, move into the store. A mismatch throws and keeps nothing. */
  commit(): Promise<{ digest: string; size: number }>;
  /** Drop what was written (safe to call after a failed commit). */
  abort(): Promise<void>;
}

/** The content store: verified blobs by digest (`sha256:<hex>` only). Written by images/ and registry/. */
export interface ContentStore {
  has(digest: string): Promise<boolean>;
  size(digest: string): Promise<number | undefined>;
  /** The blob's file (read only; never write to it). */
  path(digest: string): string;
  read(digest: string): import('node:stream').Readable;
  /** A small blob (manifest, config) in memory. */
  readBuffer(digest: string, max?: number): Promise<Buffer>;
  writer(expected?: { digest?: string; size?: number }): Promise<BlobWriter>;
  /** Write a whole blob; verified as writer() does. */
  put(
    data: Buffer | AsyncIterable<Buffer | Uint8Array>,
    expected?: { digest?: string; size?: number },
  ): Promise<{ digest: string; size: number }>;
  /** Remove a blob (only one this caller wrote and nothing recorded uses: images/ collects the rest itself). */
  delete?(digest: string): Promise<void>;
}

/** A layer as a manifest lists it (the blob must be in the content store). */
export interface LayerDescriptor {
  digest: string;
  mediaType: string;
  size: number;
}

/** What the registry module needs of the image store, beyond ImageService. */
export interface ImageStore {
  content: ContentStore;
  /**
   * Record an image whose config and layer blobs are in the content store: unpacks the layers into snapshots
   * (shared, verified against the config's diff_ids, hostile input refused), records the image, tags `tag`
   * (e.g. "docker.io/library/busybox:latest", moved from any other image) and adds `repoDigest`
   * ("docker.io/library/busybox@sha256:<manifest digest>"). The manifest blob, when given, is kept for push.
   * Emits no event (the caller emits "pull").
   */
  commitImage(opts: {
    config: string;
    layers: LayerDescriptor[];
    manifest?: { digest: string; mediaType: string };
    tag?: string;
    repoDigest?: string;
    progress?: ProgressFn;
  }): Promise<ImageRecord>;
  /** For push: the image's config digest, layers and manifest (made now when the image has none stored). */
  manifestOf(ref: string): Promise<
    | {
        image: ImageRecord;
        config: { digest: string; size: number; mediaType: string };
        layers: LayerDescriptor[];
        /** The manifest it was pulled or loaded with (a blob in the content store), when there was one. */
        manifest?: { digest: string; mediaType: string };
      }
    | undefined
  >;
  /** Add a reference to an image (name normalised; the tag moves from any other image). */
  tag(imageId: string, ref: string): Promise<void>;
  /** Normalise a reference: "busybox" → "docker.io/library/busybox:latest"; digests kept. Throws 400 on bad input. */
  normalize(ref: string): string;
}

export interface ImageService {
  /** By name[:tag], name@digest, full or short id; undefined when unknown. Short names are docker.io/library/. */
  resolve(ref: string): Promise<ImageRecord | undefined>;
  /** Make the rootfs of a new container (its writable layer under the data root). */
  prepareRootfs(image: ImageRecord, containerId: string): Promise<PreparedRootfs>;
  /** Remove a container's writable layer. */
  removeRootfs(containerId: string): Promise<void>;
  /** Images that must not be removed without force, because a container uses them. */
  setInUse(isInUse: (imageId: string) => boolean): void;
  /** For /system/df. */
  diskUsage(): Promise<{ images: unknown[]; layersSize: number }>;
  /** The store beneath (content store, commit of pulled images): for registry/. */
  store?: ImageStore;
}

// ---------------------------------------------------------------------------------------------- containers

export interface ContainerRecordView {
  id: string;
  name: string; // with the leading "/"
  image: string; // the reference the user gave
  imageId: string;
  created: string;
  config: Record<string, unknown>; // Docker's Config (merged with the image's)
  hostConfig: Record<string, unknown>;
  logPath: string;
  /** The container's image rootfs (overlay mounts, writable layer): `docker cp` into a never-started container. */
  rootfs?: PreparedRootfs;
  state: {
    status: 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
    pid: number;
    exitCode: number;
    startedAt: string;
    finishedAt: string;
    oomKilled: boolean;
    error: string;
  };
}

export interface ContainerService {
  /** By full id, unique id prefix or name (with or without "/"); a 404 DockerError `No such container: ref`. */
  get(ref: string): Promise<ContainerRecordView>;
  list(): Promise<ContainerRecordView[]>;
  /** The supervisor's id for the container's task (the same as the container id). */
  taskId(c: ContainerRecordView): string;
  /** Wait for the container to leave "running" (condition as in /wait). */
  wait(ref: string, condition: 'not-running' | 'next-exit' | 'removed'): Promise<{ StatusCode: number }>;
}

// ---------------------------------------------------------------------------------------------- registry

/**
 * Credentials from `X-Registry-Auth` (base64url JSON) or from /auth: {username, password, serveraddress} or
 * {identitytoken}. `decodeRegistryAuth` in registry/ turns the header into this.
 */
export interface RegistryAuth {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** One line of a pull/push/load progress stream (dockerd's JSON message); the stream writes it + "\r\n". */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  stream?: string;
  aux?: unknown;
  errorDetail?: { code?: number; message: string };
  error?: string;
}

export type ProgressFn = (msg: ProgressMessage) => void;

export interface RegistryService {
  /**
   * Pull `ref` (`busybox`, `busybox:1`, `127.0.0.1:5000/x@sha256:…`; short names are docker.io/library/) into the
   * image store, reporting dockerd's progress lines. Throws a DockerError (404 manifest unknown, 401, 500 …) on
   * failure and leaves nothing half-written. Nothing is reported before the manifest is found, so a caller that
   * starts its stream at the first message can still answer an early failure with an HTTP status; after that,
   * the caller writes `{errorDetail: {message}, error: message}` (`progressError` in registry/).
   */
  pull(ref: string, auth: RegistryAuth | undefined, progress: ProgressFn, signal?: AbortSignal): Promise<ImageRecord>;
  /** Push a local image (`name[:tag]`); same error rules as pull. */
  push(ref: string, auth: RegistryAuth | undefined, progress: ProgressFn, signal?: AbortSignal): Promise<void>;
  /**
   * Check credentials against `server` (GET /v2/ with basic auth, following the token dance). Resolves with
   * dockerd's /auth answer fields; throws DockerError(401, the registry's message) when they are wrong.
   */
  login(server: string, username: string, password: string): Promise<{ Status: string; IdentityToken?: string }>;
}

// ---------------------------------------------------------------------------------------------- execs

/** What other modules need of the exec instances (kept in memory per container, as dockerd). */
export interface ExecRegistry {
  /** The container's exec ids (inspect's `ExecIDs`; null there when empty, as Docker). */
  idsOf(containerId: string): string[];
  /** Forget a removed container's execs. */
  forget(containerId: string): void;
}

/** Calls the container life cycle makes into the streams module (attach). */
export interface StreamHooks {
  /**
   * ContainerService's start calls `await daemon.streams?.beforeStart(id)` after Tasks.Create and before
   * Tasks.Start (each start and restart): attachers that came before the task existed (`docker run` attaches
   * before it starts) connect to it now, and those connecting are made sure of, so no output is missed. Bounded
   * in time; never throws.
   */
  beforeStart(containerId: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------- the daemon

export interface DaemonConfig {
  host: string; // unix socket path
  dataRoot: string; // /var/lib/skiff/daemon
  execRoot: string; // /run/skiff/daemon
  supervisorAddress: string; // unix socket path
  liveRestore: boolean;
  version: { api: string; minApi: string; engine: string };
}

/** What every module can reach. Built in main.ts. */
export interface Daemon {
  config: DaemonConfig;
  events: EventBus;
  images: ImageService;
  containers: ContainerService;
  /** The supervisor's gRPC clients (see vm-agent/daemon/supervisor.ts). */
  supervisor: SupervisorClient;
  /** Pull, push, login (registry/); optional so modules can be built without it. */
  registry?: RegistryService;
  /** Exec instances (containers/exec.ts; set by the streams module's register): inspect's ExecIDs. */
  execs?: ExecRegistry;
  /** Set by the streams module's register: what the container life cycle must call (StreamHooks). */
  streams?: StreamHooks;
}
