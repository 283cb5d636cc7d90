// skiff.agent.v1 Images: list (with how many containers use each image), inspect, history, pull with progress,
// remove, tag and prune, each a call or two on skiffd's Docker API.
import type { ServerWritableStream } from '@grpc/grpc-js';
import { ApiError, invalidArgument } from '../../common/errors.js';
import { EngineError, type Engine, type ServiceFactory } from '../contracts.js';
import { drained, serverStream, unary } from '../grpc.js';
import {
  containersPerImage,
  dockerFilters,
  historyEntry,
  imagePruneResult,
  imageSummary,
  progressError,
  pullErrorCode,
  pullProgress,
  pulledRef,
  pullQuery,
  registryAuthHeader,
  removeImageResult,
  splitRepoTag,
  type EngineContainer,
  type EngineHistoryItem,
  type EngineImage,
  type EngineProgressLine,
  type PullProgressMsg,
  type RegistryAuthMsg,
  type StringList,
} from './resource-views.js';

interface ImageRef {
  ref: string;
}

/** The reference in the path of /images/{name}/…: required, and escaped (a reference has "/" and "@"). */
function imagePath(ref: string, suffix = ''): string {
  if (!ref) throw invalidArgument('an image reference is required ("busybox:latest", an id or an id prefix)');
  return `/images/${encodeURIComponent(ref)}${suffix}`;
}

/** An engine error during a pull, with the code its message calls for (401 → UNAUTHENTICATED …). */
function pullFailure(message: string, httpStatus = 0): ApiError {
  return new ApiError(pullErrorCode(message, httpStatus), message);
}

async function pull(
  engine: Engine,
  req: { ref: string; auth?: RegistryAuthMsg | null; platform?: string },
  write: (msg: PullProgressMsg) => boolean,
  call: ServerWritableStream<unknown, unknown>,
  signal: AbortSignal,
): Promise<void> {
  if (!req.ref) throw invalidArgument('an image reference to pull is required ("busybox", "registry:5000/app:1")');
  const { fromImage, tag } = pullQuery(req.ref);
  const auth = registryAuthHeader(req.auth);
  const lines = engine.docker.jsonLines<EngineProgressLine>('POST', '/images/create', {
    query: { fromImage, tag, platform: req.platform || undefined },
    headers: auth ? { 'X-Registry-Auth': auth } : undefined,
    // the client cancelling aborts the request, and skiffd cancels the pull when its client goes away
    signal,
  });
  try {
    for await (const line of lines) {
      const failed = progressError(line);
      if (failed !== undefined) throw pullFailure(failed);
      const msg = pullProgress(line);
      if (msg && !write(msg)) {
        if (signal.aborted) return;
        await drained(call);
      }
    }
  } catch (err) {
    // the engine refused before streaming (a 404 for an unknown repository, a 401 …): the code from its message
    if (err instanceof EngineError && err.status !== 0) throw pullFailure(err.message, err.status);
    throw err;
  }
  if (signal.aborted) return;
  const image = await engine.docker.json<{ Id: string }>('GET', imagePath(pulledRef(req.ref), '/json'));
  write({ layer: '', status: `Pulled ${req.ref}`, current: 0, total: 0, image_id: image.Id });
}

export const imagesService: ServiceFactory = (engine) => {
  const docker = engine.docker;
  return {
    List: unary(async (req: { all: boolean; filters: Record<string, StringList> }) => {
      const [images, containers] = await Promise.all([
        docker.json<EngineImage[]>('GET', '/images/json', {
          query: { all: req.all || undefined, filters: dockerFilters(req.filters) },
        }),
        docker.json<EngineContainer[]>('GET', '/containers/json', { query: { all: true } }),
      ]);
      const counts = containersPerImage(containers);
      return { images: images.map((img) => imageSummary(img, counts)) };
    }),

    Inspect: unary(async (req: ImageRef) => {
      const doc = await docker.json('GET', imagePath(req.ref, '/json'));
      return { json: JSON.stringify(doc) };
    }),

    History: unary(async (req: ImageRef) => {
      const items = await docker.json<EngineHistoryItem[]>('GET', imagePath(req.ref, '/history'));
      return { entries: items.map(historyEntry) };
    }),

    Pull: serverStream(
      (
        req: { ref: string; auth?: RegistryAuthMsg | null; platform: string },
        write: (msg: PullProgressMsg) => boolean,
        call,
        signal,
      ) => pull(engine, req, write, call as ServerWritableStream<unknown, unknown>, signal),
    ),

    Remove: unary(async (req: { ref: string; force: boolean; no_prune: boolean }) => {
      const items = await docker.json<{ Untagged?: string; Deleted?: string }[]>('DELETE', imagePath(req.ref), {
        query: { force: req.force || undefined, noprune: req.no_prune || undefined },
      });
      return removeImageResult(items);
    }),

    Tag: unary(async (req: { source: string; target: string }) => {
      if (!req.target) throw invalidArgument('a target reference is required ("repo" or "repo:tag")');
      const { repo, tag } = splitRepoTag(req.target);
      await docker.json('POST', imagePath(req.source, '/tag'), { query: { repo, tag: tag || undefined } });
      return {};
    }),

    Prune: unary(async (req: { all: boolean }) => {
      // without a filter the engine prunes only dangling images; dangling=false means every unused one
      const res = await docker.json<Parameters<typeof imagePruneResult>[0]>('POST', '/images/prune', {
        query: { filters: req.all ? { dangling: ['false'] } : undefined },
      });
      return imagePruneResult(res);
    }),
  };
};
