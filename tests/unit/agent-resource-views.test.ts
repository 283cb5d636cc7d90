// skiff-agent's conversions for Images, Volumes and Networks (vm-agent/agent/services/resource-views.ts): skiffd's
// Docker API answers, captured from a real skiffd (busybox loaded and tagged 127.0.0.1:5000/x:1, networks net1 with
// a subnet and net2 internal, volume vol1 used by a running and a created container, one anonymous volume), into
// skiff.agent.v1 messages; and the request pieces: references, registry auth, filters, the network create body.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  containersPerImage,
  dockerFilters,
  historyEntry,
  imagePruneResult,
  imageSummary,
  networkCreateBody,
  networkMembers,
  networkView,
  progressError,
  pullErrorCode,
  pullProgress,
  pulledRef,
  pullQuery,
  registryAuthHeader,
  removeImageResult,
  splitRepoTag,
  volumePruneResult,
  volumeSizes,
  volumeUsers,
  volumeView,
  type EngineContainer,
  type EngineNetwork,
  type EngineVolume,
} from '../../vm-agent/agent/services/resource-views.js';

const IMAGE_ID = 'sha256:1205cb75a980634377c86eacd88cfd94efd6a987b944ace21ec449a252f0e32d';
const NET1_ID = '2999a9c37116dcd6c3a8aff1d0796415bbc68510c47d0824915fcdf1bf4f9686';
const BRIDGE_ID = '08e0c6f7644810a4c8a6fce1a7bade698e36235c0c2bda029e4c820291d37734';
const ANON = 'b56adcf2859d4bb2053d7eae6edab856f3773f2675efb4c0182b474a96531126';

// GET /containers/json?all=1 (trimmed to the fields the views read, values as skiffd sent them)
const containers: EngineContainer[] = [
  {
    Id: 'c7bed63b62190a6e5d349a44e34c456dcc1b30202e3de4f9439512c87f09153c',
    Names: ['/stopped'],
    ImageID: IMAGE_ID,
    State: 'created',
    NetworkSettings: { Networks: { bridge: { NetworkID: BRIDGE_ID } } },
    Mounts: [{ Type: 'volume', Name: 'vol1' }],
  },
  {
    Id: '6dd5dfc8d29af2c534e8addf68210228970247aa3045f1a776079d71accc6193',
    Names: ['/web'],
    ImageID: IMAGE_ID,
    State: 'running',
    NetworkSettings: { Networks: { net1: { NetworkID: NET1_ID } } },
    Mounts: [
      { Type: 'volume', Name: 'vol1' },
      { Type: 'volume', Name: ANON },
      { Type: 'bind', Name: '' },
    ],
  },
];
const running = containers.filter((c) => c.State === 'running');

