/**
 * Offline checks of generated templates against each cloud's own published definitions:
 *   CloudFormation: the resource specification in @aws-cdk/aws-service-spec (types, property names,
 *                   required properties, value types, GetAtt attributes, Ref/GetAtt targets)
 *   ARM:            Microsoft's ARM JSON schemas for the apiVersion of each resource, checked
 *                   strictly (every object with declared properties is closed; "[...]" expressions
 *                   accepted wherever a value goes)
 *   Terraform:      the google provider's documented arguments per resource type, and every
 *                   reference (resource, var, local, module, data) resolving to a declaration
 * The ARM schemas and the provider's argument lists are read from ../shared/cloud-schemas beside the
 * clone; without them these checks fail loudly and say how to get the data.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';
import { REPO_ROOT } from '../../infra/common/package-tarball.ts';

export const SCHEMA_DIR = resolve(REPO_ROOT, '..', 'shared', 'cloud-schemas');

export function requireSchemaData(): void {
  if (!existsSync(join(SCHEMA_DIR, 'arm-schemas', 'schemas')) || !existsSync(join(SCHEMA_DIR, 'tf-google-args.json'))) {
    throw new Error(
      `cloud schema data not found in ${SCHEMA_DIR}: put Microsoft's ARM schemas (github.com/Azure/azure-resource-manager-schemas, ` +
        'schemas/<apiVersion>/<provider>.json) in arm-schemas/schemas/ and the google provider argument list in tf-google-args.json ' +
        '(README.md "What is verified", section "Cloud schema data", says how to build it)',
    );
  }
}

// ---------------------------------------------------------------- CloudFormation ----------

type SpecType = { type: string; element?: SpecType; reference?: { $ref: string }; types?: SpecType[] };
type SpecProp = { type: SpecType; required?: boolean; previousTypes?: SpecType[] };

const PSEUDO = new Set(['AWS::AccountId', 'AWS::Region', 'AWS::StackName', 'AWS::StackId', 'AWS::Partition', 'AWS::URLSuffix', 'AWS::NoValue', 'AWS::NotificationARNs']);

export function checkCloudFormation(template: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>; Parameters?: Record<string, unknown>; Conditions?: Record<string, unknown> }): { checked: number; errors: string[] } {
  const db = loadAwsServiceSpecSync();
  const errors: string[] = [];
  let checked = 0;
  const resources = template.Resources;
  const params = new Set(Object.keys(template.Parameters ?? {}));
  const specOf = new Map<string, any>();
  for (const r of Object.values(resources)) {
    if (specOf.has(r.Type)) continue;
    const found = db.lookup('resource', 'cloudFormationType', 'equals', r.Type);
    specOf.set(r.Type, found.length === 1 ? found[0] : undefined);
  }

  const intrinsic = (v: unknown, at: string): boolean => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
    const keys = Object.keys(v);
    if (keys.length !== 1 || !(keys[0] === 'Ref' || keys[0].startsWith('Fn::') || keys[0] === 'Condition')) return false;
    const [k] = keys;
    const arg = (v as Record<string, unknown>)[k];
    if (k === 'Ref' && typeof arg === 'string' && !resources[arg] && !params.has(arg) && !PSEUDO.has(arg)) errors.push(`${at}: Ref ${arg} is not declared`);
    if (k === 'Fn::GetAtt') {
      const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split(/\.(.*)/);
      const target = resources[id];
      if (!target) errors.push(`${at}: Fn::GetAtt ${id} is not declared`);
      else {
        const spec = specOf.get(target.Type);
        if (spec && typeof attr === 'string' && !(attr in (spec.attributes ?? {})) && !(attr in (spec.properties ?? {}))) errors.push(`${at}: ${target.Type} has no attribute ${attr}`);
      }
    }
    // walk the arguments for nested references
    walkRefs(arg, at);
    return true;
  };
  const walkRefs = (v: unknown, at: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walkRefs(x, `${at}[${i}]`));
    else if (v && typeof v === 'object') {
      if (intrinsic(v, at)) return;
      for (const [k, x] of Object.entries(v)) walkRefs(x, `${at}.${k}`);
    }
  };

  const typeDef = (ref: string) => db.get('typeDefinition', ref) as unknown as { name: string; properties: Record<string, SpecProp> };

  const check = (t: SpecType, v: unknown, at: string): string | undefined => {
    if (intrinsic(v, at)) return undefined;
    switch (t.type) {
      case 'json':
        return undefined;
      case 'string':
      case 'date-time':
        return typeof v === 'string' ? undefined : `${at}: expected a string, got ${JSON.stringify(v)?.slice(0, 60)}`;
      case 'integer':
      case 'number':
        return typeof v === 'number' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) ? undefined : `${at}: expected a number, got ${JSON.stringify(v)}`;
      case 'boolean':
        return typeof v === 'boolean' || v === 'true' || v === 'false' ? undefined : `${at}: expected a boolean, got ${JSON.stringify(v)}`;
      case 'null':
        return v === null ? undefined : `${at}: expected null`;
      case 'tag':
        return v && typeof v === 'object' && 'Key' in v && 'Value' in v ? undefined : `${at}: expected a tag {Key, Value}`;
      case 'array': {
        if (!Array.isArray(v)) return `${at}: expected a list`;
        for (let i = 0; i < v.length; i++) {
          const e = check(t.element!, v[i], `${at}[${i}]`);
          if (e) return e;
        }
        return undefined;
      }
      case 'map': {
        if (!v || typeof v !== 'object' || Array.isArray(v)) return `${at}: expected a map`;
        for (const [k, x] of Object.entries(v)) {
          const e = check(t.element!, x, `${at}.${k}`);
          if (e) return e;
        }
        return undefined;
      }
      case 'ref': {
        if (!v || typeof v !== 'object' || Array.isArray(v)) return `${at}: expected an object`;
        return checkProps(typeDef(t.reference!.$ref).properties, v as Record<string, unknown>, at);
      }
      case 'union': {
        const errs = t.types!.map((x) => check(x, v, at));
        return errs.some((e) => e === undefined) ? undefined : errs[0];
      }
      default:
        return `${at}: unknown spec type ${t.type}`;
    }
  };

  const checkProps = (props: Record<string, SpecProp>, v: Record<string, unknown>, at: string): string | undefined => {
    for (const [k, x] of Object.entries(v)) {
      const p = props[k];
      if (!p) return `${at}: unknown property ${k} (known: ${Object.keys(props).join(', ')})`;
      const types = [p.type, ...(p.previousTypes ?? [])];
      const errs = types.map((t) => check(t, x, `${at}.${k}`));
      if (errs.every((e) => e !== undefined)) return errs[0];
    }
    for (const [k, p] of Object.entries(props)) if (p.required && !(k in v)) return `${at}: required property ${k} is missing`;
    return undefined;
  };

  for (const [id, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::CDK::Metadata' || r.Type.startsWith('Custom::')) continue;
    checked++;
    const spec = specOf.get(r.Type);
    if (!spec) {
      errors.push(`${id}: ${r.Type} is not a CloudFormation resource type`);
      continue;
    }
    const e = checkProps(spec.properties, r.Properties ?? {}, `${id} (${r.Type})`);
    if (e) errors.push(e);
  }
  return { checked, errors };
}

// ---------------------------------------------------------------- ARM ----------------------

type Json = any;
const armFiles = new Map<string, Json>();

function armFile(path: string): Json {
  if (!armFiles.has(path)) armFiles.set(path, JSON.parse(readFileSync(path, 'utf8')));
  return armFiles.get(path);
}

/** The schema of one resource type at one apiVersion, or why there is none. */
function armResourceSchema(type: string, apiVersion: string): { file: string; schema: Json } | { error: string } {
  const dir = join(SCHEMA_DIR, 'arm-schemas', 'schemas', apiVersion);
  const provider = type.split('/')[0];
  if (!existsSync(dir)) return { error: `no ARM schemas for apiVersion ${apiVersion} in ${dir}` };
  for (const f of readdirSync(dir).filter((x) => x.startsWith(`${provider}.`) || x === `${provider}.json`)) {
    const file = join(dir, f);
    const d = armFile(file);
    for (const group of ['resourceDefinitions', 'extension_resourceDefinitions', 'subscription_resourceDefinitions']) {
      for (const def of Object.values<Json>(d[group] ?? {})) {
        const t = def.properties?.type?.enum ?? [];
        if (t.some((x: string) => x.toLowerCase() === type.toLowerCase())) return { file, schema: def };
      }
    }
  }
  return { error: `${type} has no schema at apiVersion ${apiVersion}` };
}

