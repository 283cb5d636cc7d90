// The pure conversions of the Containers service: Docker's container JSON → ContainerSummary, stats JSON →
// StatsSample (the docker CLI's arithmetic), log frames → LogEntry, RunRequest → the create body. The JSON below is
// what a real skiffd answered (captured once, trimmed to the fields read), except where a comment says otherwise.
import { describe, expect, it } from 'vitest';
import { logEntry } from '../../vm-agent/agent/services/container-logs.js';
import { statsSample, type DockerStats } from '../../vm-agent/agent/services/container-stats.js';
import {
  exitCodeFromStatus,
  healthFromStatus,
  humanDuration,
  statusFromState,
  summaryFromInspect,
  summaryFromList,
  type DockerContainerInspect,
  type DockerContainerListEntry,
} from '../../vm-agent/agent/services/container-views.js';
import { createBody, splitImageRef, type RunReq } from '../../vm-agent/agent/services/containers.js';

// Captured from skiffd (cgroup v1 host): GET /containers/json?all=1
const LIST_JSON = [
  {
    Id: 'b79f2845c4dabcc331b49714a314909afe140bc3f4b3b86021cab0c372ccede5',
    Names: ['/hc'],
    Image: 'busybox',
    ImageID: 'sha256:1205cb75a980634377c86eacd88cfd94efd6a987b944ace21ec449a252f0e32d',
    Command: 'sleep 1000',
    Created: 1796308156,
    Ports: [],
    Labels: {},
    State: 'running',
    Status: 'Up 3 seconds',
    HostConfig: {
      NetworkMode: 'bridge',
    },
    NetworkSettings: {
      Networks: {
        bridge: {
          IPAddress: '192.168.215.3',
        },
      },
    },
  },
  {
    Id: '8b200986f8984cfcf479577c23a235aa27babf550a4c1291971c2c9d425f018b',
    Names: ['/done'],
    Image: 'busybox',
    ImageID: 'sha256:1205cb75a980634377c86eacd88cfd94efd6a987b944ace21ec449a252f0e32d',
    Command: 'sh -c "exit 3"',
    Created: 1796308156,
    Ports: [],
    Labels: {},
    State: 'exited',
    Status: 'Exited (3) 3 seconds ago',
    HostConfig: {
      NetworkMode: 'bridge',
    },
    NetworkSettings: {
      Networks: {
        bridge: {
          IPAddress: '',
        },
      },
    },
  },
  {
    Id: 'c413663981ea7e2df57434eff0b250f1ee3fe14c088c873ef02cf77732a28f83',
    Names: ['/web'],
    Image: 'busybox',
    ImageID: 'sha256:1205cb75a980634377c86eacd88cfd94efd6a987b944ace21ec449a252f0e32d',
    Command: 'sh -c "while true; do echo hi; sleep 1; done"',
    Created: 1796308156,
    Ports: [
      {
        IP: '0.0.0.0',
        PrivatePort: 80,
        PublicPort: 8080,
        Type: 'tcp',
      },
    ],
    Labels: {
      'com.docker.compose.project': 'proj',
      'com.docker.compose.service': 'svc',
    },
    State: 'running',
    Status: 'Up 3 seconds',
    HostConfig: {
      NetworkMode: 'bridge',
    },
    NetworkSettings: {
      Networks: {
        bridge: {
          IPAddress: '192.168.215.2',
        },
      },
    },
  },
];

// GET /containers/web/json (the fields the summary reads)
const INSPECT_JSON = {
  Id: 'c413663981ea7e2df57434eff0b250f1ee3fe14c088c873ef02cf77732a28f83',
  Name: '/web',
  Created: '2026-12-03T14:29:16.138973462Z',
  Path: 'sh',
  Args: ['-c', 'while true; do echo hi; sleep 1; done'],
  State: {
    Status: 'running',
    Running: true,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 14363,
    ExitCode: 0,
    Error: '',
    StartedAt: '2026-12-03T14:29:16.346815808Z',
    FinishedAt: '0001-01-01T00:00:00Z',
  },
  Image: 'sha256:1205cb75a980634377c86eacd88cfd94efd6a987b944ace21ec449a252f0e32d',
  Config: {
    Image: 'busybox',
    Labels: {
      'com.docker.compose.project': 'proj',
      'com.docker.compose.service': 'svc',
    },
    Tty: false,
  },
  NetworkSettings: {
    Ports: {
      '80/tcp': [
        {
          HostIp: '0.0.0.0',
          HostPort: '8080',
        },
      ],
    },
    Networks: {
      bridge: {
        IPAddress: '192.168.215.2',
      },
    },
  },
};

