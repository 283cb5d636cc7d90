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

// ---------------------------------------------------------------------------------------------- networks

/** A network's endpoint settings as Docker's API carries them (NetworkingConfig.EndpointsConfig[name], connect). */
export interface EndpointConfig {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Aliases?: string[] | null;
  Links?: string[] | null;
  MacAddress?: string;
  DriverOpts?: Record<string, string> | null;
  GwPriority?: number;
}

/** A live endpoint: a container's interface on a network (inspect's NetworkSettings.Networks[name]). */
export interface EndpointState {
  networkId: string;
  networkName: string;
  endpointId: string;
  /** The interface name inside the container (eth0, eth1 …). */
  ifName: string;
  ipAddress: string;
  prefixLen: number;
  gateway: string;
  macAddress: string;
  /** What the user asked for (static address, aliases), kept for inspect. */
  config: EndpointConfig;
  /** Names this endpoint answers to in the network's DNS (container name, aliases, short id, hostname). */
  dnsNames: string[];
}

/** One published port as Docker shows it (NetworkSettings.Ports, `docker port`, ps). */
export interface PortMapping {
  /** Container side: port and protocol. */
  privatePort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** Host side: the address bound ("0.0.0.0" for all) and the port. */
  hostIp: string;
  hostPort: number;
}

/** What the container life cycle tells the network service about a container. */
export interface NetworkedContainer {
  id: string;
  name: string; // with the leading "/"
  hostname: string;
  hostConfig: Record<string, unknown>; // NetworkMode, PortBindings, PublishAllPorts, Dns…, ExtraHosts
  exposedPorts: string[]; // Config.ExposedPorts keys ("80/tcp")
}

/**
 * Networks, addresses, DNS and published ports (networks/). The container service calls it at these points in a
 * container's life; everything it returns is also kept by the service itself (persisted), so it survives restarts.
 */
export interface NetworkService {
  /**
   * Container create: check NetworkMode and NetworkingConfig.EndpointsConfig (unknown network → 404 "network X not
   * found", a static IP outside the subnet → 400, -p with network none/host/container: → 400 as dockerd) and
   * record the container's endpoint configs. Returns the resolv.conf nameservers the container should use
   * (the embedded DNS address of its first network) or undefined to keep the host's.
   */
  create(c: NetworkedContainer, endpoints: Record<string, EndpointConfig>): Promise<{ nameservers?: string[] }>;
  /**
   * Container start, after the task exists (its network namespace is /proc/<pid>/ns/net) and before its process
   * runs: make its interfaces on every network it is connected to (addresses from IPAM), reserve and publish its
   * ports. On any failure everything done so far is undone and a DockerError says what went wrong ("Bind for
   * 0.0.0.0:8080 failed: port is already allocated").
   */
  attach(c: NetworkedContainer, pid: number): Promise<void>;
  /** Container exit/stop: unpublish its ports, release its addresses (the veths go with the netns). Idempotent. */
  detach(containerId: string): Promise<void>;
  /** Container rename: its DNS names follow at once. */
  rename(containerId: string, newName: string): Promise<void>;
  /** Container remove: forget its endpoint configs (after detach). */
  forget(containerId: string): Promise<void>;
  /** For inspect: the container's live (or configured, when not running) endpoints by network name. */
  endpointsOf(containerId: string): Record<string, EndpointState | { config: EndpointConfig; networkId: string }>;
  /** For inspect, ps and `docker port`: the container's published ports (empty when not running). */
  portsOf(containerId: string): PortMapping[];
  /** For /etc/hosts: the container's own addresses (first network first). */
  addressesOf(containerId: string): string[];
  /** The address `host.docker.internal` and `--add-host x:host-gateway` resolve to. */
  hostGatewayIp(): string;
  /**
   * Daemon start, once the container service knows which containers still run: drop the addresses and ports of
   * those that do not, take the port reservations of those that do again, re-apply bridges, rules and DNS.
   */
  recover(isRunning: (containerId: string) => boolean): Promise<void>;
  /** Daemon stop: close the DNS servers and port reservations (the kernel's NAT rules stay: containers go on). */
  close?(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------- volumes

export interface VolumeRecordView {
  name: string;
  driver: 'local';
  /** The directory mounted into containers (<data-root>/volumes/<name>/_data). */
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Made for one container (image VOLUME, `-v /path`): removed with it by `docker rm -v` and `--rm`. */
  anonymous: boolean;
}

/**
 * Named and anonymous volumes (volumes/). The container service resolves volume mounts through it; a volume in
 * use by any container (running or not) cannot be removed (409).
 */
export interface VolumeService {
  /** By name; undefined when unknown. */
  get(name: string): VolumeRecordView | undefined;
  /** Create if missing (as `docker run -v name:/path` does); labels and options only apply to a new one. */
  ensure(
    name: string | undefined,
    opts?: {
      labels?: Record<string, string> | null;
      /** The local driver's options (type, device, o: `--mount volume-opt=…`). */
      options?: Record<string, string> | null;
      anonymous?: boolean;
    },
  ): Promise<VolumeRecordView>;
  /**
   * Make the volume's directory ready to bind-mount (mount the local driver's device/type/o when it has options)
   * and, when it is empty and never populated, copy `imageDir` (the image's content at the mount path, read from
   * `rootfs`) into it, as Docker does on the first mount. Returns the host path to bind.
   */
  mountFor(name: string, opts: { rootfs?: PreparedRootfs; containerPath: string; noCopy?: boolean }): Promise<string>;
  /** Container remove with -v (or --rm): remove its anonymous volumes unless another container uses them. */
  removeAnonymous(names: string[]): Promise<void>;
  /** /system/df's Volumes: each volume's JSON with UsageData {Size, RefCount}. */
  diskUsage(): Array<Record<string, unknown>>;
  /** Tells the service which volumes containers use (409 on remove, dangling filter, UsageData). */
  setUsers(usersOf: (name: string) => string[]): void;
  close?(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------- the daemon

export interface DaemonConfig {
  host: string; // unix socket path
  dataRoot: string; // /var/lib/skiff/daemon
  execRoot: string; // /run/skiff/daemon
  supervisorAddress: string; // unix socket path
  liveRestore: boolean;
  /** The default bridge: its device and its address with prefix (`--bip`, default 192.168.215.1/24). */
  bridge: { name: string; cidr: string };
  /** Where user networks get their subnets (`--default-address-pool base=10.221.0.0/16,size=24`). */
  addressPools: Array<{ base: string; size: number }>;
  /** What host.docker.internal and host-gateway resolve to (`--host-gateway-ip`; default the bridge's gateway). */
  hostGatewayIp?: string;
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
  /** Networks, DNS and published ports (networks/). */
  networks: NetworkService;
  /** Named and anonymous volumes (volumes/). */
  volumes: VolumeService;
}
