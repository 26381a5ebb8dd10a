import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { startConsoleCluster } from '../helpers/console-cluster.ts';

const MON = resolve(import.meta.dirname, '../../node-service/monitoring');
const PROMTOOL = '/usr/bin/promtool';

function promtool(args: string[], cwd = MON): { code: number; out: string } {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: apt-get install prometheus (scripts/setup-system.sh installs it)`);
  const r = spawnSync(PROMTOOL, args, { cwd, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

interface Rule {
  alert: string;
  expr: string;
}
const rules = (): Rule[] => (parse(readFileSync(join(MON, 'vigil-alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = () => JSON.parse(readFileSync(join(MON, 'vigil-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[]; templating: { list: { name: string }[] } };
/** Grafana's variables replaced by what Prometheus accepts, so promtool can parse the queries */
const plainPromql = (e: string) => e.replace(/\$__rate_interval/g, '1m').replace(/\$job|\$module/g, '.+');
const metricNames = (e: string) => [...e.matchAll(/\bvigil_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));

// The alert rules and the Grafana dashboard in node-service/monitoring/, checked with Debian's own
// promtool (prometheus package), and their series checked against real daemons' /metrics.
describe('Prometheus alert rules and Grafana dashboard', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'vigil-rules-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('promtool check rules accepts the rules', () => {
    const r = promtool(['check', 'rules', 'vigil-alerts.yml']);
    expect(r.out).toContain('SUCCESS: 5 rules found');
    expect(r.code).toBe(0);
    expect(rules().map((x) => x.alert)).toEqual(['VigilDualPrimary', 'VigilModuleNotServing', 'VigilReplicationNotInSync', 'VigilHeartbeatNetworkDown', 'VigilCheckerFailing']);
  });

  it('promtool test rules passes, with a firing and a silent case for every alert', () => {
    const r = promtool(['test', 'rules', 'vigil-alerts.test.yml']);
    console.log(`RESULT promtool_test_rules=${r.code === 0 ? 'SUCCESS' : 'FAILED'} alerts=${rules().length}`);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
    const tests = (parse(readFileSync(join(MON, 'vigil-alerts.test.yml'), 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules()) {
      expect(tests.some((t) => t.alertname === alert && t.exp_alerts.length > 0), `${alert} fires in a test`).toBe(true);
      expect(tests.some((t) => t.alertname === alert && t.exp_alerts.length === 0), `${alert} stays silent in a test`).toBe(true);
    }
  });

  it('the unit tests fail when an alert is broken (they can fail)', () => {
    const doc = parse(readFileSync(join(MON, 'vigil-alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] };
    doc.groups[0].rules[0].expr = doc.groups[0].rules[0].expr.replace('> 1', '> 2'); // dual primary needs 3 nodes now
    writeFileSync(join(tmp, 'vigil-alerts.yml'), stringify(doc));
    copyFileSync(join(MON, 'vigil-alerts.test.yml'), join(tmp, 'vigil-alerts.test.yml'));
    const r = promtool(['test', 'rules', 'vigil-alerts.test.yml'], tmp);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/alertname: VigilDualPrimary/);
  });

  it('every dashboard query is valid PromQL (promtool parses each as a recording rule)', () => {
    const d = dashboard();
    const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(15);
    writeFileSync(join(tmp, 'dashboard-queries.yml'), stringify({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `vigil:dashboard_query_${i}`, expr: plainPromql(e) })) }] }));
    const r = promtool(['check', 'rules', 'dashboard-queries.yml'], tmp);
    expect(r.out).toContain(`SUCCESS: ${exprs.length} rules found`);
    // what the issue asks the dashboard to show
    const all = exprs.join('\n');
    for (const m of ['vigil_module_state', 'vigil_transitions_total', 'vigil_heartbeats_dropped_total', 'vigil_peer_alive', 'vigil_replication_behind_bytes', 'vigil_resync_done_bytes', 'vigil_failover_duration_seconds_bucket', 'vigil_farm_buckets', 'vigil_checker_up']) expect(all).toContain(m);
    expect(d.templating.list.map((v) => v.name)).toEqual(['job', 'module']);
  });

  describe('against real daemons', () => {
    let c: LocalCluster;
    beforeAll(async () => {
      ({ cluster: c } = await startConsoleCluster());
    }, 60_000);
    afterAll(async () => {
      await c?.destroy();
    });
    const scrape = async (node: string) => (await fetch(c.url(node, '/metrics'))).text();

    it('exports every series the rules and the dashboard use', async () => {
      const text = await scrape('node1');
      const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
      const used = new Set([...rules().flatMap((r) => metricNames(r.expr)), ...dashboard().panels.flatMap((p) => p.targets.flatMap((t) => metricNames(t.expr)))]);
      for (const m of used) expect(exported.has(m), `${m} is exported`).toBe(true);
      expect(text).toMatch(/^vigil_node_info\{cluster="local",node="node1"\} 1$/m);
      expect(text).toMatch(/^vigil_replication_in_sync\{module="app"\} 1$/m);
      expect(text).toMatch(/^vigil_replication_behind_bytes\{module="app"\} 0$/m);
      expect(text).toMatch(/^vigil_transition_duration_seconds_count\{module="app",from="WAIT",to="ALONE"\} 1$/m);
    });

    it('times a failover: node2 serving after node1 is killed', async () => {
      await c.kill('node1');
      await c.waitFor({ node2: 'ALONE' });
      const text = await scrape('node2');
      const count = /^vigil_failover_duration_seconds_count\{module="app"\} (\d+)$/m.exec(text);
      const sum = /^vigil_failover_duration_seconds_sum\{module="app"\} ([\d.e-]+)$/m.exec(text);
      expect(Number(count?.[1])).toBe(1);
      expect(Number(sum?.[1])).toBeGreaterThan(0);
      expect(Number(sum?.[1])).toBeLessThan(5);
      expect(text).toMatch(/^vigil_replication_in_sync\{module="app"\} 0$/m);
      expect(text).toMatch(/^vigil_module_state\{module="app",state="ALONE"\} 1$/m);
      console.log(`RESULT metrics_failover_seconds=${Number(sum?.[1]).toFixed(3)} (peer declared lost → node2 ALONE)`);
    });
  });
});
