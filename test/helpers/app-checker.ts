import { PollingChecker, type ProbeOutcome } from '../../node-service/src/checkers/index.ts';
import { scriptProbe } from '../../node-service/src/checkers/probes.ts';
import type { CheckerConfig } from '../../node-service/src/config/schema.ts';
import { silentLogger } from '../../node-service/src/log/logger.ts';
import type { NewModule } from '../../node-service/src/modules/index.ts';
import type { AppCluster } from './app-cluster.ts';

/**
 * The template's own checker (its command and timeout from module.yaml) run by the daemon's checker
 * code inside a node's network and mount namespaces, one probe on demand.
 */
export function templateChecker(app: AppCluster, node: string, mod: NewModule): { readonly timeoutMs: number; once(): Promise<ProbeOutcome> } {
  const cfg = (mod.module.checkers as CheckerConfig[]).find((c) => c.type === 'script');
  if (!cfg || cfg.type !== 'script') throw new Error(`template ${mod.template.name}: no script checker`);
  const probe = scriptProbe(cfg.command, ['nsenter', '-t', String(app.pid(node)), '-m', '-n', '--']);
  const checker = new PollingChecker({ name: cfg.name ?? 'app', interval: cfg.interval, timeout: cfg.timeout, failures: 1, log: silentLogger() }, probe);
  return { timeoutMs: cfg.timeout, once: () => checker.probeOnce() };
}
