import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerView } from '../../node-service/src/core/types.ts';
import { HeartbeatMonitor } from '../../node-service/src/heartbeat/monitor.ts';
import { encodeHeartbeat, type Heartbeat } from '../../node-service/src/heartbeat/packet.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { Metrics } from '../../node-service/src/metrics/metrics.ts';
import { Secret } from '../../node-service/src/config/secret.ts';
import { datagramKeys, KeyRing } from '../../node-service/src/secure/keyring.ts';

const keys = datagramKeys(new KeyRing(new Secret(Buffer.from('burst-test-secret-burst-test-secret'))), 'heartbeat', 'c', 'm');
const PORT = 18_977;
const PEER = '127.0.0.2';

/**
 * A restored link releases the heartbeats the peer sent while it was cut (they waited behind ARP
 * resolution), oldest first, all at once. Only the newest may count.
 */
describe('heartbeat monitor: a burst of queued heartbeats', () => {
  let mon: HeartbeatMonitor | undefined;
  afterEach(async () => {
    await mon?.stop();
  });

  it('from a returning peer: the core is told only what the peer is now, not what it was while cut off (core/liveness.ts then believes it a pulse later)', async () => {
    mon = new HeartbeatMonitor({ cluster: 'c', module: 'm', self: { name: 'n2', addrs: ['127.0.0.1'] }, peers: [{ name: 'n1', addrs: [PEER] }], port: PORT, pulseMs: 100, keys, counterBase: 1, log: silentLogger(), metrics: new Metrics() });
    const seen: PeerView[] = [];
    mon.onHeard((v) => seen.push(v));
    await mon.start();
    // GIVEN what n1 sent during the cut: PRIM, then ALONE, then (stepping down) WAIT, then now SECOND
    const hb = (counter: number, state: Heartbeat['state']): Buffer =>
      encodeHeartbeat({ v: 1, cluster: 'c', module: 'm', node: 'n1', net: 0, counter, state, target: state, gen: 2, epoch: 1, inSync: false, handover: false, swapRequest: false, isolated: false }, keys.seal('n1'));
    const burst = [hb(10, 'PRIM'), hb(11, 'PRIM'), hb(12, 'ALONE'), hb(13, 'WAIT'), hb(14, 'WAIT'), hb(15, 'SECOND')];
    // WHEN they arrive back to back
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, PEER, () => r()));
    for (const b of burst) await new Promise<void>((r, j) => s.send(b, PORT, '127.0.0.1', (e) => (e ? j(e) : r())));
    s.close();
    await new Promise((r) => setTimeout(r, 400));
    // THEN only its current state was reported, never an earlier one
    expect(seen.map((v) => v.state)).toEqual(['SECOND']);
  });
});
