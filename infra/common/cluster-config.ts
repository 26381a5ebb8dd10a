/**
 * Builds the cluster.yaml every cloud deployable writes on its nodes, as a typed RawCluster (the
 * daemon's own input schema), emits it with the daemon's toYaml and validates it with the daemon's
 * validateConfig at synth time. No YAML is written by hand anywhere in infra/.
 */
import { SDK_PACKAGES } from '../../node-service/src/arbiter/index.ts';
import { toYaml, validateConfig, type ClusterConfig } from '../../node-service/src/config/index.ts';
import type { RawCluster } from '../../node-service/src/config/schema.ts';
import { DEFAULT_API_PORT, type ModuleMode } from '../../node-service/src/contract/index.ts';

export type RawModule = NonNullable<RawCluster['modules']>[number];
export type RawChecker = NonNullable<RawModule['checkers']>[number];
export type { ModuleMode } from '../../node-service/src/contract/index.ts';

/** Where the bootstrap scripts put the files cluster.yaml points to (contract default paths). */
export const VIGIL_PATHS = {
  config: '/etc/vigil/cluster.yaml',
  secret: '/etc/vigil/cluster.key',
  adminToken: '/etc/vigil/admin.token',
  eventsSecret: '/etc/vigil/events.key',
  scriptsRoot: '/etc/vigil/scripts',
  stateDir: '/var/lib/vigil',
} as const;

/** api.port by default (contract): the health URL and the admin API */
export const DEFAULT_HEALTH_PORT = DEFAULT_API_PORT;

/** The module part of a cluster, as a construct / template user describes it (cloud-neutral). */
export interface VigilModuleOptions {
  /**
   * Module name; it is also the health URL's path segment (`/var/modules/<name>/ready.txt`).
   * @default "mirror" for a mirror cluster, "farm" for a farm cluster
   */
  readonly name?: string;
  /**
   * Module id: picks the heartbeat (udp 8888+id-1), replication (tcp 5600+(id-1)*4) and farm ports.
   * @default 1
   */
  readonly id?: number;
  /**
   * Mirror only: directories replicated synchronously to the secondary (absolute paths, not nested).
   * @default ["/srv/app/data"]
   */
  readonly replicatedDirs?: readonly string[];
  /**
   * Checkers of the application, in cluster.yaml syntax (e.g. `{ type: 'tcp', target: '127.0.0.1:8080' }`).
   * @default none
   */
  readonly checkers?: readonly RawChecker[];
  /**
   * Heartbeat pulse and timeout as durations ("100ms", "1s").
   * @default the daemon's defaults (100ms / 1s)
   */
  readonly heartbeat?: { readonly pulse?: string; readonly timeout?: string };
  /**
   * Mirror only: the node that becomes primary when both start with equal data.
   * @default the first node
   */
  readonly defaultPrimary?: string;
  /**
   * Mirror only: serve as primary only while holding a lease on the cloud's own store, created by
   * the template (AWS: a DynamoDB table). Split brain is then impossible, at the price of a takeover
   * of about the lease ttl (10 s) instead of the heartbeat timeout.
   * @default false
   */
  readonly arbiter?: boolean;
  /**
   * Module scripts (start_prim, stop_prim, start_both, stop_both, ...) by file name → content.
   * Written to /etc/vigil/scripts/<module>/ with mode 0755 and referenced as scripts_dir.
   * @default none (no scripts_dir)
   */
  readonly scripts?: Readonly<Record<string, string>>;
  /**
   * Farm only: relative weight per node name.
   * @default 1 for every node
   */
  readonly farmPower?: Readonly<Record<string, number>>;
}

export interface ClusterSpec {
  readonly cluster: string;
  readonly mode: ModuleMode;
  readonly nodes: readonly { readonly name: string; readonly addr: string }[];
  readonly module?: VigilModuleOptions;
  /** api.port: the health URL and admin API */
  readonly healthPort?: number;
  /**
   * api.listen: addresses the node service's API / health port binds to. GCP passthrough load
   * balancers send their probes to the forwarding rule's address (delivered locally by the guest
   * agent), so there the API must listen on 0.0.0.0.
   * @default the node's own address (the daemon's default)
   */
  readonly apiListen?: readonly string[];
  /** URL the nodes POST state changes to (the cloud function's /events); secret in VIGIL_PATHS.eventsSecret */
  readonly eventsUrl?: string;
  /** mirror: the `arbiter:` block for the lease store the template creates */
  readonly arbiter?: RawModule['arbiter'];
}

