/**
 * One contract, declared once (node-service/src/contract) and imported by node-service,
 * cloud-adapters, functions and infra; code cites the repository's own docs/ARCHITECTURE.md.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/common/package-tarball.ts';
import { isReady, isReadyName, MODULE_STATES, moduleStatusListSchema, modulePorts, readyPath, readyUrl } from '../../node-service/src/contract/index.ts';
import { modulePorts as configPorts } from '../../node-service/src/config/ports.ts';
import { isReady as coreIsReady } from '../../node-service/src/core/types.ts';

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (['node_modules', 'dist', 'out', 'cdk.out'].includes(e)) continue;
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (p.endsWith('.ts')) yield p;
  }
}
const CLOUD = ['cloud-adapters', 'functions', 'infra'].map((d) => join(REPO_ROOT, d));
const rel = (f: string) => f.slice(REPO_ROOT.length + 1);

describe('the contract module', () => {
  it('is the one declaration: no re-declared module mode, ready set, health path or port formula in the cloud packages', () => {
    const found: string[] = [];
    for (const dir of CLOUD) {
      for (const f of sources(dir)) {
        const t = readFileSync(f, 'utf8');
        if (/type ModuleMode\s*=/.test(t)) found.push(`${rel(f)}: declares ModuleMode`);
        if (/'mirror'\s*\|\s*'farm'/.test(t)) found.push(`${rel(f)}: spells the module modes`);
        if (/new Set\(\['PRIM', 'ALONE'\]\)|\['UP'\]/.test(t)) found.push(`${rel(f)}: its own ready set`);
        if (/`\/var\/modules\/\$\{/.test(t)) found.push(`${rel(f)}: its own health path`);
        if (/8888 \+ /.test(t)) found.push(`${rel(f)}: its own port formula`);
        if (/Array\.isArray\(body\)/.test(t)) found.push(`${rel(f)}: guesses the node API's shape`);
      }
    }
    expect(found).toEqual([]);
    // node-service's own names are the contract's, not copies
    expect(coreIsReady).toBe(isReady);
    expect(configPorts).toBe(modulePorts);
  });

  it('states, readiness, health URL and ports as the contract says', () => {
    expect(MODULE_STATES.filter((s) => isReady(s))).toEqual(['ALONE', 'PRIM', 'UP']);
    expect(isReadyName('SECOND')).toBe(false);
    expect(isReadyName('NOPE')).toBe(false);
    expect(readyPath('db')).toBe('/var/modules/db/ready.txt');
    expect(readyUrl('fd00::1', 9010, 'db')).toBe('http://[fd00::1]:9010/var/modules/db/ready.txt');
    expect(modulePorts(2)).toEqual({ heartbeat: 8889, replication: 5604, farm: 4806 });
  });

  it('the vigil state --json object is parsed, not guessed: a wrapped or partial answer is refused', () => {
    const ok = [{ module: 'mirror', node: 'node1', mode: 'mirror', state: 'PRIM', ready: true, peers: [{ node: 'node2', state: 'SECOND' }], resync: {}, target: 'PRIM', gen: 3 }];
    expect(moduleStatusListSchema.parse(ok)[0]).toMatchObject({ state: 'PRIM', gen: 3 });
    expect(moduleStatusListSchema.safeParse({ modules: ok }).success).toBe(false);
    expect(moduleStatusListSchema.safeParse([{ name: 'mirror', state: 'PRIM' }]).success).toBe(false);
  });

  it('code cites the repository\'s docs/ARCHITECTURE.md, which has the sections cited', () => {
    const bad: string[] = [];
    for (const dir of [...CLOUD, join(REPO_ROOT, 'node-service', 'src')]) {
      for (const f of sources(dir)) {
        for (const m of readFileSync(f, 'utf8').matchAll(/(\S*)ARCHITECTURE\.md/g)) if (!m[1].endsWith('docs/')) bad.push(`${rel(f)}: ${m[0]}`);
      }
    }
    expect(bad).toEqual([]);
    const doc = join(REPO_ROOT, 'docs', 'ARCHITECTURE.md');
    expect(existsSync(doc)).toBe(true);
    const text = readFileSync(doc, 'utf8');
    for (const h of ['## Layout', '## Contract', '### Module states', '### Health URL', '### CLI', '### Cloud events', '## Cloud path']) expect(text).toContain(h);
  });
});
