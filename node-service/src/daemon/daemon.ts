import { join } from 'node:path';
import { createApi } from '../api/app.ts';
import { TokenSet } from '../api/tokens.ts';
import { consoleSetup } from '../console/index.ts';
import { close, listen } from '../api/server.ts';
import { loadConfig } from '../config/load.ts';
import { KeyRing, type KeyStatus } from '../secure/keyring.ts';
import { selectNode } from '../config/select-node.ts';
import { nextCounterBase } from '../heartbeat/counter.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { Metrics } from '../metrics/metrics.ts';
import { createEdge } from './edge-factory.ts';
import type { MirrorReplicator } from '../mirror/index.ts';
import { ModuleRunner } from './module-runner.ts';
import { SharedWitnesses } from './shared-witness.ts';

export interface RunningDaemon {
  readonly runners: ReadonlyMap<string, ModuleRunner>;
  readonly log: Logger;
  stop(): Promise<void>;
}

/**
 * `vigil secret reload`: the secret files named by the config file as it is now (a rotation step
 * edits next_secret_file or swaps the files), read and swapped in at once, or nothing changes.
 * Other config changes need a restart.
 */
function reloadKeys(configFile: string, keys: KeyRing, log: Logger): KeyStatus {
  const fresh = loadConfig(configFile, { skipFileChecks: true });
  const status = keys.reload(fresh);
  log.info(status, 'cluster secrets reloaded');
  return status;
}

/** Loads the config, starts every module this node runs, and serves the health URL and admin API. */
export async function startDaemon(opts: { configFile: string; nodeName?: string }): Promise<RunningDaemon> {
  const config = loadConfig(opts.configFile);
  const self = selectNode(config, opts.nodeName);
  const log = createLogger({ level: config.log.level, node: self.name });
  const keys = KeyRing.fromFiles(config);
  const tokens = TokenSet.fromConfig(config.api);
  const metrics = new Metrics();
  const counterBase = nextCounterBase(join(config.state_dir, `node-${self.name}`));

  const runners = new Map<string, ModuleRunner>();
  const mirrors = new Map<string, MirrorReplicator>();
  const edges: ReturnType<typeof createEdge>[] = [];
  const witnesses = new SharedWitnesses();
  for (const module of config.modules.filter((m) => m.nodes.includes(self.name))) {
    const edge = createEdge({ cluster: config, module, self, keys, counterBase, log: log.child({ module: module.name }), metrics, witnesses });
    edges.push(edge);
    if (edge.mirror) mirrors.set(module.name, edge.mirror);
    runners.set(module.name, new ModuleRunner(config, module, self, edge, log.child({ module: module.name }), metrics));
  }

  const app = createApi({ runners, mirrors, tokens, log: log.child({ part: 'api' }), metrics, node: self.name, cluster: config.cluster, console: consoleSetup(config, self, runners), secrets: { status: () => keys.status(), reload: () => reloadKeys(opts.configFile, keys, log) } });
  const servers = await listen(app, config.api.listen ?? self.addrs, config.api.port, config.api.tls);
  for (const r of runners.values()) await r.start();
  log.info({ cluster: config.cluster, modules: [...runners.keys()], api: `${(config.api.listen ?? self.addrs)[0]}:${config.api.port}` }, 'vigil daemon started');

  let stopping: Promise<void> | undefined;
  return {
    runners,
    log,
    stop: () =>
      (stopping ??= (async () => {
        log.info('shutting down: stopping modules');
        await Promise.all([...runners.values()].map((r) => r.shutdown()));
        await Promise.all(edges.map((e) => e.close()));
        await close(servers);
        log.info('vigil daemon stopped');
        log.flush();
      })()),
  };
}
