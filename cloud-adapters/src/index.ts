/** cloud-adapters: one interface (types.ts), one adapter per cloud load balancer, shared probe settings. */
export * from './types.ts';
export * from './probe-settings.ts';
export { createMirrorMonitor, type AlarmEvent, type MirrorMonitor, type MonitorOptions, type MonitorStatus, type Verdict } from './monitor.ts';
export * from './layout.ts';
export * from './resources.ts';
export { AwsTargetGroupAdapter } from './aws/adapter.ts';
export { AzureLoadBalancerAdapter, type AzureAdapterOptions } from './azure/adapter.ts';
export { GcpLoadBalancerAdapter, type GcpClients, type GcpAdapterOptions } from './gcp/adapter.ts';
export { SimulatedLoadBalancer, SimulatedLbAdapter, awsTimingScaled, azureTimingScaled, gcpTimingScaled, type SimTarget, type SimulatedLbOptions } from './sim/simulated-lb.ts';
export { desiredFromCluster, desiredOf } from './desired.ts';
