/**
 * Reads the functions' secrets at run time, never from the template: every value of every source is
 * valid (a rotation lists the old and the new secret), cached for `ttlMs` so a rotated secret is
 * picked up without a redeploy. A source that cannot be read is logged (with its name: logs are the
 * operator's) and skipped; the HTTP answer never names it.
 */
import { readFile } from 'node:fs/promises';
import type { SecretSource } from './config.ts';

export interface SecretReaderDeps {
  readonly env?: NodeJS.ProcessEnv;
  /** Secrets Manager: the value of `arn` at version stage `stage` (AWSCURRENT / AWSPREVIOUS), undefined when that stage does not exist */
  readonly awsSecret?: (arn: string, stage: 'AWSCURRENT' | 'AWSPREVIOUS') => Promise<string | undefined>;
  readonly readFile?: (path: string) => Promise<string>;
  readonly now?: () => number;
  /** @default 60000 */
  readonly ttlMs?: number;
  readonly onError?: (source: string, err: Error) => void;
}

export type SecretReader = (sources: readonly SecretSource[], inline?: readonly string[]) => Promise<string[]>;

const describe = (s: SecretSource) => ('env' in s ? `env ${s.env}` : 'file' in s ? `file ${s.file}` : `secret ${s.awsSecretArn}`);
/** A file or variable ends with a newline more often than not: the nodes strip trailing whitespace too. */
const clean = (v: string | undefined) => (v ?? '').replace(/[\r\n\t ]+$/, '');

export function createSecretReader(deps: SecretReaderDeps = {}): SecretReader {
  const env = deps.env ?? process.env;
  const now = deps.now ?? Date.now;
  const ttl = deps.ttlMs ?? 60_000;
  const read = deps.readFile ?? ((p: string) => readFile(p, 'utf8'));
  const cache = new Map<string, { at: number; values: string[] }>();

  async function values(s: SecretSource): Promise<string[]> {
    if ('env' in s) return [env[s.env], env[`${s.env}_PREVIOUS`]].map(clean);
    if ('file' in s) return [clean(await read(s.file))];
    if (!deps.awsSecret) throw new Error('no Secrets Manager client in this runtime');
    return (await Promise.all([deps.awsSecret(s.awsSecretArn, 'AWSCURRENT'), deps.awsSecret(s.awsSecretArn, 'AWSPREVIOUS')])).map(clean);
  }

  return async (sources, inline = []) => {
    const out = new Set(inline.map(clean).filter(Boolean));
    for (const s of sources) {
      const key = JSON.stringify(s);
      const hit = cache.get(key);
      if (hit && now() - hit.at < ttl) {
        for (const v of hit.values) out.add(v);
        continue;
      }
      try {
        const vs = (await values(s)).filter(Boolean);
        if (vs.length === 0) throw new Error('empty or unset');
        cache.set(key, { at: now(), values: vs });
        for (const v of vs) out.add(v);
      } catch (err) {
        deps.onError?.(describe(s), err as Error);
      }
    }
    return [...out];
  };
}
