import { chmodSync, readFileSync, statSync } from 'node:fs';
import { isMap, isSeq, parse, parseDocument } from 'yaml';
import { parseConfigText } from '../config/load.ts';
import { writeFileAtomic } from '../persist/atomic-file.ts';

/**
 * The cluster.yaml text with one more module appended to `modules:` (comments and layout of the
 * rest kept), validated as a whole. Refused when the name or id is taken. Nothing is written here.
 */
export function withModule(file: string, snippet: string, opts: { skipFileChecks?: boolean } = {}): string {
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`${file}: YAML syntax: ${doc.errors[0].message.split('\n')[0]}`);
  const entry = parse(snippet) as { name: string; id: number };
  const mods = doc.get('modules');
  if (mods !== undefined && mods !== null && !isSeq(mods)) throw new Error(`${file}: modules: must be a list`);
  for (const m of isSeq(mods) ? mods.items : []) {
    if (!isMap(m)) continue;
    if (m.get('name') === entry.name) throw new Error(`${file}: a module "${entry.name}" exists already: give the new one another --set MODULE=…`);
    if (m.get('id') === entry.id) throw new Error(`${file}: module "${String(m.get('name'))}" has id ${entry.id} already (ports are derived from it): give --set MODULE_ID=…`);
  }
  if (isSeq(mods)) mods.add(doc.createNode(entry));
  else doc.set('modules', doc.createNode([entry]));
  const out = doc.toString({ lineWidth: 0 });
  parseConfigText(out, file, opts);
  return out;
}

/** Replaces the file atomically, keeping its permissions. */
export function writeConfig(file: string, text: string): void {
  const mode = statSync(file).mode & 0o7777;
  writeFileAtomic(file, text);
  chmodSync(file, mode);
}
