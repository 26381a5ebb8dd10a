/**
 * Configuration of the cloud functions: which clusters they serve, each module's load-balancer
 * resources, and where the secrets are. Read once per cold start from
 *   VIGIL_FUNCTIONS_CONFIG       the JSON itself (CDK/ARM/Terraform set it), or
 *   VIGIL_FUNCTIONS_CONFIG_FILE  a path to it (bundled file, mounted secret),
 * validated with zod; every error is reported at once, with its key path.
 * Secrets are never written in the JSON by preference: `eventSecretEnv` / `adminTokenEnv` name the
 * environment variables that hold them (Secrets Manager, Key Vault references, Secret Manager).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, "_", "." or "-"');

const nodeSchema = z
  .object({
    name,
    /** the address the load balancer and the function reach the node at (private IP in a VPC) */
    address: z.string().refine((s) => isIP(s) !== 0, (s) => ({ message: `"${s}" is not an IP address` })),
    /** node service base URL for GET /api/v1/modules; default http://<address>:<healthPort> */
    apiUrl: z.string().url().optional(),
    /** AWS instance id (target type instance) or GCP VM name */
    instanceId: z.string().min(1).optional(),
    /** GCP zone of the VM; AWS availability zone of an ip target ("all" outside the VPC) */
    zone: z.string().min(1).optional(),
  })
  .strict();

export const awsResourcesSchema = z
  .object({
    provider: z.literal('aws'),
    region: z.string().min(1).optional(),
    /** the target group the adapter creates if missing, then keeps in line */
    targetGroupName: z.string().regex(/^[A-Za-z0-9-]{1,32}$/, 'target group names are 1-32 letters, digits or "-"'),
    vpcId: z.string().min(1),
    /** TCP for a Network Load Balancer (default), HTTP for an Application Load Balancer */
    protocol: z.enum(['TCP', 'TLS', 'HTTP', 'HTTPS']).default('TCP'),
    /** the application's port on the nodes (the traffic port) */
    port: z.number().int().min(1).max(65535),
    targetType: z.enum(['instance', 'ip']).default('ip'),
  })
  .strict();

