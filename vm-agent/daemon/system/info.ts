// GET /info: what `docker info` prints.
import type { Daemon } from '../contracts.js';
import { engineId, hostFacts } from './host.js';
import { SKIFF_VERSION } from './version.js';

export async function containerCounts(daemon: Daemon) {
  const list = await daemon.containers.list().catch(() => []);
  let running = 0;
  let paused = 0;
  for (const c of list) {
    if (c.state.status === 'paused') paused++;
    else if (c.state.status === 'running' || c.state.status === 'restarting') running++;
  }
  return { total: list.length, running, paused, stopped: list.length - running - paused };
}

export async function infoBody(daemon: Daemon, eventListeners: number): Promise<Record<string, unknown>> {
  const cfg = daemon.config;
  const h = hostFacts();
  const counts = await containerCounts(daemon);
  const images = await daemon.images.diskUsage().then(
    (d) => d.images.length,
    () => 0,
  );
  const commit = { ID: `skiff-${SKIFF_VERSION}` };
  return {
    ID: engineId(cfg.dataRoot),
    Containers: counts.total,
    ContainersRunning: counts.running,
    ContainersPaused: counts.paused,
    ContainersStopped: counts.stopped,
    Images: images,
    Driver: 'overlay2',
    DriverStatus: [
      ['Backing Filesystem', 'extfs'],
      ['Supports d_type', 'true'],
      ['Using metacopy', 'false'],
      ['Native Overlay Diff', 'true'],
      ['userxattr', 'false'],
    ],
    Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file'] },
    MemoryLimit: true,
    SwapLimit: true,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: true,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: h.cgroupVersion,
    NEventsListener: eventListeners,
    KernelVersion: h.kernelVersion,
    OperatingSystem: h.os.prettyName,
    OSVersion: h.os.versionId,
    OSType: 'linux',
    Architecture: h.architecture,
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: {
      InsecureRegistryCIDRs: ['::1/128', '127.0.0.0/8'],
      IndexConfigs: { 'docker.io': { Name: 'docker.io', Mirrors: [], Secure: true, Official: true } },
      Mirrors: [],
    },
    NCPU: h.ncpu,
    MemTotal: h.memTotal,
    GenericResources: null,
    DockerRootDir: cfg.dataRoot,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: h.name,
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: cfg.version.engine,
    Runtimes: { runc: { path: 'skiff-runtime' } },
    DefaultRuntime: 'runc',
    Swarm: {
      NodeID: '',
      NodeAddr: '',
      LocalNodeState: 'inactive',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: null,
    },
    LiveRestoreEnabled: cfg.liveRestore,
    Isolation: '',
    InitBinary: 'skiff-init',
    ContainerdCommit: commit,
    RuncCommit: commit,
    InitCommit: commit,
    SecurityOptions: ['name=seccomp,profile=builtin', ...(h.cgroupVersion === '2' ? ['name=cgroupns'] : [])],
    CDISpecDirs: [],
    Warnings: [],
  };
}
