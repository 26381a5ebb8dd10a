import type { CheckerConfig } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { VipManager } from '../vip/index.ts';
import { PollingChecker, type Checker, type Probe } from './poll.ts';
import { linkOutcome, pingProbe, processProbe, readLinkIp, readLinkSysfs, scriptProbe, tcpProbe } from './probes.ts';

export { PollingChecker, type Checker, type CheckResult, type Probe, type ProbeOutcome, type PollOptions } from './poll.ts';
export { listProcesses, processMatcher, type ProcInfo } from './probes.ts';

export interface CheckerDeps {
  readonly log: Logger;
  /** required by the `vip` checker */
  readonly vip?: Pick<VipManager, 'missing'>;
  /** environment for `script` checkers (e.g. VIGIL_MODULE, VIGIL_NODE); default: the daemon's */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Run ping, script and interface probes inside this named network namespace (`ip netns exec`).
   * The daemon leaves it unset (it already runs in the node's namespace); tests use it.
   */
  readonly netns?: string;
}

/** The name a checker reports under: its configured `name`, else type and target. */
export function checkerName(cfg: CheckerConfig): string {
  if (cfg.name) return cfg.name;
  switch (cfg.type) {
    case 'tcp':
    case 'ping':
      return `${cfg.type}:${cfg.target}`;
    case 'interface':
      return `interface:${cfg.interface}`;
    case 'script':
      return `script:${cfg.command.split(/\s+/)[0]}`;
    case 'process':
      return `process:${cfg.match}`;
    case 'vip':
      return 'vip';
  }
}

/**
 * Builds a checker from its validated config (durations in ms). The restart/stopstart/failover
 * decision (`on_failure`, the process checker's `max_restarts` in `restart_window`) is the state
 * machine's: a checker only says up or down, and why.
 */
export function createChecker(cfg: CheckerConfig, deps: CheckerDeps): Checker {
  const name = checkerName(cfg);
  const nsPrefix = deps.netns ? ['ip', 'netns', 'exec', deps.netns] : [];
  let probe: Probe;
  switch (cfg.type) {
    case 'tcp':
      probe = tcpProbe(cfg.target);
      break;
    case 'ping':
      probe = pingProbe(cfg.target, cfg.timeout, nsPrefix);
      break;
    case 'interface': {
      const ifname = cfg.interface;
      const ns = deps.netns;
      probe = async (signal) => linkOutcome(ifname, ns ? await readLinkIp(ifname, ns, signal) : await readLinkSysfs(ifname));
      break;
    }
    case 'script':
      probe = scriptProbe(cfg.command, nsPrefix, deps.env);
      break;
    case 'process':
      probe = processProbe(cfg);
      break;
    case 'vip': {
      const vip = deps.vip;
      if (!vip) throw new Error(`checker ${name}: a vip checker needs the module's VIP manager (module without vip?)`);
      probe = async () => {
        const missing = await vip.missing();
        return missing.length ? { ok: false, reason: `VIP missing: ${missing.join(', ')}` } : { ok: true, reason: 'VIPs present' };
      };
      break;
    }
  }
  return new PollingChecker({ name, interval: cfg.interval, timeout: cfg.timeout, failures: cfg.failures, log: deps.log.child({ checker: name }) }, probe);
}
