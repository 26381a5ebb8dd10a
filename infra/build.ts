/**
 * `npm run build -w infra`: compiles the deployables into infra/dist as a library (JavaScript with
 * .d.ts, the public surface free of `.ts` import specifiers), for `import { MirrorCluster } from
 * '@vigil/infra'` in a CDK app of your own. TypeScript rewrites the specifiers of the JavaScript it
 * emits but not those of declaration files: they are rewritten here.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export function buildInfra(outDir = join(HERE, 'dist')): string {
  rmSync(outDir, { recursive: true, force: true });
  execFileSync(process.execPath, [join(HERE, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(HERE, 'tsconfig.build.json'), '--outDir', outDir], { stdio: 'inherit' });
  for (const f of walk(outDir)) {
    if (!f.endsWith('.d.ts')) continue;
    const text = readFileSync(f, 'utf8');
    const fixed = text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, (_m, kw, q, p) => `${kw}${q}${p}.js${q}`);
    if (fixed !== text) writeFileSync(f, fixed);
  }
  return outDir;
}

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`built ${buildInfra(process.argv[2])}`);
}
