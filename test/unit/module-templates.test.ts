import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../node-service/src/config/load.ts';
import { listTemplates, newModule, withModule } from '../../node-service/src/modules/index.ts';

const BIN = join(import.meta.dirname, '../../bin/vigil.mjs');
const EXPECTED = ['apache', 'firebird', 'generic-farm', 'generic-mirror', 'mariadb', 'nginx', 'podman', 'postgresql'];
const VIP = '198.18.0.100/24';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vigil-templates-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

describe('module templates', () => {
  const all = listTemplates();

  it('ships the templates the issue asks for', () => {
    expect(all.map((t) => t.name)).toEqual(EXPECTED);
    expect(Object.fromEntries(all.map((t) => [t.name, t.mode]))).toMatchObject({ postgresql: 'mirror', mariadb: 'mirror', firebird: 'mirror', podman: 'mirror', nginx: 'farm', apache: 'farm', 'generic-mirror': 'mirror', 'generic-farm': 'farm' });
  });

  for (const t of listTemplates()) {
    // the parameters without a default: the VIP, and for podman the image and its check command
    const need = Object.fromEntries(Object.entries(t.params).filter(([, p]) => p.default === undefined).map(([k]) => [k, k === 'VIP' ? VIP : `/usr/local/bin/${k.toLowerCase()}`]));
    describe(t.name, () => {
      it('writes a module whose entry is valid in a cluster.yaml (with only the VIP given)', () => {
        // GIVEN the defaults WHEN the module is written THEN cluster.yaml with it loads without error
        const m = newModule({ template: t.name, dir: join(tmp, 'm'), set: need });
        const cluster = join(tmp, 'cluster.yaml');
        writeFileSync(join(tmp, 'k'), 'k'.repeat(32), { mode: 0o600 });
        const nodes = (t.mode === 'mirror' ? [1, 2] : [1, 2, 3]).map((i) => `  - { name: n${i}, addrs: [198.18.0.${i}] }`).join('\n');
        writeFileSync(cluster, `cluster: c\nsecret_file: ${join(tmp, 'k')}\napi: { admin_token_file: ${join(tmp, 'k')} }\nnodes:\n${nodes}\n`);
        writeFileSync(cluster, withModule(cluster, m.snippet));
        const mod = loadConfig(cluster, { skipFileChecks: false });
        const entry = mod.modules[0];
        expect(entry.mode).toBe(t.mode);
        expect(entry.scripts_dir).toBe(join(tmp, 'm', 'scripts'));
        if (t.mode === 'mirror') expect(entry.replication?.dirs.length).toBeGreaterThan(0);
        else expect(entry.farm?.rules.length).toBeGreaterThan(0);
      });

      it('has executable, syntactically valid scripts that read params.env', () => {
        const m = newModule({ template: t.name, dir: join(tmp, 'm'), set: need });
        const scripts = m.files.filter((f) => f.startsWith('scripts/') && !f.endsWith('params.env'));
        expect(scripts.length).toBeGreaterThan(0);
        for (const f of scripts) {
          const p = join(m.dir, f);
          expect(statSync(p).mode & 0o111, `${f} executable`).not.toBe(0);
          const body = readFileSync(p, 'utf8');
          expect(body.startsWith('#!/bin/sh\n'), `${f} shebang`).toBe(true);
          expect(spawnSync('sh', ['-n', p]).status, `${f}: sh -n`).toBe(0);
          expect(body, `${f} reads params.env`).toContain('params.env');
        }
        // every parameter is a shell variable the scripts can use, with the value given
        const out = execFileSync('sh', ['-c', `. '${join(m.dir, 'scripts/params.env')}'; echo "$VIP|$MODULE|$DIR"`]).toString().trim();
        expect(out).toBe(`${VIP}|${m.values.MODULE}|${m.dir}`);
      });

      it('has a README saying what it replicates, what each transition does, what it checks and how long a failover takes', () => {
        const m = newModule({ template: t.name, dir: join(tmp, 'm'), set: need });
        const readme = readFileSync(join(m.dir, 'README.md'), 'utf8');
        expect(readme).not.toMatch(/\{\{[A-Z_]+\}\}/);
        for (const heading of [t.mode === 'mirror' ? /^## What is replicated/m : /^## What runs where/m, /^## What happens at each transition/m, /^## What is checked/m, /^## How long a failover takes/m]) {
          expect(readme).toMatch(heading);
        }
      });

      it('has a checker with a timeout, so a wedged application is detected', () => {
        const m = newModule({ template: t.name, dir: join(tmp, 'm'), set: need });
        const checkers = m.module.checkers as { type: string; timeout: number; interval: number }[];
        expect(checkers.length).toBeGreaterThan(0);
        for (const c of checkers) expect(c.timeout).toBeLessThanOrEqual(c.interval);
      });
    });
  }

  it('refuses to overwrite a module without --force, and overwrites with it', () => {
    const dir = join(tmp, 'pg');
    newModule({ template: 'postgresql', dir, set: { VIP } });
    writeFileSync(join(dir, 'scripts/params.env'), 'edited');
    expect(() => newModule({ template: 'postgresql', dir, set: { VIP } })).toThrow(/not empty .*--force/);
    expect(readFileSync(join(dir, 'scripts/params.env'), 'utf8')).toBe('edited');
    newModule({ template: 'postgresql', dir, set: { VIP, PG_PORT: '5433' }, force: true });
    expect(readFileSync(join(dir, 'scripts/params.env'), 'utf8')).toContain("PG_PORT='5433'");
  });

  it('names every bad parameter and writes nothing', () => {
    const dir = join(tmp, 'bad');
    expect(() => newModule({ template: 'postgresql', dir, set: { VIP, PGPORT: '1', PG_USER: "x'; rm -rf /" } })).toThrow(/PGPORT is not a parameter[\s\S]*PG_USER: the value may not contain quotes/);
    expect(() => newModule({ template: 'postgresql', dir, set: {} })).toThrow(/VIP is required: give --set VIP=/);
    expect(() => newModule({ template: 'postgresql', dir, set: { VIP: '198.18.0.100' } })).toThrow(/module.yaml: vip.0.addr: .*prefix length/);
    expect(() => newModule({ template: 'nosuch', dir, set: {} })).toThrow(/no template "nosuch" \(templates: apache, firebird/);
    expect(existsSync(dir)).toBe(false);
  });

  it('adds the module to a cluster.yaml, keeping its comments, and refuses a taken name or id', () => {
    const cluster = join(tmp, 'cluster.yaml');
    writeFileSync(cluster, `# my cluster\ncluster: c\nsecret_file: /etc/vigil/cluster.key\napi: { admin_token_file: /etc/vigil/admin.token }\nnodes:\n  - { name: n1, addrs: [198.18.0.1] }\n  - { name: n2, addrs: [198.18.0.2] }\nmodules:\n  - { name: web, mode: farm, id: 1 }\n`);
    const pg = newModule({ template: 'postgresql', dir: join(tmp, 'pg'), set: { VIP, MODULE_ID: '2' } });
    const text = withModule(cluster, pg.snippet, { skipFileChecks: true });
    expect(text).toContain('# my cluster');
    expect(text).toMatch(/name: postgresql/);
    const clash = newModule({ template: 'mariadb', dir: join(tmp, 'my'), set: { VIP: '198.18.0.101/24', MODULE_ID: '1' } });
    expect(() => withModule(cluster, clash.snippet, { skipFileChecks: true })).toThrow(/module "web" has id 1 already/);
  });

  it('vigil module templates lists them; module new writes the module, prints its entry, and refuses to overwrite', () => {
    const list = spawnSync(process.execPath, [BIN, 'module', 'templates'], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    for (const n of EXPECTED) expect(list.stdout).toMatch(new RegExp(`^${n}\\s+(mirror|farm)\\s+\\S`, 'm'));
    const dir = join(tmp, 'web');
    const args = [BIN, 'module', 'new', '--template', 'nginx', '--dir', dir, '--set', `VIP=${VIP}`, '--set', 'MODULE=web'];
    const made = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^name: web$/m);
    expect(existsSync(join(dir, 'scripts/check'))).toBe(true);
    const again = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(again.status).not.toBe(0);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/--force/);
  });

  it('vigil module new --config adds the entry to cluster.yaml, which then passes vigil config check; a second add is refused and changes nothing', () => {
    const cluster = join(tmp, 'cluster.yaml');
    writeFileSync(join(tmp, 'k'), 'k'.repeat(32), { mode: 0o600 });
    const original = `# ours\ncluster: c\nsecret_file: ${join(tmp, 'k')}\napi: { admin_token_file: ${join(tmp, 'k')} }\nnodes:\n  - { name: n1, addrs: [198.18.0.1] }\n  - { name: n2, addrs: [198.18.0.2] }\n`;
    writeFileSync(cluster, original, { mode: 0o640 });
    const args = [BIN, 'module', 'new', '--template', 'mariadb', '--dir', join(tmp, 'db'), '--set', `VIP=${VIP}`, '--config', cluster];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const merged = readFileSync(cluster, 'utf8');
    expect(merged).toContain('# ours');
    expect(statSync(cluster).mode & 0o777).toBe(0o640);
    const check = spawnSync(process.execPath, [BIN, 'config', 'check', '--config', cluster], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/mariadb\/mirror/);
    const again = spawnSync(process.execPath, [...args.slice(0, 6), join(tmp, 'db2'), ...args.slice(7)], { encoding: 'utf8' });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/a module "mariadb" exists already/);
    expect(readFileSync(cluster, 'utf8')).toBe(merged);
    expect(existsSync(join(tmp, 'db2'))).toBe(false);
  });
});
