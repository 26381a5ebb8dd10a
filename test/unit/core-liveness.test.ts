import { describe, expect, it } from 'vitest';
import { initFarm, stepFarm } from '../../node-service/src/core/farm-step.ts';
import { initMirror, stepMirror } from '../../node-service/src/core/mirror-step.ts';
import type { Action, ModuleState, PeerView } from '../../node-service/src/core/types.ts';
import { drive, MirrorSim } from '../helpers/core-sim.ts';

/** with an arbiter, so that a secondary cut from its primary stays SECOND (the primary keeps the lease) */
function started(): MirrorSim {
  const sim = new MirrorSim({ defaultPrimary: 'node1', arbiter: { ttlMs: 3000 } });
  sim.boot('node1');
  sim.boot('node2');
  sim.run(3000);
  return sim;
}

describe('mirror core: a returning peer', () => {
  it('a resync that completes before the returning primary is heard adopts the generation it then advertises', () => {
    const sim = started();
    sim.link = false;
    sim.run(2000);
    expect([sim.state('node1'), sim.state('node2')]).toEqual(['ALONE', 'SECOND']); // a new generation: node2 lacks its writes
    // the link is back: the replication stream reconnects and resyncs before the monitor believes
    // the returning peer's heartbeats (it waits a pulse for the burst queued during the cut)
    sim.feed('node2', { type: 'replication', status: 'synced', reason: '' });
    // the stream reports `synced` once per resync: the simulator must not report it again
    sim.replicationUp = false;
    sim.link = true;
    sim.run(2000);
    expect(sim.state('node2')).toBe('SECOND');
    expect(sim.node('node2').core.p).toMatchObject({ inSync: true, gen: sim.node('node1').core.p.gen });
  });
});

// The heartbeat rules, from what the edge heard and the ticks (core/liveness.ts): fake time.
const HB = { pulseMs: 100, timeoutMs: 1000 };
const view = (node: string, state: ModuleState): PeerView => ({ node, state, target: state, gen: 1, primaryEpoch: 1, inSync: true, handover: false, swapRequest: false, isolated: false, fresh: false });

function mirrorNode() {
  const n = drive(initMirror({ self: 'node2', peerName: 'node1', heartbeat: HB, persisted: { gen: 1, primaryEpoch: 1, lastState: 'SECOND', inSync: true, stopped: false } }), stepMirror);
  n.feed({ type: 'boot', now: 0 });
  return n;
}
const told = (actions: Action[]) => actions.flatMap((a) => (a.type === 'peerView' ? [a.view ? `${a.node} ${a.view.state}` : `${a.node} lost`] : []));

describe('mirror core: heartbeat liveness (was heartbeat/monitor.ts)', () => {
  it('a peer heard is believed one pulse later, with the newest view heard by then; lost after timeout of silence', () => {
    const n = mirrorNode();
    n.feed({ type: 'heard', view: view('node1', 'PRIM'), now: 10 });
    n.feed({ type: 'heard', view: view('node1', 'ALONE'), now: 60 });
    n.feed({ type: 'tick', now: 100 });
    expect(n.c.peerAlive).toBe(false);
    n.feed({ type: 'tick', now: 110 });
    expect(n.c.peerAlive).toBe(true);
    expect(n.c.peer?.state).toBe('ALONE');
    expect(told(n.actions)).toEqual(['node1 ALONE']);
    // a live peer's change is taken at once
    n.feed({ type: 'heard', view: view('node1', 'PRIM'), now: 150 });
    expect(n.c.peer?.state).toBe('PRIM');
    for (let t = 200; t <= 1150; t += 50) n.feed({ type: 'tick', now: t });
    expect(n.c.peerAlive).toBe(true);
    n.feed({ type: 'tick', now: 1200 });
    expect(n.c.peerGone).toBe(true);
    expect(told(n.actions)).toEqual(['node1 ALONE', 'node1 PRIM', 'node1 lost']);
  });

  it('a peer never heard is lost one timeout after boot', () => {
    const n = mirrorNode();
    for (let t = 50; t <= 1000; t += 50) n.feed({ type: 'tick', now: t });
    expect(n.c.peerGone).toBe(false);
    n.feed({ type: 'tick', now: 1050 });
    expect(n.c.peerGone).toBe(true);
    expect(n.actions).toContainEqual({ type: 'peerView', node: 'node1', silentMs: 1050, everHeard: false });
  });

  it('a tick that comes late by more than half the timeout (our own stall) decides nothing: the queued heartbeats are heard first', () => {
    const n = mirrorNode();
    n.feed({ type: 'heard', view: view('node1', 'PRIM'), now: 10 });
    n.feed({ type: 'tick', now: 150 });
    expect(n.c.peerAlive).toBe(true);
    // our loop stalls 2 s: this late tick must not declare the peer lost
    n.feed({ type: 'tick', now: 2150 });
    expect(n.c.peerAlive).toBe(true);
    // the datagrams read after the stall, then the next tick
    n.feed({ type: 'heard', view: view('node1', 'PRIM'), now: 2151 });
    n.feed({ type: 'tick', now: 2200 });
    expect(n.c.peerAlive).toBe(true);
    expect(told(n.actions)).toEqual(['node1 PRIM']);
  });

  it('a returning peer: what it sent while cut off is never acted on', () => {
    const n = mirrorNode();
    n.feed({ type: 'heard', view: view('node1', 'PRIM'), now: 10 });
    n.feed({ type: 'tick', now: 150 });
    for (let t = 200; t <= 1250; t += 50) n.feed({ type: 'tick', now: t });
    expect(n.c.peerGone).toBe(true);
    // the link comes back: the queued PRIM, then its current SECOND
    n.feed({ type: 'heard', view: view('node1', 'PRIM'), now: 3000 });
    n.feed({ type: 'heard', view: view('node1', 'SECOND'), now: 3001 });
    n.feed({ type: 'tick', now: 3050 });
    n.feed({ type: 'tick', now: 3100 });
    expect(n.c.peer?.state).toBe('SECOND');
    expect(told(n.actions)).toEqual(['node1 PRIM', 'node1 lost', 'node1 SECOND']);
  });
});

