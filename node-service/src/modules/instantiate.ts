import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../config/config-error.ts';
import { validateConfig } from '../config/load.ts';
import { moduleSchema } from '../config/schema.ts';
import { loadTemplate, type Template } from './catalog.ts';

/** Parameters every template gets without being asked: where the module is written. */
const IMPLICIT = ['DIR'] as const;

/** Characters a parameter value may not hold: they would break the shell quoting of params.env or the YAML. */
const UNSAFE = /['"`$\\\n\r]/;

export interface NewModuleOptions {
  readonly template: string;
  /** the module's folder (scripts, README, module.yaml) */
  readonly dir: string;
  readonly force?: boolean;
  /** NAME=VALUE overrides of the template's parameters */
  readonly set?: Readonly<Record<string, string>>;
  /** compute and validate only: no file is written */
  readonly dryRun?: boolean;
  /** templates root (tests) */
  readonly root?: string;
}

export interface NewModule {
  readonly template: Template;
  readonly dir: string;
  /** the module entry for cluster.yaml (YAML text, also written to dir/module.yaml) */
  readonly snippet: string;
  /** the validated module entry */
  readonly module: Record<string, unknown>;
  readonly values: Readonly<Record<string, string>>;
  readonly files: readonly string[];
}

/** Replaces {{NAME}}; an unknown name is a template bug and fails loudly. */
export function substitute(text: string, values: Readonly<Record<string, string>>, where: string): string {
  return text.replace(/\{\{([A-Z][A-Z0-9_]*)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`${where}: {{${k}}} is not a parameter of the template`);
    return values[k];
  });
}

/** The parameter values: defaults in declaration order (a default may use earlier values), then --set. */
export function resolveParams(t: Template, dir: string, set: Readonly<Record<string, string>> = {}): Record<string, string> {
  const problems: string[] = [];
  for (const k of Object.keys(set)) {
    if (!(k in t.params)) problems.push(`${k} is not a parameter of template ${t.name} (parameters: ${Object.keys(t.params).join(', ')})`);
    else if (UNSAFE.test(set[k])) problems.push(`${k}: the value may not contain quotes, "$", "\\" or line breaks`);
  }
  const values: Record<string, string> = { DIR: dir };
  for (const [k, p] of Object.entries(t.params)) {
    if (k in set) values[k] = set[k];
    else if (p.default !== undefined) values[k] = substitute(p.default, values, `template ${t.name}: default of ${k}`);
    else problems.push(`${k} is required: give --set ${k}=… (${p.help})`);
  }
  if (problems.length) throw new Error(problems.join('\n'));
  return values;
}

function paramsEnv(t: Template, values: Readonly<Record<string, string>>): string {
  const lines = [
    `# Parameters of this module (template ${t.name}), read by every script and the checker.`,
    '# Change them here; scripts pick them up at their next run. Values are shell words in single quotes.',
  ];
  for (const k of [...IMPLICIT, ...Object.keys(t.params)]) {
    const help = k === 'DIR' ? 'the folder of this module' : t.params[k].help;
    lines.push('', `# ${help}`, `${k}='${values[k]}'`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes a module from a template: dir/module.yaml (the cluster.yaml entry), dir/README.md,
 * dir/scripts/* and dir/scripts/params.env. Everything is computed and validated before the first
 * file is written, so a bad parameter leaves nothing behind; an existing module is kept unless `force`.
 */
export function newModule(o: NewModuleOptions): NewModule {
  const t = loadTemplate(o.template, o.root);
  const dir = resolve(o.dir);
  const values = resolveParams(t, dir, o.set);
  const snippet = substitute(readFileSync(join(t.dir, 'module.yaml'), 'utf8'), values, `template ${t.name}: module.yaml`);
  const raw: unknown = parse(snippet);
  const checked = moduleSchema.safeParse(raw);
  if (!checked.success) {
    throw new Error(checked.error.issues.map((i) => `module.yaml: ${i.path.join('.') || '(entry)'}: ${i.message} (check the --set values)`).join('\n'));
  }
  checkInCluster(raw);
  const files = new Map<string, { text: string; exec: boolean }>();
  files.set('module.yaml', { text: snippet, exec: false });
  files.set('README.md', { text: substitute(readFileSync(join(t.dir, 'README.md'), 'utf8'), values, `template ${t.name}: README.md`), exec: false });
  for (const s of t.scripts) files.set(join('scripts', s), { text: readFileSync(join(t.dir, 'scripts', s), 'utf8'), exec: true });
  files.set(join('scripts', 'params.env'), { text: paramsEnv(t, values), exec: false });
  if (!o.force && existsSync(dir)) {
    const present = [...files.keys()].filter((f) => existsSync(join(dir, f)));
    const others = readdirSync(dir);
    if (present.length > 0 || others.length > 0) {
      throw new Error(`${dir} is not empty (${(present.length ? present : others).slice(0, 4).join(', ')}${(present.length || others.length) > 4 ? ', …' : ''}): give --force to overwrite the template's files, or another --dir`);
    }
  }
  const result = { template: t, dir, snippet, module: checked.data as Record<string, unknown>, values, files: [...files.keys()] };
  if (o.dryRun) return result;
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  for (const [f, { text, exec }] of files) {
    writeFileSync(join(dir, f), text, { mode: exec ? 0o755 : 0o644 });
    chmodSync(join(dir, f), exec ? 0o755 : 0o644);
  }
  return result;
}

/**
 * The module's cross-checks (checker timeout within its interval, heartbeat, VIP, nested dirs) are the
 * cluster loader's: run them on a two-node cluster holding only this module.
 */
function checkInCluster(entry: unknown): void {
  const nodes = ['192.0.2.1', '192.0.2.2', '192.0.2.3']
    .filter((a) => !JSON.stringify(entry).includes(`"${a}/`))
    .slice(0, 2)
    .map((a, i) => ({ name: `node${i + 1}`, addrs: [a] }));
  try {
    validateConfig({ cluster: 'template', secret_file: '/etc/vigil/cluster.key', api: { admin_token_file: '/etc/vigil/admin.token' }, nodes, modules: [entry] }, 'module.yaml', { skipFileChecks: true });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const mine = e.issues.filter((i) => i.path.startsWith('modules[0]'));
    if (mine.length) throw new Error(mine.map((i) => `module.yaml: ${i.path.replace(/^modules\[0\]\.?/, '') || '(entry)'}: ${i.message}`).join('\n'));
  }
}
