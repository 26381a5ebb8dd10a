import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../node-service/src/config/index.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import { createModuleHealth } from '../../node-service/src/checkers/module-health.ts';
import type { CheckResult } from '../../node-service/src/checkers/index.ts';

const yaml = (module: string) => `
cluster: t
secret_file: /nonexistent/key
api: { admin_token_file: /nonexistent/token }
nodes: [ { name: a, addrs: [198.18.4.1] }, { name: b, addrs: [198.18.4.2] } ]
modules:
${module}`;

describe('createModuleHealth', () => {
  it('mirror with vip, witness and checkers: names unnamed checkers type+index, as the module runner looks them up', async () => {
    const cfg = parseConfigText(
      yaml(`  - name: web
    mode: mirror
    id: 1
    vip: [ { addr: 198.18.4.100/24, interface: eth0 } ]
    witness: { ping: [127.0.0.1] }
    checkers:
      - { type: script, command: "exit 1", interval: 200ms, timeout: 200ms, failures: 1 }
      - { type: script, name: env, command: 'test "$VIGIL_NODE" = a && test "$VIGIL_MODULE" = web', interval: 200ms, timeout: 200ms, failures: 1 }
`),
      '/t.yaml',
      { skipFileChecks: true },
    );
    const h = createModuleHealth(cfg.modules[0], 'a', silentLogger());
    expect(h.vip).toBeDefined();
    expect(h.witness?.configured).toBe(true);
    expect(await h.witness!.reachable()).toBe(true);
    const reports: CheckResult[] = [];
    const stop = h.startCheckers((r) => reports.push(r));
    for (let i = 0; i < 100 && reports.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 700)); // the env checker would have reported by now if it failed
    stop();
    expect(reports).toEqual([{ checker: 'script0', up: false, reason: 'script exit status 1' }]);
  });

  it('farm module and module without vip or witness: no VipManager, no witness', () => {
    const cfg = parseConfigText(
      yaml(`  - { name: f, mode: farm, id: 2, vip: [ { addr: 198.18.4.200/24, interface: eth0 } ] }
  - { name: m, mode: mirror, id: 3 }
`),
      '/t.yaml',
      { skipFileChecks: true },
    );
    for (const m of cfg.modules) {
      const h = createModuleHealth(m, 'a', silentLogger());
      expect(h.vip).toBeUndefined();
      expect(h.witness).toBeUndefined();
    }
  });
});