describe('images', () => {
  const listed = {
    Id: IMAGE_ID,
    ParentId: '',
    RepoTags: ['127.0.0.1:5000/x:1', 'busybox:latest'],
    RepoDigests: [],
    Created: 1704067200,
    Size: 2140160,
    SharedSize: -1,
    Labels: {},
    Containers: -1, // the list does not count: the view counts from the containers
  };

  it('counts the containers of any state made from each image', () => {
    const counts = containersPerImage(containers);
    expect(counts.get(IMAGE_ID)).toBe(2);
    expect(imageSummary(listed, counts)).toEqual({
      id: IMAGE_ID,
      repo_tags: ['127.0.0.1:5000/x:1', 'busybox:latest'],
      repo_digests: [],
      created: { seconds: '1704067200', nanos: 0 },
      size: 2140160,
      containers: 2,
      in_use: true,
      dangling: false,
      labels: {},
    });
  });

  it('an image without tags is dangling only when no container uses it', () => {
    const untagged = { ...listed, RepoTags: ['<none>:<none>'], RepoDigests: ['<none>@<none>'], Labels: null };
    const free = imageSummary(untagged, new Map());
    expect(free).toMatchObject({ repo_tags: [], repo_digests: [], dangling: true, in_use: false, containers: 0 });
    expect(free.labels).toEqual({});
    expect(imageSummary({ ...untagged, RepoTags: [] }, new Map()).dangling).toBe(true);
    expect(imageSummary(untagged, containersPerImage(containers)).dangling).toBe(false);
    expect(imageSummary(listed, new Map()).dangling).toBe(false);
  });

  it('history entries', () => {
    const item = {
      Id: IMAGE_ID,
      Created: 1704067200,
      CreatedBy: 'busybox-static (skiff tests)',
      Tags: ['127.0.0.1:5000/x:1', 'busybox:latest'],
      Size: 2140160,
      Comment: '',
    };
    expect(historyEntry(item)).toEqual({
      id: IMAGE_ID,
      created: { seconds: '1704067200', nanos: 0 },
      created_by: 'busybox-static (skiff tests)',
      size: 2140160,
      comment: '',
      tags: ['127.0.0.1:5000/x:1', 'busybox:latest'],
    });
    expect(historyEntry({ ...item, Id: '<missing>', Tags: null, Created: 0 })).toMatchObject({
      id: '<missing>',
      created: null,
      tags: [],
    });
  });

  it('splits repo[:tag] at the tag, not at a registry port', () => {
    expect(splitRepoTag('127.0.0.1:5000/x:1')).toEqual({ repo: '127.0.0.1:5000/x', tag: '1' });
    expect(splitRepoTag('127.0.0.1:5000/x')).toEqual({ repo: '127.0.0.1:5000/x', tag: '' });
    expect(splitRepoTag('busybox:latest')).toEqual({ repo: 'busybox', tag: 'latest' });
    expect(splitRepoTag('team/app')).toEqual({ repo: 'team/app', tag: '' });
    expect(splitRepoTag('localhost:5000/team/app:v1.2')).toEqual({ repo: 'localhost:5000/team/app', tag: 'v1.2' });
  });

  it('a pull reference as fromImage and tag (latest by default, the digest when there is one)', () => {
    const digest = 'sha256:e8b8ff6221d46ba180f417b8be4f623e763857168d98c41a706f37faa0a1294e';
    expect(pullQuery('busybox')).toEqual({ fromImage: 'busybox', tag: 'latest' });
    expect(pullQuery('127.0.0.1:5000/bb:1')).toEqual({ fromImage: '127.0.0.1:5000/bb', tag: '1' });
    expect(pullQuery('127.0.0.1:5000/bb')).toEqual({ fromImage: '127.0.0.1:5000/bb', tag: 'latest' });
    expect(pullQuery(`127.0.0.1:5000/bb@${digest}`)).toEqual({ fromImage: '127.0.0.1:5000/bb', tag: digest });
    expect(pullQuery(`bb:1@${digest}`)).toEqual({ fromImage: 'bb', tag: digest });
    expect(pulledRef('127.0.0.1:5000/bb')).toBe('127.0.0.1:5000/bb:latest');
    expect(pulledRef(`bb:1@${digest}`)).toBe(`bb@${digest}`);
  });

  it('X-Registry-Auth: base64url of the AuthConfig JSON, only with credentials', () => {
    expect(registryAuthHeader(null)).toBeUndefined();
    expect(registryAuthHeader({ username: '', password: '', server: 'r:5001', identity_token: '' })).toBeUndefined();
    const header = registryAuthHeader({ username: 'user', password: 'p+/?ss', server: '127.0.0.1:5001' })!;
    expect(header).not.toMatch(/[+/=]/);
    expect(JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))).toEqual({
      username: 'user',
      password: 'p+/?ss',
      serveraddress: '127.0.0.1:5001',
    });
    const token = registryAuthHeader({ identity_token: 'tok', server: 'r' })!;
    expect(JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))).toEqual({
      identitytoken: 'tok',
      serveraddress: 'r',
    });
  });

  it('pull progress lines (as skiffd streamed a pull from a local registry)', () => {
    const lines = [
      { status: 'Pulling from bb', id: '1' },
      { status: 'Pulling fs layer', progressDetail: {}, id: 'a71a737c341f' },
      {
        status: 'Downloading',
        progressDetail: { current: 65136, total: 2140160 },
        progress: '[=>    ]  65.14kB/2.14MB 12s',
        id: 'a71a737c341f',
      },
      { status: 'Extracting', id: 'a71a737c341f' },
      { status: 'Pull complete', id: 'a71a737c341f' },
      { status: 'Digest: sha256:e8b8ff6221d46ba180f417b8be4f623e763857168d98c41a706f37faa0a1294e' },
      { status: 'Status: Downloaded newer image for 127.0.0.1:5000/bb:1' },
    ];
    const msgs = lines.map(pullProgress);
    expect(msgs[0]).toEqual({ layer: '', status: 'Pulling from bb', current: 0, total: 0, image_id: '' });
    expect(msgs[1]).toEqual({ layer: 'a71a737c341f', status: 'Pulling fs layer', current: 0, total: 0, image_id: '' });
    expect(msgs[2]).toMatchObject({ layer: 'a71a737c341f', status: 'Downloading', current: 65136, total: 2140160 });
    expect(msgs[4]).toMatchObject({ layer: 'a71a737c341f', status: 'Pull complete' });
    expect(msgs[5]).toMatchObject({ layer: '', status: expect.stringMatching(/^Digest: sha256:/) });
    expect(msgs[6]).toMatchObject({ layer: '' });
    expect(lines.map(progressError)).toEqual(lines.map(() => undefined));
    expect(pullProgress({ id: 'x' })).toBeNull();
  });

  it('pull errors: the message, and the code it calls for', () => {
    const line = { errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' };
    expect(progressError(line)).toBe('unexpected EOF');
    expect(progressError({ error: 'old style' })).toBe('old style');
    expect(progressError({ errorDetail: {} })).toBe('the pull failed');
    // skiffd answers these before streaming, with these statuses and messages
    expect(pullErrorCode('manifest for 127.0.0.1:5000/bb:2 not found: manifest unknown: manifest unknown', 404)).toBe(
      status.NOT_FOUND,
    );
    const denied =
      "pull access denied for 127.0.0.1:5001/bb, repository does not exist or may require 'docker login': " +
      'unauthorized: authentication required';
    expect(pullErrorCode(denied, 404)).toBe(status.UNAUTHENTICATED);
    expect(pullErrorCode('unauthorized: authentication required')).toBe(status.UNAUTHENTICATED);
    expect(pullErrorCode('anything', 401)).toBe(status.UNAUTHENTICATED);
    expect(pullErrorCode('manifest unknown: manifest unknown')).toBe(status.NOT_FOUND);
    expect(pullErrorCode('denied: requested access to the resource is denied')).toBe(status.PERMISSION_DENIED);
    expect(pullErrorCode('invalid reference format', 400)).toBe(status.INVALID_ARGUMENT);
    const refused =
      'Get "http://127.0.0.1:5009/v2/bb/manifests/1": dial tcp 127.0.0.1:5009: connect: connection refused';
    expect(pullErrorCode(refused, 500)).toBe(status.INTERNAL);
    expect(pullErrorCode('unexpected EOF')).toBe(status.INTERNAL);
  });

  it('remove and prune answers', () => {
    expect(
      removeImageResult([
        { Untagged: '127.0.0.1:5000/bb:1' },
        { Untagged: 'busybox:latest' },
        { Deleted: IMAGE_ID },
        { Deleted: 'sha256:a71a737c341f2ba734cae1b0123b71365c6d246f6fee469315edfaeeebeea3a6' },
      ]),
    ).toEqual({
      untagged: ['127.0.0.1:5000/bb:1', 'busybox:latest'],
      deleted: [IMAGE_ID, 'sha256:a71a737c341f2ba734cae1b0123b71365c6d246f6fee469315edfaeeebeea3a6'],
    });
    expect(removeImageResult(null)).toEqual({ untagged: [], deleted: [] });
    expect(imagePruneResult({ ImagesDeleted: null, SpaceReclaimed: 0 })).toEqual({ deleted: [], space_reclaimed: 0 });
    expect(
      imagePruneResult({ ImagesDeleted: [{ Untagged: 'a:1' }, { Deleted: IMAGE_ID }], SpaceReclaimed: 2140160 }),
    ).toEqual({ deleted: [IMAGE_ID], space_reclaimed: 2140160 });
  });
});

