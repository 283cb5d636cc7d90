// Filters for Events.Subscribe and Containers.List (proto/supervisor.proto, SubscribeRequest.filters).
// A filter list selects an object when any filter matches (all objects when the list is empty); a filter is
// comma-separated conditions that must all hold: `field==value`, `field!=value`, `field~=regexp`, or a bare
// `field` (present and not empty). Values may be double-quoted (then commas may appear inside them).
import { invalidArgument } from '../common/errors.js';

export type Op = '==' | '!=' | '~=' | 'present';

export interface Condition {
  field: string;
  op: Op;
  value: string;
  regexp?: RegExp;
}

/** Looks up a field of the object being filtered ("topic", "labels.app", ...); undefined when it has none. */
export type Fields = (field: string) => string | undefined;

const fieldRe = /^[A-Za-z_][A-Za-z0-9_]*(\.[^\s=!~,"]+)*$/;

function splitConditions(filter: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i] as string;
    if (ch === '\\' && quoted && i + 1 < filter.length) {
      cur += ch + (filter[i + 1] as string);
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      cur += ch;
    } else if (ch === ',' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw invalidArgument(`filter ${JSON.stringify(filter)}: unterminated quote`);
  parts.push(cur);
  return parts;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

/** Parse one filter; throws INVALID_ARGUMENT with the offending text. */
export function parseFilter(filter: string): Condition[] {
  const conds: Condition[] = [];
  for (const raw of splitConditions(filter)) {
    const part = raw.trim();
    if (!part) throw invalidArgument(`filter ${JSON.stringify(filter)}: empty condition`);
    const m = /^(.*?)(==|!=|~=)(.*)$/s.exec(part);
    const field = (m ? (m[1] as string) : part).trim();
    if (!fieldRe.test(field))
      throw invalidArgument(
        `filter ${JSON.stringify(filter)}: bad field ${JSON.stringify(field)} (expected e.g. topic==/tasks/exit)`,
      );
    if (!m) {
      conds.push({ field, op: 'present', value: '' });
      continue;
    }
    const op = m[2] as Op;
    const value = unquote((m[3] as string).trim());
    const cond: Condition = { field, op, value };
    if (op === '~=') {
      try {
        cond.regexp = new RegExp(value);
      } catch (err) {
        throw invalidArgument(`filter ${JSON.stringify(filter)}: bad regexp: ${(err as Error).message}`);
      }
    }
    conds.push(cond);
  }
  return conds;
}

export function parseFilters(filters: readonly string[]): Condition[][] {
  return filters.map(parseFilter);
}

function holds(c: Condition, fields: Fields): boolean {
  const v = fields(c.field);
  switch (c.op) {
    case 'present':
      return v !== undefined && v !== '';
    case '==':
      return v === c.value;
    case '!=':
      return v !== c.value;
    case '~=':
      return v !== undefined && (c.regexp as RegExp).test(v);
  }
}

/** True when the list is empty or any of its filters has all its conditions holding. */
export function matches(filters: readonly Condition[][], fields: Fields): boolean {
  if (filters.length === 0) return true;
  return filters.some((conds) => conds.every((c) => holds(c, fields)));
}
