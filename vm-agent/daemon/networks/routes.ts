// The /networks routes (list, inspect, create, remove, connect, disconnect, prune) over the NetworkManager, with
// dockerd 28's statuses and wording. Request bodies are checked here as Go's JSON decoding would (field names in
// any case, a wrong type is a 400 naming the field); what the values mean is the manager's to judge.
import {
  badRequest,
  DockerError,
  notFoundError,
  type Daemon,
  type EndpointConfig,
  type RequestContext,
  type Router,
} from '../contracts.js';
import type { CreateNetworkRequest, NetworkManager } from './types.js';
import { filterNetworks, networkView, pruneMatcher, type Json } from './views.js';

// ---------------------------------------------------------------------------------------------- request bodies

/** A field of a Go struct the body decodes into: its JSON kind and the Go type named in errors. */
type Field =
  | { kind: 'string' | 'bool' | 'int' | 'strings' | 'stringMap'; go: string }
  | { kind: 'struct'; go: string; fields: Record<string, Field> }
  | { kind: 'structs'; go: string; item: { go: string; fields: Record<string, Field> } };

const str: Field = { kind: 'string', go: 'string' };
const bool: Field = { kind: 'bool', go: 'bool' };
const int: Field = { kind: 'int', go: 'int' };
const strings: Field = { kind: 'strings', go: '[]string' };
const stringMap: Field = { kind: 'stringMap', go: 'map[string]string' };

const ipamConfig = {
  go: 'network.IPAMConfig',
  fields: { Subnet: str, IPRange: str, Gateway: str, AuxiliaryAddresses: stringMap },
};

const createRequest: Record<string, Field> = {
  Name: str,
  Driver: str,
  Scope: str,
  EnableIPv4: bool,
  EnableIPv6: bool,
  Internal: bool,
  Attachable: bool,
  Ingress: bool,
  ConfigOnly: bool,
  ConfigFrom: { kind: 'struct', go: 'network.ConfigReference', fields: { Network: str } },
  IPAM: {
    kind: 'struct',
    go: 'network.IPAM',
    fields: {
      Driver: str,
      Options: stringMap,
      Config: { kind: 'structs', go: '[]network.IPAMConfig', item: ipamConfig },
    },
  },
  Options: stringMap,
  Labels: stringMap,
  CheckDuplicate: bool,
};

const endpointSettings: Field = {
  kind: 'struct',
  go: 'network.EndpointSettings',
  fields: {
    IPAMConfig: {
      kind: 'struct',
      go: 'network.EndpointIPAMConfig',
      fields: { IPv4Address: str, IPv6Address: str, LinkLocalIPs: strings },
    },
    Links: strings,
    Aliases: strings,
    DriverOpts: stringMap,
    GwPriority: int,
    MacAddress: str,
    // Output fields of the same struct: clients may send them back; Go decodes them, the daemon ignores them.
    NetworkID: str,
    EndpointID: str,
    Gateway: str,
    IPAddress: str,
    IPPrefixLen: int,
    IPv6Gateway: str,
    GlobalIPv6Address: str,
    GlobalIPv6PrefixLen: int,
    DNSNames: strings,
  },
};

const connectRequest: Record<string, Field> = { Container: str, EndpointConfig: endpointSettings };
const disconnectRequest: Record<string, Field> = { Container: str, Force: bool };

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // string, number, object
}

function typeError(v: unknown, path: string, go: string): DockerError {
  const what = typeof v === 'number' ? `number ${v}` : jsonKind(v);
  return badRequest(`invalid JSON: json: cannot unmarshal ${what} into Go struct field ${path} of type ${go}`);
}

/** The fields of `o` among `keys` that are set. */
function pick(o: Json, keys: string[]): Json {
  const out: Json = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Decode `body` into the struct `fields` describes, as Go's encoding/json: keys match field names in any case,
 * unknown keys and nulls are ignored, a value of the wrong type is a 400. Returns the known fields, named as
 * declared.
 */
function decodeStruct(body: unknown, fields: Record<string, Field>, path: string): Record<string, unknown> {
  if (!isObject(body))
    throw badRequest(`invalid JSON: json: cannot unmarshal ${jsonKind(body)} into Go value of type network.${path}`);
  const byLower = new Map(Object.keys(fields).map((k) => [k.toLowerCase(), k]));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const name = Object.hasOwn(fields, key) ? key : byLower.get(key.toLowerCase());
    if (name === undefined || value === null) continue;
    out[name] = decodeField(value, fields[name]!, `${path}.${name}`);
  }
  return out;
}

function decodeField(v: unknown, f: Field, path: string): unknown {
  switch (f.kind) {
    case 'string':
      if (typeof v !== 'string') throw typeError(v, path, f.go);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw typeError(v, path, f.go);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(v, path, f.go);
      return v;
    case 'strings':
      if (!Array.isArray(v)) throw typeError(v, path, f.go);
      return v.map((x) => {
        if (typeof x !== 'string') throw typeError(x, path, 'string');
        return x;
      });
    case 'stringMap': {
      if (!isObject(v)) throw typeError(v, path, f.go);
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(v)) {
        if (typeof x !== 'string') throw typeError(x, `${path}.${k}`, 'string');
        out[k] = x;
      }
      return out;
    }
    case 'struct':
      if (!isObject(v)) throw typeError(v, path, f.go);
      return decodeStruct(v, f.fields, path);
    case 'structs':
      if (!Array.isArray(v)) throw typeError(v, path, f.go);
      return v.map((x) => {
        if (x === null) return {};
        if (!isObject(x)) throw typeError(x, path, f.item.go);
        return decodeStruct(x, f.item.fields, path);
      });
  }
}

