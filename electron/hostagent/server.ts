// skiff.host.v1 over gRPC: the Host service on top of one Vm. Errors become status codes with the message as is.
import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type GrpcObject,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceClientConstructor,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { loadProto } from '../../vm-agent/common/grpc.js';
import { PreconditionError, tail, type Vm, type VmStatusView } from './vm.js';
import { loadSettings, saveSettings, validateSettings, type VmSettings } from './settings.js';

interface SettingsMsg {
  cpus: number;
  memory_mib: number;
  disk_gib: number;
  shares: { path: string }[];
  stop_vm_on_quit: boolean;
}

export function statusMsg(v: VmStatusView): Record<string, unknown> {
  const ms = v.since.getTime();
  return {
    state: v.state,
    step: v.step,
    percent: v.percent,
    reason: v.reason,
    since: { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 },
    docker_socket: v.dockerSocket,
    agent_socket: v.agentSocket,
    ssh_port: v.sshPort,
    qemu_pid: v.qemuPid,
    accel: v.accel,
    accel_reason: v.accelReason,
    ports: v.ports.map((p) => ({
      listen: p.listen,
      container_port: p.port.container_port,
      protocol: p.port.protocol,
      container_name: p.port.container_name ?? '',
      listening: p.state === 'listening',
      warning: p.warning ?? '',
    })),
    warnings: v.warnings,
  };
}

function settingsMsg(s: VmSettings): SettingsMsg {
  return {
    cpus: s.cpus,
    memory_mib: s.memoryMiB,
    disk_gib: s.diskGiB,
    shares: s.shares.map((path) => ({ path })),
    stop_vm_on_quit: s.stopVmOnQuit,
  };
}

function grpcError(err: unknown, fallback = status.INTERNAL): Error {
  const code = err instanceof PreconditionError ? status.FAILED_PRECONDITION : fallback;
  const details = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res, code = status.INTERNAL) {
  return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): void => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => cb(null, res),
        (err: unknown) => cb(grpcError(err, code)),
      );
  };
}

function qemuVersion(): string {
  try {
    return execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  } catch {
    return 'not installed';
  }
}

export function makeHostServer(vm: Vm, version: string): Server {
  const v1 = ((loadProto('host.proto').skiff as GrpcObject).host as GrpcObject).v1 as GrpcObject;
  const server = new Server();
  const p = vm.paths;
  server.addService((v1.Host as ServiceClientConstructor).service, {
    Status: unary(() => statusMsg(vm.status())),
    WatchStatus: (call: ServerWritableStream<object, Record<string, unknown>>) => {
      const send = (v: VmStatusView): void => {
        call.write(statusMsg(v));
      };
      send(vm.status());
      vm.on('status', send);
      const done = (): void => {
        vm.off('status', send);
      };
      call.on('cancelled', done);
      call.on('close', done);
      call.on('error', done);
    },
    Start: unary(() => vm.start().then(statusMsg)),
    Stop: unary(() => vm.stop().then(statusMsg)),
    Restart: unary(() => vm.restart().then(statusMsg)),
    Reset: unary(() => vm.reset().then(statusMsg)),
    GetSettings: unary(() => settingsMsg(loadSettings(p.settings))),
    UpdateSettings: unary((req: SettingsMsg) => {
      const cur = loadSettings(p.settings);
      const next = validateSettings({
        cpus: req.cpus || cur.cpus,
        memoryMiB: req.memory_mib || cur.memoryMiB,
        diskGiB: req.disk_gib || cur.diskGiB,
        shares: req.shares.map((s) => s.path),
        stopVmOnQuit: req.stop_vm_on_quit,
      });
      if (next.diskGiB < cur.diskGiB) throw new Error(`the disk only grows: it is ${cur.diskGiB} GiB already`);
      saveSettings(p.settings, next);
      return settingsMsg(next);
    }, status.INVALID_ARGUMENT),
    Diagnostics: unary(async (req: { lines: number }) => {
      const lines = req.lines > 0 ? req.lines : 200;
      let agentLog = '';
      if (vm.status().state === 'RUNNING') {
        const r = await vm
          .session()
          .exec(`tail -n ${lines} /var/log/skiff-agent.log 2>&1 || true`, { timeoutMs: 10_000 })
          .catch((err: Error) => ({ stdout: `(could not read: ${err.message})` }));
        agentLog = r.stdout;
      }
      return {
        serial_log: tail(p.serialLog, lines),
        agent_log: agentLog,
        hostagent_log: tail(p.hostagentLog, lines),
        qemu_command: vm.lastCommand.join(' '),
        versions: { hostagent: version, node: process.version, qemu: qemuVersion() },
      };
    }),
  });
  return server;
}

/** Serve on the unix socket (0600; its directory is 0700). */
export function listenHost(server: Server, socket: string): Promise<void> {
  rmSync(socket, { force: true });
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => {
      if (err) {
        reject(err);
        return;
      }
      chmodSync(socket, 0o600);
      resolve();
    });
  });
}
