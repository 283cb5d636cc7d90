// The agent's pure pieces around events and usage: the `since` value the hub resubscribes with, what makes two
// events the same, event filters and messages, port events from skiffd's attributes, `docker system df` sums,
// and the /proc parsers (on this machine's real /proc).
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../vm-agent/common/errors.js';
import type { DockerEventMsg } from '../../vm-agent/agent/contracts.js';
import { eventKey, nanosQuery } from '../../vm-agent/agent/events.js';
import { fromEvent } from '../../vm-agent/agent/services/ports.js';
import { diskUsageMsg, eventFilters, eventMsg } from '../../vm-agent/agent/services/system.js';
import { cpuPercent, cpuSample, memInfo } from '../../vm-agent/agent/services/vm.js';

const ev = (over: Partial<DockerEventMsg> = {}): DockerEventMsg => ({
  Type: 'container',
  Action: 'publish',
  Actor: {
    ID: 'abc123',
    Attributes: { name: 'web', hostIp: '0.0.0.0', hostPort: '8080', port: '80', protocol: 'tcp' },
  },
  time: 1700000000,
  // as it comes off the wire: a JSON number past 2^53, so rounded
  timeNano: JSON.parse('1700000000123456789') as number,
  ...over,
});

describe('events hub helpers', () => {
  it('writes since as seconds.nanoseconds, exactly', () => {
    expect(nanosQuery(1_700_000_000_000_000_001n)).toBe('1700000000.000000001');
    expect(nanosQuery(5n)).toBe('0.000000005');
  });

  it('tells events apart by time, type, action and actor', () => {
    expect(eventKey(ev())).toBe(eventKey(ev()));
    expect(eventKey(ev())).not.toBe(eventKey(ev({ Action: 'unpublish' })));
    expect(eventKey(ev())).not.toBe(eventKey(ev({ timeNano: JSON.parse('1700000000999999999') as number })));
  });
});

describe('System.Events', () => {
  it('turns an event into the proto message', () => {
    const m = eventMsg(ev({ timeNano: 1_700_000_000_500_000_000 }));
    expect(m).toMatchObject({ type: 'container', action: 'publish', actor_id: 'abc123' });
    expect(m.attributes).toMatchObject({ name: 'web', hostPort: '8080' });
    expect(m.time).toEqual({ seconds: '1700000000', nanos: 500000000 });
  });

  it('checks filters as the engine does: an unknown one is INVALID_ARGUMENT', () => {
    expect(eventFilters({ type: { values: ['engine'] }, container: { values: [] } })).toEqual(
      new Map([['type', ['engine']]]),
    );
    try {
      eventFilters({ colour: { values: ['red'] } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(status.INVALID_ARGUMENT);
      expect((err as ApiError).message).toContain("invalid filter 'colour'");
    }
  });
});

describe('Ports', () => {
  it("reads skiffd's publish attributes", () => {
    expect(fromEvent(ev())).toEqual({
      container_id: 'abc123',
      container_name: 'web',
      port: { host_ip: '0.0.0.0', host_port: 8080, container_port: 80, protocol: 'tcp' },
    });
    expect(fromEvent(ev({ Actor: { ID: 'x', Attributes: { name: 'a' } } }))).toBeUndefined();
  });
});

describe('System.DiskUsage', () => {
  it('sums /system/df as docker system df does', () => {
    const m = diskUsageMsg({
      LayersSize: 1000,
      Images: [
        { Size: 600, Containers: 1 },
        { Size: 400, Containers: 0 },
      ],
      Containers: [{ SizeRw: 10 }, { SizeRw: 5 }],
      Volumes: [{ UsageData: { Size: 70, RefCount: 1 } }, { UsageData: { Size: 30, RefCount: 0 } }, {}],
      BuildCache: null,
    });
    expect(m).toEqual({
      images_size: '1000',
      images_reclaimable: '400',
      images_count: 2,
      containers_size: '15',
      containers_count: 2,
      volumes_size: '100',
      volumes_reclaimable: '30',
      volumes_count: 3,
      build_cache_size: '0',
    });
  });
});

describe('Vm.Usage parsers', () => {
  it('reads the cpu line of /proc/stat (busy excludes idle and iowait)', () => {
    const a = cpuSample('cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n');
    const b = cpuSample('cpu  150 0 150 750 150 0 0 0 0 0\n');
    expect(a.busy).toBe(200);
    expect(a.total).toBe(1000);
    expect(cpuPercent(a, b)).toBe(50);
    const real = cpuSample();
    expect(real.total).toBeGreaterThan(0);
  });

  it('reads MemTotal and MemAvailable in bytes', () => {
    expect(memInfo('MemTotal:       1000 kB\nMemFree: 10 kB\nMemAvailable:    600 kB\n')).toEqual({
      total: 1024000,
      available: 614400,
    });
    const real = memInfo();
    expect(real.total).toBeGreaterThan(real.available);
  });
});
