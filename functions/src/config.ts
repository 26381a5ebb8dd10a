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
import { awsResourceFields, azureResourceFields, gcpResourceFields } from '../../cloud-adapters/src/resources.ts';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, "_", "." or "-"');

/**
 * Where a secret comes from. Several sources may be listed: every value they hold is valid, which is
 * how a rotation works without a redeploy (the old and the new secret during the change-over).
 *   env           an environment variable (Azure: an app setting that is a Key Vault reference);
 *                 NAME_PREVIOUS, when set, is valid too
 *   file          a file read at use (GCP: a Secret Manager secret mounted as a volume, latest version)
 *   awsSecretArn  Secrets Manager, read at run time: AWSCURRENT and AWSPREVIOUS are both valid
 * Values are cached for a minute, so a rotated secret is picked up within that time.
 */
export const secretSourceSchema = z.union([
  z.object({ env: z.string().min(1) }).strict(),
  z.object({ file: z.string().min(1) }).strict(),
  z.object({ awsSecretArn: z.string().min(1) }).strict(),
]);
export type SecretSource = z.infer<typeof secretSourceSchema>;

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
    /** optional per-node event keys: when set, only these verify this node's events (not the cluster's) */
    eventSecrets: z.array(secretSourceSchema).min(1).optional(),
  })
  .strict();

const moduleSchema0 = z.discriminatedUnion('provider', [
  awsResourceFields.extend({ provider: z.literal('aws') }).strict(),
  azureResourceFields.extend({ provider: z.literal('azure') }).strict(),
  gcpResourceFields.extend({ provider: z.literal('gcp') }).strict(),
]);

const moduleSchema = z
  .object({
    name,
    mode: z.enum(['mirror', 'farm']),
    cloud: moduleSchema0,
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
    /** the events secrets (rotation: list the old and the new one); or eventSecretEnv / eventSecret */
    eventSecrets: z.array(secretSourceSchema).min(1).optional(),
    adminTokenEnv: z.string().min(1).optional(),
    adminToken: z.string().min(1).optional(),
    /** the admin tokens (rotation: old and new); or adminTokenEnv / adminToken */
    adminTokens: z.array(secretSourceSchema).min(1).optional(),
    nodes: z.array(nodeSchema).min(1),
    modules: z.array(moduleSchema).min(1),
  })
  .strict()
  .refine((c) => c.eventSecret !== undefined || c.eventSecretEnv !== undefined || c.eventSecrets !== undefined, {
    message: 'one of eventSecrets, eventSecretEnv or eventSecret is required',
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

/** The secret sources of a cluster's events (or of one node's, with per-node keys), inline values apart. */
export function eventSecretSources(c: ClusterConfig, node?: NodeConfig): { sources: SecretSource[]; inline: string[] } {
  if (node?.eventSecrets) return { sources: node.eventSecrets, inline: [] };
  return { sources: [...(c.eventSecrets ?? []), ...(c.eventSecretEnv ? [{ env: c.eventSecretEnv }] : [])], inline: c.eventSecret ? [c.eventSecret] : [] };
}

/** The admin token sources of a cluster; none: /reconcile and /status are disabled. */
export function adminTokenSources(c: ClusterConfig): { sources: SecretSource[]; inline: string[] } {
  return { sources: [...(c.adminTokens ?? []), ...(c.adminTokenEnv ? [{ env: c.adminTokenEnv }] : [])], inline: c.adminToken ? [c.adminToken] : [] };
}
