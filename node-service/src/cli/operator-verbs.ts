import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../config/duration.ts';
import { MODULE_STATES, type ModuleState } from '../contract/states.ts';
import type { ModuleStatus } from '../daemon/module-runner.ts';
import { ApiClient, CliError, type ClientOptions } from './client.ts';

type Opts = { module: string } & ClientOptions;
type WithClientOptions = (cmd: Command) => Command;

/** POST a command to the module and print the daemon's answer (a refusal exits 1 with its reason). */
async function post(o: Opts, verb: string, body: object = {}): Promise<void> {
  const client = ApiClient.resolve(o);
  const r = await client.request<{ ok?: boolean; message?: string; error?: string; state?: string }>('POST', `/modules/${encodeURIComponent(o.module)}/${verb}`, body);
  if (r.status !== 200) throw new CliError(`${o.module}: ${r.body.message ?? r.body.error ?? `HTTP ${r.status}`}`);
  console.log(`${o.module}: ${r.body.message} (state ${r.body.state})`);
}

const FARM_STATES: readonly ModuleState[] = ['STOP', 'WAIT', 'UP'];
const MIRROR_STATES: readonly ModuleState[] = ['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND'];

/** waitstate: polls the module's state until it is `want`; exit 1 at the timeout with the state it is in. */
async function waitState(o: Opts & { timeout?: string }, stateArg: string): Promise<void> {
  const want = stateArg.toUpperCase() as ModuleState;
  if (!(MODULE_STATES as readonly string[]).includes(want)) throw new CliError(`unknown state "${stateArg}": give one of ${MODULE_STATES.join(', ')}`);
  let timeoutMs = Infinity;
  if (o.timeout !== undefined) {
    const ms = parseDuration(o.timeout);
    if (ms === undefined || ms <= 0) throw new CliError(`--timeout ${o.timeout}: give a duration such as 30s, 5m or 500ms`);
    timeoutMs = ms;
  }
  const client = ApiClient.resolve(o);
  const path = `/modules/${encodeURIComponent(o.module)}`;
  const get = async () => {
    const r = await client.request<ModuleStatus | { error: string }>('GET', path);
    if (r.status !== 200) throw new CliError((r.body as { error: string }).error);
    return r.body as ModuleStatus;
  };
  // The first answer must come: a daemon that is not running is an error now, not a long wait.
  let s = await get();
  const possible = s.mode === 'farm' ? FARM_STATES : MIRROR_STATES;
  if (!possible.includes(want)) throw new CliError(`a ${s.mode} module is never ${want}: give one of ${possible.join(', ')}`);
  const started = Date.now();
  for (;;) {
    if (s.state === want && s.target === want) {
      console.log(`${o.module}: ${want} on ${s.node} (after ${formatDuration(Date.now() - started)})`);
      return;
    }
    if (Date.now() - started >= timeoutMs) {
      throw new CliError(`${o.module}: still ${s.state === s.target ? s.state : `${s.state}->${s.target}`} on ${s.node} after ${formatDuration(timeoutMs)} (waiting for ${want}; ${s.reason || 'no reason logged'}): see vigil log -m ${o.module}`);
    }
    await new Promise((r) => setTimeout(r, 100));
    // A daemon that restarts meanwhile is waited for, within the timeout.
    s = await get().catch((e: Error) => (e instanceof CliError && /cannot reach/.test(e.message) ? s : Promise.reject(e)));
  }
}

/**
 * The operator verbs SafeKit users script around: failover on|off, waitstate, forcestop, stopstart.
 * `withClientOptions` adds --config/--node/--api/--token-file (and so --all-nodes).
 */
export function registerOperatorVerbs(program: Command, withClientOptions: WithClientOptions): void {
  withClientOptions(
    program
      .command('failover')
      .description('allow (on) or forbid (off) automatic failover of a mirror module on this node: with off, a lost peer leaves this node WAITing for an operator (vigil prim). Kept across restarts; use --all-nodes for both nodes')
      .argument('<on|off>', 'on or off')
      .requiredOption('-m, --module <name>', 'module name'),
  ).action(async (onOff: string, o: Opts) => {
    if (onOff !== 'on' && onOff !== 'off') throw new CliError(`failover ${onOff}: give on or off`);
    await post(o, 'failover', { on: onOff === 'on' });
  });

  withClientOptions(
    program
      .command('waitstate')
      .description('wait until the module reaches STATE on this node (exit 0), or until --timeout (exit 1, printing the state it is in)')
      .argument('<STATE>', MODULE_STATES.join(' | '))
      .requiredOption('-m, --module <name>', 'module name')
      .option('--timeout <duration>', 'give up after this long, e.g. 30s or 5m (default: wait as long as it takes)'),
  ).action(async (state: string, o: Opts & { timeout?: string }) => waitState(o, state));

  withClientOptions(
    program
      .command('forcestop')
      .description('stop the module on this node at once, without waiting for scripts: a running script is killed, no stop script runs, the virtual IP and replication are stopped. The application is left to you')
      .requiredOption('-m, --module <name>', 'module name'),
  ).action(async (o: Opts) => post(o, 'forcestop'));

  withClientOptions(
    program
      .command('stopstart')
      .description('stop the module on this node (stop scripts run), then start it again; a primary with an in-sync secondary lets the secondary take over')
      .requiredOption('-m, --module <name>', 'module name'),
  ).action(async (o: Opts) => post(o, 'stopstart'));
}
