// Networks and volumes come with their own module (issue 5), builds later. Until then their endpoints say so plainly — a
// listing of made-up networks would be a fake success. Looking one up answers 404 (none exists), so that
// `docker inspect <name>` still goes on to "No such object".
import { DockerError, notFoundError, type RegisterRoutes } from '../contracts.js';

const notYet = (what: string) => (): never => {
  throw new DockerError(501, `${what} are not supported by Skiff yet`);
};

export const registerUnsupported: RegisterRoutes = (router) => {
  for (const [kind, single] of [
    ['networks', 'network'],
    ['volumes', 'volume'],
  ] as const) {
    router.add('GET', `/${kind}`, notYet(kind));
    router.add('POST', `/${kind}/create`, notYet(kind));
    router.add('POST', `/${kind}/prune`, notYet(kind));
    router.add('GET', `/${kind}/{id}`, (ctx) => {
      throw notFoundError(`${single} ${ctx.params.id} not found`);
    });
    router.add('DELETE', `/${kind}/{id}`, (ctx) => {
      throw notFoundError(`${single} ${ctx.params.id} not found`);
    });
  }
  router.add('POST', '/build', () => {
    throw new DockerError(501, 'docker build is not supported by Skiff yet');
  });
  router.add('POST', '/networks/{id}/connect', notYet('networks'));
  router.add('POST', '/networks/{id}/disconnect', notYet('networks'));
};