function farmNode(nodes = ['a', 'b', 'c']) {
  const n = drive(initFarm({ self: 'a', nodes, heartbeat: HB }), stepFarm);
  n.feed({ type: 'boot', now: 0 });
  // WAIT, then UP (the transitions complete at once)
  for (let i = 0; i < 3; i++) {
    const t = n.actions.filter((a) => a.type === 'transition').at(-1);
    if (t?.type === 'transition' && n.c.busy > 0) n.feed({ type: 'transitionDone', id: t.transition.id, ok: true, detail: '', now: 1 });
  }
  return n;
}
const memberships = (actions: Action[]) => actions.flatMap((a) => (a.type === 'membership' ? [a.nodes.join(',') || '-'] : []));

describe('farm core: membership (was module-runner.ts) and the cut-off rule (was farm/port.ts)', () => {
  it('the members are the peers alive and UP, and this node once UP; a peer lost leaves', () => {
    const n = farmNode();
    expect(n.c.state).toBe('UP');
    n.feed({ type: 'heard', view: view('b', 'UP'), now: 10 });
    n.feed({ type: 'heard', view: view('c', 'WAIT'), now: 10 });
    n.feed({ type: 'tick', now: 120 });
    expect(n.c.members).toEqual(['a', 'b']);
    n.feed({ type: 'heard', view: view('c', 'UP'), now: 130 });
    expect(n.c.members).toEqual(['a', 'b', 'c']);
    for (let t = 150; t <= 1100; t += 50) n.feed({ type: 'heard', view: view('b', 'UP'), now: t }), n.feed({ type: 'tick', now: t + 1 });
    n.feed({ type: 'tick', now: 1200 });
    expect(n.c.members).toEqual(['a', 'b']);
    expect(memberships(n.actions)).toEqual(['a', 'a,b', 'a,b,c', 'a,b']);
  });

  it('alone with the link down it serves nothing; with the link back it waits one heartbeat timeout for the peers, then serves alone', () => {
    const n = farmNode(['a', 'b']);
    n.feed({ type: 'heard', view: view('b', 'UP'), now: 10 });
    n.feed({ type: 'tick', now: 120 });
    expect(n.c.members).toEqual(['a', 'b']);
    n.feed({ type: 'carrier', up: false, now: 200 });
    for (let t = 250; t <= 1200; t += 50) n.feed({ type: 'tick', now: t });
    expect(n.c.members).toEqual([]);
    expect(n.actions.some((a) => a.type === 'log' && /alone and the VIP interface has no link: serving nothing/.test(a.msg))).toBe(true);
    n.feed({ type: 'carrier', up: true, now: 2000 });
    n.feed({ type: 'tick', now: 2500 });
    expect(n.c.members).toEqual([]);
    n.feed({ type: 'tick', now: 3001 });
    expect(n.c.members).toEqual(['a']);
    // alone with the link up (the others really are gone): it serves
    expect(memberships(n.actions)).toEqual(['a', 'a,b', '-', 'a']);
  });
});
