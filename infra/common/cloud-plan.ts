/**
 * The cloud-neutral plan of a cluster for the Azure and GCP generators: node names and fixed private
 * addresses, ports, the shared probe settings and the validated cluster.yaml.
 */
import { probeSettings, type ProbeSettings } from '../../cloud-adapters/src/probe-settings.ts';
import { modulePorts } from '../../node-service/src/config/ports.ts';
import type { RawCluster } from '../../node-service/src/config/schema.ts';
type RawModule = NonNullable<RawCluster['modules']>[number];
import { buildClusterConfig, DEFAULT_HEALTH_PORT, moduleName, renderClusterYaml, withPlaceholderEventsUrl, type ModuleMode, type VigilModuleOptions } from './cluster-config.ts';
import { hostAt, parseIpv4Cidr } from './ip.ts';

export interface CloudClusterOptions {
  /**
   * Cluster name (cluster.yaml `cluster`, resource name prefix; lower-case letters, digits and "-").
   * @default "vigil-mirror" / "vigil-farm"
   */
  readonly clusterName?: string;
  /**
   * Number of nodes: exactly 2 for a mirror, at least 2 for a farm.
   * @default 2
   */
  readonly nodeCount?: number;
  /** @default see VigilModuleOptions */
  readonly module?: VigilModuleOptions;
  /** @default 9010 */
  readonly healthPort?: number;
  /** the application's TCP port behind the load balancer @default 80 */
  readonly listenerPort?: number;
  /** the nodes' subnet; node i gets host address 10 + i @default cloud-specific */
  readonly subnetCidr?: string;
  /** Node.js version on the nodes @default DEFAULT_NODE_VERSION */
  readonly nodeVersion?: string;
  /** commands run before Vigil starts (install the application) @default none */
  readonly preStartCommands?: readonly string[];
}

export interface ClusterPlan {
  readonly cluster: string;
  readonly mode: ModuleMode;
  readonly moduleName: string;
  readonly nodes: readonly { readonly name: string; readonly addr: string }[];
  readonly healthPort: number;
  readonly listenerPort: number;
  /** cluster-internal ports: opened only between the nodes */
  readonly internal: { readonly heartbeatUdp: number; readonly tcp?: readonly [number, number]; readonly udp?: readonly [number, number] };
  readonly probe: ProbeSettings;
  readonly raw: RawCluster;
  readonly yaml: string;
}

export function planCluster(
  mode: ModuleMode,
  o: CloudClusterOptions,
  defaults: { subnetCidr: string; reserved: { first: number; last: number }; apiListen?: readonly string[]; eventsUrl?: string; arbiter?: RawModule['arbiter'] },
): ClusterPlan {
  const cluster = o.clusterName ?? `vigil-${mode}`;
  if (!/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/.test(cluster)) throw new Error(`clusterName "${cluster}" must be 2-32 lower-case letters, digits or "-", starting with a letter`);
  const n = o.nodeCount ?? 2;
  if (mode === 'mirror' && n !== 2) throw new Error(`a mirror cluster has exactly 2 nodes (nodeCount ${n})`);
  if (mode === 'farm' && (!Number.isInteger(n) || n < 2 || n > 32)) throw new Error(`nodeCount ${n} not supported. Must be an integer between 2 and 32.`);
  const healthPort = o.healthPort ?? DEFAULT_HEALTH_PORT;
  const listenerPort = o.listenerPort ?? 80;
  for (const [k, p] of [['healthPort', healthPort], ['listenerPort', listenerPort]] as const) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${k} ${p} not supported. Must be an integer between 1 and 65535.`);
  }
  if (listenerPort === healthPort) throw new Error(`listenerPort ${listenerPort} must differ from healthPort`);
  const ports = modulePorts(o.module?.id ?? 1);
  const internal =
    mode === 'mirror'
      ? { heartbeatUdp: ports.heartbeat, tcp: [ports.replication, ports.replication + 3] as const }
      : { heartbeatUdp: ports.heartbeat, udp: [ports.farm, ports.farm + 2] as const };
  const inRange = (r: readonly [number, number] | undefined) => r !== undefined && listenerPort >= r[0] && listenerPort <= r[1];
  if (listenerPort === ports.heartbeat || inRange(internal.tcp) || inRange(internal.udp)) throw new Error(`listenerPort ${listenerPort} collides with the module's cluster ports`);
  const subnetCidr = o.subnetCidr ?? defaults.subnetCidr;
  parseIpv4Cidr(subnetCidr);
  const nodes = Array.from({ length: n }, (_, i) => ({ name: `node${i + 1}`, addr: hostAt(subnetCidr, 10 + i, defaults.reserved) }));
  // module.arbiter: the cloud's lease store, created by the template (its address a placeholder here)
  const arbiter = o.module?.arbiter ? defaults.arbiter : undefined;
  const raw = buildClusterConfig({ cluster, mode, nodes, module: o.module, healthPort, apiListen: defaults.apiListen, eventsUrl: defaults.eventsUrl, arbiter });
  // the events URL is a deploy-time value (the function's host name): validated with a placeholder
  const { yaml } = renderClusterYaml(raw, (r) => withPlaceholderEventsUrl(r));
  const name = moduleName({ mode, module: o.module });
  return { cluster, mode, moduleName: name, nodes, healthPort, listenerPort, internal, probe: probeSettings({ module: name, mode, healthPort }), raw, yaml };
}