describe('volumes', () => {
  const vol1: EngineVolume = {
    CreatedAt: '2026-12-03T14:29:21Z',
    Driver: 'local',
    Labels: { v: '1' },
    Mountpoint: '/tmp/skiffd-H8qIZC/lib/daemon/volumes/vol1/_data',
    Name: 'vol1',
    Options: null,
  };
  const anon: EngineVolume = {
    CreatedAt: '2026-12-03T14:29:21Z',
    Driver: 'local',
    Labels: { 'com.docker.volume.anonymous': '' },
    Mountpoint: `/tmp/skiffd-H8qIZC/lib/daemon/volumes/${ANON}/_data`,
    Name: ANON,
    Options: null,
  };
  const df = {
    Volumes: [
      { ...vol1, UsageData: { Size: 4096, RefCount: 2 } },
      { ...anon, UsageData: { Size: -1, RefCount: 1 } },
    ],
  };

  it('size from system df, users from the containers of any state, anonymous from the label', () => {
    const sizes = volumeSizes(df);
    const users = volumeUsers(containers);
    expect(users.get('vol1')).toEqual(['stopped', 'web']);
    expect(volumeView(vol1, sizes, users)).toEqual({
      name: 'vol1',
      driver: 'local',
      mountpoint: '/tmp/skiffd-H8qIZC/lib/daemon/volumes/vol1/_data',
      created: { seconds: String(Date.parse('2026-12-03T14:29:21Z') / 1000), nanos: 0 },
      labels: { v: '1' },
      options: {},
      size: 4096,
      users: ['stopped', 'web'],
      anonymous: false,
    });
    expect(volumeView(anon, sizes, users)).toMatchObject({ size: -1, users: ['web'], anonymous: true });
  });

  it('a volume df does not know yet is -1 and unused', () => {
    const v = volumeView({ ...vol1, Name: 'new', Labels: null }, volumeSizes(undefined), new Map());
    expect(v).toMatchObject({ name: 'new', size: -1, users: [], labels: {}, anonymous: false });
  });

  it('prune answer', () => {
    expect(volumePruneResult({ VolumesDeleted: null, SpaceReclaimed: 0 })).toEqual({ deleted: [], space_reclaimed: 0 });
    expect(volumePruneResult({ VolumesDeleted: ['vol1', ANON], SpaceReclaimed: 12 })).toEqual({
      deleted: ['vol1', ANON],
      space_reclaimed: 12,
    });
  });
});

