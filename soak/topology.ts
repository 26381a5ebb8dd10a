import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ModuleStatus } from '../node-service/src/contract/module-status.ts';
import { NsCluster } from '../node-service/src/demo/ns-cluster.ts';
import { type EtcdServers, startEtcdCluster } from '../test/helpers/arbiter-etcd.ts';
import { NodeDisk, shareMounts, unshareMounts } from './disk.ts';
import { Probe } from './probe.ts';

export const APP_PORT = 8080;
/** the replicated directory, the same path on both nodes (each node's private path is its own disk) */
export const PRIVATE = '/srv/soak';
export const DATA = `${PRIVATE}/data`;
export const NODES = ['node1', 'node2'] as const;
export type NodeName = (typeof NODES)[number];
/** heartbeat and witness settings of the soak's module: what the recovery bound is stated against */
export const HEARTBEAT = { pulse: '200ms', timeout: '2s', timeoutMs: 2000, witnessGrace: '1s', witnessGraceMs: 1000 } as const;
/** the arbiter's lease ttl (etcd's default for Vigil): a primary cut from the store steps down within it */
export const ARBITER_TTL_MS = 3000;

export interface SoakTopology {
  readonly c: NsCluster;
  readonly vip: string;
  readonly disks: ReadonlyMap<NodeName, NodeDisk>;
  readonly probe: Probe;
  /** the etcd member holding the lease (host `arbiter` on the LAN), when the topology has one */
  readonly arbiter?: { readonly addr: string; kill(): Promise<void>; start(): Promise<void> };
  status(node: NodeName): Promise<ModuleStatus | undefined>;
  /** POST /api/v1/modules/soak/VERB on a node */
  command(node: NodeName, verb: string): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * The demo's topology (node-service/src/demo/ns-cluster.ts): two nodes, a client and a witness on a
 * namespace bridge; a mirror module replicating /srv/soak/data with a VIP. Each node's /srv/soak is a
 * small ext4 filesystem of its own (soak/disk.ts). With `arbiter`, a real etcd (Debian's etcd-server) on
 * a host of its own holds the module's lease (issue 16): a primary serves only while it holds it.
 */
export async function createTopology(o: { prefix: string; subnet: string; diskMb: number; arbiter: boolean; onReady: (t: number, r: number[]) => void }): Promise<SoakTopology> {
  const vip = `${o.subnet}.100`;
  const app = join(import.meta.dirname, 'app.mjs');
  // extra hosts take .10, .11, .12 in this order (ns-cluster.ts)
  const arbiterAddr = `${o.subnet}.12`;
  const c = await NsCluster.create({
    prefix: o.prefix,
    subnet: o.subnet,
    extraHosts: o.arbiter ? ['client', 'witness', 'arbiter'] : ['client', 'witness'],
    privatePath: PRIVATE,
    module: {
      name: 'soak',
      default_primary: 'node1',
      heartbeat: { pulse: HEARTBEAT.pulse, timeout: HEARTBEAT.timeout },
      vip: [{ addr: `${vip}/24`, interface: 'eth0' }],
      replication: { dirs: [DATA] },
      witness: { ping: [`${o.subnet}.11`], grace: HEARTBEAT.witnessGrace },
      // the nemesis fails the module over hundreds of times an hour: SafeKit's maxloop would stop it
      max_failovers: { count: 1000, window: '1m' },
      ...(o.arbiter ? { arbiter: { type: 'etcd', endpoints: [`http://${arbiterAddr}:2379`], ttl: `${ARBITER_TTL_MS}ms` } } : {}),
    },
    scripts: {
      // a killed daemon leaves its application running: the next start_prim on that node replaces it
      start_prim: `[ -f /var/lib/vigil/app.pid ] && kill -9 $(cat /var/lib/vigil/app.pid) 2>/dev/null\n"${process.execPath}" "${app}" ${DATA} ${APP_PORT} >>/var/lib/vigil/app.log 2>&1 &\necho $! > /var/lib/vigil/app.pid`,
      stop_prim: `[ -f /var/lib/vigil/app.pid ] && kill -9 $(cat /var/lib/vigil/app.pid) 2>/dev/null; rm -f /var/lib/vigil/app.pid; exit 0`,
    },
  });
  const disks = new Map<NodeName, NodeDisk>();
  let probe: Probe | undefined;
  let etcd: (EtcdServers & { start(name: string): void }) | undefined;
  const destroy = async () => {
    probe?.close();
    await etcd?.stop().catch(() => undefined);
    await c.destroy({ keepDir: true }).catch(() => undefined);
    for (const d of disks.values()) await d.destroy().catch(() => undefined);
    await unshareMounts(c.dir);
  };
  try {
    if (o.arbiter) etcd = await startEtcdCluster(c.lan, ['arbiter'], join(c.dir, 'etcd'));
    await shareMounts(c.dir);
    for (const n of NODES) {
      const d = new NodeDisk(join(c.dir, `${n}.img`), join(c.node(n).root, 'private'), o.diskMb);
      disks.set(n, d);
      await d.create();
      mkdirSync(join(d.mountpoint, 'data'), { recursive: true });
    }
    probe = new Probe(c.lan, 'client', NODES.map((n) => `http://${c.node(n).addr}:9010/var/modules/soak/ready.txt`), o.onReady);
  } catch (e) {
    await destroy();
    throw e;
  }
  const p = probe;
  const e = etcd;
  const auth = { authorization: `Bearer ${c.token}` };
  return {
    c,
    vip,
    disks,
    probe: p,
    ...(e && {
      arbiter: {
        addr: arbiterAddr,
        kill: async () => {
          const proc = e.procs.get('arbiter');
          if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
          await new Promise<void>((r) => {
            proc.once('exit', () => r());
            proc.kill('SIGKILL');
          });
        },
        // its data directory survives: the lease and the fence are where the killed member left them
        start: async () => e.start('arbiter'),
      },
    }),
    status: (n) => p.json<ModuleStatus>(`http://${c.node(n).addr}:9010/api/v1/modules/soak`, { headers: auth, timeoutMs: 1500 }),
    command: async (n, verb) => (await p.request(`http://${c.node(n).addr}:9010/api/v1/modules/soak/${verb}`, { method: 'POST', headers: auth, timeoutMs: 10_000 })).status,
    destroy,
  };
}
