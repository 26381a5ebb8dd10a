/**
 * `npm run synth:gcp`: writes Terraform JSON for a mirror and a farm cluster into
 * infra/out/gcp/<mode>/main.tf.json, each next to a copy of the project's packed tarball
 * (vigil.tgz, uploaded by Terraform to a private bucket). Offline; no GCP credentials.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { packageTarball, REPO_ROOT } from '../common/package-tarball.ts';
import { gcpClusterTerraform, type GcpClusterOptions } from './terraform.ts';
import { isMainModule, synthCliShapes } from '../common/synth-cli.ts';

export function synthGcp(
  outDir = join(REPO_ROOT, 'infra', 'out', 'gcp'),
  opts: { mirror?: GcpClusterOptions; farm?: GcpClusterOptions; withPackage?: boolean } = {},
): string[] {
  const written: string[] = [];
  const tgz = opts.withPackage === false ? undefined : packageTarball();
  for (const mode of ['mirror', 'farm'] as const) {
    const dir = join(outDir, mode);
    mkdirSync(dir, { recursive: true });
    const { tf } = gcpClusterTerraform(mode, { packageFileName: 'vigil.tgz', ...(opts[mode] ?? {}) });
    const file = join(dir, 'main.tf.json');
    writeFileSync(file, `${JSON.stringify(tf, null, 2)}\n`);
    written.push(file);
    if (tgz) {
      copyFileSync(tgz, join(dir, 'vigil.tgz'));
      written.push(join(dir, 'vigil.tgz'));
      written.push(functionZip(join(dir, 'function.zip')));
    }
    // an example root module: the provider block and the call of this module
    const example = join(outDir, `example-${mode}`);
    mkdirSync(example, { recursive: true });
    writeFileSync(
      join(example, 'main.tf.json'),
      `${JSON.stringify(
        {
          variable: { project: { type: 'string' }, region: { type: 'string', default: 'europe-west1' } },
          provider: { google: { project: '${var.project}', region: '${var.region}' } },
          module: { vigil: { source: `../${mode}`, project: '${var.project}', region: '${var.region}', zones: ['${var.region}-b', '${var.region}-c'] } },
          output: { vip_address: { value: '${module.vigil.vip_address}' }, events_url: { value: '${module.vigil.events_url}' } },
        },
        null,
        2,
      )}\n`,
    );
    written.push(join(example, 'main.tf.json'));
  }
  return written;
}

/** The Cloud Functions source: functions/src/gcp.ts bundled (the Google SDKs installed by the build from package.json), zipped. */
function functionZip(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-fn-'));
  try {
    buildSync({ entryPoints: [join(REPO_ROOT, 'functions', 'src', 'gcp.ts')], outfile: join(dir, 'index.js'), bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['@google-cloud/*'], logLevel: 'silent' });
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'vigil-function', private: true, main: 'index.js', dependencies: { '@google-cloud/compute': '^6.15.0', '@google-cloud/functions-framework': '^4.0.1' } }, null, 2)}\n`);
    rmSync(file, { force: true });
    execFileSync('zip', ['-q', '-j', file, join(dir, 'index.js'), join(dir, 'package.json')]);
    return file;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainModule(import.meta.url)) {
  for (const f of synthGcp(undefined, synthCliShapes())) console.log(`wrote ${f}`);
}
