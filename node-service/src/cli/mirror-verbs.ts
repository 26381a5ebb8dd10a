import type { Command } from 'commander';
import { formatBandwidth } from '../config/bandwidth.ts';
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts';
import type { ModuleStatus } from '../daemon/module-runner.ts';
import { checksumPlan, compareListings, type Difference, type MirrorListing, type MirrorPlan, type PlanItem } from '../mirror/verify.ts';
import { nodeApis } from './all-nodes.ts';
import { ApiClient, CliError, type ClientOptions } from './client.ts';
import { table } from './format.ts';

type WithClientOptions = (cmd: Command) => Command;
type About = { module: string; node: string; state: ModuleStatus['state'] };
type PairOpts = { module: string; config: string; tokenFile?: string; json?: boolean };

/** vigil verify exits 1 when the copies differ: its errors (usage included) exit 2 */
export const VERIFY_ERROR_EXIT = 2;
/** listing a large tree hashes every byte of it */
const LISTING_TIMEOUT_MS = 30 * 60_000;

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** One node of the module, reached through its API (from the cluster config). */
class NodeApi {
  constructor(
    readonly node: string,
    private readonly client: ApiClient,
    private readonly module: string,
  ) {}

  async get<T>(what: string, timeoutMs?: number): Promise<T & About> {
    let r;
    try {
      r = await this.client.request<(T & About) | { error: string }>('GET', `/modules/${encodeURIComponent(this.module)}${what}`, undefined, timeoutMs);
    } catch (e) {
      throw new CliError(`${this.node}: ${(e as Error).message.replace(/: is it running\?$/, '')}: start vigil on ${this.node} (systemctl start vigil), both copies are needed`);
    }
    if (r.status !== 200) throw new CliError(`${this.node}: ${(r.body as { error: string }).error}`);
    return r.body as T & About;
  }
}

function moduleNodes(o: PairOpts, verb: string): NodeApi[] {
  return nodeApis(o.config, o.module, `vigil ${verb}`).map((t) => new NodeApi(t.node, ApiClient.resolve({ config: o.config, api: t.api, tokenFile: o.tokenFile }), o.module));
}

// ------------------------------------------------------------------ verify

const key = (d: Difference) => `${d.kind}\0${d.path}`;

async function verify(o: PairOpts): Promise<void> {
  const nodes = moduleNodes(o, 'verify');
  const about = await Promise.all(nodes.map((n) => n.get<ModuleStatus>('')));
  const states = about.map((a, i) => `${nodes[i].node} ${a.state}`).join(', ');
  const alone = about.findIndex((a) => a.state === 'ALONE');
  if (alone >= 0) throw new CliError(`${o.module} is ALONE on ${nodes[alone].node}: the copies differ by design until the secondary is back and resynced. See what a resync would copy with vigil diff -m ${o.module}, or wait for PRIM (vigil waitstate -m ${o.module} PRIM)`);
  const p = about.findIndex((a) => a.state === 'PRIM');
  const idle = about.every((a) => a.state === 'STOP' || a.state === 'WAIT');
  if ((p < 0 || about[1 - p].state !== 'SECOND') && !idle) {
    throw new CliError(`${o.module} is ${states}: verify compares an in-sync pair (PRIM and SECOND) or a stopped one; wait for it (vigil waitstate -m ${o.module} PRIM) or stop the module on both nodes`);
  }
  const [prim, sec] = p >= 0 ? [nodes[p], nodes[1 - p]] : nodes;
  const list = () => Promise.all([prim.get<MirrorListing>('/mirror/listing', LISTING_TIMEOUT_MS), sec.get<MirrorListing>('/mirror/listing', LISTING_TIMEOUT_MS)]);
  let [a, b] = await list();
  let diffs = compareListings(a, b);
  if (diffs.length > 0) {
    // the application may be writing: what differed only because a change was on its way is gone at a second look
    await new Promise((r) => setTimeout(r, 1000));
    [a, b] = await list();
    const again = new Set(compareListings(a, b).map(key));
    diffs = diffs.filter((d) => again.has(key(d)));
  }
  const bytes = a.entries.reduce((n, e) => n + e.s, 0);
  const roles = p >= 0 ? ['PRIM', 'SECOND'] : [about[0].state, about[1].state];
  if (o.json) {
    console.log(JSON.stringify({ module: o.module, primary: { node: prim.node, state: roles[0] }, secondary: { node: sec.node, state: roles[1] }, entries: a.entries.length, bytes, same: diffs.length === 0, differences: diffs }));
  } else if (diffs.length === 0) {
    console.log(`${o.module}: ${prim.node} (${roles[0]}) and ${sec.node} (${roles[1]}) hold the same data: ${a.entries.length} entries, ${formatBytes(bytes)} compared by content`);
  } else {
    console.log(`${o.module}: ${prim.node} (${roles[0]}) and ${sec.node} (${roles[1]}) differ in ${diffs.length} entr${diffs.length === 1 ? 'y' : 'ies'}:`);
    console.log(table(diffs.map((d) => [`  ${d.kind}`, d.path, d.detail])));
    console.log(`to repair: vigil prim -m ${o.module} --fullsync --node ${prim.node} (a checksum resync copies what differs from ${prim.node})`);
  }
  if (diffs.length > 0) process.exitCode = 1;
}

