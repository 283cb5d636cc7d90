// Docker's query parsing: booleans and `filters`.
import { badRequest, type Filters } from '../contracts.js';

/** dockerd's BoolValue: "", 0, no, false, none (any case, trimmed) are false, anything else true; absent is dflt. */
export function parseBool(value: string | null, dflt = false): boolean {
  if (value === null) return dflt;
  const s = value.trim().toLowerCase();
  return !(s === '' || s === '0' || s === 'no' || s === 'false' || s === 'none');
}

/** `filters` as `{"k":{"v":true}}` or the legacy `{"k":["v"]}`; empty or absent is no filter. 400 otherwise. */
export function parseFilters(raw: string | null): Filters {
  const out: Filters = new Map();
  if (raw === null || raw.trim() === '') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw badRequest(`invalid filter: ${(err as Error).message}`);
  }
  if (parsed === null) return out;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest(`invalid filter: ${raw}`);
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(v)) {
      out.set(k, v.map(String));
    } else if (v !== null && typeof v === 'object') {
      out.set(k, Object.keys(v));
    } else if (v === null) {
      out.set(k, []);
    } else {
      throw badRequest(`invalid filter: ${raw}`);
    }
  }
  return out;
}
