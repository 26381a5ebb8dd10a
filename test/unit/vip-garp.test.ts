import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Two namespaces of this test's own (sm-gh holds the VIP, sm-gc is a client with a stale ARP entry for
// it), joined by a veth pair, addresses from 198.18.175.0/24. The daemon's code runs in a child
// process inside sm-gh, as the daemon runs inside its node's namespace.
const H = 'sm-gh';
const C = 'sm-gc';
const VIP = '198.18.175.100';
const FAKE = '02:00:00:00:00:99';
const sh = (...args: string[]) => execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
const drop = () => {
  for (const ns of [H, C]) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* absent */ }
};

/** runs TS code in the holder's namespace and returns what it prints */
function inHolder(code: string): string {
  return execFileSync('ip', ['netns', 'exec', H, process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', cwd: process.cwd() });
}

const clientEntry = () => (JSON.parse(sh('ip', '-n', C, '-j', 'neigh', 'show', 'to', VIP)) as { lladdr?: string }[])[0]?.lladdr;

describe('gratuitous ARP from the daemon process (packet socket)', () => {
  beforeAll(() => {
    drop();
    sh('ip', 'netns', 'add', H);
    sh('ip', 'netns', 'add', C);
    sh('ip', 'link', 'add', 'sm-gh0', 'netns', H, 'type', 'veth', 'peer', 'name', 'sm-gc0', 'netns', C);
    sh('ip', '-n', H, 'link', 'set', 'sm-gh0', 'up');
    sh('ip', '-n', C, 'link', 'set', 'sm-gc0', 'up');
    sh('ip', '-n', H, 'addr', 'add', '198.18.175.1/24', 'dev', 'sm-gh0');
    sh('ip', '-n', C, 'addr', 'add', '198.18.175.2/24', 'dev', 'sm-gc0');
  });
  afterAll(drop);

  it('a takeover moves a client\'s cached entry to the holder\'s MAC, with no arping process', () => {
    sh('ip', '-n', C, 'neigh', 'replace', VIP, 'lladdr', FAKE, 'dev', 'sm-gc0', 'nud', 'stale');
    expect(clientEntry()).toBe(FAKE);
    const out = inHolder(`
      import { VipManager, localSys } from './node-service/src/vip/index.ts';
      import { silentLogger } from './node-service/src/log/logger.ts';
      const sys = localSys();
      // an arping that cannot run: the packets must not need it
      const m = new VipManager({ vips: [{ addr: '${VIP}/24', interface: 'sm-gh0' }], arp: { count: 3, interval: 50 }, log: silentLogger(), sys: { ...sys, arping: ['/nonexistent/arping'] } });
      await m.takeover();
      await new Promise((r) => setTimeout(r, 200));
      console.log(JSON.stringify({ socket: sys.garp !== undefined, sent: m.arpSent }));
      await m.release();
      m.close();
    `);
    expect(JSON.parse(out)).toEqual({ socket: true, sent: 3 });
    const mac = (JSON.parse(sh('ip', '-n', H, '-j', 'link', 'show', 'sm-gh0')) as { address: string }[])[0].address;
    expect(clientEntry()).toBe(mac);
  });

  it('a link that is not Ethernet is announced by arping, as before the socket', () => {
    // arping refuses lo (exit 2), and says so: the warning carries arping's exit code, not the socket's reason
    const out = inHolder(`
      import { Writable } from 'node:stream';
      import { VipManager } from './node-service/src/vip/index.ts';
      import { createLogger } from './node-service/src/log/logger.ts';
      const lines = [];
      const destination = new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c))); cb(); } });
      const m = new VipManager({ vips: [{ addr: '127.0.0.9/8', interface: 'lo' }], arp: { count: 1, interval: 50 }, log: createLogger({ level: 'info', destination }) });
      await m.takeover();
      await new Promise((r) => setTimeout(r, 1500));
      await m.release();
      m.close();
      console.log(JSON.stringify(lines.filter((l) => /gratuitous ARP/.test(l.msg))));
    `);
    const warnings = JSON.parse(out) as { msg: string; code?: number; err?: string }[];
    expect(warnings).toMatchObject([{ msg: 'gratuitous ARP not sent', code: 2 }]);
    expect(warnings[0].err).toBeUndefined();
  });

  it('names the reason when a packet cannot go out (no such interface, not Ethernet)', () => {
    const out = inHolder(`
      import { GarpSocket } from './node-service/src/vip/garp.ts';
      const s = GarpSocket.open();
      const why = (dev) => { try { s.send(dev, '${VIP}'); return 'sent'; } catch (e) { return e.message; } };
      console.log(JSON.stringify([why('vigil-absent0'), why('lo'), why('sm-gh0')]));
      s.close();
    `);
    const [absent, lo, ok] = JSON.parse(out) as string[];
    expect(absent).toMatch(/vigil-absent0: ENODEV/);
    expect(lo).toMatch(/lo is not Ethernet/);
    expect(ok).toBe('sent');
  });
});
