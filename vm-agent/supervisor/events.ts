// The events bus: every change of a container or task is published here and sent to each subscriber whose
// filters match. Exit events are "durable": one published while nobody subscribes (the supervisor just restarted,
// or skiffd is down) is kept and sent to the next subscriber; the task manager records that it was reported, so
// every exit is reported exactly once even across restarts.
import { matches, parseFilters, type Condition } from './filters.js';
import { nowRfc3339 } from '../common/timestamp.js';

export interface ExitPayload {
  execId: string;
  pid: number;
  exitStatus: number;
  exitedAt: string;
  signal: number;
  oomKilled: boolean;
  reason: string;
}

export type EventPayload =
  | { kind: 'task_create'; pid: number; bundle: string; terminal: boolean; stdin: boolean }
  | { kind: 'task_start'; pid: number }
  | ({ kind: 'task_exit' } & ExitPayload)
  | { kind: 'task_oom' }
  | { kind: 'task_exec_added'; execId: string }
  | { kind: 'task_exec_started'; execId: string; pid: number }
  | { kind: 'task_paused' }
  | { kind: 'task_resumed' }
  | { kind: 'task_delete'; pid: number; exitStatus: number; exitedAt: string }
  | { kind: 'container_create'; labels: Record<string, string> }
  | { kind: 'container_update'; labels: Record<string, string> }
  | { kind: 'container_delete' };

export const topics: Record<EventPayload['kind'], string> = {
  task_create: '/tasks/create',
  task_start: '/tasks/start',
  task_exit: '/tasks/exit',
  task_oom: '/tasks/oom',
  task_exec_added: '/tasks/exec-added',
  task_exec_started: '/tasks/exec-started',
  task_paused: '/tasks/paused',
  task_resumed: '/tasks/resumed',
  task_delete: '/tasks/delete',
  container_create: '/containers/create',
  container_update: '/containers/update',
  container_delete: '/containers/delete',
};

export interface SupervisorEvent {
  timestamp: string;
  topic: string;
  containerId: string;
  /** The container's labels when the event was published (for labels.<key> filters). */
  labels: Record<string, string>;
  payload: EventPayload;
}

/** The filter fields of an event: topic, container_id (alias id), exec_id, labels.<key>. */
export function eventFields(e: SupervisorEvent): (field: string) => string | undefined {
  return (field) => {
    switch (field) {
      case 'topic':
        return e.topic;
      case 'id':
      case 'container_id':
        return e.containerId;
      case 'exec_id':
        return 'execId' in e.payload ? e.payload.execId : undefined;
    }
    if (field.startsWith('labels.')) return e.labels[field.slice('labels.'.length)];
    return undefined;
  };
}

interface Subscriber {
  filters: Condition[][];
  send: (e: SupervisorEvent) => void;
}

interface Backlogged {
  event: SupervisorEvent;
  delivered: () => void;
}

export class EventBus {
  private readonly subscribers = new Set<Subscriber>();
  private backlog: Backlogged[] = [];

  makeEvent(containerId: string, labels: Record<string, string>, payload: EventPayload): SupervisorEvent {
    return { timestamp: nowRfc3339(), topic: topics[payload.kind], containerId, labels, payload };
  }

  /** Send to every matching subscriber. */
  publish(event: SupervisorEvent): void {
    for (const s of this.subscribers) if (matches(s.filters, eventFields(event))) s.send(event);
  }

  /** Whether publishing the event now would reach at least one subscriber. */
  hasSubscriberFor(event: SupervisorEvent): boolean {
    const fields = eventFields(event);
    for (const s of this.subscribers) if (matches(s.filters, fields)) return true;
    return false;
  }

  /**
   * Keep an event that must reach someone and has nobody to go to now: the next subscriber whose filters match
   * gets it, and `delivered` runs then. (Exit events: the task manager publishes them when hasSubscriberFor says
   * someone listens, else keeps them here, and records which happened.)
   */
  keep(event: SupervisorEvent, delivered: () => void): void {
    this.backlog.push({ event, delivered });
  }

  /**
   * Subscribe; backlogged events (nobody has seen them) that match the filters go to this subscriber first and
   * leave the backlog. Returns the unsubscribe.
   */
  subscribe(filters: readonly string[], send: (e: SupervisorEvent) => void): () => void {
    const sub: Subscriber = { filters: parseFilters(filters), send };
    const kept: Backlogged[] = [];
    for (const b of this.backlog) {
      if (!matches(sub.filters, eventFields(b.event))) {
        kept.push(b);
        continue;
      }
      send(b.event);
      b.delivered();
    }
    this.backlog = kept;
    this.subscribers.add(sub);
    return () => {
      this.subscribers.delete(sub);
    };
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Events waiting for a subscriber. */
  get pending(): readonly SupervisorEvent[] {
    return this.backlog.map((b) => b.event);
  }
}
