import { expect, test } from '@playwright/test';

test('without WebGPU the page says so plainly instead of failing silently', async ({ page }) => {
  await page.addInitScript(() => {
    // a browser without WebGPU: no navigator.gpu at all
    delete (Navigator.prototype as unknown as { gpu?: unknown }).gpu;
  });
  await page.goto('/');
  const alert = page.locator('#no-webgpu');
  await expect(alert).toBeVisible();
  await expect(alert).toContainText('WebGPU is not available');
  await expect(page.getByRole('button', { name: 'Send' })).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Load' })).toBeDisabled();
  await page.screenshot({ path: 'e2e/artifacts/no-webgpu.png' });
});