// GET /containers/io/stats?stream=0 of a container that wrote 20 MiB and then spun (-m 64m)
const STATS_JSON = {
  read: '2026-12-03T14:31:27.360314704Z',
  preread: '2026-12-03T14:31:26.333609723Z',
  pids_stats: {
    current: 1,
  },
  blkio_stats: {
    io_service_bytes_recursive: [
      {
        major: 254,
        minor: 0,
        op: 'Read',
        value: 0,
      },
      {
        major: 254,
        minor: 0,
        op: 'Write',
        value: 20983808,
      },
      {
        major: 254,
        minor: 0,
        op: 'Sync',
        value: 20983808,
      },
      {
        major: 254,
        minor: 0,
        op: 'Async',
        value: 0,
      },
      {
        major: 254,
        minor: 0,
        op: 'Discard',
        value: 0,
      },
      {
        major: 254,
        minor: 0,
        op: 'Total',
        value: 20983808,
      },
    ],
  },
  cpu_stats: {
    cpu_usage: {
      total_usage: 3907819906,
      usage_in_kernelmode: 10000000,
      usage_in_usermode: 3890000000,
      percpu_usage: [3900082810, 7737096],
    },
    system_cpu_usage: 56734300000000,
    online_cpus: 2,
    throttling_data: {
      periods: 0,
      throttled_periods: 0,
      throttled_time: 0,
    },
  },
  precpu_stats: {
    cpu_usage: {
      total_usage: 2897241685,
      usage_in_kernelmode: 10000000,
      usage_in_usermode: 2880000000,
      percpu_usage: [2889504589, 7737096],
    },
    system_cpu_usage: 56732260000000,
    online_cpus: 2,
    throttling_data: {
      periods: 0,
      throttled_periods: 0,
      throttled_time: 0,
    },
  },
  memory_stats: {
    usage: 22126592,
    max_usage: 23318528,
    stats: {
      cache: 20975616,
      rss: 61440,
      inactive_file: 0,
      active_file: 20975616,
      total_inactive_file: 0,
      total_active_file: 20975616,
    },
    failcnt: 0,
    limit: 67108864,
  },
  networks: {
    eth0: {
      rx_bytes: 1682,
      rx_packets: 19,
      rx_errors: 0,
      rx_dropped: 0,
      tx_bytes: 516,
      tx_packets: 6,
      tx_errors: 0,
      tx_dropped: 0,
    },
  },
};

// Typed after the fact: the engine's JSON has more fields than the views read.
const LIST = LIST_JSON as DockerContainerListEntry[];
const INSPECT: DockerContainerInspect = INSPECT_JSON;
const STATS_V1: DockerStats = STATS_JSON;

const byName = (name: string) => LIST.find((c) => c.Names?.[0] === `/${name}`) as DockerContainerListEntry;

describe('summaryFromList', () => {
  it('turns a published, compose-labelled container into a summary', () => {
    const s = summaryFromList(byName('web'));
    expect(s).toEqual({
      id: 'c413663981ea7e2df57434eff0b250f1ee3fe14c088c873ef02cf77732a28f83',
      name: 'web',
      image: 'busybox',
      image_id: 'sha256:1205cb75a980634377c86eacd88cfd94efd6a987b944ace21ec449a252f0e32d',
      command: 'sh -c "while true; do echo hi; sleep 1; done"',
      created: { seconds: '1796308156', nanos: 0 },
      state: 'running',
      status: 'Up 3 seconds',
      health: '',
      exit_code: 0,
      ports: [{ host_ip: '0.0.0.0', host_port: 8080, container_port: 80, protocol: 'tcp' }],
      labels: { 'com.docker.compose.project': 'proj', 'com.docker.compose.service': 'svc' },
      compose_project: 'proj',
      compose_service: 'svc',
      networks: ['bridge'],
    });
  });

  it('reads the exit code of an exited container from its status', () => {
    const s = summaryFromList(byName('done'));
    expect(s.state).toBe('exited');
    expect(s.exit_code).toBe(3);
    expect(s.compose_project).toBe('');
  });

  it('leaves out exposed ports that are not published', () => {
    const c = { ...byName('web'), Ports: [{ PrivatePort: 443, Type: 'tcp' }, ...(byName('web').Ports ?? [])] };
    expect(summaryFromList(c).ports.map((p) => p.container_port)).toEqual([80]);
  });

  it('takes health from the status text, or from Health when the engine sends it (API 1.51)', () => {
    expect(summaryFromList({ ...byName('hc'), Status: 'Up 2 minutes (healthy)' }).health).toBe('healthy');
    expect(summaryFromList({ ...byName('hc'), Health: { Status: 'unhealthy' } }).health).toBe('unhealthy');
    expect(summaryFromList({ ...byName('hc'), Health: { Status: 'none' } }).health).toBe('');
  });
});