describe('networks', () => {
  const bridge: EngineNetwork = {
    Name: 'bridge',
    Id: BRIDGE_ID,
    Created: '2026-12-03T14:29:21.190574189Z',
    Driver: 'bridge',
    IPAM: { Config: [{ Subnet: '192.168.215.0/24', Gateway: '192.168.215.1' }] },
    Internal: false,
    Options: {
      'com.docker.network.bridge.default_bridge': 'true',
      'com.docker.network.bridge.name': 'skiff0',
    },
    Labels: {},
  };
  const host: EngineNetwork = { Name: 'host', Id: 'h', Driver: 'host', IPAM: { Config: [] }, Options: {}, Labels: {} };
  const none: EngineNetwork = { Name: 'none', Id: 'n', Driver: 'null', IPAM: { Config: [] }, Options: {}, Labels: {} };
  const net1: EngineNetwork = {
    Name: 'net1',
    Id: NET1_ID,
    Created: '2026-12-03T14:29:21.621780407Z',
    Driver: 'bridge',
    IPAM: { Config: [{ Subnet: '10.99.0.0/24', Gateway: '10.99.0.1' }] },
    Internal: false,
    Options: {},
    Labels: { a: 'b' },
  };

  it('a user network: subnet and gateway from IPAM, the running containers on it', () => {
    const members = networkMembers(running);
    expect(networkView(net1, members)).toEqual({
      id: NET1_ID,
      name: 'net1',
      driver: 'bridge',
      subnet: '10.99.0.0/24',
      gateway: '10.99.0.1',
      internal: false,
      labels: { a: 'b' },
      containers: ['web'],
      created: { seconds: String(Date.parse('2026-12-03T14:29:21Z') / 1000), nanos: 621780407 },
      builtin: false,
    });
  });

  it('stopped containers are not on a network; bridge, host and none are builtin', () => {
    const members = networkMembers(running);
    expect(networkView(bridge, members)).toMatchObject({ containers: [], builtin: true, subnet: '192.168.215.0/24' });
    expect(networkView(host, members)).toMatchObject({ builtin: true, subnet: '', gateway: '', created: null });
    expect(networkView(none, members).builtin).toBe(true);
    // the default bridge under another name is still the engine's own
    expect(networkView({ ...bridge, Name: 'docker0' }, members).builtin).toBe(true);
    expect(networkView({ ...net1, Internal: true, Labels: null }, members)).toMatchObject({
      internal: true,
      labels: {},
    });
  });

  it('members match by network id, and by name when an endpoint has no id', () => {
    const members = networkMembers([
      { Id: 'a', Names: ['/one'], NetworkSettings: { Networks: { net1: { NetworkID: '' } } } },
      { Id: 'bbbbbbbbbbbbbbbb', Names: [], NetworkSettings: { Networks: { other: { NetworkID: NET1_ID } } } },
    ]);
    expect(networkView(net1, members).containers).toEqual(['bbbbbbbbbbbb', 'one']);
  });

  it('the create body: a bridge, with IPAM only when a subnet is given', () => {
    expect(networkCreateBody({ name: 'n', subnet: '', gateway: '', internal: false, labels: {} })).toEqual({
      Name: 'n',
      Driver: 'bridge',
      Internal: false,
      Labels: {},
    });
    expect(
      networkCreateBody({
        name: 'n',
        subnet: '10.5.0.0/16',
        gateway: '10.5.0.254',
        internal: true,
        labels: { x: 'y' },
      }),
    ).toEqual({
      Name: 'n',
      Driver: 'bridge',
      Internal: true,
      Labels: { x: 'y' },
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.5.0.0/16', Gateway: '10.5.0.254' }] },
    });
    expect(networkCreateBody({ name: 'n', subnet: '10.5.0.0/16' }).IPAM).toEqual({
      Driver: 'default',
      Config: [{ Subnet: '10.5.0.0/16' }],
    });
  });
});

describe('filters', () => {
  it('StringLists become Docker filters; empty ones are left out', () => {
    expect(dockerFilters(undefined)).toBeUndefined();
    expect(dockerFilters({ dangling: { values: [] } })).toBeUndefined();
    expect(dockerFilters({ dangling: { values: ['true'] }, label: { values: ['a=b', 'c'] } })).toEqual({
      dangling: ['true'],
      label: ['a=b', 'c'],
    });
  });
});
