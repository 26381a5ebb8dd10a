import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';

// Real daemons on loopback. The "application" is a file per node that start_prim creates and stop_prim
// removes; every stop_prim run is recorded with its arguments.
describe('a daemon killed -9 while primary stops the application it left at its next start', () => {
  let c: LocalCluster;
  const app = (node: string) => join(c.dir, `app-${node}`);
  const stops = () => (existsSync(join(c.dir, 'stops')) ? readFileSync(join(c.dir, 'stops'), 'utf8').trim().split('\n') : []);

  beforeAll(async () => {
    c = new LocalCluster({
      module: { default_primary: 'node1' },
      scripts: {
        start_prim: 'touch "$(dirname "$0")/../app-$VIGIL_NODE"',
        stop_prim: 'rm -f "$(dirname "$0")/../app-$VIGIL_NODE"; echo "$VIGIL_NODE $1 $2 $3" >> "$(dirname "$0")/../stops"',
      },
    });
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
  }, 60_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('the primary killed -9: its application stays while it is down; back as SECOND, stop_prim has run once', async () => {
    expect(existsSync(app('node1'))).toBe(true);
    await c.kill('node1', 'SIGKILL');
    await c.waitFor({ node2: 'ALONE' }, 20_000);
    // nobody stopped node1's application: it is what the restarted daemon must deal with
    expect(existsSync(app('node1'))).toBe(true);
    expect(stops()).toEqual([]);
    c.start('node1');
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 45_000);
    expect(existsSync(app('node1'))).toBe(false);
    expect(stops()).toEqual(['node1 PRIM STOP graceful']);
    expect(existsSync(app('node2'))).toBe(true);
  }, 90_000);

  it('a secondary killed -9 or a daemon stopped cleanly runs no stop_prim at its next start', async () => {
    await c.kill('node1', 'SIGKILL');
    c.start('node1');
    await c.waitFor({ node1: 'SECOND', node2: 'PRIM' }, 45_000);
    expect(stops()).toEqual(['node1 PRIM STOP graceful']);
    // a clean stop of the primary runs stop_prim itself (once); its restart adds none
    await c.kill('node2', 'SIGTERM');
    await c.waitFor({ node1: 'ALONE' }, 20_000);
    expect(stops()).toEqual(['node1 PRIM STOP graceful', 'node2 PRIM STOP graceful']);
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    expect(stops()).toEqual(['node1 PRIM STOP graceful', 'node2 PRIM STOP graceful']);
  }, 120_000);
});
