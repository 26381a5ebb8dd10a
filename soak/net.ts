import type { Lan } from '../node-service/src/demo/lan.ts';

/**
 * Network faults inside one node's namespace. The kernel has no sch_netem, so: loss is an nftables rule
 * dropping `numgen random mod 100 < PCT` of the matching packets (one way: only the input or only the
 * output hook); delay is an htb class on the node's egress with a rate below what the path needs, so
 * packets queue for their turn (delay and jitter) and are dropped beyond the queue's length.
 * A cut takes the node's switch port down.
 */
export type Path = 'all' | 'heartbeat' | 'replication';

export interface PortSet {
  readonly heartbeat: number;
  readonly replication: number;
}

function match(path: Path, p: PortSet): string {
  if (path === 'heartbeat') return `udp dport ${p.heartbeat}`;
  if (path === 'replication') return `tcp dport ${p.replication}-${p.replication + 3}`;
  return '';
}

function matchBack(path: Path, p: PortSet): string {
  if (path === 'heartbeat') return `udp sport ${p.heartbeat}`;
  if (path === 'replication') return `tcp sport ${p.replication}-${p.replication + 3}`;
  return '';
}

/** drops PCT % of the packets between the node and its peer, on the way in, out or both */
export async function loss(lan: Lan, node: string, peerAddr: string, o: { dir: 'in' | 'out' | 'both'; pct: number; path: Path; ports: PortSet }): Promise<void> {
  const rules: string[] = ['add table inet soak'];
  if (o.dir !== 'out') {
    rules.push('add chain inet soak in { type filter hook input priority 0 ; }');
    for (const m of new Set([match(o.path, o.ports), matchBack(o.path, o.ports)])) rules.push(`add rule inet soak in ip saddr ${peerAddr} ${m} ${o.pct >= 100 ? '' : `numgen random mod 100 < ${o.pct} `}drop`);
  }
  if (o.dir !== 'in') {
    rules.push('add chain inet soak out { type filter hook output priority 0 ; }');
    for (const m of new Set([match(o.path, o.ports), matchBack(o.path, o.ports)])) rules.push(`add rule inet soak out ip daddr ${peerAddr} ${m} ${o.pct >= 100 ? '' : `numgen random mod 100 < ${o.pct} `}drop`);
  }
  await lan.exec(node, ['nft', rules.join('\n')]);
}

/**
 * queues the path's egress packets behind an htb class of `kbit` (this kernel has no sch_prio either):
 * they wait for their turn (delay and jitter), and beyond `queue` packets they are dropped
 */
export async function slow(lan: Lan, node: string, o: { path: Path; kbit: number; queue: number; ports: PortSet }): Promise<void> {
  const dev = lan.hosts.get(node)!.ifname;
  const run = (args: string[]) => lan.exec(node, ['tc', ...args]);
  await run(['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', o.path === 'all' ? '30' : '10']);
  await run(['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit']);
  await run(['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:30', 'htb', 'rate', `${o.kbit}kbit`, 'ceil', `${o.kbit}kbit`]);
  await run(['qdisc', 'add', 'dev', dev, 'parent', '1:30', 'handle', '30:', 'pfifo', 'limit', String(o.queue)]);
  if (o.path === 'all') return;
  const [proto, port, mask] = o.path === 'heartbeat' ? ['17', o.ports.heartbeat, '0xffff'] : ['6', o.ports.replication, '0xfffc'];
  for (const dir of ['dport', 'sport']) {
    await run(['filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'protocol', proto, '0xff', 'match', 'ip', dir, String(port), mask, 'flowid', '1:30']);
  }
}

/**
 * drops every packet between the node and `addr` (the arbiter), in a table of its own so that healing
 * it leaves the node's other loss rules in place, and the other way round
 */
export async function isolate(lan: Lan, node: string, addr: string): Promise<void> {
  await lan.exec(node, ['nft', [
    'add table inet soakiso',
    'add chain inet soakiso in { type filter hook input priority 0 ; }',
    'add chain inet soakiso out { type filter hook output priority 0 ; }',
    `add rule inet soakiso in ip saddr ${addr} drop`,
    `add rule inet soakiso out ip daddr ${addr} drop`,
  ].join('\n')]);
}

export async function unisolate(lan: Lan, node: string): Promise<void> {
  await lan.tryExec(node, ['nft', 'delete table inet soakiso']);
}

/** removes every loss rule and queue this file adds to the node */
export async function clear(lan: Lan, node: string): Promise<void> {
  await lan.tryExec(node, ['nft', 'delete table inet soak']);
  await lan.tryExec(node, ['tc', 'qdisc', 'del', 'dev', lan.hosts.get(node)!.ifname, 'root']);
}
