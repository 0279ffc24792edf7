import { expect, test } from '@playwright/test';

// The DF11 decode kernel in Chromium (SwiftShader WebGPU here): GPU output == CPU decoder, bit for bit.
test('DF11 GPU decode in the browser matches the CPU decoder', async ({ page }) => {
  test.setTimeout(300_000);
  await page.goto('/test-pages/decode.html?n=200003&seed=3');
  const result = page.locator('#result');
  await expect(result).toHaveAttribute('data-state', /done|error/, { timeout: 280_000 });
  const text = (await result.textContent()) ?? '';
  expect(await result.getAttribute('data-state'), text).toBe('done');
  const report = JSON.parse(text) as { elements: number; unitMismatch: number; matrixMismatch: number[]; rowsMismatch: number; corruptCode: string };
  expect(report.elements).toBeGreaterThan(190_000);
  expect(report.unitMismatch).toBe(-1);
  expect(report.matrixMismatch).toEqual([-1, -1]);
  expect(report.rowsMismatch).toBe(-1);
  expect(report.corruptCode).toBe('corrupt-stream');
});
