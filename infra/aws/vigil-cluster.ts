/**
 * Vigil cluster on AWS: EC2 nodes running the node service, a Network Load Balancer as the virtual
 * IP (probing each node's ready.txt), and the reconcile / status / events function.
 *
 * Node addresses. cluster.yaml lists every node's address, and the nodes are created by the same
 * stack, so the addresses are chosen at synth time: each node gets a fixed private IP, by default the
 * 10th host address of its subnet (10.0.128.10, ...), or the addresses given in `privateIps`. The
 * same cluster.yaml is then valid on every node (the daemon picks its own entry by local address)
 * and is checked by the daemon's validator before anything is deployed. A subnet whose CIDR is not
 * known at synth time (an imported VPC without `privateSubnetIpv4CidrBlocks`) needs `privateIps`.
 */
import { Aws, Duration, Fn, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as elbv2targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { awsTemplateRegistersTargets } from '../../cloud-adapters/src/layout.ts';
import { awsTargetGroupAttributes, probeSettings, type ProbeSettings } from '../../cloud-adapters/src/probe-settings.ts';
import { modulePorts } from '../../node-service/src/config/ports.ts';
import type { RawCluster } from '../../node-service/src/config/schema.ts';
import { parseFunctionsConfig } from '../../functions/src/config.ts';
import {
  arbiterPackages,
  buildClusterConfig,
  DEFAULT_HEALTH_PORT,
  moduleName,
  renderClusterYaml,
  VIGIL_PATHS,
  withPlaceholderEventsUrl,
  type ModuleMode,
} from '../common/cluster-config.ts';
import { bootstrapScript, PACKAGE_PATH } from '../common/bootstrap.ts';
import { cidrContains, hostAt, isUsableHost } from '../common/ip.ts';
import { packageTarball } from '../common/package-tarball.ts';
import { functionCode } from './function-code.ts';
import type { ExistingInstance, FarmClusterProps, VigilClusterProps } from './props.ts';

export type { ExistingInstance, FarmClusterProps, VigilClusterProps } from './props.ts';

interface Placement {
  readonly name: string;
  readonly subnet?: ec2.ISubnet;
  readonly addr: string;
  readonly existing?: ExistingInstance;
}

/** Shared implementation of MirrorCluster and FarmCluster. */
export abstract class VigilCluster extends Construct {
  readonly clusterName: string;
  readonly mode: ModuleMode;
  readonly moduleName: string;
  readonly vpc: ec2.IVpc;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;
  readonly nodeSecurityGroup: ec2.SecurityGroup;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  /** created instances (empty with existingInstances) */
  readonly instances: ec2.Instance[] = [];
  readonly clusterSecret: secretsmanager.ISecret;
  readonly adminToken: secretsmanager.Secret;
  readonly eventsSecret?: secretsmanager.Secret;
  readonly function?: lambda.Function;
  readonly functionUrl?: lambda.FunctionUrl;
  readonly probe: ProbeSettings;
  /** in ALARM when no target of the load balancer is healthy (add your actions: SNS, paging) */
  readonly noHealthyTargetAlarm: cloudwatch.Alarm;
  /** cluster.yaml as written on the nodes (may contain deploy-time tokens) */
  readonly clusterYaml: string;
  /** the typed cluster.yaml content */
  readonly clusterConfig: RawCluster;
  readonly nodeAddresses: readonly string[];
  /** each node's ready.txt (reachable from inside the VPC) */
  readonly healthUrls: readonly string[];
  /** where the nodes post their state changes (with the function) */
  readonly eventsUrl?: string;

  protected constructor(scope: Construct, id: string, mode: ModuleMode, nodeCount: number, props: VigilClusterProps) {
    super(scope, id);
    this.mode = mode;
    const stack = Stack.of(this);
    this.clusterName = props.clusterName ?? id.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
    // every taggable resource of the cluster (instances, volumes, ENIs, load balancer, secrets, function...)
    Tags.of(this).add('vigil:cluster', this.clusterName);
    this.moduleName = moduleName({ mode, module: props.module });
    const healthPort = props.healthPort ?? DEFAULT_HEALTH_PORT;
    const listenerPort = props.listenerPort ?? 80;
    checkPort('healthPort', healthPort);
    checkPort('listenerPort', listenerPort);
    if (listenerPort === healthPort) throw new Error(`listenerPort ${listenerPort} must differ from healthPort (the node service's port)`);
    const modId = props.module?.id ?? 1;
    const ports = modulePorts(modId);
    const clusterPorts = mode === 'mirror' ? [ports.heartbeat, ...range(ports.replication, 4)] : [ports.heartbeat, ...range(ports.farm, 3)];
    if (clusterPorts.includes(listenerPort)) throw new Error(`listenerPort ${listenerPort} collides with the module's cluster ports (${clusterPorts.join(', ')})`);
    if (props.existingInstances && !props.vpc) throw new Error('existingInstances requires vpc (the VPC the instances are in)');
    if (props.existingInstances && props.privateIps) throw new Error('give either existingInstances (with their privateIp) or privateIps, not both');
    if (props.waitForBootstrap && props.existingInstances) throw new Error('waitForBootstrap applies to instances the construct creates, not to existingInstances');
    if (props.bootstrapTimeout && !props.waitForBootstrap) throw new Error('bootstrapTimeout is only used with waitForBootstrap');
    if (props.existingInstanceRole && !props.existingInstances) throw new Error('existingInstanceRole is only used with existingInstances');
    if (props.rootVolumeGiB !== undefined && !(Number.isInteger(props.rootVolumeGiB) && props.rootVolumeGiB >= 8 && props.rootVolumeGiB <= 16384)) {
      throw new Error(`rootVolumeGiB ${props.rootVolumeGiB} must be an integer between 8 and 16384`);
    }

    // ---- network -------------------------------------------------------------------------------
    this.vpc =
      props.vpc ??
      new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr('10.0.0.0/16'),
        maxAzs: mode === 'mirror' ? 2 : Math.min(3, Math.max(2, nodeCount)),
        subnetConfiguration: [
          { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
          { name: 'nodes', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
        ],
      });
    const placements = this.place(mode, nodeCount, props);
    this.nodeAddresses = placements.map((p) => p.addr);
    const nodeSubnets: ec2.SubnetSelection = placements[0].subnet
      ? { subnets: uniqueBy(placements.map((p) => p.subnet!), (s) => s.node.path) }
      : (props.vpcSubnets ?? {});

    // ---- security groups -----------------------------------------------------------------------
    this.nodeSecurityGroup = new ec2.SecurityGroup(this, 'NodeSecurityGroup', {
      vpc: this.vpc,
      description: `Vigil ${this.clusterName} nodes: cluster ports between nodes only, health and app ports from the load balancer`,
      allowAllOutbound: true, // package install (nodejs.org, npm registry), AWS APIs, function URL
    });
    const nodeSg = this.nodeSecurityGroup;
    nodeSg.addIngressRule(nodeSg, ec2.Port.udp(ports.heartbeat), 'Vigil heartbeat between nodes');
    if (mode === 'mirror') {
      nodeSg.addIngressRule(nodeSg, ec2.Port.tcpRange(ports.replication, ports.replication + 3), 'Vigil replication between nodes');
    } else {
      nodeSg.addIngressRule(nodeSg, ec2.Port.udpRange(ports.farm, ports.farm + 2), 'Vigil farm membership between nodes');
    }
    nodeSg.addIngressRule(nodeSg, ec2.Port.tcp(healthPort), 'Vigil API between nodes (vigil --api)');

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `Vigil ${this.clusterName} load balancer: the application listener only`,
      allowAllOutbound: false,
    });
    const lbSg = this.loadBalancerSecurityGroup;
    const clientCidrs = props.clientCidrs ?? [vpcCidr(this.vpc)];
    if (clientCidrs.length === 0) throw new Error('clientCidrs must not be empty (omit it to allow the VPC CIDR)');
    for (const c of clientCidrs) {
      lbSg.addIngressRule(c === '0.0.0.0/0' ? ec2.Peer.anyIpv4() : ec2.Peer.ipv4(c), ec2.Port.tcp(listenerPort), 'application clients');
    }
    lbSg.addEgressRule(nodeSg, ec2.Port.tcp(listenerPort), 'to the nodes: application');
    lbSg.addEgressRule(nodeSg, ec2.Port.tcp(healthPort), 'to the nodes: ready.txt health checks');
    nodeSg.addIngressRule(lbSg, ec2.Port.tcp(listenerPort), 'application traffic from the load balancer');
    nodeSg.addIngressRule(lbSg, ec2.Port.tcp(healthPort), 'health checks from the load balancer');

    // ---- secrets -------------------------------------------------------------------------------
    this.clusterSecret =
      props.clusterSecret ??
      new secretsmanager.Secret(this, 'ClusterSecret', {
        description: `Vigil ${this.clusterName}: cluster secret (heartbeat and replication authentication)`,
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
      });
    this.adminToken = new secretsmanager.Secret(this, 'AdminToken', {
      description: `Vigil ${this.clusterName}: admin API bearer token`,
      generateSecretString: { passwordLength: 40, excludePunctuation: true },
    });
    const enableFunction = props.enableFunction ?? true;
    if (mode === 'mirror' && !enableFunction && !props.allowFailOpen) {
      throw new Error('a mirror cluster needs the function (enableFunction): an NLB fails open to every registered target when none is healthy, so only the primary may be registered, and the function is what registers it (set allowFailOpen to accept writes reaching the secondary instead)');
    }
    if (enableFunction) {
      this.eventsSecret = new secretsmanager.Secret(this, 'EventsSecret', {
        description: `Vigil ${this.clusterName}: signs the nodes' state-change events to the function`,
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
      });
    }

    // ---- load balancer -------------------------------------------------------------------------
    this.probe = probeSettings({ module: this.moduleName, mode, healthPort });
    const aws = this.probe.aws;
    this.targetGroup = new elbv2.NetworkTargetGroup(this, 'TargetGroup', {
      vpc: this.vpc,
      port: listenerPort,
      protocol: elbv2.Protocol.TCP,
      // ip targets: the fixed private IPs are known at synth time, so the function's configuration does
      // not depend on the instances (whose user data depends on the function URL)
      targetType: elbv2.TargetType.IP,
      healthCheck: {
        enabled: true,
        protocol: aws.healthCheckProtocol as elbv2.Protocol,
        port: aws.healthCheckPort,
        path: aws.healthCheckPath,
        healthyHttpCodes: aws.matcher.HttpCode,
        interval: Duration.seconds(aws.healthCheckIntervalSeconds),
        timeout: Duration.seconds(aws.healthCheckTimeoutSeconds),
        healthyThresholdCount: aws.healthyThresholdCount,
        unhealthyThresholdCount: aws.unhealthyThresholdCount,
      },
    });
    // the same attribute set the reconcile adapter keeps the target group in line with
    for (const [k, v] of Object.entries(awsTargetGroupAttributes(aws, 'TCP'))) this.targetGroup.setAttribute(k, v);
    // applications see the real client address (ip targets do not preserve it by default)
    this.targetGroup.setAttribute('preserve_client_ip.enabled', 'true');
    const crossZone = mode === 'mirror' ? true : (props.crossZone ?? false);
    if (mode === 'mirror' && props.crossZone === false) throw new Error('crossZone cannot be false for a mirror cluster: the single healthy target must be reachable from every AZ');
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: props.internetFacing ?? false,
      vpcSubnets: props.internetFacing ? { subnetType: ec2.SubnetType.PUBLIC, onePerAz: true } : nodeSubnets,
      crossZoneEnabled: crossZone,
      securityGroups: [lbSg],
    });
    this.loadBalancer.addListener('Listener', { port: listenerPort, protocol: elbv2.Protocol.TCP, defaultTargetGroups: [this.targetGroup] });

    // ---- function ------------------------------------------------------------------------------
    let eventsUrl: string | undefined;
    let fnSg: ec2.SecurityGroup | undefined;
    if (enableFunction) {
      fnSg = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
        vpc: this.vpc,
        description: `Vigil ${this.clusterName} function: reaches the node API and the AWS APIs`,
        allowAllOutbound: true,
      });
      nodeSg.addIngressRule(fnSg, ec2.Port.tcp(healthPort), 'node status from the Vigil function');
      const logGroup = new logs.LogGroup(this, 'FunctionLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
      this.function = new lambda.Function(this, 'Function', {
        description: `Vigil ${this.clusterName}: reconcile the target group, status, node events`,
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        handler: 'index.handler',
        code: functionCode(props.functionEntry),
        memorySize: 256,
        timeout: Duration.seconds(30),
        // the function URL is open (events are signed): a cap on what an abuser can make it cost
        reservedConcurrentExecutions: props.functionConcurrency ?? 3,
        vpc: this.vpc,
        vpcSubnets: placements[0].subnet ? nodeSubnets : (props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }),
        securityGroups: [fnSg],
        logGroup,
        environment: { NODE_OPTIONS: '--enable-source-maps' },
      });
      this.functionUrl = this.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE }); // events are HMAC-signed
      eventsUrl = Fn.join('', [this.functionUrl.url, 'events']);
      this.eventsUrl = eventsUrl;
      // EventBridge invokes asynchronously: Lambda itself would retry a failed reconcile twice, whatever the
      // rule's retry policy; the next scheduled run is the retry
      this.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(2) });
      new events.Rule(this, 'ReconcileSchedule', {
        description: `Vigil ${this.clusterName}: periodic reconcile of the load balancer`,
        schedule: props.reconcileSchedule ?? events.Schedule.rate(Duration.minutes(1)),
        targets: [new eventTargets.LambdaFunction(this.function, { retryAttempts: 0 })],
      });
      // Least privilege: changes only on this target group; ELBv2 Describe* have no resource-level permissions.
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ManageVigilTargetGroup',
          actions: [
            'elasticloadbalancing:RegisterTargets',
            'elasticloadbalancing:DeregisterTargets',
            'elasticloadbalancing:ModifyTargetGroup',
            'elasticloadbalancing:ModifyTargetGroupAttributes',
          ],
          resources: [this.targetGroup.targetGroupArn],
        }),
      );
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'DescribeTargetHealth',
          actions: ['elasticloadbalancing:DescribeTargetGroups', 'elasticloadbalancing:DescribeTargetHealth', 'elasticloadbalancing:DescribeTargetGroupAttributes'],
          resources: ['*'],
        }),
      );
    }

    // ---- the arbiter lease (issue 16): one item per module in a table of the stack ----------------
    const leaseTable = mode === 'mirror' && props.module?.arbiter
      ? new dynamodb.Table(this, 'LeaseTable', {
          tableName: `${this.clusterName}-lease`,
          partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
          // a renewal every ttl/6: a few writes a second at most, billed per request
          billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
          removalPolicy: RemovalPolicy.DESTROY,
        })
      : undefined;

    // ---- cluster.yaml --------------------------------------------------------------------------
    this.clusterConfig = buildClusterConfig({
      ...(leaseTable ? { arbiter: { type: 'aws-dynamodb' as const, table: `${this.clusterName}-lease`, region: Aws.REGION } } : {}),
      cluster: this.clusterName,
      mode,
      nodes: placements.map((p) => ({ name: p.name, addr: p.addr })),
      module: props.module,
      healthPort,
      eventsUrl,
    });
    this.clusterYaml = renderClusterYaml(this.clusterConfig, (r) => withPlaceholderEventsUrl(r)).yaml;

    // ---- bootstrap -----------------------------------------------------------------------------
    const pkg = new s3assets.Asset(this, 'Package', { path: packageTarball() });
    const secretCmd = (s: secretsmanager.ISecret) =>
      `aws secretsmanager get-secret-value --region ${Aws.REGION} --secret-id ${s.secretArn} --query SecretString --output text`;
    const scriptFor = (report?: { success: string[]; failure: string }) => bootstrapScript({
      report,
      fetchPackage: [`aws s3 cp --region ${Aws.REGION} s3://${pkg.s3BucketName}/${pkg.s3ObjectKey} ${PACKAGE_PATH}`],
      secrets: [
        { path: VIGIL_PATHS.secret, command: secretCmd(this.clusterSecret) },
        { path: VIGIL_PATHS.adminToken, command: secretCmd(this.adminToken) },
        ...(this.eventsSecret ? [{ path: VIGIL_PATHS.eventsSecret, command: secretCmd(this.eventsSecret) }] : []),
      ],
      clusterYaml: this.clusterYaml,
      scripts: props.module?.scripts ? { [this.moduleName]: props.module.scripts } : undefined,
      preStart: props.preStartCommands,
      nodeVersion: props.nodeVersion,
      extraPackages: arbiterPackages(this.clusterConfig),
    });
    const script = scriptFor();
    const grantNodeReads = (role: iam.IGrantable) => {
      // this one object, not the whole CDK assets bucket (which holds every stack's assets)
      iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject'], resourceArns: [pkg.bucket.arnForObjects(pkg.s3ObjectKey)] });
      this.clusterSecret.grantRead(role);
      this.adminToken.grantRead(role);
      this.eventsSecret?.grantRead(role);
      // the lease: strongly consistent reads and conditional puts of its items, nothing else
      if (leaseTable) iam.Grant.addToPrincipal({ grantee: role, actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resourceArns: [leaseTable.tableArn] });
    };

    if (props.existingInstances) {
      if (props.existingInstanceRole) grantNodeReads(props.existingInstanceRole);
      if (script.split('\n').includes('VIGIL_BOOTSTRAP_EOF')) throw new Error('preStartCommands / module scripts must not contain the line "VIGIL_BOOTSTRAP_EOF"');
      new ssm.CfnAssociation(this, 'BootstrapExisting', {
        name: 'AWS-RunShellScript',
        associationName: `vigil-${this.clusterName}-bootstrap`,
        targets: [{ key: 'InstanceIds', values: props.existingInstances.map((i) => i.instanceId) }],
        // Run Command's shell may be sh: write the bash script to a file and run it with bash
        parameters: {
          commands: [`cat > /var/tmp/vigil-bootstrap.sh <<'VIGIL_BOOTSTRAP_EOF'\n${script}VIGIL_BOOTSTRAP_EOF`, 'bash /var/tmp/vigil-bootstrap.sh'],
          executionTimeout: ['3600'],
        },
      });
    } else {
      const role = new iam.Role(this, 'NodeRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
        description: `Vigil ${this.clusterName} nodes`,
        managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
      });
      grantNodeReads(role);
      const sharedUserData = props.waitForBootstrap ? undefined : ec2.UserData.custom(script);
      const defaultImage = props.machineImage === undefined;
      for (const p of placements) {
        // with waitForBootstrap each node's script names its own resource: filled in once the instance exists
        const userData = sharedUserData ?? ec2.UserData.forLinux();
        const inst = new ec2.Instance(this, capitalize(p.name), {
          vpc: this.vpc,
          vpcSubnets: { subnets: [p.subnet!] },
          instanceType: props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL),
          machineImage: props.machineImage ?? ec2.MachineImage.latestAmazonLinux2023(),
          securityGroup: nodeSg,
          role,
          userData,
          privateIpAddress: p.addr,
          instanceName: `${this.clusterName}-${p.name}`,
          ...(defaultImage
            ? { blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB ?? 20, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }] }
            : {}),
        });
        // IMDSv2 on the instance itself: `requireImdsv2` would add a launch template with a fixed name
        // (Node1LaunchTemplate), and a second cluster in the account and region would fail on it
        inst.instance.metadataOptions = { httpTokens: 'required', httpEndpoint: 'enabled', httpPutResponseHopLimit: 2 };
        Tags.of(inst).add('vigil:node', p.name);
        if (props.waitForBootstrap) {
          const signal = (code: 0 | 1, reason: string) =>
            `/opt/aws/bin/cfn-signal -e ${code} --stack ${Aws.STACK_NAME} --resource ${inst.instance.logicalId} --region ${Aws.REGION} --reason "${reason}"`;
          const body = scriptFor({ success: [signal(0, 'vigil started')], failure: `${signal(1, 'vigil bootstrap failed: see /var/log/vigil-bootstrap.log')} || true` });
          // forLinux() writes the #!/bin/bash line itself
          const [, ...lines] = body.trimEnd().split('\n');
          userData.addCommands('command -v /opt/aws/bin/cfn-signal >/dev/null || dnf install -y -q aws-cfn-bootstrap || true', ...lines);
          inst.instance.cfnOptions.creationPolicy = {
            resourceSignal: { count: 1, timeout: `PT${Math.ceil((props.bootstrapTimeout ?? Duration.minutes(30)).toSeconds() / 60)}M` },
          };
        }
        this.instances.push(inst);
      }
    }
    // a farm's template registers every node; a mirror's none (the function registers the observed primary)
    if (awsTemplateRegistersTargets(mode) || !enableFunction) this.targetGroup.addTarget(...placements.map((p) => new elbv2targets.IpTarget(p.addr, listenerPort)));

    // ---- function configuration (validated with the functions' own schema) --------------------
    if (this.function) {
      const fnConfig = {
        clusters: {
          [this.clusterName]: {
            healthPort,
            // read at run time from Secrets Manager (AWSCURRENT and AWSPREVIOUS): never in the environment
            eventSecrets: [{ awsSecretArn: this.eventsSecret!.secretArn }],
            adminTokens: [{ awsSecretArn: this.adminToken.secretArn }],
            nodes: placements.map((p) => ({ name: p.name, address: p.addr })),
            modules: [
              {
                name: this.moduleName,
                mode,
                cloud: {
                  provider: 'aws' as const,
                  region: Aws.REGION,
                  targetGroupName: this.targetGroup.targetGroupName,
                  vpcId: this.vpc.vpcId,
                  protocol: 'TCP' as const,
                  port: listenerPort,
                  targetType: 'ip' as const,
                },
              },
            ],
          },
        },
      };
      parseFunctionsConfig(
        JSON.parse(JSON.stringify(fnConfig, (_k, v) => (typeof v === 'string' && Token.isUnresolved(v) ? 'placeholder-value' : v))),
        `${this.node.path} function config`,
      );
      this.function.addEnvironment('VIGIL_FUNCTIONS_CONFIG', stack.toJsonString(fnConfig));
      this.eventsSecret!.grantRead(this.function);
      this.adminToken.grantRead(this.function);
    }

    // ---- monitoring ----------------------------------------------------------------------------
    this.noHealthyTargetAlarm = new cloudwatch.Alarm(this, 'NoHealthyTarget', {
      alarmDescription: `Vigil ${this.clusterName}: no node answers 200 on ${this.probe.path} (the VIP serves nobody)`,
      metric: this.targetGroup.metrics.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });

    this.healthUrls = placements.map((p) => `http://${p.addr}:${healthPort}${this.probe.path}`);
    // outputs belong to the stack that uses the construct (infra/bin/app.ts shows them): a construct
    // used twice in one stack would otherwise collide on output names
  }

  private place(mode: ModuleMode, nodeCount: number, props: VigilClusterProps): Placement[] {
    if (props.existingInstances) {
      const ex = props.existingInstances;
      if (mode === 'mirror' && ex.length !== 2) throw new Error(`a mirror cluster needs exactly 2 existingInstances (got ${ex.length})`);
      if (mode === 'farm' && ex.length < 2) throw new Error(`a farm cluster needs at least 2 existingInstances (got ${ex.length})`);
      checkUnique(ex.map((e) => e.instanceId), 'existingInstances instanceId');
      checkUnique(ex.map((e) => e.privateIp), 'existingInstances privateIp');
      return ex.map((e, i) => {
        if (!/^i-[0-9a-f]{8,17}$/.test(e.instanceId) && !Token.isUnresolved(e.instanceId)) throw new Error(`existingInstances[${i}].instanceId "${e.instanceId}" is not an EC2 instance id (i-...)`);
        if (!/^\d+\.\d+\.\d+\.\d+$/.test(e.privateIp)) throw new Error(`existingInstances[${i}].privateIp "${e.privateIp}" must be a literal IPv4 address (it goes into cluster.yaml)`);
        return { name: `node${i + 1}`, addr: e.privateIp, existing: e };
      });
    }
    const selected = this.vpc.selectSubnets({ ...(props.vpcSubnets ?? {}), onePerAz: true }).subnets;
    const azs = new Set(selected.map((s) => s.availabilityZone));
    if (selected.length < 2 || azs.size < 2) {
      throw new Error(`the nodes need subnets in at least 2 Availability Zones; the selection has ${selected.length} subnet(s) in ${azs.size} AZ(s)`);
    }
    if (props.privateIps && props.privateIps.length !== nodeCount) {
      throw new Error(`privateIps has ${props.privateIps.length} address(es) for ${nodeCount} nodes`);
    }
    const perSubnet = new Map<ec2.ISubnet, number>();
    const placements = range(0, nodeCount).map((i): Placement => {
      const subnet = selected[i % selected.length];
      const n = perSubnet.get(subnet) ?? 0;
      perSubnet.set(subnet, n + 1);
      const cidr = subnetCidr(subnet);
      let addr: string;
      if (props.privateIps) {
        addr = props.privateIps[i];
        if (cidr !== undefined && !cidrContains(cidr, addr)) throw new Error(`privateIps[${i}] ${addr} is not in node${i + 1}'s subnet ${cidr} (${subnet.availabilityZone})`);
        if (cidr !== undefined && !isUsableHost(cidr, addr)) throw new Error(`privateIps[${i}] ${addr} is an address AWS reserves in ${cidr} (first 4 and last)`);
        if (!/^\d+\.\d+\.\d+\.\d+$/.test(addr)) throw new Error(`privateIps[${i}] "${addr}" must be an IPv4 address`);
      } else {
        if (cidr === undefined) {
          throw new Error(`the CIDR of subnet ${subnet.node.path} is not known at synth time: pass privateIps (or import the VPC with its subnets' ipv4CidrBlock)`);
        }
        addr = hostAt(cidr, 10 + n);
      }
      return { name: `node${i + 1}`, subnet, addr };
    });
    checkUnique(placements.map((p) => p.addr), 'privateIps');
    return placements;
  }
}

