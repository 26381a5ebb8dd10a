/**
 * What the functions do, independent of HTTP and of the platform: reconcile, status, and acting on a
 * node's signed state-change event. app.ts maps routes onto it; the platform entry points map
 * their events onto app.ts (and the AWS scheduled event straight onto reconcileAll).
 */
import { probeSettings } from '../../cloud-adapters/src/probe-settings.ts';
import { createMirrorMonitor, type AlarmEvent, type MirrorMonitor, type MonitorStatus } from '../../cloud-adapters/src/monitor.ts';
import { formatPlan, type Change, type CloudAdapter, type Desired, type Observation } from '../../cloud-adapters/src/types.ts';
import { cloudEventSchema, verifySignature, type CloudEvent } from '../../node-service/src/cloud-events/signing.ts';
import { resolveSecret, type ClusterConfig, type FunctionsConfig, type ModuleConfig } from './config.ts';
import { ReplayGuard } from './replay.ts';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type ModuleResources = ModuleConfig['cloud'];

export interface ControllerDeps {
  readonly config: FunctionsConfig;
  /** builds the adapter for one module; called once per (cluster, module) per instance */
  readonly adapterFor: (desired: Desired<ModuleResources>) => CloudAdapter;
  readonly env?: NodeJS.ProcessEnv;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly log?: Logger;
  /** alarms of the mirror invariant monitor (they are logged at error level in any case) */
  readonly onAlarm?: (alarm: AlarmEvent) => void;
  /** every accepted event, after it was acted upon (metrics, benchmarks) */
  readonly onEvent?: (event: CloudEvent, actions: readonly string[]) => void;
}

