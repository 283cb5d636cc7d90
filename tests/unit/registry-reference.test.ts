// registry/reference.ts and registry/platform.ts: references as the registry client needs them; platform
// selection in image indexes.
import { describe, expect, it } from 'vitest';
import {
  familiarName,
  familiarString,
  fullString,
  manifestReference,
  parseReference,
  withDefaultTag,
} from '../../vm-agent/daemon/registry/reference.js';
import {
  normalizePlatform,
  parsePlatform,
  selectManifest,
  type IndexEntry,
} from '../../vm-agent/daemon/registry/platform.js';
import { isInsecure } from '../../vm-agent/daemon/registry/client.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('references', () => {
  it('normalises Docker Hub names', () => {
    expect(parseReference('busybox')).toEqual({ domain: 'docker.io', path: 'library/busybox' });
    expect(parseReference('team/app:1.0')).toEqual({ domain: 'docker.io', path: 'team/app', tag: '1.0' });
    expect(parseReference('index.docker.io/library/busybox')).toEqual({ domain: 'docker.io', path: 'library/busybox' });
    expect(fullString(withDefaultTag(parseReference('busybox')))).toBe('docker.io/library/busybox:latest');
    expect(familiarString(parseReference('docker.io/library/busybox:1'))).toBe('busybox:1');
    expect(familiarName(parseReference('docker.io/team/app'))).toBe('team/app');
  });

  it('reads registry hosts, ports, tags and digests', () => {
    expect(parseReference('127.0.0.1:5000/busybox:v2s2')).toEqual({
      domain: '127.0.0.1:5000',
      path: 'busybox',
      tag: 'v2s2',
    });
    expect(parseReference('localhost/a/b@' + D)).toEqual({ domain: 'localhost', path: 'a/b', digest: D });
    const both = parseReference('reg.example.com:443/x:t@' + D);
    expect(both).toEqual({ domain: 'reg.example.com:443', path: 'x', tag: 't', digest: D });
    expect(manifestReference(both)).toBe(D);
    expect(familiarString(parseReference('127.0.0.1:5000/busybox:latest'))).toBe('127.0.0.1:5000/busybox:latest');
  });

  it('refuses bad references with 400s', () => {
    for (const bad of ['', 'UPPER', 'a:b:c', 'a@sha256:short', 'a/-b', 'a:' + 'x'.repeat(129)]) {
      expect(() => parseReference(bad), bad).toThrow(/invalid reference format/);
    }
    try {
      parseReference('Busybox');
    } catch (e) {
      expect((e as { status: number }).status).toBe(400);
      expect((e as Error).message).toMatch(/must be lowercase/);
    }
  });

  it('speaks HTTP to loopback and listed registries only', () => {
    expect(isInsecure('127.0.0.1:5000')).toBe(true);
    expect(isInsecure('localhost:5000')).toBe(true);
    expect(isInsecure('[::1]:5000')).toBe(true);
    expect(isInsecure('registry-1.docker.io')).toBe(false);
    expect(isInsecure('reg.lan:5000', ['reg.lan:5000'])).toBe(true);
    expect(isInsecure('reg.lan:5000', ['other:5000'])).toBe(false);
  });
});

describe('platforms', () => {
  const idx: IndexEntry[] = [
    { digest: 'sha256:amd', platform: { os: 'linux', architecture: 'amd64' } },
    { digest: 'sha256:v6', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { digest: 'sha256:v7', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { digest: 'sha256:arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { digest: 'sha256:att', platform: { os: 'unknown', architecture: 'unknown' } },
    { digest: 'sha256:win', platform: { os: 'windows', architecture: 'amd64' } },
  ];

  it('picks the exact os/arch and the best variant', () => {
    expect(selectManifest(idx, { os: 'linux', architecture: 'amd64' }).digest).toBe('sha256:amd');
    expect(selectManifest(idx, { os: 'linux', architecture: 'arm64' }).digest).toBe('sha256:arm64');
    expect(selectManifest(idx, { os: 'linux', architecture: 'aarch64' }).digest).toBe('sha256:arm64');
    expect(selectManifest(idx, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest).toBe('sha256:v7');
    expect(selectManifest(idx, { os: 'linux', architecture: 'arm', variant: 'v6' }).digest).toBe('sha256:v6');
    expect(selectManifest(idx, { os: 'windows', architecture: 'x86_64' }).digest).toBe('sha256:win');
  });

  it('falls back to an older arm variant, never a newer one', () => {
    const only6 = idx.filter((e) => e.digest !== 'sha256:v7');
    expect(selectManifest(only6, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest).toBe('sha256:v6');
    const only7 = idx.filter((e) => e.digest !== 'sha256:v6');
    expect(() => selectManifest(only7, { os: 'linux', architecture: 'arm', variant: 'v6' })).toThrow(
      'no matching manifest for linux/arm/v6 in the manifest list entries',
    );
  });

  it('never picks attestations and says which platform was missing (404)', () => {
    try {
      selectManifest(idx.slice(4, 5), { os: 'linux', architecture: 'amd64' });
      expect.unreachable();
    } catch (e) {
      expect((e as { status: number }).status).toBe(404);
      expect((e as Error).message).toBe('no matching manifest for linux/amd64 in the manifest list entries');
    }
  });

  it('normalises and parses platform strings', () => {
    expect(normalizePlatform({ os: 'Linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm' })).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
    });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm/6')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(parsePlatform('')).toBeUndefined();
    expect(() => parsePlatform('linux//x')).toThrow(/invalid platform/);
  });
});
