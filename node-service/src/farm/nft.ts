/**
 * The nftables ruleset of a farm module, as text for `nft -f -`. Pure: the FarmFilter adapter runs it.
 *
 * One `netdev` table per module, one ingress and one egress base chain per interface holding a VIP:
 *
 *   ingress (priority -500, before anything else sees the frame):
 *     ether daddr != { virtual MACs } accept          everything not sent to the farm: untouched
 *     ether type arp  → responder: PACKET_HOST, others: drop        (unicast ARP probes to the vMAC)
 *     ether type != ip drop ; ip daddr != { VIPs } drop
 *     per rule: <proto/port> jhash <key> mod 256 seed S { my buckets } meta pkttype set host accept
 *               <proto/port> drop
 *     anything else for the VIP (other ports, ICMP, fragments) → responder: PACKET_HOST, others: drop
 *
 *   egress:
 *     ether saddr { virtual MACs } drop               a node never sends a frame from the vMAC, so no
 *                                                     switch ever learns it and keeps flooding it
 *     arp saddr ip VIP → responder: arp saddr ether set vMAC (clients resolve the VIP to the vMAC;
 *                        the frame itself still leaves from the node's real MAC); others: drop
 *
 *   ip prerouting (priority -150, after conntrack):
 *     a TCP non-SYN that opens no known connection → drop (it is another node's: never reset it)
 *     draining buckets (given to another live node): new connections → drop (the new owner's),
 *     established ones go on here — a node coming back takes its buckets without cutting the
 *     connections the others opened meanwhile
 *
 * The hash seed is derived from the module's name and id, never left to the kernel (which would pick
 * a random seed per node, and the nodes would disagree on buckets).
 */
import type { ModuleConfig } from '../config/index.ts';
import { BUCKETS, fnv1a } from './plan.ts';

export interface FarmVip {
  /** e.g. "198.18.5.200" */
  readonly addr: string;
  readonly prefix: number;
  readonly iface: string;
  /** locally administered unicast MAC that stands for this VIP: 02:76:67 + the VIP's last 3 bytes */
  readonly vmac: string;
}

export interface FarmRuleSpec {
  readonly proto?: 'tcp' | 'udp';
  readonly port?: number;
  readonly balance: 'client_ip' | 'client_session';
}

export interface FarmSpec {
  readonly module: string;
  /** nft table name (netdev family) */
  readonly table: string;
  readonly seed: number;
  readonly vips: readonly FarmVip[];
  /** the configured rules; no rule means "all VIP traffic, by client address" */
  readonly rules: readonly FarmRuleSpec[];
}

/** Derives the filter's parameters from a module config; throws on what the filter cannot do. */
export function farmSpec(module: ModuleConfig): FarmSpec {
  if (module.mode !== 'farm') throw new Error(`module "${module.name}" is not a farm module (mode: ${module.mode})`);
  if (module.vip.length === 0) throw new Error(`farm module "${module.name}" has no vip`);
  const vips = module.vip.map((v): FarmVip => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v.addr);
    if (!m) throw new Error(`farm module "${module.name}": vip ${v.addr} must be IPv4 with a prefix length (the farm filter hashes IPv4 only)`);
    const bytes = m.slice(2, 5).map(Number);
    const vmac = ['02', '76', '67', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
    return { addr: m.slice(1, 5).join('.'), prefix: Number(m[5]), iface: v.interface, vmac };
  });
  const rules = (module.farm?.rules ?? []).map((r) => ({ proto: r.proto, port: r.port, balance: r.balance }));
  return {
    module: module.name,
    table: `vigil_farm_${module.id}`,
    seed: fnv1a(`vigil-farm:${module.name}:${module.id}`),
    vips,
    rules: rules.length > 0 ? rules : [{ balance: 'client_ip' }],
  };
}

export function interfacesOf(spec: FarmSpec): string[] {
  return [...new Set(spec.vips.map((v) => v.iface))];
}

