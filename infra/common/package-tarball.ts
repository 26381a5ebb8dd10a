/**
 * The project's packed tarball (`npm pack`), the artefact the nodes install with `npm install -g`.
 * Packed once per process into infra/out/package/<pid>/ (git-ignored); `VIGIL_PACKAGE_TGZ=path`
 * reuses a tarball built elsewhere (e.g. by a release job).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository checkout the deployables are built from (the function's sources, the package to
 * pack): the nearest directory above this file that holds functions/src/aws-lambda.ts, so the same
 * code works from source (infra/common) and compiled (infra/dist/infra/common); VIGIL_REPO_ROOT
 * overrides it.
 */
export const REPO_ROOT = process.env.VIGIL_REPO_ROOT ? resolve(process.env.VIGIL_REPO_ROOT) : findRepoRoot(dirname(fileURLToPath(import.meta.url)));

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'functions', 'src', 'aws-lambda.ts'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..', '..');
  }
}

let packed: string | undefined;

export function packageTarball(): string {
  const override = process.env.VIGIL_PACKAGE_TGZ;
  if (override) {
    if (!existsSync(override)) throw new Error(`VIGIL_PACKAGE_TGZ=${override} does not exist`);
    return resolve(override);
  }
  if (packed && existsSync(packed)) return packed;
  const dest = join(REPO_ROOT, 'infra', 'out', 'package', String(process.pid));
  mkdirSync(dest, { recursive: true });
  // consumers copy the file (CDK asset staging, synth:gcp) before the process ends
  process.once('exit', () => rmSync(dest, { recursive: true, force: true }));
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dest], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const file = out.trim().split('\n').pop()!.trim();
  packed = join(dest, file);
  if (!existsSync(packed)) throw new Error(`npm pack did not produce ${packed}`);
  return packed;
}
