// skiffd server/ pieces without a daemon: the router, Docker's boolean and filters parsing, version checks and
// the multiplexed frame writer.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import {
  compareVersions,
  frame,
  FrameReader,
  FrameWriter,
  HttpRouter,
  parseBool,
  parseFilters,
  streamContentType,
} from '../../vm-agent/daemon/server/index.js';
import { checkVersion, splitVersion } from '../../vm-agent/daemon/server/version.js';

const h = (name: string) => Object.assign(() => undefined, { tag: name });
const tagOf = (m: { handler: unknown } | undefined) => (m?.handler as { tag?: string } | undefined)?.tag;

describe('router', () => {
  const r = new HttpRouter();
  r.add('GET', '/containers/json', h('list'));
  r.add('GET', '/containers/{id}/json', h('inspect'));
  r.add('DELETE', '/containers/{id}', h('remove'));
  r.add('POST', '/containers/{id}/start', h('start'));
  r.add('GET', '/images/{name}/json', h('image-inspect'));
  r.add('POST', '/images/{name}/tag', h('image-tag'));
  r.add('GET', '/images/json', h('images'));
  r.add('GET', '/_ping', h('ping'));
  r.add('GET', '/exec/{id}/json', h('exec-inspect'));

  it('matches literal paths and templates, with params decoded', () => {
    expect(tagOf(r.match('GET', '/containers/json'))).toBe('list');
    const m = r.match('GET', '/containers/abc123/json');
    expect(tagOf(m)).toBe('inspect');
    expect(m?.params).toEqual({ id: 'abc123' });
    expect(r.match('POST', '/containers/my%20name/start')?.params).toEqual({ id: 'my name' });
  });

  it('lets a parameter span slashes only when nothing else matches (image names)', () => {
    const m = r.match('GET', '/images/docker.io/library/busybox:latest/json');
    expect(tagOf(m)).toBe('image-inspect');
    expect(m?.params.name).toBe('docker.io/library/busybox:latest');
    expect(r.match('POST', '/images/127.0.0.1:5000/x/tag')?.params.name).toBe('127.0.0.1:5000/x');
    expect(tagOf(r.match('GET', '/images/json'))).toBe('images');
  });

  it('prefers literal segments; unknown methods and paths do not match; HEAD falls back to GET', () => {
    expect(tagOf(r.match('GET', '/exec/json/json'))).toBe('exec-inspect');
    expect(r.match('POST', '/containers/json')).toBeUndefined();
    expect(r.match('GET', '/nope')).toBeUndefined();
    expect(r.match('GET', '/containers/x/nonsense')).toBeUndefined();
    expect(tagOf(r.match('HEAD', '/_ping'))).toBe('ping');
  });
});

describe('versions', () => {
  it('splits the /v1.xx prefix', () => {
    expect(splitVersion('/v1.50/containers/json')).toEqual({ version: '1.50', path: '/containers/json' });
    expect(splitVersion('/containers/json')).toEqual({ version: undefined, path: '/containers/json' });
    expect(splitVersion('/v1.24/_ping')).toEqual({ version: '1.24', path: '/_ping' });
    expect(splitVersion('/volumes')).toEqual({ version: undefined, path: '/volumes' });
  });

  it('compares numerically and refuses out-of-range versions with dockerd’s words', () => {
    expect(compareVersions('1.9', '1.24')).toBeLessThan(0);
    expect(compareVersions('1.50', '1.42')).toBeGreaterThan(0);
    expect(compareVersions('1.40', '1.40')).toBe(0);
    expect(() => checkVersion('1.24', '1.24', '1.50')).not.toThrow();
    expect(() => checkVersion('1.50', '1.24', '1.50')).not.toThrow();
    const tooNew = (() => {
      try {
        checkVersion('1.51', '1.24', '1.50');
      } catch (e) {
        return e as DockerError;
      }
    })();
    expect(tooNew?.status).toBe(400);
    expect(tooNew?.message).toBe('client version 1.51 is too new. Maximum supported API version is 1.50');
    expect(() => checkVersion('1.23', '1.24', '1.50')).toThrow(/client version 1.23 is too old/);
  });

  it('picks the stream content type: multiplexed from 1.42 when not a TTY', () => {
    expect(streamContentType('1.50', true)).toBe('application/vnd.docker.multiplexed-stream');
    expect(streamContentType('1.41', true)).toBe('application/vnd.docker.raw-stream');
    expect(streamContentType('1.50', false)).toBe('application/vnd.docker.raw-stream');
  });
});

describe('query parsing', () => {
  it('booleans as dockerd: "", 0, no, false, none are false; absent is the default', () => {
    for (const v of ['', '0', 'no', 'false', 'none', 'FALSE', ' No ']) expect(parseBool(v, true)).toBe(false);
    for (const v of ['1', 'true', 'yes', 'True', 'anything']) expect(parseBool(v)).toBe(true);
    expect(parseBool(null)).toBe(false);
    expect(parseBool(null, true)).toBe(true);
  });

  it('filters in the map form and the legacy list form', () => {
    expect(parseFilters('{"type":{"container":true},"label":{"a=b":true,"c":true}}')).toEqual(
      new Map([
        ['type', ['container']],
        ['label', ['a=b', 'c']],
      ]),
    );
    expect(parseFilters('{"status":["running","paused"]}')).toEqual(new Map([['status', ['running', 'paused']]]));
    expect(parseFilters(null).size).toBe(0);
    expect(parseFilters('').size).toBe(0);
    expect(parseFilters('{}').size).toBe(0);
  });

  it('bad filters are a 400', () => {
    for (const bad of ['{nope', '"x"', '[1]', '{"a":1}']) {
      try {
        parseFilters(bad);
        expect.fail(`accepted ${bad}`);
      } catch (e) {
        expect(e).toBeInstanceOf(DockerError);
        expect((e as DockerError).status).toBe(400);
      }
    }
  });
});

describe('frames', () => {
  it('frame(): [stream, 0, 0, 0, size BE32] + payload', () => {
    const f = frame(2, 'héllo');
    expect([...f.subarray(0, 8)]).toEqual([2, 0, 0, 0, 0, 0, 0, 6]);
    expect(f.subarray(8).toString()).toBe('héllo');
    const big = frame(1, Buffer.alloc(70_000, 0x61));
    expect(big.readUInt32BE(4)).toBe(70_000);
  });

  it('FrameWriter frames when multiplexed, writes raw bytes otherwise, drops empty payloads', () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const mux = new FrameWriter(out, true);
    mux.write(1, 'out');
    mux.write(2, Buffer.from('err'));
    mux.write(1, '');
    const raw = new FrameWriter(out, false);
    raw.write(1, 'raw');
    const all = Buffer.concat(chunks);
    const frames = new FrameReader().push(all.subarray(0, all.length - 3));
    expect(frames.map((f) => [f.stream, f.payload.toString()])).toEqual([
      [1, 'out'],
      [2, 'err'],
    ]);
    expect(all.subarray(all.length - 3).toString()).toBe('raw');
  });

  it('FrameReader reassembles frames split across chunks', () => {
    const bytes = Buffer.concat([frame(1, 'abc'), frame(2, 'defg')]);
    const r = new FrameReader();
    const got = [...r.push(bytes.subarray(0, 5)), ...r.push(bytes.subarray(5, 13)), ...r.push(bytes.subarray(13))];
    expect(got.map((f) => [f.stream, f.payload.toString()])).toEqual([
      [1, 'abc'],
      [2, 'defg'],
    ]);
  });
});
