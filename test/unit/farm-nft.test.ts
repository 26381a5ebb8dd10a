import { describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../node-service/src/config/index.ts';
import { bucketSet, FarmFilter, farmSpec, parseListing, planBuckets, planTransition, renderApply, renderInstall, renderRemove, type Exec } from '../../node-service/src/farm/index.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';

function module(farm: Record<string, unknown>, vip = [{ addr: '198.18.5.200/24', interface: 'eth0' }]) {
  const cfg = validateConfig({
    cluster: 't', secret_file: '/k', api: { admin_token_file: '/t' },
    nodes: [{ name: 'n1', addrs: ['198.18.5.1'] }, { name: 'n2', addrs: ['198.18.5.2'] }],
    modules: [{ name: 'web', mode: 'farm', id: 2, vip, farm }],
  }, '/tmp/c.yaml', { skipFileChecks: true });
  return cfg.modules[0];
}

describe('farm nft ruleset', () => {
  const m = module({ rules: [{ port: 8080, proto: 'tcp', balance: 'client_session' }, { port: 53, proto: 'udp', balance: 'client_ip' }] });
  const spec = farmSpec(m);

  it('derives a stable table, seed and virtual MAC from the config', () => {
    expect(spec.table).toBe('vigil_farm_2');
    expect(spec.vips).toEqual([{ addr: '198.18.5.200', prefix: 24, iface: 'eth0', vmac: '02:76:67:12:05:c8' }]);
    expect(farmSpec(m).seed).toBe(spec.seed);
    expect(spec.seed).not.toBe(0);
  });

  it('hashes client address and port for client_session, client address only for client_ip, with a fixed seed', () => {
    const text = renderApply(spec, { buckets: [0, 1, 2, 7], responder: false });
    const seed = `seed 0x${spec.seed.toString(16)}`;
    expect(text).toContain(`tcp dport 8080 jhash ip saddr . tcp sport mod 256 ${seed} { 0-2, 7 } meta pkttype set host accept`);
    expect(text).toContain(`udp dport 53 jhash ip saddr mod 256 ${seed} { 0-2, 7 } meta pkttype set host accept`);
    expect(text).toContain('tcp dport 8080 drop');
    expect(text.indexOf('flush chain')).toBeLessThan(text.indexOf('add rule'));
  });

  it('only the responder answers ARP for the VIP, with the virtual MAC; nobody sends from the virtual MAC', () => {
    const resp = renderApply(spec, { buckets: [], responder: true });
    const other = renderApply(spec, { buckets: [], responder: false });
    expect(resp).toContain('arp saddr ip 198.18.5.200 arp saddr ether set 02:76:67:12:05:c8 accept');
    expect(other).toContain('arp saddr ip 198.18.5.200 drop');
    for (const t of [resp, other]) expect(t).toContain('ether saddr 02:76:67:12:05:c8 drop');
    expect(resp).toContain('ether type arp meta pkttype set host accept');
    expect(other).toContain('ether type arp drop');
    expect(other).not.toContain('jhash'); // no bucket: no accept rule at all
  });

  it('a draining bucket keeps its established TCP connections here and sends new ones away; unknown non-SYNs are dropped, never reset', () => {
    const text = renderApply(spec, { buckets: [0], responder: false, draining: [4, 5] });
    const seed = `seed 0x${spec.seed.toString(16)}`;
    expect(text).toContain(`tcp dport 8080 jhash ip saddr . tcp sport mod 256 ${seed} { 4-5 } meta pkttype set host accept comment "vigil:draining"`);
    expect(text).not.toMatch(/udp dport 53 jhash .* \{ 4-5 \}/); // UDP has no connection to drain
    expect(text).toContain(`add rule ip vigil_farm_2 pre ip daddr 198.18.5.200 tcp dport 8080 jhash ip saddr . tcp sport mod 256 ${seed} { 4-5 } ct state new drop`);
    expect(text).toContain(`add rule ip vigil_farm_2 pre ip daddr 198.18.5.200 tcp dport 8080 jhash ip saddr . tcp sport mod 256 ${seed} { 4-5 } tcp flags & (syn | ack) == syn drop`);
    expect(text).toContain('add rule ip vigil_farm_2 pre ip daddr 198.18.5.200 tcp flags & (syn | ack) != syn ct state new,invalid drop');
  });

  it('without rules, balances all VIP traffic by client address', () => {
    const text = renderApply(farmSpec(module({})), { buckets: [3], responder: false });
    expect(text).toMatch(/in0 jhash ip saddr mod 256 seed 0x[0-9a-f]+ \{ 3 \} meta pkttype set host accept/);
  });

  it('install replaces leftovers atomically; remove deletes if present', () => {
    expect(renderInstall(spec).split('\n').slice(0, 5)).toEqual([
      'add table netdev vigil_farm_2', 'delete table netdev vigil_farm_2', 'add table ip vigil_farm_2', 'delete table ip vigil_farm_2',
      'add table netdev vigil_farm_2 { comment "vigil farm module web"; }',
    ]);
    expect(renderRemove(spec)).toBe('add table netdev vigil_farm_2\ndelete table netdev vigil_farm_2\nadd table ip vigil_farm_2\ndelete table ip vigil_farm_2\n');
  });

  it('rejects IPv6 VIPs and bad interface names', () => {
    expect(() => farmSpec(module({}, [{ addr: '2001:db8::1/64', interface: 'eth0' }]))).toThrow(/IPv4/);
    expect(() => renderApply(farmSpec(module({}, [{ addr: '198.18.5.200/24', interface: 'eth0;x' }])), { buckets: [], responder: false })).toThrow(/not valid/);
  });

  it('formats bucket sets as ranges and reads them back from nft JSON', () => {
    expect(bucketSet([5, 1, 2, 3, 9, 10])).toBe('{ 1-3, 5, 9-10 }');
    expect(bucketSet([])).toBeUndefined();
    const json = JSON.stringify({ nftables: [{ metainfo: {} }, { rule: { comment: 'vigil:buckets', expr: [
      { match: { left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 8080 } },
      { match: { left: { jhash: { mod: 256 } }, right: { set: [{ range: [1, 3] }, 5] } } },
    ] } }, { rule: { comment: 'vigil:responder', expr: [] } }, { rule: { comment: 'vigil:draining', expr: [
      { match: { left: { jhash: { mod: 256 } }, right: 9 } },
    ] } }, { rule: { comment: 'vigil:draining', expr: [
      { match: { left: { jhash: { mod: 256 } }, right: { range: [11, 12] } } },
    ] } }] });
    expect(parseListing(json)).toEqual({ buckets: [1, 2, 3, 5], responder: true, draining: [9, 11, 12] });
  });
});

describe('FarmFilter command order', () => {
  it('installs the table before the VIP, removes the VIP before the table, applies in one nft transaction', async () => {
    const calls: string[] = [];
    const exec: Exec = async (cmd, args) => { calls.push(`${cmd} ${args.join(' ')}`); return ''; };
    const m = module({ rules: [{ port: 8080, proto: 'tcp', balance: 'client_session' }] });
    const filter = new FarmFilter({ module: m, self: 'n1', log: silentLogger(), exec, sysctlDir: '/nonexistent' });
    await filter.install();
    const nftAt = calls.indexOf('nft -f -');
    const vipAt = calls.findIndex((c) => c.startsWith('ip addr replace 198.18.5.200/24 dev eth0'));
    expect(nftAt).toBeGreaterThan(-1);
    expect(vipAt).toBeGreaterThan(nftAt);
    calls.length = 0;
    const state = await filter.apply(planBuckets({ nodes: m.nodes, power: {}, alive: new Set(['n1', 'n2']) }));
    expect(calls).toEqual(['nft -f -']);
    expect(state.buckets).toHaveLength(128);
    calls.length = 0;
    await filter.remove();
    expect(calls.findIndex((c) => c.startsWith('ip addr del'))).toBeLessThan(calls.indexOf('nft -f -'));
    expect(() => new FarmFilter({ module: m, self: 'zz', log: silentLogger(), exec })).toThrow(/not one of/);
  });
});

describe('FarmFilter draining', () => {
  it('a bucket given away drains for drainMs, then is dropped at ingress; taking it back ends the drain', async () => {
    vi.useFakeTimers();
    try {
      const inputs: string[] = [];
      const exec: Exec = async (cmd, args, input) => { if (input) inputs.push(input); return ''; };
      const m = module({ rules: [{ port: 8080, proto: 'tcp', balance: 'client_session' }] });
      const filter = new FarmFilter({ module: m, self: 'n1', log: silentLogger(), exec, sysctlDir: '/nonexistent', drainMs: 1000 });
      const both = planBuckets({ nodes: m.nodes, power: {}, alive: new Set(['n1', 'n2']) });
      const alone = planBuckets({ nodes: m.nodes, power: {}, alive: new Set(['n1']) });
      await filter.apply(alone);
      // WHEN n2 comes back, n1 gives it half of the buckets
      const s = await filter.apply(both);
      expect(s.buckets).toHaveLength(128);
      expect(s.draining).toHaveLength(128);
      expect(inputs.at(-1)).toContain('vigil:draining');
      // THEN after drainMs the filter re-applies without them
      await vi.advanceTimersByTimeAsync(1100);
      expect(inputs.at(-1)).not.toContain('vigil:draining');
      // and a bucket that comes back is no longer draining
      await filter.apply(alone);
      const again = await filter.apply(alone);
      expect(again.draining).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('planTransition', () => {
  const nodes = ['a', 'b', 'c'];
  const plan = (alive: string[]) => planBuckets({ nodes, power: {}, alive: new Set(alive) });

  it('a failover applies at once (no handover)', () => {
    const t = planTransition({ nodes, power: {}, alive: new Set(['a', 'b']), self: 'a', prev: plan(['a', 'b', 'c']) });
    expect(t.handover).toBeNull();
    expect(t.next).toEqual(plan(['a', 'b']));
  });

  it('survivors release a returning node’s buckets at once; it takes them only after the grace', () => {
    const back = planTransition({ nodes, power: {}, alive: new Set(nodes), self: 'a', prev: plan(['a', 'b']) });
    expect(back.handover!.owners.filter((o) => o === 'c')).toHaveLength(0);
    expect(back.handover!.owners.filter((o) => o === 'a')).toHaveLength(back.next.owners.filter((o) => o === 'a').length);
    for (const prev of [null, plan(['c'])]) {
      const me = planTransition({ nodes, power: {}, alive: new Set(nodes), self: 'c', prev });
      expect(me.handover!.owners.filter((o) => o === 'c')).toHaveLength(0);
      expect(me.next.owners.filter((o) => o === 'c').length).toBeGreaterThan(80);
    }
  });

  it('the first node to start takes everything at once', () => {
    const t = planTransition({ nodes, power: {}, alive: new Set(['a']), self: 'a', prev: null });
    expect(t.handover).toBeNull();
  });
});
