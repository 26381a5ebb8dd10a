/**
 * Cloud path, end to end on one machine: two real node-service daemons (nodes 127.0.0.1 and 127.0.0.2
 * by default, both routable on Linux loopback), a simulated load balancer probing their ready.txt with
 * a cloud's timing scaled down 10x (from the shared probe settings), and the functions' hono app
 * serving POST /events locally (@hono/node-server), driving the simulated LB through the same
 * CloudAdapter interface as a cloud. A client sends a request every 10 ms to wherever the load
 * balancer routes it, fail-open included, and asks the node it reached whether it is the primary.
 *
 * Each cloud profile, as deployed (infra/ and cloud-adapters/src/layout.ts):
 *   aws        NLB fails open to every registered target; only the observed primary is registered
 *   azure      probe noHealthyBackendsBehavior AllProbedDown: with no healthy backend, traffic goes nowhere
 *   gcp        failover policy dropTrafficIfUnhealthy: the same
 * and the baseline measured in the same run:
 *   aws-both   the same NLB with both nodes registered (the stacks before issue 11)
 *
 * For each kill -9 of the current primary daemon it measures
 *   probe_shift_ms      kill → the LB, by its probes alone, sees the old primary unhealthy and the survivor healthy
 *   event_shift_ms      kill → the function received the survivor's signed "entered ALONE/PRIM" event and moved traffic
 *   misrouted_requests  requests that reached a node that was not primary (its module state, read from its API, not PRIM/ALONE)
 * Last line: RESULT probe_shift_ms=N event_shift_ms=N misrouted_requests=N swap_misrouted_requests=N
 * baseline_misrouted_requests=N (AWS timings; misrouted_requests: during the kill failovers, summed over
 * aws, azure and gcp, target 0; then the same during swaps, and the both-registered baseline).
 *
 *   npm run bench:cloud                     BENCH_KILLS=3 BENCH_SWAPS=3 BENCH_SUBNET=127.0.0 BENCH_API_PORT=9317 BENCH_PROFILES=aws,azure,gcp,aws-both
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SimulatedLbAdapter, SimulatedLoadBalancer, awsTimingScaled, azureTimingScaled, gcpTimingScaled } from '../cloud-adapters/src/sim/simulated-lb.ts';
import type { CloudEvent } from '../node-service/src/contract/index.ts';
import { LocalCluster } from '../node-service/src/demo/local-cluster.ts';
import { parseFunctionsConfig } from '../functions/src/config.ts';
import { createController, type Controller } from '../functions/src/controller.ts';
import { serveLocal, type LocalFunctionServer } from '../functions/src/local-server.ts';

export interface RigOptions {
  /** first three octets of the nodes' loopback addresses (node1 = .1, node2 = .2) @default '127.0.0' */
  readonly subnet?: string;
  /** node service api.port @default 9317 */
  readonly apiPort?: number;
  /** module id (heartbeat/replication port offset) @default 7 */
  readonly moduleId?: number;
  /** AWS timing divided by this @default 10 */
  readonly scale?: number;
  readonly module?: string;
  /** @default 'aws' */
  readonly profile?: CloudProfile;
}

export type CloudProfile = 'aws' | 'azure' | 'gcp' | 'aws-both';

const PROFILES: Record<CloudProfile, { timing: typeof awsTimingScaled; noHealthy: 'fail-open' | 'drop'; servingOnly: boolean; label: string }> = {
  aws: { timing: awsTimingScaled, noHealthy: 'fail-open', servingOnly: true, label: 'AWS NLB (fails open), only the primary registered' },
  azure: { timing: azureTimingScaled, noHealthy: 'drop', servingOnly: false, label: 'Azure LB, probe AllProbedDown' },
  gcp: { timing: gcpTimingScaled, noHealthy: 'drop', servingOnly: false, label: 'GCP passthrough NLB, dropTrafficIfUnhealthy' },
  'aws-both': { timing: awsTimingScaled, noHealthy: 'fail-open', servingOnly: false, label: 'baseline: AWS NLB (fails open), both nodes registered' },
};

