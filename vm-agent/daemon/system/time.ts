// Docker's timestamps in queries (`since`, `until` of /events and logs): unix seconds with an optional fraction
// ("1700000000.5", what the CLI sends after turning "10m" or a date into one) or RFC 3339. Kept in nanoseconds as
// bigints so comparisons with event times are exact.
import { badRequest } from '../contracts.js';

/** The time in nanoseconds since the epoch, or undefined for an absent or empty value; 400 when unparsable. */
export function parseTimestamp(value: string | null): bigint | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (m) {
    const frac = (m[2] ?? '').padEnd(9, '0');
    const secs = BigInt(m[1]!);
    return secs * 1_000_000_000n + (secs < 0n ? -1n : 1n) * BigInt(frac || '0');
  }
  // RFC 3339 (Date keeps milliseconds; add back the sub-millisecond digits when given).
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw badRequest(`invalid timestamp ${JSON.stringify(v)}: want unix seconds or RFC 3339`);
  const sub = /\.\d{3}(\d{1,6})/.exec(v)?.[1] ?? '';
  return BigInt(ms) * 1_000_000n + BigInt(sub.padEnd(6, '0') || '0');
}

let last = 0n;
/** Now in nanoseconds, strictly increasing across calls (so events keep their order). */
export function nowNano(): bigint {
  const t = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  last = t > last ? t : last + 1n;
  return last;
}
