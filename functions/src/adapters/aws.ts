/** Production AWS adapter: ELBv2 client with the Lambda execution role's credentials. */
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { AwsTargetGroupAdapter } from '../../../cloud-adapters/src/aws/adapter.ts';
import type { CloudAdapter, Desired } from '../../../cloud-adapters/src/types.ts';
import type { ModuleResources } from '../controller.ts';

const clients = new Map<string, ElasticLoadBalancingV2Client>();

export function awsAdapterFor(desired: Desired<ModuleResources>): CloudAdapter {
  const r = desired.resources;
  if (r.provider !== 'aws') throw new Error(`not an AWS module: ${r.provider}`);
  const region = r.region ?? process.env.AWS_REGION ?? '';
  let client = clients.get(region);
  if (!client) {
    client = new ElasticLoadBalancingV2Client(region ? { region } : {});
    clients.set(region, client);
  }
  return new AwsTargetGroupAdapter(client, { ...desired, resources: r });
}