/** What the client saw: a request every `everyMs` to where the load balancer routes it. */
export interface ClientCounts {
  ok: number;
  /** reached a node that is not the primary (module state not PRIM/ALONE) */
  misrouted: number;
  /** routed to a node that did not answer (killed) */
  failed: number;
  /** no target: the load balancer sent it nowhere */
  dropped: number;
}

export interface ReceivedEvent {
  readonly event: CloudEvent;
  readonly actions: readonly string[];
  /** performance.now() when the function had acted on it */
  readonly at: number;
}

export interface KillResult {
  readonly killed: string;
  readonly survivor: string;
  readonly probeShiftMs: number;
  /** undefined when no event arrived (daemon without cloud_events publishing) */
  readonly eventShiftMs?: number;
  readonly event?: ReceivedEvent;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CloudPathRig {
  readonly events: ReceivedEvent[] = [];
  readonly client: ClientCounts = { ok: 0, misrouted: 0, failed: 0, dropped: 0 };
  /** the same, by what was going on when the request was routed: kill failovers or swaps */
  readonly byPhase: Record<'failover' | 'swap', ClientCounts> = { failover: { ok: 0, misrouted: 0, failed: 0, dropped: 0 }, swap: { ok: 0, misrouted: 0, failed: 0, dropped: 0 } };
  phase: 'failover' | 'swap' = 'failover';
  private clientTimer?: NodeJS.Timeout;
  private rr = 0;
  readonly healthLog: Array<{ node: string; health: string; at: number }> = [];
  private constructor(
    readonly cluster: LocalCluster,
    readonly lb: SimulatedLoadBalancer,
    readonly controller: Controller,
    readonly fn: LocalFunctionServer,
    readonly secretDir: string,
    readonly module: string,
  ) {}

  static async start(o: RigOptions = {}): Promise<CloudPathRig> {
    const subnet = o.subnet ?? '127.0.0';
    const apiPort = o.apiPort ?? 9317;
    const module = o.module ?? 'mirror';
    const addrs = [`${subnet}.1`, `${subnet}.2`];
    const secretDir = mkdtempSync(join(tmpdir(), 'vigil-cloud-'));
    const secret = `bench-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-secret`;
    const secretFile = join(secretDir, 'cloud-events.key');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });

    const profile = PROFILES[o.profile ?? 'aws'];
    const timing = profile.timing(module, 'mirror', apiPort, o.scale ?? 10);
    const holder: { rig?: CloudPathRig } = {};
    const lb = new SimulatedLoadBalancer({
      targets: addrs.map((a, i) => ({ node: `node${i + 1}`, url: `http://${a}:${apiPort}/var/modules/${module}/ready.txt` })),
      ...timing,
      noHealthy: profile.noHealthy,
    });
    const config = parseFunctionsConfig({
      clusters: {
        local: {
          healthPort: apiPort,
          eventSecret: secret,
          adminTokenEnv: 'VIGIL_RIG_ADMIN_TOKEN',
          nodes: addrs.map((address, i) => ({ name: `node${i + 1}`, address })),
          // resource names are not used by the simulated LB; the schema wants a real cloud's
          modules: [{ name: module, mode: 'mirror', cloud: { provider: 'aws', targetGroupName: 'simulated', vpcId: 'vpc-local', port: 8080 } }],
        },
      },
    });
    // the node API's token is known once the cluster exists: GET /status reads it from this env
    const env: NodeJS.ProcessEnv = {};
    const controller = createController({
      config,
      env,
      adapterFor: (d) => new SimulatedLbAdapter(lb, { ...d, resources: { name: 'local' } }, { servingOnly: profile.servingOnly }),
      onEvent: (event, actions) => holder.rig?.events.push({ event, actions, at: performance.now() }),
    });
    const fn = await serveLocal(controller);
    const cluster = new LocalCluster({
      subnet,
      apiPort,
      module: {
        name: module,
        id: o.moduleId ?? 7,
        default_primary: 'node1',
        heartbeat: { pulse: '100ms', timeout: '1s' },
        cloud_events: { url: `${fn.url}/events`, secret_file: secretFile },
      } as never,
    });
    env.VIGIL_RIG_ADMIN_TOKEN = cluster.token;
    const rig = new CloudPathRig(cluster, lb, controller, fn, secretDir, module);
    holder.rig = rig;
    // health transitions as the probes alone see them (registration aside)
    const last = new Map<string, string>();
    const watch = setInterval(() => {
      for (const n of ['node1', 'node2']) {
        const h = lb.state(n).health;
        if (last.get(n) !== h) {
          last.set(n, h);
          rig.healthLog.push({ node: n, health: h, at: performance.now() });
        }
      }
    }, 5);
    watch.unref();
    rig.stopWatch = () => clearInterval(watch);
    lb.start();
    cluster.start('node1');
    cluster.start('node2');
    await cluster.waitFor({ node1: 'PRIM', node2: 'SECOND' }, 45_000);
    await rig.settled('node1', 'node2');
    return rig;
  }

  private stopWatch: () => void = () => {};

  /**
   * starts the client: one request every `everyMs` through the load balancer's routing (fail-open
   * included), to the node's ready.txt (was the node reachable?). Whether that node was primary when
   * the load balancer sent the request there is read afterwards from the node's own transition log
   * (`classify`): the state at the moment of routing, not at the moment of answering.
   */
  startClient(everyMs = 10): void {
    const urls = new Map(this.lb.opts.targets.map((t) => [t.node, t.url]));
    this.clientTimer = setInterval(() => {
      const to = this.lb.route();
      if (to.length === 0) {
        this.client.dropped++;
        this.byPhase[this.phase].dropped++;
        return;
      }
      const node = to[this.rr++ % to.length];
      const entry = { t: Date.now(), node, phase: this.phase, reached: fetch(urls.get(node)!, { signal: AbortSignal.timeout(500) }).then(async (r) => (await r.arrayBuffer(), true), () => false) };
      this.routed.push(entry);
    }, everyMs);
    this.clientTimer.unref();
  }

  private routed: { t: number; node: string; phase: 'failover' | 'swap'; reached: Promise<boolean> }[] = [];

  /** a node's state changes (transitions done), from its API's log */
  async stateLog(node: string): Promise<{ time: number; from: string; to: string }[]> {
    const r = await fetch(this.cluster.url(node, `/api/v1/modules/${this.module}/log?n=500`), { headers: { authorization: `Bearer ${this.cluster.token}` }, signal: AbortSignal.timeout(2000) });
    const recs = (await r.json()) as Array<{ time: string; kind: string; phase?: string; from: string; to: string }>;
    return recs.filter((x) => x.kind === 'transition' && x.phase === 'done').map((x) => ({ time: Date.parse(x.time), from: x.from, to: x.to })).sort((x, y) => x.time - y.time);
  }

  /** counts the requests routed so far: ok (reached a primary), misrouted (reached a non-primary), failed (unreachable) */
  async classify(logs: Record<string, { time: number; from: string; to: string }[]>): Promise<void> {
    const batch = this.routed;
    this.routed = [];
    for (const r of batch) {
      const count = (k: keyof ClientCounts) => {
        this.client[k]++;
        this.byPhase[r.phase][k]++;
      };
      if (!(await r.reached)) {
        count('failed');
        continue;
      }
      const log = logs[r.node] ?? [];
      const last = [...log].reverse().find((x) => x.time <= r.t);
      const state = last ? last.to : (log[0]?.from ?? 'UNKNOWN');
      count(state === 'PRIM' || state === 'ALONE' ? 'ok' : 'misrouted');
    }
  }

  async logs(): Promise<Record<string, { time: number; from: string; to: string }[]>> {
    const out: Record<string, { time: number; from: string; to: string }[]> = {};
    for (const n of ['node1', 'node2']) out[n] = await this.stateLog(n).catch(() => []);
    return out;
  }

  /** waits until the probes see `primary` healthy and `secondary` unhealthy, and a reconcile re-registered everyone */
  async settled(primary: string, secondary: string, timeoutMs = 20_000): Promise<void> {
    await this.controller.reconcile('local');
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.lb.state(primary).health === 'healthy' && this.lb.state(secondary).health === 'unhealthy') return;
      await sleep(20);
    }
    throw new Error(`LB did not settle: ${primary}=${this.lb.state(primary).health} ${secondary}=${this.lb.state(secondary).health}`);
  }

  /** kill -9 of `primary`'s daemon; measures the LB's and the function's view of the shift */
  async killPrimary(primary: string, survivor: string, timeoutMs = 15_000): Promise<KillResult> {
    this.beforeKill = await this.logs();
    const t0 = performance.now();
    await this.cluster.kill(primary, 'SIGKILL');
    let probeAt: number | undefined;
    let ev: ReceivedEvent | undefined;
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && (probeAt === undefined || ev === undefined)) {
      if (probeAt === undefined) {
        const after = this.healthLog.filter((h) => h.at >= t0);
        const deadAt = after.find((h) => h.node === primary && h.health === 'unhealthy')?.at;
        const upAt = after.find((h) => h.node === survivor && h.health === 'healthy')?.at;
        if (deadAt !== undefined && upAt !== undefined) probeAt = Math.max(deadAt, upAt);
      }
      ev ??= this.events.find((e) => e.at >= t0 && e.event.node === survivor && (e.event.to === 'ALONE' || e.event.to === 'PRIM'));
      // past the probe shift, give the event a little more time, then stop waiting for it
      if (probeAt !== undefined && ev === undefined && performance.now() - probeAt > 3000) break;
      await sleep(5);
    }
    if (probeAt === undefined) throw new Error(`the simulated LB never saw ${survivor} take over from ${primary}`);
    return { killed: primary, survivor, probeShiftMs: probeAt - t0, ...(ev ? { eventShiftMs: ev.at - t0, event: ev } : {}) };
  }

  private beforeKill: Record<string, { time: number; from: string; to: string }[]> = {};

  /** restarts the killed node and waits for it to be secondary again, LB settled */
  async recover(killed: string, survivor: string): Promise<void> {
    // requests up to now: the killed node's log as it was before the kill (it answers none after)
    const now = await this.logs();
    await this.classify({ [killed]: this.beforeKill[killed] ?? [], [survivor]: now[survivor] });
    this.cluster.start(killed);
    await this.cluster.waitFor({ [killed]: 'SECOND', [survivor]: 'PRIM' }, 45_000);
    await this.settled(survivor, killed);
  }

  async destroy(): Promise<void> {
    if (this.clientTimer) clearInterval(this.clientTimer);
    this.stopWatch();
    this.lb.stop();
    await this.cluster.destroy();
    await this.fn.close();
    rmSync(this.secretDir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface ProfileResult {
  readonly profile: CloudProfile;
  readonly kills: KillResult[];
  readonly client: ClientCounts;
  /** requests routed during the kill failovers (and their recoveries) */
  readonly failover: ClientCounts;
  /** requests routed during the swaps */
  readonly swap: ClientCounts;
}

async function runProfile(profile: CloudProfile, kills: number, swaps: number): Promise<ProfileResult> {
  const rig = await CloudPathRig.start({ subnet: process.env.BENCH_SUBNET ?? '127.0.0', apiPort: Number(process.env.BENCH_API_PORT ?? 9317), profile });
  const t = rig.lb.opts;
  console.log(`\n[${profile}] ${PROFILES[profile].label}: interval ${t.intervalMs} ms, timeout ${t.timeoutMs} ms, thresholds ${t.healthyThreshold}/${t.unhealthyThreshold} (cloud / 10); function at ${rig.fn.url}`);
  const results: KillResult[] = [];
  try {
    rig.startClient();
    let primary = 'node1';
    let secondary = 'node2';
    for (let i = 0; i < kills; i++) {
      await rig.classify(await rig.logs());
      const r = await rig.killPrimary(primary, secondary);
      results.push(r);
      console.log(
        `[${profile}] kill ${i + 1}/${kills}: ${r.killed} -9 -> ${r.survivor}: LB (probes) ${Math.round(r.probeShiftMs)} ms, function ${r.eventShiftMs === undefined ? 'no event' : `${Math.round(r.eventShiftMs)} ms (${r.event!.event.from}->${r.event!.event.to}: ${r.event!.actions.join('; ')})`}; client so far ${JSON.stringify(rig.client)}`,
      );
      await rig.recover(primary, secondary);
      [primary, secondary] = [secondary, primary];
    }
    // swaps: the old primary steps down alive (SECOND) before the new one takes over, so for a moment
    // nobody is primary and an NLB with both registered fails open to a secondary
    rig.phase = 'swap';
    for (let i = 0; i < swaps; i++) {
      const before = { ...rig.client };
      const res = await rig.cluster.command(primary, 'swap');
      if (res.status !== 200) throw new Error(`swap on ${primary}: HTTP ${res.status}`);
      await rig.cluster.waitFor({ [primary]: 'SECOND', [secondary]: 'PRIM' }, 30_000);
      await rig.settled(secondary, primary);
      await rig.classify(await rig.logs());
      console.log(`[${profile}] swap ${i + 1}/${swaps}: ${primary} -> ${secondary}: client ${JSON.stringify(diff(rig.client, before))}`);
      [primary, secondary] = [secondary, primary];
    }
  } finally {
    await rig.destroy();
  }
  return { profile, kills: results, client: { ...rig.client }, failover: { ...rig.byPhase.failover }, swap: { ...rig.byPhase.swap } };
}

function diff(a: ClientCounts, b: ClientCounts): ClientCounts {
  return { ok: a.ok - b.ok, misrouted: a.misrouted - b.misrouted, failed: a.failed - b.failed, dropped: a.dropped - b.dropped };
}

async function main(): Promise<void> {
  const kills = Number(process.env.BENCH_KILLS ?? 3);
  const swaps = Number(process.env.BENCH_SWAPS ?? 3);
  const profiles = (process.env.BENCH_PROFILES ?? 'aws,azure,gcp,aws-both').split(',').map((p) => p.trim()) as CloudProfile[];
  for (const p of profiles) if (!(p in PROFILES)) throw new Error(`BENCH_PROFILES: unknown profile "${p}" (aws, azure, gcp, aws-both)`);
  console.log(`cloud bench: 2 daemons, heartbeat 100ms/1s, ${kills} kill(s) of the primary and ${swaps} swap(s) per profile; a client request every 10 ms through the load balancer`);
  const out: ProfileResult[] = [];
  for (const p of profiles) out.push(await runProfile(p, kills, swaps));
  console.log('');
  for (const r of out) {
    const ev = r.kills.filter((k) => k.eventShiftMs !== undefined);
    console.log(
      `${r.profile.padEnd(9)} probe_shift_ms=${Math.round(median(r.kills.map((k) => k.probeShiftMs)))} event_shift_ms=${ev.length ? Math.round(median(ev.map((k) => k.eventShiftMs!))) : 'NA'} failovers: misrouted=${r.failover.misrouted} failed=${r.failover.failed} dropped=${r.failover.dropped} ok=${r.failover.ok}; swaps: misrouted=${r.swap.misrouted} dropped=${r.swap.dropped} ok=${r.swap.ok}`,
    );
  }
  const aws = out.find((r) => r.profile === 'aws') ?? out[0];
  const withEvent = aws.kills.filter((r) => r.eventShiftMs !== undefined);
  const probe = Math.round(median(aws.kills.map((r) => r.probeShiftMs)));
  const event = withEvent.length ? String(Math.round(median(withEvent.map((r) => r.eventShiftMs!)))) : 'NA';
  const clouds = out.filter((r) => r.profile !== 'aws-both');
  const misrouted = clouds.reduce((n, r) => n + r.failover.misrouted, 0);
  const swapMisrouted = clouds.reduce((n, r) => n + r.swap.misrouted, 0);
  const baseline = out.find((r) => r.profile === 'aws-both');
  // misrouted_requests: during failovers (kills), the issue's measure; swaps and the both-registered baseline after it
  console.log(
    `RESULT probe_shift_ms=${probe} event_shift_ms=${event} misrouted_requests=${misrouted} swap_misrouted_requests=${swapMisrouted}${baseline ? ` baseline_misrouted_requests=${baseline.failover.misrouted + baseline.swap.misrouted}` : ''}`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(`bench:cloud failed: ${(err as Error).stack ?? err}`);
      process.exit(1);
    },
  );
}
