// dockerd's progress JSON for pulls and pushes: the messages, the `progress` bar string (jsonmessage's
// JSONProgress.String() at the daemon's default width, so with the bar), sizes as go-units' HumanSize, and a
// throttle so a fast download does not send a line per chunk.
import type { ProgressFn, ProgressMessage } from '../contracts.js';

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** go-units HumanSize: decimal units, 4 significant digits ("1.235MB", "512B", "2.1kB"). */
export function humanSize(n: number): string {
  let size = n;
  let i = 0;
  while (size >= 1000 && i < UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(4))}${UNITS[i]}`;
}

/** Go's time.Duration.String() for a whole number of seconds: "0s", "42s", "1m5s", "2h0m3s". */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${m}m${sec}s` : `${m}m${sec}s`;
}

/**
 * The `progress` string of a JSON message: `[=====>      ]  1.2MB/3.4MB 2s`. `start` is the unix time in seconds
 * the transfer began (for the time left); `now` in milliseconds.
 */
export function progressBar(current: number, total: number, start?: number, now = Date.now()): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  let pct = Math.trunc(Math.trunc((current / total) * 100) / 2);
  if (pct > 50) pct = 50;
  const bar = `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] `;
  let numbers = `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  if (current > total) numbers = humanSize(current).padStart(8);
  let left = '';
  if (current > 0 && start !== undefined && start > 0 && pct < 50) {
    const fromStartNs = Math.max(0, now * 1e6 - start * 1e9);
    const perEntry = Math.trunc(fromStartNs / current);
    left = ' ' + goDuration(((total - current) * perEntry) / 1e9);
  }
  return bar + numbers + left;
}

/** The 12-hex id dockerd shows for a layer: the digest's hex, truncated. */
export function shortId(digest: string): string {
  const i = digest.indexOf(':');
  return digest.slice(i + 1, i + 13);
}

/** `{status, progressDetail: {}, id}` as dockerd sends per-layer state changes. */
export function layerStatus(status: string, id: string): ProgressMessage {
  return { status, progressDetail: {}, id };
}

/** A line that makes the CLI fail: errorDetail (what the CLI reads) and error (what older clients read). */
export function progressError(err: unknown): ProgressMessage {
  const message = err instanceof Error ? err.message : String(err);
  return { errorDetail: { message }, error: message };
}

/**
 * Reports a transfer (`Downloading`, `Pushing`, `Extracting`) at most every `intervalMs`, and always its first and
 * last update.
 */
export class TransferProgress {
  private readonly start = Math.floor(Date.now() / 1000);
  private last = 0;
  current = 0;

  constructor(
    private readonly progress: ProgressFn,
    private readonly status: string,
    private readonly id: string,
    private readonly total: number,
    private readonly intervalMs = 100,
  ) {}

  add(n: number): void {
    this.current += n;
    const now = Date.now();
    if (now - this.last >= this.intervalMs || this.current >= this.total) {
      this.last = now;
      this.emit(now);
    }
  }

  emit(now = Date.now()): void {
    this.progress({
      status: this.status,
      progressDetail: { current: this.current, total: this.total },
      progress: progressBar(this.current, this.total, this.start, now),
      id: this.id,
    });
  }
}