// ------------------------------------------------------------------ diff

interface DiffResult {
  module: string;
  from: string;
  to: string;
  mode: 'in-sync' | 'delta' | 'checksum';
  running: boolean;
  entries: number;
  bytes: number;
  bandwidth: number | null;
  estimateS: number | null;
  basis: string;
  items: PlanItem[];
}

async function diff(o: PairOpts): Promise<void> {
  const nodes = moduleNodes(o, 'diff');
  const plans = await Promise.all(nodes.map((n) => n.get<MirrorPlan>('/mirror/plan').catch((e: Error) => e)));
  const p = plans.findIndex((x) => !(x instanceof Error) && x.status.role === 'primary');
  if (p < 0) {
    const down = plans.find((x): x is Error => x instanceof Error);
    if (down) throw down;
    const states = (plans as (MirrorPlan & About)[]).map((x) => `${x.node} ${x.state}`).join(', ');
    throw new CliError(`${o.module} is primary on no node (${states}): a resync copies from the primary. Start the module (vigil start -m ${o.module}), or compare the copies with vigil verify -m ${o.module}`);
  }
  const prim = plans[p] as MirrorPlan & About;
  const secPlan = plans[1 - p];
  const sec = nodes[1 - p];
  const st = prim.status;
  let mode: DiffResult['mode'];
  let items = prim.items;
  let bytes = prim.bytes;
  let basis: string;
  if (st.peer === 'synced') {
    [mode, items, bytes, basis] = ['in-sync', [], 0, `${sec.node} is in sync`];
  } else if (st.peer === 'resyncing' && st.resync) {
    // what is left of the running one: the entries still tracked, and the bytes it has not sent yet (a
    // file being copied is tracked whole until its last byte is acknowledged)
    mode = st.resync.mode;
    bytes = Math.max(0, st.resync.bytesTotal - st.resync.bytesDone);
    basis = st.resync.bytesTotal === 0 && mode === 'checksum' ? 'comparing checksums first: the size is known when that ends' : `${formatBytes(st.resync.bytesDone)} sent so far`;
  } else if (prim.intact && (secPlan instanceof Error || (secPlan.baseline === prim.baseline && secPlan.clean))) {
    mode = 'delta';
    basis = secPlan instanceof Error ? `${sec.node} not reachable: assuming it returns with the data it had` : `${sec.node} holds sync ${String(prim.baseline).slice(0, 8)} unchanged`;
  } else {
    if (secPlan instanceof Error) throw new CliError(`${o.module}: the next resync compares checksums, so ${sec.node}'s copy must be listed: ${secPlan.message}`);
    const [a, b] = await Promise.all([nodes[p].get<MirrorListing>('/mirror/listing', LISTING_TIMEOUT_MS), sec.get<MirrorListing>('/mirror/listing', LISTING_TIMEOUT_MS)]);
    mode = 'checksum';
    ({ items, bytes } = checksumPlan(a, b));
    basis = prim.intact ? `${sec.node} holds other data than ${prim.node} tracked from` : `${prim.node}'s tracking is not complete (crash, or edits while stopped)`;
  }
  const bw = st.resyncBandwidth ?? null;
  const last = st.lastResync;
  const rate = bw ?? (last && last.durationMs > 500 && last.bytesSent > 0 ? (last.bytesSent * 1000) / last.durationMs : null);
  const estimateS = bytes === 0 ? 0 : rate ? bytes / rate : null;
  const r: DiffResult = { module: o.module, from: prim.node, to: sec.node, mode, running: st.peer === 'resyncing', entries: items.length, bytes, bandwidth: bw, estimateS, basis, items };
  if (o.json) return console.log(JSON.stringify(r));
  if (mode === 'in-sync') return console.log(`${o.module}: ${prim.node} (${prim.state}) and ${sec.node} are in sync: a resync would copy nothing`);
  const at = bw !== null ? `at ${formatBandwidth(bw)}` : rate ? `at the last resync's ${formatBandwidth(Math.round(rate))} (resync_bandwidth unlimited)` : '';
  const time = estimateS === null ? 'no time estimate (resync_bandwidth unlimited and no resync measured yet)' : `about ${estimateS.toFixed(1)} s ${at}`;
  console.log(`${o.module}: ${r.running ? 'the running' : 'a'} ${mode} resync from ${prim.node} to ${sec.node} ${r.running ? 'still copies' : 'would copy'} ${items.length} entr${items.length === 1 ? 'y' : 'ies'}, ${formatBytes(bytes)}: ${time} (${basis})`);
  const shown = items.slice(0, 50);
  if (shown.length) console.log(table(shown.map((i) => [`  ${i.what}`, i.what === 'meta' || i.what === 'remove' ? '' : formatBytes(i.bytes), i.path])));
  if (items.length > shown.length) console.log(`  … and ${items.length - shown.length} more (--json lists them all)`);
}