/** POST /networks/create's body as the manager takes it; what skiffd cannot do (swarm, config-only) is a 501. */
export function parseCreateRequest(body: unknown): CreateNetworkRequest {
  const b = decodeStruct(body, createRequest, 'CreateRequest') as Json & {
    IPAM?: { Config?: Array<Json & { AuxiliaryAddresses?: Record<string, string> }> };
  };
  const name = (b.Name as string | undefined) ?? '';
  // libnetwork's ErrInvalidName
  if (name.trim() === '') throw badRequest(`invalid name: ${name}`);
  const scope = (b.Scope as string | undefined) ?? '';
  if (scope !== '' && scope !== 'local') throw new DockerError(501, `networks of scope ${scope} are not supported yet`);
  if (b.ConfigOnly === true) throw new DockerError(501, 'config-only networks are not supported yet');
  if (((b.ConfigFrom as { Network?: string } | undefined)?.Network ?? '') !== '')
    throw new DockerError(501, 'networks made from a config-only network (--config-from) are not supported yet');
  for (const c of b.IPAM?.Config ?? [])
    if (Object.keys(c.AuxiliaryAddresses ?? {}).length > 0)
      throw new DockerError(501, 'IPAM auxiliary addresses (--aux-address) are not supported yet');
  const req = { Name: name, ...pick(b, ['Driver', 'Internal', 'Attachable', 'Ingress', 'EnableIPv4', 'EnableIPv6']) };
  if (b.IPAM) {
    const ipam = pick(b.IPAM as Json, ['Driver', 'Options']);
    if (b.IPAM.Config) ipam.Config = b.IPAM.Config.map((c) => pick(c, ['Subnet', 'IPRange', 'Gateway']));
    (req as Json).IPAM = ipam;
  }
  Object.assign(req, pick(b, ['Options', 'Labels', 'CheckDuplicate']));
  return req as CreateNetworkRequest;
}

/** A container reference must be there (dockerd's invalidIdentifier). */
function containerRef(b: Json): string {
  const ref = (b.Container as string | undefined) ?? '';
  if (ref === '') throw badRequest(`invalid name or ID supplied: ""`);
  return ref;
}

/** POST /networks/{id}/connect's body: the container and its endpoint config (what the user may ask for only). */
export function parseConnectRequest(body: unknown): { container: string; config: EndpointConfig } {
  const b = decodeStruct(body, connectRequest, 'ConnectOptions');
  const ep = (b.EndpointConfig ?? {}) as Json;
  const config = pick(ep, ['IPAMConfig', 'Aliases', 'Links', 'MacAddress', 'DriverOpts', 'GwPriority']);
  return { container: containerRef(b), config: config as EndpointConfig };
}

/** POST /networks/{id}/disconnect's body. */
export function parseDisconnectRequest(body: unknown): { container: string; force: boolean } {
  const b = decodeStruct(body, disconnectRequest, 'DisconnectOptions');
  return { container: containerRef(b), force: b.Force === true };
}

/** Go's strconv.ParseBool, which inspect's `verbose` goes through. */
function parseGoBool(name: string, v: string | null): boolean {
  if (v === null || v === '') return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw badRequest(`invalid value for ${name}: ${v}`);
}

// ---------------------------------------------------------------------------------------------- routes

/** dockerd answers connect and disconnect with a bare 200. */
function ok(ctx: RequestContext): void {
  ctx.res.writeHead(200, { 'Content-Length': '0' });
  ctx.res.end();
}

export function registerNetworkRoutes(router: Router, daemon: Daemon, manager: NetworkManager): void {
  const hasLiveEndpoints = (id: string): boolean => manager.containersOn(id).some((c) => c.live !== undefined);

  router.add('GET', '/networks', (ctx) => {
    const list = filterNetworks(manager.list(), ctx.filters(), (n) => hasLiveEndpoints(n.id));
    ctx.send(list.map((n) => networkView(n)));
  });

  router.add('GET', '/networks/{id}', (ctx) => {
    const id = ctx.params.id!;
    parseGoBool('verbose', ctx.query.get('verbose')); // accepted; there are no services to detail
    const n = manager.get(id);
    const scope = ctx.query.get('scope');
    if (scope && scope !== 'local') throw notFoundError(`network ${id} not found`);
    ctx.send(networkView(n, manager.containersOn(n.id)));
  });

  router.add('POST', '/networks/create', async (ctx) => {
    const req = parseCreateRequest(await ctx.json());
    const n = await manager.createNetwork(req);
    ctx.send({ Id: n.id, Warning: '' }, 201);
  });

  router.add('DELETE', '/networks/{id}', async (ctx) => {
    await manager.removeNetwork(ctx.params.id!);
    ctx.noContent();
  });

  router.add('POST', '/networks/{id}/connect', async (ctx) => {
    const { container, config } = parseConnectRequest(await ctx.json());
    await manager.connect(ctx.params.id!, container, config);
    ok(ctx);
  });

  router.add('POST', '/networks/{id}/disconnect', async (ctx) => {
    const { container, force } = parseDisconnectRequest(await ctx.json());
    await manager.disconnect(ctx.params.id!, container, force);
    ok(ctx);
  });

  router.add('POST', '/networks/prune', async (ctx) => {
    const keep = pruneMatcher(ctx.filters(), Date.now());
    const names = await manager.prune(keep);
    // The manager emitted a destroy per network; dockerd then reports the prune itself (no space to reclaim).
    daemon.events.emit({ Type: 'network', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: '0' } } });
    // dockerd's report holds a nil slice when nothing went: null.
    ctx.send({ NetworksDeleted: names.length > 0 ? names : null });
  });
}
