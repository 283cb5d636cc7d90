// `npm start`: builds what is out of date, then says what Skiff is and what can be run today.
// There is no dashboard yet (a later issue brings it: then this starts Electron, or serves the dashboard in a
// browser when no Electron binary is present). Exits 0 when the build is good, 1 when it fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runtime = join(root, 'dist', 'bin', 'skiff-runtime');
const addon = join(root, 'dist', 'native', 'skiff_native.node');

/** Newest modification time of the native sources (native/ but native/build/). */
function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'build') newest = Math.max(newest, newestSource(p));
    } else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

const built = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const sources = newestSource(join(root, 'native'));
if (built(runtime) < sources || built(addon) < sources) {
  console.log('Building the native programs (npm run build:native) ...');
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const out = `${r.stdout}${r.stderr}`.trimEnd().split('\n');
    console.error(out.slice(-40).join('\n'));
    console.error(
      '\nThe build failed (above): see the status table in README.md.\n' +
        'Build dependencies come from `sudo bash .ci/install-deps`.',
    );
    process.exit(1);
  }
}

// The TS services are bundled by esbuild in well under a second: always rebuild them.
const ts = spawnSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs')], { cwd: root, encoding: 'utf8' });
if (ts.status !== 0) {
  console.error(`${ts.stdout}${ts.stderr}`.trimEnd());
  console.error('\nBundling the TypeScript services failed (above).');
  process.exit(1);
}

const version = spawnSync(runtime, ['--version'], { encoding: 'utf8' });
const versionText =
  version.status === 0 ? version.stdout.trim().split('\n')[0] : `(--version failed: exit ${version.status})`;
const rel = relative(process.cwd(), runtime) || runtime;

console.log(`
Skiff runs Linux containers for developers: one desktop app that boots a small Linux VM, runs its own
container engine inside it, shows a dashboard and a tray menu, and exposes a Docker-compatible socket
so that the docker CLI and everything that speaks the Docker Engine API just work.

What you can run today
  ${rel}   ${versionText}
    the OCI runtime (a drop-in for runc's command line). In a root shell (bash), on a busybox bundle:

      rm -rf /tmp/bb && mkdir -p /tmp/bb/rootfs/{bin,sbin,usr/bin,usr/sbin} && cp /bin/busybox /tmp/bb/rootfs/bin/
      chroot /tmp/bb/rootfs /bin/busybox --install -s
      cd /tmp/bb && runc spec && jq '.process.args=["/bin/echo","hello from skiff"] | .process.terminal=false' \\
        config.json > c.json && mv c.json config.json
      ${runtime} create --bundle /tmp/bb demo    # returns once the container's init waits
      ${runtime} start demo                      # prints: hello from skiff
      ${runtime} state demo && ${runtime} delete demo

  ${join(dirname(runtime), 'skiff-agent')} --native
    the whole engine on this Linux host, without a VM: the agent starts skiff-supervisor and skiffd, keeps them
    running, and serves the GUI's gRPC API (proto/agent.proto). As root:

      ${join(dirname(runtime), 'skiff-agent')} --native --root /tmp/skiff/lib --run /tmp/skiff/run &
      export DOCKER_HOST=unix:///tmp/skiff/run/docker.sock
      docker version && docker load -i <an image tar>
      docker network create web && docker run -d --name api --network web -p 8080:80 <image> <server>
      docker run --rm --network web <image> wget -qO- http://api/      # names resolve on user networks
      docker volume create data && docker run --rm -v data:/data <image> sh -c 'echo hi > /data/f'

  npm test                         build, lint and every test tier (native and integration need root)
  npm run bench -- runtime         skiff-runtime beside runc and crun, alternately (root)
  npm run bench -- supervisor      the supervisor beside containerd (root)
  npm run bench -- daemon          skiffd beside dockerd (root; needs Debian's docker.io)
  npm run bench -- network         docker run on the bridge, published-port latency and throughput, beside dockerd

The VM: \`npm run build:vm-image\`, then \`${join(dirname(runtime), 'skiff')} start\` boots it (QEMU) and prints the
docker socket it forwards; \`skiff status\`, \`skiff shell\`, \`skiff stop\`.

Not built yet: the dashboard. When it lands, \`npm start\` opens it (in Electron, or in your browser when no
Electron binary is present).
`);
