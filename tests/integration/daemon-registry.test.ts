// skiffd's registry module (issue 4) with the real docker CLI against Debian's docker-registry: push from one
// daemon, pull back into a fresh one, run it; Docker v2 schema 2, OCI and manifest-list images; `docker login`
// to a registry with htpasswd auth (right and wrong password), push/pull there; errors for a missing tag and an
// unknown repository; a pull cut off by killing the registry keeps nothing. skiffd runs in its own network
// namespace, so each registry runs there too (nsenter -n); a fresh daemon serves the same registry storage
// from a registry process in its own namespace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../native/helpers.js';
import { busyboxArchive, type DaemonHarness, startDaemon } from './daemon-harness.js';

requireRoot();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'skiff-registry-'));
const OPEN = '127.0.0.1:5000';
const AUTHED = '127.0.0.1:5001';
const SLOW = '127.0.0.1:5002';

interface Registry {
  proc: ChildProcess;
  addr: string;
}

function registryConfig(name: string, addr: string, auth: boolean): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'data'), { recursive: true });
  if (auth && !existsSync(join(dir, 'htpasswd'))) {
    const h = spawnSync('htpasswd', ['-Bbn', 'user', 'pass'], { encoding: 'utf8' });
    if (h.status !== 0) throw new Error(`htpasswd: ${h.stderr}`);
    writeFileSync(join(dir, 'htpasswd'), h.stdout);
  }
  const cfg = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${addr}`,
    '  secret: skiff-tests',
    ...(auth ? ['auth:', '  htpasswd:', '    realm: basic-realm', `    path: ${join(dir, 'htpasswd')}`] : []),
  ].join('\n');
  const file = join(dir, `config-${addr.replace(/[:.]/g, '_')}.yml`);
  writeFileSync(file, cfg + '\n');
  return file;
}

/** Run `cmd` in the daemon's network namespace (and mount namespace: same files). */
function inNs(d: DaemonHarness, cmd: string[]): { status: number | null; stdout: string; stderr: string } {
  return d.nsenter(cmd);
}

async function startRegistry(d: DaemonHarness, name: string, addr: string, auth = false): Promise<Registry> {
  const cfg = registryConfig(name, addr, auth);
  const log = join(work, name, `registry-${d.nsPid}.log`);
  const proc = spawn('nsenter', ['-t', String(d.nsPid), '-n', '--', '/usr/bin/docker-registry', 'serve', cfg], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr!.on('data', (c: Buffer) => writeFileSync(log, c, { flag: 'a' }));
  for (let i = 0; i < 200; i++) {
    const r = inNs(d, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${addr}/v2/`]);
    if (r.stdout === '200' || r.stdout === '401') return { proc, addr };
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`docker-registry ${name} did not start: ${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
}

async function stopRegistry(r: Registry | undefined): Promise<void> {
  if (!r || r.proc.exitCode !== null || r.proc.signalCode !== null) return;
  const gone = new Promise((res) => r.proc.once('exit', res));
  r.proc.kill('SIGKILL');
  await gone;
}

/** POST a raw API call on the daemon's socket; the whole body (for the progress stream's exact bytes). */
function rawPost(
  d: DaemonHarness,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: d.socket, path, method: 'POST', headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const ok = async (d: DaemonHarness, args: string[]): Promise<string> => {
  const r = await d.docker(args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code}\n${r.stderr}\n${r.stdout}\n${d.log(30)}`);
  return r.stdout;
};

/** Blobs, snapshots and ingest leftovers in a daemon's image store. */
function storeState(d: DaemonHarness): { blobs: string[]; ingest: string[]; snapshots: string[] } {
  const ls = (p: string) => (existsSync(p) ? readdirSync(p) : []);
  const root = join(d.dataRoot, 'images');
  return {
    blobs: ls(join(root, 'blobs', 'sha256')).sort(),
    ingest: ls(join(root, 'blobs', 'ingest')),
    snapshots: ls(join(root, 'snapshots')).sort(),
  };
}

