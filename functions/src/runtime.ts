/**
 * One controller per function instance (cold start), built from the environment. Each platform entry
 * point passes the adapter factories of its own cloud only, so a bundle carries one cloud SDK
 * (a Lambda bundle has no Google or Azure SDK in it). Tests and the bench build their own controller.
 */
import pino from 'pino';
import type { Hono } from 'hono';
import type { CloudAdapter, Desired } from '../../cloud-adapters/src/types.ts';
import { loadFunctionsConfig } from './config.ts';
import { createController, type Controller, type ModuleResources } from './controller.ts';
import { createApp } from './app.ts';
import { createSecretReader, type SecretReaderDeps } from './secrets.ts';

export type AdapterFactories = Partial<Record<ModuleResources['provider'], (d: Desired<ModuleResources>) => CloudAdapter>>;

export interface Runtime {
  readonly controller: Controller;
  readonly app: Hono;
}

let current: Runtime | undefined;

export function adapterFor(factories: AdapterFactories, platform: string) {
  return (d: Desired<ModuleResources>): CloudAdapter => {
    const f = factories[d.resources.provider];
    if (!f) throw new Error(`${d.cluster}/${d.module} is on ${d.resources.provider}, which this ${platform} function does not manage (it manages: ${Object.keys(factories).join(', ')})`);
    return f(d);
  };
}

/** `awsSecret`: the Lambda entry point's Secrets Manager reader; other clouds read env and files. */
export function getRuntime(factories: AdapterFactories, platform: string, secretDeps: Pick<SecretReaderDeps, 'awsSecret'> = {}): Runtime {
  if (!current) {
    const log = pino({ name: `vigil-functions-${platform}`, level: process.env.LOG_LEVEL ?? 'info' });
    const secrets = createSecretReader({ ...secretDeps, onError: (source, err) => log.error({ source, err: err.message }, `secret ${source} cannot be read`) });
    const controller = createController({ config: loadFunctionsConfig(process.env), adapterFor: adapterFor(factories, platform), log, secrets });
    current = { controller, app: createApp(controller, log) };
  }
  return current;
}

/** Tests: replace (or reset with undefined) the instance's runtime. */
export function setRuntime(r: Runtime | undefined): void {
  current = r;
}
