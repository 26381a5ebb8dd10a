/**
 * The production adapter factory: real SDK clients, credentials from the platform
 * (Lambda execution role, Azure managed identity, GCP service account via ADC).
 */
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { AwsTargetGroupAdapter } from '../../cloud-adapters/src/aws/adapter.ts';
import type { CloudAdapter, Desired } from '../../cloud-adapters/src/types.ts';
import type { ModuleResources } from './controller.ts';

const awsClients = new Map<string, ElasticLoadBalancingV2Client>();

export function defaultAdapterFor(desired: Desired<ModuleResources>): CloudAdapter {
  const r = desired.resources;
  switch (r.provider) {
    case 'aws': {
      const region = r.region ?? process.env.AWS_REGION ?? '';
      let client = awsClients.get(region);
      if (!client) {
        client = new ElasticLoadBalancingV2Client(region ? { region } : {});
        awsClients.set(region, client);
      }
      return new AwsTargetGroupAdapter(client, { ...desired, resources: r });
    }
    default:
      throw new Error(`cloud ${r.provider}: adapter not wired yet`);
  }
}
