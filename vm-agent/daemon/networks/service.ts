// The network service (docs/networking.md): networks, container endpoints, published ports and the embedded DNS,
// kept in one persisted state (store.ts) and made real with bridge.ts (interfaces), firewall.ts (nftables),
// ports.ts (host port reservations) and dns.ts. Every change to the state runs under one lock, one after another,
// and is saved before the kernel is touched, so a crash never hands an address out twice.
//
// Restart: init() (called by createNetworkService) loads the state and makes the bridges, rules and DNS listeners
// again; recover(isRunning) must then be called once by the container service, when it knows which containers
// still run: it drops the endpoints and ports of the others and takes the host ports of the running ones again.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errorMessage, logger } from '../../common/log.js';
import { nowRfc3339 } from '../../common/timestamp.js';
import { KeyedLock } from '../../common/keyed-lock.js';
import {
  badRequest,
  conflict,
  DockerError,
  notFoundError,
  type ContainerRecordView,
  type Daemon,
  type EndpointConfig,
  type EndpointState,
  type NetworkedContainer,
  type NetworkService,
  type PortMapping,
} from '../contracts.js';
import { addVeth, deleteBridge, ensureBridge, macForIp, randomVethName, removeVeth } from './bridge.js';
import { DnsServer, type DnsServerOptions } from './dns.js';
import { applyFirewall, enableForwarding } from './firewall.js';
import {
  allocate,
  allocateStatic,
  checkStatic,
  ipamFromBip,
  parseCidr,
  parseProcRoutes,
  planIpam,
  prefixLenOf,
  release,
  type IpamRequest,
} from './ipam.js';
import { PortReservations, wantedPorts } from './ports.js';
import { NetworkStore, type StoredState } from './store.js';
import type { Attachment, CreateNetworkRequest, FirewallInput, NetworkManager, NetworkRecord } from './types.js';

const log = logger('networks');

type Live = NonNullable<Attachment['live']>;

