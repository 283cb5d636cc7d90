// The Router of contracts.ts: path templates with `{param}`s. A parameter matches one path segment; when nothing
// matches that way, parameters may span slashes (image names like `docker.io/library/busybox:latest`). Among
// matches the template with the most literal segments wins, then the first registered.
import type { Handler, Router } from '../contracts.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

interface Route {
  method: Method;
  template: string;
  literals: number;
  strict: RegExp; // params are one segment
  loose: RegExp; // params may span segments
  names: string[];
  handler: Handler;
}

export interface RouteMatch {
  handler: Handler;
  params: Record<string, string>;
  template: string;
}

function compile(template: string, param: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const escaped = template
    .split(/(\{[A-Za-z_][A-Za-z0-9_]*\})/)
    .map((part) => {
      const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(part);
      if (m) {
        names.push(m[1]!);
        return param;
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return { re: new RegExp(`^${escaped}$`), names };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export class HttpRouter implements Router {
  private readonly routes: Route[] = [];

  add(method: Method, template: string, handler: Handler): void {
    if (!template.startsWith('/')) throw new Error(`route ${template}: must start with /`);
    const strict = compile(template, '([^/]+)');
    const loose = compile(template, '(.+)');
    const literals = template.split('/').filter((s) => s !== '' && !s.includes('{')).length;
    this.routes.push({ method, template, literals, strict: strict.re, loose: loose.re, names: strict.names, handler });
  }

  /** The route for a method and an unversioned, undecoded path; HEAD falls back to GET. */
  match(method: string, path: string): RouteMatch | undefined {
    return (
      this.find(method, path) ?? (method === 'HEAD' ? this.find('GET', path) : undefined) // HEAD answers as GET without a body
    );
  }

  /** Whether any route serves this path with another method (for 405-like answers). */
  private find(method: string, path: string): RouteMatch | undefined {
    for (const kind of ['strict', 'loose'] as const) {
      let best: { route: Route; m: RegExpExecArray } | undefined;
      for (const route of this.routes) {
        if (route.method !== method) continue;
        const m = route[kind].exec(path);
        if (m && (!best || route.literals > best.route.literals)) best = { route, m };
      }
      if (best) {
        const params: Record<string, string> = {};
        best.route.names.forEach((n, i) => (params[n] = decode(best.m[i + 1]!)));
        return { handler: best.route.handler, params, template: best.route.template };
      }
    }
    return undefined;
  }
}
