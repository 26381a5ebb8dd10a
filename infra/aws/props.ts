/** Props of the Vigil AWS cluster constructs (MirrorCluster, FarmCluster). */
import type { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { VigilModuleOptions } from '../common/cluster-config.ts';

/** An instance that already exists (not created by the construct). */
export interface ExistingInstance {
  /** EC2 instance id, e.g. i-0123456789abcdef0 */
  readonly instanceId: string;
  /** its primary private IPv4 address (goes into cluster.yaml) */
  readonly privateIp: string;
}

export interface VigilClusterProps {
  /**
   * Cluster name: cluster.yaml's `cluster`, tags and resource descriptions.
   * @default the construct id, lower-cased
   */
  readonly clusterName?: string;
  /**
   * VPC of the nodes and the load balancer.
   * @default a new VPC (10.0.0.0/16) with a public and a private subnet and a NAT gateway in each of 2 (mirror) or up to 3 (farm) AZs
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of the nodes: node i goes to the i-th AZ of this selection (round robin), one subnet per AZ.
   * @default the VPC's private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Fixed private IPv4 address of each node, in node order; each must be usable in its node's subnet.
   * @default the 10th host address of each node's subnet (the 11th, 12th... for further nodes in the same subnet)
   */
  readonly privateIps?: readonly string[];
  /**
   * Use these instances instead of creating new ones: they are registered in the target group and
   * bootstrapped by a State Manager association (they need the SSM agent and an instance role that
   * can read the package asset and the secrets: pass it as `existingInstanceRole`). Requires `vpc`.
   * CloudFormation cannot add a security group to an instance it does not own: attach the
   * `nodeSecurityGroup` (output NodeSecurityGroupId) to each instance yourself.
   * @default new instances are created
   */
  readonly existingInstances?: readonly ExistingInstance[];
  /**
   * Role of the existing instances, granted read access to the package asset and the secrets.
   * @default no grant (grant it yourself)
   */
  readonly existingInstanceRole?: iam.IRole;
  /**
   * Instance type of the nodes.
   * @default t3.small
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Machine image of the nodes (Linux with systemd, bash, curl, the AWS CLI).
   * @default latest Amazon Linux 2023 (x86_64), resolved by CloudFormation from SSM at deploy time
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * Root volume size in GiB (gp3, encrypted); only applied with the default machine image.
   * @default 20
   */
  readonly rootVolumeGiB?: number;
  /**
   * The module: name, id, replicated directories, checkers, scripts.
   * @default module "mirror" / "farm", id 1, mirror replicating /srv/app/data
   */
  readonly module?: VigilModuleOptions;
  /**
   * The node service's API / health port (cluster.yaml api.port).
   * @default 9010
   */
  readonly healthPort?: number;
  /**
   * The application's TCP port: the load balancer listener and the target group's traffic port.
   * @default 80
   */
  readonly listenerPort?: number;
  /**
   * Internet-facing load balancer (in the public subnets) instead of an internal one.
   * @default false
   */
  readonly internetFacing?: boolean;
  /**
   * Client CIDRs allowed to reach the listener. Include "0.0.0.0/0" only for a public service; the
   * cluster ports (heartbeat, replication, health) are never opened to these.
   * @default the VPC's CIDR
   */
  readonly clientCidrs?: readonly string[];
  /**
   * Cross-zone load balancing on the NLB. Always on for a mirror cluster (a single healthy target
   * must be reachable from both AZs' load balancer nodes); optional for a farm.
   * @default true for mirror, false for farm
   */
  readonly crossZone?: boolean;
  /**
   * The cluster secret (authenticates heartbeat and replication); a plain-text secret.
   * @default a new generated Secrets Manager secret (48 characters)
   */
  readonly clusterSecret?: secretsmanager.ISecret;
  /**
   * Deploy the reconcile / status / events function (with its URL and schedule).
   * @default true
   */
  readonly enableFunction?: boolean;
  /**
   * A mirror without the function: the template registers both nodes and an NLB with no healthy target
   * fails open to both (writes may reach the secondary). Only for tests or a load balancer you drive
   * yourself.
   * @default false (a mirror requires the function)
   */
  readonly allowFailOpen?: boolean;
  /**
   * Reserved concurrency of the function (a cap: its URL is open, events are signed). Lambda keeps at
   * least 100 unreserved executions per account and region: an account whose concurrency quota is
   * still the new-account 10 must raise it first (Service Quotas) or this reservation fails.
   * @default 3
   */
  readonly functionConcurrency?: number;
  /**
   * How often the function reconciles the target group.
   * @default rate(1 minute)
   */
  readonly reconcileSchedule?: events.Schedule;
  /**
   * Path of the function's AWS Lambda entry point (a TypeScript file exporting `handler`).
   * @default functions/src/aws-lambda.ts
   */
  readonly functionEntry?: string;
  /**
   * Shell commands run on each node after Vigil is installed and before it starts (install the application).
   * @default none
   */
  readonly preStartCommands?: readonly string[];
  /**
   * Make CloudFormation wait until each new node has finished its bootstrap (Vigil installed, config
   * checked, service started) and fail the deployment otherwise, with a resource signal from
   * cfn-signal (aws-cfn-bootstrap, installed with dnf: Amazon Linux images).
   * @default false (the stack completes when the instances are running)
   */
  readonly waitForBootstrap?: boolean;
  /**
   * How long CloudFormation waits for each node's signal with `waitForBootstrap`.
   * @default 30 minutes
   */
  readonly bootstrapTimeout?: Duration;
  /**
   * Node.js version installed on the nodes (official build, checksum-verified).
   * @default DEFAULT_NODE_VERSION (24.x, the active LTS line)
   */
  readonly nodeVersion?: string;
}

/** Props of a farm cluster: a mirror has exactly 2 nodes. */
export interface FarmClusterProps extends VigilClusterProps {
  /**
   * Number of nodes (at least 2), spread round robin over the selected subnets' AZs.
   * @default 2 (or the number of `existingInstances`)
   */
  readonly nodeCount?: number;
}
