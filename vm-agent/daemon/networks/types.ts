// The contracts inside networks/ (docs/networking.md): what each file of the module offers the others, so they can
// be built and tested apart. The module's face to the rest of skiffd is NetworkService in ../contracts.ts.
import type { EndpointConfig, EndpointState, PortMapping } from '../contracts.js';

// ---------------------------------------------------------------------------------------------- state (store.ts)

export interface IpamConfig {
  /** "10.221.3.0/24" */
  subnet: string;
  /** "10.221.3.1": the bridge's own address, the containers' default route and DNS server. */
  gateway: string;
  /** Addresses are handed out from here only (`--ip-range`); the whole subnet when absent. */
  ipRange?: string;
}

export interface NetworkRecord {
  id: string; // 64 hex
  name: string;
  driver: 'bridge' | 'host' | 'null';
  created: string; // RFC 3339 with nanoseconds
  /** The Linux bridge device ("skiff0" for the default bridge, "br-<id12>" for user networks); "" for host/null. */
  bridge: string;
  ipam: IpamConfig[]; // empty for host/null
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** The predefined networks (bridge, host, none) cannot be removed. */
  predefined: boolean;
  /** IPv4 addresses handed out in this network: address → container id ("" for the gateway). */
  allocated: Record<string, string>;
}

/** A container's tie to a network: what it asked for, and while it runs, its live endpoint. */
export interface Attachment {
  containerId: string;
  networkId: string;
  config: EndpointConfig;
  live?: EndpointState & { hostIfName: string };
}

export interface NetworkState {
  networks: Record<string, NetworkRecord>; // by id
  attachments: Attachment[];
  /** Published ports of running containers. */
  ports: Array<PortMapping & { containerId: string; containerIp: string; bridge: string }>;
}

// ---------------------------------------------------------------------------------------------- ipam.ts

export interface Cidr {
  /** Network address as a 32-bit unsigned number. */
  base: number;
  prefix: number;
}

// ---------------------------------------------------------------------------------------------- bridge.ts

/** One container interface to make: a veth whose host end joins `bridge`, the other end moved into `pid`'s netns. */
export interface VethPlan {
  pid: number;
  bridge: string;
  hostIfName: string; // "veth" + 7 hex
  ifName: string; // "eth0" …
  address: string; // "10.221.3.2"
  prefixLen: number;
  macAddress: string;
  /** The container's default route goes through this gateway (its first network only); none for internal networks. */
  defaultGateway?: string;
}

// ---------------------------------------------------------------------------------------------- firewall.ts

/** What the NAT and filter rules are made from: regenerated from state and applied in one `nft -f` transaction. */
export interface FirewallInput {
  bridges: Array<{ name: string; subnet: string; internal: boolean }>;
  ports: Array<PortMapping & { containerIp: string; bridge: string }>;
}

// ---------------------------------------------------------------------------------------------- dns.ts

/**
 * The embedded DNS server's question to the network service: which IPv4 addresses does `name` have for the
 * container at `clientIp` (on the network whose gateway answered)? undefined: not ours, forward it upstream.
 */
export type DnsLookup = (gatewayIp: string, clientIp: string, name: string) => string[] | undefined;

// ---------------------------------------------------------------------------------------------- service.ts, for the routes

export interface CreateNetworkRequest {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv4?: boolean;
  EnableIPv6?: boolean;
  IPAM?: {
    Driver?: string;
    Config?: Array<{ Subnet?: string; IPRange?: string; Gateway?: string }> | null;
    Options?: Record<string, string> | null;
  } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  CheckDuplicate?: boolean;
}

/** What routes.ts needs of the network service (beyond the NetworkService contract). */
export interface NetworkManager {
  list(): NetworkRecord[];
  /** By full id, unique id prefix or name; a 404 DockerError "network X not found". */
  get(ref: string): NetworkRecord;
  createNetwork(req: CreateNetworkRequest): Promise<NetworkRecord>;
  /** 403 for predefined networks, 409 "error while removing network: network X has active endpoints" when in use. */
  removeNetwork(ref: string): Promise<void>;
  /** A running container gets its interface now; a stopped one when it starts. */
  connect(networkRef: string, containerRef: string, config: EndpointConfig): Promise<void>;
  disconnect(networkRef: string, containerRef: string, force: boolean): Promise<void>;
  /** Containers on the network, for inspect's Containers: id → {Name, EndpointID, MacAddress, IPv4Address, IPv6Address}. */
  containersOn(networkId: string): Array<{ containerId: string; name: string; live?: EndpointState }>;
  /** Remove unused user networks matching `keep` (prune filters); returns their names. */
  prune(keep: (n: NetworkRecord) => boolean): Promise<string[]>;
}
