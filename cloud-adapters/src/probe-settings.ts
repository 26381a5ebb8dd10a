/**
 * The one source of truth for how each cloud's load balancer probes a Vigil node. cloud-adapters
 * (applied by the functions) and infra (CDK, ARM, Terraform) both read these values, so a deployed
 * stack and a later reconcile never disagree.
 */
export type ModuleMode = 'mirror' | 'farm';

export interface ProbeTarget {
  readonly module: string;
  readonly mode: ModuleMode;
  /** the node service's API / health port (api.port, 9010 by default) */
  readonly healthPort: number;
}

/** Contract path of the health URL (ARCHITECTURE.md). */
export function readyPath(module: string): string {
  return `/var/modules/${module}/ready.txt`;
}

export interface AwsProbeSettings {
  readonly healthCheckProtocol: 'HTTP';
  readonly healthCheckPort: string;
  readonly healthCheckPath: string;
  /** an NLB's default matcher is 200-399; ready.txt answers only 200 or 404, make it exact */
  readonly matcher: { readonly HttpCode: '200' };
  readonly healthCheckIntervalSeconds: 5;
  readonly healthCheckTimeoutSeconds: 2;
  readonly healthyThresholdCount: 2;
  readonly unhealthyThresholdCount: 2;
  /** target group attributes, as the ELBv2 API names them */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface AzureProbeSettings {
  readonly protocol: 'Http';
  readonly port: number;
  readonly requestPath: string;
  readonly intervalInSeconds: 5;
  readonly probeThreshold: 2;
  /** mirror: never "fail open" to every backend when none is healthy (writes would reach the secondary) */
  readonly noHealthyBackendsBehavior: 'AllProbedDown' | 'AllProbedUp';
  /** where Azure's probes come from: allow it on the health port */
  readonly sourceAddress: '168.63.129.16';
}

export interface GcpProbeSettings {
  readonly type: 'HTTP';
  readonly port: number;
  readonly requestPath: string;
  /** 2 s with 2/2 thresholds: a shift in about 4-6 s; 1 s intervals make probes race the 1 s heartbeat timeout */
  readonly checkIntervalSec: 2;
  readonly timeoutSec: 2;
  readonly healthyThreshold: 2;
  readonly unhealthyThreshold: 2;
  /** mirror only: backend service failover policy */
  readonly failoverPolicy?: {
    readonly dropTrafficIfUnhealthy: true;
    readonly disableConnectionDrainOnFailover: true;
    readonly failoverRatio: 0;
  };
  /** Google's health-check source ranges (backend services and passthrough load balancers) */
  readonly probeSourceRanges: readonly string[];
}

export interface ProbeSettings {
  readonly path: string;
  readonly aws: AwsProbeSettings;
  readonly azure: AzureProbeSettings;
  readonly gcp: GcpProbeSettings;
}

export const GCP_PROBE_RANGES = ['35.191.0.0/16', '130.211.0.0/22', '209.85.152.0/22', '209.85.204.0/22'] as const;

export function probeSettings(t: ProbeTarget): ProbeSettings {
  const path = readyPath(t.module);
  const mirror = t.mode === 'mirror';
  const awsAttributes: Record<string, string> = {
    'deregistration_delay.timeout_seconds': '5',
  };
  if (mirror) {
    // A former primary must not keep clients: cut its flows when it turns unhealthy or is deregistered,
    // and let either AZ's LB node reach the single healthy target.
    awsAttributes['deregistration_delay.connection_termination.enabled'] = 'true';
    awsAttributes['target_health_state.unhealthy.connection_termination.enabled'] = 'true';
    awsAttributes['load_balancing.cross_zone.enabled'] = 'true';
  }
  return {
    path,
    aws: {
      healthCheckProtocol: 'HTTP',
      healthCheckPort: String(t.healthPort),
      healthCheckPath: path,
      matcher: { HttpCode: '200' },
      healthCheckIntervalSeconds: 5,
      healthCheckTimeoutSeconds: 2,
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 2,
      attributes: awsAttributes,
    },
    azure: {
      protocol: 'Http',
      port: t.healthPort,
      requestPath: path,
      intervalInSeconds: 5,
      probeThreshold: 2,
      noHealthyBackendsBehavior: mirror ? 'AllProbedDown' : 'AllProbedUp',
      sourceAddress: '168.63.129.16',
    },
    gcp: {
      type: 'HTTP',
      port: t.healthPort,
      requestPath: path,
      checkIntervalSec: 2,
      timeoutSec: 2,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
      ...(mirror ? { failoverPolicy: { dropTrafficIfUnhealthy: true, disableConnectionDrainOnFailover: true, failoverRatio: 0 } } : {}),
      probeSourceRanges: GCP_PROBE_RANGES,
    },
  };
}
