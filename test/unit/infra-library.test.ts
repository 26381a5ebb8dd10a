/**
 * Deployables in the form their users expect, and a node's install without the cloud tooling:
 * - the root package (what `npm install -g vigil-*.tgz` installs on a node) depends on no cloud SDK,
 *   no aws-cdk-lib; cloud-adapters, functions and infra are npm workspaces declaring what they import;
 * - the CDK constructs are a library: compiled JavaScript with .d.ts behind package exports, no `.ts`
 *   import specifier on the public surface, importable by a plain `node` (no TypeScript loader).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildInfra } from '../../infra/build.ts';
import { REPO_ROOT } from '../../infra/common/package-tarball.ts';

const CLOUD_ONLY = ['aws-cdk-lib', 'constructs', '@aws-sdk/client-elastic-load-balancing-v2', '@aws-sdk/client-secrets-manager', '@azure/arm-network', '@azure/functions', '@google-cloud/compute', '@google-cloud/functions-framework'];
const json = (p: string) => JSON.parse(readFileSync(join(REPO_ROOT, p), 'utf8'));

function* files(dir: string, ext: RegExp): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (e === 'node_modules' || e === 'dist' || e === 'out') continue;
    if (statSync(p).isDirectory()) yield* files(p, ext);
    else if (ext.test(e)) yield p;
  }
}

describe('packaging of the cloud parts', () => {
  it('the root package pulls no cloud SDK and no aws-cdk-lib; each workspace declares every package it imports', () => {
    const root = json('package.json');
    expect(root.workspaces).toEqual(['cloud-adapters', 'functions', 'infra']);
    for (const d of CLOUD_ONLY) expect(Object.keys(root.dependencies), d).not.toContain(d);
    for (const ws of root.workspaces as string[]) {
      const pkg = json(`${ws}/package.json`);
      const declared = new Set(Object.keys(pkg.dependencies ?? {}));
      for (const f of files(join(REPO_ROOT, ws), /\.ts$/)) {
        for (const m of readFileSync(f, 'utf8').matchAll(/^(?:import|export)[^'"]*from '([^'.][^']*)'/gm)) {
          if (m[1].startsWith('node:')) continue;
          const name = m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0];
          if (name === 'tsx') continue;
          expect(declared.has(name), `${f.slice(REPO_ROOT.length + 1)} imports ${name}, not a dependency of ${ws}/package.json`).toBe(true);
        }
      }
    }
  });

  it('infra builds into a library: .js and .d.ts behind package exports, no .ts specifiers, importable by plain node', () => {
    const out = buildInfra();
    const pkg = json('infra/package.json');
    for (const target of Object.values<{ types: string; import: string }>(pkg.exports)) {
      for (const f of [target.types, target.import]) expect(statSync(join(REPO_ROOT, 'infra', f)).isFile(), f).toBe(true);
    }
    const offenders: string[] = [];
    for (const f of files(out, /\.(js|d\.ts)$/)) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:from\s+|import\()['"](\.{1,2}\/[^'"]+\.ts)['"]/g)) offenders.push(`${f.slice(out.length + 1)}: ${m[1]}`);
    }
    expect(offenders).toEqual([]);
    // a CDK app of a user's own: plain node, the package by its name, two clusters in one stack
    const dir = mkdtempSync(join(tmpdir(), 'vigil-lib-'));
    try {
      const tgz = join(dir, 'vigil.tgz');
      writeFileSync(tgz, 'not used: the asset is only staged');
      const app = join(REPO_ROOT, `.vigil-lib-app-${process.pid}.mjs`);
      writeFileSync(
        app,
        `import { App, Stack } from 'aws-cdk-lib';
import { MirrorCluster, FarmCluster } from '@vigil/infra';
import { azureClusterTemplate } from '@vigil/infra/azure';
import { gcpClusterTerraform } from '@vigil/infra/gcp';
const app = new App({ outdir: ${JSON.stringify(join(dir, 'cdk.out'))} });
const stack = new Stack(app, 'Mine');
new MirrorCluster(stack, 'Db', { clusterName: 'db' });
new FarmCluster(stack, 'Web', { clusterName: 'web', nodeCount: 3 });
const t = app.synth().getStackByName('Mine').template;
console.log(JSON.stringify({ resources: Object.keys(t.Resources).length, outputs: Object.keys(t.Outputs ?? {}).length, arm: azureClusterTemplate('mirror').template.resources.length, tf: Object.keys(gcpClusterTerraform('mirror').tf.resource).length }));
`,
      );
      try {
        const r = spawnSync(process.execPath, [app], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, VIGIL_PACKAGE_TGZ: tgz, CDK_DOCKER: '/bin/false', NODE_OPTIONS: '' }, timeout: 240_000 });
        expect(r.status, r.stderr).toBe(0);
        const got = JSON.parse(r.stdout.trim().split('\n').pop()!);
        expect(got.resources).toBeGreaterThan(60);
        expect(got.outputs).toBe(0); // outputs are the consumer's stack's business
        expect(got.arm).toBeGreaterThan(20);
        expect(got.tf).toBeGreaterThan(20);
      } finally {
        rmSync(app, { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 400_000);
});