const bare = (name: string): string => name.replace(/^\//, '');
const randomId = (): string => randomBytes(32).toString('hex');

/** A live endpoint as the contract shows it (without the host end's name). */
function endpointOf(live: Live): EndpointState {
  const { hostIfName: _hostEnd, ...ep } = live;
  return ep;
}

function networkMode(hostConfig: Record<string, unknown>): string {
  const m = hostConfig.NetworkMode;
  return typeof m === 'string' && m !== '' ? m : 'default';
}

function publishesPorts(hostConfig: Record<string, unknown>): boolean {
  const b = hostConfig.PortBindings;
  return hostConfig.PublishAllPorts === true || (!!b && typeof b === 'object' && Object.keys(b).length > 0);
}

export interface NetworksOptions {
  /** For tests: the DNS server's port and upstreams. */
  dns?: DnsServerOptions;
}

export class Networks implements NetworkService, NetworkManager {
  private state: StoredState;
  private readonly store: NetworkStore;
  private readonly dns: DnsServer;
  private readonly ports = new PortReservations();
  private readonly lock = new KeyedLock();
  private firewallTail: Promise<void> = Promise.resolve();

  constructor(
    private readonly daemon: Daemon,
    opts: NetworksOptions = {},
  ) {
    this.store = new NetworkStore(daemon.config.dataRoot);
    this.state = this.store.load();
    this.dns = new DnsServer((g, c, n) => this.lookup(g, c, n), opts.dns);
  }

  /** All state changes, one at a time. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run('state', fn);
  }

  private save(): void {
    this.store.save(this.state);
  }

  // ------------------------------------------------------------------------------------------ start-up

  /** Load the state, make the predefined networks, bridges, forwarding, rules and DNS listeners (again). */
  async init(): Promise<void> {
    await this.locked(async () => {
      this.ensurePredefined();
      this.save();
      const bridges = this.bridgeNetworks();
      for (const n of bridges) await ensureBridge(n.bridge, this.gatewayCidr(n));
      try {
        enableForwarding(bridges.map((n) => n.bridge));
      } catch (err) {
        log.error(`containers will not reach beyond their networks: ${errorMessage(err)}`);
      }
      await this.refreshFirewall().catch((err: unknown) => log.error(errorMessage(err)));
      for (const n of bridges) await this.listenDns(n);
    });
  }

  /**
   * After a restart, once the container service knows which containers run: endpoints and ports of the others are
   * dropped (their interfaces went with their namespaces), addresses nobody holds are freed, and the host ports of
   * the running ones are taken again (any now used elsewhere is dropped, with a warning).
   */
  async recover(isRunning: (id: string) => boolean): Promise<void> {
    await this.locked(async () => {
      for (const a of this.state.attachments) {
        if (!a.live || isRunning(a.containerId)) continue;
        await removeVeth(a.live.hostIfName).catch(() => undefined);
        a.live = undefined;
      }
      for (const n of Object.values(this.state.networks))
        for (const [ip, owner] of Object.entries(n.allocated))
          if (owner !== '' && !this.attachmentsOf(owner).some((a) => a.networkId === n.id && a.live?.ipAddress === ip))
            delete n.allocated[ip];
      this.state.ports = this.state.ports.filter((p) => isRunning(p.containerId));
      for (const id of new Set(this.state.ports.map((p) => p.containerId))) {
        const lost = await this.ports.restore(id, this.portsOf(id));
        for (const m of lost) {
          log.warn(
            `container ${id.slice(0, 12)}: host port ${m.hostIp}:${m.hostPort}/${m.protocol} is taken, unpublished`,
          );
          this.state.ports = this.state.ports.filter(
            (p) =>
              !(
                p.containerId === id &&
                p.hostIp === m.hostIp &&
                p.hostPort === m.hostPort &&
                p.protocol === m.protocol
              ),
          );
        }
      }
      this.save();
      await this.refreshFirewall().catch((err: unknown) => log.error(errorMessage(err)));
    });
  }

  /** bridge, host and none: made once, their ids kept; the default bridge follows --bip and its device name. */
  private ensurePredefined(): void {
    const { bridge } = this.daemon.config;
    const want: Array<Pick<NetworkRecord, 'name' | 'driver'>> = [
      { name: 'bridge', driver: 'bridge' },
      { name: 'host', driver: 'host' },
      { name: 'none', driver: 'null' },
    ];
    for (const w of want) {
      let n = Object.values(this.state.networks).find((x) => x.predefined && x.name === w.name);
      if (!n) {
        n = {
          id: randomId(),
          name: w.name,
          driver: w.driver,
          created: nowRfc3339(),
          bridge: '',
          ipam: [],
          internal: false,
          attachable: false,
          labels: {},
          options: {},
          predefined: true,
          allocated: {},
        };
        this.state.networks[n.id] = n;
      }
      if (w.driver !== 'bridge') continue;
      const ipam = ipamFromBip(bridge.cidr);
      n.bridge = bridge.name;
      if (n.ipam[0]?.subnet !== ipam.subnet || n.ipam[0]?.gateway !== ipam.gateway) {
        // --bip changed: addresses of the old subnet mean nothing any more.
        n.ipam = [ipam];
        n.allocated = { [ipam.gateway]: '' };
      }
    }
  }

  // ------------------------------------------------------------------------------------------ lookups

  private bridgeNetworks(): NetworkRecord[] {
    return Object.values(this.state.networks).filter((n) => n.driver === 'bridge');
  }

  private defaultBridge(): NetworkRecord {
    const n = Object.values(this.state.networks).find((x) => x.predefined && x.name === 'bridge');
    if (!n) throw new DockerError(500, 'the default bridge network is missing (the network service did not start)');
    return n;
  }

  private isDefaultBridge(n: NetworkRecord): boolean {
    return n.predefined && n.driver === 'bridge';
  }

  private gatewayCidr(n: NetworkRecord): string {
    return `${n.ipam[0]!.gateway}/${prefixLenOf(n)}`;
  }

  private attachmentsOf(containerId: string): Attachment[] {
    return this.state.attachments.filter((a) => a.containerId === containerId);
  }

  /** By full id, exact name, or unique id prefix (dockerd's order). */
  private find(ref: string): NetworkRecord | undefined {
    const all = Object.values(this.state.networks);
    const exact = this.state.networks[ref] ?? all.find((n) => n.name === ref);
    if (exact) return exact;
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    const byPrefix = all.filter((n) => n.id.startsWith(ref));
    if (byPrefix.length > 1)
      throw badRequest(`network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
    return byPrefix[0];
  }

  list(): NetworkRecord[] {
    return Object.values(this.state.networks);
  }

  get(ref: string): NetworkRecord {
    const n = this.find(ref);
    if (!n) throw notFoundError(`network ${ref} not found`);
    return n;
  }

  containersOn(networkId: string): Array<{ containerId: string; name: string; live?: EndpointState }> {
    return this.state.attachments
      .filter((a) => a.networkId === networkId)
      .map((a) => ({
        containerId: a.containerId,
        name: this.state.containers[a.containerId]?.name ?? a.containerId.slice(0, 12),
        ...(a.live ? { live: endpointOf(a.live) } : {}),
      }));
  }

  // ------------------------------------------------------------------------------------------ the container life cycle

  /** Check what a container asks of a network (dockerd's 400s); nothing is taken. */
  private checkEndpoint(n: NetworkRecord, cfg: EndpointConfig): void {
    const ipv4 = cfg.IPAMConfig?.IPv4Address;
    if (cfg.IPAMConfig?.IPv6Address) throw new DockerError(501, 'IPv6 addresses are not supported yet');
    if (n.driver !== 'bridge') return;
    if (this.isDefaultBridge(n)) {
      if (ipv4) throw badRequest('user specified IP address is supported on user defined networks only');
      if (cfg.Aliases?.length)
        throw badRequest('network-scoped alias is supported only for containers in user defined networks');
    }
    if (ipv4) checkStatic(n, ipv4);
    if (cfg.MacAddress && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(cfg.MacAddress))
      throw badRequest(`invalid MAC address: ${cfg.MacAddress}`);
  }

  create(c: NetworkedContainer, endpoints: Record<string, EndpointConfig>): Promise<{ nameservers?: string[] }> {
    return this.locked(async () => this.record(c, endpoints));
  }

  /** create's work: check, and record the container's attachments (replacing any it had). */
  private record(c: NetworkedContainer, endpoints: Record<string, EndpointConfig>): { nameservers?: string[] } {
    const mode = networkMode(c.hostConfig);
    const shared = mode === 'host' || mode.startsWith('container:');
    if ((mode === 'none' || mode.startsWith('container:')) && publishesPorts(c.hostConfig))
      throw badRequest('conflicting options: port publishing and the container type network mode');
    const links = c.hostConfig.Links;
    if (shared && Array.isArray(links) && links.length > 0)
      throw badRequest(
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
      );

    // The mode's network first (its interface is eth0 and has the default route), then the other endpoints.
    let first: NetworkRecord | undefined;
    if (mode === 'default' || mode === 'bridge') first = this.defaultBridge();
    else if (!mode.startsWith('container:')) first = this.get(mode);
    const list: Array<{ n: NetworkRecord; cfg: EndpointConfig }> = first ? [{ n: first, cfg: {} }] : [];
    for (const [ref, cfg] of Object.entries(endpoints ?? {})) {
      // The CLI keys the default network's settings "default" (`docker run --ip … ` without --network).
      const n = ref === 'default' && !this.find(ref) ? this.defaultBridge() : this.get(ref);
      if (n.id === first?.id) list[0]!.cfg = cfg ?? {};
      else if (!list.some((x) => x.n.id === n.id)) list.push({ n, cfg: cfg ?? {} });
    }
    if ((!first || first.driver !== 'bridge') && list.length > (first ? 1 : 0))
      throw badRequest(`Container cannot be connected to network endpoints: ${list.map((x) => x.n.name).join(', ')}`);
    for (const { n, cfg } of list) this.checkEndpoint(n, cfg);
    if (first?.driver === 'bridge') wantedPorts(c.hostConfig, c.exposedPorts); // its 400s now, not at start

    this.state.attachments = this.state.attachments.filter((a) => a.containerId !== c.id);
    for (const { n, cfg } of list) this.state.attachments.push({ containerId: c.id, networkId: n.id, config: cfg });
    this.state.containers[c.id] = { name: bare(c.name), hostname: c.hostname };
    this.save();
    return first?.driver === 'bridge' ? { nameservers: [first.ipam[0]!.gateway] } : {};
  }

  /** Names an endpoint answers to in DNS: none on the default bridge (as Docker). */
  private dnsNames(n: NetworkRecord, containerId: string, cfg: EndpointConfig): string[] {
    if (this.isDefaultBridge(n)) return [];
    const who = this.state.containers[containerId];
    const names = [who?.name, ...(cfg.Aliases ?? []), containerId.slice(0, 12), who?.hostname];
    return [...new Set(names.filter((x): x is string => !!x))];
  }

  /**
   * Give one attachment its address (saved first) and its interface in `pid`'s netns. On failure the address is
   * given back and the error thrown.
   */
  private async bringUp(a: Attachment, pid: number, ifName: string, defaultRoute: boolean): Promise<void> {
    const n = this.state.networks[a.networkId];
    if (!n) throw notFoundError(`network ${a.networkId} not found`);
    const wantIp = a.config.IPAMConfig?.IPv4Address;
    const ip = wantIp ? allocateStatic(n, wantIp, a.containerId) : allocate(n, a.containerId);
    const gateway = n.ipam[0]!.gateway;
    const live: Live = {
      networkId: n.id,
      networkName: n.name,
      endpointId: randomId(),
      ifName,
      ipAddress: ip,
      prefixLen: prefixLenOf(n),
      gateway,
      macAddress: (a.config.MacAddress || macForIp(ip)).toLowerCase(),
      config: a.config,
      dnsNames: this.dnsNames(n, a.containerId, a.config),
      hostIfName: randomVethName(),
    };
    a.live = live;
    try {
      this.save();
      await addVeth({
        pid,
        bridge: n.bridge,
        hostIfName: live.hostIfName,
        ifName,
        address: ip,
        prefixLen: live.prefixLen,
        macAddress: live.macAddress,
        defaultGateway: defaultRoute ? gateway : undefined,
      });
    } catch (err) {
      release(n, ip, a.containerId);
      a.live = undefined;
      this.save();
      throw err;
    }
  }

  private connectEvent(a: Attachment, action: 'connect' | 'disconnect'): void {
    const n = this.state.networks[a.networkId];
    this.daemon.events.emit({
      Type: 'network',
      Action: action,
      Actor: { ID: a.networkId, Attributes: { container: a.containerId, name: n?.name ?? '', type: n?.driver ?? '' } },
    });
  }

  private portEvent(containerId: string, m: PortMapping, action: 'publish' | 'unpublish'): void {
    this.daemon.events.emit({
      Type: 'container',
      Action: action,
      Actor: {
        ID: containerId,
        Attributes: {
          name: this.state.containers[containerId]?.name ?? '',
          hostIp: m.hostIp,
          hostPort: String(m.hostPort),
          port: String(m.privatePort),
          protocol: m.protocol,
        },
      },
    });
  }

  attach(c: NetworkedContainer, pid: number): Promise<void> {
    return this.locked(async () => {
      await this.takeDown(c.id, false); // leftovers of an earlier run
      // A container made before skiffd had networks (or whose create was never told us): its NetworkMode.
      if (!(c.id in this.state.containers)) this.record(c, {});
      this.state.containers[c.id] = { name: bare(c.name), hostname: c.hostname };
      const todo = this.attachmentsOf(c.id).filter((a) => this.state.networks[a.networkId]?.driver === 'bridge');
      const up: Attachment[] = [];
      let routed: Attachment | undefined;
      try {
        for (const [i, a] of todo.entries()) {
          // The default route goes through the first network that leads out (none for internal networks).
          const route = !routed && !this.state.networks[a.networkId]!.internal;
          await this.bringUp(a, pid, `eth${i}`, route);
          up.push(a);
          if (route) routed = a;
        }
        // Ports are published on the endpoint with the default route, as Docker does.
        if (routed?.live) {
          const wanted = wantedPorts(c.hostConfig, c.exposedPorts);
          if (wanted.length) {
            const mappings = await this.ports.reserve(c.id, bare(c.name), wanted);
            const bridge = this.state.networks[routed.networkId]!.bridge;
            for (const m of mappings)
              this.state.ports.push({ ...m, containerId: c.id, containerIp: routed.live.ipAddress, bridge });
            this.save();
            await this.refreshFirewall();
          }
        }
      } catch (err) {
        await this.undoAttach(c.id, up);
        throw err;
      }
      for (const a of up) this.connectEvent(a, 'connect');
      for (const m of this.portsOf(c.id)) this.portEvent(c.id, m, 'publish');
    });
  }

  /** A failed attach: give back ports, addresses and interfaces it took. */
  private async undoAttach(containerId: string, up: Attachment[]): Promise<void> {
    const hadPorts = this.state.ports.some((p) => p.containerId === containerId);
    this.state.ports = this.state.ports.filter((p) => p.containerId !== containerId);
    await this.ports.release(containerId);
    for (const a of up) {
      const live = a.live;
      if (!live) continue;
      const n = this.state.networks[a.networkId];
      if (n) release(n, live.ipAddress, containerId);
      a.live = undefined;
      await removeVeth(live.hostIfName).catch((e: unknown) => log.warn(errorMessage(e)));
    }
    this.save();
    if (hadPorts) await this.refreshFirewall().catch((e: unknown) => log.error(errorMessage(e)));
  }

  /** Unpublish a container's ports and drop its live endpoints; with `events`, say so on /events. */
  private async takeDown(containerId: string, events: boolean): Promise<void> {
    const ports = this.portsOf(containerId);
    this.state.ports = this.state.ports.filter((p) => p.containerId !== containerId);
    await this.ports.release(containerId);
    const down: Attachment[] = [];
    const hostEnds: string[] = [];
    for (const a of this.attachmentsOf(containerId)) {
      if (!a.live) continue;
      const n = this.state.networks[a.networkId];
      if (n) release(n, a.live.ipAddress, containerId);
      hostEnds.push(a.live.hostIfName);
      a.live = undefined;
      down.push(a);
    }
    if (!ports.length && !down.length) return;
    this.save();
    if (ports.length) await this.refreshFirewall().catch((e: unknown) => log.error(errorMessage(e)));
    // Usually gone with the container's netns already (checking costs no process).
    for (const h of hostEnds) await removeVeth(h).catch((e: unknown) => log.warn(errorMessage(e)));
    if (!events) return;
    for (const m of ports) this.portEvent(containerId, m, 'unpublish');
    for (const a of down) this.connectEvent(a, 'disconnect');
  }

  detach(containerId: string): Promise<void> {
    return this.locked(() => this.takeDown(containerId, true));
  }

  rename(containerId: string, newName: string): Promise<void> {
    return this.locked(async () => {
      const who = this.state.containers[containerId];
      if (!who) return;
      who.name = bare(newName);
      for (const a of this.attachmentsOf(containerId)) {
        const n = this.state.networks[a.networkId];
        if (a.live && n) a.live.dnsNames = this.dnsNames(n, containerId, a.config);
      }
      this.save();
    });
  }

  forget(containerId: string): Promise<void> {
    return this.locked(async () => {
      await this.takeDown(containerId, true);
      const before = this.state.attachments.length;
      this.state.attachments = this.state.attachments.filter((a) => a.containerId !== containerId);
      const known = containerId in this.state.containers;
      delete this.state.containers[containerId];
      if (before !== this.state.attachments.length || known) this.save();
    });
  }

  endpointsOf(containerId: string): Record<string, EndpointState | { config: EndpointConfig; networkId: string }> {
    const out: Record<string, EndpointState | { config: EndpointConfig; networkId: string }> = {};
    for (const a of this.attachmentsOf(containerId)) {
      const n = this.state.networks[a.networkId];
      if (!n) continue;
      out[n.name] = a.live ? endpointOf(a.live) : { config: a.config, networkId: a.networkId };
    }
    return out;
  }

  portsOf(containerId: string): PortMapping[] {
    return this.state.ports
      .filter((p) => p.containerId === containerId)
      .map((p) => ({ privatePort: p.privatePort, protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort }));
  }

  addressesOf(containerId: string): string[] {
    return this.attachmentsOf(containerId).flatMap((a) => (a.live ? [a.live.ipAddress] : []));
  }

  hostGatewayIp(): string {
    return this.daemon.config.hostGatewayIp ?? this.defaultBridge().ipam[0]!.gateway;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.dns.close(), this.ports.closeAll()]);
  }

  // ------------------------------------------------------------------------------------------ DNS

  /**
   * The embedded DNS's question: names of live endpoints on every user network the asking container is on (it is
   * found by the gateway that was asked and its address there, so one network cannot ask in another's name; a
   * container connected later to more networks asks through its first one's gateway); host.docker.internal
   * everywhere. undefined: not ours, forward it.
   */
  private lookup(gatewayIp: string, clientIp: string, name: string): string[] | undefined {
    const q = name.toLowerCase().replace(/\.$/, '');
    if (q === 'host.docker.internal') return [this.hostGatewayIp()];
    const asked = this.bridgeNetworks().find((x) => x.ipam[0]?.gateway === gatewayIp);
    if (!asked) return undefined;
    const client = this.state.attachments.find(
      (a) => a.networkId === asked.id && a.live?.ipAddress === clientIp,
    )?.containerId;
    if (!client) return undefined;
    const userNetworks = new Set(
      this.state.attachments
        .filter((a) => a.containerId === client && a.live)
        .map((a) => a.networkId)
        .filter((id) => {
          const n = this.state.networks[id];
          return n && !this.isDefaultBridge(n);
        }),
    );
    const ips = this.state.attachments
      .filter((a) => a.live && userNetworks.has(a.networkId) && a.live.dnsNames.some((d) => d.toLowerCase() === q))
      .map((a) => a.live!.ipAddress);
    return ips.length ? [...new Set(ips)] : undefined;
  }

  private async listenDns(n: NetworkRecord): Promise<void> {
    const gw = n.ipam[0]?.gateway;
    if (!gw) return;
    await this.dns.listen(gw).catch((err: unknown) => log.warn(`network ${n.name}: ${errorMessage(err)}`));
  }

  // ------------------------------------------------------------------------------------------ firewall

  private firewallInput(): FirewallInput {
    return {
      bridges: this.bridgeNetworks().map((n) => ({ name: n.bridge, subnet: n.ipam[0]!.subnet, internal: n.internal })),
      ports: this.state.ports.map((p) => ({
        privatePort: p.privatePort,
        protocol: p.protocol,
        hostIp: p.hostIp,
        hostPort: p.hostPort,
        containerIp: p.containerIp,
        bridge: p.bridge,
      })),
    };
  }

  /** Apply the rules for the state as it is when this turn comes (applies never overlap or go out of order). */
  private refreshFirewall(): Promise<void> {
    const run = this.firewallTail.then(() => applyFirewall(this.firewallInput()));
    this.firewallTail = run.catch(() => undefined);
    return run;
  }

  // ------------------------------------------------------------------------------------------ networks

  createNetwork(req: CreateNetworkRequest): Promise<NetworkRecord> {
    return this.locked(async () => {
      const name = req.Name ?? '';
      if (!name.trim()) throw badRequest('network name must not be empty');
      if (Object.values(this.state.networks).some((n) => n.name === name))
        throw conflict(`network with name ${name} already exists`);
      const driver = req.Driver || 'bridge';
      if (driver === 'host' || driver === 'null')
        throw new DockerError(403, `only one instance of "${driver}" network is allowed`);
      if (driver !== 'bridge') throw notFoundError(`plugin "${driver}" not found`);
      if (req.Ingress) throw new DockerError(501, 'ingress networks (swarm) are not supported');
      if (req.EnableIPv6) throw new DockerError(501, 'IPv6 networks are not supported yet');
      if (req.EnableIPv4 === false) throw new DockerError(501, 'networks without IPv4 are not supported yet');
      const ipamDriver = req.IPAM?.Driver;
      if (ipamDriver && ipamDriver !== 'default') throw notFoundError(`plugin "${ipamDriver}" not found`);

      const others = this.bridgeNetworks().flatMap((n) => n.ipam.map((c) => parseCidr(c.subnet)));
      const ipam = planIpam(
        (req.IPAM?.Config ?? []) as IpamRequest[],
        others,
        hostRoutes(),
        this.daemon.config.addressPools,
      );
      const id = randomId();
      const options = { ...(req.Options ?? {}) };
      const bridge = options['com.docker.network.bridge.name'] || `br-${id.slice(0, 12)}`;
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge))
        throw badRequest(`invalid bridge name ${JSON.stringify(bridge)}: at most 15 letters, digits, "_", "." or "-"`);
      if (this.bridgeNetworks().some((n) => n.bridge === bridge))
        throw conflict(`bridge name ${bridge} is already used by another network`);
      const rec: NetworkRecord = {
        id,
        name,
        driver: 'bridge',
        created: nowRfc3339(),
        bridge,
        ipam,
        internal: req.Internal === true,
        attachable: req.Attachable === true,
        labels: { ...(req.Labels ?? {}) },
        options,
        predefined: false,
        allocated: { [ipam[0]!.gateway]: '' },
      };
      await ensureBridge(bridge, this.gatewayCidr(rec));
      this.state.networks[id] = rec;
      try {
        enableForwarding([bridge]);
        this.save();
        await this.refreshFirewall();
      } catch (err) {
        delete this.state.networks[id];
        this.save();
        await deleteBridge(bridge).catch(() => undefined);
        await this.refreshFirewall().catch(() => undefined);
        throw err;
      }
      await this.listenDns(rec);
      this.daemon.events.emit({
        Type: 'network',
        Action: 'create',
        Actor: { ID: id, Attributes: { name, type: 'bridge' } },
      });
      return rec;
    });
  }

  private async removeLocked(n: NetworkRecord): Promise<void> {
    if (n.predefined) throw new DockerError(403, `${n.name} is a pre-defined network and cannot be removed`);
    if (this.state.attachments.some((a) => a.networkId === n.id))
      throw conflict(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    const gw = n.ipam[0]?.gateway;
    if (gw) await this.dns.unlisten(gw);
    delete this.state.networks[n.id];
    this.save();
    await this.refreshFirewall().catch((e: unknown) => log.error(errorMessage(e)));
    await deleteBridge(n.bridge).catch((e: unknown) => log.warn(errorMessage(e)));
    this.daemon.events.emit({
      Type: 'network',
      Action: 'destroy',
      Actor: { ID: n.id, Attributes: { name: n.name, type: n.driver } },
    });
  }

  removeNetwork(ref: string): Promise<void> {
    return this.locked(() => this.removeLocked(this.get(ref)));
  }

  prune(keep: (n: NetworkRecord) => boolean): Promise<string[]> {
    return this.locked(async () => {
      const gone: string[] = [];
      for (const n of Object.values(this.state.networks)) {
        if (n.predefined || !keep(n) || this.state.attachments.some((a) => a.networkId === n.id)) continue;
        await this.removeLocked(n);
        gone.push(n.name);
      }
      return gone;
    });
  }

  connect(networkRef: string, containerRef: string, config: EndpointConfig): Promise<void> {
    return this.locked(async () => {
      const n = this.get(networkRef);
      const c = await this.daemon.containers.get(containerRef);
      const mode = networkMode(c.hostConfig);
      if (n.driver === 'host' || mode === 'host')
        throw new DockerError(403, 'container cannot be disconnected from host network or connected to host network');
      if (n.driver === 'null' || mode === 'none')
        throw new DockerError(
          403,
          'container cannot be connected to multiple networks with one of the networks in private (none) mode',
        );
      if (mode.startsWith('container:'))
        throw new DockerError(
          403,
          'container sharing network namespace with another container or host cannot be connected to any other network',
        );
      if (this.attachmentsOf(c.id).some((a) => a.networkId === n.id))
        throw new DockerError(403, `endpoint with name ${bare(c.name)} already exists in network ${n.name}`);
      this.checkEndpoint(n, config ?? {});

      const a: Attachment = { containerId: c.id, networkId: n.id, config: config ?? {} };
      this.state.attachments.push(a);
      this.state.containers[c.id] ??= { name: bare(c.name), hostname: hostnameOf(c) };
      this.save();
      const pid = c.state.pid;
      if ((c.state.status === 'running' || c.state.status === 'paused') && pid > 0) {
        const live = this.attachmentsOf(c.id).flatMap((x) => (x.live ? [x.live] : []));
        const used = new Set(live.map((l) => l.ifName));
        let i = 0;
        while (used.has(`eth${i}`)) i++;
        try {
          await this.bringUp(a, pid, `eth${i}`, live.length === 0 && !n.internal);
        } catch (err) {
          this.state.attachments = this.state.attachments.filter((x) => x !== a);
          this.save();
          throw err;
        }
        this.connectEvent(a, 'connect');
      }
    });
  }

  disconnect(networkRef: string, containerRef: string, force: boolean): Promise<void> {
    return this.locked(async () => {
      const n = this.get(networkRef);
      let id: string | undefined;
      try {
        id = (await this.daemon.containers.get(containerRef)).id;
      } catch (err) {
        // A container that is gone can still be forced off a network (by the name or id we knew).
        if (!force) throw err;
        const ref = bare(containerRef);
        id = Object.entries(this.state.containers).find(([cid, v]) => v.name === ref || cid.startsWith(ref))?.[0];
        if (!id) throw err;
      }
      const a = this.attachmentsOf(id).find((x) => x.networkId === n.id);
      if (!a) throw new DockerError(403, `container ${id} is not connected to network ${n.name}`);
      if (n.driver === 'host' && !force)
        throw new DockerError(403, 'container cannot be disconnected from host network or connected to host network');
      if (a.live) {
        const live = a.live;
        const ports = this.state.ports.filter((p) => p.containerId === id && p.containerIp === live.ipAddress);
        if (ports.length) {
          this.state.ports = this.state.ports.filter((p) => !ports.includes(p));
          await this.ports.release(id);
        }
        await removeVeth(live.hostIfName);
        release(n, live.ipAddress, id);
        a.live = undefined;
        this.state.attachments = this.state.attachments.filter((x) => x !== a);
        this.save();
        if (ports.length) await this.refreshFirewall().catch((e: unknown) => log.error(errorMessage(e)));
        for (const p of ports) this.portEvent(id, p, 'unpublish');
        this.connectEvent(a, 'disconnect');
        return;
      }
      this.state.attachments = this.state.attachments.filter((x) => x !== a);
      this.save();
    });
  }
}

function hostnameOf(c: ContainerRecordView): string {
  const h = c.config.Hostname;
  return typeof h === 'string' ? h : '';
}

/** The host's routes (this network namespace's), so a new network's subnet never shadows one. */
function hostRoutes(): ReturnType<typeof parseProcRoutes> {
  try {
    return parseProcRoutes(readFileSync('/proc/self/net/route', 'utf8'));
  } catch {
    return [];
  }
}
