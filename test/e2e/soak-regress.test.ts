import { describe, expect, it } from 'vitest';
import type { Episode, Fault } from '../../soak/nemesis.ts';
import { runSoak } from '../../soak/run.ts';

/**
 * The violations the soak (npm run soak) found, each replayed as the fault the soak scheduled at the
 * moment it found it, on the soak's own topology (two daemons, VIP, witness, each node's own small
 * disk, the writer making fsync'd appends and renames through the VIP). Each case must end with no
 * violation: nothing acknowledged lost, never two serving nodes while they can reach each other, the
 * pair back to PRIM/SECOND in sync within the bound.
 */
const fault = (kind: Fault['kind'], role: Fault['role'], holdMs: number, offsetMs = 0, extra: Partial<Fault> = {}): Fault => ({ kind, role, offsetMs, holdMs, amount: 0, dir: 'both', ...extra });
const episode = (index: number, faults: Fault[], gapMs = 3000): Episode => ({ index, faults, gapMs });

/**
 * `tolerate`: violation kinds a case does not judge (a limitation documented in soak/README.md);
 * `arbiter`: the topology with the etcd arbiter (where two serving nodes count at any moment)
 */
async function replay(plan: Episode[], tolerate: readonly string[] = [], arbiter = false): Promise<void> {
  const r = await runSoak({ minutes: 10, seed: 0, plan, arbiter, prefix: 'sl', subnet: '198.18.172', say: () => undefined });
  const text = r.violations
    .filter((v) => !tolerate.includes(v.kind))
    .map((v) => `${v.kind} in episode #${v.episode}: ${v.detail}`)
    .join('\n');
  expect(text, `violations (node logs in ${r.dir})`).toBe('');
  expect(r.acked).toBeGreaterThan(50);
}

