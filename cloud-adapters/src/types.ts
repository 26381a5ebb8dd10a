/**
 * The one interface every cloud load-balancer adapter implements.
 *
 *   plan(desired)  reads the cloud, returns the changes that would make it match `desired` (nothing is written)
 *   apply(plan)    performs exactly those changes, in order
 *   observe()      each node's health as the load balancer sees it
 *   drain(node)    fast path for the functions: take one node out of rotation now, without waiting for
 *                  the load balancer's unhealthy threshold (a later reconcile puts it back; the probe
 *                  keeps it out of traffic until its ready.txt answers 200 again)
 *   restore(node)  the reverse of drain, for a node that became primary / UP again
 *
 * Idempotent: plan → apply → plan yields an empty plan.
 */
import type { ModuleMode } from '../../node-service/src/contract/index.ts';

export type CloudName = 'aws' | 'azure' | 'gcp';

export interface DesiredNode {
  /** node name in cluster.yaml (node1, node2) */
  readonly name: string;
  /** the node's address the load balancer reaches (its first address in cluster.yaml, or its cloud private IP) */
  readonly address: string;
  /** AWS: EC2 instance id when the target group's target type is `instance`; GCP: the VM instance name */
  readonly instanceId?: string;
  /** GCP: the VM's zone; AWS: the Availability Zone for an `ip` target outside the VPC ("all") */
  readonly zone?: string;
}

/** What the cluster's own config says, independent of the cloud. */
export interface ClusterTarget {
  readonly cluster: string;
  readonly module: string;
  readonly mode: ModuleMode;
  /** api.port of the node service (9010 by default) */
  readonly healthPort: number;
  readonly nodes: readonly DesiredNode[];
}

export interface Desired<R> extends ClusterTarget {
  /** the cloud resource names the adapter manages */
  readonly resources: R;
  /**
   * The nodes observed ready (their own ready.txt / API answered 200 / ready), read by the function
   * just before it plans. Where a load balancer fails open (AWS NLB), a mirror's registered targets
   * are exactly these. Undefined: not observed, registrations of a mirror are left as they are.
   */
  readonly serving?: readonly string[];
}

export type ChangeAction = 'create' | 'update' | 'register' | 'deregister' | 'delete';

export interface Change {
  readonly action: ChangeAction;
  /** what is changed, e.g. `target-group vigil-demo-mirror`, `azure probe vigil-mirror` */
  readonly resource: string;
  /** one line per field: `HealthCheckIntervalSeconds: 30 -> 5` */
  readonly diff: readonly string[];
  /** the request the adapter will send (SDK command name + input), for review and for tests */
  readonly request: { readonly operation: string; readonly input: unknown };
}

export interface Plan {
  readonly cloud: CloudName;
  readonly cluster: string;
  readonly module: string;
  readonly changes: readonly Change[];
}

export interface ApplyResult {
  readonly applied: readonly Change[];
}

export type HealthState = 'healthy' | 'unhealthy' | 'initial' | 'draining' | 'unused' | 'unknown';

export interface NodeHealth {
  /** node name when the target could be matched to a configured node, else the raw target id */
  readonly node: string;
  readonly target: string;
  readonly state: HealthState;
  /** the cloud's own words (reason code, description) */
  readonly detail?: string;
}

export interface Observation {
  readonly cloud: CloudName;
  readonly cluster: string;
  readonly module: string;
  readonly targets: readonly NodeHealth[];
}

export interface CloudAdapter<R = unknown> {
  readonly cloud: CloudName;
  /** the desired state the adapter was built with; observe() and drain() work on its resources */
  readonly desired: Desired<R>;
  /** `desired` defaults to the one the adapter was built with */
  plan(desired?: Desired<R>): Promise<Plan>;
  apply(plan: Plan): Promise<ApplyResult>;
  observe(): Promise<Observation>;
  drain(node: string): Promise<ApplyResult>;
  /** put one node back into rotation (idempotent); the probe still decides whether it gets traffic */
  restore(node: string): Promise<ApplyResult>;
}

/** The readable diff of a plan, one line per field, terraform-like markers. */
export function formatPlan(plan: Plan): string {
  if (plan.changes.length === 0) return `${plan.cloud} ${plan.cluster}/${plan.module}: no changes`;
  const mark: Record<ChangeAction, string> = { create: '+', update: '~', register: '+', deregister: '-', delete: '-' };
  const lines = [`${plan.cloud} ${plan.cluster}/${plan.module}: ${plan.changes.length} change(s)`];
  for (const c of plan.changes) {
    lines.push(`${mark[c.action]} ${c.action} ${c.resource}`);
    for (const d of c.diff) lines.push(`    ${d}`);
  }
  return lines.join('\n');
}

export class CloudAdapterError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CloudAdapterError';
  }
}

export function fieldDiff(name: string, from: unknown, to: unknown): string {
  const show = (v: unknown) => (v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v));
  return `${name}: ${show(from)} -> ${show(to)}`;
}
