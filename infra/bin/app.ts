/**
 * CDK app with a mirror and a farm cluster: `npm run synth` writes both stacks to cdk.out offline
 * (no credentials, no lookups: env-agnostic stacks unless the CDK CLI provides an account/region).
 *
 *   npx cdk deploy --app 'node --import tsx infra/bin/app.ts' VigilMirror \
 *     -c clientCidrs=203.0.113.0/24 -c internetFacing=true
 *
 * Context: clientCidrs (comma-separated; default the VPC CIDR), internetFacing (true|false),
 * listenerPort (default 80), farmNodes (default 2), instanceType (default t3.small).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { FarmCluster, MirrorCluster, type VigilCluster, type VigilClusterProps } from '../aws/index.ts';
import { REPO_ROOT } from '../common/package-tarball.ts';

export function buildApp(app: App): { mirror: Stack; farm: Stack } {
  const ctx = (k: string): string | undefined => {
    const v = app.node.tryGetContext(k);
    return v === undefined ? undefined : String(v);
  };
  // Env-agnostic unless deployed with the CLI (which sets both): then real AZs are looked up.
  const account = process.env.CDK_DEFAULT_ACCOUNT;
  const region = process.env.CDK_DEFAULT_REGION;
  const stackProps: StackProps = account && region ? { env: { account, region } } : {};
  const common: VigilClusterProps = {
    ...(ctx('clientCidrs') ? { clientCidrs: ctx('clientCidrs')!.split(',').map((s) => s.trim()) } : {}),
    internetFacing: ctx('internetFacing') === 'true',
    ...(ctx('listenerPort') ? { listenerPort: Number(ctx('listenerPort')) } : {}),
    ...(ctx('instanceType') ? { instanceType: new ec2.InstanceType(ctx('instanceType')!) } : {}),
  };

  const mirror = new Stack(app, 'VigilMirror', { ...stackProps, description: 'Vigil mirror (active/passive) cluster: 2 nodes, NLB, reconcile function' });
  const m = new MirrorCluster(mirror, 'Cluster', {
    ...common,
    clusterName: 'vigil-mirror',
    module: { name: 'mirror', replicatedDirs: ['/srv/app/data'] },
  });

  const farm = new Stack(app, 'VigilFarm', { ...stackProps, description: 'Vigil farm (active/active) cluster: N nodes, NLB, reconcile function' });
  const f = new FarmCluster(farm, 'Cluster', {
    ...common,
    clusterName: 'vigil-farm',
    nodeCount: ctx('farmNodes') ? Number(ctx('farmNodes')) : 2,
    module: { name: 'farm' },
  });
  clusterOutputs(mirror, m);
  clusterOutputs(farm, f);
  return { mirror, farm };
}

/** The stack's outputs for one cluster (a construct defines none: it may be used several times in a stack). */
export function clusterOutputs(stack: Stack, c: VigilCluster, prefix = ''): void {
  const out = (name: string, value: string, description: string) => new CfnOutput(stack, `${prefix}${name}`, { value, description });
  out('VipDnsName', c.loadBalancer.loadBalancerDnsName, `Vigil ${c.clusterName}: the virtual IP (NLB DNS name)`);
  out('HealthUrls', c.healthUrls.join(' '), "each node's ready.txt (from inside the VPC)");
  if (c.functionUrl) {
    out('FunctionUrl', c.functionUrl.url, 'reconcile / status / events function URL');
    out('EventsUrl', c.eventsUrl!, 'where the nodes post state changes');
  }
  out('NodeSecurityGroupId', c.nodeSecurityGroup.securityGroupId, 'security group of the nodes');
  out('ClusterSecretArn', c.clusterSecret.secretArn, 'Secrets Manager secret holding the cluster secret');
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  // infra/cdk.json's feature flags also when this file is the --app from the repository root
  const { context } = JSON.parse(readFileSync(join(REPO_ROOT, 'infra', 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ outdir: process.env.CDK_OUTDIR ?? join(REPO_ROOT, 'cdk.out'), context });
  buildApp(app);
  const assembly = app.synth();
  if (!process.env.CDK_OUTDIR) {
    console.log(`synthesized ${assembly.stacks.map((s) => s.stackName).join(', ')} into ${assembly.directory}`);
  }
}
