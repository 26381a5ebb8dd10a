/** cloud-adapters: one interface (types.ts), one adapter per cloud load balancer, shared probe settings. */
export * from './types.ts';
export * from './probe-settings.ts';
export { createMirrorMonitor, type AlarmEvent, type MirrorMonitor, type MonitorOptions, type MonitorStatus, type Verdict } from './monitor.ts';
export { AwsTargetGroupAdapter, type AwsResources } from './aws/adapter.ts';
export { AzureLoadBalancerAdapter, type AzureResources, type AzureRule, type AzureAdapterOptions } from './azure/adapter.ts';
export { GcpLoadBalancerAdapter, type GcpResources, type GcpClients, type GcpAdapterOptions } from './gcp/adapter.ts';
export { SimulatedLoadBalancer, SimulatedLbAdapter, awsTimingScaled, type SimTarget, type SimulatedLbOptions } from './sim/simulated-lb.ts';
export { desiredFromCluster } from './desired.ts';
