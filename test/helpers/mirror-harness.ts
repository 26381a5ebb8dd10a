/**
 * A process hosting one mirror replicator, driven by JSON lines on stdin and reporting on stdout:
 *   in:  {"id":1,"cmd":"prepare"|"primary"|"secondary"|"stop"|"status"|"exit","opts":{...}}
 *        (stop's opts: {"remount":true} is the daemon's role change through WAIT: the view unmounted,
 *        the directory shielded until the next prepare)
 *   out: {"id":1,"ok":true,"result":...} | {"id":1,"ok":false,"error":"..."} | {"event":{...}}
 * Configuration comes as JSON in argv[2]. Run it inside `unshare -m --propagation private` so its FUSE
 * mounts live and die with its own mount namespace.
 */
import { createInterface } from 'node:readline';
import { modulePorts, Secret, type ModuleConfig } from '../../node-service/src/config/index.ts';
import { createLogger } from '../../node-service/src/log/logger.ts';
import { createMirrorReplicator } from '../../node-service/src/mirror/index.ts';

interface HarnessConfig {
  name: string;
  dirs: string[];
  stateDir: string;
  selfAddrs: string[];
  peer: string;
  peerAddrs: string[];
  secretHex: string;
  sendTimeoutMs?: number;
  zoneSize?: number;
  id?: number;
  ack?: 'fsync' | 'write';
  window?: number;
  encryption?: 'tls' | 'none';
}

const cfg = JSON.parse(process.argv[2]) as HarnessConfig;
const module = {
  name: 'mirror',
  mode: 'mirror',
  id: cfg.id ?? 1,
  ports: modulePorts(cfg.id ?? 1),
  replication: { dirs: cfg.dirs, send_timeout: cfg.sendTimeoutMs ?? 2000, zone_size: cfg.zoneSize ?? 1 << 20, ack: cfg.ack ?? 'fsync', window: cfg.window ?? 16 << 20, encryption: cfg.encryption ?? 'tls' },
  nodes: [cfg.name, cfg.peer],
} as unknown as ModuleConfig;
const log = createLogger({ node: cfg.name, level: process.env.VIGIL_LOG_LEVEL ?? 'warn', destination: process.stderr });
const rep = createMirrorReplicator({
  module,
  self: { name: cfg.name, addrs: cfg.selfAddrs },
  peer: { name: cfg.peer, addrs: cfg.peerAddrs },
  secret: new Secret(Buffer.from(cfg.secretHex, 'hex')),
  stateDir: cfg.stateDir,
  log,
});
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
rep.onEvent((e) => out({ event: e }));

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg: { id: number; cmd: string; opts?: Record<string, unknown> };
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  const run = async (): Promise<unknown> => {
    switch (msg.cmd) {
      case 'prepare':
        return rep.prepare();
      case 'primary':
        return rep.becomePrimary(msg.opts);
      case 'secondary':
        return rep.becomeSecondary(msg.opts);
      case 'stop':
        return rep.stop(msg.opts);
      case 'status':
        return rep.status();
      case 'exit':
        setTimeout(() => process.exit(0), 20);
        return null;
      default:
        throw new Error(`unknown command ${msg.cmd}`);
    }
  };
  run().then(
    (result) => out({ id: msg.id, ok: true, result: result ?? null }),
    (e) => out({ id: msg.id, ok: false, error: String((e as Error)?.stack ?? e) }),
  );
});
rl.on('close', () => {
  void rep.stop().finally(() => process.exit(0));
});
