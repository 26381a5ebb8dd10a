/**
 * `npm run package:deb`: the node daemon and the `vigil` command as a Debian package in dist/.
 *
 * Layout (what a Debian administrator looks for):
 *   /usr/lib/vigil/bin/vigil.mjs       one esbuild bundle of the CLI and daemon with their production
 *                                      dependencies (no node_modules tree, no dev or cloud packages)
 *   /usr/lib/vigil/node_modules/koffi  the one native dependency, with this architecture's glibc build only
 *   /usr/lib/vigil/node-service/...    files the code reads beside its sources (console assets, templates)
 *   /usr/bin/vigil                     symlink to the bundle
 *   /lib/systemd/system/vigil.service  the unit (ConditionPathExists=/etc/vigil/cluster.yaml)
 *   /etc/vigil/cluster.yaml.example    conffile; `vigil init` writes the real cluster.yaml
 *   /etc/default/vigil                 conffile: VIGIL_OPTS
 *   /var/lib/vigil                     state directory (0750)
 *   /usr/share/doc/vigil, /usr/share/man/man1/vigil.1.gz
 *
 * Built with dpkg-deb --root-owner-group, so no fakeroot and files owned by root.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

const REPO = join(import.meta.dirname, '../..');
const DEB = join(import.meta.dirname, 'debian');
const PREFIX = '/usr/lib/vigil';
/** koffi's prebuilt package per Debian architecture */
const KOFFI_NATIVE: Record<string, { pkg: string; dir: string }> = {
  amd64: { pkg: '@koromix/koffi-linux-x64', dir: 'linux_x64' },
  arm64: { pkg: '@koromix/koffi-linux-arm64', dir: 'linux_arm64' },
};

/**
 * What koffi.node links against (dpkg-shlibdeps' answer for koffi 3.3.4: NEEDED libc.so.6 up to
 * GLIBC_2.25, libstdc++.so.6 up to CXXABI_1.3.11 (GCC 7), libgcc_s.so.1). Check again when koffi moves.
 */
const KOFFI_SHLIBS = 'libc6 (>= 2.25), libgcc-s1 (>= 3.0), libstdc++6 (>= 7)';

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

/**
 * The sources find files beside themselves through import.meta.url / import.meta.dirname (console
 * assets, module templates, the demo's own entry point). In the bundle each source keeps the address
 * it has in the installed tree, /usr/lib/vigil/<path in the repository>, where those files are copied.
 */
/**
 * The etcd client (the arbiter, issue 16) loads its gRPC definitions from `${__dirname}/../proto`
 * when it starts, and an ES module bundle has no __dirname: point it at the installed copy instead.
 */
function etcdProtoPath(): Plugin {
  return {
    name: 'etcd-proto-path',
    setup(b) {
      b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        const from = '`${__dirname}/../proto/rpc.proto`';
        if (!text.includes(from)) throw new Error(`${args.path}: the etcd client no longer loads ${from}: update etcdProtoPath`);
        return { contents: text.replace(from, JSON.stringify(`${PREFIX}/node_modules/etcd3/proto/rpc.proto`)), loader: 'js' };
      });
    },
  };
}

function installedMeta(): Plugin {
  return {
    name: 'installed-import-meta',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes('/node_modules/')) return undefined;
        const rel = relative(REPO, args.path);
        const url = `file://${PREFIX}/${rel}`;
        const text = readFileSync(args.path, 'utf8')
          .replaceAll('import.meta.url', JSON.stringify(url))
          .replaceAll('import.meta.dirname', JSON.stringify(dirname(`${PREFIX}/${rel}`)))
          .replaceAll('import.meta.filename', JSON.stringify(`${PREFIX}/${rel}`));
        return { contents: text, loader: 'ts' };
      });
    },
  };
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

function md5(file: string): string {
  return createHash('md5').update(readFileSync(file)).digest('hex');
}

