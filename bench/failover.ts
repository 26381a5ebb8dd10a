// npm run bench:failover — detection and switch time of a mirror failover on loopback, with real
// daemons: kill -9 of the primary's daemon, KILLS times, in three setups measured in the same run:
//   none     no split-brain protection (heartbeats only): the baseline;
//   witness  an HTTP witness (the secondary takes over once it answered for witness.grace, 700 ms);
//   etcd     the arbiter lease on a real etcd (ttl 3 s): the secondary takes over once the dead
//            primary's lease expired at the store, so its floor is the ttl, not the heartbeat timeout.
// Each line reports the median time from kill -9 to the survivor's ready.txt answering 200.
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RawCluster } from '../node-service/src/config/schema.ts';
import { LocalCluster } from '../node-service/src/demo/local-cluster.ts';
import { startLocalEtcd } from '../test/helpers/arbiter-etcd.ts';
import { max, median, round } from './stats.ts';

const KILLS = Number(process.env.KILLS ?? 5);
const TIMEOUT_MS = 1000;
const TTL_MS = 3000;
type RawModule = Partial<NonNullable<RawCluster['modules']>[number]>;

async function measure(label: string, extra: RawModule): Promise<{ total: number[]; detect: number[] }> {
  const c = new LocalCluster({ module: { name: 'app', default_primary: 'node1', heartbeat: { pulse: '100ms', timeout: `${TIMEOUT_MS}ms` }, ...extra } });
  const detect: number[] = [];
  const total: number[] = [];
  try {
    c.start('node1');
    c.start('node2');
    await c.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 60_000);
    let primary = 'node1';
    for (let i = 0; i < KILLS; i++) {
      const survivor = primary === 'node1' ? 'node2' : 'node1';
      const t0 = performance.now();
      await c.kill(primary, 'SIGKILL');
      let detected: number | undefined;
      for (;;) {
        const [s, ready] = await Promise.all([c.status(survivor), c.ready(survivor)]);
        const now = performance.now() - t0;
        if (detected === undefined && s && s.target !== 'SECOND') detected = now;
        if (ready) {
          total.push(now);
          detect.push(detected ?? now);
          break;
        }
        if (now > 15_000) throw new Error(`${label}, kill ${i + 1}: ${survivor} not ready after 15 s (${s?.state}: ${s?.reason}); logs in ${c.dir}`);
      }
      console.log(`${label}: kill ${i + 1}/${KILLS}: ${primary} killed; ${survivor} detected after ${round(detect.at(-1)!)} ms, ready after ${round(total.at(-1)!)} ms`);
      c.start(primary);
      await c.waitFor({ [primary]: 'SECOND', [survivor]: 'PRIM' }, 60_000);
      primary = survivor;
    }
  } finally {
    await c.destroy();
  }
  return { total, detect };
}

// the HTTP witness: a server on loopback that always answers 200
const witness = createServer((_q, r) => r.end('OK'));
await new Promise<void>((r) => witness.listen(0, '127.0.0.1', () => r()));
const witnessUrl = `http://127.0.0.1:${(witness.address() as { port: number }).port}/`;
const etcdDir = mkdtempSync(join(tmpdir(), 'vigil-bench-etcd-'));
const etcd = await startLocalEtcd(etcdDir, 24000 + (process.pid % 1000) * 2);

const results: Record<string, { total: number[]; detect: number[] }> = {};
try {
  results.none = await measure('none', {});
  results.witness = await measure('witness', { witness: { http: [witnessUrl] } });
  results.etcd = await measure('etcd', { arbiter: { type: 'etcd', endpoints: etcd.endpoints, ttl: `${TTL_MS}ms` } });
} finally {
  witness.close();
  await etcd.stop();
  rmSync(etcdDir, { recursive: true, force: true });
}

console.log(`\nheartbeat timeout (detection floor): ${TIMEOUT_MS} ms; etcd lease ttl (its takeover floor: the dead primary's lease must expire): ${TTL_MS} ms`);
for (const [k, r] of Object.entries(results)) {
  console.log(`${k}: failover (kill -9 -> survivor ready.txt 200) median ${round(median(r.total))} ms, max ${round(max(r.total))} ms; detection median ${round(median(r.detect))} ms`);
}
console.log(`RESULT none_ms=${round(median(results.none.total))} witness_ms=${round(median(results.witness.total))} etcd_ms=${round(median(results.etcd.total))}`);
