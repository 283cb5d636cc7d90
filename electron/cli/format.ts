// What the CLI prints, as pure functions (unit-tested): the start progress line, `status` (text and --json), the
// ssh command line and `ssh-config` block, and `docker-env` per shell.
import type { Shell } from './args.js';

/** skiff.host.v1 VmStatus as proto-loader gives it (keepCase, enums and longs as strings, defaults on). */
export interface HostStatus {
  state: string;
  step: string;
  percent: number;
  reason: string;
  since: { seconds: string | number; nanos: number } | null;
  docker_socket: string;
  agent_socket: string;
  ssh_port: number;
  qemu_pid: number;
  accel: string;
  accel_reason: string;
  ports: {
    listen: string;
    container_port: number;
    protocol: string;
    container_name: string;
    listening: boolean;
    warning: string;
  }[];
  warnings: string[];
}

export function sinceDate(s: HostStatus): Date | undefined {
  if (!s.since) return undefined;
  const ms = Number(s.since.seconds) * 1000 + Math.floor((s.since.nanos || 0) / 1e6);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : undefined;
}

/** "5s", "3m 12s", "2h 5m", "3d 4h" */
export function ago(from: Date, now = new Date()): string {
  let s = Math.max(0, Math.floor((now.getTime() - from.getTime()) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m}m ${s}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** The one-line progress of `skiff start`/`restart`: "Starting Skiff: ssh (70%)". */
export function progressLine(s: Pick<HostStatus, 'state' | 'step' | 'percent'>): string {
  switch (s.state) {
    case 'STARTING':
      return `Starting Skiff: ${s.step || 'preparing'} (${Math.max(0, Math.min(100, s.percent | 0))}%)`;
    case 'STOPPING':
      return 'Stopping Skiff…';
    case 'RUNNING':
      return 'Skiff is running';
    case 'STOPPED':
      return 'Skiff is stopped';
    case 'ERROR':
      return 'Skiff failed';
    default:
      return `Skiff: ${s.state}`;
  }
}

export function portLine(p: HostStatus['ports'][number]): string {
  const who = p.container_name ? `${p.container_name}:` : '';
  const state = p.listening ? 'listening' : `not listening${p.warning ? `: ${p.warning}` : ''}`;
  return `${p.listen} → ${who}${p.container_port}/${p.protocol || 'tcp'} (${state})`;
}

/** `skiff status` as text. */
export function statusText(vm: string, s: HostStatus, now = new Date()): string {
  const since = sinceDate(s);
  const lines: string[] = [];
  let head = `Skiff (vm ${vm}): ${s.state}`;
  if (s.state === 'STARTING') head += ` — ${s.step || 'preparing'} (${s.percent}%)`;
  if (since) head += ` since ${since.toISOString()} (${ago(since, now)} ago)`;
  lines.push(head);
  if (s.state === 'ERROR' && s.reason) {
    const [first, ...more] = s.reason.split('\n');
    lines.push(`  reason:         ${first}`);
    for (const l of more) lines.push(`                  ${l}`);
  }
  if (s.accel) lines.push(`  accelerator:    ${s.accel}${s.accel_reason ? ` (${s.accel_reason})` : ''}`);
  if (s.docker_socket) lines.push(`  docker socket:  unix://${s.docker_socket}`);
  if (s.agent_socket) lines.push(`  agent socket:   unix://${s.agent_socket}`);
  if (s.ssh_port) lines.push(`  ssh:            127.0.0.1:${s.ssh_port} (skiff shell, skiff ssh-config)`);
  if (s.qemu_pid) lines.push(`  qemu pid:       ${s.qemu_pid}`);
  if (s.state === 'RUNNING') {
    if (s.ports.length === 0) lines.push('  ports:          none published');
    else {
      lines.push('  ports:');
      for (const p of s.ports) lines.push(`    ${portLine(p)}`);
    }
  }
  if (s.warnings.length > 0) {
    lines.push('  warnings:');
    for (const w of s.warnings) lines.push(`    - ${w}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `skiff status --json`: camelCase, `since` as ISO 8601. */
export function statusJson(vm: string, s: HostStatus): Record<string, unknown> {
  return {
    vm,
    state: s.state,
    step: s.step,
    percent: s.percent,
    reason: s.reason,
    since: sinceDate(s)?.toISOString() ?? null,
    dockerSocket: s.docker_socket,
    dockerHost: s.docker_socket ? `unix://${s.docker_socket}` : '',
    agentSocket: s.agent_socket,
    sshPort: s.ssh_port,
    qemuPid: s.qemu_pid,
    accel: s.accel,
    accelReason: s.accel_reason,
    ports: s.ports.map((p) => ({
      listen: p.listen,
      containerPort: p.container_port,
      protocol: p.protocol,
      containerName: p.container_name,
      listening: p.listening,
      warning: p.warning,
    })),
    warnings: s.warnings,
  };
}

export interface SshTarget {
  vm: string;
  port: number;
  /** ~/.skiff/<vm>/id_ed25519 */
  identity: string;
  /** ~/.skiff/<vm>/known_hosts, holding "skiff-<vm> ssh-ed25519 …" */
  knownHosts: string;
}

export function sshAlias(vm: string): string {
  return `skiff-${vm}`;
}

/** The system ssh's arguments for a shell (or a command) in the VM, with the pinned host key only. */
export function sshArgs(t: SshTarget, command: string[] = [], platform = process.platform): string[] {
  return [
    ...(platform === 'win32' ? [] : ['-F', '/dev/null']), // the user's ~/.ssh/config does not apply
    '-i',
    t.identity,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${t.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=none',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `HostKeyAlias=${sshAlias(t.vm)}`,
    '-o',
    'UpdateHostKeys=no',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-p',
    String(t.port),
    'root@127.0.0.1',
    ...(command.length > 0 ? ['--', ...command] : []),
  ];
}

/** A value for ssh_config: quoted when it has spaces (ssh_config accepts "…"). */
function sshValue(v: string): string {
  return /[\s"]/.test(v) ? `"${v.replace(/"/g, '\\"')}"` : v;
}

/** `skiff ssh-config`: a Host block so that `ssh skiff-<vm>` works. */
export function sshConfigBlock(t: SshTarget): string {
  return [
    `# Skiff VM "${t.vm}": the port changes at every start of the VM; run \`skiff ssh-config\` again after one.`,
    `Host ${sshAlias(t.vm)}`,
    '  HostName 127.0.0.1',
    `  Port ${t.port}`,
    '  User root',
    `  IdentityFile ${sshValue(t.identity)}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${sshValue(t.knownHosts)}`,
    '  StrictHostKeyChecking yes',
    `  HostKeyAlias ${sshAlias(t.vm)}`,
    '  UpdateHostKeys no',
    '',
  ].join('\n');
}

/** `skiff docker-env`: DOCKER_HOST for the shell, and how to apply it. */
export function dockerEnv(socket: string, shell: Shell): string {
  const host = `unix://${socket}`;
  switch (shell) {
    case 'fish':
      return `set -gx DOCKER_HOST "${host}";\n# Run this command to configure your shell:\n# skiff docker-env --shell fish | source\n`;
    case 'powershell':
      return (
        `$Env:DOCKER_HOST = "${host}"\n` +
        '# Run this command to configure your shell:\n# & skiff docker-env --shell powershell | Invoke-Expression\n'
      );
    default:
      return `export DOCKER_HOST='${host.replace(/'/g, `'\\''`)}'\n# Run this command to configure your shell:\n# eval "$(skiff docker-env)"\n`;
  }
}
