// registry/auth.ts: WWW-Authenticate parsing, X-Registry-Auth decoding, registry error texts.
import { describe, expect, it } from 'vitest';
import {
  decodeRegistryAuth,
  encodeRegistryAuth,
  errorText,
  mergeScopes,
  parseWwwAuthenticate,
} from '../../vm-agent/daemon/registry/auth.js';

describe('parseWwwAuthenticate', () => {
  it('reads a Bearer challenge with realm, service and scope', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull',
        },
      },
    ]);
  });

  it('reads Basic, several challenges, unquoted values, escapes and odd spacing', () => {
    expect(parseWwwAuthenticate('Basic realm="basic-realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'basic-realm' } },
    ]);
    const cs = parseWwwAuthenticate(
      'Basic realm="a b", Bearer  realm = "https://t/x" , service=reg, error="insufficient_scope", scope="a\\"b"',
    );
    expect(cs).toEqual([
      { scheme: 'basic', params: { realm: 'a b' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', service: 'reg', error: 'insufficient_scope', scope: 'a"b' } },
    ]);
  });

  it('keeps commas inside quoted scopes and lower-cases names', () => {
    expect(parseWwwAuthenticate('BEARER Realm="r",Scope="repository:a:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'r', scope: 'repository:a:pull,push' } },
    ]);
  });

  it('skips token68 values and tolerates empty input', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Negotiate abc==, Basic realm=x')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });
});

describe('X-Registry-Auth', () => {
  it('decodes base64url and standard base64 JSON', () => {
    const a = { username: 'u', password: 'p?>>', serveraddress: '127.0.0.1:5001' };
    expect(decodeRegistryAuth(encodeRegistryAuth(a))).toEqual(a);
    expect(decodeRegistryAuth(Buffer.from(JSON.stringify(a)).toString('base64'))).toEqual(a);
  });

  it('reads identitytoken, capitalised keys and the legacy auth field', () => {
    expect(decodeRegistryAuth(encodeRegistryAuth({ identitytoken: 'tok' }))).toEqual({ identitytoken: 'tok' });
    expect(decodeRegistryAuth(Buffer.from('{"Username":"U","Password":"P"}').toString('base64url'))).toEqual({
      username: 'U',
      password: 'P',
    });
    const legacy = Buffer.from(JSON.stringify({ auth: Buffer.from('me:se:cret').toString('base64') })).toString(
      'base64url',
    );
    expect(decodeRegistryAuth(legacy)).toEqual({ username: 'me', password: 'se:cret' });
  });

  it('ignores empty, {} and garbage', () => {
    expect(decodeRegistryAuth(undefined)).toBeUndefined();
    expect(decodeRegistryAuth('')).toBeUndefined();
    expect(decodeRegistryAuth(Buffer.from('{}').toString('base64url'))).toBeUndefined();
    expect(decodeRegistryAuth('%%%not base64')).toBeUndefined();
  });
});

describe('registry errors and scopes', () => {
  it('words distribution errors as dockerd does', () => {
    expect(errorText('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}', 'x')).toBe(
      'manifest unknown: manifest unknown',
    );
    expect(errorText('{"details":"incorrect username or password"}', 'x')).toBe('incorrect username or password');
    expect(errorText('', 'fallback')).toBe('fallback');
    expect(errorText('<html>oops</html>', 'fallback')).toBe('fallback');
  });

  it('merges scopes without duplicates', () => {
    expect(mergeScopes('repository:a:pull', ['repository:a:pull', 'repository:a:pull,push'], undefined)).toEqual([
      'repository:a:pull',
      'repository:a:pull,push',
    ]);
  });
});