/** What one node enforces: its buckets and whether it is the ARP responder. */
export interface FilterState {
  readonly buckets: readonly number[];
  readonly responder: boolean;
  /** buckets this node gave to another live node: its established TCP connections in them go on
   *  here, new connections go to the new owner (TCP rules only; absent = none) */
  readonly draining?: readonly number[];
}

export const NOTHING: FilterState = { buckets: [], responder: false, draining: [] };

export const BUCKETS_COMMENT = 'vigil:buckets';
export const RESPONDER_COMMENT = 'vigil:responder';
export const DRAINING_COMMENT = 'vigil:draining';

/** Replaces any previous table of the module (also a crash leftover) with a fresh one, in one transaction. */
export function renderInstall(spec: FarmSpec, state: FilterState = NOTHING): string {
  return [
    deleteIfExists(spec),
    `add table netdev ${spec.table} { comment "vigil farm module ${spec.module}"; }`,
    `add table ip ${spec.table} { comment "vigil farm module ${spec.module}: connection-aware part"; }`,
    ...chains(spec, state, false),
  ].join('\n') + '\n';
}

/** Swaps the rules of the existing chains in one transaction (packets see the old or the new set). */
export function renderApply(spec: FarmSpec, state: FilterState): string {
  return chains(spec, state, true).join('\n') + '\n';
}

/** Deletes the module's table if it exists (the add-then-delete idiom works on every nft version). */
export function renderRemove(spec: FarmSpec): string {
  return deleteIfExists(spec) + '\n';
}

function deleteIfExists(spec: FarmSpec): string {
  return [`add table netdev ${spec.table}`, `delete table netdev ${spec.table}`, `add table ip ${spec.table}`, `delete table ip ${spec.table}`].join('\n');
}

function chains(spec: FarmSpec, state: FilterState, flush: boolean): string[] {
  const out: string[] = [];
  interfacesOf(spec).forEach((iface, i) => {
    const vips = spec.vips.filter((v) => v.iface === iface);
    const ing = `in${i}`;
    const eg = `out${i}`;
    out.push(`add chain netdev ${spec.table} ${ing} { type filter hook ingress device ${q(iface)} priority -500; policy accept; }`);
    out.push(`add chain netdev ${spec.table} ${eg} { type filter hook egress device ${q(iface)} priority -500; policy accept; }`);
    if (flush) out.push(`flush chain netdev ${spec.table} ${ing}`, `flush chain netdev ${spec.table} ${eg}`);
    const rule = (chain: string, body: string) => out.push(`add rule netdev ${spec.table} ${chain} ${body}`);
    const host = 'meta pkttype set host accept';
    const respond = state.responder ? `${host} comment "${RESPONDER_COMMENT}"` : 'drop';
    rule(ing, `ether daddr != ${set(vips.map((v) => v.vmac))} accept`);
    rule(ing, `ether type arp ${respond}`);
    rule(ing, 'ether type != ip drop');
    rule(ing, `ip daddr != ${set(vips.map((v) => v.addr))} drop`);
    const mine = bucketSet(state.buckets);
    const draining = bucketSet((state.draining ?? []).filter((b) => !state.buckets.includes(b)));
    for (const r of spec.rules) {
      const match = ruleMatch(r);
      const hash = ruleHash(spec, r);
      if (mine) rule(ing, `${match}${hash} ${mine} ${host} comment "${BUCKETS_COMMENT}"`);
      if (draining && r.proto === 'tcp') rule(ing, `${match}${hash} ${draining} ${host} comment "${DRAINING_COMMENT}"`);
      rule(ing, `${match}drop`);
    }
    rule(ing, respond);
    rule(eg, `ether saddr ${set(vips.map((v) => v.vmac))} drop`);
    for (const v of vips) rule(eg, `arp saddr ip ${v.addr} ${state.responder ? `arp saddr ether set ${v.vmac} accept` : 'drop'}`);
  });
  // After conntrack (priority -150 > -200): a TCP segment other than a SYN that belongs to no
  // connection of this node is another node's (a bucket moved, or is draining here): drop it rather
  // than answer a reset that would kill the other node's connection. New connections in draining
  // buckets are the new owner's.
  const pre = 'pre';
  const vipSet = set(spec.vips.map((v) => v.addr));
  out.push(`add chain ip ${spec.table} ${pre} { type filter hook prerouting priority -150; policy accept; }`);
  if (flush) out.push(`flush chain ip ${spec.table} ${pre}`);
  // (invalid too: conntrack cannot pick up a FIN or RST mid-stream, and answering it would reset)
  out.push(`add rule ip ${spec.table} ${pre} ip daddr ${vipSet} tcp flags & (syn | ack) != syn ct state new,invalid drop`);
  const draining = bucketSet((state.draining ?? []).filter((b) => !state.buckets.includes(b)));
  if (draining) {
    for (const r of spec.rules.filter((x) => x.proto === 'tcp')) {
      // a SYN is dropped whatever conntrack says: a closed connection's entry can be reopened by
      // a SYN reusing its ports without being "new"
      out.push(`add rule ip ${spec.table} ${pre} ip daddr ${vipSet} ${ruleMatch(r)}${ruleHash(spec, r)} ${draining} tcp flags & (syn | ack) == syn drop`);
      out.push(`add rule ip ${spec.table} ${pre} ip daddr ${vipSet} ${ruleMatch(r)}${ruleHash(spec, r)} ${draining} ct state new drop`);
    }
  }
  return out;
}

