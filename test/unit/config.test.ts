import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, parseConfigText } from '../../node-service/src/config/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
const secret = join(dir, 'cluster.key');
const token = join(dir, 'admin.token');
writeFileSync(secret, 'x'.repeat(44), { mode: 0o600 });
writeFileSync(token, 'token-token-token', { mode: 0o600 });
chmodSync(secret, 0o600);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function valid(): any {
  return {
    cluster: 'demo',
    secret_file: secret,
    state_dir: join(dir, 'state'),
    api: { port: 9010, admin_token_file: token },
    nodes: [
      { name: 'node1', addrs: ['198.18.0.1'] },
      { name: 'node2', addrs: ['198.18.0.2'] },
    ],
    modules: [
      {
        name: 'mirror',
        mode: 'mirror',
        id: 1,
        heartbeat: { pulse: '100ms', timeout: '1s' },
        vip: [{ addr: '198.18.0.100/24', interface: 'eth0' }],
        replication: { dirs: ['/srv/app/data'] },
        checkers: [{ type: 'tcp', target: '127.0.0.1:8080', interval: '5s', on_failure: 'restart' }],
      },
      {
        name: 'web',
        mode: 'farm',
        id: 2,
        vip: [{ addr: '198.18.0.200/24', interface: 'eth0' }],
        farm: { rules: [{ port: 8080, proto: 'tcp', balance: 'client_session' }], power: { node1: 2, node2: 1 } },
      },
    ],
  };
}