const isExpr = (v: unknown) => typeof v === 'string' && v.startsWith('[') && !v.startsWith('[[');

function resolveRef(file: string, ref: string): { file: string; schema: Json } | 'expression' | undefined {
  if (ref.endsWith('common/definitions.json#/definitions/expression')) return 'expression';
  const [target, pointer] = ref.split('#');
  let f = file;
  if (target) {
    const m = /schemas\/(.+)$/.exec(target);
    if (!m) return undefined;
    f = join(SCHEMA_DIR, 'arm-schemas', 'schemas', m[1]);
    if (!existsSync(f)) return undefined;
  }
  let node = armFile(f);
  for (const part of pointer.split('/').filter(Boolean)) node = node?.[part];
  return node ? { file: f, schema: node } : undefined;
}

/** errors of `v` against `schema` (strict: an object with declared properties is closed) */
function armCheck(file: string, schema: Json, v: unknown, at: string, depth = 0): string[] {
  if (depth > 60) return [];
  if (isExpr(v)) return [];
  if (schema.$ref) {
    const r = resolveRef(file, schema.$ref);
    if (r === 'expression') return isExpr(v) ? [] : [`${at}: expected an ARM expression`];
    if (!r) return [];
    return armCheck(r.file, r.schema, v, at, depth + 1);
  }
  for (const key of ['oneOf', 'anyOf'] as const) {
    if (schema[key]) {
      const results = schema[key].map((s: Json) => armCheck(file, s, v, at, depth + 1));
      if (results.some((e: string[]) => e.length === 0)) return [];
      // the branch that got furthest explains best: the fewest errors
      return results.sort((a: string[], b: string[]) => a.length - b.length)[0];
    }
  }
  if (schema.allOf) return schema.allOf.flatMap((s: Json) => armCheck(file, s, v, at, depth + 1));
  const errors: string[] = [];
  if (schema.enum && !schema.enum.some((e: unknown) => (typeof e === 'string' && typeof v === 'string' ? e.toLowerCase() === v.toLowerCase() : e === v))) {
    return [`${at}: ${JSON.stringify(v)} is not one of ${JSON.stringify(schema.enum)}`];
  }
  const type = schema.type;
  if (type === 'string' && typeof v !== 'string') return [`${at}: expected a string`];
  if (type === 'integer' && !Number.isInteger(v)) return [`${at}: expected an integer`];
  if (type === 'number' && typeof v !== 'number') return [`${at}: expected a number`];
  if (type === 'boolean' && typeof v !== 'boolean') return [`${at}: expected a boolean`];
  if (type === 'array') {
    if (!Array.isArray(v)) return [`${at}: expected an array`];
    if (schema.items) v.forEach((x, i) => errors.push(...armCheck(file, schema.items, x, `${at}[${i}]`, depth + 1)));
    return errors;
  }
  if (schema.properties || type === 'object') {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return [`${at}: expected an object`];
    const props = schema.properties ?? {};
    for (const [k, x] of Object.entries(v)) {
      if (props[k]) errors.push(...armCheck(file, props[k], x, `${at}.${k}`, depth + 1));
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') errors.push(...armCheck(file, schema.additionalProperties, x, `${at}.${k}`, depth + 1));
      else if (schema.properties) errors.push(`${at}: unknown property "${k}" (known: ${Object.keys(props).join(', ')})`);
    }
    for (const r of schema.required ?? []) if (!(r in v)) errors.push(`${at}: required property "${r}" is missing`);
  }
  return errors;
}

