// The supervisor's view of one skiff-shim (docs/shim-protocol.md). shim-client.ts implements it over the shim's
// control and attach sockets; the supervisor depends only on this interface.

export interface ShimStartOptions {
  id: string;
  bundle: string;
  /** /run/skiff/shims/<id>/ normally */
  dir: string;
  runtime: string;
  runtimeRoot?: string;
  logPath?: string;
  logMaxSize?: number;
  logMaxFile?: number;
  tty?: boolean;
  stdin?: boolean;
}

export interface ExitStatus {
  pid: number;
  exitCode: number;
  signal: number;
  exitedAt: string;
  oomKilled: boolean;
}

export interface ShimState {
  id: string;
  status: 'created' | 'running' | 'stopped';
  pid: number;
  exitCode?: number;
  exitedAt?: string;
  oomKilled?: boolean;
  execs: Array<{ exec: string; pid: number; status: 'running' | 'stopped'; exitCode?: number }>;
}

export type ShimEvent =
  | { event: 'oom' }
  | ({ event: 'exit'; exec?: string } & ExitStatus)
  | { event: 'exec-started'; exec: string; pid: number };

/** One attached stream: output chunks by stream, stdin writes, and the exit when it comes. */
export interface AttachStream {
  onOutput(cb: (stream: 'stdout' | 'stderr', data: Buffer) => void): void;
  onExit(cb: (exit: ExitStatus) => void): void;
  onClose(cb: () => void): void;
  writeStdin(data: Buffer): void;
  closeStdin(): void;
  detach(): void;
}

export interface Shim {
  readonly id: string;
  readonly dir: string;
  version(): Promise<number>;
  state(): Promise<ShimState>;
  start(): Promise<{ pid: number }>;
  kill(signal: number, opts?: { all?: boolean; exec?: string }): Promise<void>;
  resize(width: number, height: number, exec?: string): Promise<void>;
  closeStdin(exec?: string): Promise<void>;
  exec(execId: string, process: object, opts: { tty: boolean; stdin: boolean }): Promise<{ pid: number }>;
  wait(exec?: string): Promise<ExitStatus>;
  subscribe(cb: (e: ShimEvent) => void): () => void;
  delete(exec?: string): Promise<{ exitCode: number; exitedAt: string }>;
  shutdown(): Promise<void>;
  attach(exec?: string): Promise<AttachStream>;
  close(): void;
}

export interface ShimLauncher {
  /** Start a shim; resolves once the container is created (the shim's foreground process exited 0). */
  start(opts: ShimStartOptions): Promise<Shim>;
  /** Connect to a shim already running in dir (after a supervisor restart). Rejects if nobody answers. */
  connect(id: string, dir: string): Promise<Shim>;
}