// ------------------------------------------------------------------ resync-bandwidth

async function resyncBandwidth(o: { module: string } & ClientOptions, rate: string | undefined): Promise<void> {
  const client = ApiClient.resolve(o);
  const path = `/modules/${encodeURIComponent(o.module)}/resync-bandwidth`;
  const r = rate === undefined ? await client.request<{ text?: string; node?: string; error?: string }>('GET', path) : await client.request<{ message?: string; error?: string }>('POST', path, { bandwidth: rate });
  if (r.status !== 200) throw new CliError(`${o.module}: ${r.body.error ?? `HTTP ${r.status}`}`);
  const b = r.body as { message?: string; text?: string; node?: string };
  console.log(rate === undefined ? `${o.module}: resync bandwidth ${b.text} on ${b.node}` : `${o.module}: ${b.message}`);
}

/** vigil resync-bandwidth, verify and diff: the resync controls and the comparison of both copies (issue 13). */
export function registerMirrorVerbs(program: Command, withClientOptions: WithClientOptions): void {
  withClientOptions(
    program
      .command('resync-bandwidth')
      .description('show or change, live, how fast resyncs of a mirror module copy (replication.resync_bandwidth) on this node: the running resync follows within a second. Kept until the daemon restarts; use --all-nodes for both nodes')
      .argument('[RATE]', 'e.g. 50MB/s, 20MiB/s, 800KB/s, or unlimited; without it, the bandwidth in force is shown')
      .requiredOption('-m, --module <name>', 'module name'),
  ).action(async (rate: string | undefined, o: { module: string } & ClientOptions) => resyncBandwidth(o, rate));

  const pairOptions = (cmd: Command) =>
    cmd
      .requiredOption('-m, --module <name>', 'module name')
      .option('--json', 'one JSON object')
      .option('--config <file>', 'cluster.yaml (gives both nodes\' API addresses and the admin token)', DEFAULT_CONFIG_FILE)
      .option('--token-file <file>', 'API token file (default: api.admin_token_file of the config, or $VIGIL_TOKEN)');

  pairOptions(
    program
      .command('verify')
      .description('compare both copies of a mirror module by content (per-zone digests, sizes, modes, owners, links, xattrs; not times) without changing anything, and list the differences: exit 0 when identical, 1 when they differ, 2 on an error. Needs an in-sync pair (PRIM and SECOND) or a module stopped on both nodes'),
  ).action(async (o: PairOpts) => {
    try {
      await verify(o);
    } catch (e) {
      throw new CliError((e as Error).message, VERIFY_ERROR_EXIT);
    }
  });

  pairOptions(
    program
      .command('diff')
      .description('say what a resync of a mirror module would copy from its primary (or what the running one still copies): mode, entries, size, and the time it takes at the configured resync bandwidth. Changes nothing'),
  ).action(async (o: PairOpts) => diff(o));
}
