import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The npm package a node installs (`npm pack`, then `npm install -g` on each node, as the README's
 * install without the Debian package and the Azure/GCP bootstraps do): only what a node runs, and
 * enough of it to run.
 */
const ROOT = join(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'vigil-npm-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd = ROOT, timeoutMs = 240_000): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, stdout });
    });
  });
}

describe('npm package', () => {
  it('ships the daemon, the CLI, the unit and templates, and no tests, CI, benchmarks, infra or cloud code', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']);
    expect(r.code, r.out).toBe(0);
    const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    for (const must of ['package.json', 'README.md', 'bin/vigil.mjs', 'node-service/src/cli/main.ts', 'node-service/src/daemon/daemon.ts', 'node-service/systemd/vigil.service']) {
      expect(files).toContain(must);
    }
    const outside = files.filter((f) => /^(test|\.ci|bench|infra|functions|cloud-adapters|scripts|docs|dist)\/|^node-service\/packaging\/|^(tsconfig\.json|vitest\.config\.ts|package-lock\.json)$/.test(f));
    expect(outside).toEqual([]);
    console.log(`RESULT npm_pack_files=${files.length}`);
  });

  it('the packed tarball installs with npm install -g, without infra or cloud SDKs, and runs: vigil --version, init, config check', async () => {
    const pack = await run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work]);
    expect(pack.code, pack.out).toBe(0);
    const tgz = join(work, pack.stdout.trim().split('\n').pop()!);
    const prefix = join(work, 'prefix');
    const i = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tgz], work);
    expect(i.code, i.out).toBe(0);
    const vigil = join(prefix, 'bin/vigil');
    const v = await run(vigil, ['--version'], work);
    expect(v.stdout.trim(), v.out).toBe(VERSION);
    const etc = join(work, 'etc');
    const init = await run(vigil, ['init', '--cluster', 'npm', '--node', 'a=198.18.0.1', '--node', 'b=198.18.0.2', '--module', 'm', '--mode', 'mirror', '--dir', etc], work);
    expect(init.code, init.out).toBe(0);
    const check = await run(vigil, ['config', 'check', '--config', join(etc, 'cluster.yaml')], work);
    expect(check.code, check.out).toBe(0);
    const installed = join(prefix, 'lib/node_modules/vigil');
    expect(existsSync(join(installed, 'node-service/systemd/vigil.service'))).toBe(true);
    expect(existsSync(join(installed, 'test'))).toBe(false);
    // a node's install pulls neither the infra (aws-cdk-lib, constructs) nor the cloud SDKs
    const deps = readdirSync(join(installed, 'node_modules'));
    expect(deps.filter((d) => /^(aws-cdk-lib|constructs|@aws-sdk|@aws-cdk|@azure|@google-cloud)$/.test(d))).toEqual([]);
    console.log(`RESULT npm_install_top_level_packages=${deps.length}`);
  }, 300_000);
});
