export { loadConfig, parseConfigText, validateConfig } from './load.ts';
export { ConfigError } from './config-error.ts';
export type { ClusterConfig, ModuleConfig, NodeConfig } from './types.ts';
export { modulePorts } from './ports.ts';
export { parseDuration, formatDuration } from './duration.ts';
export { DEFAULT_CONFIG_FILE } from './defaults.ts';
export { Secret } from './secret.ts';
export { selectNode } from './select-node.ts';
export { toYaml } from './emit.ts';