describe('status text', () => {
  it('parses health and exit codes as docker ps writes them', () => {
    expect(healthFromStatus('Up 5 seconds (health: starting)')).toBe('starting');
    expect(healthFromStatus('Up 1 hour (unhealthy)')).toBe('unhealthy');
    expect(healthFromStatus('Up 1 hour')).toBe('');
    expect(exitCodeFromStatus('Exited (137) 2 hours ago')).toBe(137);
    expect(exitCodeFromStatus('Restarting (1) 3 seconds ago')).toBe(1);
    expect(exitCodeFromStatus('Up 3 seconds')).toBe(0);
  });

  it('words durations as docker (units.HumanDuration)', () => {
    expect(humanDuration(400)).toBe('Less than a second');
    expect(humanDuration(1_000)).toBe('1 second');
    expect(humanDuration(59_999)).toBe('59 seconds');
    expect(humanDuration(90_000)).toBe('About a minute');
    expect(humanDuration(5 * 60_000)).toBe('5 minutes');
    expect(humanDuration(59 * 60_000)).toBe('59 minutes');
    expect(humanDuration(60 * 60_000)).toBe('About an hour');
    expect(humanDuration(5 * 3_600_000)).toBe('5 hours');
    expect(humanDuration(3 * 86_400_000)).toBe('3 days');
  });

  it('writes the status of inspect states as docker ps would', () => {
    const now = Date.parse('2026-12-03T14:34:16.5Z');
    expect(statusFromState(INSPECT.State, now)).toBe('Up 5 minutes');
    const exited = { ...INSPECT.State, Status: 'exited', ExitCode: 3, FinishedAt: '2026-12-03T12:29:16Z' };
    expect(statusFromState(exited, now)).toBe('Exited (3) 2 hours ago');
    const starting = { ...INSPECT.State, Health: { Status: 'starting' } };
    expect(statusFromState(starting, now)).toBe('Up 5 minutes (health: starting)');
    expect(statusFromState({ ...INSPECT.State, Status: 'paused', Paused: true }, now)).toBe('Up 5 minutes (Paused)');
    expect(statusFromState({ Status: 'created', FinishedAt: '0001-01-01T00:00:00Z' }, now)).toBe('Created');
  });
});

describe('summaryFromInspect', () => {
  it('builds the same summary from an inspect document', () => {
    const now = Date.parse('2026-12-03T14:29:19.5Z');
    const fromInspect = summaryFromInspect(INSPECT, now);
    const fromList = summaryFromList(byName('web'));
    expect(fromInspect).toEqual({
      ...fromList,
      image_id: INSPECT.Image,
      created: { seconds: '1796308156', nanos: 138973462 },
    });
  });

  it('takes health and the exit code from State', () => {
    const s = summaryFromInspect({
      ...INSPECT,
      State: { ...INSPECT.State, Status: 'exited', ExitCode: 2, Health: { Status: 'unhealthy' } },
    });
    expect(s.exit_code).toBe(2);
    expect(s.health).toBe('unhealthy');
  });
});

describe('statsSample', () => {
  it('computes the figures docker stats shows (cgroup v1)', () => {
    const s = statsSample(STATS_V1);
    // (3907819906 - 2897241685) / (56734300000000 - 56732260000000) * 2 CPUs * 100
    expect(s.cpu_percent).toBeCloseTo(99.0763, 3);
    expect(s.memory_usage).toBe(22126592); // total_inactive_file is 0
    expect(s.memory_limit).toBe(67108864);
    expect(s.memory_percent).toBeCloseTo((22126592 / 67108864) * 100, 6);
    expect(s.network_rx).toBe(1682);
    expect(s.network_tx).toBe(516);
    expect(s.block_read).toBe(0);
    expect(s.block_write).toBe(20983808); // only the Write entry, not Sync/Total
    expect(s.pids).toBe(1);
    expect(s.read).toEqual({ seconds: String(Date.parse('2026-12-03T14:31:27Z') / 1000), nanos: 360314704 });
  });

  it('subtracts the inactive page cache: total_inactive_file on v1, inactive_file on v2', () => {
    const v1 = { ...STATS_V1, memory_stats: { usage: 10_000, limit: 0, stats: { total_inactive_file: 4_000 } } };
    expect(statsSample(v1).memory_usage).toBe(6_000);
    expect(statsSample(v1).memory_percent).toBe(0); // no limit known
    // cgroup v2 (memory.stat's names, from the API spec's example); ops in lower case as dockerd writes them there.
    const v2: DockerStats = {
      ...STATS_V1,
      memory_stats: { usage: 10_000_000, limit: 20_000_000, stats: { inactive_file: 2510848, active_file: 5115904 } },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: 'read', value: 100 },
          { op: 'write', value: 200 },
          { op: 'read', value: 1 },
        ],
      },
    };
    expect(statsSample(v2).memory_usage).toBe(10_000_000 - 2510848);
    expect(statsSample(v2).block_read).toBe(101);
    expect(statsSample(v2).block_write).toBe(200);
  });

  it('sums every network and reports 0 % CPU for a first sample without a previous one', () => {
    const s = statsSample({
      ...STATS_V1,
      precpu_stats: {},
      networks: { eth0: { rx_bytes: 10, tx_bytes: 1 }, eth1: { rx_bytes: 5, tx_bytes: 2 } },
    });
    expect(s.cpu_percent).toBe(0);
    expect([s.network_rx, s.network_tx]).toEqual([15, 3]);
  });
});

