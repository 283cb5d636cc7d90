// images/reference.ts: Docker's reference grammar, normalisation to docker.io/library/ and the familiar form.
import { describe, expect, it } from 'vitest';
import { familiar, normalizeReference, parseReference, repoOf } from '../../vm-agent/daemon/images/reference.js';

describe('references', () => {
  it('normalises short names, tags and digests', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(normalizeReference('busybox')).toBe('docker.io/library/busybox:latest');
    expect(normalizeReference('busybox:1.36')).toBe('docker.io/library/busybox:1.36');
    expect(normalizeReference('me/app')).toBe('docker.io/me/app:latest');
    expect(normalizeReference('index.docker.io/library/busybox')).toBe('docker.io/library/busybox:latest');
    expect(normalizeReference('localhost:5000/x')).toBe('localhost:5000/x:latest');
    expect(normalizeReference('127.0.0.1:5000/a/b:t')).toBe('127.0.0.1:5000/a/b:t');
    expect(normalizeReference(`busybox@${d}`)).toBe(`docker.io/library/busybox@${d}`);
    expect(parseReference(`r.io/x:1@${d}`)).toEqual({ name: 'r.io/x', tag: '1', digest: d });
  });

  it('refuses bad input with dockerd-like messages', () => {
    expect(() => parseReference('Busybox')).toThrow(/must be lowercase/);
    expect(() => parseReference('a'.repeat(64))).toThrow(/cannot specify 64-byte hexadecimal strings/);
    expect(() => parseReference('x:bad tag')).toThrow(/invalid reference format/);
    expect(() => parseReference('x@sha256:zz')).toThrow(/invalid reference format/);
    expect(() => parseReference('')).toThrow(/invalid reference format/);
  });

  it('familiar forms and repositories', () => {
    expect(familiar('docker.io/library/busybox:latest')).toBe('busybox:latest');
    expect(familiar('docker.io/me/app:1')).toBe('me/app:1');
    expect(familiar('r.io:5000/x:1')).toBe('r.io:5000/x:1');
    expect(repoOf('r.io:5000/x:1')).toBe('r.io:5000/x');
    expect(repoOf('r.io:5000/x')).toBe('r.io:5000/x');
  });
});
