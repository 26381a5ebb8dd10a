import { describe, expect, it } from 'vitest';
import { resultLine, soakReport } from '../../soak/report.ts';
import { runSoak } from '../../soak/run.ts';

/**
 * The CI soak: `npm run soak -- --minutes 3 --seed 17` (soak/README.md) as part of `npm test`: the
 * demo's topology with an etcd arbiter holding the module's lease, every fault kind (the arbiter's
 * own included). The seed is fixed so a failure replays (`npm run soak -- --seed 17 --from K
 * --episodes 1`); every violation fails the test with the report's lines for it. With the arbiter,
 * two serving nodes are a violation at any moment, not only while the nodes can reach each other.
 */
const SEED = 17;
const MINUTES = 3;

describe('fault-injection soak, CI length', () => {
  it(`seed ${SEED}, ${MINUTES} minutes: with an arbiter: nothing acknowledged lost, never two serving nodes, recovery within the bound, no unhandled error`, async () => {
    const r = await runSoak({ minutes: MINUTES, seed: SEED, arbiter: true, prefix: 'sl', subnet: '198.18.172', say: () => undefined });
    const report = soakReport(r);
    console.log(report.split('\n== checks')[1] ?? report);
    expect(r.faults).toBeGreaterThan(5);
    expect(r.acked).toBeGreaterThan(500);
    const text = r.violations.map((v) => `${v.kind} at episode #${v.episode}: ${v.detail}`).join('\n');
    expect(text, `${resultLine(r)}\nnode logs in ${r.dir}`).toBe('');
  }, 360_000);
});
