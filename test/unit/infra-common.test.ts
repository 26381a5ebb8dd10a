import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateConfig } from '../../node-service/src/config/index.ts';
import { azureClusterTemplate } from '../../infra/azure/arm-template.ts';
import { bootstrapScript, extractClusterYaml } from '../../infra/common/bootstrap.ts';
import { buildClusterConfig, renderClusterYaml, withPlaceholderEventsUrl } from '../../infra/common/cluster-config.ts';
import { cidrContains, hostAt, isUsableHost } from '../../infra/common/ip.ts';
import { gcpClusterTerraform } from '../../infra/gcp/terraform.ts';

function bashSyntaxOk(script: string): string {
  const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
  return r.status === 0 ? 'ok' : r.stderr;
}

describe('ip helpers', () => {
  it('picks host addresses outside the reserved ones', () => {
    expect(hostAt('10.0.2.0/24', 10)).toBe('10.0.2.10');
    expect(hostAt('10.0.2.77/24', 10)).toBe('10.0.2.10');
    expect(() => hostAt('10.0.2.0/24', 3)).toThrow(/outside the usable addresses/);
    expect(() => hostAt('10.0.2.0/28', 15)).toThrow(/outside/);
    expect(isUsableHost('10.0.2.0/24', '10.0.2.255')).toBe(false);
    expect(isUsableHost('10.0.2.0/24', '10.0.2.254')).toBe(true);
    expect(cidrContains('10.0.0.0/16', '10.0.255.1')).toBe(true);
    expect(cidrContains('10.0.0.0/16', '10.1.0.1')).toBe(false);
  });
});

describe('cluster.yaml builder', () => {
  const nodes = [
    { name: 'node1', addr: '10.0.2.10' },
    { name: 'node2', addr: '10.0.3.10' },
  ];

  it("emits a config the daemon's validator accepts, with the contract paths", () => {
    const raw = buildClusterConfig({
      cluster: 'c1',
      mode: 'mirror',
      nodes,
      module: { checkers: [{ type: 'tcp', target: '127.0.0.1:5432' }], scripts: { start_prim: '#!/bin/sh\n' }, heartbeat: { pulse: '200ms', timeout: '2s' } },
      eventsUrl: 'https://x.lambda-url.eu-west-1.on.aws/events',
    });
    const { yaml, config } = renderClusterYaml(raw);
    expect(config.secret_file).toBe('/etc/vigil/cluster.key');
    expect(config.api).toMatchObject({ port: 9010, admin_token_file: '/etc/vigil/admin.token' });
    expect(config.modules[0]).toMatchObject({ scripts_dir: '/etc/vigil/scripts/mirror', default_primary: 'node1', heartbeat: { pulse: 200, timeout: 2000 } });
    expect(validateConfig(parse(yaml), 'x.yaml', { skipFileChecks: true }).modules[0].cloud_events?.url).toBe('https://x.lambda-url.eu-west-1.on.aws/events');
  });

  it('reports what the daemon rejects, with its key path', () => {
    const raw = buildClusterConfig({ cluster: 'c1', mode: 'mirror', nodes, module: { heartbeat: { pulse: '1s', timeout: '1s' } } });
    expect(() => renderClusterYaml(raw)).toThrow(/modules\[0\]\.heartbeat\.timeout/);
    expect(() => buildClusterConfig({ cluster: 'c', mode: 'farm', nodes, module: { scripts: { '../x': '' } } })).toThrow(/plain file name/);
  });

  it('validates deploy-time values through a placeholder', () => {
    const raw = buildClusterConfig({ cluster: 'c1', mode: 'farm', nodes, eventsUrl: '${Token[TOKEN.1]}' });
    expect(() => renderClusterYaml(raw)).toThrow(/url/i);
    expect(renderClusterYaml(raw, (r) => withPlaceholderEventsUrl(r)).yaml).toContain('${Token[TOKEN.1]}');
  });
});

describe('bootstrap scripts', () => {
  it('are valid bash on every cloud and round-trip the config', () => {
    const yaml = renderClusterYaml(buildClusterConfig({ cluster: 'c1', mode: 'farm', nodes: [{ name: 'a', addr: '10.0.0.10' }, { name: 'b', addr: '10.0.0.11' }] })).yaml;
    const generic = bootstrapScript({ fetchPackage: ['true'], secrets: [{ path: '/etc/vigil/cluster.key', command: 'echo s' }], clusterYaml: yaml, scripts: { farm: { start_both: '#!/bin/sh\necho hi\n' } } });
    expect(bashSyntaxOk(generic)).toBe('ok');
    expect(extractClusterYaml(generic)).toBe(yaml.trimEnd());
    const azure = azureClusterTemplate('mirror').template.variables.bootstrapTemplate as string;
    expect(bashSyntaxOk(azure)).toBe('ok');
    // Terraform turns $${ into ${ and fills its own references
    const gcp = (gcpClusterTerraform('mirror').tf.locals.bootstrap as string)
      .replace(/(?<!\$)\$\{[^}]*\}/g, 'tfvalue')
      .replaceAll('$${', '${')
      .replaceAll('%%{', '%{');
    expect(bashSyntaxOk(gcp)).toBe('ok');
  });

  it('refuses content that would end its heredoc early', () => {
    expect(() => bootstrapScript({ fetchPackage: [], secrets: [], clusterYaml: 'a: 1\nVIGIL_CLUSTER_YAML\n' })).toThrow(/contains the line/);
    expect(() => bootstrapScript({ fetchPackage: [], secrets: [], clusterYaml: 'a: 1', nodeVersion: '20; rm -rf /' })).toThrow(/must be x\.y\.z/);
  });
});
