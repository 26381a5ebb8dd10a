import type { Command } from 'commander';
import { CliError } from './client.ts';
import { DEFAULT_INIT_DIR, nextSteps, parseNodeSpec, planInit, type InitAnswers } from './init-plan.ts';
import { askMissing, type InitDraft } from './init-prompt.ts';
import { writeInit } from './init-write.ts';

interface InitFlags {
  cluster?: string;
  node?: string[];
  module?: string;
  mode?: string;
  vip?: string;
  interface?: string;
  replicate?: string[];
  dir: string;
  stateDir: string;
  force?: boolean;
}

/**
 * `vigil init`: flags for scripts, questions for whatever a flag did not give (on a terminal, or
 * when no flag was given at all, from stdin).
 */
export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('write a new cluster: DIR/cluster.yaml, a random secret and admin token (mode 600), the module\'s script hooks')
    .option('--cluster <name>', 'cluster name')
    .option('--node <name=addr...>', 'a node and its address (repeat: --node n1=198.18.0.1 --node n2=198.18.0.2); the first is the default primary')
    .option('--module <name>', 'module name (the application it protects)')
    .option('--mode <mode>', 'mirror (active/passive, replicated) or farm (active/active)')
    .option('--vip <addr/prefix>', 'virtual IP, e.g. 198.18.0.100/24 (needs --interface)')
    .option('--interface <if>', 'interface that carries the virtual IP')
    .option('--replicate <dir...>', 'mirror: directory replicated synchronously (repeat for more)')
    .option('--dir <dir>', 'where to write the files', DEFAULT_INIT_DIR)
    .option('--state-dir <dir>', 'state_dir of the nodes', '/var/lib/vigil')
    .option('--force', 'replace an existing cluster.yaml, key and token (existing scripts are kept)')
    .action(async (o: InitFlags) => {
      const draft: InitDraft = {
        cluster: o.cluster,
        nodes: (o.node ?? []).map(parseNodeSpec),
        module: o.module,
        mode: o.mode === undefined ? undefined : parseMode(o.mode),
        vip: o.vip,
        iface: o.interface,
        replicate: o.replicate,
      };
      const missing = [
        draft.cluster === undefined && '--cluster',
        draft.nodes.length === 0 && '--node',
        draft.module === undefined && '--module',
        draft.mode === undefined && '--mode',
        draft.vip !== undefined && draft.iface === undefined && '--interface (for --vip)',
      ].filter((x): x is string => x !== false);
      const noFlags = [o.cluster, o.node, o.module, o.mode].every((x) => x === undefined);
      if (missing.length > 0 && !process.stdin.isTTY && !noFlags) {
        throw new CliError(`missing ${missing.join(', ')}: give every one of --cluster, --node (twice or more), --module, --mode, or none to be asked`);
      }
      const d = missing.length > 0 ? await askMissing(draft) : draft;
      if (d.iface !== undefined && d.vip === undefined) throw new CliError('--interface: give --vip ADDR/PREFIX too, or leave --interface out');
      const answers: InitAnswers = {
        cluster: d.cluster!,
        nodes: d.nodes,
        module: d.module!,
        mode: d.mode!,
        vip: d.vip === undefined ? undefined : { addr: d.vip, interface: d.iface! },
        replicate: d.replicate ?? [],
        dir: o.dir,
        stateDir: o.stateDir,
      };
      const plan = planInit(answers);
      const r = writeInit(plan, o.force ?? false);
      const line = (f: { path: string; mode: number; what: string }) => `  ${f.path.padEnd(Math.max(...plan.files.map((x) => x.path.length)))}  ${f.mode.toString(8)}  ${f.what}`;
      console.log(`vigil init: wrote\n${r.written.map(line).join('\n')}`);
      if (r.kept.length > 0) console.log(`kept (yours already):\n${r.kept.map(line).join('\n')}`);
      console.log(`\n${nextSteps(answers, plan)}`);
    });
}

function parseMode(m: string): 'mirror' | 'farm' {
  if (m !== 'mirror' && m !== 'farm') throw new CliError(`--mode ${m}: use mirror or farm`);
  return m;
}
