/**
 * The cloud resources each adapter manages, as zod schemas: the functions' configuration parses them
 * (functions/src/config.ts adds the `provider` tag) and the adapters' types are inferred from them,
 * so the two can never drift apart.
 */
import { z } from 'zod';

export const awsResourceFields = z.object({
  region: z.string().min(1).optional(),
  /** the target group the adapter creates if missing, then keeps in line */
  targetGroupName: z.string().regex(/^[A-Za-z0-9-]{1,32}$/, 'target group names are 1-32 letters, digits or "-"'),
  vpcId: z.string().min(1),
  /** TCP for a Network Load Balancer (default), HTTP for an Application Load Balancer */
  protocol: z.enum(['TCP', 'TLS', 'HTTP', 'HTTPS']).default('TCP'),
  /** the application's port on the nodes (the traffic port) */
  port: z.number().int().min(1).max(65535),
  targetType: z.enum(['instance', 'ip']).default('ip'),
});
export type AwsResources = z.input<typeof awsResourceFields>;

export const azureRuleSchema = z
  .object({
    /** @default layout.ts azureNames(..).rule(protocol, frontendPort) */
    name: z.string().min(1).optional(),
    protocol: z.enum(['Tcp', 'Udp', 'All']).default('Tcp'),
    frontendPort: z.number().int().min(0).max(65535),
    backendPort: z.number().int().min(0).max(65535),
  })
  .strict();
export type AzureRule = z.input<typeof azureRuleSchema>;

export const azureResourceFields = z.object({
  subscriptionId: z.string().min(1),
  resourceGroup: z.string().min(1),
  loadBalancer: z.string().min(1),
  frontendIpConfiguration: z.string().min(1),
  /** an IP-based backend pool (addresses + virtual network), never NIC-based */
  backendPool: z.string().min(1),
  /** resource id of the virtual network holding the nodes (IP-based backend pool) */
  virtualNetworkId: z.string().startsWith('/subscriptions/'),
  /** @default layout.ts azureNames(..).probe */
  probeName: z.string().min(1).optional(),
  rules: z.array(azureRuleSchema).min(1),
});
export type AzureResources = z.input<typeof azureResourceFields>;

export const gcpResourceFields = z.object({
  project: z.string().min(1),
  region: z.string().min(1),
  /** network name or URL, for the probe firewall rule */
  network: z.string().min(1),
  backendService: z.string().min(1),
  healthCheck: z.string().min(1),
  firewallRule: z.string().min(1),
  /** target tags the firewall rule applies to (the nodes' network tags) */
  targetTags: z.array(z.string().min(1)).min(1),
  /** one unmanaged instance group per node, named here by node name; created if missing */
  instanceGroups: z.record(z.string(), z.string().min(1)),
  protocol: z.enum(['TCP', 'UDP']).default('TCP'),
  /** INTERNAL: internal passthrough NLB; EXTERNAL: external passthrough NLB (backend-service based) */
  loadBalancingScheme: z.enum(['INTERNAL', 'EXTERNAL']).default('INTERNAL'),
});
export type GcpResources = z.input<typeof gcpResourceFields>;