export const azureResourcesSchema = z
  .object({
    provider: z.literal('azure'),
    subscriptionId: z.string().min(1),
    resourceGroup: z.string().min(1),
    loadBalancer: z.string().min(1),
    frontendIpConfiguration: z.string().min(1),
    backendPool: z.string().min(1),
    /** resource id of the virtual network holding the nodes (IP-based backend pool) */
    virtualNetworkId: z.string().startsWith('/subscriptions/'),
    probeName: z.string().min(1).optional(),
    rules: z
      .array(
        z
          .object({
            name: z.string().min(1).optional(),
            protocol: z.enum(['Tcp', 'Udp', 'All']).default('Tcp'),
            frontendPort: z.number().int().min(0).max(65535),
            backendPort: z.number().int().min(0).max(65535),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export const gcpResourcesSchema = z
  .object({
    provider: z.literal('gcp'),
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
  })
  .strict();

const moduleSchema = z
  .object({
    name,
    mode: z.enum(['mirror', 'farm']),
    cloud: z.discriminatedUnion('provider', [awsResourcesSchema, azureResourcesSchema, gcpResourcesSchema]),
  })
  .strict();

const clusterSchema = z
  .object({
    /** api.port of the node service: health URL and admin API */
    healthPort: z.number().int().min(1).max(65535).default(9010),
    /** name of the environment variable holding the cloud_events secret (same bytes as the nodes' secret_file) */
    eventSecretEnv: z.string().min(1).optional(),
    /** the secret inline (tests, demos); prefer eventSecretEnv */
    eventSecret: z.string().min(16, 'must be at least 16 characters').optional(),
    adminTokenEnv: z.string().min(1).optional(),
    adminToken: z.string().min(1).optional(),
    nodes: z.array(nodeSchema).min(1),
    modules: z.array(moduleSchema).min(1),
  })
  .strict()
  .refine((c) => c.eventSecret !== undefined || c.eventSecretEnv !== undefined, {
    message: 'one of eventSecretEnv or eventSecret is required',
    path: ['eventSecretEnv'],
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.nodes.forEach((n, i) => {
      if (names.has(n.name)) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'name'], message: `duplicate node "${n.name}"` });
      names.add(n.name);
    });
    const mods = new Set<string>();
    c.modules.forEach((m, i) => {
      if (mods.has(m.name)) ctx.addIssue({ code: 'custom', path: ['modules', i, 'name'], message: `duplicate module "${m.name}"` });
      mods.add(m.name);
      if (m.cloud.provider === 'aws' && m.cloud.targetType === 'instance') {
        c.nodes.forEach((n, j) => {
          if (!n.instanceId) ctx.addIssue({ code: 'custom', path: ['nodes', j, 'instanceId'], message: `module "${m.name}" uses targetType instance: node "${n.name}" needs instanceId` });
        });
      }
      if (m.cloud.provider === 'gcp') {
        const groups = m.cloud.instanceGroups;
        c.nodes.forEach((n, j) => {
          if (!n.instanceId || !n.zone) ctx.addIssue({ code: 'custom', path: ['nodes', j], message: `module "${m.name}" is on GCP: node "${n.name}" needs instanceId (VM name) and zone` });
          if (!groups[n.name]) ctx.addIssue({ code: 'custom', path: ['modules', i, 'cloud', 'instanceGroups', n.name], message: `no instance group for node "${n.name}"` });
        });
      }
    });
  });

export const functionsConfigSchema = z
  .object({
    clusters: z.record(name, clusterSchema).refine((r) => Object.keys(r).length > 0, 'at least one cluster'),
    /** accepted clock skew of signed events, ms */
    eventToleranceMs: z.number().int().min(1000).max(600_000).default(60_000),
    /** per-node GET /api/v1/modules timeout in GET /status, ms */
    nodeTimeoutMs: z.number().int().min(100).max(30_000).default(2000),
    /** the invariant monitor's N: no healthy target for longer than N probe intervals → alarm */
    noHealthyProbes: z.number().int().min(1).max(100).default(3),
  })
  .strict();

export type FunctionsConfig = z.infer<typeof functionsConfigSchema>;
export type ClusterConfig = FunctionsConfig['clusters'][string];
export type ModuleConfig = ClusterConfig['modules'][number];
export type NodeConfig = ClusterConfig['nodes'][number];

export class FunctionsConfigError extends Error {
  constructor(readonly source: string, readonly issues: readonly string[]) {
    super(`${source}: invalid functions config:\n  ${issues.join('\n  ')}`);
    this.name = 'FunctionsConfigError';
  }
}

export function parseFunctionsConfig(raw: unknown, source = 'config'): FunctionsConfig {
  const r = functionsConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new FunctionsConfigError(source, r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  return r.data;
}

export function loadFunctionsConfig(env: NodeJS.ProcessEnv = process.env): FunctionsConfig {
  let text: string;
  let source: string;
  if (env.VIGIL_FUNCTIONS_CONFIG) {
    text = env.VIGIL_FUNCTIONS_CONFIG;
    source = 'VIGIL_FUNCTIONS_CONFIG';
  } else if (env.VIGIL_FUNCTIONS_CONFIG_FILE) {
    source = env.VIGIL_FUNCTIONS_CONFIG_FILE;
    text = readFileSync(source, 'utf8');
  } else {
    throw new FunctionsConfigError('environment', ['set VIGIL_FUNCTIONS_CONFIG (JSON) or VIGIL_FUNCTIONS_CONFIG_FILE (path)']);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new FunctionsConfigError(source, [`not JSON: ${(err as Error).message}`]);
  }
  return parseFunctionsConfig(raw, source);
}

/** Resolves a secret from its inline value or the environment variable that holds it. */
export function resolveSecret(inline: string | undefined, envName: string | undefined, env: NodeJS.ProcessEnv, what: string): string {
  if (envName) {
    const v = env[envName];
    if (!v) throw new FunctionsConfigError('environment', [`${what}: environment variable ${envName} is not set`]);
    return v;
  }
  if (inline) return inline;
  throw new FunctionsConfigError('config', [`${what}: not configured`]);
}
