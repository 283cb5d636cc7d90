// A small leveled logger to stderr for the VM-side services. Quiet by default (warnings and errors); --debug or
// SKIFF_LOG=debug|info shows more. One line per message: `<time> <level> <component>: <message>`.
export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let threshold: Level = parseLevel(process.env.SKIFF_LOG) ?? 'warn';

function parseLevel(s: string | undefined): Level | undefined {
  return s === 'debug' || s === 'info' || s === 'warn' || s === 'error' ? s : undefined;
}

export function setLogLevel(level: Level): void {
  threshold = level;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function logger(component: string): Logger {
  const emit = (level: Level, msg: string): void => {
    if (order[level] < order[threshold]) return;
    process.stderr.write(`${new Date().toISOString()} ${level} ${component}: ${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
