// The container life cycle, through the supervisor: create, start, stop, restart, kill, pause/unpause, remove,
// rename, update, prune; exit tracking from the supervisor's events; restart policies with dockerd's back-off;
// AutoRemove; waits; recovery after a daemon restart (live restore). Implements ContainerService.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, logger } from '../../common/log.js';
import { KeyedLock } from '../../common/keyed-lock.js';
import { fromTimestamp, nowRfc3339, type Timestamp } from '../../common/timestamp.js';
import {
  DockerError,
  badRequest,
  conflict,
  notFoundError,
  notModified,
  serverError,
  type NetworkedContainer,
  type ContainerService,
  type Daemon,
  type ImageRecord,
} from '../contracts.js';
import { isNotFound, type EnvelopeMsg, type SupervisorClient } from '../supervisor.js';
import {
  cgroupVersion,
  hostCaps,
  hostDevices,
  hostHostname,
  initBinary,
  kernelRelease,
  readRootfsFile,
  statDevice,
} from './host.js';
import { HealthMonitors, validateHealthcheck } from './health.js';
import { generateName, validNameRe } from './names.js';
import { goArch } from './seccomp.js';
import {
  buildSpec,
  checkResources,
  hostsFile,
  mergeImageConfig,
  normalizeHostConfig,
  parseGroup,
  parsePasswd,
  parseSecurityOpt,
  parseSignal,
  parseSize,
  pathAndArgs,
  resolvConf,
  resolveUser,
  resources,
  tweakCapabilities,
  userMounts,
  type Json,
} from './spec.js';
import { ContainerStore, ZERO_TIME, type ContainerRecord } from './store.js';
import { resolveVolumeMounts, volumeNames } from '../volumes/container-mounts.js';

const log = logger('containers');

type Listener = (kind: 'exit' | 'state' | 'removed', rec: ContainerRecord) => void;

interface RestartState {
  delay: number;
  timer?: NodeJS.Timeout;
}

const BACKOFF_START = 100;
const BACKOFF_MAX = 60_000;
const BACKOFF_RESET_AFTER = 10_000;

function shortImageRef(ref: string): string {
  // "No such image: busybox:latest": the reference with its default tag, as the CLI expects to pull it.
  if (/^(sha256:)?[0-9a-f]{12,64}$/.test(ref) || ref.includes('@')) return ref;
  const lastSlash = ref.lastIndexOf('/');
  return ref.slice(lastSlash + 1).includes(':') ? ref : `${ref}:latest`;
}

function isActive(rec: ContainerRecord): boolean {
  const s = rec.state.status;
  return s === 'running' || s === 'paused' || s === 'restarting';
}

export class Containers implements ContainerService {
  readonly store: ContainerStore;
  private readonly lock = new KeyedLock();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly restarts = new Map<string, RestartState>();
  private readonly sup: SupervisorClient;
  private eventsStream: { cancel(): void } | undefined;
  /** Healthcheck probes of running containers (health.ts). */
  private readonly health: HealthMonitors;
  private closed = false;

  constructor(private readonly daemon: Daemon) {
    this.store = new ContainerStore(daemon.config.dataRoot);
    this.sup = daemon.supervisor;
    this.health = new HealthMonitors(this.sup, {
      find: (id) => this.store.find(id),
      persist: (rec) => this.store.put(rec),
      emit: (rec, action, extra) => this.emit(rec, action, extra),
    });
  }

  // ----- ContainerService ---------------------------------------------------------------------------------------

  async get(ref: string): Promise<ContainerRecord> {
    return this.store.get(ref);
  }

  async list(): Promise<ContainerRecord[]> {
    return this.store.list();
  }

  taskId(c: { id: string }): string {
    return c.id;
  }

  async wait(ref: string, condition: 'not-running' | 'next-exit' | 'removed'): Promise<{ StatusCode: number }> {
    const rec = this.store.get(ref);
    const id = rec.id;
    if (condition === 'not-running' && !isActive(rec)) return { StatusCode: rec.state.exitCode };
    return new Promise((resolve) => {
      const l: Listener = (kind, r) => {
        let done = false;
        if (condition === 'removed') done = kind === 'removed';
        else if (condition === 'next-exit') done = kind === 'exit' || kind === 'removed';
        else done = kind === 'removed' || !isActive(r);
        if (done) {
          this.listeners.get(id)?.delete(l);
          resolve({ StatusCode: r.state.exitCode });
        }
      };
      this.listen(id, l);
    });
  }

  private listen(id: string, l: Listener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(l);
    return () => set.delete(l);
  }

  private notify(kind: 'exit' | 'state' | 'removed', rec: ContainerRecord): void {
    for (const l of [...(this.listeners.get(rec.id) ?? [])]) l(kind, rec);
    if (kind === 'removed') this.listeners.delete(rec.id);
  }

  /** Images used by a container (rmi without force gets a 409). */
  imageInUse(imageId: string): boolean {
    return this.store.list().some((c) => c.imageId === imageId);
  }

  // ----- events -------------------------------------------------------------------------------------------------

  emit(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    const labels = (rec.config.Labels as Record<string, string> | null) ?? {};
    this.daemon.events.emit({
      Type: 'container',
      Action: action,
      Actor: { ID: rec.id, Attributes: { ...labels, image: rec.image, name: rec.name.slice(1), ...extra } },
    });
  }

