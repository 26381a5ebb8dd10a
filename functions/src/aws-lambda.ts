/**
 * AWS Lambda entry point (bundled by infra with esbuild: this file, export `handler`).
 * Accepts Lambda function URL, API Gateway (REST and HTTP) and ALB events through hono's adapter,
 * and an EventBridge scheduled event ("Scheduled Event") which reconciles every configured cluster.
 */
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { awsAdapterFor } from './adapters/aws.ts';
import { awsSecret } from './adapters/aws-secrets.ts';
import { getRuntime } from './runtime.ts';

export interface ScheduledEvent {
  readonly 'detail-type': 'Scheduled Event';
  readonly source: string;
  readonly id?: string;
  readonly time?: string;
  readonly resources?: readonly string[];
  readonly detail?: unknown;
}

export function isScheduledEvent(e: unknown): e is ScheduledEvent {
  return typeof e === 'object' && e !== null && (e as Record<string, unknown>)['detail-type'] === 'Scheduled Event';
}

export const handler = async (event: LambdaEvent | ScheduledEvent, context?: LambdaContext) => {
  const rt = getRuntime({ aws: awsAdapterFor }, 'aws-lambda', { awsSecret });
  if (isScheduledEvent(event)) {
    const results = await rt.controller.reconcileAll();
    const failed = results.filter((r) => r.error);
    // throwing makes the invocation count as failed (CloudWatch Errors metric); the stack sets the
    // function's asynchronous retries to 0, so a failed reconcile waits for the next schedule
    if (failed.length > 0) throw new Error(`reconcile failed for ${failed.map((r) => `${r.cluster}/${r.module}: ${r.error}`).join('; ')}`);
    return { reconciled: results.map((r) => ({ cluster: r.cluster, module: r.module, changes: r.changes.length })) };
  }
  return handle(rt.app)(event, context);
};
