import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.ts';
import { toYaml } from '../config/emit.ts';
import { validateConfig } from '../config/load.ts';
import type { RawCluster } from '../config/schema.ts';
import { CliError } from './client.ts';

/** What `vigil init` is asked for (from its flags or its questions). */
export interface InitAnswers {
  readonly cluster: string;
  readonly nodes: readonly InitNode[];
  readonly module: string;
  readonly mode: 'mirror' | 'farm';
  /** "198.18.0.100/24" with the interface that carries it */
  readonly vip?: { readonly addr: string; readonly interface: string };
  /** mirror only: directories replicated synchronously to the secondary */
  readonly replicate: readonly string[];
  /** where cluster.yaml, the key, the tokens and the scripts go @default /etc/vigil */
  readonly dir: string;
  /** @default /var/lib/vigil */
  readonly stateDir: string;
}

export interface InitNode {
  readonly name: string;
  readonly addr: string;
}

/** One file `vigil init` writes. */
export interface PlannedFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
  /** what it is, for the summary */
  readonly what: string;
  /** an operator's own file once written (the scripts): kept even with --force */
  readonly keep?: boolean;
}

export interface InitPlan {
  readonly configFile: string;
  readonly scriptsDir: string;
  readonly files: readonly PlannedFile[];
}

export const DEFAULT_INIT_DIR = '/etc/vigil';

/** "n1=198.18.0.1" → { name, addr }; the error names the flag and what to write instead. */
export function parseNodeSpec(spec: string): InitNode {
  const i = spec.indexOf('=');
  if (i <= 0) throw new CliError(`--node ${spec}: write NAME=ADDRESS, e.g. --node n1=198.18.0.1`);
  const name = spec.slice(0, i).trim();
  const addr = spec.slice(i + 1).trim();
  if (isIP(addr) === 0) throw new CliError(`--node ${spec}: "${addr}" is not an IPv4 or IPv6 address`);
  return { name, addr };
}

// The application's hooks, as an operator would start them: commented, doing nothing until edited.
function scriptTemplate(name: string, module: string, what: string): string {
  return `#!/bin/sh
# ${name} for module "${module}": ${what}.
# Arguments: state next_state action; environment: VIGIL_MODULE VIGIL_NODE VIGIL_STATE VIGIL_NEXT_STATE VIGIL_ACTION.
# Exit 0 on success. A daemon started here must redirect its output, e.g.:
#   systemctl start myapp
#   /usr/sbin/myapp >>/var/log/myapp.log 2>&1 &
exit 0
`;
}

const SCRIPTS: Record<InitAnswers['mode'], Record<string, string>> = {
  mirror: { start_prim: 'start the application on the primary (after the VIP is added)', stop_prim: 'stop the application when this node stops being primary' },
  farm: { start_both: 'start the application on every node of the farm', stop_both: 'stop the application on this node' },
};

/**
 * The files of a new cluster: cluster.yaml (validated by the daemon's own schema before anything is
 * written), a random cluster secret, a random admin token and the module's script hooks.
 */
export function planInit(a: InitAnswers): InitPlan {
  const dir = resolve(a.dir);
  const configFile = join(dir, 'cluster.yaml');
  const secretFile = join(dir, 'cluster.key');
  const tokenFile = join(dir, 'admin.token');
  const monitorFile = join(dir, 'monitor.token');
  const scriptsDir = join(dir, 'scripts', a.module);
  if (a.mode === 'farm' && a.replicate.length > 0) throw new CliError('--replicate: only a mirror module replicates directories (use --mode mirror, or leave --replicate out)');
  const raw: RawCluster = {
    cluster: a.cluster,
    secret_file: secretFile,
    state_dir: a.stateDir,
    // admin: every verb and the configuration; monitor: read-only (states, logs), for dashboards and on-call
    api: { port: 9010, admin_token_file: tokenFile, tokens: [{ role: 'monitor', file: monitorFile }] },
    nodes: a.nodes.map((n) => ({ name: n.name, addrs: [n.addr] })),
    modules: [
      {
        name: a.module,
        mode: a.mode,
        id: 1,
        heartbeat: { pulse: '100ms', timeout: '1s' },
        ...(a.mode === 'mirror' ? { default_primary: a.nodes[0]?.name } : {}),
        ...(a.vip ? { vip: [{ addr: a.vip.addr, interface: a.vip.interface }] } : {}),
        ...(a.replicate.length > 0 ? { replication: { dirs: [...a.replicate] } } : {}),
        scripts_dir: scriptsDir,
      },
    ],
  };
  try {
    validateConfig(raw, configFile, { skipFileChecks: true });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new CliError(`the answers make an invalid configuration, nothing was written:\n${e.issues.map((i) => `  ${i.path || 'config'}: ${i.message}`).join('\n')}`);
  }
  const header = `# Vigil cluster "${a.cluster}", written by vigil init on ${new Date().toISOString().slice(0, 10)}.\n# The same file (with cluster.key and the tokens) on every node. Check it with: vigil config check --config ${configFile}\n`;
  const secret = (n: number) => `${randomBytes(n).toString('base64url')}\n`;
  return {
    configFile,
    scriptsDir,
    files: [
      { path: configFile, content: header + toYaml(raw), mode: 0o644, what: 'the cluster, the same file on every node' },
      { path: secretFile, content: secret(32), mode: 0o600, what: 'the cluster secret: authenticates heartbeats and replication' },
      { path: tokenFile, content: secret(32), mode: 0o600, what: 'the admin API token (vigil state, prim, swap ...)' },
      { path: monitorFile, content: secret(32), mode: 0o600, what: 'a read-only API token (states and logs: dashboards, on-call)' },
      ...Object.entries(SCRIPTS[a.mode]).map(([name, what]) => ({ path: join(scriptsDir, name), content: scriptTemplate(name, a.module, what), mode: 0o755, what, keep: true })),
    ],
  };
}

/** What to do next, printed after the files are written. */
export function nextSteps(a: InitAnswers, plan: InitPlan): string {
  const others = a.nodes.slice(1);
  const scripts = plan.files.filter((f) => f.keep).map((f) => f.path.slice(plan.scriptsDir.length + 1));
  const steps = [
    `Put your application's start and stop commands in ${plan.scriptsDir}/ (${scripts.join(', ')}).`,
    `Copy ${a.dir} with its modes to the other node${others.length > 1 ? 's' : ''}:\n${others.map((n) => `       rsync -a ${a.dir}/ root@${n.addr}:${a.dir}/`).join('\n')}`,
    ...(a.replicate.length > 0 ? [`Create ${a.replicate.join(', ')} on every node (the node with the good data becomes primary first).`] : []),
    a.dir === DEFAULT_INIT_DIR
      ? 'On every node: vigil config check && systemctl enable --now vigil'
      : `On every node: vigil config check --config ${plan.configFile}, then run vigil daemon --config ${plan.configFile} (the packaged service reads ${DEFAULT_INIT_DIR}/cluster.yaml)`,
    a.mode === 'mirror'
      ? `vigil state${a.dir === '/etc/vigil' ? '' : ` --config ${plan.configFile}`}: once both nodes see each other, ${a.nodes[0].name} becomes PRIM and ${a.nodes[1]?.name ?? 'the other'} SECOND.`
      : `vigil state${a.dir === '/etc/vigil' ? '' : ` --config ${plan.configFile}`}: every node of the farm becomes UP.`,
  ];
  return `Next steps:\n${steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}`;
}