  private save(rec: ContainerRecord): void {
    this.store.put(rec);
    this.notify('state', rec);
  }

  // ----- create -------------------------------------------------------------------------------------------------

  async create(body: Json, nameIn: string | null): Promise<{ Id: string; Warnings: string[] }> {
    const imageRef = typeof body.Image === 'string' ? body.Image : '';
    if (!imageRef) throw badRequest('Config cannot be empty in order to create a container');
    let name = nameIn ?? '';
    if (name) {
      if (!validNameRe.test(name))
        throw badRequest(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      if (!name.startsWith('/')) name = `/${name}`;
      const owner = this.store.nameOwner(name);
      if (owner)
        throw conflict(
          `Conflict. The container name "${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
    }
    const image = await this.daemon.images.resolve(imageRef);
    if (!image) throw notFoundError(`No such image: ${shortImageRef(imageRef)}`);

    const { HostConfig, NetworkingConfig, ...configIn } = body;
    const hostConfig = normalizeHostConfig(HostConfig as Json | undefined);
    const config = mergeImageConfig(configIn, image.config);
    validateHealthcheck(config.Healthcheck);
    config.Image = imageRef;
    // Checked now so that create, not start, fails on them.
    const mountPoints = userMounts(hostConfig);
    parseSecurityOpt(hostConfig.SecurityOpt as string[] | null);
    tweakCapabilities(hostConfig.CapAdd, hostConfig.CapDrop, !!hostConfig.Privileged, hostCaps());
    if (hostConfig.Init && !initBinary())
      throw new DockerError(501, '--init is not available yet: skiff-docker-init is not installed');
    for (const m of (hostConfig.Mounts as Json[] | null) ?? [])
      if (m.Type === 'bind' && !existsSync(String(m.Source)))
        throw badRequest(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
    const logOpts = (hostConfig.LogConfig.Config ?? {}) as Record<string, string>;
    if (logOpts['max-size']) parseSize(logOpts['max-size']);
    if (logOpts['max-file'] && !/^\d+$/.test(logOpts['max-file']))
      throw badRequest(`invalid value for max-file: ${logOpts['max-file']}`);

    let id: string;
    do id = randomBytes(32).toString('hex');
    while (/^\d+$/.test(id.slice(0, 12)) || this.store.has(id));
    if (!name) {
      for (let i = 0; ; i++) {
        name = `/${generateName(i > 5 ? i : 0)}`;
        if (!this.store.nameOwner(name)) break;
      }
    }
    if (!config.Hostname) config.Hostname = hostConfig.NetworkMode === 'host' ? hostHostname() : id.slice(0, 12);
    config.Domainname = config.Domainname ?? '';
    config.AttachStdin = !!config.AttachStdin;
    config.AttachStdout = !!config.AttachStdout;
    config.AttachStderr = !!config.AttachStderr;
    config.Tty = !!config.Tty;
    config.OpenStdin = !!config.OpenStdin;
    config.StdinOnce = !!config.StdinOnce;
    config.Volumes = config.Volumes ?? null;
    config.OnBuild = config.OnBuild ?? null;

    const dir = this.store.dir(id);
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    this.store.reserveName(name, id);
    const newVolumes: string[] = [];
    try {
      // -v sources that do not exist are made (as dockerd does); --mount ones were checked above.
      for (const b of (hostConfig.Binds as string[] | null) ?? []) {
        const src = b.split(':')[0]!;
        if (src.startsWith('/') && !existsSync(src)) mkdirSync(src, { recursive: true, mode: 0o755 });
      }
      const endpoints = ((NetworkingConfig as Json | undefined)?.EndpointsConfig ?? {}) as Record<string, Json>;
      let nameservers: string[] | undefined;
      try {
        ({ nameservers } = await this.daemon.networks.create(
          { id, name, hostname: String(config.Hostname), hostConfig, exposedPorts: exposedPorts(config) },
          endpoints,
        ));
      } catch (err) {
        // An unknown network fails the start, not the create, as dockerd: the CLI takes any 404 from create for a
        // missing image and would try to pull it. The network service records the container when it starts.
        if (!(err instanceof DockerError && err.status === 404)) throw err;
      }
      const files = this.writeEtcFiles(id, config, hostConfig, nameservers);
      const rootfs = await this.daemon.images.prepareRootfs(image, id);
      await resolveVolumeMounts(this.daemon, mountPoints, { config, hostConfig, rootfs }, newVolumes);
      const { path, args } = pathAndArgs(config);
      const rec: ContainerRecord = {
        id,
        name,
        image: imageRef,
        imageId: image.id,
        created: nowRfc3339(),
        config,
        hostConfig,
        logPath: hostConfig.LogConfig.Type === 'none' ? '' : join(dir, `${id}-json.log`),
        state: {
          status: 'created',
          pid: 0,
          exitCode: 0,
          startedAt: ZERO_TIME,
          finishedAt: ZERO_TIME,
          oomKilled: false,
          error: '',
        },
        path,
        args,
        rootfs,
        mountPoints,
        restartCount: 0,
        manuallyStopped: false,
        hasBeenStarted: false,
        hostnamePath: files.hostname,
        hostsPath: files.hosts,
        resolvConfPath: files.resolvConf,
        platform: 'linux',
      };
      this.store.put(rec);
      this.emit(rec, 'create');
      return { Id: id, Warnings: [] };
    } catch (err) {
      await this.daemon.networks.forget(id).catch(() => undefined);
      this.store.releaseName(name, id);
      await this.daemon.images.removeRootfs(id).catch(() => undefined);
      this.store.remove(id);
      await this.daemon.volumes.removeAnonymous(newVolumes).catch(() => undefined);
      const { rmSync } = await import('node:fs');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private writeEtcFiles(
    id: string,
    config: Json,
    hc: Json,
    nameservers: string[] | undefined,
  ): { hostname: string; hosts: string; resolvConf: string } {
    const dir = this.store.dir(id);
    const hostNet = hc.NetworkMode === 'host';
    const p = { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
    writeFileSync(p.hostname, `${config.Hostname}\n`, { mode: 0o644 });
    let hosts = hostsFile(hc.ExtraHosts as string[] | null, undefined, this.daemon.networks.hostGatewayIp());
    if (hostNet && existsSync('/etc/hosts')) hosts = readFileSync('/etc/hosts', 'utf8');
    writeFileSync(p.hosts, hosts, { mode: 0o644 });
    const hostResolv = existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '';
    // On bridge networks the embedded DNS (on the gateway) answers: container names, host.docker.internal, and
    // the host's resolvers for the rest; --dns still wins.
    const dns = (hc.Dns as string[] | null)?.length ? (hc.Dns as string[]) : nameservers;
    writeFileSync(
      p.resolvConf,
      resolvConf(hostResolv, { dns, search: hc.DnsSearch, options: hc.DnsOptions, hostNetwork: hostNet }),
      { mode: 0o644 },
    );
    return p;
  }

  /** /etc/hosts once the container has its addresses (written in place: it is already bind-mounted). */
  private writeHostsWithSelf(rec: ContainerRecord): void {
    if (rec.hostConfig.NetworkMode === 'host') return;
    const ip = this.daemon.networks.addressesOf(rec.id)[0];
    if (!ip) return;
    const names = [String(rec.config.Hostname)];
    writeFileSync(
      rec.hostsPath,
      hostsFile(rec.hostConfig.ExtraHosts as string[] | null, { ip, names }, this.daemon.networks.hostGatewayIp()),
    );
  }

  private netContainer(rec: ContainerRecord): NetworkedContainer {
    return {
      id: rec.id,
      name: rec.name,
      hostname: String(rec.config.Hostname ?? ''),
      hostConfig: rec.hostConfig,
      exposedPorts: exposedPorts(rec.config),
    };
  }

  // ----- start --------------------------------------------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const rec0 = this.store.get(ref);
    await this.lock
      .run(rec0.id, async () => {
        const rec = this.store.get(rec0.id);
        const s = rec.state.status;
        if (s === 'running') throw notModified();
        if (s === 'paused') throw conflict('cannot start a paused container, try unpause instead');
        if (s === 'removing') throw conflict(`container is marked for removal and cannot be started`);
        if (s === 'dead') throw conflict(`container is marked as dead and cannot be started`);
        if (s === 'restarting') this.cancelRestart(rec.id);
        rec.manuallyStopped = false;
        await this.doStart(rec);
      })
      .catch(async (err: unknown) => {
        // As dockerd: a --rm container that cannot start is removed, so `wait?condition=removed` (docker run --rm)
        // ends instead of waiting forever.
        const rec = this.store.find(rec0.id);
        if (
          rec &&
          rec.hostConfig.AutoRemove &&
          rec.state.status !== 'running' &&
          !(err instanceof DockerError && err.status === 304)
        )
          await this.remove(rec.id, { force: true, volumes: false }).catch(() => undefined);
        throw err;
      });
  }

  private spec(rec: ContainerRecord): Json {
    const passwd = parsePasswd(readRootfsFile(rec.rootfs, 'etc/passwd') ?? '');
    const groups = parseGroup(readRootfsFile(rec.rootfs, 'etc/group') ?? '');
    const user = resolveUser(String(rec.config.User ?? ''), passwd, groups, rec.hostConfig.GroupAdd as string[] | null);
    return buildSpec({
      id: rec.id,
      config: rec.config,
      hostConfig: rec.hostConfig,
      user,
      files: { hostname: rec.hostnamePath, hosts: rec.hostsPath, resolvConf: rec.resolvConfPath },
      allCaps: hostCaps(),
      arch: goArch(),
      kernel: kernelRelease(),
      cgroupVersion: cgroupVersion(),
      initPath: initBinary(),
      namespacePath: (ref, ns) => {
        const other = this.store.get(ref);
        if (other.state.status !== 'running' && other.state.status !== 'paused')
          throw conflict(`cannot join the namespaces of container ${other.id}: it is not running`);
        const name = ns === 'network' ? 'net' : ns === 'mount' ? 'mnt' : ns;
        return `/proc/${other.state.pid}/ns/${name}`;
      },
      statDevice,
      hostDevices,
      hostHostname: hostHostname(),
      mountPoints: rec.mountPoints,
    });
  }

  /** Supervisor container (fresh spec) + task + start. Called under the container's lock. */
  private async doStart(rec: ContainerRecord): Promise<void> {
    const id = rec.id;
    try {
      const spec = this.spec(rec);
      await this.sup.tasks.delete(id).catch(() => undefined);
      await this.sup.containers.delete(id).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
      const lo = ((rec.hostConfig.LogConfig as Json | undefined)?.Config ?? {}) as Record<string, string>;
      await this.sup.containers.create({
        id,
        spec: Buffer.from(JSON.stringify(spec)),
        rootfs: rec.rootfs.mounts,
        labels: { 'io.skiff.daemon': 'skiffd' },
        log: {
          path: rec.logPath,
          max_size: lo['max-size'] ? parseSize(lo['max-size']) : 0,
          max_file: lo['max-file'] ? Number(lo['max-file']) : 1,
        },
      });
      const task = await this.sup.tasks.create(id, !!rec.config.OpenStdin);
      // Its network namespace exists now and its program has not run yet: give it its interfaces and ports.
      await this.daemon.networks.attach(this.netContainer(rec), task.pid);
      this.writeHostsWithSelf(rec);
      await this.daemon.streams?.beforeStart(id).catch(() => undefined);
      // Taken before the start: a program that exits at once must not have finished before it started.
      const startedAt = nowRfc3339();
      const { pid } = await this.sup.tasks.start(id);
      rec.state = {
        ...rec.state,
        status: 'running',
        pid,
        exitCode: 0,
        error: '',
        oomKilled: false,
        startedAt,
      };
      rec.hasBeenStarted = true;
      this.health.start(rec);
      this.save(rec);
      this.emit(rec, 'start');
    } catch (err) {
      await this.sup.tasks.delete(id).catch(() => undefined);
      await this.daemon.networks
        .detach(id)
        .catch((e) => log.warn(`container ${id}: network detach: ${errorMessage(e)}`));
      const msg = errorMessage(err);
      const notFound = /not found|no such file|executable file/i.test(msg);
      const denied = /permission denied/i.test(msg);
      rec.state = {
        ...rec.state,
        status: rec.hasBeenStarted ? 'exited' : 'created',
        pid: 0,
        exitCode: notFound ? 127 : denied ? 126 : 128,
        error: msg,
      };
      this.save(rec);
      if (err instanceof DockerError) throw err;
      throw new DockerError(
        notFound || denied ? 400 : 500,
        `failed to create task for container: ${msg}${/: unknown$/.test(msg) ? '' : ': unknown'}`,
      );
    }
  }

  // ----- exits --------------------------------------------------------------------------------------------------

  /** Subscribe to the supervisor's exits and OOM events; re-subscribe (and re-sync) when the stream breaks. */
  private subscribe(): void {
    if (this.closed) return;
    const stream = this.sup.events.subscribe(['topic==/tasks/exit', 'topic==/tasks/oom']);
    this.eventsStream = stream;
    let broke = false;
    const again = (): void => {
      if (broke || this.closed) return;
      broke = true;
      setTimeout(() => {
        this.subscribe();
        void this.resync();
      }, 500).unref();
    };
    stream.on('data', (e: EnvelopeMsg) => this.onEvent(e));
    stream.on('error', again);
    stream.on('end', again);
  }

  private onEvent(e: EnvelopeMsg): void {
    const rec = this.store.find(e.container_id);
    if (!rec || rec.id !== e.container_id) return;
    if (e.topic === '/tasks/oom') {
      this.emit(rec, 'oom');
      return;
    }
    if (e.topic === '/tasks/exit' && e.task_exit && !e.task_exit.exec_id) {
      const x = e.task_exit;
      void this.lock
        .run(rec.id, () =>
          this.applyExit(rec.id, {
            pid: x.pid,
            exitCode: x.exit_status,
            exitedAt: x.exited_at,
            oomKilled: x.oom_killed,
            reason: x.reason,
          }),
        )
        .catch((err) => log.error(`container ${rec.id}: handling its exit: ${errorMessage(err)}`));
    }
  }

  /** Record an exit once (under the lock); then the restart policy or AutoRemove. */
  private async applyExit(
    id: string,
    x: { pid: number; exitCode: number; exitedAt: Timestamp | null; oomKilled: boolean; reason?: string },
  ): Promise<void> {
    const rec = this.store.find(id);
    if (!rec || rec.id !== id) return;
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') return;
    if (x.pid && rec.state.pid && x.pid !== rec.state.pid) return; // an earlier run's exit
    this.health.stop(id);
    await this.sup.tasks.delete(id).catch(() => undefined);
    await this.daemon.networks
      .detach(id)
      .catch((err) => log.warn(`container ${id}: network detach: ${errorMessage(err)}`));
    const finishedAt = fromTimestamp(x.exitedAt) ?? nowRfc3339();
    const ranMs = Date.parse(finishedAt) - Date.parse(rec.state.startedAt);
    rec.state = {
      ...rec.state,
      status: 'exited',
      pid: 0,
      exitCode: x.exitCode,
      finishedAt,
      oomKilled: x.oomKilled,
      error: x.reason && x.reason !== 'exited while the supervisor was down' ? x.reason : '',
    };
    const restart = this.shouldRestart(rec);
    if (restart) rec.state.status = 'restarting';
    this.store.put(rec);
    if (x.oomKilled) this.emit(rec, 'oom');
    const seconds = Number.isFinite(ranMs) ? Math.max(0, Math.round(ranMs / 1000)) : 0;
    this.emit(rec, 'die', { exitCode: String(x.exitCode), execDuration: String(seconds) });
    this.notify('exit', rec);
    if (restart) this.scheduleRestart(rec, ranMs);
    else if (rec.hostConfig.AutoRemove) setImmediate(() => void this.autoRemove(rec.id));
  }

  private async autoRemove(id: string): Promise<void> {
    try {
      await this.remove(id, { force: false, volumes: false });
    } catch (err) {
      if (!(err instanceof DockerError && err.status === 404))
        log.error(`container ${id}: auto-remove failed: ${errorMessage(err)}`);
    }
  }

  private shouldRestart(rec: ContainerRecord): boolean {
    if (rec.manuallyStopped || this.closed) return false;
    const rp = (rec.hostConfig.RestartPolicy ?? {}) as { Name?: string; MaximumRetryCount?: number };
    switch (rp.Name) {
      case 'always':
      case 'unless-stopped':
        return true;
      case 'on-failure':
        return rec.state.exitCode !== 0 && (!rp.MaximumRetryCount || rec.restartCount < rp.MaximumRetryCount);
      default:
        return false;
    }
  }

  private scheduleRestart(rec: ContainerRecord, ranMs: number): void {
    const st = this.restarts.get(rec.id) ?? { delay: 0 };
    if (st.timer) clearTimeout(st.timer);
    st.delay = ranMs >= BACKOFF_RESET_AFTER || st.delay === 0 ? BACKOFF_START : Math.min(st.delay * 2, BACKOFF_MAX);
    this.restarts.set(rec.id, st);
    st.timer = setTimeout(() => {
      st.timer = undefined;
      void this.lock
        .run(rec.id, async () => {
          const cur = this.store.find(rec.id);
          if (!cur || cur.id !== rec.id || cur.state.status !== 'restarting') return;
          cur.restartCount++;
          try {
            await this.doStart(cur);
          } catch (err) {
            log.warn(`container ${cur.id}: restart failed: ${errorMessage(err)}`);
            cur.state.status = 'exited';
            this.save(cur);
            this.notify('exit', cur);
          }
        })
        .catch((err) => log.error(`container ${rec.id}: restart: ${errorMessage(err)}`));
    }, st.delay);
  }

  private cancelRestart(id: string): void {
    const st = this.restarts.get(id);
    if (st?.timer) clearTimeout(st.timer);
    this.restarts.delete(id);
  }

  /** Wait until the container leaves running/paused (its exit applied), up to ms (-1: forever). */
  private exited(id: string, ms: number): { done: Promise<boolean>; cancel(): void } {
    let off = (): void => undefined;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<boolean>((resolve) => {
      const rec = this.store.find(id);
      if (!rec || (rec.state.status !== 'running' && rec.state.status !== 'paused')) return resolve(true);
      off = this.listen(id, (kind, r) => {
        if (kind === 'removed' || (r.state.status !== 'running' && r.state.status !== 'paused')) {
          off();
          if (timer) clearTimeout(timer);
          resolve(true);
        }
      });
      if (ms >= 0)
        timer = setTimeout(() => {
          off();
          resolve(false);
        }, ms);
    });
    return {
      done,
      cancel: () => {
        off();
        if (timer) clearTimeout(timer);
      },
    };
  }

  // ----- stop, kill, restart, pause -----------------------------------------------------------------------------

  private stopSignal(rec: ContainerRecord): number {
    try {
      return parseSignal(String(rec.config.StopSignal || 'SIGTERM'));
    } catch {
      return 15;
    }
  }

  /** Signal, wait t seconds, SIGKILL. Returns false when the container was not running (304). */
  private async stopContainer(rec: ContainerRecord, t: number | undefined, signal?: number): Promise<boolean> {
    if (rec.state.status === 'restarting') {
      // Under the lock: a restart already under way finishes first, and is then stopped as a running container.
      const stopped = await this.lock.run(rec.id, async () => {
        if (rec.state.status !== 'restarting') return false;
        this.cancelRestart(rec.id);
        rec.manuallyStopped = true;
        rec.state.status = 'exited';
        this.save(rec);
        this.notify('exit', rec);
        return true;
      });
      if (stopped) {
        this.emit(rec, 'stop');
        return true;
      }
    }
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') return false;
    rec.manuallyStopped = true;
    this.store.put(rec);
    this.health.stop(rec.id);
    const sig = signal ?? this.stopSignal(rec);
    const timeout = t ?? (typeof rec.config.StopTimeout === 'number' ? (rec.config.StopTimeout as number) : 10);
    const w = this.exited(rec.id, timeout < 0 ? -1 : timeout * 1000);
    try {
      await this.signal(rec, sig);
    } catch (err) {
      if (!isNotFound(err)) log.warn(`container ${rec.id}: stop signal: ${errorMessage(err)}`);
    }
    if (!(await w.done)) {
      const w2 = this.exited(rec.id, 30_000);
      await this.signal(rec, 9).catch(() => undefined);
      if (!(await w2.done)) throw serverError(`container ${rec.id} did not exit after SIGKILL`);
    }
    this.emit(rec, 'stop');
    return true;
  }

  /** Send a signal to the init (a paused container is resumed after a killing signal so that it can die). */
  private async signal(rec: ContainerRecord, sig: number): Promise<void> {
    this.emit(rec, 'kill', { signal: String(sig) });
    await this.sup.tasks.kill(rec.id, sig);
    if (rec.state.status === 'paused' && (sig === 9 || sig === this.stopSignal(rec))) {
      await this.sup.tasks.resume(rec.id).catch(() => undefined);
      if (rec.state.status === 'paused') {
        rec.state.status = 'running';
        this.save(rec);
      }
    }
  }

  async stop(ref: string, t: number | undefined, signal: string | undefined): Promise<void> {
    const rec = this.store.get(ref);
    const sig = signal ? parseSignal(signal) : undefined;
    if (!(await this.stopContainer(rec, t, sig))) throw notModified();
  }

  async kill(ref: string, signal: string | undefined): Promise<void> {
    const rec = this.store.get(ref);
    const sig = signal ? parseSignal(signal) : 9;
    if (rec.state.status === 'restarting' && (sig === 9 || sig === this.stopSignal(rec))) {
      await this.stopContainer(rec, 0);
      return;
    }
    if (rec.state.status !== 'running' && rec.state.status !== 'paused')
      throw conflict(`Cannot kill container: ${ref}: container ${rec.id} is not running`);
    if (sig === 9 || sig === this.stopSignal(rec)) {
      rec.manuallyStopped = true;
      this.store.put(rec);
    }
    await this.signal(rec, sig);
    if (sig === 9) await this.exited(rec.id, 10_000).done;
  }

  async restart(ref: string, t: number | undefined, signal: string | undefined): Promise<void> {
    const rec = this.store.get(ref);
    const sig = signal ? parseSignal(signal) : undefined;
    await this.stopContainer(rec, t, sig);
    await this.lock.run(rec.id, async () => {
      const cur = this.store.get(rec.id);
      if (cur.state.status === 'running') return;
      this.cancelRestart(cur.id);
      cur.manuallyStopped = false;
      await this.doStart(cur);
    });
    this.emit(rec, 'restart');
  }

  async pause(ref: string): Promise<void> {
    const rec0 = this.store.get(ref);
    await this.lock.run(rec0.id, async () => {
      const rec = this.store.get(rec0.id);
      if (rec.state.status === 'paused') throw conflict(`container ${rec.id} is already paused`);
      if (rec.state.status !== 'running') throw conflict(`container ${rec.id} is not running`);
      await this.sup.tasks.pause(rec.id);
      rec.state.status = 'paused';
      this.health.stop(rec.id);
      this.save(rec);
      this.emit(rec, 'pause');
    });
  }

  async unpause(ref: string): Promise<void> {
    const rec0 = this.store.get(ref);
    await this.lock.run(rec0.id, async () => {
      const rec = this.store.get(rec0.id);
      if (rec.state.status !== 'paused') throw conflict(`container ${rec.id} is not paused`);
      await this.sup.tasks.resume(rec.id);
      rec.state.status = 'running';
      this.health.resume(rec);
      this.save(rec);
      this.emit(rec, 'unpause');
    });
  }

  // ----- remove, rename, update, prune --------------------------------------------------------------------------

  async remove(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
    const rec = this.store.get(ref);
    if (rec.state.status === 'removing') throw conflict(`removal of container ${rec.id} is already in progress`);
    if (isActive(rec)) {
      if (!opts.force) {
        const what =
          rec.state.status === 'paused' ? 'paused' : rec.state.status === 'restarting' ? 'restarting' : 'running';
        throw conflict(
          `cannot remove container "${rec.name}": container is ${what}: stop the container before removing or force remove`,
        );
      }
      this.cancelRestart(rec.id);
      rec.manuallyStopped = true;
      if (rec.state.status === 'restarting') rec.state.status = 'exited';
      this.store.put(rec);
      if (rec.state.status === 'running' || rec.state.status === 'paused') {
        const w = this.exited(rec.id, 15_000);
        await this.signal(rec, 9).catch((err) => {
          if (!isNotFound(err)) log.warn(`container ${rec.id}: kill for removal: ${errorMessage(err)}`);
        });
        if (!(await w.done)) {
          // The exit never came (the shim is gone?): ask the supervisor and apply what it says.
          const st = await this.sup.tasks.state(rec.id).catch(() => undefined);
          await this.lock.run(rec.id, () =>
            this.applyExit(rec.id, {
              pid: 0,
              exitCode: st?.exit_status ?? 137,
              exitedAt: st?.exited_at ?? null,
              oomKilled: false,
            }),
          );
        }
      }
    }
    await this.lock.run(rec.id, async () => {
      const cur = this.store.find(rec.id);
      if (!cur || cur.id !== rec.id) throw notFoundError(`No such container: ${ref}`);
      if (cur.state.status === 'running' || cur.state.status === 'paused')
        throw conflict(
          `cannot remove container "${cur.name}": container is running: stop the container before removing or force remove`,
        );
      this.cancelRestart(cur.id);
      this.health.stop(cur.id);
      cur.state.status = 'removing';
      this.store.put(cur);
      await this.sup.tasks.delete(cur.id).catch(() => undefined);
      await this.sup.containers.delete(cur.id).catch((err) => {
        if (!isNotFound(err)) log.warn(`container ${cur.id}: supervisor delete: ${errorMessage(err)}`);
      });
      try {
        await this.daemon.images.removeRootfs(cur.id);
      } catch (err) {
        cur.state.status = 'dead';
        cur.state.error = `removing the rootfs: ${errorMessage(err)}`;
        this.store.put(cur);
        throw serverError(`unable to remove filesystem for ${cur.id}: ${errorMessage(err)}`);
      }
      await this.daemon.networks
        .forget(cur.id)
        .catch((err) => log.warn(`container ${cur.id}: forgetting its networks: ${errorMessage(err)}`));
      this.store.remove(cur.id);
      // `docker rm -v`, and --rm (as dockerd's auto-remove): the container's anonymous volumes no one else uses.
      if (opts.volumes || cur.hostConfig.AutoRemove)
        await this.daemon.volumes
          .removeAnonymous(volumeNames(cur.mountPoints))
          .catch((err) => log.warn(`container ${cur.id}: removing its volumes: ${errorMessage(err)}`));
      this.daemon.execs?.forget(cur.id);
      this.emit(cur, 'destroy');
      this.notify('removed', cur);
    });
  }

  async rename(ref: string, newNameIn: string): Promise<void> {
    const rec = this.store.get(ref);
    if (!newNameIn) throw badRequest('Neither old nor new names may be empty');
    if (!validNameRe.test(newNameIn))
      throw badRequest(`Invalid container name (${newNameIn}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const newName = newNameIn.startsWith('/') ? newNameIn : `/${newNameIn}`;
    if (newName === rec.name) throw badRequest('Renaming a container with the same name as its current name');
    await this.lock.run(rec.id, async () => {
      const old = rec.name;
      this.store.reserveName(newName, rec.id);
      rec.name = newName;
      try {
        this.store.put(rec);
      } catch (err) {
        rec.name = old;
        this.store.releaseName(newName, rec.id);
        throw err;
      }
      this.store.releaseName(old, rec.id);
      await this.daemon.networks
        .rename(rec.id, newName)
        .catch((err) => log.warn(`container ${rec.id}: new name in DNS: ${errorMessage(err)}`));
      this.emit(rec, 'rename', { oldName: old });
    });
  }

  async update(ref: string, body: Json): Promise<{ Warnings: string[] }> {
    const rec0 = this.store.get(ref);
    return this.lock.run(rec0.id, async () => {
      const rec = this.store.get(rec0.id);
      const keys = [
        'CpuShares',
        'Memory',
        'MemoryReservation',
        'MemorySwap',
        'MemorySwappiness',
        'NanoCpus',
        'CpuPeriod',
        'CpuQuota',
        'CpusetCpus',
        'CpusetMems',
        'BlkioWeight',
        'PidsLimit',
        'KernelMemory',
        'OomKillDisable',
      ];
      const next: Json = { ...rec.hostConfig };
      const changed: Json = {};
      for (const k of keys) {
        const v = body[k];
        if (v === undefined || v === null) continue;
        if ((v === 0 || v === '') && k !== 'PidsLimit') continue; // unset in the request
        next[k] = v;
        changed[k] = v;
      }
      if (changed.Memory > 0 && !(body.MemorySwap !== undefined && body.MemorySwap !== 0)) {
        // dockerd: a new memory limit above the old swap limit needs a new swap limit.
        if (next.MemorySwap > 0 && next.MemorySwap < changed.Memory)
          throw badRequest(
            'Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time',
          );
      }
      if (body.RestartPolicy && body.RestartPolicy.Name !== undefined && body.RestartPolicy.Name !== '') {
        if (rec.hostConfig.AutoRemove && body.RestartPolicy.Name !== 'no')
          throw badRequest('Restart policy cannot be updated because AutoRemove is enabled for the container');
        const rp = normalizeHostConfig({ RestartPolicy: body.RestartPolicy }).RestartPolicy;
        next.RestartPolicy = rp;
      }
      checkResources(next);
      if ((rec.state.status === 'running' || rec.state.status === 'paused') && Object.keys(changed).length > 0) {
        const r = resources(changed, statDevice);
        if (changed.Memory > 0 && next.MemorySwap > 0) r.memory = { ...(r.memory ?? {}), swap: next.MemorySwap };
        try {
          await this.sup.tasks.update(rec.id, r);
        } catch (err) {
          throw serverError(`Cannot update container ${rec.id}: ${errorMessage(err)}`);
        }
      }
      rec.hostConfig = next;
      this.save(rec);
      this.emit(rec, 'update');
      return { Warnings: [] };
    });
  }

  async prune(filters: Map<string, string[]>): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    for (const k of filters.keys())
      if (k !== 'until' && k !== 'label' && k !== 'label!') throw badRequest(`invalid filter '${k}'`);
    const until = filters.get('until')?.[0];
    const untilMs = until ? parseUntil(until) : undefined;
    const deleted: string[] = [];
    let reclaimed = 0;
    const { duBytes } = await import('./host.js');
    for (const rec of this.store.list()) {
      if (isActive(rec) || rec.state.status === 'removing') continue;
      if (untilMs !== undefined && Date.parse(rec.created) >= untilMs) continue;
      const labels = (rec.config.Labels as Record<string, string> | null) ?? {};
      if (!labelsMatch(labels, filters.get('label') ?? [], true)) continue;
      if (!labelsMatch(labels, filters.get('label!') ?? [], false)) continue;
      const size = duBytes(rec.rootfs.upperDir);
      try {
        await this.remove(rec.id, { force: false, volumes: false });
        deleted.push(rec.id);
        reclaimed += size;
      } catch (err) {
        log.warn(`prune: ${rec.id}: ${errorMessage(err)}`);
      }
    }
    this.daemon.events.emit({
      Type: 'container',
      Action: 'prune',
      Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } },
    });
    return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  // ----- start-up and shutdown ----------------------------------------------------------------------------------

  /** Load the store, follow the supervisor's events, and reconcile every container with its task. */
  async init(): Promise<void> {
    this.store.load();
    this.daemon.images.setInUse((imageId) => this.imageInUse(imageId));
    this.daemon.volumes.setUsers((name) =>
      this.store
        .list()
        .filter((c) => c.mountPoints.some((m) => m.Type === 'volume' && m.Name === name))
        .map((c) => c.id),
    );
    this.subscribe();
    await this.resync();
    if (!this.daemon.config.liveRestore) await this.stopAllAtStartup();
    await this.daemon.networks.recover((id) => {
      const s = this.store.find(id)?.state.status;
      return s === 'running' || s === 'paused';
    });
    // Healthchecks of the containers that still run begin again from "starting", as dockerd's restore.
    for (const rec of this.store.list())
      if (rec.state.status === 'running' && rec.config.Healthcheck) {
        this.health.start(rec);
        this.store.put(rec);
      }
    // Restart policies resumed: containers that should run and do not.
    for (const rec of this.store.list()) {
      const rp = (rec.hostConfig.RestartPolicy ?? {}) as { Name?: string };
      const wants = rp.Name === 'always' || (rp.Name === 'unless-stopped' && !rec.manuallyStopped);
      if (rec.state.status === 'exited' && wants && !rec.manuallyStopped && rec.hasBeenStarted)
        await this.lock
          .run(rec.id, () => this.doStart(rec))
          .catch((err) => log.warn(`container ${rec.id}: restart at start-up: ${errorMessage(err)}`));
    }
  }

  /**
   * Without live restore dockerd stops every container when it starts; the restart policies below then bring
   * back the ones that ask for it (so "stopped by the daemon" must not count as stopped by the user).
   */
  private async stopAllAtStartup(): Promise<void> {
    const active = this.store.list().filter((r) => r.state.status === 'running' || r.state.status === 'paused');
    // Killed at once and all together, as dockerd does: the API must not wait for graceful stops to answer.
    await Promise.all(
      active.map(async (rec) => {
        const byUser = rec.manuallyStopped;
        // not under the container's lock: the exit that ends the wait is applied under it
        await this.stopContainer(rec, 0).catch((err: unknown) =>
          log.warn(`container ${rec.id}: stop at start-up (no live restore): ${errorMessage(err)}`),
        );
        const cur = this.store.get(rec.id);
        cur.manuallyStopped = byUser;
        this.store.put(cur);
      }),
    );
  }

  /** Ask the supervisor for the task of each container we think is active; apply exits that happened unseen. */
  private async resync(): Promise<void> {
    for (const rec of this.store.list()) {
      try {
        await this.reconcile(rec);
      } catch (err) {
        log.warn(`container ${rec.id}: recovery: ${errorMessage(err)}`);
      }
    }
  }

  private async reconcile(rec: ContainerRecord): Promise<void> {
    const s = rec.state.status;
    if (s === 'removing') {
      rec.state.status = 'dead';
      this.store.put(rec);
      await this.remove(rec.id, { force: true, volumes: false }).catch(() => undefined);
      return;
    }
    if (s === 'restarting') {
      if (!this.restarts.get(rec.id)?.timer) this.scheduleRestart(rec, 0);
      return;
    }
    if (s !== 'running' && s !== 'paused') return;
    await this.lock.run(rec.id, async () => {
      let st;
      try {
        st = await this.sup.tasks.state(rec.id);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.applyExit(rec.id, {
          pid: 0,
          exitCode: 255,
          exitedAt: null,
          oomKilled: false,
          reason: 'the task was gone after a restart',
        });
        return;
      }
      if (st.status === 'RUNNING' || st.status === 'PAUSED') {
        const status = st.status === 'RUNNING' ? 'running' : 'paused';
        if (rec.state.status !== status || rec.state.pid !== st.pid) {
          rec.state.status = status;
          rec.state.pid = st.pid;
          this.save(rec);
        }
        return;
      }
      await this.applyExit(rec.id, {
        pid: 0,
        exitCode: st.status === 'STOPPED' ? st.exit_status : 255,
        exitedAt: st.exited_at,
        oomKilled: st.oom_killed,
        reason: st.reason,
      });
    });
  }

  close(): void {
    this.closed = true;
    this.eventsStream?.cancel();
    for (const id of [...this.restarts.keys()]) this.cancelRestart(id);
    this.health.stopAll();
  }
}

function parseUntil(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const d = /^(\d+)(s|m|h)$/.exec(s);
  if (d) return Date.now() - Number(d[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[d[2] as 's' | 'm' | 'h'];
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) throw badRequest(`invalid filter 'until=${s}'`);
  return ms;
}

/** `label=key` / `label=key=value` (all must hold), or with `label!` none may hold. */
export function labelsMatch(labels: Record<string, string>, want: string[], positive: boolean): boolean {
  for (const w of want) {
    const i = w.indexOf('=');
    const hit = i < 0 ? w in labels : labels[w.slice(0, i)] === w.slice(i + 1);
    if (positive && !hit) return false;
    if (!positive && hit) return false;
  }
  return true;
}

/** Config.ExposedPorts keys ("80/tcp"). */
function exposedPorts(config: Json): string[] {
  return Object.keys((config.ExposedPorts as Json | null) ?? {});
}

export type { ImageRecord };
