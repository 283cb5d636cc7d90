// The docker context files, written as the docker CLI writes them (the same sha256 directory, the same meta.json),
// kept current, other contexts and config.json settings left alone, the current context switched only when asked.
// (tests/integration/cli-docker-context.test.ts checks them with the real docker CLI.)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  contextMetaFile,
  currentDockerContext,
  dockerConfigDir,
  dockerContextName,
  ensureDockerContext,
  keepDockerContext,
  readDockerContextHost,
  removeDockerContext,
  useDockerContext,
} from '../../electron/hostagent/docker-context.js';

const root = mkdtempSync(join(tmpdir(), 'skiff-dctx-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `c${n++}`);

describe('docker context files', () => {
  it('names and places', () => {
    expect(dockerContextName('default')).toBe('skiff');
    expect(dockerContextName('dev')).toBe('skiff-dev');
    // `docker context create xx` writes contexts/meta/<sha256("xx")>/meta.json (seen with docker 28.2.2)
    expect(contextMetaFile('xx', '/d')).toBe(
      '/d/contexts/meta/5dde896887f6754c9b15bfe3a441ae4806df2fde94001311e08bf110622e0bbe/meta.json',
    );
    expect(dockerConfigDir({ DOCKER_CONFIG: '/x/y' })).toBe('/x/y');
    expect(dockerConfigDir({})).toMatch(/\.docker$/);
  });

  it('created as the docker CLI writes it, then unchanged, then updated when the socket moves', () => {
    const dir = fresh();
    const r = ensureDockerContext({ vm: 'default', socket: '/h/.skiff/default/docker.sock', configDir: dir });
    expect(r).toMatchObject({ name: 'skiff', change: 'created', current: false });
    expect(readFileSync(r.metaFile, 'utf8')).toBe(
      '{"Name":"skiff","Metadata":{"Description":"Skiff"},"Endpoints":{"docker":{"Host":"unix:///h/.skiff/default/docker.sock","SkipTLSVerify":false}}}',
    );
    expect(existsSync(join(dir, 'config.json'))).toBe(false); // the current context is not touched
    expect(ensureDockerContext({ vm: 'default', socket: '/h/.skiff/default/docker.sock', configDir: dir }).change).toBe(
      'unchanged',
    );
    const u = ensureDockerContext({ vm: 'default', socket: '/new/docker.sock', configDir: dir });
    expect(u.change).toBe('updated');
    expect(readDockerContextHost('skiff', dir)).toBe('unix:///new/docker.sock');
  });

  it('an update keeps fields it does not own; a corrupt file of ours is written anew', () => {
    const dir = fresh();
    const file = contextMetaFile('skiff-dev', dir);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(
      file,
      JSON.stringify({
        Name: 'skiff-dev',
        Metadata: { Description: 'mine', StackOrchestrator: 'swarm' },
        Endpoints: { docker: { Host: 'unix:///old.sock', SkipTLSVerify: false }, kubernetes: { Namespace: 'x' } },
      }),
    );
    ensureDockerContext({ vm: 'dev', socket: '/s.sock', configDir: dir });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      Name: 'skiff-dev',
      Metadata: { Description: 'mine', StackOrchestrator: 'swarm' },
      Endpoints: { docker: { Host: 'unix:///s.sock', SkipTLSVerify: false }, kubernetes: { Namespace: 'x' } },
    });
    writeFileSync(file, '{not json');
    expect(ensureDockerContext({ vm: 'dev', socket: '/s.sock', configDir: dir }).change).toBe('updated');
    expect(readDockerContextHost('skiff-dev', dir)).toBe('unix:///s.sock');
  });

  it('never touches other contexts', () => {
    const dir = fresh();
    const other = contextMetaFile('other', dir);
    mkdirSync(dirname(other), { recursive: true });
    const text = '{"Name":"other","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://1.2.3.4:2375"}}}';
    writeFileSync(other, text);
    ensureDockerContext({ vm: 'default', socket: '/a.sock', configDir: dir });
    removeDockerContext('default', dir);
    expect(readFileSync(other, 'utf8')).toBe(text);
    expect(readDockerContextHost('skiff', dir)).toBeUndefined();
  });

  it('use: sets currentContext and keeps the rest of config.json; remove makes default current again', () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { 'r.io': { auth: 'eA==' } }, currentContext: 'other', psFormat: '{{.ID}}' }),
    );
    const r = ensureDockerContext({ vm: 'default', socket: '/a.sock', configDir: dir, use: true });
    expect(r.current).toBe(true);
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(c).toEqual({ auths: { 'r.io': { auth: 'eA==' } }, currentContext: 'skiff', psFormat: '{{.ID}}' });
    expect(currentDockerContext(dir)).toBe('skiff');
    expect(removeDockerContext('default', dir)).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({
      auths: { 'r.io': { auth: 'eA==' } },
      psFormat: '{{.ID}}',
    });
  });

  it('use refuses to rewrite a config.json that is not JSON', () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{ broken');
    expect(() => useDockerContext('skiff', dir)).toThrow(/config.json is not valid JSON .*docker context use skiff/);
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe('{ broken');
  });

  it('keepDockerContext reports an unwritable place (a file where the directory should be) as a warning', () => {
    const dir = fresh();
    writeFileSync(dir, 'a file, not a directory');
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = dir;
    try {
      const warnings: string[] = [];
      expect(keepDockerContext('default', '/a.sock', warnings)).toBeUndefined();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/docker context skiff could not be written .*DOCKER_HOST=unix:\/\/\/a.sock/);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
    }
  });
});
