// skiff-hostagent: one process per VM, serving skiff.host.v1 on ~/.skiff/<vm>/hostagent.sock. Started detached by
// the app or the CLI when none runs: a pidfile taken with O_EXCL is the lock (a stale one, whose process is gone,
// is removed). SIGTERM/SIGINT stop the VM cleanly, then the process exits.
//   skiff-hostagent [--vm default] [--start]
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { ensurePrivateDir, vmPaths, type VmPaths } from './paths.js';
import { listenHost, makeHostServer } from './server.js';
import { Vm } from './vm.js';

const VERSION = '0.1.0';

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} hostagent: ${msg}\n`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the pidfile as a lock; throws when another live host agent holds it. */
export function lockPidfile(p: VmPaths): () => void {
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(p.hostagentPid, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(p.hostagentPid, 'utf8').trim() === String(process.pid)) rmSync(p.hostagentPid);
        } catch {
          // gone already
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = parseInt(existsSync(p.hostagentPid) ? readFileSync(p.hostagentPid, 'utf8') : '', 10);
      if (pid && pid !== process.pid && alive(pid))
        throw new Error(`a host agent for VM "${p.name}" is already running (pid ${pid})`);
      rmSync(p.hostagentPid, { force: true }); // stale
    }
  }
  throw new Error(`could not take ${p.hostagentPid}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let name = 'default';
  let start = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--vm') name = args[++i] ?? '';
    else if (args[i] === '--start') start = true;
    else if (args[i] === '--version') {
      console.log(VERSION);
      return;
    } else throw new Error(`unknown argument ${args[i]} (usage: skiff-hostagent [--vm NAME] [--start])`);
  }
  const p = vmPaths(name);
  ensurePrivateDir(p.dir);
  const unlock = lockPidfile(p);
  const vm = new Vm({ paths: p });
  vm.on('status', (s: { state: string; step: string; reason: string }) =>
    log(`${s.state}${s.step ? ` ${s.step}` : ''}${s.reason ? `: ${s.reason}` : ''}`),
  );
  const server = makeHostServer(vm, VERSION);
  await listenHost(server, p.hostagentSocket);
  log(`serving skiff.host.v1 on ${p.hostagentSocket}`);
  let quitting = false;
  const quit = (sig: string): void => {
    if (quitting) return;
    quitting = true;
    log(`${sig}: stopping the VM`);
    vm.stop()
      .catch((err: Error) => log(`stop: ${err.message}`))
      .finally(() => {
        server.forceShutdown();
        rmSync(p.hostagentSocket, { force: true });
        unlock();
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => quit('SIGTERM'));
  process.on('SIGINT', () => quit('SIGINT'));
  if (start) vm.start().catch((err: Error) => log(`start failed: ${err.message}`));
}

main().catch((err: Error) => {
  log(err.message);
  process.exit(1);
});