function errorsOf(raw: unknown): string {
  try {
    parseConfigText(stringify(raw), join(dir, 'cluster.yaml'));
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('config was accepted');
}

describe('configuration', () => {
  it('accepts the architecture example and fills defaults and ports', () => {
    const c = parseConfigText(stringify(valid()), join(dir, 'cluster.yaml'));
    expect(c.modules[0].ports).toEqual({ heartbeat: 8888, replication: 5600, farm: 4803 });
    expect(c.modules[1].ports).toEqual({ heartbeat: 8889, replication: 5604, farm: 4806 });
    expect(c.modules[0].heartbeat).toEqual({ pulse: 100, timeout: 1000 });
    expect(c.modules[1].heartbeat).toEqual({ pulse: 100, timeout: 1000 });
    expect(c.modules[0].checkers[0]).toMatchObject({ interval: 5000, failures: 2 });
  });

  const cases: [string, (c: any) => void, RegExp][] = [
    ['timeout not longer than 2 × pulse', (c) => (c.modules[0].heartbeat.timeout = '150ms'), /modules\[0\]\.heartbeat\.timeout: must be longer than 2 × pulse/],
    ['bad duration', (c) => (c.modules[0].heartbeat.pulse = '100 parsecs'), /modules\[0\]\.heartbeat\.pulse: "100 parsecs" is not a duration/],
    ['misspelled key', (c) => (c.modules[0].heartbeet = {}), /modules\[0\]: unknown key "heartbeet"/],
    ['duplicate node name', (c) => (c.nodes[1].name = 'node1'), /nodes\[1\]\.name: duplicate node name "node1"/],
    ['duplicate node address', (c) => (c.nodes[1].addrs = ['198.18.0.1']), /nodes\[1\]\.addrs\[0\]: address 198\.18\.0\.1 is already used/],
    ['not an address', (c) => (c.nodes[0].addrs = ['198.18.0.300']), /nodes\[0\]\.addrs\[0\]: "198\.18\.0\.300" is not an IPv4 or IPv6 address/],
    ['duplicate module name', (c) => (c.modules[1].name = 'mirror'), /modules\[1\]\.name: duplicate module name "mirror"/],
    ['duplicate module id', (c) => (c.modules[1].id = 1), /modules\[1\]\.id: duplicate module id 1/],
    ['unknown mode', (c) => (c.modules[0].mode = 'mirrror'), /modules\[0\]\.mode: must be "mirror" or "farm"/],
    ['VIP without prefix', (c) => (c.modules[0].vip[0].addr = '198.18.0.100'), /modules\[0\]\.vip\[0\]\.addr: "198\.18\.0\.100" must be an address with its prefix length/],
    ['VIP is the network address', (c) => (c.modules[0].vip[0].addr = '198.18.0.0/24'), /modules\[0\]\.vip\[0\]\.addr: 198\.18\.0\.0 is the network or broadcast address/],
    ['VIP is a node address', (c) => (c.modules[0].vip[0].addr = '198.18.0.2/24'), /modules\[0\]\.vip\[0\]\.addr: 198\.18\.0\.2 is node "node2"'s own address/],
    ['power for an unknown node', (c) => (c.modules[1].farm.power = { node3: 1 }), /modules\[1\]\.farm\.power\.node3: unknown node "node3"/],
    ['default_primary unknown', (c) => (c.modules[0].default_primary = 'node9'), /modules\[0\]\.default_primary: unknown node "node9"/],
    ['checker type unknown', (c) => (c.modules[0].checkers[0].type = 'telnet'), /modules\[0\]\.checkers\[0\]\.type: must be one of "tcp", "ping"/],
    ['checker target not host:port', (c) => (c.modules[0].checkers[0].target = 'localhost'), /modules\[0\]\.checkers\[0\]\.target: "localhost" must be host:port/],
    ['relative replicated dir', (c) => (c.modules[0].replication.dirs = ['data']), /modules\[0\]\.replication\.dirs\[0\]: "data" must be an absolute path/],
    ['nested replicated dirs', (c) => (c.modules[0].replication.dirs = ['/srv/a', '/srv/a/b']), /modules\[0\]\.replication\.dirs\[1\]: \/srv\/a\/b overlaps \/srv\/a/],
    ['replication on a farm', (c) => (c.modules[1].replication = { dirs: ['/x'] }), /modules\[1\]\.replication: only a mirror module replicates/],
    ['api port out of range', (c) => (c.api.port = 70000), /api\.port: Number must be less than or equal to 65535/],
    ['missing cluster name', (c) => delete c.cluster, /cluster: is required/],
    ['mirror on three nodes', (c) => c.nodes.push({ name: 'node3', addrs: ['198.18.0.3'] }), /modules\[0\]\.nodes: a mirror module runs on exactly 2 nodes \(got 3\)/],
    ['uneven heartbeat networks', (c) => (c.nodes[0].addrs = ['198.18.0.1', '198.18.1.1']), /nodes\[1\]\.addrs: has 1 address\(es\) but nodes\[0\] has 2/],
    ['missing secret file', (c) => (c.secret_file = join(dir, 'nope.key')), /secret_file: .*nope\.key does not exist/],
  ];

  it.each(cases)('rejects: %s', (_name, mutate, message) => {
    const c = valid();
    mutate(c);
    expect(errorsOf(c)).toMatch(message);
  });

  it('reports every error at once, each line naming the file', () => {
    const c = valid();
    c.modules[0].heartbeat.timeout = '150ms';
    c.nodes[1].name = 'node1';
    const msg = errorsOf(c);
    const lines = msg.split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l.startsWith(join(dir, 'cluster.yaml'))).toBe(true);
  });

  it('rejects a world-readable secret file', () => {
    const open = join(dir, 'open.key');
    writeFileSync(open, 'y'.repeat(40));
    chmodSync(open, 0o644);
    const c = valid();
    c.secret_file = open;
    expect(errorsOf(c)).toMatch(/secret_file: .*open\.key is world-readable: chmod 600/);
  });

  it('names the line of a YAML syntax error', () => {
    const f = join(dir, 'broken.yaml');
    writeFileSync(f, 'cluster: demo\nnodes:\n  - name: [unclosed\n');
    expect(() => loadConfig(f)).toThrow(/broken\.yaml: YAML syntax, line \d+/);
  });

  it('a missing file is a one-line error', () => {
    expect(() => loadConfig(join(dir, 'absent.yaml'))).toThrow(/absent\.yaml: cannot read the file \(ENOENT\)/);
  });
});
