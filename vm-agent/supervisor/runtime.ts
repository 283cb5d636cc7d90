// The supervisor's own calls of the OCI runtime (skiff-runtime, runc's command line): the shim runs create, start,
// kill, exec and delete; the supervisor runs the rest (pause, resume, ps, update, events --stats, state) and a
// forced delete when a shim is gone.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export interface RuntimeResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class RuntimeError extends Error {
  constructor(
    readonly args: string[],
    readonly result: RuntimeResult,
  ) {
    const why = result.stderr.trim().split('\n').filter(Boolean).at(-1) ?? `exit status ${result.code}`;
    super(why.replace(/^skiff-runtime: /, ''));
    this.name = 'RuntimeError';
  }
}

export class Runtime {
  constructor(
    readonly binary: string,
    readonly root: string,
  ) {}

  run(args: string[], input?: string): Promise<RuntimeResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.binary,
        ['--root', this.root, ...args],
        { encoding: 'utf8', maxBuffer: 16 << 20, timeout: 60_000 },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') {
            reject(new Error(`cannot run ${this.binary}: ${err.message}`));
            return;
          }
          resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
      else child.stdin?.end();
    });
  }

  async check(args: string[], input?: string): Promise<string> {
    const r = await this.run(args, input);
    if (r.code !== 0) throw new RuntimeError(args, r);
    return r.stdout;
  }

  pause(id: string): Promise<string> {
    return this.check(['pause', id]);
  }

  resume(id: string): Promise<string> {
    return this.check(['resume', id]);
  }

  /** `state`: the runtime's status ("created", "running", "paused", "stopped"), or undefined when it has none. */
  async status(id: string): Promise<string | undefined> {
    const r = await this.run(['state', id]);
    if (r.code !== 0) return undefined;
    try {
      return (JSON.parse(r.stdout) as { status?: string }).status;
    } catch {
      return undefined;
    }
  }

  /** Every pid in the container's cgroup. */
  async pids(id: string): Promise<number[]> {
    const out = await this.check(['ps', '--format', 'json', id]);
    const v: unknown = JSON.parse(out || '[]');
    return Array.isArray(v) ? v.filter((p): p is number => typeof p === 'number') : [];
  }

  /** runc's stats object (`events --stats`: {"type":"stats","id","data":{...}}). */
  async stats(id: string): Promise<Record<string, unknown>> {
    const out = await this.check(['events', '--stats', id]);
    const v = JSON.parse(out) as { data?: Record<string, unknown> };
    return v.data ?? {};
  }

  update(id: string, resourcesJson: string): Promise<string> {
    return this.check(['update', '--resources', '-', id], resourcesJson);
  }

  /** `delete --force`: kills what is left and removes the runtime's state. Ignores "does not exist". */
  async forceDelete(id: string): Promise<void> {
    const r = await this.run(['delete', '--force', id]);
    if (r.code !== 0 && existsSync(`${this.root}/${id}`)) throw new RuntimeError(['delete', '--force', id], r);
  }

  hasState(id: string): boolean {
    return existsSync(`${this.root}/${id}`);
  }
}

/** 2 on a unified (cgroup v2 only) host, 1 on a v1 or hybrid one. */
export function cgroupVersion(): 1 | 2 {
  try {
    const mounts = readFileSync('/proc/self/mounts', 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[1] === '/sys/fs/cgroup' && l.split(' ')[2] === 'cgroup2')
      ? 2
      : 1;
  } catch {
    return 1;
  }
}
