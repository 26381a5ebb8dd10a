import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { CliError } from './client.ts';

export interface SelfSignedOptions {
  readonly dir: string;
  /** addresses and host names the certificate is valid for */
  readonly names: readonly string[];
  readonly days: number;
  readonly force: boolean;
}

/** every address a client or a peer may use to reach a node's API, from the config */
export function apiNames(configFile: string): string[] {
  const c = loadConfig(configFile, { skipFileChecks: true });
  return [...new Set([...c.nodes.flatMap((n) => n.addrs), ...(c.api.listen ?? []).filter((a) => a !== '0.0.0.0' && a !== '::'), ...c.nodes.map((n) => n.name)])];
}

/**
 * `vigil tls selfsigned`: an ECDSA P-256 key and a self-signed certificate valid for every node's
 * addresses, made with openssl. The same pair goes on every node (like cluster.yaml), so each node's
 * console trusts its peers' APIs by that certificate alone.
 */
export function makeSelfSigned(o: SelfSignedOptions): { cert: string; key: string } {
  const dir = resolve(o.dir);
  const cert = join(dir, 'api.crt');
  const key = join(dir, 'api.key');
  if (!o.force && (existsSync(cert) || existsSync(key))) throw new CliError(`${cert} or ${key} exists: pass --force to replace them`);
  if (!Number.isInteger(o.days) || o.days < 1 || o.days > 3650) throw new CliError(`--days ${o.days}: give a whole number from 1 to 3650`);
  const names = [...new Set(['localhost', '127.0.0.1', ...o.names])];
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', String(o.days), '-subj', '/CN=vigil API', '-addext', `subjectAltName=${san}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', join(tmp, 'api.key'), '-out', join(tmp, 'api.crt')], { stdio: ['ignore', 'ignore', 'pipe'] });
    chmodSync(join(tmp, 'api.key'), 0o600);
    chmodSync(join(tmp, 'api.crt'), 0o644);
    renameSync(join(tmp, 'api.key'), key);
    renameSync(join(tmp, 'api.crt'), cert);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new CliError('openssl is not installed: apt-get install openssl');
    throw new CliError(`openssl failed: ${err.stderr?.toString().trim() ?? err.message}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { cert, key };
}

export const tlsSnippet = (p: { cert: string; key: string }): string => `api:\n  tls: { cert: ${p.cert}, key: ${p.key} }`;
