import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyState, NetworkStore } from '../../vm-agent/daemon/networks/store.js';

const dirs: string[] = [];
function root(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-netstore-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('network state file', () => {
  it('starts empty when there is no file, and makes none until saved', () => {
    const r = root();
    const s = new NetworkStore(r);
    expect(s.file).toBe(join(r, 'networks', 'state.json'));
    expect(s.load()).toEqual(emptyState());
    expect(existsSync(join(r, 'networks'))).toBe(false);
  });

  it('saves and loads the state, leaving no temporary file', () => {
    const r = root();
    const s = new NetworkStore(r);
    const state = emptyState();
    state.networks.x = {
      id: 'x',
      name: 'n',
      driver: 'bridge',
      created: '2025-01-01T00:00:00.000000000Z',
      bridge: 'br-x',
      ipam: [{ subnet: '10.221.0.0/24', gateway: '10.221.0.1' }],
      internal: false,
      attachable: false,
      labels: { a: 'b' },
      options: {},
      predefined: false,
      allocated: { '10.221.0.1': '', '10.221.0.2': 'c1' },
    };
    state.attachments.push({ containerId: 'c1', networkId: 'x', config: { Aliases: ['web'] } });
    state.ports.push({
      containerId: 'c1',
      containerIp: '10.221.0.2',
      bridge: 'br-x',
      privatePort: 80,
      protocol: 'tcp',
      hostIp: '0.0.0.0',
      hostPort: 8080,
    });
    state.containers.c1 = { name: 'web', hostname: 'abc' };
    s.save(state);
    expect(new NetworkStore(r).load()).toEqual(state);
    expect(readdirSync(join(r, 'networks'))).toEqual(['state.json']);
    expect(statSync(s.file).mode & 0o777).toBe(0o600);

    state.attachments = [];
    s.save(state);
    expect(new NetworkStore(r).load().attachments).toEqual([]);
  });

  it('reads a file of an older layout without the containers map', () => {
    const r = root();
    mkdirSync(join(r, 'networks'));
    writeFileSync(join(r, 'networks', 'state.json'), JSON.stringify({ networks: {}, attachments: [], ports: [] }));
    expect(new NetworkStore(r).load().containers).toEqual({});
  });

  it('refuses a corrupt file with an error naming it, and leaves it alone', () => {
    const r = root();
    const file = join(r, 'networks', 'state.json');
    mkdirSync(join(r, 'networks'));
    for (const bad of ['{"networks": {', '[]', 'null', '{"networks": {}, "attachments": {}}']) {
      writeFileSync(file, bad);
      expect(() => new NetworkStore(r).load()).toThrow(`network state ${file} is corrupt`);
      expect(readFileSync(file, 'utf8')).toBe(bad);
    }
  });
});
