// npm run bench:failover — detection and switch time of a mirror failover on loopback, with real
// daemons: kill -9 of the primary's daemon, 10 times. The baseline measured in the same run is the
// configured heartbeat timeout (the detection floor): the ratio shows what the rest of the switch costs.
import { LocalCluster } from '../node-service/src/demo/local-cluster.ts';
import { max, median, round } from './stats.ts';

const KILLS = Number(process.env.KILLS ?? 10);
const TIMEOUT_MS = 1000;

const c = new LocalCluster({ module: { name: 'app', default_primary: 'node1', heartbeat: { pulse: '100ms', timeout: `${TIMEOUT_MS}ms` } } });
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
      if (now > 10_000) throw new Error(`kill ${i + 1}: ${survivor} not ready after 10 s`);
    }
    console.log(`kill ${i + 1}/${KILLS}: ${primary} killed; ${survivor} detected after ${round(detect.at(-1)!)} ms, ready after ${round(total.at(-1)!)} ms`);
    c.start(primary);
    await c.waitFor({ [primary]: 'SECOND', [survivor]: 'PRIM' }, 60_000);
    primary = survivor;
  }
} finally {
  await c.destroy();
}
const med = round(median(total));
console.log(`\nheartbeat timeout (baseline, detection floor): ${TIMEOUT_MS} ms`);
console.log(`detection: median ${round(median(detect))} ms, max ${round(max(detect))} ms`);
console.log(`failover (kill -> survivor ready.txt 200): median ${med} ms, max ${round(max(total))} ms; ratio to timeout ${round(med / TIMEOUT_MS, 2)}`);
console.log(`RESULT failover_ms_median=${med} failover_ms_max=${round(max(total))} detect_ms_median=${round(median(detect))} ratio_to_timeout=${round(med / TIMEOUT_MS, 2)}`);
