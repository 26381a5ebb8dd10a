import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Debian's chromium, headless, with a fresh profile; nothing is downloaded (puppeteer-core ships no
 * browser). Fails loudly when the package is missing (scripts/packages/test-console.txt installs it).
 * With `netns`, chromium runs inside that network namespace (the only way to reach a test LAN's
 * 198.18.x addresses); puppeteer then talks to it over pipes, which `ip netns exec` passes on.
 */
export async function launchChromium(o: { netns?: string; args?: readonly string[] } = {}): Promise<{ browser: Browser; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/setup-system.sh installs it)`);
  const profile = mkdtempSync(join(tmpdir(), 'vigil-chromium-'));
  let executablePath = CHROMIUM;
  if (o.netns) {
    executablePath = join(profile, 'chromium-in-netns.sh');
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${o.netns} ${CHROMIUM} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  const browser = await puppeteer.launch({
    executablePath,
    pipe: o.netns !== undefined,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${join(profile, 'profile')}`, ...(o.args ?? [])],
    defaultViewport: { width: 1360, height: 900 },
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** opens the console at `url` and logs in with `token` */
export async function loginConsole(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#login-form', { visible: true });
  await page.type('#token', token);
  await page.click('#login-button');
  await page.waitForSelector('#app:not([hidden])');
}
