// `docker import --change`: the Dockerfile instructions dockerd accepts there, HEALTHCHECK among them.
import { describe, expect, it } from 'vitest';
import { DockerError } from '../../vm-agent/daemon/contracts.js';
import { applyChanges, parseDuration, parseHealthcheck } from '../../vm-agent/daemon/images/import.js';

const status = (f: () => unknown): number | undefined => {
  try {
    f();
  } catch (err) {
    return err instanceof DockerError ? err.status : -1;
  }
  return undefined;
};

describe('HEALTHCHECK in --change', () => {
  it('Go durations', () => {
    expect(parseDuration('30s')).toBe(30e9);
    expect(parseDuration('1m30s')).toBe(90e9);
    expect(parseDuration('500ms')).toBe(500e6);
    expect(status(() => parseDuration('10'))).toBe(400);
    expect(status(() => parseDuration('5x'))).toBe(400);
  });

  it('shell and exec forms, flags, NONE', () => {
    expect(parseHealthcheck('--interval=1s --retries=2 CMD test -f /ok')).toEqual({
      Interval: 1e9,
      Retries: 2,
      Test: ['CMD-SHELL', 'test -f /ok'],
    });
    expect(parseHealthcheck('CMD ["/bin/true", "x"]')).toEqual({ Test: ['CMD', '/bin/true', 'x'] });
    expect(parseHealthcheck('NONE')).toEqual({ Test: ['NONE'] });
    expect(status(() => parseHealthcheck('--bogus=1 CMD true'))).toBe(400);
    expect(status(() => parseHealthcheck('true'))).toBe(400);
  });

  it('applyChanges sets the image config', () => {
    const cfg: Record<string, unknown> = {};
    applyChanges(cfg, ['HEALTHCHECK --timeout=3s CMD wget -q localhost']);
    expect(cfg.Healthcheck).toEqual({ Timeout: 3e9, Test: ['CMD-SHELL', 'wget -q localhost'] });
  });
});
