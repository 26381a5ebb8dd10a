import type { ParsedCluster } from './schema.ts';
import type { ModulePorts } from './ports.ts';

type ParsedModule = ParsedCluster['modules'][number];

/** A module's configuration after defaults, derived ports and path resolution; durations are in ms. */
export interface ModuleConfig extends Omit<ParsedModule, 'heartbeat' | 'scripts_dir' | 'nodes'> {
  readonly heartbeat: { readonly pulse: number; readonly timeout: number };
  readonly ports: ModulePorts;
  /** absolute, when configured */
  readonly scripts_dir?: string;
  /** the nodes this module runs on, in config order */
  readonly nodes: readonly string[];
}

export interface NodeConfig {
  readonly name: string;
  readonly addrs: readonly string[];
}

/** A validated cluster.yaml. Paths are absolute (relative ones resolve against the file's folder). */
export interface ClusterConfig extends Omit<ParsedCluster, 'modules' | 'nodes'> {
  readonly file: string;
  readonly nodes: readonly NodeConfig[];
  readonly modules: readonly ModuleConfig[];
}