describe('logEntry', () => {
  it('splits the engine timestamp off, keeping its nanoseconds', () => {
    const e = logEntry({ stream: 'stderr', data: Buffer.from('2026-12-03T14:29:17.123456789Z oops\n') }, true);
    expect(e.stream).toBe('STDERR');
    expect(e.data.toString()).toBe('oops\n');
    expect(e.time).toEqual({ seconds: String(Date.parse('2026-12-03T14:29:17Z') / 1000), nanos: 123456789 });
  });

  it('passes the line as it is without timestamps', () => {
    const e = logEntry({ stream: 'stdout', data: Buffer.from('2026 hi\n') }, false);
    expect(e).toEqual({ stream: 'STDOUT', data: Buffer.from('2026 hi\n') });
  });
});

describe('run requests', () => {
  const base: RunReq = {
    image: 'nginx:1.27',
    name: 'web',
    ports: [],
    env: [],
    volumes: [],
    command: [],
    entrypoint: [],
    labels: {},
    network: '',
    auto_remove: false,
    tty: false,
    open_stdin: false,
    restart_policy: '',
    pull: true,
  };

  it('splits image references for /images/create', () => {
    expect(splitImageRef('busybox')).toEqual({ fromImage: 'busybox', tag: 'latest' });
    expect(splitImageRef('localhost:5000/app:v2')).toEqual({ fromImage: 'localhost:5000/app', tag: 'v2' });
    expect(splitImageRef('localhost:5000/app')).toEqual({ fromImage: 'localhost:5000/app', tag: 'latest' });
    expect(splitImageRef('app@sha256:abc')).toEqual({ fromImage: 'app', tag: 'sha256:abc' });
  });

  it('turns ports, volumes and options into the create body', () => {
    const body = createBody({
      ...base,
      ports: [
        { host_ip: '', host_port: 8080, container_port: 80, protocol: '' },
        { host_ip: '127.0.0.1', host_port: 0, container_port: 53, protocol: 'udp' },
      ],
      volumes: [
        { source: '/srv/site', target: '/usr/share/nginx/html', read_only: true },
        { source: 'data', target: '/data', read_only: false },
        { source: '', target: '/cache', read_only: false },
      ],
      env: ['A=1'],
      command: ['nginx', '-g', 'daemon off;'],
      network: 'n1',
      restart_policy: 'unless-stopped',
    });
    expect(body).toEqual({
      Image: 'nginx:1.27',
      Env: ['A=1'],
      Cmd: ['nginx', '-g', 'daemon off;'],
      Entrypoint: undefined,
      Labels: undefined,
      Tty: false,
      OpenStdin: false,
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
      HostConfig: {
        PortBindings: {
          '80/tcp': [{ HostIp: '', HostPort: '8080' }],
          '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
        },
        Binds: ['/srv/site:/usr/share/nginx/html:ro'],
        Mounts: [
          { Type: 'volume', Source: 'data', Target: '/data', ReadOnly: false },
          { Type: 'volume', Source: '', Target: '/cache', ReadOnly: false },
        ],
        NetworkMode: 'n1',
        AutoRemove: false,
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      },
    });
  });

  it('rejects what the engine could only misread', () => {
    expect(() => createBody({ ...base, image: '' })).toThrow(/image is required/);
    expect(() => createBody({ ...base, volumes: [{ source: './x', target: '/x', read_only: false }] })).toThrow(
      /must be absolute/,
    );
    expect(() => createBody({ ...base, volumes: [{ source: 'v', target: 'x', read_only: false }] })).toThrow(
      /absolute path in the container/,
    );
    expect(() =>
      createBody({ ...base, ports: [{ host_ip: '', host_port: 1, container_port: 0, protocol: 'tcp' }] }),
    ).toThrow(/container port 0/);
    expect(() => createBody({ ...base, restart_policy: 'sometimes' })).toThrow(/restart policy/);
  });
});