/** template-level keys of a resource that the deployment template schema adds to every resource */
const ARM_RESOURCE_BASE = new Set(['dependsOn', 'condition', 'scope', 'copy', 'comments', 'metadata']);

export function checkArm(template: { resources: Record<string, unknown>[] }): { checked: number; errors: string[] } {
  const errors: string[] = [];
  let checked = 0;
  template.resources.forEach((r0, i) => {
    const r = r0 as Record<string, any>;
    const at = `resources[${i}] ${r.type} ${r.name}`;
    const found = armResourceSchema(r.type, r.apiVersion);
    checked++;
    if ('error' in found) {
      errors.push(`${at}: ${found.error}`);
      return;
    }
    const body = Object.fromEntries(Object.entries(r).filter(([k]) => !ARM_RESOURCE_BASE.has(k)));
    errors.push(...armCheck(found.file, found.schema, body, at));
  });
  return { checked, errors };
}

// ---------------------------------------------------------------- Terraform ----------------

const TF_META = new Set(['count', 'for_each', 'depends_on', 'provider', 'lifecycle', 'provisioner', 'connection']);
/** providers other than google whose resources the template uses, with their documented arguments */
const OTHER_PROVIDERS: Record<string, readonly string[]> = { random_password: ['length', 'special', 'upper', 'lower', 'numeric', 'min_lower', 'min_upper', 'min_numeric', 'min_special', 'override_special', 'keepers'] };

