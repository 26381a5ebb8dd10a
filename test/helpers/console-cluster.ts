import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';

const REPO = resolve(import.meta.dirname, '../..');

export interface RoleTokens {
  readonly admin: string;
  readonly control: string;
  /** a second control token, in its own api.tokens entry */
  readonly control2: string;
  readonly monitor: string;
  /** a second monitor token, on the second line of the same file */
  readonly monitor2: string;
}

/**
 * Two real daemons on loopback addresses (node-service/src/demo/local-cluster.ts) whose config has
 * role tokens (and, with `tls`, a pair made by `vigil tls selfsigned`). node1 is made primary.
 */
export async function startConsoleCluster(o: { tls?: boolean; primary?: boolean } = {}): Promise<{ cluster: LocalCluster; tokens: RoleTokens; scheme: string; ca?: Buffer }> {
  // a checker, so that the page has one to show (a script checker that succeeds)
  const cluster = new LocalCluster({ module: { checkers: [{ type: 'script', name: 'app-alive', command: 'true', interval: '1s', timeout: '1s' }] } });
  const tok = () => randomBytes(18).toString('base64url');
  const tokens: RoleTokens = { admin: cluster.token, control: tok(), control2: tok(), monitor: tok(), monitor2: tok() };
  const file = (name: string, body: string) => {
    const f = join(cluster.dir, name);
    writeFileSync(f, body, { mode: 0o600 });
    return f;
  };
  const raw = parse(readFileSync(cluster.configFile, 'utf8')) as { api: Record<string, unknown> };
  raw.api.tokens = [
    { role: 'control', file: file('control.token', `${tokens.control}\n`) },
    { role: 'control', file: file('control2.token', `# rotated in on 2026-12-06\n${tokens.control2}\n`) },
    { role: 'monitor', file: file('monitor.token', `${tokens.monitor}\n${tokens.monitor2}\n`) },
  ];
  let ca: Buffer | undefined;
  if (o.tls) {
    execFileSync(process.execPath, [join(REPO, 'bin/vigil.mjs'), 'tls', 'selfsigned', '--dir', join(cluster.dir, 'tls'), '--config', cluster.configFile], { stdio: 'pipe' });
    raw.api.tls = { cert: join(cluster.dir, 'tls/api.crt'), key: join(cluster.dir, 'tls/api.key') };
    ca = readFileSync(join(cluster.dir, 'tls/api.crt'));
  }
  writeFileSync(cluster.configFile, stringify(raw));
  cluster.start('node1');
  cluster.start('node2');
  const scheme = o.tls ? 'https' : 'http';
  await waitUp(cluster);
  if (!o.tls && o.primary !== false) {
    const r = await cluster.command('node1', 'prim');
    if (r.status !== 200) throw new Error(`prim refused: ${JSON.stringify(r.body)}`);
    await cluster.waitFor({ node1: 'PRIM', node2: 'SECOND' });
  }
  return { cluster, tokens, scheme, ca };
}

async function waitUp(c: LocalCluster): Promise<void> {
  const until = Date.now() + 20_000;
  for (const n of c.nodes) {
    // /metrics answers over plain HTTP with or without api.tls
    while (!(await fetch(c.url(n.name, '/metrics')).then((r) => r.ok, () => false))) {
      if (Date.now() > until) throw new Error(`${n.name} did not start: ${readFileSync(n.logFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export const logOf = (c: LocalCluster, node: string): string => readFileSync(c.node(node).logFile, 'utf8');
