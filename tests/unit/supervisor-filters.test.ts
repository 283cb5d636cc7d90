// Event and container filters (vm-agent/supervisor/filters.ts) and the events bus's backlog of exits that nobody
// has heard yet (vm-agent/supervisor/events.ts).
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../vm-agent/common/errors.js';
import { EventBus, eventFields, type SupervisorEvent } from '../../vm-agent/supervisor/events.js';
import { matches, parseFilter, parseFilters } from '../../vm-agent/supervisor/filters.js';

const fields =
  (o: Record<string, string>) =>
  (f: string): string | undefined =>
    o[f];

describe('filters', () => {
  it('parses conditions with ==, !=, ~= and bare fields', () => {
    expect(parseFilter('topic==/tasks/exit,container_id!=a,labels.app~=^web,exec_id')).toMatchObject([
      { field: 'topic', op: '==', value: '/tasks/exit' },
      { field: 'container_id', op: '!=', value: 'a' },
      { field: 'labels.app', op: '~=', value: '^web' },
      { field: 'exec_id', op: 'present' },
    ]);
  });

  it('keeps commas and spaces inside quoted values', () => {
    expect(parseFilter('labels.note=="a, b",topic==x')).toMatchObject([
      { field: 'labels.note', value: 'a, b' },
      { field: 'topic', value: 'x' },
    ]);
  });

  it('matches when any filter has every condition holding; an empty list matches all', () => {
    const f = parseFilters(['topic==/tasks/exit,container_id==a', 'topic~=^/containers/']);
    expect(matches(f, fields({ topic: '/tasks/exit', container_id: 'a' }))).toBe(true);
    expect(matches(f, fields({ topic: '/tasks/exit', container_id: 'b' }))).toBe(false);
    expect(matches(f, fields({ topic: '/containers/delete', container_id: 'b' }))).toBe(true);
    expect(matches([], fields({}))).toBe(true);
  });

  it('treats a missing field as not equal, not matching a regexp, and not present', () => {
    expect(matches(parseFilters(['labels.x!=1']), fields({}))).toBe(true);
    expect(matches(parseFilters(['labels.x==']), fields({}))).toBe(false);
    expect(matches(parseFilters(['labels.x~=.*']), fields({}))).toBe(false);
    expect(matches(parseFilters(['labels.x']), fields({ 'labels.x': '' }))).toBe(false);
  });

  it('rejects bad filters with INVALID_ARGUMENT and the offending text', () => {
    for (const bad of ['', 'topic==a,', '==x', 'a b==c', 'labels.x~=(', 'x=="open']) {
      let err: unknown;
      try {
        parseFilter(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(status.INVALID_ARGUMENT);
      expect((err as ApiError).message).toContain('filter');
    }
  });
});

describe('events bus', () => {
  const exit = (bus: EventBus, id: string, code = 0): SupervisorEvent =>
    bus.makeEvent(
      id,
      { app: 'web' },
      {
        kind: 'task_exit',
        execId: '',
        pid: 1,
        exitStatus: code,
        exitedAt: '2024-01-01T00:00:00.000000001Z',
        signal: 0,
        oomKilled: false,
        reason: '',
      },
    );

  it('names topics and exposes the filter fields', () => {
    const bus = new EventBus();
    const e = exit(bus, 'c1');
    expect(e.topic).toBe('/tasks/exit');
    const f = eventFields(e);
    expect([f('topic'), f('id'), f('container_id'), f('exec_id'), f('labels.app'), f('nope')]).toEqual([
      '/tasks/exit',
      'c1',
      'c1',
      '',
      'web',
      undefined,
    ]);
    expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  it('sends to matching subscribers only, until they unsubscribe', () => {
    const bus = new EventBus();
    const a: string[] = [];
    const b: string[] = [];
    const unA = bus.subscribe(['topic==/tasks/exit'], (e) => a.push(e.containerId));
    bus.subscribe(['container_id==c2'], (e) => b.push(e.topic));
    bus.publish(exit(bus, 'c1'));
    bus.publish(bus.makeEvent('c2', {}, { kind: 'container_create', labels: {} }));
    unA();
    bus.publish(exit(bus, 'c3'));
    expect(a).toEqual(['c1']);
    expect(b).toEqual(['/containers/create']);
    expect(bus.subscriberCount).toBe(1);
  });

  it('keeps events for the next matching subscriber and says when each was delivered', () => {
    const bus = new EventBus();
    const delivered: string[] = [];
    for (const id of ['c1', 'c2']) {
      const e = exit(bus, id, 3);
      expect(bus.hasSubscriberFor(e)).toBe(false);
      bus.keep(e, () => delivered.push(id));
    }
    const onlyC2: string[] = [];
    bus.subscribe(['container_id==c2'], (e) => onlyC2.push(e.containerId));
    expect(onlyC2).toEqual(['c2']);
    expect(delivered).toEqual(['c2']);
    expect(bus.pending.map((e) => e.containerId)).toEqual(['c1']);
    const all: string[] = [];
    bus.subscribe([], (e) => all.push(e.containerId));
    expect(all).toEqual(['c1']);
    expect(delivered).toEqual(['c2', 'c1']);
    expect(bus.pending).toEqual([]);
    // Delivered once only: a third subscriber gets nothing old.
    const late: string[] = [];
    bus.subscribe([], (e) => late.push(e.containerId));
    expect(late).toEqual([]);
  });

  it('rejects a subscription with a bad filter and does not register it', () => {
    const bus = new EventBus();
    expect(() => bus.subscribe(['topic~=['], () => undefined)).toThrow(/bad regexp/);
    expect(bus.subscriberCount).toBe(0);
  });
});
