// Checks of request input that need no state: ids, the OCI spec, exec process specs, mounts, log options.
// Each failure is an INVALID_ARGUMENT whose message says what to fix.
import { invalidArgument } from '../common/errors.js';
import type { MountSpec } from './store.js';

const containerIdRe = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const execIdRe = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkContainerId(id: unknown): string {
  if (typeof id !== 'string' || id === '') throw invalidArgument('container id is required');
  if (!containerIdRe.test(id))
    throw invalidArgument(
      `container id ${JSON.stringify(id)} is invalid: use 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  return id;
}

export function checkExecId(id: unknown): string {
  if (typeof id !== 'string' || !execIdRe.test(id))
    throw invalidArgument(`exec id ${JSON.stringify(id)} is invalid: use 1-64 characters of [A-Za-z0-9_.-]`);
  return id;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJsonObject(text: string, what: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw invalidArgument(`${what} must be a JSON object`);
  return v;
}

/** Checks an OCI process object enough that the runtime's own errors are the only ones left to meet. */
export function checkProcess(p: unknown, what: string): Json {
  if (!isObject(p)) throw invalidArgument(`${what} is missing: give an OCI process object with args and cwd`);
  const args = p.args;
  if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string'))
    throw invalidArgument(`${what}.args must be a non-empty array of strings (the program and its arguments)`);
  if (p.cwd !== undefined && (typeof p.cwd !== 'string' || !p.cwd.startsWith('/')))
    throw invalidArgument(`${what}.cwd must be an absolute path`);
  if (p.env !== undefined && (!Array.isArray(p.env) || !p.env.every((e) => typeof e === 'string')))
    throw invalidArgument(`${what}.env must be an array of "KEY=value" strings`);
  if (p.terminal !== undefined && typeof p.terminal !== 'boolean')
    throw invalidArgument(`${what}.terminal must be a boolean`);
  return p;
}

/** Parse and check a container's OCI spec (config.json). */
export function parseSpec(text: string): Json {
  if (text.trim() === '') throw invalidArgument('container spec is empty: give the OCI runtime spec as JSON');
  const spec = parseJsonObject(text, 'container spec');
  if (typeof spec.ociVersion !== 'string') throw invalidArgument('container spec: ociVersion (a string) is missing');
  checkProcess(spec.process, 'container spec: process');
  if (spec.root !== undefined && (!isObject(spec.root) || typeof spec.root.path !== 'string'))
    throw invalidArgument('container spec: root.path must be a string');
  if (spec.linux !== undefined && !isObject(spec.linux))
    throw invalidArgument('container spec: linux must be an object');
  return spec;
}

/** Parse an exec's process spec. */
export function parseProcessSpec(text: string): Json {
  if (text.trim() === '') throw invalidArgument('exec spec is empty: give an OCI process object as JSON');
  return checkProcess(parseJsonObject(text, 'exec spec'), 'exec spec');
}

/** Parse Tasks.Update's resources (an OCI linux.resources object). */
export function parseResources(text: string): Json {
  if (text.trim() === '') throw invalidArgument('resources are empty: give an OCI linux.resources object as JSON');
  return parseJsonObject(text, 'resources');
}

export function checkMounts(mounts: MountSpec[]): void {
  mounts.forEach((m, i) => {
    if (!m.type) throw invalidArgument(`rootfs[${i}]: type is required (e.g. overlay, bind)`);
    if (!m.source) throw invalidArgument(`rootfs[${i}]: source is required`);
    if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) {
      if (!m.source.startsWith('/')) throw invalidArgument(`rootfs[${i}]: a bind mount's source must be absolute`);
    }
  });
}

export function checkLog(path: string, maxSize: number, maxFile: number): void {
  if (path && !path.startsWith('/')) throw invalidArgument(`log.path ${JSON.stringify(path)} must be absolute`);
  if (maxSize < 0) throw invalidArgument('log.max_size must not be negative');
  if (maxFile < 0) throw invalidArgument('log.max_file must not be negative');
}
