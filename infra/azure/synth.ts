/**
 * `npm run synth:azure`: writes the ARM templates of a mirror and a farm cluster, with example
 * parameter files, into infra/out/azure/. Offline; no Azure credentials.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
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
        // clusterSecret, adminToken, eventsSecret: pass them on the command line (securestring), never in a file
        loadBalancerType: { value: 'Internal' },
        clientAddressPrefix: { value: 'VirtualNetwork' },
      },
    };
    const pfile = join(outDir, `vigil-${mode}.parameters.example.json`);
    writeFileSync(pfile, `${JSON.stringify(params, null, 2)}\n`);
    written.push(file, pfile);
  }
  written.push(functionZip(join(outDir, 'function.zip')));
  return written;
}

/** The Azure Functions package: functions/src/azure.ts bundled (the worker provides @azure/functions-core), host.json, package.json. */
export function functionZip(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-azfn-'));
  try {
    buildSync({ entryPoints: [join(REPO_ROOT, 'functions', 'src', 'azure.ts')], outfile: join(dir, 'index.js'), bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['@azure/functions-core', '@google-cloud/*', '@aws-sdk/*', 'koffi'], logLevel: 'silent' });
    writeFileSync(join(dir, 'host.json'), `${JSON.stringify({ version: '2.0', extensionBundle: { id: 'Microsoft.Azure.Functions.ExtensionBundle', version: '[4.*, 5.0.0)' } }, null, 2)}\n`);
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'vigil-function', private: true, main: 'index.js' }, null, 2)}\n`);
    rmSync(file, { force: true });
    execFileSync('zip', ['-q', '-j', file, join(dir, 'index.js'), join(dir, 'host.json'), join(dir, 'package.json')]);
    return file;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainModule(import.meta.url)) {
  for (const f of synthAzure(undefined, synthCliShapes())) console.log(`wrote ${f}`);
}
