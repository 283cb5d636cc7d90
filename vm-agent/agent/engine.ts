// The engine as the agent keeps it (docs/agent.md "Processes"): skiff-supervisor, then skiffd pointed at it, each
// in a ProcessKeeper; skiffd's events through the hub, with the agent's own "engine" events (ready, restarting,
// down) mixed in whenever one of the two changes health.
import { connect } from 'node:net';
import { basename, join } from 'node:path';
import type { AgentConfig, DockerEventMsg, Engine, EngineEventListener, ProcessHealth } from './contracts.js';
import { HttpDockerClient } from './docker-client.js';
import { EventHub } from './events.js';
import { ProcessKeeper, stopLeftovers, type KeeperOptions } from './keeper.js';

/** Timings of the keepers (tests make them short). */
export type EngineTimings = Pick<
  KeeperOptions,
  'backoffInitialMs' | 'backoffMaxMs' | 'resetAfterMs' | 'readyPollMs' | 'readyTimeoutMs'
>;

/** Whether a unix socket accepts a connection. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Resolves when the keeper is RUNNING (or the signal aborts). */
function whenRunning(k: ProcessKeeper, signal?: AbortSignal): Promise<void> {
  if (k.health().state === 'RUNNING') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      off();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const off = k.onState((h) => {
      if (h.state === 'RUNNING') done();
    });
    signal?.addEventListener('abort', done, { once: true });
  });
}

const ACTIONS: Partial<Record<ProcessHealth['state'], string>> = {
  RUNNING: 'ready',
  BACKOFF: 'restarting',
  STOPPED: 'down',
};

export class LocalEngine implements Engine {
  readonly docker: HttpDockerClient;
  readonly supervisor: ProcessKeeper;
  readonly skiffd: ProcessKeeper;
  private readonly hub: EventHub;
  private readonly stopping = new AbortController();

  constructor(
    readonly config: AgentConfig,
    timings: EngineTimings = {},
  ) {
    const c = config;
    this.docker = new HttpDockerClient(c.dockerSocket);
    const supervisorPid = join(c.runDir, 'supervisor.pid');
    const skiffdPid = join(c.runDir, 'skiffd.pid');
    const isSupervisor = (argv: string[]): boolean =>
      argv.some((a) => basename(a) === 'skiff-supervisor') &&
      argv[argv.indexOf('--address') + 1] === c.supervisorSocket;
    const isSkiffd = (argv: string[]): boolean =>
      argv.some((a) => basename(a) === 'skiffd') && argv.includes(`unix://${c.dockerSocket}`);

    // Supervisor roots as skiffd gives them to a supervisor it starts itself (supervisor-launch.ts), so either way
    // the same containers are found.
    const supArgs = [c.supervisor, '--address', c.supervisorSocket, '--root', join(c.dataRoot, '..', 'supervisor')];
    supArgs.push('--runtime-root', join(c.runDir, 'runtime'), '--state', join(c.runDir, 'shims'));
    supArgs.push('--runtime', c.runtime, '--shim', c.shim, '--log-level', c.logLevel);
    this.supervisor = new ProcessKeeper({
      ...timings,
      name: 'skiff-supervisor',
      command: process.execPath,
      args: supArgs,
      logFile: join(c.runDir, 'log', 'supervisor.log'),
      pidFile: supervisorPid,
      beforeSpawn: async () => {
        await stopLeftovers(supervisorPid, isSupervisor);
      },
      ready: () => socketAnswers(c.supervisorSocket),
    });

    const dArgs = [c.skiffd, '-H', `unix://${c.dockerSocket}`, '--data-root', c.dataRoot];
    dArgs.push('--exec-root', join(c.runDir, 'daemon'), '--supervisor', c.supervisorSocket, '--pidfile', skiffdPid);
    dArgs.push('--runtime', c.runtime, '--shim', c.shim, '--log-level', c.logLevel, ...c.skiffdArgs);
    this.skiffd = new ProcessKeeper({
      ...timings,
      name: 'skiffd',
      command: process.execPath,
      args: dArgs,
      logFile: join(c.runDir, 'log', 'skiffd.log'),
      beforeSpawn: async () => {
        await stopLeftovers(skiffdPid, isSkiffd);
        // skiffd starts a supervisor of its own when none answers: it must find ours.
        const waited = AbortSignal.timeout(30_000);
        await whenRunning(this.supervisor, AbortSignal.any([waited, this.stopping.signal]));
        if (this.supervisor.health().state !== 'RUNNING') {
          const h = this.supervisor.health();
          throw new Error(`skiff-supervisor is not running (${h.state}${h.lastExit ? `: ${h.lastExit}` : ''})`);
        }
      },
      ready: () =>
        this.docker.stream('GET', '/_ping').then(
          (res) => {
            res.resume();
            return true;
          },
          () => false,
        ),
    });

    this.hub = new EventHub(this.docker, { whenReady: (signal) => whenRunning(this.skiffd, signal) });
    for (const k of [this.supervisor, this.skiffd])
      k.onState((h) => {
        const action = ACTIONS[h.state];
        if (action) this.hub.publish(engineEvent(action, h));
      });
  }

  /** Start both processes and follow skiffd's events; readiness comes later (waitReady). */
  start(): void {
    this.hub.start();
    this.supervisor.start();
    this.skiffd.start();
  }

  /** Resolves once skiffd answers and its supervisor is up; rejects after `timeoutMs` saying why not. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const timeout = AbortSignal.timeout(timeoutMs);
    await whenRunning(this.supervisor, timeout);
    await whenRunning(this.skiffd, timeout);
    if (!this.ready()) {
      const why = this.health()
        .map((h) => `${h.name} ${h.state}${h.lastExit ? ` (${h.lastExit})` : ''}`)
        .join(', ');
      throw new Error(`the engine is not ready after ${timeoutMs} ms: ${why}; see the logs in ${this.logDir}`);
    }
  }

  get logDir(): string {
    return join(this.config.runDir, 'log');
  }

  health(): ProcessHealth[] {
    return [this.skiffd.health(), this.supervisor.health()];
  }

  ready(): boolean {
    return this.skiffd.health().state === 'RUNNING' && this.supervisor.health().state === 'RUNNING';
  }

  subscribe(listener: EngineEventListener): () => void {
    return this.hub.subscribe(listener);
  }

  /** Stop skiffd, then the supervisor; containers go on (their shims hold them) for the next agent to find. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping.abort();
    await this.hub.close();
    await this.skiffd.stop(timeoutMs);
    await this.supervisor.stop(timeoutMs);
    this.docker.close();
  }
}

function engineEvent(action: string, h: ProcessHealth): DockerEventMsg {
  const nano = BigInt(Date.now()) * 1_000_000n;
  return {
    Type: 'engine',
    Action: action,
    Actor: {
      ID: h.name,
      Attributes: { name: h.name, pid: String(h.pid), restarts: String(h.restarts), lastExit: h.lastExit },
    },
    time: Number(nano / 1_000_000_000n),
    timeNano: Number(nano),
  };
}
