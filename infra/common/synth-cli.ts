import { parseArgs } from 'node:util';

/** True when the module whose import.meta.url is given is the script node was started with. */
export function isMainModule(metaUrl: string): boolean {
  return process.argv[1] !== undefined && metaUrl === new URL(`file://${process.argv[1]}`).href;
}

/**
 * The options `npm run synth:azure` and `npm run synth:gcp` share:
 * `-- [--farm-nodes N] [--listener-port P] [--health-port P]`.
 */
export function synthCliShapes(): { mirror: { listenerPort?: number; healthPort?: number }; farm: { listenerPort?: number; healthPort?: number; nodeCount?: number } } {
  const { values } = parseArgs({ options: { 'farm-nodes': { type: 'string' }, 'listener-port': { type: 'string' }, 'health-port': { type: 'string' } } });
  const common = {
    ...(values['listener-port'] ? { listenerPort: Number(values['listener-port']) } : {}),
    ...(values['health-port'] ? { healthPort: Number(values['health-port']) } : {}),
  };
  return { mirror: common, farm: { ...common, ...(values['farm-nodes'] ? { nodeCount: Number(values['farm-nodes']) } : {}) } };
}