export function checkTerraform(tf: Record<string, any>): { checked: number; errors: string[] } {
  const data = JSON.parse(readFileSync(join(SCHEMA_DIR, 'tf-google-args.json'), 'utf8')) as { resources: Record<string, { args: string[]; beta_only?: boolean }> };
  const errors: string[] = [];
  let checked = 0;
  const declared = new Set<string>();
  for (const [type, byName] of Object.entries<Record<string, unknown>>(tf.resource ?? {})) for (const name of Object.keys(byName)) declared.add(`${type}.${name}`);
  const vars = new Set(Object.keys(tf.variable ?? {}));
  const locals = new Set(Object.keys(tf.locals ?? {}));
  const modules = new Set(Object.keys(tf.module ?? {}));
  const dataSources = new Set<string>();
  for (const [type, byName] of Object.entries<Record<string, unknown>>(tf.data ?? {})) for (const name of Object.keys(byName)) dataSources.add(`${type}.${name}`);

  for (const [type, byName] of Object.entries<Record<string, Record<string, unknown>>>(tf.resource ?? {})) {
    for (const [name, body] of Object.entries(byName)) {
      checked++;
      const at = `${type}.${name}`;
      const known = type.startsWith('google_') ? data.resources[type] : OTHER_PROVIDERS[type] ? { args: OTHER_PROVIDERS[type] } : undefined;
      if (!known) {
        errors.push(`${at}: ${type} is not a resource type of the google provider`);
        continue;
      }
      if ((known as { beta_only?: boolean }).beta_only) errors.push(`${at}: ${type} exists only in google-beta`);
      for (const k of Object.keys(body)) if (!TF_META.has(k) && !known.args.includes(k)) errors.push(`${at}: unknown argument "${k}"`);
      for (const d of (body.depends_on as string[] | undefined) ?? []) if (!declared.has(d)) errors.push(`${at}: depends_on ${d} is not declared`);
    }
  }

  // every reference in an interpolation resolves to a declaration
  const refsIn = (expr: string): string[] => {
    const out: string[] = [];
    const stripped = expr.replace(/"(?:[^"\\]|\\.)*"/g, (s) => (s.includes('${') ? s : '""'));
    for (const m of stripped.matchAll(/(?<![\w.])((?:var|local|module|data|path)\.[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)?|[a-z][a-z0-9]*_[a-z0-9_]+\.[A-Za-z_][\w-]*)/g)) out.push(m[1]);
    return out;
  };
  const interpolations = (s: string): string[] => {
    const out: string[] = [];
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '$' && s[i + 1] === '$') {
        i++;
        continue;
      }
      if (s[i] === '$' && s[i + 1] === '{') {
        let depth = 0;
        let j = i + 1;
        for (; j < s.length; j++) {
          if (s[j] === '{') depth++;
          else if (s[j] === '}' && --depth === 0) break;
        }
        out.push(s.slice(i + 2, j));
        i = j;
      }
    }
    return out;
  };
  const FUNCTIONS = /^(var|local|module|data|path)$/;
  const walk = (v: unknown, at: string, inVariable: boolean): void => {
    if (typeof v === 'string') {
      for (const expr of interpolations(v)) {
        if (inVariable && !at.includes('.validation')) errors.push(`${at}: a variable's default cannot contain an expression (${expr})`);
        for (const ref of refsIn(expr)) {
          const [head, a, b] = ref.split('.');
          if (head === 'var' && !vars.has(a)) errors.push(`${at}: var.${a} is not declared`);
          else if (head === 'local' && !locals.has(a)) errors.push(`${at}: local.${a} is not declared`);
          else if (head === 'module' && !modules.has(a)) errors.push(`${at}: module.${a} is not declared`);
          else if (head === 'data' && !dataSources.has(`${a}.${b}`)) errors.push(`${at}: data.${a}.${b} is not declared`);
          else if (!FUNCTIONS.test(head) && /^(google|random)_/.test(head) && !declared.has(`${head}.${a}`)) errors.push(`${at}: ${head}.${a} is not declared`);
        }
      }
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`, inVariable));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`, inVariable);
  };
  for (const [k, v] of Object.entries(tf)) walk(v, k, false);
  for (const [name, def] of Object.entries<Record<string, unknown>>(tf.variable ?? {})) walk(def.default, `variable.${name}.default`, true);
  return { checked, errors };
}
