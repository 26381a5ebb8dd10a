import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError } from '../config/config-error.ts';
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts';
import { loadConfig } from '../config/load.ts';
import type { LogRecord } from '../daemon/event-log.ts';
import type { ModuleStatus } from '../daemon/module-runner.ts';
import { ApiClient, CliError, type ClientOptions } from './client.ts';
import { VERSION } from '../version.ts';
import { registerInitCommand } from './init-command.ts';
import { registerModuleCommands } from '../modules/cli.ts';
import { contractJson, logLine, stateTable } from './format.ts';
import { watchState } from './watch.ts';
import { installAllNodes } from './all-nodes.ts';
import { registerOperatorVerbs } from './operator-verbs.ts';
import { registerSecretVerbs } from './secret-verbs.ts';
import { registerMirrorVerbs, VERIFY_ERROR_EXIT } from './mirror-verbs.ts';

const program = new Command();
program.name('vigil').description('Vigil high-availability cluster: node service and CLI').showHelpAfterError().exitOverride();
program.version(VERSION, '-V, --version', 'print the version');

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'cluster.yaml (gives this node\'s API address and admin token)', DEFAULT_CONFIG_FILE)
    .option('--node <name>', 'this node\'s entry in the config when several are on this host')
    .option('--api <url>', 'talk to this node API instead (e.g. http://198.18.0.2:9010)')
    .option('--token-file <file>', 'admin token file (default: api.admin_token_file of the config, or $VIGIL_TOKEN)');
}

const toClient = (o: { config?: string; node?: string; api?: string; tokenFile?: string }): ClientOptions => ({
  config: o.config,
  node: o.node,
  api: o.api,
  tokenFile: o.tokenFile,
});

