// skiffd's registry module (docs/daemon.md): a distribution-spec v2 client for pull, push and login, and the
// POST /images/{name}/push route. /images/create?fromImage= is the images module's route; it calls pull().
import type {
  Daemon,
  ProgressFn,
  RegisterRoutes,
  RegistryAuth,
  RegistryService,
  RequestContext,
} from '../contracts.js';
import { DockerError, notFoundError } from '../contracts.js';
import { decodeRegistryAuth } from './auth.js';
import type { ClientOptions } from './client.js';
import { login } from './login.js';
import { hostPlatform } from './platform.js';
import { progressError } from './progress.js';
import { pull } from './pull.js';
import { push } from './push.js';
import { familiarString, parseReference } from './reference.js';

export { decodeRegistryAuth, encodeRegistryAuth, parseWwwAuthenticate } from './auth.js';
export { progressError } from './progress.js';

export interface RegistryOptions {
  /** Registries (host[:port]) spoken to over HTTP besides loopback; also SKIFF_INSECURE_REGISTRIES (comma list). */
  insecureRegistries?: string[];
}

function clientOptions(daemon: Daemon, opts: RegistryOptions): ClientOptions {
  const fromConfig = (daemon.config as { insecureRegistries?: string[] }).insecureRegistries ?? [];
  const fromEnv = (process.env.SKIFF_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    insecureRegistries: [...fromConfig, ...fromEnv, ...(opts.insecureRegistries ?? [])],
    userAgent: `skiffd/${daemon.config.version.engine}`,
  };
}

function imageStore(daemon: Daemon) {
  const store = daemon.images?.store;
  if (!store) throw new DockerError(500, 'the image store is not available');
  return store;
}

function emit(daemon: Daemon, action: string, ref: string): void {
  try {
    daemon.events.emit({ Type: 'image', Action: action, Actor: { ID: ref, Attributes: { name: ref } } });
  } catch {
    /* events are best effort */
  }
}

export function createRegistry(daemon: Daemon, opts: RegistryOptions = {}): RegistryService {
  return {
    async pull(ref: string, auth: RegistryAuth | undefined, progress: ProgressFn, signal?: AbortSignal) {
      const image = await pull(
        {
          store: imageStore(daemon),
          resolve: (r) => daemon.images.resolve(r),
          clientOptions: clientOptions(daemon, opts),
          platform: hostPlatform(),
        },
        ref,
        auth,
        progress,
        signal,
      );
      emit(daemon, 'pull', familiarString(parseReference(ref)));
      return image;
    },
    async push(ref: string, auth: RegistryAuth | undefined, progress: ProgressFn, signal?: AbortSignal) {
      await push(
        { store: imageStore(daemon), clientOptions: clientOptions(daemon, opts) },
        ref,
        auth,
        progress,
        signal,
      );
      emit(daemon, 'push', familiarString(parseReference(ref)));
    },
    login(server: string, username: string, password: string) {
      return login(server, username, password, clientOptions(daemon, opts));
    },
  };
}

/** The name main.ts calls. */
export const createRegistryService = createRegistry;

/** Tags of `name` to push when no tag is given (`docker push --all-tags`). */
async function tagsOf(daemon: Daemon, name: string): Promise<string[]> {
  const want = parseReference(name);
  // every image's tags when the image service can list them (images/'s store can), else the one `name` names
  const svc = daemon.images as unknown as {
    allStored?: () => Array<{ id: string }>;
    tagsOf?: (id: string) => string[];
  };
  let all: string[];
  if (typeof svc.allStored === 'function' && typeof svc.tagsOf === 'function')
    all = svc.allStored().flatMap((s) => svc.tagsOf!(s.id));
  else all = (await daemon.images.resolve(name))?.repoTags ?? [];
  const out: string[] = [];
  for (const t of [...new Set(all)].sort()) {
    try {
      const r = parseReference(t);
      if (r.domain === want.domain && r.path === want.path && r.tag) out.push(r.tag);
    } catch {
      /* skip */
    }
  }
  return out;
}

async function postPush(ctx: RequestContext, daemon: Daemon): Promise<void> {
  const registry = daemon.registry;
  if (!registry) throw new DockerError(501, 'pushing images is not available');
  let name = ctx.params.name as string;
  const ref = parseReference(name);
  if (ref.tag !== undefined) name = name.slice(0, name.lastIndexOf(':')); // a tag in the name is ignored
  const tag = ctx.query.get('tag') || ref.tag || '';
  const auth = decodeRegistryAuth(ctx.req.headers['x-registry-auth']);
  let tags = tag ? [tag] : await tagsOf(daemon, name);
  if (tags.length === 0) {
    if (!(await daemon.images.resolve(name)))
      throw notFoundError(`An image does not exist locally with the tag: ${name}`);
    tags = ['latest'];
  }
  const aborter = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) aborter.abort();
  });
  let stream: ReturnType<RequestContext['stream']> | undefined;
  const progress: ProgressFn = (m) => {
    stream ??= ctx.stream();
    stream.write(m);
  };
  try {
    for (const t of tags) {
      const r = /^[a-z0-9]+:[a-f0-9]+$/.test(t) ? `${name}@${t}` : `${name}:${t}`;
      await registry.push(r, auth, progress, aborter.signal);
    }
  } catch (err) {
    if (!stream) throw err;
    stream.write(progressError(err));
  }
  (stream ?? ctx.stream()).end();
}

export const register: RegisterRoutes = (router, daemon) => {
  router.add('POST', '/images/{name}/push', (ctx) => postPush(ctx, daemon));
};
