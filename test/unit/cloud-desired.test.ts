import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../node-service/src/config/load.ts';
import { desiredFromCluster } from '../../cloud-adapters/src/desired.ts';

describe('desiredFromCluster: the cloud side derived from cluster.yaml', () => {
  it('takes module, mode, api.port and the nodes first addresses; cloud facts come in extra', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-desired-'));
    try {
      writeFileSync(join(dir, 'cluster.key'), 'x'.repeat(32), { mode: 0o600 });
      writeFileSync(join(dir, 'admin.token'), 'admin-token-0123', { mode: 0o600 });
      writeFileSync(join(dir, 'cloud.key'), 'y'.repeat(32), { mode: 0o600 });
      const file = join(dir, 'cluster.yaml');
      writeFileSync(
        file,
        [
          'cluster: demo',
          `secret_file: ${join(dir, 'cluster.key')}`,
          `state_dir: ${join(dir, 'state')}`,
          `api: { port: 9010, admin_token_file: ${join(dir, 'admin.token')} }`,
          'nodes:',
          '  - { name: node1, addrs: [10.0.1.10] }',
          '  - { name: node2, addrs: [10.0.2.10] }',
          'modules:',
          '  - name: mirror',
          '    mode: mirror',
          '    id: 1',
          `    cloud_events: { url: "https://fn.example/events", secret_file: ${join(dir, 'cloud.key')} }`,
          '',
        ].join('\n'),
      );
      const cfg = loadConfig(file);
      const d = desiredFromCluster(cfg, 'mirror', { targetGroupName: 'vigil-demo-mirror' }, { node2: { instanceId: 'i-0bbb' } });
      expect(d).toEqual({
        cluster: 'demo',
        module: 'mirror',
        mode: 'mirror',
        healthPort: 9010,
        nodes: [
          { name: 'node1', address: '10.0.1.10' },
          { name: 'node2', address: '10.0.2.10', instanceId: 'i-0bbb' },
        ],
        resources: { targetGroupName: 'vigil-demo-mirror' },
      });
      expect(() => desiredFromCluster(cfg, 'nope', {})).toThrow(/no module "nope" \(modules: mirror\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
