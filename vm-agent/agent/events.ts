// The events hub: one GET /events stream from skiffd fanned out to every listener in the agent. When the stream
// ends (skiffd died or restarts) it subscribes again once skiffd answers, with `since` = the last event's time, and
// drops the events it already delivered: across a restart no event is lost or doubled. The agent's own events
// (type "engine") are mixed in by publish().
import { errorMessage, logger } from '../common/log.js';
import type { DockerClient, DockerEventMsg, EngineEventListener } from './contracts.js';

const log = logger('agent-events');

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        r();
      },
      { once: true },
    );
  });

/** What makes two events the same one (a replay after resubscribing sends some again). */
export function eventKey(e: DockerEventMsg): string {
  return `${e.timeNano} ${e.Type} ${e.Action} ${e.Actor?.ID ?? ''}`;
}

/** Nanoseconds as the Docker API's "seconds.nanoseconds" query value. */
export function nanosQuery(n: bigint): string {
  const neg = n < 0n;
  const a = neg ? -n : n;
  return `${neg ? '-' : ''}${a / 1_000_000_000n}.${String(a % 1_000_000_000n).padStart(9, '0')}`;
}

export interface EventHubOptions {
  /** Resolves when skiffd is worth asking again (engine.ts: skiffd RUNNING); without one, retry after retryMs. */
  whenReady?: (signal: AbortSignal) => Promise<void>;
  retryMs?: number;
  /** How many delivered events are remembered to drop doubles. */
  remember?: number;
}

export class EventHub {
  private readonly listeners = new Set<EngineEventListener>();
  private readonly stop = new AbortController();
  /** The last event's time in nanoseconds: where a new subscription starts. */
  private last: bigint;
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private connected = false;
  private running: Promise<void> | undefined;
  private readonly connectedWaiters = new Set<() => void>();

  constructor(
    private readonly docker: DockerClient,
    private readonly opts: EventHubOptions = {},
  ) {
    // Events from the moment the hub exists: the first subscription replays what came before it connected.
    this.last = BigInt(Date.now()) * 1_000_000n;
  }

  /** Start following skiffd's events (in the background, until close()). */
  start(): void {
    this.running ??= this.loop();
  }

  /** Whether the hub is subscribed to skiffd now. */
  get isConnected(): boolean {
    return this.connected;
  }

  /** Resolves once the hub is subscribed (again); for callers that must not miss what follows. */
  whenConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((r) => this.connectedWaiters.add(r));
  }

  subscribe(l: EngineEventListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** An event of the agent's own (type "engine"), to every listener. */
  publish(e: DockerEventMsg): void {
    this.fanOut(e);
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.running;
  }

  private fanOut(e: DockerEventMsg): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        log.error(`event listener: ${errorMessage(err)}`);
      }
    }
  }

  /** Deliver a Docker event unless it was delivered already. */
  private deliver(e: DockerEventMsg): void {
    const key = eventKey(e);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.seenOrder.push(key);
    const max = this.opts.remember ?? 4096;
    while (this.seenOrder.length > max) this.seen.delete(this.seenOrder.shift()!);
    // timeNano passed through a double; round down so the next `since` does not skip an event of the same time.
    const t = BigInt(Math.floor(e.timeNano ?? 0)) - 1000n;
    if (t > this.last) this.last = t;
    this.fanOut(e);
  }

  private setConnected(c: boolean): void {
    this.connected = c;
    if (c) {
      for (const r of this.connectedWaiters) r();
      this.connectedWaiters.clear();
    }
  }

  private async loop(): Promise<void> {
    const signal = this.stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      if (failures > 0) {
        if (this.opts.whenReady) await this.opts.whenReady(signal);
        await sleep(Math.min((this.opts.retryMs ?? 250) * failures, 2000), signal);
        if (signal.aborted) break;
      }
      try {
        // stream() rather than jsonLines(): its answer tells when the subscription is live, before any event.
        const res = await this.docker.stream('GET', '/events', { query: { since: nanosQuery(this.last) }, signal });
        this.setConnected(true);
        failures = 0;
        log.debug(`subscribed to skiffd's events since ${nanosQuery(this.last)}`);
        let pending = '';
        res.setEncoding('utf8');
        for await (const chunk of res) {
          pending += chunk as string;
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line) this.deliver(JSON.parse(line) as DockerEventMsg);
          }
        }
        if (!signal.aborted) log.info("skiffd's event stream ended; subscribing again");
      } catch (err) {
        if (!signal.aborted) log.debug(`events: ${errorMessage(err)}`);
      }
      this.setConnected(false);
      failures++;
    }
  }
}
