/**
 * What the functions do, independent of HTTP and of the platform: reconcile, status, and acting on a
 * node's signed state-change event. app.ts maps routes onto it; the platform entry points map
 * their events onto app.ts (and the AWS scheduled event straight onto reconcileAll).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { desiredOf } from '../../cloud-adapters/src/desired.ts';
import { probeSettings } from '../../cloud-adapters/src/probe-settings.ts';
import { createMirrorMonitor, type AlarmEvent, type MirrorMonitor, type MonitorStatus } from '../../cloud-adapters/src/monitor.ts';
import { formatPlan, type Change, type CloudAdapter, type Desired, type Observation } from '../../cloud-adapters/src/types.ts';
import { BAD_SIGNATURE, cloudEventSchema, moduleStatusListSchema, verifySignature, type CloudEvent } from '../../node-service/src/contract/index.ts';
import { adminTokenSources, eventSecretSources, type ClusterConfig, type FunctionsConfig, type ModuleConfig } from './config.ts';
import { observeReadiness, servingNodes, type NodeReadiness } from './observe.ts';
import { ReplayGuard } from './replay.ts';
import { createSecretReader, type SecretReader } from './secrets.ts';

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
  /** reads the secrets at run time (default: environment variables and files only) */
  readonly secrets?: SecretReader;
}

