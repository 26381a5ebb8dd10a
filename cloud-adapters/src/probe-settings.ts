/**
 * The one source of truth for how each cloud's load balancer probes a Vigil node. cloud-adapters
 * (applied by the functions) and infra (CDK, ARM, Terraform) both read these values, so a deployed
 * stack and a later reconcile never disagree.
 */
import { readyPath, type ModuleMode } from '../../node-service/src/contract/index.ts';

export { readyPath, type ModuleMode };

export interface ProbeTarget {
  readonly module: string;
  readonly mode: ModuleMode;
  /** the node service's API / health port (api.port, 9010 by default) */
  readonly healthPort: number;
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
  /**
   * target group attributes of a Network Load Balancer target group (TCP/TLS), as the ELBv2 API names
   * them. Two of them (`*.connection_termination.enabled`) exist only on NLBs: use `albAttributes`
   * (or `awsTargetGroupAttributes(settings, protocol)`) for an Application Load Balancer's HTTP(S) target group.
   */
  readonly attributes: Readonly<Record<string, string>>;
  /** target group attributes of an Application Load Balancer target group (HTTP/HTTPS) */
  readonly albAttributes: Readonly<Record<string, string>>;
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
  /**
   * 1 s, the API's minimum (timeoutSec may not exceed it): ready.txt is answered from memory and flips
   * within 100 ms, so a 1 s answer budget is generous; with 2/2 thresholds the LB shifts in about 2-3 s.
   * A node stalled long enough to miss two probes has also missed its heartbeats (1 s timeout), so the
   * LB is no quicker to give up on it than the cluster is.
   */
  readonly checkIntervalSec: 1;
  readonly timeoutSec: 1;
  readonly healthyThreshold: 2;
  readonly unhealthyThreshold: 2;
  /** mirror only: backend service failover policy */
  readonly failoverPolicy?: {
    readonly dropTrafficIfUnhealthy: true;
    readonly disableConnectionDrainOnFailover: true;
    readonly failoverRatio: 0;
  };
  /**
   * mirror only: a connection to a backend that turned unhealthy (the demoted primary) is not kept
   * on it (`NEVER_PERSIST`): its next packet is balanced again, to the new primary, which resets it.
   */
  readonly connectionTrackingPolicy?: { readonly connectionPersistenceOnUnhealthyBackends: 'NEVER_PERSIST' };
  /**
   * Google's health-check source ranges to allow on the health port: the union of the ranges of
   * backend-service load balancers (35.191.0.0/16, 130.211.0.0/22: internal passthrough, proxies) and of
   * external passthrough Network Load Balancers (35.191.0.0/16, 209.85.152.0/22, 209.85.204.0/22).
   */
  readonly probeSourceRanges: readonly string[];
  /** the same for IPv6 backends */
  readonly probeSourceRangesIpv6: readonly string[];
}

export interface ProbeSettings {
  readonly path: string;
  readonly aws: AwsProbeSettings;
  readonly azure: AzureProbeSettings;
  readonly gcp: GcpProbeSettings;
}

export const GCP_PROBE_RANGES = ['35.191.0.0/16', '130.211.0.0/22', '209.85.152.0/22', '209.85.204.0/22'] as const;
export const GCP_PROBE_RANGES_IPV6 = ['2600:2d00:1:b029::/64', '2600:2d00:1:1::/64'] as const;

/** NLB-only attributes, rejected by the API on an ALB target group */
const NLB_ONLY_ATTRIBUTES = ['deregistration_delay.connection_termination.enabled', 'target_health_state.unhealthy.connection_termination.enabled', 'preserve_client_ip.enabled', 'proxy_protocol_v2.enabled'];

/** The attributes to set on a target group of this protocol (TCP/TLS: NLB, HTTP/HTTPS: ALB). */
export function awsTargetGroupAttributes(aws: AwsProbeSettings, protocol: string): Readonly<Record<string, string>> {
  return protocol === 'HTTP' || protocol === 'HTTPS' ? aws.albAttributes : aws.attributes;
}

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
  const albAttributes = Object.fromEntries(Object.entries(awsAttributes).filter(([k]) => !NLB_ONLY_ATTRIBUTES.includes(k)));
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
      albAttributes,
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
      checkIntervalSec: 1,
      timeoutSec: 1,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
      ...(mirror
        ? {
            failoverPolicy: { dropTrafficIfUnhealthy: true, disableConnectionDrainOnFailover: true, failoverRatio: 0 },
            connectionTrackingPolicy: { connectionPersistenceOnUnhealthyBackends: 'NEVER_PERSIST' },
          }
        : {}),
      probeSourceRanges: GCP_PROBE_RANGES,
      probeSourceRangesIpv6: GCP_PROBE_RANGES_IPV6,
    },
  };
}