/**
 * A mirror (active/passive) cluster: 2 nodes in 2 AZs, synchronous replication between them, the NLB
 * sending traffic only to the node whose ready.txt answers 200 (PRIM or ALONE).
 */
export class MirrorCluster extends VigilCluster {
  constructor(scope: Construct, id: string, props: VigilClusterProps = {}) {
    if ((props as FarmClusterProps).nodeCount !== undefined && (props as FarmClusterProps).nodeCount !== 2) {
      throw new Error(`a mirror cluster has exactly 2 nodes (nodeCount ${(props as FarmClusterProps).nodeCount})`);
    }
    if (props.module?.farmPower) throw new Error('module.farmPower is for a farm cluster');
    super(scope, id, 'mirror', 2, props);
  }
}

/** A farm (active/active) cluster: N ≥ 2 nodes spread over AZs, every node UP receives traffic. */
export class FarmCluster extends VigilCluster {
  constructor(scope: Construct, id: string, props: FarmClusterProps = {}) {
    const n = props.nodeCount ?? props.existingInstances?.length ?? 2;
    if (!Number.isInteger(n) || n < 2 || n > 32) throw new Error(`nodeCount ${n} not supported. Must be an integer between 2 and 32.`);
    if (props.existingInstances && props.nodeCount !== undefined && props.nodeCount !== props.existingInstances.length) {
      throw new Error(`nodeCount ${props.nodeCount} differs from the ${props.existingInstances.length} existingInstances`);
    }
    if (props.module?.replicatedDirs) throw new Error('module.replicatedDirs is for a mirror cluster (a farm does not replicate)');
    if (props.module?.defaultPrimary) throw new Error('module.defaultPrimary is for a mirror cluster (a farm has no primary)');
    super(scope, id, 'farm', n, props);
  }
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

function checkPort(name: string, p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${name} ${p} not supported. Must be an integer between 1 and 65535.`);
}

function checkUnique(values: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new Error(`duplicate ${what} ${v}`);
    seen.add(v);
  }
}

function uniqueBy<T>(xs: readonly T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => (seen.has(key(x)) ? false : (seen.add(key(x)), true)));
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function subnetCidr(subnet: ec2.ISubnet): string | undefined {
  try {
    const c = subnet.ipv4CidrBlock;
    return Token.isUnresolved(c) ? undefined : c;
  } catch {
    return undefined;
  }
}

function vpcCidr(vpc: ec2.IVpc): string {
  let c: string | undefined;
  try {
    c = vpc.vpcCidrBlock;
  } catch {
    c = undefined;
  }
  if (c === undefined) throw new Error('the VPC CIDR is unknown (imported VPC without vpcCidrBlock): pass clientCidrs');
  return c;
}