describe('soak regressions (each found by npm run soak, replayed at the moment found)', () => {
  // seed 1, episodes #0-#1: the secondary's disk filled up while the writer renamed fsync'd files; the
  // secondary failed to apply them (ENOSPC) and the resync's copies failed the same way but counted as
  // done, so it was "in sync" without them, and the swap that followed served files with no content.
  it('secondary disk full, then a swap: the renamed files acknowledged meanwhile are on the new primary', async () => {
    await replay([episode(0, [fault('disk-full', 'S', 3025)], 3943), episode(1, [fault('swap', 'P', 0)])]);
  }, 120_000);

  // seed 1, episode #2: every packet from the primary to the secondary dropped for 3.1 s (5 s here, beyond doubt
  // longer than the heartbeat timeout and the witness grace). The secondary
  // took over (it reached the witness) while the primary, hearing it, stayed: both served for a moment,
  // the split brain healed with the old primary staying, but the clients' ARP caches still pointed at
  // the loser's interface: the service was unreachable through the VIP for 30 s and more. The winner now
  // announces the address again. (The records the loser acknowledged during the split are moved aside:
  // only an arbiter prevents that split, see soak/README.md, so durable_lost is not judged here.)
  it('one-way loss into the secondary: after the split brain heals, the service answers through the VIP', async () => {
    await replay([episode(2, [fault('oneway-loss', 'S', 5000, 0, { amount: 100, dir: 'in' })])], ['durable_lost']);
  }, 120_000);

  // seed 2026, episodes #10-#11 (the 60-minute soak): a primary killed with its node, the secondary's
  // disk filling up meanwhile, then filled again and a swap 6 s into it. Each change the full secondary
  // could not apply was copied again within the session, and between those copies the secondary was
  // announced in sync: the swap went through at such a moment and a renamed file acknowledged just
  // before it was empty on the new primary. A recopy now makes the primary ALONE (a new generation,
  // which puts the secondary out of sync) until it is done, so the swap is refused meanwhile.
  it('secondary disk full and a swap while it is: refused until the secondary has every change again', async () => {
    await replay([
      episode(10, [fault('kill-node', 'P', 5121), fault('disk-full', 'S', 3143, 4604)], 3905),
      episode(11, [fault('disk-full', 'S', 10964), fault('swap', 'P', 0, 6051)], 3733),
    ]);
  }, 150_000);

  // seed 2026, episode #39 (the 60-minute soak): the secondary's link cut for 1.3 s. The primary heard
  // no heartbeat for 2 s and went ALONE (a new generation), but the replication stream outlived the
  // gap: nothing ever ended it, so no resync ran, the secondary stayed out of sync and the primary
  // ALONE for good (3 minutes, until the soak restarted both daemons). Replayed deterministically with
  // the secondary's heartbeats alone dropped for 3 s (the stream untouched).
  it('heartbeats lost one way while the stream lives: the pair is back PRIM/SECOND in sync', async () => {
    await replay([episode(39, [fault('hb-loss', 'S', 3000, 0, { amount: 100, dir: 'out' })])]);
  }, 150_000);

  // seed 3, episode #10 (arbiter topology): the primary's packets to the secondary all dropped, then
  // the primary cut from the arbiter 2.6 s later. It had gone ALONE on a new generation and acknowledged
  // fsyncs before the store recorded that generation; cut from the store, it stepped down and the
  // secondary (older data, not fenced) was granted the lease: 52 acknowledged records gone. Now nothing
  // is acknowledged alone before the store holds the generation.
  it('arbiter: the primary loses its secondary, then the arbiter; nothing it acknowledged alone is lost', async () => {
    await replay([episode(10, [fault('oneway-loss', 'P', 8924, 0, { amount: 100, dir: 'out' }), fault('arbiter-cut', 'P', 4864, 2587)])], [], true);
  }, 150_000);

  // seed 3, episode #35 (arbiter topology): the secondary cut, then the primary stopped (SIGSTOP) past
  // its lease. Its application, blocked in the view, went on after SIGCONT through the mount the
  // step-down had detached lazily, while the node became primary again: its append landed at a stale
  // offset over a newer record and was acknowledged. Now an old connection is not served, and a sync of
  // a handle opened under the primary role fails once the node is not primary.
  // seed 7, episode #98 (a 60-minute arbiter run): every packet into the primary dropped, a swap asked
  // of it 1.9 s in. It stepped down and handed over, lost the secondary's heartbeats 20 ms later (which
  // cleared its handover) and heard them again before its step down had finished: the secondary never
  // saw a handover, both stayed SECOND in sync, nobody served for good. Now two settled secondaries
  // with nobody handing over let the one whose data ranks first take primary (core: decide, SECOND).
  it('arbiter: a swap asked while the primary hears nothing; the pair does not stay SECOND/SECOND', async () => {
    await replay([episode(98, [fault('oneway-loss', 'P', 3556, 0, { amount: 100, dir: 'in' }), fault('swap', 'P', 0, 1891)], 2901)], [], true);
  }, 150_000);

  it('arbiter: the primary stopped past its lease while the secondary is cut; no acknowledged record overwritten', async () => {
    await replay([episode(35, [fault('cut', 'S', 8596), fault('sigstop', 'P', 5905, 4655)])], [], true);
  }, 150_000);

  // seed 2026, episode #225 of the 60-minute arbiter run (reproduced 2 times in 6 replays): the
  // secondary killed, the primary stopped 7.7 s. At SIGCONT the primary stepped down and its view was
  // remounted; between the unmount and the mount its application (not yet stopped) opened
  // records.log in the bare directory underneath, appended, synced and answered: a record no node
  // held. Now the directory is a read-only bind of itself under the view (mirror/fuse/device.ts shield).
  it('arbiter: the primary stopped while the secondary is killed; nothing is written beneath the view between two mounts', async () => {
    await replay([episode(225, [fault('kill-daemon', 'S', 1515), fault('sigstop', 'P', 7661, 428)])], [], true);
  }, 150_000);
});
