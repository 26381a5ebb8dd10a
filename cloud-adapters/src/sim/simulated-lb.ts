/**
 * A load balancer in a box, for benchmarks, integration tests and on-prem rehearsal of the cloud path:
 * it probes each node's ready.txt on an interval with a timeout and healthy/unhealthy thresholds, the
 * way ELBv2, Azure LB and GCP health checks do, and keeps a registration set like a target group.
 * SimulatedLbAdapter puts the CloudAdapter interface on top, so the functions' controller drives it
 * exactly as it drives a cloud.
 */
import { probeSettings, type ModuleMode } from '../probe-settings.ts';
import type { ApplyResult, Change, CloudAdapter, Desired, HealthState, Observation, Plan } from '../types.ts';

export interface SimTarget {
  readonly node: string;
  /** the health URL, e.g. http://127.0.0.1:9010/var/modules/mirror/ready.txt */
  readonly url: string;
}

export interface SimulatedLbOptions {
  readonly targets: readonly SimTarget[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** called whenever the set of nodes receiving traffic changes */
  readonly onRotation?: (nodes: readonly string[], at: number) => void;
  /**
   * What the load balancer does when no registered target is healthy: `fail-open` sends traffic to
   * every registered target (AWS NLB; Azure `AllProbedUp`), `drop` sends it nowhere (Azure
   * `AllProbedDown`, GCP failover policy `dropTrafficIfUnhealthy`). @default 'fail-open'
   */
  readonly noHealthy?: 'fail-open' | 'drop';
  readonly now?: () => number;
}

/** Azure's probe timing (the shared probe settings) divided by `scale`; a timeout of half the interval. */
export function azureTimingScaled(module: string, mode: ModuleMode, healthPort: number, scale: number) {
  const s = probeSettings({ module, mode, healthPort }).azure;
  return { intervalMs: (s.intervalInSeconds * 1000) / scale, timeoutMs: (s.intervalInSeconds * 500) / scale, healthyThreshold: s.probeThreshold, unhealthyThreshold: s.probeThreshold };
}

/** GCP's health-check timing (the shared probe settings) divided by `scale`. */
export function gcpTimingScaled(module: string, mode: ModuleMode, healthPort: number, scale: number) {
  const s = probeSettings({ module, mode, healthPort }).gcp;
  return { intervalMs: (s.checkIntervalSec * 1000) / scale, timeoutMs: (s.timeoutSec * 1000) / scale, healthyThreshold: s.healthyThreshold, unhealthyThreshold: s.unhealthyThreshold };
}

/** AWS's target-group timing (the shared probe settings) divided by `scale`. */
export function awsTimingScaled(module: string, mode: ModuleMode, healthPort: number, scale: number) {
  const s = probeSettings({ module, mode, healthPort }).aws;
  return {
    intervalMs: (s.healthCheckIntervalSeconds * 1000) / scale,
    timeoutMs: (s.healthCheckTimeoutSeconds * 1000) / scale,
    healthyThreshold: s.healthyThresholdCount,
    unhealthyThreshold: s.unhealthyThresholdCount,
  };
}

interface TargetState {
  health: 'initial' | 'healthy' | 'unhealthy';
  ok: number;
  fail: number;
  registered: boolean;
  lastCode?: number | string;
}

export class SimulatedLoadBalancer {
  private readonly states = new Map<string, TargetState>();
  private timers: NodeJS.Timeout[] = [];
  private rotation: readonly string[] = [];
  private readonly now: () => number;

  constructor(readonly opts: SimulatedLbOptions) {
    this.now = opts.now ?? (() => performance.now());
    for (const t of opts.targets) this.states.set(t.node, { health: 'initial', ok: 0, fail: 0, registered: true });
  }

