import { stringify } from 'yaml';
import type { RawCluster } from './schema.ts';

/**
 * Writes a cluster.yaml from a typed object. Infra code builds RawCluster values and emits them with
 * this, then validates the result with validateConfig, so generated configs and the daemon agree.
 */
export function toYaml(raw: RawCluster): string {
  return stringify(raw, { lineWidth: 0 });
}
