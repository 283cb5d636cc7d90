// The published-ports watch against a real grpc-js server speaking agent.proto's Ports.WatchPublished on a unix
// socket: the initial list, SYNCED, live changes, and a broken stream reopened and reconciled (a port gone while
// the stream was down is removed, one still there is not added twice).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  type GrpcObject,
  type ServerWritableStream,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { afterAll, expect, it } from 'vitest';
import { loadProto } from '../../vm-agent/common/grpc.js';
import type { PublishedPort } from '../../electron/hostagent/forwards.js';
import { PortsWatcher } from '../../electron/hostagent/ports-watch.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-pw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const port = (n: number) => ({ host_ip: '0.0.0.0', host_port: n, container_port: 80, protocol: 'tcp' });
const ev = (kind: string, n?: number, name = 'web') =>
  n === undefined ? { kind } : { kind, port: port(n), container_id: `id-${name}`, container_name: name };

it('feeds added/removed from WatchPublished and reconciles after the stream breaks', async () => {
  const v1 = ((loadProto('agent.proto').skiff as GrpcObject).agent as GrpcObject).v1 as GrpcObject;
  const calls: ServerWritableStream<object, object>[] = [];
  const server = new Server();
  server.addService((v1.Ports as ServiceClientConstructor).service, {
    WatchPublished: (call: ServerWritableStream<object, object>) => calls.push(call),
  });
  const sock = join(dir, 'agent.sock');
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  const log: string[] = [];
  const sink = {
    added: (p: PublishedPort) => log.push(`+${p.host_port}:${p.container_name}`),
    removed: (p: PublishedPort) => log.push(`-${p.host_port}`),
  };
  const w = new PortsWatcher(sock, sink).start();
  await expect.poll(() => calls.length).toBe(1);
  calls[0].write(ev('ADDED', 8080));
  calls[0].write(ev('ADDED', 8081, 'db'));
  calls[0].write(ev('SYNCED'));
  calls[0].write(ev('ADDED', 9000, 'api'));
  calls[0].write(ev('REMOVED', 8081, 'db'));
  await expect.poll(() => w.synced && log.length === 4).toBe(true);
  expect(log).toEqual(['+8080:web', '+8081:db', '+9000:api', '-8081']);

  // The stream breaks; the agent's new stream lists 8080 (still there) and 7000 (new); 9000 went away meanwhile.
  calls[0].end();
  await expect.poll(() => calls.length, { timeout: 5000 }).toBe(2);
  calls[1].write(ev('ADDED', 8080));
  calls[1].write(ev('ADDED', 7000, 'new'));
  calls[1].write(ev('SYNCED'));
  await expect.poll(() => log.length).toBe(6);
  expect(log.slice(4)).toEqual(['+7000:new', '-9000']);
  w.stop();
  server.forceShutdown();
});
