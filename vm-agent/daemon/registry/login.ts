// Login (`docker login`, POST /auth): GET /v2/ with the credentials, through a basic challenge or the token
// dance. Success is "Login Succeeded" (with the token server's refresh token as IdentityToken when it gives
// one); wrong credentials give a 401 with the registry's message, as dockerd words it.
import { DockerError } from '../contracts.js';
import { RegistryClient, RegistryHttpError, type ClientOptions } from './client.js';
import { DOCKER_HUB } from './reference.js';

/** "https://index.docker.io/v1/", "127.0.0.1:5001", "http://host:5000/" → the registry's host[:port]. */
export function loginHost(server: string): string {
  let s = server.trim();
  s = s.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  if (s === '' || s === 'index.docker.io' || s === 'docker.io' || s === 'registry-1.docker.io') return DOCKER_HUB;
  return s.toLowerCase();
}

export async function login(
  server: string,
  username: string,
  password: string,
  opts: ClientOptions,
): Promise<{ Status: string; IdentityToken?: string }> {
  const client = new RegistryClient(loginHost(server), '', { username, password }, [], opts);
  let res: Response;
  try {
    res = await client.ping();
  } catch (err) {
    if (err instanceof RegistryHttpError) throw new DockerError(err.status === 401 ? 401 : 500, err.message);
    throw new DockerError(500, (err as Error).message);
  }
  await res.body?.cancel().catch(() => undefined);
  if (res.status === 401 || res.status === 403) {
    throw new DockerError(401, `login attempt to ${client.base} failed with status: ${res.status} ${res.statusText}`);
  }
  if (!res.ok) {
    throw new DockerError(500, `login attempt to ${client.base} failed with status: ${res.status} ${res.statusText}`);
  }
  const out: { Status: string; IdentityToken?: string } = { Status: 'Login Succeeded' };
  if (client.refreshToken) out.IdentityToken = client.refreshToken;
  return out;
}
