import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../node-service/src/demo/local-cluster.ts';
import { runScript, type ScriptContext } from '../../node-service/src/scripts/runner.ts';
import { View } from '../../node-service/src/mirror/view.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-scripts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): void {
  const f = join(dir, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
}

const ctx: ScriptContext = { dir, module: 'mod', node: 'node1', state: 'SECOND', nextState: 'ALONE', timeoutMs: 2000, stopTimeoutMs: 500 };

describe('script runner (real processes)', () => {
  it('passes (state, next_state, action) and the VIGIL_* environment, and captures output', async () => {
    script('start_prim', 'echo "args=$1,$2,$3 env=$VIGIL_MODULE,$VIGIL_NODE,$VIGIL_STATE,$VIGIL_NEXT_STATE,$VIGIL_ACTION"');
    const [r] = await runScript(ctx, 'start_prim', false);
    expect(r).toMatchObject({ ok: true, ran: true, code: 0 });
    expect(r.output.trim()).toBe('args=SECOND,ALONE,start env=mod,node1,SECOND,ALONE,start');
  });

  it('a missing script is not an error', async () => {
    const [r] = await runScript(ctx, 'poststop', true);
    expect(r).toMatchObject({ ok: true, ran: false });
  });

  it('a failing start script reports its exit status', async () => {
    script('start_second', 'echo broken >&2; exit 3');
    const [r] = await runScript(ctx, 'start_second', false);
    expect(r).toMatchObject({ ok: false, code: 3 });
    expect(r.output).toMatch(/broken/);
  });

  it('a hanging start script is killed at its timeout, with its children', async () => {
    script('prestart', `sleep 30 & echo $! > ${dir}/child.pid; wait`);
    const t0 = Date.now();
    const [r] = await runScript({ ...ctx, timeoutMs: 300 }, 'prestart', false);
    expect(r).toMatchObject({ ok: false, timedOut: true });
    expect(Date.now() - t0).toBeLessThan(5000);
    const child = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    // gone, or a zombie waiting for init to reap it: either way no longer running
    let state = 'gone';
    try {
      state = readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1][0];
    } catch {
      /* gone */
    }
    expect(['gone', 'Z']).toContain(state);
  });

  it('a stop script that fails runs again with force', async () => {
    script('stop_prim', 'echo "$3"; [ "$3" = force ]');
    const runs = await runScript(ctx, 'stop_prim', true);
    expect(runs.map((r) => [r.action, r.ok])).toEqual([['graceful', false], ['force', true]]);
  });
});

describe('scripts in a real daemon', () => {
  let c: LocalCluster | undefined;
  afterEach(async () => {
    await c?.destroy();
    c = undefined;
  });

  it('a failing start_prim never leads to PRIM: the node waits and the failure is in vigil log', async () => {
    c = new LocalCluster({ module: { default_primary: 'node1' }, scripts: { start_prim: 'echo "cannot start" >&2; exit 7' } });
    c.start('node1');
    c.start('node2');
    const deadline = Date.now() + 30_000;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      const s = await c.status('node1');
      if (s) seen.push(s.state);
      if (s?.state === 'WAIT' && seen.length > 5) {
        const log = (await (await fetch(c.url('node1', '/api/v1/modules/app/log?n=100'), { headers: { authorization: `Bearer ${c.token}` } })).json()) as { kind: string; script?: string; code?: number; output?: string }[];
        const run = log.find((r) => r.kind === 'script' && r.script === 'start_prim');
        if (run) {
          expect(run).toMatchObject({ code: 7, output: expect.stringMatching(/cannot start/) });
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    seen = [...new Set(seen)];
    expect(seen).not.toContain('PRIM');
    expect(seen).not.toContain('ALONE');
    expect(await c.ready('node1')).toBe(false);
  });
});

describe('scripts inside a replicated directory', () => {
  it('a script that lives in a FUSE view served by this very process runs (no spawn deadlock)', async () => {
    // GIVEN a view served by this process, with the module's scripts inside it
    const root = mkdtempSync(join(tmpdir(), 'vigil-scripts-view-'));
    const back = join(root, 'backing');
    const mnt = join(root, 'view');
    mkdirSync(back);
    mkdirSync(mnt);
    writeFileSync(join(back, 'start_prim'), '#!/bin/sh\necho "ran in $(pwd) as $1"\n');
    chmodSync(join(back, 'start_prim'), 0o755);
    const view = new View(0, mnt, back, { writable: () => true, replicate: () => Promise.resolve(), replicateFsync: (_d, _m, l) => l(), diverged: () => undefined });
    await view.mount();
    try {
      // WHEN the runner starts it (exec and cwd both inside the view)
      const [r] = await runScript({ ...ctx, dir: mnt }, 'start_prim', false);
      // THEN it ran to completion instead of hanging the daemon
      expect(r).toMatchObject({ ok: true, ran: true, code: 0 });
      expect(r.output.trim()).toBe(`ran in ${mnt} as SECOND`);
    } finally {
      await view.unmount();
      rmSync(root, { recursive: true, force: true });
    }
  }, 20_000);
});
