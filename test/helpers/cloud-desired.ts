import type { Desired, DesiredNode } from '../../cloud-adapters/src/types.ts';
import type { ModuleMode } from '../../node-service/src/contract/index.ts';

/** The cluster "demo", module "mirror" on two nodes, health port 9010, wired to one cloud's resources. */
export function demoDesired<R>(nodes: readonly DesiredNode[], resources: R, mode: ModuleMode = 'mirror'): Desired<R> {
  return { cluster: 'demo', module: 'mirror', mode, healthPort: 9010, nodes, resources };
}
