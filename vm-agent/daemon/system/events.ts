// The EventBus (contracts.ts) and GET /events. The bus stamps each event (time, timeNano, scope, and the legacy
// status/id/from of container and image events), keeps the last ones in a ring for `since`, and fans them out to
// the subscribers; filters as dockerd's daemon/events/filter.go.
import { badRequest, type DockerEvent, type EventBus, type Filters, type RequestContext } from '../contracts.js';
import { nowNano, parseTimestamp } from './time.js';

/** An event as sent on the wire. */
export interface StampedEvent extends DockerEvent {
  scope: 'local';
  time: number;
  timeNano: number;
  status?: string;
  id?: string;
  from?: string;
}

interface Entry {
  nano: bigint;
  event: StampedEvent;
}

type Listener = (e: Entry) => void;

export class MemoryEventBus implements EventBus {
  private readonly ring: Entry[] = [];
  private readonly listeners = new Set<Listener>();

  constructor(private readonly limit = 1024) {}

  emit(e: DockerEvent): void {
    const nano = nowNano();
    const event: StampedEvent = {
      ...e,
      Actor: { ID: e.Actor.ID, Attributes: { ...e.Actor.Attributes } },
      scope: 'local',
      time: Number(nano / 1_000_000_000n),
      timeNano: Number(nano),
    };
    if (e.Type === 'container' || e.Type === 'image') {
      event.status = e.Action;
      event.id = e.Actor.ID;
      if (e.Type === 'container' && e.Actor.Attributes.image !== undefined) event.from = e.Actor.Attributes.image;
    }
    const entry = { nano, event };
    this.ring.push(entry);
    if (this.ring.length > this.limit) this.ring.splice(0, this.ring.length - this.limit);
    for (const l of this.listeners) l(entry);
  }

  /** The kept events within [since, until] (either may be absent), oldest first. */
  recent(since: bigint | undefined, until: bigint | undefined): Entry[] {
    return this.ring.filter(
      (x) => (since === undefined || x.nano >= since) && (until === undefined || x.nano <= until),
    );
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}

const FILTER_KEYS = new Set([
  'type',
  'event',
  'action',
  'container',
  'image',
  'label',
  'daemon',
  'scope',
  'network',
  'volume',
  'plugin',
  'node',
  'service',
  'secret',
  'config',
]);

/** 400 on filter names dockerd does not know. */
export function validateEventFilters(f: Filters): void {
  for (const k of f.keys()) if (!FILTER_KEYS.has(k)) throw badRequest(`invalid filter '${k}'`);
}

/** Absent filter: everything matches. */
const anyOf = (f: Filters, key: string, pred: (v: string) => boolean): boolean => {
  const vals = f.get(key);
  return vals === undefined || vals.length === 0 || vals.some(pred);
};

const stripTag = (ref: string): string => {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
};

/** Whether `e` passes the filters (every key must match; values of one key are alternatives). */
export function eventMatches(f: Filters, e: DockerEvent): boolean {
  const id = e.Actor.ID;
  const attrs = e.Actor.Attributes;
  const fuzzy = (type: string) => (v: string) =>
    e.Type === type && (id === v || id.startsWith(v) || attrs.name === v || (attrs.name ?? '').startsWith(v));
  const action = (v: string) => e.Action === v || e.Action.startsWith(`${v}:`);
  const image = (v: string): boolean => {
    const name = (e.Type === 'image' ? attrs.name : attrs.image) ?? '';
    return [id, name, stripTag(id), stripTag(name)].includes(v);
  };
  const label = (v: string): boolean => {
    const eq = v.indexOf('=');
    if (eq < 0) return v in attrs;
    return attrs[v.slice(0, eq)] === v.slice(eq + 1);
  };
  const labels = f.get('label') ?? [];
  return (
    anyOf(f, 'type', (v) => v === e.Type) &&
    anyOf(f, 'event', action) &&
    anyOf(f, 'action', action) &&
    anyOf(f, 'scope', (v) => v === 'local') &&
    anyOf(f, 'container', fuzzy('container')) &&
    anyOf(f, 'daemon', fuzzy('daemon')) &&
    anyOf(f, 'network', fuzzy('network')) &&
    anyOf(f, 'volume', fuzzy('volume')) &&
    anyOf(f, 'image', image) &&
    labels.every(label)
  );
}

/** GET /events: the kept events in range, then live ones until `until` or the client goes. */
export async function getEvents(ctx: RequestContext, bus: MemoryEventBus): Promise<void> {
  const f = ctx.filters();
  validateEventFilters(f);
  const since = parseTimestamp(ctx.query.get('since'));
  const until = parseTimestamp(ctx.query.get('until'));
  const now = nowNano();
  if (since !== undefined && until !== undefined && until < since)
    throw badRequest('`until` must be later than `since`');

  const out = ctx.stream('application/json');
  const send = (x: Entry): void => {
    if (eventMatches(f, x.event)) out.write(x.event);
  };
  // Subscribe before replaying, holding live events back until the replay is written: none lost, none twice.
  const held: Entry[] = [];
  let replaying = true;
  const unsubscribe = bus.subscribe((x) => {
    if (until !== undefined && x.nano > until) return;
    if (replaying) held.push(x);
    else send(x);
  });
  try {
    const replay = since !== undefined || until !== undefined ? bus.recent(since, until) : [];
    for (const x of replay) send(x);
    const lastReplayed = replay.at(-1)?.nano ?? -1n;
    for (const x of held) if (x.nano > lastReplayed) send(x);
    replaying = false;
    if (until !== undefined && until <= now) return out.end();
    let timer: NodeJS.Timeout | undefined;
    const expired =
      until === undefined
        ? new Promise<void>(() => undefined)
        : new Promise<void>((r) => (timer = setTimeout(r, Number((until - now) / 1_000_000n) + 1)));
    await Promise.race([out.closed, expired]);
    clearTimeout(timer);
    out.end();
  } finally {
    unsubscribe();
  }
}