function ruleMatch(r: FarmRuleSpec): string {
  return r.proto === undefined ? '' : r.port === undefined ? `meta l4proto ${r.proto} ` : `${r.proto} dport ${r.port} `;
}

function ruleHash(spec: FarmSpec, r: FarmRuleSpec): string {
  const key = r.balance === 'client_session' && r.proto !== undefined ? `ip saddr . ${r.proto} sport` : 'ip saddr';
  return `jhash ${key} mod ${BUCKETS} seed 0x${spec.seed.toString(16)}`;
}

function q(s: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(s)) throw new Error(`interface name "${s}" is not valid`);
  return `"${s}"`;
}

function set(items: readonly string[]): string {
  return items.length === 1 ? items[0] : `{ ${items.join(', ')} }`;
}

/** "{ 0-3, 7, 9-10 }", or undefined for no bucket (nft rejects an empty anonymous set). */
export function bucketSet(buckets: readonly number[]): string | undefined {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const parts: string[] = [];
  let start = sorted[0];
  let prev = start;
  for (const b of [...sorted.slice(1), Number.NaN]) {
    if (b === prev + 1) { prev = b; continue; }
    parts.push(start === prev ? `${start}` : `${start}-${prev}`);
    start = b;
    prev = b;
  }
  return `{ ${parts.join(', ')} }`;
}

/** Reads the buckets back from `nft -j list table` output (the union of the bucket rules' sets). */
export function parseListing(json: string): FilterState {
  const doc = JSON.parse(json) as { nftables: Array<{ rule?: { comment?: string; expr: unknown[] } }> };
  const buckets = new Set<number>();
  const draining = new Set<number>();
  let responder = false;
  for (const item of doc.nftables) {
    const r = item.rule;
    if (!r) continue;
    if (r.comment === RESPONDER_COMMENT) responder = true;
    if (r.comment !== BUCKETS_COMMENT && r.comment !== DRAINING_COMMENT) continue;
    const into = r.comment === BUCKETS_COMMENT ? buckets : draining;
    for (const e of r.expr as Array<{ match?: { left?: { jhash?: unknown }; right?: unknown } }>) {
      if (!e.match?.left?.jhash) continue;
      // nft prints a one-element set as a number, a one-range set as a range
      const right = e.match.right as { set?: unknown[]; range?: [number, number] } | number;
      const elems = typeof right === 'number' || right.range ? [right] : right.set ?? [];
      for (const el of elems) {
        if (typeof el === 'number') into.add(el);
        else {
          const [a, b] = (el as { range: [number, number] }).range;
          for (let x = a; x <= b; x += 1) into.add(x);
        }
      }
    }
  }
  const sort = (x: Set<number>) => [...x].sort((a, b) => a - b);
  return { buckets: sort(buckets), responder, draining: sort(draining) };
}
