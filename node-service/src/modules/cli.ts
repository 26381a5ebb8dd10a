import type { Command } from 'commander';
import { listTemplates } from './catalog.ts';
import { newModule } from './instantiate.ts';
import { withModule, writeConfig } from './add-to-config.ts';

const DEFAULT_PARENT = '/etc/vigil/modules';

function collectSet(v: string, acc: Record<string, string>): Record<string, string> {
  const i = v.indexOf('=');
  if (i < 1) throw new Error(`--set ${v}: write NAME=VALUE`);
  return { ...acc, [v.slice(0, i)]: v.slice(i + 1) };
}

/** `vigil module templates` and `vigil module new` (contract: module templates | module new --template NAME [--dir D] [--force]). */
export function registerModuleCommands(program: Command): void {
  const mod = program.command('module').description('application modules made from templates (PostgreSQL, MariaDB, Firebird, podman, nginx, Apache, generic)');
  mod
    .command('templates')
    .description('list the templates, with their mode and parameters')
    .option('--json', 'one JSON object per template and line')
    .action((o: { json?: boolean }) => {
      const all = listTemplates();
      if (o.json) {
        for (const t of all) console.log(JSON.stringify({ name: t.name, mode: t.mode, description: t.description, params: t.params }));
        return;
      }
      const w = Math.max(...all.map((t) => t.name.length));
      for (const t of all) console.log(`${t.name.padEnd(w)}  ${t.mode.padEnd(6)}  ${t.description}`);
      console.log(`\nvigil module new --template NAME [--dir D] [--set PARAM=VALUE ...]; parameters: vigil module templates --json`);
    });
  mod
    .command('new')
    .description('write a module (module.yaml entry for cluster.yaml, scripts, checker, README) from a template')
    .requiredOption('--template <name>', 'template name (vigil module templates)')
    .option('--dir <dir>', `the module's folder (default ${DEFAULT_PARENT}/<module name>)`)
    .option('--force', 'overwrite the files of an existing module folder')
    .option('--set <param=value>', 'a template parameter (repeat: --set VIP=198.18.0.100/24 --set MODULE=db)', collectSet, {})
    .option('--config <file>', 'also add the module to this cluster.yaml (validated; refused if its name or id is taken)')
    .action((o: { template: string; dir?: string; force?: boolean; set: Record<string, string>; config?: string }) => {
      const name = o.set.MODULE ?? o.template;
      const dir = o.dir ?? `${DEFAULT_PARENT}/${name}`;
      // Dry run first (nothing written) so a bad --set or a clash in cluster.yaml leaves no files behind.
      const probe = newModuleDry(o.template, dir, o.set);
      const merged = o.config ? withModule(o.config, probe, { skipFileChecks: true }) : undefined;
      const m = newModule({ template: o.template, dir, force: o.force, set: o.set });
      if (o.config && merged) writeConfig(o.config, merged);
      console.log(`# module "${m.values.MODULE ?? name}" (template ${m.template.name}, ${m.template.mode}) written to ${m.dir}: ${m.files.join(', ')}`);
      console.log(o.config ? `# added to ${o.config}; check it with: vigil config check --config ${o.config}` : `# add this entry under "modules:" in cluster.yaml (or rerun with --config FILE), then read ${m.dir}/README.md`);
      process.stdout.write(m.snippet);
    });
}

/** The module.yaml text a template would produce, validated, without writing anything. */
function newModuleDry(template: string, dir: string, set: Record<string, string>): string {
  return newModule({ template, dir, set, dryRun: true }).snippet;
}