/** An error the HTTP layer turns into a 4xx with this message; no cloud call was made. */
export class RequestError extends Error {
  constructor(readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 502, message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

const READY: Record<ModuleConfig['mode'], ReadonlySet<string>> = {
  mirror: new Set(['PRIM', 'ALONE']),
  farm: new Set(['UP']),
};

export interface ReconcileResult {
  readonly cluster: string;
  readonly module: string;
  readonly cloud: string;
  readonly dryRun: boolean;
  readonly changes: readonly Change[];
  readonly diff: string;
  /** mirror modules: the invariant monitor's verdict from an observe() right after the apply */
  readonly invariant?: MonitorStatus;
  readonly error?: string;
}

export interface EventResult {
  readonly accepted: true;
  readonly id: string;
  readonly actions: readonly string[];
}

const silent: Logger = { info() {}, warn() {}, error() {} };

export function desiredFor(cluster: string, c: ClusterConfig, m: ModuleConfig): Desired<ModuleResources> {
  return {
    cluster,
    module: m.name,
    mode: m.mode,
    healthPort: c.healthPort,
    nodes: c.nodes.map((n) => ({ name: n.name, address: n.address, instanceId: n.instanceId, zone: n.zone })),
    resources: m.cloud,
  };
}

export function probeIntervalMs(m: ModuleConfig, healthPort: number): number {
  const s = probeSettings({ module: m.name, mode: m.mode, healthPort });
  switch (m.cloud.provider) {
    case 'aws':
      return s.aws.healthCheckIntervalSeconds * 1000;
    case 'azure':
      return s.azure.intervalInSeconds * 1000;
    case 'gcp':
      return s.gcp.checkIntervalSec * 1000;
  }
}

export function createController(deps: ControllerDeps) {
  const { config } = deps;
  const env = deps.env ?? process.env;
  const now = deps.now ?? Date.now;
  const log = deps.log ?? silent;
  const doFetch = deps.fetch ?? fetch;
  const replay = new ReplayGuard(config.eventToleranceMs);
  const adapters = new Map<string, CloudAdapter>();
  const monitors = new Map<string, MirrorMonitor>();

  function cluster(name: string | undefined): ClusterConfig {
    if (!name) throw new RequestError(400, 'missing "cluster"');
    const c = Object.hasOwn(config.clusters, name) ? config.clusters[name] : undefined;
    if (!c) throw new RequestError(404, `unknown cluster "${name}"`);
    return c;
  }

  function modules(c: ClusterConfig, module: string | undefined): ModuleConfig[] {
    if (module === undefined) return c.modules;
    const m = c.modules.find((x) => x.name === module);
    if (!m) throw new RequestError(404, `unknown module "${module}" (configured: ${c.modules.map((x) => x.name).join(', ')})`);
    return [m];
  }

  function adapter(clusterName: string, c: ClusterConfig, m: ModuleConfig): CloudAdapter {
    const key = `${clusterName}/${m.name}`;
    let a = adapters.get(key);
    if (!a) {
      a = deps.adapterFor(desiredFor(clusterName, c, m));
      adapters.set(key, a);
    }
    return a;
  }

  function monitor(clusterName: string, c: ClusterConfig, m: ModuleConfig): MirrorMonitor {
    const key = `${clusterName}/${m.name}`;
    let mon = monitors.get(key);
    if (!mon) {
      mon = createMirrorMonitor({ probeIntervalMs: probeIntervalMs(m, c.healthPort), noHealthyProbes: config.noHealthyProbes });
      monitors.set(key, mon);
    }
    return mon;
  }

  function feedMonitor(clusterName: string, c: ClusterConfig, m: ModuleConfig, obs: Observation): MonitorStatus | undefined {
    if (m.mode !== 'mirror') return undefined;
    const { status, alarm } = monitor(clusterName, c, m).update(obs, now());
    if (alarm) {
      log.error({ alarm }, `vigil ${alarm.type}: ${clusterName}/${m.name}: ${alarm.message}`);
      deps.onAlarm?.(alarm);
    }
    return status;
  }

  async function reconcile(clusterName: string, module?: string, dryRun = false): Promise<ReconcileResult[]> {
    const c = cluster(clusterName);
    const results: ReconcileResult[] = [];
    for (const m of modules(c, module)) {
      const a = adapter(clusterName, c, m);
      try {
        const plan = await a.plan();
        const diff = formatPlan(plan);
        if (!dryRun && plan.changes.length > 0) await a.apply(plan);
        log.info({ cluster: clusterName, module: m.name, changes: plan.changes.length, dryRun }, diff);
        // the scheduled reconcile is also the invariant monitor's heartbeat: alarms need no /status caller
        let invariant: MonitorStatus | undefined;
        if (m.mode === 'mirror' && !dryRun) {
          try {
            invariant = feedMonitor(clusterName, c, m, await a.observe());
          } catch (err) {
            log.warn({ cluster: clusterName, module: m.name, err: (err as Error).message }, 'observe after reconcile failed');
          }
        }
        results.push({ cluster: clusterName, module: m.name, cloud: a.cloud, dryRun, changes: plan.changes, diff, ...(invariant ? { invariant } : {}) });
      } catch (err) {
        const error = (err as Error).message;
        log.error({ cluster: clusterName, module: m.name, err: error }, `reconcile of ${clusterName}/${m.name} failed: ${error}`);
        results.push({ cluster: clusterName, module: m.name, cloud: a.cloud, dryRun, changes: [], diff: '', error });
      }
    }
    return results;
  }

  async function reconcileAll(): Promise<ReconcileResult[]> {
    const out: ReconcileResult[] = [];
    for (const name of Object.keys(config.clusters)) out.push(...(await reconcile(name)));
    return out;
  }

  async function nodeModules(c: ClusterConfig, n: ClusterConfig['nodes'][number]): Promise<{ ok: true; modules: Array<Record<string, unknown>> } | { ok: false; error: string }> {
    const base = n.apiUrl ?? `http://${n.address.includes(':') ? `[${n.address}]` : n.address}:${c.healthPort}`;
    let token: string | undefined;
    try {
      token = c.adminToken || c.adminTokenEnv ? resolveSecret(c.adminToken, c.adminTokenEnv, env, 'adminToken') : undefined;
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    try {
      const res = await doFetch(`${base.replace(/\/$/, '')}/api/v1/modules`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(config.nodeTimeoutMs),
      });
      if (!res.ok) return { ok: false, error: `GET /api/v1/modules: HTTP ${res.status}` };
      const body = (await res.json()) as unknown;
      const list = Array.isArray(body) ? body : Array.isArray((body as { modules?: unknown })?.modules) ? (body as { modules: unknown[] }).modules : [];
      return { ok: true, modules: list.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) };
    } catch (err) {
      return { ok: false, error: `GET /api/v1/modules: ${(err as Error).message}` };
    }
  }

  async function status(clusterName: string, module?: string) {
    const c = cluster(clusterName);
    const mods = modules(c, module);
    const nodeViews = await Promise.all(c.nodes.map((n) => nodeModules(c, n)));
    const out = [];
    for (const m of mods) {
      const a = adapter(clusterName, c, m);
      let obs: Observation | undefined;
      let lbError: string | undefined;
      try {
        obs = await a.observe();
      } catch (err) {
        lbError = (err as Error).message;
      }
      const monitorStatus = obs ? feedMonitor(clusterName, c, m, obs) : undefined;
      const nodes = c.nodes.map((n, i) => {
        const lb = obs?.targets.find((t) => t.node === n.name);
        const view = nodeViews[i];
        const mod = view.ok ? view.modules.find((x) => x.module === m.name || x.name === m.name) : undefined;
        const state = typeof mod?.state === 'string' ? mod.state : undefined;
        const nodeReady = state ? READY[m.mode].has(state) : undefined;
        const lbHealthy = lb ? lb.state === 'healthy' : undefined;
        return {
          node: n.name,
          address: n.address,
          lb: lb ? { state: lb.state, target: lb.target, detail: lb.detail } : { state: obs ? 'not-registered' : 'unknown' },
          service: view.ok ? { state: state ?? 'unknown-module', ready: nodeReady } : { error: view.error },
          /** the load balancer and the node agree on whether this node should get traffic */
          agree: nodeReady === undefined || lbHealthy === undefined ? undefined : nodeReady === lbHealthy,
        };
      });
      out.push({
        module: m.name,
        mode: m.mode,
        cloud: a.cloud,
        ...(lbError ? { lbError } : {}),
        nodes,
        invariant: m.mode === 'mirror' ? monitorStatus ?? { verdict: 'unknown', healthy: [], message: lbError ?? 'not observed' } : undefined,
      });
    }
    return { cluster: clusterName, at: new Date(now()).toISOString(), modules: out };
  }

  /**
   * POST /events. Order matters: nothing is trusted (and no cloud is called) before the signature,
   * the timestamp and the replay checks passed.
   */
  async function handleEvent(body: string, headers: { timestamp?: string | null; signature?: string | null }): Promise<EventResult> {
    if (body.length > 16_384) throw new RequestError(413, 'event body larger than 16 KiB');
    let raw: unknown;
    try {
      raw = JSON.parse(body);
    } catch (err) {
      throw new RequestError(400, `malformed JSON: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RequestError(400, 'event must be a JSON object');
    const clusterName = (raw as { cluster?: unknown }).cluster;
    if (typeof clusterName !== 'string') throw new RequestError(400, 'event has no "cluster" string');
    const c = cluster(clusterName);
    let secret: string;
    try {
      secret = resolveSecret(c.eventSecret, c.eventSecretEnv, env, `cluster ${clusterName} eventSecret`);
    } catch (err) {
      log.error({ cluster: clusterName, err: (err as Error).message }, 'event secret not available');
      throw new RequestError(403, `cluster "${clusterName}" has no usable event secret configured`);
    }
    const t = now();
    const v = verifySignature(Buffer.from(secret, 'utf8'), body, { timestamp: headers.timestamp, signature: headers.signature }, t, config.eventToleranceMs);
    if (!v.ok) {
      log.warn({ cluster: clusterName, reason: v.reason }, 'rejected event');
      throw new RequestError(v.status, v.reason);
    }
    const parsed = cloudEventSchema.safeParse(raw);
    if (!parsed.success) {
      throw new RequestError(400, `invalid event: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    }
    const e = parsed.data;
    if (!replay.accept(e.id, t)) throw new RequestError(409, `event ${e.id} was already received (replay)`);
    const [m] = modules(c, e.module);
    if (!c.nodes.some((n) => n.name === e.node)) throw new RequestError(404, `unknown node "${e.node}" in cluster "${clusterName}"`);
    const actions: string[] = [];
    const orderKey = `${clusterName}/${e.module}/${e.node}`;
    const previous = replay.latest(orderKey);
    if (!replay.newer(orderKey, e.at, e.seq)) {
      actions.push(`ignored: older than an event already acted upon for ${e.node}`);
      return { accepted: true, id: e.id, actions };
    }
    const ready = READY[m.mode];
    const wasReady = ready.has(e.from);
    const isReady = ready.has(e.to);
    const a = adapter(clusterName, c, m);
    let failed = false;
    const act = async (what: string, fn: () => Promise<{ applied: readonly unknown[] }>) => {
      try {
        const r = await fn();
        actions.push(r.applied.length === 0 ? `${what} (no change)` : what);
      } catch (err) {
        failed = true;
        actions.push(`${what} failed: ${(err as Error).message}`);
        log.error({ cluster: clusterName, module: m.name, err: (err as Error).message }, `${what} failed`);
      }
    };
    if (wasReady && !isReady) {
      // "node X left PRIM": take it out now rather than after the unhealthy threshold
      await act(`drain ${e.node}`, () => a.drain(e.node));
    } else if (!wasReady && isReady) {
      if (m.mode === 'mirror') {
        // one primary per mirror module: a node entering PRIM/ALONE means every other node left it
        // (a killed primary cannot say so itself). Drain first: that is what moves traffic.
        for (const other of c.nodes) if (other.name !== e.node) await act(`drain ${other.name}`, () => a.drain(other.name));
      }
      await act(`restore ${e.node}`, () => a.restore(e.node));
    } else {
      actions.push(`no load-balancer change (${e.from} -> ${e.to})`);
    }
    log.info({ event: e, actions }, `event ${e.cluster}/${e.module} ${e.node} ${e.from}->${e.to}: ${actions.join('; ')}`);
    if (failed) {
      // 502: the poster retries (same id, fresh signature); forget the id so that retry is acted upon
      replay.forget(e.id, orderKey, previous);
      throw new RequestError(502, `event ${e.id} accepted but the load balancer change failed: ${actions.join('; ')}`);
    }
    deps.onEvent?.(e, actions);
    return { accepted: true, id: e.id, actions };
  }

  return { reconcile, reconcileAll, status, handleEvent, cluster };
}

export type Controller = ReturnType<typeof createController>;
