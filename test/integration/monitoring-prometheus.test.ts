import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { startConsoleCluster } from '../helpers/console-cluster.ts';

const MON = resolve(import.meta.dirname, '../../node-service/monitoring');
const PROMETHEUS = '/usr/bin/prometheus';

const freePort = () =>
  new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

// Debian's real Prometheus server scrapes two real daemons every second and evaluates the alert rules:
// the rules match what the daemons export, and every dashboard query runs without error.
describe('Prometheus scraping real daemons with the alert rules', () => {
  let c: LocalCluster;
  let prom: ChildProcess;
  let dir: string;
  let base: string;
  let promLog = '';

  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${base}${path}`);
    const b = (await r.json()) as { status: string; data: T; error?: string };
    if (b.status !== 'success') throw new Error(`${path}: ${b.error}`);
    return b.data;
  };
  const waitUntil = async (what: string, ok: () => Promise<boolean>, ms = 20_000) => {
    const until = Date.now() + ms;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > until) throw new Error(`${what} did not happen within ${ms} ms\n${promLog.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const alerts = () => api<{ alerts: Alert[] }>('/api/v1/alerts').then((d) => d.alerts);

  beforeAll(async () => {
    if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: apt-get install prometheus (scripts/setup-system.sh installs it)`);
    ({ cluster: c } = await startConsoleCluster());
    dir = mkdtempSync(join(tmpdir(), 'vigil-prometheus-'));
    const targets = c.nodes.map((n) => `${n.addr}:${c.apiPort}`);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(MON, 'vigil-alerts.yml')],
        scrape_configs: [{ job_name: 'vigil', static_configs: [{ targets }] }],
      }),
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout!.on('data', (b: Buffer) => (promLog += b.toString()));
    prom.stderr!.on('data', (b: Buffer) => (promLog += b.toString()));
    await waitUntil('prometheus ready', async () => (await fetch(`${base}/-/ready`)).ok, 30_000);
    await waitUntil('both daemons scraped', async () => (await api<{ activeTargets: { health: string }[] }>('/api/v1/targets')).activeTargets.filter((t) => t.health === 'up').length === 2);
  }, 90_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      await new Promise<void>((r) => {
        prom.once('exit', () => r());
        prom.kill('SIGTERM');
      });
    }
    await c?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the rules and sees one primary and nothing alerting in a healthy pair', async () => {
    const groups = await api<{ groups: { rules: { name: string; health: string }[] }[] }>('/api/v1/rules');
    expect(groups.groups[0].rules.map((r) => [r.name, r.health])).toEqual([
      ['VigilDualPrimary', 'ok'],
      ['VigilModuleNotServing', 'ok'],
      ['VigilReplicationNotInSync', 'ok'],
      ['VigilHeartbeatNetworkDown', 'ok'],
      ['VigilCheckerFailing', 'ok'],
    ]);
    await waitUntil('one primary counted', async () => {
      const r = await api<{ result: { value: [number, string] }[] }>('/api/v1/query?query=' + encodeURIComponent('sum by (module) (vigil_module_state{state=~"PRIM|ALONE"})'));
      return r.result[0]?.value[1] === '1';
    });
    // An alert that went pending while the pair was still electing its primary (a slow start on a
    // loaded machine) is cleared by the next rule evaluation (every 1 s); one that stays is a fault.
    await waitUntil('no alert pending or firing in the healthy pair', async () => (await alerts()).length === 0, 10_000).catch(() => undefined);
    expect(await alerts()).toEqual([]);
  });

  it('runs every dashboard query without an error', async () => {
    const d = JSON.parse(readFileSync(join(MON, 'vigil-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    for (const p of d.panels) {
      for (const t of p.targets) {
        const q = t.expr.replace(/\$__rate_interval/g, '10s').replace(/\$job|\$module/g, '.+');
        await expect(api(`/api/v1/query?query=${encodeURIComponent(q)}`), p.title).resolves.toBeDefined();
      }
    }
  });

  it('raises VigilReplicationNotInSync (pending) when the secondary stops, and VigilModuleNotServing when nothing serves', async () => {
    expect((await c.command('node2', 'stop')).status).toBe(200);
    await waitUntil('replication alert pending on node1', async () => (await alerts()).some((a) => a.labels.alertname === 'VigilReplicationNotInSync' && a.labels.instance === `${c.node('node1').addr}:${c.apiPort}` && a.labels.state === 'ALONE'));
    expect((await c.command('node1', 'stop')).status).toBe(200);
    await waitUntil('module-not-serving alert pending', async () => (await alerts()).some((a) => a.labels.alertname === 'VigilModuleNotServing' && a.labels.module === 'app'));
    const all = await alerts();
    console.log(`RESULT prometheus_alerts=${all.map((a) => `${a.labels.alertname}:${a.state}`).join(',')}`);
  });
});