const SCRIPT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function moduleName(spec: Pick<ClusterSpec, 'mode' | 'module'>): string {
  return spec.module?.name ?? spec.mode;
}

/** The typed cluster.yaml content for a spec. Pure; validate with {@link renderClusterYaml}. */
/** The SDK a cloud arbiter in this cluster.yaml needs on the nodes (installed by the bootstrap). */
export function arbiterPackages(raw: RawCluster): readonly string[] {
  const type = raw.modules?.[0]?.arbiter?.type;
  return type === undefined || type === 'etcd' ? [] : SDK_PACKAGES[type];
}

export function buildClusterConfig(spec: ClusterSpec): RawCluster {
  const m = spec.module ?? {};
  const name = moduleName(spec);
  for (const s of Object.keys(m.scripts ?? {})) {
    if (!SCRIPT_NAME.test(s)) throw new Error(`module script name "${s}" must be a plain file name (letters, digits, "_", ".", "-")`);
  }
  const mod: RawModule = {
    name,
    mode: spec.mode,
    id: m.id ?? 1,
    vip: [], // the cloud load balancer is the virtual IP
    ...(m.heartbeat ? { heartbeat: { ...m.heartbeat } } : {}),
    ...(spec.mode === 'mirror' ? { replication: { dirs: [...(m.replicatedDirs ?? ['/srv/app/data'])] } } : {}),
    ...(m.checkers && m.checkers.length > 0 ? { checkers: m.checkers.map((c) => ({ ...c })) } : {}),
    ...(m.scripts && Object.keys(m.scripts).length > 0 ? { scripts_dir: `${VIGIL_PATHS.scriptsRoot}/${name}` } : {}),
    ...(spec.mode === 'mirror' ? { default_primary: m.defaultPrimary ?? spec.nodes[0]?.name } : {}),
    ...(spec.mode === 'farm' ? { farm: { rules: [], ...(m.farmPower ? { power: { ...m.farmPower } } : {}) } } : {}),
    ...(spec.eventsUrl !== undefined ? { cloud_events: { url: spec.eventsUrl, secret_file: VIGIL_PATHS.eventsSecret } } : {}),
    ...(spec.mode === 'mirror' && spec.arbiter ? { arbiter: spec.arbiter } : {}),
  };
  return {
    cluster: spec.cluster,
    secret_file: VIGIL_PATHS.secret,
    state_dir: VIGIL_PATHS.stateDir,
    api: {
      port: spec.healthPort ?? DEFAULT_HEALTH_PORT,
      admin_token_file: VIGIL_PATHS.adminToken,
      ...(spec.apiListen ? { listen: [...spec.apiListen] } : {}),
    },
    nodes: spec.nodes.map((n) => ({ name: n.name, addrs: [n.addr] })),
    modules: [mod],
  };
}

/**
 * Validates `raw` with the daemon's validator (file checks skipped: the files exist only on the
 * nodes) and returns its YAML. `forValidation` replaces values only known at deploy time (CDK
 * tokens, ARM expressions, Terraform interpolations) by representative concrete ones.
 */
export function renderClusterYaml(raw: RawCluster, forValidation: (raw: RawCluster) => RawCluster = (r) => r): { yaml: string; config: ClusterConfig } {
  const config = validateConfig(structuredClone(forValidation(structuredClone(raw))), VIGIL_PATHS.config, { skipFileChecks: true });
  return { yaml: toYaml(raw), config };
}

/** Replaces the events URL by a concrete placeholder (for validating a config whose URL is a deploy-time value). */
export function withPlaceholderEventsUrl(raw: RawCluster, url = 'https://events.placeholder.invalid/events'): RawCluster {
  return { ...raw, modules: (raw.modules ?? []).map((m) => (m.cloud_events ? { ...m, cloud_events: { ...m.cloud_events, url } } : m)) };
}
