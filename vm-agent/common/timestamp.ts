// google.protobuf.Timestamp <-> RFC 3339 strings, keeping nanoseconds (the shim records exits with them).
export interface Timestamp {
  seconds: string | number;
  nanos: number;
}

const rfc3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

export function toTimestamp(s: string | undefined): Timestamp | null {
  if (!s) return null;
  const m = rfc3339.exec(s);
  if (!m) {
    const ms = Date.parse(s);
    if (Number.isNaN(ms)) return null;
    return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
  }
  const secs = Math.floor(Date.parse(`${m[1]}${m[3]}`) / 1000);
  const nanos = Number((m[2] ?? '').padEnd(9, '0') || '0');
  return { seconds: String(secs), nanos };
}

export function nowTimestamp(): Timestamp {
  return toTimestamp(nowRfc3339()) as Timestamp;
}

/** The current time as RFC 3339 with nanoseconds (the nanoseconds from hrtime, aligned to the millisecond clock). */
export function nowRfc3339(): string {
  const ms = Date.now();
  const sub = Number(process.hrtime.bigint() % 1_000_000n);
  const iso = new Date(ms).toISOString(); // ...sss Z
  return `${iso.slice(0, 19)}.${String(ms % 1000).padStart(3, '0')}${String(sub).padStart(6, '0')}Z`;
}

export function fromTimestamp(t: Timestamp | null | undefined): string | undefined {
  if (!t) return undefined;
  const secs = Number(t.seconds);
  const base = new Date(secs * 1000).toISOString().slice(0, 19);
  return `${base}.${String(t.nanos).padStart(9, '0')}Z`;
}
