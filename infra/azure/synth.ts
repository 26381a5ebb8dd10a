/**
 * `npm run synth:azure`: writes the ARM templates of a mirror and a farm cluster, with example
 * parameter files, into infra/out/azure/. Offline; no Azure credentials.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../common/package-tarball.ts';
import { azureClusterTemplate, type AzureClusterOptions } from './arm-template.ts';
import { isMainModule, synthCliShapes } from '../common/synth-cli.ts';

export function synthAzure(outDir = join(REPO_ROOT, 'infra', 'out', 'azure'), opts: { mirror?: AzureClusterOptions; farm?: AzureClusterOptions } = {}): string[] {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const mode of ['mirror', 'farm'] as const) {
    const { template } = azureClusterTemplate(mode, opts[mode] ?? {});
    const file = join(outDir, `vigil-${mode}.json`);
    writeFileSync(file, `${JSON.stringify(template, null, 2)}\n`);
    const params = {
      $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#',
      contentVersion: '1.0.0.0',
      parameters: {
        adminSshPublicKey: { value: 'ssh-ed25519 AAAA... you@example.com' },
        packageUrl: { value: 'https://<account>.blob.core.windows.net/vigil/vigil-0.1.0.tgz?<sas>' },
        loadBalancerType: { value: 'Internal' },
        clientAddressPrefix: { value: 'VirtualNetwork' },
      },
    };
    const pfile = join(outDir, `vigil-${mode}.parameters.example.json`);
    writeFileSync(pfile, `${JSON.stringify(params, null, 2)}\n`);
    written.push(file, pfile);
  }
  return written;
}

if (isMainModule(import.meta.url)) {
  for (const f of synthAzure(undefined, synthCliShapes())) console.log(`wrote ${f}`);
}