async function main(): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const version = pkg.version;
  const arch = sh('dpkg', ['--print-architecture']);
  const native = KOFFI_NATIVE[arch];
  if (!native) throw new Error(`no koffi build known for Debian architecture ${arch} (known: ${Object.keys(KOFFI_NATIVE).join(', ')})`);
  const dist = join(REPO, 'dist');
  const root = join(dist, 'deb-root');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const at = (p: string) => join(root, p);
  const put = (p: string, content: string | Buffer, mode = 0o644) => {
    mkdirSync(dirname(at(p)), { recursive: true });
    writeFileSync(at(p), content);
    chmodSync(at(p), mode);
  };

  // 1. the bundle
  const bundle = at(`${PREFIX}/bin/vigil.mjs`);
  const result = await build({
    entryPoints: [join(REPO, 'node-service/src/cli/main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    metafile: true,
    external: ['koffi'],
    define: { __VIGIL_VERSION__: JSON.stringify(version) },
    plugins: [installedMeta(), etcdProtoPath()],
    // CommonJS dependencies call require(); give the ES module bundle one.
    banner: { js: "#!/usr/bin/node\nimport { createRequire as __vigilCreateRequire } from 'node:module';\nglobalThis.require ??= __vigilCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  chmodSync(bundle, 0o755);
  const bundleKiB = Math.round(statSync(bundle).size / 1024);

  // 2. koffi (native): its JavaScript and this architecture's glibc binary, not its sources or other platforms
  const koffi = join(REPO, 'node_modules/koffi');
  for (const f of walk(koffi)) {
    const rel = relative(koffi, f);
    // cnoke.cjs and trampolines.cjs build koffi from source: not needed to run it
    if (/\.(c?js|json)$/.test(rel) && !/(^|\/)(cnoke|trampolines)\.cjs$/.test(rel)) put(`${PREFIX}/node_modules/koffi/${rel}`, readFileSync(f));
  }
  const nat = join(REPO, 'node_modules', native.pkg);
  for (const f of ['package.json', 'index.js', `${native.dir}/koffi.node`]) put(`${PREFIX}/node_modules/${native.pkg}/${f}`, readFileSync(join(nat, f)));

  // 2b. the etcd client's protocol definitions, read at run time (etcdProtoPath)
  for (const f of ['rpc.proto', 'kv.proto', 'auth.proto']) put(`${PREFIX}/node_modules/etcd3/proto/${f}`, readFileSync(join(REPO, 'node_modules/etcd3/proto', f)));

  // 3. files the sources read beside themselves (anything in node-service/src that is not code or docs), and templates
  for (const f of walk(join(REPO, 'node-service/src'))) {
    if (!/\.(ts|md)$/.test(f)) put(`${PREFIX}/${relative(REPO, f)}`, readFileSync(f), statSync(f).mode & 0o111 ? 0o755 : 0o644);
  }
  if (existsSync(join(REPO, 'node-service/templates'))) {
    for (const f of walk(join(REPO, 'node-service/templates'))) put(`${PREFIX}/${relative(REPO, f)}`, readFileSync(f), statSync(f).mode & 0o111 ? 0o755 : 0o644);
  }

  // 4. command, unit, configuration, state directory
  mkdirSync(at('/usr/bin'), { recursive: true });
  symlinkSync('../lib/vigil/bin/vigil.mjs', at('/usr/bin/vigil'));
  const unit = readFileSync(join(REPO, 'node-service/systemd/vigil.service'), 'utf8').replace('/usr/bin/env vigil', '/usr/bin/vigil');
  if (!unit.includes('ExecStart=/usr/bin/vigil ')) throw new Error('vigil.service: ExecStart does not run vigil');
  put('/lib/systemd/system/vigil.service', unit);
  put('/etc/vigil/cluster.yaml.example', readFileSync(join(DEB, 'cluster.yaml.example')));
  put('/etc/default/vigil', readFileSync(join(DEB, 'default')));
  mkdirSync(at('/var/lib/vigil'), { recursive: true });
  chmodSync(at('/var/lib/vigil'), 0o750);

  put('/usr/share/lintian/overrides/vigil', readFileSync(join(DEB, 'lintian-overrides'), 'utf8').replaceAll('@KOFFI_PKG@', native.pkg).replaceAll('@KOFFI_DIR@', native.dir));

  // 5. documentation: copyright, changelog, the licenses of what the bundle holds, man page
  const doc = '/usr/share/doc/vigil';
  put(`${doc}/copyright`, readFileSync(join(DEB, 'copyright')));
  const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? Math.floor(Date.now() / 1000)) * 1000).toUTCString().replace('GMT', '+0000');
  put(`${doc}/changelog.gz`, gzipSync(`vigil (${version}) unstable; urgency=medium\n\n  * Release ${version}: see https://github.com/vigil-ha/vigil\n\n -- Vigil maintainers <maintainers@vigil-ha.example>  ${date}\n`, { level: 9 }));
  const bundled = new Map<string, string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) bundled.set(m[1], join(REPO, input.slice(0, m.index + m[0].length)));
  }
  bundled.set('koffi', koffi);
  const licenses = [...bundled.entries()].sort().map(([name, dir]) => {
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; license?: string };
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    return `== ${name} ${meta.version} (${meta.license ?? 'see below'})\n\n${file ? readFileSync(join(dir, file), 'utf8').trim() : '(no license file in the package)'}\n`;
  });
  put(`${doc}/third-party-licenses`, `Packages bundled into /usr/lib/vigil/bin/vigil.mjs or installed in /usr/lib/vigil/node_modules:\n\n${licenses.join('\n')}`);
  put('/usr/share/man/man1/vigil.1.gz', gzipSync(readFileSync(join(DEB, 'vigil.1'), 'utf8').replaceAll('@VERSION@', version), { level: 9 }));

  // 6. control files
  const files = walk(root).filter((f) => !f.startsWith(at('/DEBIAN')));
  const sizeKiB = Math.ceil(files.reduce((n, f) => n + lstatSync(f).size, 0) / 1024);
  const control = readFileSync(join(DEB, 'control'), 'utf8')
    .replace('@VERSION@', version)
    .replace('@ARCH@', arch)
    .replace('@SIZE@', String(sizeKiB))
    .replace('@SHLIBS@', KOFFI_SHLIBS);
  put('/DEBIAN/control', control);
  put('/DEBIAN/conffiles', readFileSync(join(DEB, 'conffiles')));
  for (const s of ['postinst', 'prerm', 'postrm']) put(`/DEBIAN/${s}`, readFileSync(join(DEB, s)), 0o755);
  put('/DEBIAN/md5sums', files.filter((f) => lstatSync(f).isFile()).map((f) => `${md5(f)}  ${relative(root, f)}`).sort().join('\n') + '\n');
  for (const d of walk(root).map((f) => dirname(f))) chmodSync(d, d === at('/var/lib/vigil') ? 0o750 : 0o755);

  const out = join(dist, `vigil_${version}_${arch}.deb`);
  rmSync(out, { force: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, out], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(root, { recursive: true, force: true });
  console.log(`${relative(process.cwd(), out)}: ${(statSync(out).size / 1024 / 1024).toFixed(2)} MiB (installed ${(sizeKiB / 1024).toFixed(1)} MiB, bundle ${bundleKiB} KiB)`);
}

await main();
