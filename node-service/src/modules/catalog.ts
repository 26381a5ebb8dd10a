import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

/** Where the templates ship: node-service/templates/<name>/ (next to the sources, no build step). */
export const TEMPLATES_DIR = resolve(import.meta.dirname, '../../templates');

const paramSchema = z
  .object({
    help: z.string().min(1),
    /** may name other parameters declared before it: "/srv/{{MODULE}}" */
    default: z.string().optional(),
  })
  .strict();

/** template.json: what the template is, and the parameters its files use as {{NAME}}. */
const specSchema = z
  .object({
    description: z.string().min(1),
    mode: z.enum(['mirror', 'farm']),
    /** in order: a default may use the parameters above it */
    params: z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/), paramSchema),
  })
  .strict();

export type TemplateParam = z.output<typeof paramSchema>;

export interface Template extends z.output<typeof specSchema> {
  readonly name: string;
  readonly dir: string;
  /** executables copied into the module's scripts/ folder */
  readonly scripts: readonly string[];
}

/** Every template, by name. A template folder with a broken template.json is an error, not skipped. */
export function listTemplates(root = TEMPLATES_DIR): Template[] {
  return readdirSync(root)
    .filter((n) => statSync(join(root, n)).isDirectory())
    .sort()
    .map((n) => loadTemplate(n, root));
}

export function loadTemplate(name: string, root = TEMPLATES_DIR): Template {
  const dir = join(root, name);
  let text: string;
  try {
    text = readFileSync(join(dir, 'template.json'), 'utf8');
  } catch {
    const known = readdirSync(root).filter((n) => statSync(join(root, n)).isDirectory()).sort();
    throw new Error(`no template "${name}" (templates: ${known.join(', ')}; see vigil module templates)`);
  }
  const parsed = specSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`template ${name}: template.json: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const scriptsDir = join(dir, 'scripts');
  const scripts = readdirSync(scriptsDir).sort();
  return { ...parsed.data, name, dir, scripts };
}
