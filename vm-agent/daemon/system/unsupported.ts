// Builds come later (their own issue). Until then the endpoint says so plainly, never a fake success.
import { DockerError, type RegisterRoutes } from '../contracts.js';

export const registerUnsupported: RegisterRoutes = (router) => {
  router.add('POST', '/build', () => {
    throw new DockerError(501, 'docker build is not supported by Skiff yet');
  });
};
