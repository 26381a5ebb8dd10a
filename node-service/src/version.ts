import { readFileSync } from 'node:fs';

/**
 * This build's version: the package.json version. The Debian package's bundle has it compiled in
 * (esbuild defines __VIGIL_VERSION__); run from the sources, it is read from package.json once.
 */
declare const __VIGIL_VERSION__: string | undefined;

function fromPackageJson(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const VERSION: string = typeof __VIGIL_VERSION__ === 'string' ? __VIGIL_VERSION__ : fromPackageJson();

/** What /metrics (vigil_build_info) and GET /api/v1/version report. */
export interface BuildInfo {
  readonly version: string;
  /** the Node.js running the daemon, e.g. "v24.11.1" */
  readonly node: string;
}

export const buildInfo = (): BuildInfo => ({ version: VERSION, node: process.version });
