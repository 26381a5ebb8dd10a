/**
 * `node --import tsx secure-evil-peer.ts SECONDARY_ADDR REPL_PORT HB_PORT MODULE CLUSTER`: a host that
 * does not hold the cluster secret tries the secondary's replication port (a TLS handshake with a PSK
 * from a wrong secret) and sends it heartbeats sealed with a wrong key as "node1". Prints one JSON line.
 */
import { createSocket } from 'node:dgram';
import { Secret } from '../../node-service/src/config/secret.ts';
import { encodeHeartbeat } from '../../node-service/src/heartbeat/packet.ts';
import { connectToSecondary } from '../../node-service/src/mirror/channel.ts';
import { datagramKeys, KeyRing } from '../../node-service/src/secure/keyring.ts';

const [host, replPort, hbPort, module, cluster] = process.argv.slice(2);
const wrong = Buffer.from('this-is-not-the-cluster-secret-!!');
const result: Record<string, unknown> = {};
try {
  await connectToSecondary({ addrs: [host], port: Number(replPort), key: wrong, module, node: 'evil' });
  result.replication = 'ACCEPTED';
} catch (e) {
  result.replication = `refused: ${(e as Error).message}`;
}
const seal = datagramKeys(new KeyRing(new Secret(wrong)), 'heartbeat', cluster, module).seal('node1');
const s = createSocket('udp4');
for (let i = 0; i < 5; i++) {
  const hb = encodeHeartbeat({ v: 1, cluster, module, node: 'node1', net: 0, counter: Date.now() * 1000 * 2 + i, state: 'STOP', target: 'STOP', gen: 99, epoch: 99, inSync: true, handover: true, swapRequest: false, isolated: false }, seal);
  await new Promise<void>((r, j) => s.send(hb, Number(hbPort), host, (err) => (err ? j(err) : r())));
}
s.close();
result.heartbeats = 5;
console.log(JSON.stringify(result));