let a: DaemonHarness; // pushes
let b: DaemonHarness; // a fresh daemon that pulls
let regA: Registry | undefined;
let authA: Registry | undefined;
let regB: Registry | undefined;
let authB: Registry | undefined;
let imageId: string;

beforeAll(async () => {
  a = await startDaemon();
  b = await startDaemon();
  regA = await startRegistry(a, 'open', OPEN);
  authA = await startRegistry(a, 'auth', AUTHED, true);
  await ok(a, ['load', '-i', busyboxArchive()]);
  imageId = (await ok(a, ['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim();
});

afterAll(async () => {
  for (const r of [regA, authA, regB, authB]) await stopRegistry(r);
  await a?.stop();
  await b?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('push and pull against an open registry', () => {
  it('pushes a loaded image with dockerd-style progress', async () => {
    await ok(a, ['tag', 'busybox', `${OPEN}/busybox:latest`]);
    const out = await ok(a, ['push', `${OPEN}/busybox:latest`]);
    expect(out).toContain(`The push refers to repository [${OPEN}/busybox]`);
    expect(out).toMatch(/[0-9a-f]{12}: Pushed/);
    expect(out).toMatch(/latest: digest: sha256:[0-9a-f]{64} size: \d+/);
    // the registry has it
    const tags = inNs(a, ['curl', '-fsS', `http://${OPEN}/v2/busybox/tags/list`]);
    expect(JSON.parse(tags.stdout)).toEqual({ name: 'busybox', tags: ['latest'] });
    // a second push finds every layer there
    const again = await ok(a, ['push', `${OPEN}/busybox:latest`]);
    expect(again).toMatch(/[0-9a-f]{12}: Layer already exists/);
  });

  it('push --all-tags pushes every tag of the repository; a missing image or registry gives dockerd’s errors', async () => {
    await ok(a, ['tag', 'busybox', `${OPEN}/multi:a`]);
    await ok(a, ['tag', 'busybox', `${OPEN}/multi:b`]);
    const out = await ok(a, ['push', '--all-tags', `${OPEN}/multi`]);
    expect(out).toMatch(/^a: digest: sha256:[0-9a-f]{64} size: \d+$/m);
    expect(out).toMatch(/^b: digest: sha256:[0-9a-f]{64} size: \d+$/m);
    const tags = inNs(a, ['curl', '-fsS', `http://${OPEN}/v2/multi/tags/list`]);
    expect((JSON.parse(tags.stdout) as { tags: string[] }).tags.sort()).toEqual(['a', 'b']);
    const none = await a.docker(['push', `${OPEN}/none:1`]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe(
      `Error response from daemon: An image does not exist locally with the tag: ${OPEN}/none`,
    );
    const down = await a.docker(['pull', '127.0.0.1:5999/x:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('dial tcp 127.0.0.1:5999: connect: connection refused');
  });

  it('pulls it back into a fresh daemon (same image id), then says it is up to date', async () => {
    regB = await startRegistry(b, 'open', OPEN); // the same storage, served in b's namespace
    const out = await ok(b, ['pull', `${OPEN}/busybox:latest`]);
    expect(out).toMatch(/^latest: Pulling from busybox$/m);
    expect(out).toMatch(/^[0-9a-f]{12}: Pull complete$/m);
    expect(out).toMatch(/^Digest: sha256:[0-9a-f]{64}$/m);
    expect(out).toContain(`Status: Downloaded newer image for ${OPEN}/busybox:latest`);
    expect(out.trim().split('\n').at(-1)).toBe(`${OPEN}/busybox:latest`);
    const [img] = JSON.parse(await ok(b, ['image', 'inspect', `${OPEN}/busybox`])) as Array<{
      Id: string;
      RepoTags: string[];
      RepoDigests: string[];
    }>;
    expect(img!.Id).toBe(imageId);
    expect(img!.RepoTags).toEqual([`${OPEN}/busybox:latest`]);
    expect(img!.RepoDigests[0]).toMatch(new RegExp(`^${OPEN}/busybox@sha256:[0-9a-f]{64}$`));
    const again = await ok(b, ['pull', `${OPEN}/busybox:latest`]);
    expect(again).toContain(`Status: Image is up to date for ${OPEN}/busybox:latest`);
    expect(again).toMatch(/^[0-9a-f]{12}: Already exists$/m);
    expect(again).not.toMatch(/Extracting|Pull complete/);
  });

  it('runs the pulled image', async () => {
    expect(await ok(b, ['run', '--rm', `${OPEN}/busybox`, 'echo', 'pulled'])).toBe('pulled\n');
  });

  it('streams JSON lines ending in \\r\\n, by digest too', async () => {
    const digest = (await ok(b, ['image', 'inspect', '-f', '{{index .RepoDigests 0}}', `${OPEN}/busybox`])).trim();
    await ok(b, ['rmi', `${OPEN}/busybox:latest`]);
    const tagPart = digest.split('@')[1]!;
    const r = await rawPost(
      b,
      `/v1.50/images/create?fromImage=${encodeURIComponent(`${OPEN}/busybox`)}&tag=${tagPart}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.endsWith('\r\n')).toBe(true);
    const lines = r.body
      .trimEnd()
      .split('\r\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ status: 'Pulling from busybox', id: tagPart });
    const statuses = lines.map((l) => l.status);
    expect(statuses).toContain('Pulling fs layer');
    expect(statuses).toContain('Download complete');
    const dl = lines.find((l) => l.status === 'Downloading');
    expect(dl).toMatchObject({ progressDetail: { current: expect.any(Number), total: expect.any(Number) } });
    expect(dl!.progress).toMatch(/^\[=*>\s*\]/);
    expect(statuses.at(-2)).toBe(`Digest: ${tagPart}`);
    expect(statuses.at(-1)).toBe(`Status: Downloaded newer image for ${OPEN}/busybox@${tagPart}`);
    expect((await ok(b, ['image', 'inspect', '-f', '{{.Id}}', digest])).trim()).toBe(imageId);
  });

  it('pulls OCI manifests and picks linux/<host arch> from a manifest list', async () => {
    // skopeo puts the same image as an OCI manifest with gzip layers
    const ociTar = join(work, 'busybox.tar');
    writeFileSync(ociTar, readFileSync(busyboxArchive()));
    const cp = inNs(a, [
      'skopeo',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--format',
      'oci',
      '--dest-compress',
      `docker-archive:${ociTar}`,
      `docker://${OPEN}/oci:1`,
    ]);
    expect(cp.status, cp.stderr).toBe(0);
    const raw = inNs(a, [
      'curl',
      '-fsS',
      '-H',
      'Accept: application/vnd.oci.image.manifest.v1+json',
      `http://${OPEN}/v2/oci/manifests/1`,
    ]);
    const manifest = raw.stdout;
    expect(JSON.parse(manifest).mediaType ?? 'application/vnd.oci.image.manifest.v1+json').toBe(
      'application/vnd.oci.image.manifest.v1+json',
    );
    const mdigest = 'sha256:' + createHash('sha256').update(manifest).digest('hex');
    const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    const other = arch === 'amd64' ? 'arm64' : 'amd64';
    // an index: another arch first (a different manifest: the OCI one pushed as an unknown tag), an attestation
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: mdigest,
          size: manifest.length,
          platform: { os: 'linux', architecture: other },
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: mdigest,
          size: manifest.length,
          platform: { os: 'unknown', architecture: 'unknown' },
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: mdigest,
          size: manifest.length,
          platform: { os: 'linux', architecture: arch },
        },
      ],
    });
    const listFile = join(work, 'index.json');
    writeFileSync(listFile, list);
    const put = inNs(a, [
      'curl',
      '-fsS',
      '-X',
      'PUT',
      '-H',
      'Content-Type: application/vnd.oci.image.index.v1+json',
      '--data-binary',
      `@${listFile}`,
      `http://${OPEN}/v2/oci/manifests/multi`,
    ]);
    expect(put.status, put.stderr).toBe(0);

    const out = await ok(b, ['pull', `${OPEN}/oci:1`]);
    expect(out).toContain(`Status: Downloaded newer image for ${OPEN}/oci:1`);
    const listDigest = 'sha256:' + createHash('sha256').update(list).digest('hex');
    const multi = await ok(b, ['pull', `${OPEN}/oci:multi`]);
    expect(multi).toContain(`Digest: ${listDigest}`);
    const id = (await ok(b, ['image', 'inspect', '-f', '{{.Id}}', `${OPEN}/oci:multi`])).trim();
    expect(id).toBe((await ok(b, ['image', 'inspect', '-f', '{{.Id}}', `${OPEN}/oci:1`])).trim());
    // only the other arch: no match
    const onlyOther = JSON.stringify({ ...JSON.parse(list), manifests: [JSON.parse(list).manifests[0]] });
    writeFileSync(listFile, onlyOther);
    inNs(a, [
      'curl',
      '-fsS',
      '-X',
      'PUT',
      '-H',
      'Content-Type: application/vnd.oci.image.index.v1+json',
      '--data-binary',
      `@${listFile}`,
      `http://${OPEN}/v2/oci/manifests/other`,
    ]);
    const r = await b.docker(['pull', `${OPEN}/oci:other`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`no matching manifest for linux/${arch} in the manifest list entries`);
  });

  it('answers a missing tag and an unknown repository with dockerd’s errors, keeping nothing', async () => {
    const before = storeState(b);
    const r = await b.docker(['pull', `${OPEN}/busybox:nope`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `Error response from daemon: manifest for ${OPEN}/busybox:nope not found: manifest unknown: manifest unknown`,
    );
    const n = await b.docker(['pull', `${OPEN}/nosuch`]);
    expect(n.code).toBe(1);
    expect(n.stderr).toMatch(
      /Error response from daemon: (pull access denied for|manifest for) 127\.0\.0\.1:5000\/nosuch/,
    );
    const run = await b.docker(['run', '--rm', `${OPEN}/busybox:nope`, 'true']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('manifest unknown');
    expect(storeState(b)).toEqual(before);
  });
});

describe('a registry with htpasswd auth', () => {
  it('refuses a push without login', async () => {
    await ok(a, ['tag', 'busybox', `${AUTHED}/secret/busybox:1`]);
    const r = await a.docker(['push', `${AUTHED}/secret/busybox:1`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/unauthorized: authentication required/);
  });

  it('docker login: a wrong password fails with the registry’s answer, the right one succeeds', async () => {
    const bad = await a.docker(['login', AUTHED, '-u', 'user', '-p', 'wrong']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`login attempt to http://${AUTHED}/v2/ failed with status: 401 Unauthorized`);
    const good = await a.docker(['login', AUTHED, '-u', 'user', '-p', 'pass']);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('Login Succeeded');
  });

  it('pushes with the stored credentials and pulls back in a fresh daemon after its own login', async () => {
    const out = await ok(a, ['push', `${AUTHED}/secret/busybox:1`]);
    expect(out).toMatch(/1: digest: sha256:[0-9a-f]{64} size: \d+/);
    authB = await startRegistry(b, 'auth', AUTHED, true);
    const denied = await b.docker(['pull', `${AUTHED}/secret/busybox:1`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/authentication required|docker login/);
    await ok(b, ['login', AUTHED, '-u', 'user', '-p', 'pass']);
    const pulled = await ok(b, ['pull', `${AUTHED}/secret/busybox:1`]);
    expect(pulled).toContain(`Status: Downloaded newer image for ${AUTHED}/secret/busybox:1`);
    expect((await ok(b, ['image', 'inspect', '-f', '{{.Id}}', `${AUTHED}/secret/busybox:1`])).trim()).toBe(imageId);
  });
});

// A token server for `auth: token` (the Docker Hub way): ES256 JWTs with the certificate in x5c; basic
// credentials user/pass get what they ask, anonymous callers pull only.
const TOKEN_SERVER = `import { createServer } from 'node:http';
import { createPrivateKey, sign, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
const [keyFile, certFile, port, issuer] = process.argv.slice(2);
const key = createPrivateKey(readFileSync(keyFile));
const der = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  let who = '';
  if (req.headers.authorization) {
    const [a, b] = Buffer.from(req.headers.authorization.replace(/^Basic /, ''), 'base64').toString().split(':');
    if (a !== 'user' || b !== 'pass') {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    who = a;
  }
  const access = u.searchParams.getAll('scope').flatMap((s) => {
    const m = /^repository:(.+):([a-z,*]+)$/.exec(s);
    if (!m) return [];
    return [{ type: 'repository', name: m[1], actions: m[2].split(',').filter((x) => who !== '' || x === 'pull') }];
  });
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ typ: 'JWT', alg: 'ES256', x5c: [der] });
  const claims = b64({ iss: issuer, sub: who, aud: u.searchParams.get('service'), exp: now + 300, nbf: now - 10,
    iat: now, jti: randomBytes(8).toString('hex'), access });
  const sig = sign('sha256', Buffer.from(head + '.' + claims), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ token: head + '.' + claims + '.' + sig, expires_in: 300 }));
}).listen(Number(port), '127.0.0.1');
`;

describe('a registry with token auth (Bearer challenges, JWTs from a token server)', () => {
  const TOKEN_REG = '127.0.0.1:5003';
  let tokenServer: ChildProcess | undefined;
  let tokenReg: Registry | undefined;

  beforeAll(async () => {
    const dir = join(work, 'token');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const cert = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'].concat([
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=skiff-token',
      ]),
      { encoding: 'utf8' },
    );
    expect(cert.status, cert.stderr).toBe(0);
    writeFileSync(join(dir, 'token.mjs'), TOKEN_SERVER);
    tokenServer = spawn(
      'nsenter',
      ['-t', String(a.nsPid), '-n', '--', process.execPath, join(dir, 'token.mjs')].concat([
        join(dir, 'key.pem'),
        join(dir, 'cert.pem'),
        '5004',
        'skiff-issuer',
      ]),
      { stdio: 'ignore' },
    );
    const cfg = join(dir, 'config.yml');
    writeFileSync(
      cfg,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(dir, 'data')}`,
        'http:',
        `  addr: ${TOKEN_REG}`,
        '  secret: skiff-tests',
        'auth:',
        '  token:',
        '    realm: http://127.0.0.1:5004/token',
        '    service: skiff-test',
        '    issuer: skiff-issuer',
        `    rootcertbundle: ${join(dir, 'cert.pem')}`,
      ].join('\n') + '\n',
    );
    const proc = spawn('nsenter', ['-t', String(a.nsPid), '-n', '--', '/usr/bin/docker-registry', 'serve', cfg], {
      stdio: 'ignore',
    });
    tokenReg = { proc, addr: TOKEN_REG };
    for (let i = 0; i < 200; i++) {
      const r = inNs(a, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${TOKEN_REG}/v2/`]);
      const t = inNs(a, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:5004/token']);
      if (r.stdout === '401' && t.stdout === '200') return;
      await sleep(50);
    }
    throw new Error('the token registry did not start');
  });

  afterAll(async () => {
    await stopRegistry(tokenReg);
    tokenServer?.kill('SIGKILL');
  });

  it('anonymous tokens pull only: a push without login is refused', async () => {
    await ok(a, ['tag', 'busybox', `${TOKEN_REG}/tok/busybox:1`]);
    const r = await a.docker(['push', `${TOKEN_REG}/tok/busybox:1`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/unauthorized|denied/);
  });

  it('login checks the password with the token server; push, then pull after logout (anonymous pull)', async () => {
    const bad = await a.docker(['login', TOKEN_REG, '-u', 'user', '-p', 'wrong']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('unauthorized: incorrect username or password');
    expect((await ok(a, ['login', TOKEN_REG, '-u', 'user', '-p', 'pass'])).trim()).toBe('Login Succeeded');
    const out = await ok(a, ['push', `${TOKEN_REG}/tok/busybox:1`]);
    expect(out).toMatch(/1: digest: sha256:[0-9a-f]{64} size: \d+/);
    await ok(a, ['logout', TOKEN_REG]);
    await ok(a, ['rmi', `${TOKEN_REG}/tok/busybox:1`]);
    const pulled = await ok(a, ['pull', `${TOKEN_REG}/tok/busybox:1`]);
    expect(pulled).toContain(`Status: Downloaded newer image for ${TOKEN_REG}/tok/busybox:1`);
    const missing = await a.docker(['pull', `${TOKEN_REG}/tok/busybox:2`]);
    expect(missing.stderr).toContain('manifest unknown');
  });

  it('dockerode pulls too (X-Registry-Auth from its authconfig)', async () => {
    await ok(a, ['rmi', `${TOKEN_REG}/tok/busybox:1`]);
    const stream = await a.dockerode.pull(`${TOKEN_REG}/tok/busybox:1`, {
      authconfig: { username: 'user', password: 'pass', serveraddress: TOKEN_REG },
    });
    const events = await new Promise<Array<{ status?: string }>>((resolve, reject) =>
      a.dockerode.modem.followProgress(stream, (err: Error | null, out: Array<{ status?: string }>) =>
        err ? reject(err) : resolve(out),
      ),
    );
    expect(events.at(-1)!.status).toBe(`Status: Downloaded newer image for ${TOKEN_REG}/tok/busybox:1`);
  });
});

describe('a pull cut off by killing the registry', () => {
  it('keeps no blob, snapshot or tag', async () => {
    // a 48 MiB random layer, pushed by daemon a
    const rootfs = join(work, 'big-rootfs');
    mkdirSync(rootfs, { recursive: true });
    const dd = spawnSync('dd', ['if=/dev/urandom', `of=${join(rootfs, 'blob')}`, 'bs=1M', 'count=48'], {
      encoding: 'utf8',
    });
    expect(dd.status, dd.stderr).toBe(0);
    const tar = join(work, 'big.tar');
    expect(spawnSync('tar', ['-C', rootfs, '-cf', tar, '.']).status).toBe(0);
    const imp = await a.docker(['import', tar, `${OPEN}/big:1`], { timeoutMs: 120_000 });
    expect(imp.code, imp.stderr).toBe(0);
    await ok(a, ['push', `${OPEN}/big:1`]);

    // b pulls through a slow proxy (so the download takes seconds) from a registry we then kill
    const proxy = join(work, 'slow-proxy.mjs');
    writeFileSync(
      proxy,
      `import net from 'node:net';
net.createServer((c) => {
  const u = net.connect(5000, '127.0.0.1');
  u.on('error', () => c.destroy()); c.on('error', () => u.destroy());
  u.on('close', () => c.destroy()); c.on('close', () => u.destroy());
  c.pipe(u);
  u.on('data', (d) => { u.pause(); let off = 0;
    const step = () => { if (off >= d.length) { u.resume(); return; }
      c.write(d.subarray(off, off + 65536)); off += 65536; setTimeout(step, 10); };
    step(); });
}).listen(5002, '127.0.0.1', () => console.log('ready'));
`,
    );
    const px = spawn('nsenter', ['-t', String(b.nsPid), '-n', '--', process.execPath, proxy], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      // listening before the pull starts (a loaded machine takes more than a moment to start node)
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the slow proxy did not start within 20 s')), 20_000);
        px.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const before = storeState(b);
      const pulling = b.docker(['pull', `${SLOW}/big:1`], { timeoutMs: 120_000 });
      // wait until the layer is being written, then kill the registry
      for (let i = 0; i < 600 && storeState(b).ingest.length === 0; i++) await sleep(50);
      expect(storeState(b).ingest.length).toBeGreaterThan(0);
      await stopRegistry(regB);
      regB = undefined;
      const r = await pulling;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/connection refused|unexpected EOF|reset|terminated|socket/);
      const after = storeState(b);
      expect(after.blobs).toEqual(before.blobs);
      expect(after.snapshots).toEqual(before.snapshots);
      expect(after.ingest).toEqual([]);
      const ls = await ok(b, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
      expect(ls).not.toContain('big');
    } finally {
      px.kill('SIGKILL');
    }
  });
});
