// docker import: a rootfs tar (plain or gzip) from the request body becomes a one-layer image. The body goes to
// the content store as the layer blob, its diff id is computed, a config is made (with the `changes` Dockerfile
// instructions applied) and the image is committed like any other (unpacked with every hostile-layer check).
import { badRequest, type ImageRuntimeConfig } from '../contracts.js';
import type { ImageConfigJson, Images } from './store.js';
import { MEDIA } from './store.js';
import { detectCompression, diffIdOf } from './unpack.js';
import { open } from 'node:fs/promises';

function splitWords(s: string): string[] {
  return s.split(/\s+/).filter(Boolean);
}

/** CMD/ENTRYPOINT/SHELL in JSON or shell form. */
function execForm(arg: string): string[] {
  const t = arg.trim();
  if (t.startsWith('[')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      /* shell form */
    }
  }
  return ['/bin/sh', '-c', t];
}

/** Apply the Dockerfile instructions `docker import --change` allows. */
const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ("30s", "1m30s", "500ms") in ns, as Dockerfile's HEALTHCHECK flags take them. */
export function parseDuration(s: string): number {
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== s) throw badRequest(`invalid duration: ${s}`);
  return Math.round(parts.reduce((ns, p) => ns + Number(p[1]) * DURATION_UNITS[p[2] as string]!, 0));
}

/** `HEALTHCHECK [--interval=… --timeout=… --start-period=… --start-interval=… --retries=N] CMD …` or `NONE`. */
export function parseHealthcheck(arg: string): Record<string, unknown> {
  let rest = arg.trim();
  const hc: Record<string, unknown> = {};
  const flags: Record<string, string> = {
    interval: 'Interval',
    timeout: 'Timeout',
    'start-period': 'StartPeriod',
    'start-interval': 'StartInterval',
  };
  for (let m = /^--([a-z-]+)=(\S+)\s*/.exec(rest); m; m = /^--([a-z-]+)=(\S+)\s*/.exec(rest)) {
    const [all, name, value] = m as unknown as [string, string, string];
    if (name === 'retries') {
      if (!/^\d+$/.test(value)) throw badRequest(`invalid HEALTHCHECK --retries: ${value}`);
      hc.Retries = Number(value);
    } else if (flags[name]) hc[flags[name]] = parseDuration(value);
    else throw badRequest(`unknown HEALTHCHECK flag: --${name}`);
    rest = rest.slice(all.length);
  }
  if (/^NONE$/i.test(rest)) return { Test: ['NONE'] };
  const cmd = /^CMD\s+([\s\S]+)$/i.exec(rest);
  if (!cmd) throw badRequest(`invalid HEALTHCHECK: expected CMD <command> or NONE, got ${JSON.stringify(arg)}`);
  const form = execForm(cmd[1] as string);
  hc.Test = form[0] === '/bin/sh' && form[1] === '-c' ? ['CMD-SHELL', form[2]] : ['CMD', ...form];
  return hc;
}

export function applyChanges(cfg: ImageRuntimeConfig & Record<string, unknown>, changes: string[]): void {
  for (const raw of changes) {
    for (const line of raw.split('\n')) {
      const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(line);
      if (!m) {
        if (line.trim()) throw badRequest(`invalid change: ${JSON.stringify(line)}`);
        continue;
      }
      const op = (m[1] as string).toUpperCase();
      const arg = (m[2] as string).trim();
      switch (op) {
        case 'CMD':
          cfg.Cmd = execForm(arg);
          break;
        case 'ENTRYPOINT':
          cfg.Entrypoint = execForm(arg);
          break;
        case 'WORKDIR':
          cfg.WorkingDir = arg;
          break;
        case 'USER':
          cfg.User = arg;
          break;
        case 'STOPSIGNAL':
          cfg.StopSignal = arg;
          break;
        case 'ENV': {
          const env = (cfg.Env ??= []);
          const pairs = arg.includes('=')
            ? splitWords(arg).map((w) => w.replace(/^"(.*)"$/, '$1'))
            : [`${splitWords(arg)[0] ?? ''}=${arg.slice((splitWords(arg)[0] ?? '').length).trim()}`];
          for (const p of pairs) {
            const k = p.split('=')[0] as string;
            const i = env.findIndex((e) => e.split('=')[0] === k);
            if (i >= 0) env[i] = p;
            else env.push(p);
          }
          break;
        }
        case 'LABEL': {
          const labels = (cfg.Labels ??= {});
          for (const w of splitWords(arg)) {
            const eq = w.indexOf('=');
            if (eq <= 0) throw badRequest(`invalid change: LABEL ${arg}`);
            labels[w.slice(0, eq).replace(/^"(.*)"$/, '$1')] = w.slice(eq + 1).replace(/^"(.*)"$/, '$1');
          }
          break;
        }
        case 'EXPOSE': {
          const ports = (cfg.ExposedPorts ??= {});
          for (const p of splitWords(arg)) ports[p.includes('/') ? p : `${p}/tcp`] = {};
          break;
        }
        case 'VOLUME': {
          const vols = (cfg.Volumes ??= {});
          const list = arg.startsWith('[') ? (JSON.parse(arg) as string[]) : splitWords(arg);
          for (const v of list) vols[v] = {};
          break;
        }
        case 'HEALTHCHECK':
          cfg.Healthcheck = parseHealthcheck(arg);
          break;
        case 'ONBUILD':
          cfg.OnBuild = [...((cfg.OnBuild as string[] | undefined) ?? []), arg];
          break;
        default:
          throw badRequest(`${op} is not a valid change command`);
      }
    }
  }
}

export async function importRootfs(
  images: Images,
  body: AsyncIterable<Buffer>,
  opts: { tag?: string; message: string; changes: string[]; platform: string },
): Promise<string> {
  const cfgPart: ImageRuntimeConfig & Record<string, unknown> = {};
  applyChanges(cfgPart, opts.changes); // bad changes refused before the upload is stored
  const blob = await images.content.put(body);
  const path = images.content.path(blob.digest);
  const head = Buffer.alloc(8);
  const fh = await open(path, 'r');
  try {
    await fh.read(head, 0, 8, 0);
  } finally {
    await fh.close();
  }
  let diffId: string;
  try {
    diffId = (await diffIdOf(path, images.limits)).diffId;
  } catch (err) {
    await images.gc(new Set([blob.digest]));
    throw err;
  }
  const [os, arch] = opts.platform ? opts.platform.split('/') : [];
  const created = new Date().toISOString();
  const config: ImageConfigJson = {
    architecture: arch || (process.arch === 'x64' ? 'amd64' : process.arch),
    os: os || 'linux',
    created,
    config: cfgPart,
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, comment: opts.message || 'Imported from -', created_by: '' }],
  };
  const cfg = await images.content.put(Buffer.from(JSON.stringify(config)));
  const mediaType = detectCompression(head) === 'gzip' ? MEDIA.dockerLayerGzip : MEDIA.dockerLayer;
  try {
    const rec = await images.commitImage({
      config: cfg.digest,
      layers: [{ digest: blob.digest, size: blob.size, mediaType }],
      tags: opts.tag ? [opts.tag] : [],
    });
    return rec.id;
  } catch (err) {
    await images.gc(new Set([blob.digest, cfg.digest]));
    throw err;
  }
}
