// Loading our .proto files at run time (proto-loader) and the options every server and client uses with them.
// The files are found next to the bundle (dist/proto, the build copies proto/ there) or in the source tree.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

export const protoLoaderOptions: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The directory holding our .proto files: $SKIFF_PROTO_DIR, dist/proto beside dist/bin, or the repo's proto/. */
export function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.SKIFF_PROTO_DIR, join(here, '../proto'), join(here, '../../proto')];
  for (const c of candidates) if (c && existsSync(join(c, 'supervisor.proto'))) return c;
  throw new Error(`proto files not found (looked in ${candidates.filter(Boolean).join(', ')}); set SKIFF_PROTO_DIR`);
}

/** Load `<protoDir>/<file>` and return the grpc object tree. */
export function loadProto(file: string): GrpcObject {
  const def = loadSync(join(protoDir(), file), { ...protoLoaderOptions, includeDirs: [protoDir()] });
  return loadPackageDefinition(def);
}
