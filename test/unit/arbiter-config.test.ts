import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfigText } from '../../node-service/src/config/index.ts';

// The `arbiter:` key (contract, issue 16): exactly the issue's forms parse; mistakes say what to fix.
const dir = mkdtempSync(join(tmpdir(), 'vigil-arbiter-config-'));
writeFileSync(join(dir, 'cluster.key'), 'x'.repeat(44), { mode: 0o600 });
writeFileSync(join(dir, 'admin.token'), 'token-token-token', { mode: 0o600 });
writeFileSync(join(dir, 'ca.pem'), 'ca');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(arbiter: unknown, mode = 'mirror'): string {
  return stringify({
    cluster: 'demo',
    secret_file: 'cluster.key',
    api: { admin_token_file: 'admin.token' },
    nodes: [
      { name: 'node1', addrs: ['198.18.0.1'] },
      { name: 'node2', addrs: ['198.18.0.2'] },
    ],
    modules: [{ name: 'db', mode, id: 1, arbiter }],
  });
}
const parse = (arbiter: unknown, mode?: string) => parseConfigText(config(arbiter, mode), join(dir, 'cluster.yaml')).modules[0].arbiter;
const issues = (arbiter: unknown, mode?: string): string => {
  try {
    parse(arbiter, mode);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a ConfigError');
};

describe('arbiter config', () => {
  it('parses the issue forms with their defaults (durations in ms, files resolved against the config folder)', () => {
    expect(parse({ type: 'etcd', endpoints: ['http://198.18.0.50:2379'], ttl: '3s', key_prefix: '/vigil' })).toEqual({ type: 'etcd', endpoints: ['http://198.18.0.50:2379'], ttl: 3000, key_prefix: '/vigil' });
    expect(parse({ type: 'etcd', endpoints: ['https://e1:2379', 'https://e2:2379'], tls: { ca: 'ca.pem' } })).toMatchObject({ ttl: 3000, key_prefix: '/vigil', tls: { ca: join(dir, 'ca.pem') } });
    expect(parse({ type: 'aws-dynamodb', table: 'T' + 'x'.repeat(3) })).toMatchObject({ type: 'aws-dynamodb', ttl: 10_000 });
    expect(parse({ type: 'azure-blob', account_url: 'https://acct.blob.core.windows.net', container: 'vigil-leases' })).toMatchObject({ ttl: 15_000 });
    expect(parse({ type: 'gcs', bucket: 'my-vigil-leases' })).toMatchObject({ ttl: 10_000 });
  });

  it('names what is wrong: unknown type, bad endpoint, a ttl the store cannot keep, half a TLS pair, missing files, a farm module', () => {
    expect(issues({ type: 'consul', endpoints: [] })).toMatch(/modules\[0\]\.arbiter\.type.*must be one of "etcd", "aws-dynamodb", "azure-blob", "gcs"/);
    expect(issues({ type: 'etcd', endpoints: ['198.18.0.50:2379'] })).toMatch(/must be an etcd client URL, e\.g\. http:\/\/198\.18\.0\.50:2379/);
    expect(issues({ type: 'etcd', endpoints: ['http://e:2379'], ttl: '1s' })).toMatch(/ttl.*between 2s and 60s/);
    expect(issues({ type: 'azure-blob', account_url: 'https://a.blob.core.windows.net', container: 'c1x', ttl: '5s' })).toMatch(/Azure blob leases last 15 to 60 seconds/);
    expect(issues({ type: 'etcd', endpoints: ['http://e:2379'], tls: { cert: 'ca.pem' } })).toMatch(/cert and key go together/);
    expect(issues({ type: 'etcd', endpoints: ['http://e:2379'], tls: { ca: 'nope.pem' } })).toMatch(/arbiter\.tls\.ca.*nope\.pem is not a readable file/);
    expect(issues({ type: 'etcd', endpoints: ['http://e:2379'], key_prefix: 'vigil' })).toMatch(/must start with "\/"/);
    expect(issues({ type: 'etcd', endpoints: ['https://e1:2379', 'http://e2:2379'], tls: { ca: 'ca.pem' } })).toMatch(/arbiter\.endpoints.*with tls, every endpoint must be https:\/\//);
    expect(issues({ type: 'etcd', endpoints: ['http://e:2379'] }, 'farm')).toMatch(/only a mirror module has a primary to arbitrate/);
    expect(issues({ type: 'etcd', endpoints: ['http://e:2379'], tll: '3s' })).toMatch(/unknown key "tll"/);
  });
});
