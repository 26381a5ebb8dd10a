/**
 * Lambda code for the Vigil function, bundled at synth time with the locally installed esbuild
 * (no Docker: the bundling `local` hook always handles it and throws on failure rather than falling
 * back to a container).
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync } from 'esbuild';
import { REPO_ROOT } from '../common/package-tarball.ts';

/** The functions' AWS Lambda entry point (exports `handler`). */
export const DEFAULT_FUNCTION_ENTRY = join(REPO_ROOT, 'functions', 'src', 'aws-lambda.ts');

/** esbuild options shared by the asset and by tests that check the bundle. */
export function bundleFunction(entry: string, outdir: string): void {
  if (!existsSync(entry)) {
    throw new Error(`Vigil function entry ${relative(REPO_ROOT, entry)} does not exist (it must export \`handler\`)`);
  }
  const result = buildSync({
    entryPoints: [entry],
    outfile: join(outdir, 'index.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20', // the project's floor; runs on the Lambda nodejs24.x runtime
    format: 'esm',
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    // other clouds' SDKs are never loaded on AWS
    external: ['@azure/*', '@google-cloud/*', 'koffi'],
    // some CommonJS dependencies call require() of Node built-ins inside an ES module bundle
    banner: { js: "import{createRequire as __vigilCreateRequire}from'module';const require=__vigilCreateRequire(import.meta.url);" },
    logLevel: 'silent',
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);
}

export function functionCode(entry: string = DEFAULT_FUNCTION_ENTRY): lambda.Code {
  return lambda.Code.fromAsset(join(REPO_ROOT, 'functions'), {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // never used: local bundling below always succeeds or throws
      image: DockerImage.fromRegistry('vigil-local-bundling-only'),
      local: {
        tryBundle(outputDir: string): boolean {
          bundleFunction(entry, outputDir);
          return true;
        },
      },
    },
  });
}
