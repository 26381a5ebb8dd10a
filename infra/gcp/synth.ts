/**
 * `npm run synth:gcp`: writes Terraform JSON for a mirror and a farm cluster into
 * infra/out/gcp/<mode>/main.tf.json, each next to a copy of the project's packed tarball
 * (vigil.tgz, uploaded by Terraform to a private bucket). Offline; no GCP credentials.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
    }
  }
  return written;
}

if (isMainModule(import.meta.url)) {
  for (const f of synthGcp(undefined, synthCliShapes())) console.log(`wrote ${f}`);
}
