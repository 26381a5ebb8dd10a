/**
 * Cloud path, end to end on one machine: two real node-service daemons (nodes 127.0.0.1 and 127.0.0.2
 * by default, both routable on Linux loopback), a simulated load balancer probing their ready.txt with
 * AWS's target-group timing scaled down 10x (interval 0.5 s, timeout 0.2 s, thresholds 2/2, from the
 * shared probe settings), and the functions' hono app serving POST /events locally
 * (@hono/node-server), driving the simulated LB through the same CloudAdapter interface as a cloud.
 *
 * For each kill -9 of the current primary daemon it measures
 *   probe_shift_ms  kill → the LB, by its probes alone, sees the old primary unhealthy and the survivor healthy
 *   event_shift_ms  kill → the function received the survivor's signed "entered ALONE/PRIM" event and drained
 *                   the old primary (traffic leaves it at once instead of after the unhealthy threshold)
 * and prints the medians; last line: RESULT probe_shift_ms=N event_shift_ms=N
 *
 *   npm run bench:cloud                     BENCH_KILLS=5 BENCH_SUBNET=127.0.0 BENCH_API_PORT=9317
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SimulatedLbAdapter, SimulatedLoadBalancer, awsTimingScaled } from '../cloud-adapters/src/sim/simulated-lb.ts';
import type { CloudEvent } from '../node-service/src/contract/events.ts';
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

    const timing = awsTimingScaled(module, 'mirror', apiPort, o.scale ?? 10);
    const holder: { rig?: CloudPathRig } = {};
    const lb = new SimulatedLoadBalancer({
      targets: addrs.map((a, i) => ({ node: `node${i + 1}`, url: `http://${a}:${apiPort}/var/modules/${module}/ready.txt` })),
      ...timing,
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
      adapterFor: (d) => new SimulatedLbAdapter(lb, { ...d, resources: { name: 'local' } }),
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

  /** restarts the killed node and waits for it to be secondary again, LB settled */
  async recover(killed: string, survivor: string): Promise<void> {
    this.cluster.start(killed);
    await this.cluster.waitFor({ [killed]: 'SECOND', [survivor]: 'PRIM' }, 45_000);
    await this.settled(survivor, killed);
  }

  async destroy(): Promise<void> {
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

async function main(): Promise<void> {
  const kills = Number(process.env.BENCH_KILLS ?? 5);
  const rig = await CloudPathRig.start({
    subnet: process.env.BENCH_SUBNET ?? '127.0.0',
    apiPort: Number(process.env.BENCH_API_PORT ?? 9317),
  });
  const t = rig.lb.opts;
  console.log(`cloud bench: 2 daemons (${rig.cluster.nodes.map((n) => n.addr).join(', ')}), heartbeat 100ms/1s; simulated LB interval ${t.intervalMs} ms, timeout ${t.timeoutMs} ms, thresholds ${t.healthyThreshold}/${t.unhealthyThreshold} (AWS / 10); function at ${rig.fn.url}`);
  const results: KillResult[] = [];
  try {
    let primary = 'node1';
    let secondary = 'node2';
    for (let i = 0; i < kills; i++) {
      const r = await rig.killPrimary(primary, secondary);
      results.push(r);
      console.log(
        `kill ${i + 1}/${kills}: ${r.killed} -9 -> ${r.survivor}: LB (probes) ${Math.round(r.probeShiftMs)} ms, function ${r.eventShiftMs === undefined ? 'no event' : `${Math.round(r.eventShiftMs)} ms (${r.event!.event.from}->${r.event!.event.to}: ${r.event!.actions.join('; ')})`}`,
      );
      await rig.recover(primary, secondary);
      [primary, secondary] = [secondary, primary];
    }
  } finally {
    await rig.destroy();
  }
  const probe = Math.round(median(results.map((r) => r.probeShiftMs)));
  const withEvent = results.filter((r) => r.eventShiftMs !== undefined);
  if (withEvent.length < results.length) {
    console.log(`note: ${results.length - withEvent.length}/${results.length} kills produced no cloud event: the daemon does not (yet) publish module transitions to cloud_events.url`);
  }
  const event = withEvent.length ? String(Math.round(median(withEvent.map((r) => r.eventShiftMs!)))) : 'NA';
  console.log(`RESULT probe_shift_ms=${probe} event_shift_ms=${event}`);
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
