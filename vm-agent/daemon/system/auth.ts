// POST /auth (`docker login`): the credentials are checked against the registry by the registry module.
import { badRequest, DockerError, type Daemon, type RequestContext } from '../contracts.js';

const DEFAULT_SERVER = 'https://index.docker.io/v1/';

export async function postAuth(ctx: RequestContext, daemon: Daemon): Promise<void> {
  const body = await ctx.json<{ username?: string; password?: string; serveraddress?: string }>();
  if (!daemon.registry) throw new DockerError(501, 'login is not implemented yet: skiffd has no registry client');
  if (!body.username) throw badRequest('login: a username is required');
  const answer = await daemon.registry.login(body.serveraddress || DEFAULT_SERVER, body.username, body.password ?? '');
  ctx.send(answer);
}
