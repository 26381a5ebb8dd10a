import { createLan } from '../node-service/src/demo/lan.ts';
import { loss, slow, clear } from './net.ts';
const lan = await createLan('sn', [{ name: 'a', addr: '198.18.171.1/24' }, { name: 'b', addr: '198.18.171.2/24' }]);
const ports = { heartbeat: 8888, replication: 5600 };
try {
  await loss(lan, 'a', '198.18.171.2', { dir: 'in', pct: 100, path: 'all', ports }).catch((e) => console.log('LOSS', e.message, e.stderr));
  console.log(await lan.tryExec('a', ['ping', '-c1', '-W1', '198.18.171.2']));
  await clear(lan, 'a');
  await slow(lan, 'a', { path: 'heartbeat', kbit: 2, latencyMs: 3000, ports }).catch((e) => console.log('SLOW', e.message, e.stderr));
  console.log(await lan.exec('a', ['tc', 'qdisc', 'show']));
  await clear(lan, 'a');
} finally { await lan.destroy(); }