/** An error the HTTP layer turns into a 4xx with this message; no cloud call was made. */
export class RequestError extends Error {
  constructor(readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 502 | 503, message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The one answer to a bad or missing admin token, and to an unknown cluster (names cannot be probed). */
export const BAD_TOKEN = 'missing or bad "Authorization: Bearer <admin token>"';

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

export function desiredFor(cluster: string, c: ClusterConfig, m: ModuleConfig, serving?: readonly string[]): Desired<ModuleResources> {
  return desiredOf({ cluster, module: m.name, mode: m.mode, healthPort: c.healthPort, nodes: c.nodes }, m.cloud, serving);
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
  const secrets = deps.secrets ?? createSecretReader({ env, onError: (source, err) => log.error({ source, err: err.message }, `secret ${source} cannot be read`) });
  const adapters = new Map<string, CloudAdapter>();
  const monitors = new Map<string, MirrorMonitor>();

  function findCluster(name: string | undefined): ClusterConfig | undefined {
    return name && Object.hasOwn(config.clusters, name) ? config.clusters[name] : undefined;
  }

  /** for callers that were authenticated for this cluster already */
  function cluster(name: string | undefined): ClusterConfig {
    const c = findCluster(name);
    if (!c) throw new RequestError(401, BAD_TOKEN);
    return c;
  }

  /** The admin token check; an unknown cluster answers exactly as a bad token does. */
  async function authorize(clusterName: string | undefined, header: string | undefined): Promise<ClusterConfig> {
    const c = findCluster(clusterName);
    const m = /^Bearer (.+)$/.exec(header ?? '');
    if (!c || !m) throw new RequestError(401, BAD_TOKEN);
    const { sources, inline } = adminTokenSources(c);
    if (sources.length === 0 && inline.length === 0) throw new RequestError(403, 'this cluster has no admin token configured: /reconcile and /status are disabled');
    const tokens = await secrets(sources, inline);
    if (tokens.length === 0) throw new RequestError(503, 'the admin token cannot be read (see the function log)');
    const given = Buffer.from(m[1]);
    let ok = false;
    for (const t of tokens) {
      const want = Buffer.from(t);
      if (want.length === given.length && timingSafeEqual(want, given)) ok = true;
    }
    if (!ok) throw new RequestError(401, BAD_TOKEN);
    return c;
  }

  function modules(c: ClusterConfig, module: string | undefined): ModuleConfig[] {
    if (module === undefined) return c.modules;
    const m = c.modules.find((x) => x.name === module);
    if (!m) throw new RequestError(404, `unknown module "${module}" (configured: ${c.modules.map((x) => x.name).join(', ')})`);
    return [m];
  }

  /** The nodes' own view of who should get traffic, read just before traffic is moved. */
  async function observe(c: ClusterConfig, m: ModuleConfig): Promise<{ seen: NodeReadiness[]; serving: string[] | undefined }> {
    const seen = await observeReadiness(c, m, doFetch, config.nodeTimeoutMs);
    return { seen, serving: servingNodes(m.mode, seen) };
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
        // a mirror's registrations follow what the nodes say (AWS: only the primary registered)
        const serving = m.mode === 'mirror' ? (await observe(c, m)).serving : undefined;
        const plan = await a.plan(desiredFor(clusterName, c, m, serving));
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

  async function nodeModules(c: ClusterConfig, n: ClusterConfig['nodes'][number]): Promise<{ ok: true; modules: ReturnType<typeof moduleStatusListSchema.parse> } | { ok: false; error: string }> {
    const base = n.apiUrl ?? `http://${n.address.includes(':') ? `[${n.address}]` : n.address}:${c.healthPort}`;
    const { sources, inline } = adminTokenSources(c);
    const [token] = await secrets(sources, inline);
    try {
      const res = await doFetch(`${base.replace(/\/$/, '')}/api/v1/modules`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(config.nodeTimeoutMs),
      });
      if (!res.ok) return { ok: false, error: `GET /api/v1/modules: HTTP ${res.status}` };
      // the contract's shape (contract/module-status.ts), parsed, not guessed
      const parsed = moduleStatusListSchema.safeParse(await res.json());
      if (!parsed.success) return { ok: false, error: `GET /api/v1/modules: not the contract's module status list (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})` };
      return { ok: true, modules: parsed.data };
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
        const mod = view.ok ? view.modules.find((x) => x.module === m.name) : undefined;
        const state = mod?.state;
        const nodeReady = mod ? mod.ready : undefined;
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
   * the timestamp and the replay checks passed; an unknown cluster or node is refused exactly as a
   * bad signature is. Then the event is only a trigger: the nodes' own ready.txt decide what moves.
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
    const claimed = raw as { cluster?: unknown; node?: unknown };
    const c = findCluster(typeof claimed.cluster === 'string' ? claimed.cluster : undefined);
    const node = c?.nodes.find((n) => n.name === claimed.node);
    let keys: string[] = [];
    if (c && node) {
      const { sources, inline } = eventSecretSources(c, node);
      keys = await secrets(sources, inline);
      if (keys.length === 0) {
        log.error({ cluster: claimed.cluster, node: node.name }, 'no event secret can be read: events are refused');
        throw new RequestError(503, 'events cannot be verified now (see the function log)');
      }
    }
    const t = now();
    // an unknown cluster or node is checked against a throw-away key: same checks, same answers
    const verifyWith = keys.length > 0 ? keys.map((k) => Buffer.from(k, 'utf8')) : [randomBytes(32)];
    const v = verifySignature(verifyWith, body, { timestamp: headers.timestamp, signature: headers.signature }, t, config.eventToleranceMs);
    if (!v.ok || keys.length === 0 || !c || !node) {
      const reason = v.ok ? BAD_SIGNATURE : v.reason;
      log.warn({ reason }, 'rejected event');
      throw new RequestError(401, reason);
    }
    const clusterName = claimed.cluster as string;
    const parsed = cloudEventSchema.safeParse(raw);
    if (!parsed.success) {
      throw new RequestError(400, `invalid event: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    }
    const e = parsed.data;
    if (!replay.accept(e.id, t)) throw new RequestError(409, `event ${e.id} was already received (replay)`);
    const m = c.modules.find((x) => x.name === e.module);
    if (!m) throw new RequestError(404, `unknown module "${e.module}"`);
    const { actions, failed } = await converge(clusterName, c, m);
    log.info({ event: e, actions }, `event ${e.cluster}/${e.module} ${e.node} ${e.from}->${e.to}: ${actions.join('; ')}`);
    if (failed) {
      // 502: the poster retries (same id, fresh signature); forget the id so that retry is acted upon
      replay.forget(e.id);
      throw new RequestError(502, `event ${e.id} accepted but the load balancer change failed: ${actions.join('; ')}`);
    }
    deps.onEvent?.(e, actions);
    return { accepted: true, id: e.id, actions };
  }

  /**
   * Moves traffic to what the nodes report: drain every node that should not serve (first: that is
   * what moves traffic away), then restore the ones that should. Mirror split brain (two ready):
   * nothing is changed and an alarm is logged.
   */
  async function converge(clusterName: string, c: ClusterConfig, m: ModuleConfig): Promise<{ actions: string[]; failed: boolean }> {
    const { seen, serving } = await observe(c, m);
    const actions: string[] = [`observed ${seen.map((s) => `${s.node} ${s.ready ? 'ready' : `not ready (${s.detail})`}`).join(', ')}`];
    if (serving === undefined) {
      const msg = `more than one node of mirror ${clusterName}/${m.name} reports ready: no load-balancer change`;
      log.error({ cluster: clusterName, module: m.name, seen }, `vigil split-brain: ${msg}`);
      actions.push(msg);
      return { actions, failed: false };
    }
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
    for (const n of c.nodes) if (!serving.includes(n.name)) await act(`drain ${n.name}`, () => a.drain(n.name));
    for (const n of c.nodes) if (serving.includes(n.name)) await act(`restore ${n.name}`, () => a.restore(n.name));
    return { actions, failed };
  }

  return { reconcile, reconcileAll, status, handleEvent, authorize, converge };
}

export type Controller = ReturnType<typeof createController>;
