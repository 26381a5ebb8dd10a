/**
 * One controller per function instance (cold start), built from the environment. The platform entry
 * points call getRuntime(); tests and the bench build their own with createController().
 */
import pino from 'pino';
import type { Hono } from 'hono';
import { loadFunctionsConfig } from './config.ts';
import { createController, type Controller } from './controller.ts';
import { createApp } from './app.ts';
import { defaultAdapterFor } from './adapters.ts';

export interface Runtime {
  readonly controller: Controller;
  readonly app: Hono;
}

let current: Runtime | undefined;

export function getRuntime(): Runtime {
  if (!current) {
    const log = pino({ name: 'vigil-functions', level: process.env.LOG_LEVEL ?? 'info' });
    const controller = createController({ config: loadFunctionsConfig(process.env), adapterFor: defaultAdapterFor, log });
    current = { controller, app: createApp(controller) };
  }
  return current;
}

/** Tests: replace (or reset with undefined) the instance's runtime. */
export function setRuntime(r: Runtime | undefined): void {
  current = r;
}
