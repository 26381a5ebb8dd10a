export { MirrorCluster, FarmCluster, VigilCluster, type VigilClusterProps, type FarmClusterProps, type ExistingInstance } from './vigil-cluster.ts';
export { functionCode, bundleFunction, DEFAULT_FUNCTION_ENTRY } from './function-code.ts';
export type { VigilModuleOptions } from '../common/cluster-config.ts';
