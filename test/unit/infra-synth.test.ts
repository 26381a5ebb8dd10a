import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** The environment of a CI job without any cloud credentials or CDK CLI variables. */
function offlineEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(AWS_|CDK_|AZURE_|ARM_|GOOGLE_|CLOUDSDK_)/.test(k)) continue;
    env[k] = v;
  }
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    CDK_DOCKER: '/bin/false', // bundling must be local
    ...extra,
  };
}

describe('npm run synth (offline, no credentials)', () => {
  const out = mkdtempSync(join(tmpdir(), 'vigil-cdk-out-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('synthesizes both stacks into the output directory, with no validation errors', () => {
    // CDK_OUTDIR is how the CDK CLI tells the app where to write; used here to keep the test's output apart
    const r = spawnSync('npm', ['run', '-s', 'synth'], { cwd: ROOT, env: offlineEnv({ CDK_OUTDIR: out }), encoding: 'utf8', timeout: 240_000 });
    expect(r.error).toBeUndefined();
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    const stacks = Object.entries<any>(manifest.artifacts).filter(([, a]) => a.type === 'aws:cloudformation:stack');
    expect(stacks.map(([n]) => n).sort()).toEqual(['VigilFarm', 'VigilMirror']);
    for (const [name, a] of stacks) {
      // env-agnostic: deployable to any account/region, nothing was looked up
      expect(a.environment).toBe('aws://unknown-account/unknown-region');
      expect(a.missing ?? manifest.missing).toBeUndefined();
      const template = JSON.parse(readFileSync(join(out, a.properties.templateFile), 'utf8'));
      const types = Object.values<any>(template.Resources).map((x) => x.Type);
      expect(types.filter((t) => t === 'AWS::EC2::Instance'), name).toHaveLength(2);
      expect(types).toContain('AWS::ElasticLoadBalancingV2::TargetGroup');
      expect(types).toContain('AWS::Lambda::Function');
    }
    // the function bundle and the package tarball are staged as assets
    const assetDirs = readFileSync(join(out, 'VigilMirror.assets.json'), 'utf8');
    expect(assetDirs).toMatch(/\.tgz"/);
    const report = join(out, 'validation-report.json');
    if (existsSync(report)) {
      const rep = JSON.parse(readFileSync(report, 'utf8'));
      const violations = (rep.pluginReports ?? []).flatMap((p: any) => p.violations ?? []);
      expect(violations.map((v: any) => `${v.ruleName}: ${v.description}`)).toEqual([]);
    }
  }, 250_000);
});

describe('npm run synth:azure / synth:gcp', () => {
  it('both emit their files', () => {
    for (const script of ['synth:azure', 'synth:gcp']) {
      const r = spawnSync('npm', ['run', '-s', script], { cwd: ROOT, env: offlineEnv({}), encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${script}: ${r.stdout}\n${r.stderr}`).toBe(0);
    }
    for (const f of ['azure/vigil-mirror.json', 'azure/vigil-farm.json', 'gcp/mirror/main.tf.json', 'gcp/farm/main.tf.json', 'gcp/mirror/vigil.tgz']) {
      expect(existsSync(join(ROOT, 'infra', 'out', f)), f).toBe(true);
    }
  }, 250_000);
});