  start(): void {
    for (const t of this.opts.targets) {
      void this.probe(t);
      const timer = setInterval(() => void this.probe(t), this.opts.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private async probe(t: SimTarget): Promise<void> {
    let ok = false;
    let code: number | string;
    try {
      const res = await fetch(t.url, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
      await res.arrayBuffer();
      code = res.status;
      ok = res.status === 200; // matcher 200, exactly as the target group is configured
    } catch (err) {
      code = (err as Error).name === 'TimeoutError' ? 'timeout' : 'refused';
    }
    const s = this.states.get(t.node)!;
    s.lastCode = code;
    if (ok) {
      s.ok++;
      s.fail = 0;
      if (s.health !== 'healthy' && s.ok >= this.opts.healthyThreshold) s.health = 'healthy';
    } else {
      s.fail++;
      s.ok = 0;
      if (s.health !== 'unhealthy' && s.fail >= this.opts.unhealthyThreshold) s.health = 'unhealthy';
    }
    this.recompute();
  }

  private recompute(): void {
    const next = [...this.states].filter(([, s]) => s.registered && s.health === 'healthy').map(([n]) => n);
    if (next.join(',') !== this.rotation.join(',')) {
      this.rotation = next;
      this.opts.onRotation?.(next, this.now());
    }
  }

  /** nodes that receive new connections now (registered and healthy) */
  inRotation(): readonly string[] {
    return this.rotation;
  }

  /** where a new connection goes now: the healthy registered targets, or, with none, fail-open or nowhere */
  route(): readonly string[] {
    if (this.rotation.length > 0) return this.rotation;
    if ((this.opts.noHealthy ?? 'fail-open') === 'drop') return [];
    return [...this.states].filter(([, s]) => s.registered).map(([n]) => n);
  }

  state(node: string): { health: HealthState; registered: boolean; lastCode?: number | string } {
    const s = this.states.get(node);
    if (!s) return { health: 'unknown', registered: false };
    return { health: s.health, registered: s.registered, lastCode: s.lastCode };
  }

  register(node: string): boolean {
    const s = this.states.get(node);
    if (!s || s.registered) return false;
    // like ELBv2: a (re-)registered target starts over in `initial` and must pass the healthy threshold
    Object.assign(s, { registered: true, health: 'initial', ok: 0, fail: 0 });
    this.recompute();
    return true;
  }

  deregister(node: string): boolean {
    const s = this.states.get(node);
    if (!s || !s.registered) return false;
    s.registered = false;
    this.recompute();
    return true;
  }
}

export class SimulatedLbAdapter implements CloudAdapter<{ readonly name: string }> {
  readonly cloud = 'aws' as const;
  /**
   * `servingOnly`: a mirror keeps only its observed primary (`desired.serving`) registered, as the AWS
   * adapter does behind a fail-open NLB; otherwise every node is registered, as a template does.
   */
  constructor(private readonly lb: SimulatedLoadBalancer, readonly desired: Desired<{ readonly name: string }>, private readonly opts: { readonly servingOnly?: boolean } = {}) {}

  private change(action: 'register' | 'deregister', node: string): Change {
    return { action, resource: `simulated-lb ${this.desired.resources.name}`, diff: [`${action === 'register' ? '+' : '-'} ${node}`], request: { operation: action, input: { node } } };
  }

  async plan(desired = this.desired): Promise<Plan> {
    const only = this.opts.servingOnly && desired.mode === 'mirror';
    if (only && desired.serving === undefined) return { cloud: 'aws', cluster: desired.cluster, module: desired.module, changes: [] };
    const wanted = (n: string) => !only || desired.serving!.includes(n);
    const changes = [
      ...desired.nodes.filter((n) => !wanted(n.name) && this.lb.state(n.name).registered).map((n) => this.change('deregister', n.name)),
      ...desired.nodes.filter((n) => wanted(n.name) && !this.lb.state(n.name).registered).map((n) => this.change('register', n.name)),
    ];
    return { cloud: 'aws', cluster: desired.cluster, module: desired.module, changes };
  }

  async apply(plan: Plan): Promise<ApplyResult> {
    for (const c of plan.changes) {
      const { node } = c.request.input as { node: string };
      if (c.action === 'register') this.lb.register(node);
      else this.lb.deregister(node);
    }
    return { applied: plan.changes };
  }

  async observe(): Promise<Observation> {
    return {
      cloud: 'aws',
      cluster: this.desired.cluster,
      module: this.desired.module,
      targets: this.desired.nodes.map((n) => {
        const s = this.lb.state(n.name);
        return { node: n.name, target: n.address, state: s.registered ? s.health : 'unused', detail: `last probe: ${s.lastCode ?? 'none'}` };
      }),
    };
  }

  async drain(node: string): Promise<ApplyResult> {
    return { applied: this.lb.deregister(node) ? [this.change('deregister', node)] : [] };
  }

  async restore(node: string): Promise<ApplyResult> {
    return { applied: this.lb.register(node) ? [this.change('register', node)] : [] };
  }
}