program
  .command('daemon')
  .description('run the node service in the foreground (systemd)')
  .option('--config <file>', 'cluster.yaml', DEFAULT_CONFIG_FILE)
  .option('--node <name>', 'this node\'s entry (default: the one whose address is on this host)')
  .action(async (o: { config: string; node?: string }) => {
    const { startDaemon } = await import('../daemon/daemon.ts');
    const d = await startDaemon({ configFile: o.config, nodeName: o.node });
    let signals = 0;
    const onSignal = (sig: string) => {
      signals += 1;
      if (signals > 1) {
        d.log.warn(`second ${sig}: exiting without finishing the stop`);
        process.exit(1);
      }
      d.stop().then(
        () => process.exit(0),
        (e: Error) => {
          d.log.error({ err: e.message }, 'stop failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });

const VERB_HELP = {
  start: 'start the module on this node (from STOP): it WAITs, then takes the role the cluster gives it',
  stop: 'stop the module on this node (stop scripts run, the virtual IP is released); it stays STOP across restarts until vigil start',
  restart: 'restart the application in place on this node (its stop then start scripts), keeping the role',
  prim: 'make this node primary; refused if its data may be stale, unless --force',
  second: 'make this node secondary: a primary hands over to its in-sync peer',
  swap: 'exchange the roles of primary and secondary, with no lost write (from either node)',
} as const;

for (const verb of ['start', 'stop', 'restart', 'prim', 'second', 'swap'] as const) {
  const cmd = program.command(verb).description(VERB_HELP[verb]).requiredOption('-m, --module <name>', 'module name');
  if (verb === 'prim') cmd.option('--force', 'become primary even if this node\'s data may be stale');
  if (verb === 'prim' || verb === 'second') cmd.option('--fullsync', 'compare the whole trees (checksums) at the next resync');
  if (verb !== 'prim') cmd.addOption(new Option('--force').hideHelp());
  clientOptions(cmd).action(async (o: { module: string; force?: boolean; fullsync?: boolean } & ClientOptions) => {
    const client = ApiClient.resolve(toClient(o));
    const body: Record<string, boolean> = {};
    if (o.force) body.force = true;
    if (o.fullsync) body.fullsync = true;
    const r = await client.request<{ ok?: boolean; message?: string; error?: string; state?: string }>('POST', `/modules/${encodeURIComponent(o.module)}/${verb}`, body);
    if (r.status !== 200) throw new CliError(r.body.message ?? r.body.error ?? `HTTP ${r.status}`);
    console.log(`${o.module}: ${r.body.message} (state ${r.body.state})`);
  });
}

clientOptions(
  program
    .command('state')
    .description('show module states')
    .option('-m, --module <name>', 'one module')
    .option('--json', 'one JSON object per module and line')
    .option('--watch', 'refresh continuously, with a progress bar during resync'),
).action(async (o: { module?: string; json?: boolean; watch?: boolean } & ClientOptions) => {
  const client = ApiClient.resolve(toClient(o));
  const fetchAll = async (): Promise<ModuleStatus[]> => {
    const r = await client.request<ModuleStatus | ModuleStatus[] | { error: string }>('GET', o.module ? `/modules/${encodeURIComponent(o.module)}` : '/modules');
    if (r.status !== 200) throw new CliError((r.body as { error: string }).error);
    return Array.isArray(r.body) ? r.body : [r.body as ModuleStatus];
  };
  if (o.watch) return watchState(fetchAll);
  const all = await fetchAll();
  console.log(o.json ? all.map(contractJson).join('\n') : stateTable(all));
});

clientOptions(
  program
    .command('log')
    .description('recent transitions and script runs of a module')
    .requiredOption('-m, --module <name>', 'module name')
    .option('-n <count>', 'how many records', '50')
    .option('--json', 'JSON lines'),
).action(async (o: { module: string; n: string; json?: boolean } & ClientOptions) => {
  const n = Number(o.n);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new CliError(`-n ${o.n}: give a whole number from 1 to 500`);
  const client = ApiClient.resolve(toClient(o));
  const r = await client.request<LogRecord[] | { error: string }>('GET', `/modules/${encodeURIComponent(o.module)}/log?n=${n}`);
  if (r.status !== 200) throw new CliError((r.body as { error: string }).error);
  for (const rec of r.body as LogRecord[]) console.log(o.json ? JSON.stringify(rec) : logLine(rec));
});

registerModuleCommands(program);

registerInitCommand(program);

const config = program.command('config').description('configuration tools');
config
  .command('check')
  .description('validate a cluster.yaml: exit 0, or print each error with file, key path and reason')
  .option('--config <file>', 'cluster.yaml', DEFAULT_CONFIG_FILE)
  .action((o: { config: string }) => {
    const c = loadConfig(o.config);
    console.log(`ok: ${c.file}: cluster ${c.cluster}, ${c.nodes.length} nodes, ${c.modules.length} modules (${c.modules.map((m) => `${m.name}/${m.mode}`).join(', ')})`);
  });

program
  .command('tls')
  .description('certificates for the HTTPS API and console (api.tls)')
  .command('selfsigned')
  .description('make a self-signed key and certificate for every node address of the config (copy both to every node)')
  .requiredOption('--dir <dir>', 'where to write api.crt and api.key (mode 600)')
  .option('--config <file>', 'cluster.yaml whose node addresses the certificate covers', DEFAULT_CONFIG_FILE)
  .option('--name <names...>', 'more host names or addresses')
  .option('--days <n>', 'validity', '825')
  .option('--force', 'replace an existing pair')
  .action(async (o: { dir: string; config: string; name?: string[]; days: string; force?: boolean }) => {
    const { apiNames, makeSelfSigned, tlsSnippet } = await import('./tls.ts');
    const names = [...(existsSync(o.config) ? apiNames(o.config) : []), ...(o.name ?? [])];
    const pair = makeSelfSigned({ dir: o.dir, names, days: Number(o.days), force: o.force ?? false });
    console.log(`wrote ${pair.cert} and ${pair.key} (valid for ${names.join(', ') || 'localhost'}); add to cluster.yaml on every node:\n${tlsSnippet(pair)}`);
  });

program
  .command('demo')
  .description('run a two-node cluster in network namespaces on this machine: replication, VIP, failover, return, swap')
  .option('--farm', 'show a three-node farm instead')
  .option('--loopback', 'two daemons on loopback addresses only: no namespaces, VIP or replication (no root needed)')
  .option('--fast', 'shorter pauses (for tests)')
  .action(async (o: { farm?: boolean; fast?: boolean; loopback?: boolean }) => {
    const { runDemo } = await import('../demo/demo.ts');
    await runDemo({ farm: o.farm ?? false, fast: o.fast ?? false, loopback: o.loopback ?? false });
  });

registerOperatorVerbs(program, clientOptions);
registerSecretVerbs(program, clientOptions);
registerMirrorVerbs(program, clientOptions);

async function main(): Promise<void> {
  try {
    installAllNodes(program);
    await program.parseAsync(process.argv);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    // a child process error carries a numeric code: only commander's codes are strings starting so
    // vigil verify keeps exit 1 for "the copies differ": its usage errors exit 2 like its other errors
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) process.exit(process.argv[2] === 'verify' ? VERIFY_ERROR_EXIT : (err.exitCode ?? 2));
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    console.error(`vigil: ${err.message}`);
    process.exit(err instanceof CliError ? err.exitCode : 1);
  }
}

await main();
