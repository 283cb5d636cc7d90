// The docker context for a VM: `skiff` (vm "default") or `skiff-<vm>`, pointing at ~/.skiff/<vm>/docker.sock.
// Written the way the docker CLI stores contexts, without running `docker` (it may not be installed):
//   $DOCKER_CONFIG/contexts/meta/<sha256 hex of the name>/meta.json
//   {"Name":"skiff","Metadata":{"Description":"Skiff"},"Endpoints":{"docker":{"Host":"unix:///…","SkipTLSVerify":false}}}
// ($DOCKER_CONFIG defaults to ~/.docker.) Only our own context is ever written; the user's current context
// (config.json "currentContext") is changed only when asked (useDockerContext, `skiff context --use`).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** `skiff` for the default VM, `skiff-<vm>` for the others. */
export function dockerContextName(vm: string): string {
  return vm === 'default' ? 'skiff' : `skiff-${vm}`;
}

/** The DOCKER_HOST / context endpoint for a socket path. */
export function dockerHostUrl(socket: string): string {
  // Windows named pipes (npipe://) are not served by the host agent yet; a unix socket path is used everywhere.
  return `unix://${socket}`;
}

/** The docker CLI's directory for a context's metadata: contexts/meta/<sha256(name)>. */
export function contextMetaFile(name: string, configDir = dockerConfigDir()): string {
  const id = createHash('sha256').update(name).digest('hex');
  return join(configDir, 'contexts', 'meta', id, 'meta.json');
}

interface ContextMeta {
  Name: string;
  Metadata?: Record<string, unknown>;
  Endpoints?: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

/** The docker endpoint host of a context, or undefined when there is no such context (or it is unreadable). */
export function readDockerContextHost(name: string, configDir = dockerConfigDir()): string | undefined {
  const file = contextMetaFile(name, configDir);
  if (!existsSync(file)) return undefined;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as ContextMeta;
    const host = m.Endpoints?.docker?.Host;
    return typeof host === 'string' ? host : undefined;
  } catch {
    return undefined;
  }
}

function writeAtomic(file: string, text: string, mode: number): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.skiff-${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface DockerContextResult {
  name: string;
  host: string;
  metaFile: string;
  change: 'created' | 'updated' | 'unchanged';
  /** true when the user's current context was switched to it (use: true). */
  current: boolean;
}

export interface DockerContextOptions {
  vm: string;
  /** The docker socket on the host (~/.skiff/<vm>/docker.sock). */
  socket: string;
  configDir?: string;
  /** Also make it the current context (config.json "currentContext"). */
  use?: boolean;
}

/**
 * Create the VM's docker context, or bring its docker endpoint up to date. Fields of an existing meta.json that are
 * not ours (other endpoints, metadata added by the user) are kept. Throws when the files cannot be written.
 */
export function ensureDockerContext(o: DockerContextOptions): DockerContextResult {
  const configDir = o.configDir ?? dockerConfigDir();
  const name = dockerContextName(o.vm);
  const host = dockerHostUrl(o.socket);
  const metaFile = contextMetaFile(name, configDir);
  let meta: ContextMeta | undefined;
  const existed = existsSync(metaFile);
  if (existed) {
    try {
      const parsed = JSON.parse(readFileSync(metaFile, 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) meta = parsed as ContextMeta;
    } catch {
      meta = undefined; // our own context's file, unreadable: written anew
    }
  }
  const before = meta ? JSON.stringify(meta) : '';
  const next: ContextMeta = meta ? { ...meta } : { Name: name, Metadata: { Description: 'Skiff' }, Endpoints: {} };
  next.Name = name;
  if (!next.Metadata || typeof next.Metadata !== 'object') next.Metadata = { Description: 'Skiff' };
  const endpoints = next.Endpoints && typeof next.Endpoints === 'object' ? { ...next.Endpoints } : {};
  endpoints.docker = { ...(endpoints.docker ?? {}), Host: host, SkipTLSVerify: false };
  next.Endpoints = endpoints;
  const text = JSON.stringify(next);
  let change: DockerContextResult['change'] = 'unchanged';
  if (text !== before) {
    writeAtomic(metaFile, text, 0o644);
    change = existed ? 'updated' : 'created';
  }
  let current = false;
  if (o.use) {
    useDockerContext(name, configDir);
    current = true;
  }
  return { name, host, metaFile, change, current };
}

/** The user's current context (config.json "currentContext"), or "" (docker's "default"). */
export function currentDockerContext(configDir = dockerConfigDir()): string {
  const file = join(configDir, 'config.json');
  if (!existsSync(file)) return '';
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as { currentContext?: unknown };
    return typeof c.currentContext === 'string' ? c.currentContext : '';
  } catch {
    return '';
  }
}

/** Make `name` the current context in config.json, keeping every other setting there. */
export function useDockerContext(name: string, configDir = dockerConfigDir()): void {
  const file = join(configDir, 'config.json');
  let config: Record<string, unknown> = {};
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    if (text.trim()) {
      try {
        config = JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        throw new Error(
          `${file} is not valid JSON (${(err as Error).message}): fix it, then run \`docker context use ${name}\``,
        );
      }
      if (!config || typeof config !== 'object' || Array.isArray(config))
        throw new Error(`${file} does not hold a JSON object: fix it, then run \`docker context use ${name}\``);
    }
  }
  if (config.currentContext === name) return;
  config.currentContext = name;
  writeAtomic(file, `${JSON.stringify(config, null, '\t')}\n`, 0o600);
}

/** Remove the VM's context (and make docker's "default" current again if it was current). */
export function removeDockerContext(vm: string, configDir = dockerConfigDir()): boolean {
  const name = dockerContextName(vm);
  const metaFile = contextMetaFile(name, configDir);
  const had = existsSync(metaFile);
  rmSync(dirname(metaFile), { recursive: true, force: true });
  if (currentDockerContext(configDir) === name) {
    const file = join(configDir, 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete config.currentContext;
    writeAtomic(file, `${JSON.stringify(config, null, '\t')}\n`, 0o600);
  }
  return had;
}

/**
 * For the host agent when the VM becomes RUNNING: keep the context current; never throws. A failure (an unwritable
 * ~/.docker, …) is pushed onto `warnings` as a sentence for VmStatus.warnings.
 */
export function keepDockerContext(vm: string, socket: string, warnings?: string[]): DockerContextResult | undefined {
  try {
    return ensureDockerContext({ vm, socket });
  } catch (err) {
    warnings?.push(
      `the docker context ${dockerContextName(vm)} could not be written (${(err as Error).message}): ` +
        `use DOCKER_HOST=${dockerHostUrl(socket)}`,
    );
    return undefined;
  }
}
