import { expect, test } from '@playwright/test';
import { SLOW, waitReady } from './chat-helpers.ts';

test('the demo runs under its Content-Security-Policy: no inline script, the model loads, nothing is blocked', async ({ page }) => {
  test.setTimeout(SLOW + 60_000);
  await page.addInitScript(() => {
    const w = window as unknown as { cspViolations: string[] };
    w.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto('/');
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain('connect-src \'self\' https:');
  expect(await page.locator('script:not([src])').count()).toBe(0);
  await waitReady(page);
  // an inline script is refused
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true';
    document.head.append(s);
  });
  expect(await page.evaluate(() => (window as unknown as { inlineRan?: boolean }).inlineRan)).toBeUndefined();
  const violations = await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);
  expect(violations.filter((v) => !v.startsWith('script-src-elem inline') && !v.startsWith('script-src inline'))).toEqual([]);
});
