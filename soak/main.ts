/**
 * `npm run soak -- --minutes N [--seed S] [--from K] [--episodes M] [--kinds a,b] [--no-arbiter] [--no-split-brain]`:
 * the fault-injection soak (with an etcd arbiter unless --no-arbiter);
 * `npm run soak -- --scale`: 64 mirror modules on one pair and a 5-node farm. See soak/README.md.
 */
import { parseArgs } from 'node:util';
import { soakReport, saveReport } from './report.ts';
import { ARBITER_KINDS, KINDS, type Kind, SPLIT_BRAIN_KINDS } from './nemesis.ts';
import { runSoak } from './run.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    seed: { type: 'string' },
    from: { type: 'string' },
    episodes: { type: 'string' },
    scale: { type: 'boolean', default: false },
    modules: { type: 'string' },
    kinds: { type: 'string' },
    'no-split-brain': { type: 'boolean', default: false },
    'no-arbiter': { type: 'boolean', default: false },
    // a second soak beside a running one needs its own namespaces and subnet (e.g. --prefix sq --subnet 198.18.174)
    prefix: { type: 'string' },
    subnet: { type: 'string' },
  },
});

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} ${v}: must be a non-negative number (e.g. --${name} ${dflt})`);
    process.exit(2);
  }
  return n;
}

if (values.scale) {
  const { runScale } = await import('./scale.ts');
  await runScale({ modules: int('modules', values.modules, 64) });
} else {
  const seed = int('seed', values.seed, Math.floor(Math.random() * 2 ** 31));
  let kinds: readonly Kind[] | undefined;
  if (values.kinds !== undefined) {
    const asked = values.kinds.split(',').map((k) => k.trim());
    const unknown = asked.filter((k) => !(KINDS as readonly string[]).includes(k));
    if (unknown.length || asked.length === 0) {
      console.error(`--kinds ${values.kinds}: unknown ${unknown.join(', ') || '(none given)'}; choose among ${KINDS.join(', ')}`);
      process.exit(2);
    }
    kinds = asked as Kind[];
  }
  const arbiter = !values['no-arbiter'];
  if (!arbiter) {
    const asked = (kinds ?? []).filter((k) => ARBITER_KINDS.includes(k));
    if (asked.length) {
      console.error(`--kinds ${asked.join(',')}: faults of the arbiter need one; drop --no-arbiter or these kinds`);
      process.exit(2);
    }
  }
  if (values['no-split-brain']) kinds = (kinds ?? KINDS).filter((k) => !SPLIT_BRAIN_KINDS.includes(k));
  const r = await runSoak({
    minutes: int('minutes', values.minutes, 3),
    seed,
    from: int('from', values.from, 0),
    episodes: values.episodes === undefined ? undefined : int('episodes', values.episodes, 1),
    kinds,
    arbiter,
    prefix: values.prefix,
    subnet: values.subnet,
  });
  const text = soakReport(r);
  const file = saveReport(r, text);
  console.log(text.replace(/\nRESULT/, `\nreport: ${file}\nRESULT`));
  process.exit(r.violations.length ? 1 : 0);
}
