// The streams part of the containers module (docs/daemon.md): logs, attach, resize, wait, exec, stats, top,
// archive, export and changes. Registers its routes and sets Daemon.execs and Daemon.streams (contracts.ts).
import type { RegisterRoutes } from '../contracts.js';
import { handleArchiveGet, handleArchiveHead, handleArchivePut, handleChanges, handleExport } from './archive.js';
import { AttachRegistry, handleAttach, handleResize, handleWait } from './attach.js';
import { Execs, handleExecCreate, handleExecInspect, handleExecResize, handleExecStart } from './exec.js';
import { handleLogs } from './logs.js';
import { handleStats, handleTop } from './stats.js';

export const register: RegisterRoutes = (router, daemon) => {
  const attachers = new AttachRegistry();
  const execs = new Execs();
  daemon.execs = execs;
  daemon.streams = attachers;

  router.add('GET', '/containers/{id}/logs', (ctx) => handleLogs(daemon, ctx));
  router.add('POST', '/containers/{id}/attach', (ctx) => handleAttach(daemon, attachers, ctx));
  router.add('POST', '/containers/{id}/resize', (ctx) => handleResize(daemon, ctx));
  router.add('POST', '/containers/{id}/wait', (ctx) => handleWait(daemon, ctx));

  router.add('POST', '/containers/{id}/exec', (ctx) => handleExecCreate(daemon, execs, ctx));
  router.add('POST', '/exec/{id}/start', (ctx) => handleExecStart(daemon, execs, ctx));
  router.add('POST', '/exec/{id}/resize', (ctx) => handleExecResize(daemon, execs, ctx));
  router.add('GET', '/exec/{id}/json', (ctx) => handleExecInspect(execs, ctx));

  router.add('GET', '/containers/{id}/stats', (ctx) => handleStats(daemon, ctx));
  router.add('GET', '/containers/{id}/top', (ctx) => handleTop(daemon, ctx));

  router.add('HEAD', '/containers/{id}/archive', (ctx) => handleArchiveHead(daemon, ctx));
  router.add('GET', '/containers/{id}/archive', (ctx) => handleArchiveGet(daemon, ctx));
  router.add('PUT', '/containers/{id}/archive', (ctx) => handleArchivePut(daemon, ctx));
  router.add('GET', '/containers/{id}/export', (ctx) => handleExport(daemon, ctx));
  router.add('GET', '/containers/{id}/changes', (ctx) => handleChanges(daemon, ctx));
};
