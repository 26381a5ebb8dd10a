import { spawn } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts';
import { loadConfig } from '../config/load.ts';
import { CliError } from './client.ts';

const VIGIL_BIN = resolve(import.meta.dirname, '../../../bin/vigil.mjs');

/** The API address of every node that runs `module` (every node without one), from the config; `who` needs them (for the error). */
export function nodeApis(configFile: string, module?: string, who = '--all-nodes'): { node: string; api: string }[] {
  let config;
  try {
    config = loadConfig(configFile, { skipFileChecks: true });
  } catch (e) {
    throw new CliError(`${who} needs the cluster config to find the nodes: ${(e as Error).message.split('\n')[0]}`);
  }
  let nodes = config.nodes;
  if (module !== undefined) {
    const m = config.modules.find((x) => x.name === module);
    if (!m) throw new CliError(`unknown module "${module}" in ${config.file} (modules: ${config.modules.map((x) => x.name).join(', ') || 'none'})`);
    nodes = nodes.filter((n) => m.nodes.includes(n.name));
  }
  return nodes.map((n) => {
    const host = n.addrs[0];
    return { node: n.name, api: `${config.api.tls ? 'https' : 'http'}://${isIPv6(host) ? `[${host}]` : host}:${config.api.port}` };
  });
}

interface NodeRun {
  readonly node: string;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runOn(args: readonly string[], api: string): Promise<Omit<NodeRun, 'node'>> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [VIGIL_BIN, ...args, '--api', api], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', (e) => done({ code: 1, stdout, stderr: `${stderr}${e.message}\n` }));
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

/** argv without --all-nodes (and without --node/--api, which name one node) */
function perNodeArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--all-nodes') continue;
    if (a === '--node' || a === '--api') {
      i++;
      continue;
    }
    if (a.startsWith('--node=') || a.startsWith('--api=')) continue;
    out.push(a);
  }
  return out;
}

/**
 * `--all-nodes` on every client verb (every command with --api): the verb runs once per node of the
 * cluster, in parallel, as the same `vigil` command aimed at that node's API, and the answers are
 * reported per node. So a verb added later gets it without code of its own. Exit 1 when any node failed.
 */
export function installAllNodes(program: Command): void {
  const visit = (cmd: Command) => {
    if (cmd.options.some((o) => o.long === '--api') && !cmd.options.some((o) => o.long === '--all-nodes')) {
      cmd.option('--all-nodes', 'run on every node of the cluster (from --config) and report per node');
    }
    cmd.commands.forEach(visit);
  };
  visit(program);
  program.hook('preAction', async (_root, action) => {
    const o = action.opts() as { allNodes?: boolean; api?: string; config?: string; module?: string; json?: boolean };
    if (!o.allNodes) return;
    if (o.api) throw new CliError('--all-nodes and --api exclude each other: --all-nodes already talks to every node');
    const targets = nodeApis(o.config ?? DEFAULT_CONFIG_FILE, o.module);
    const args = perNodeArgs(process.argv.slice(2));
    const runs: NodeRun[] = await Promise.all(targets.map(async (t) => ({ node: t.node, ...(await runOn(args, t.api)) })));
    for (const r of runs) {
      // JSON lines already name their node; anything else is prefixed with it
      for (const line of r.stdout.split('\n').filter(Boolean)) console.log(o.json ? line : `${r.node}: ${line}`);
      for (const line of r.stderr.split('\n').filter(Boolean)) console.error(`${r.node}: ${line.replace(/^vigil: /, '')}`);
    }
    const failed = runs.filter((r) => r.code !== 0);
    if (failed.length > 0) {
      console.error(`vigil: failed on ${failed.map((r) => r.node).join(', ')} (${failed.length} of ${runs.length} nodes)`);
      process.exit(1);
    }
    process.exit(0);
  });
}
