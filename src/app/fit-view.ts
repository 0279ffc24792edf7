/** "Does it fit here?" for the chosen model: config.json only, planned against the budget (src/engine/fit.ts). */
import { checkFit, type ModeFit } from '../engine/fit.ts';
import { formatBytes } from './dom.ts';
import { explainError } from './explain.ts';

const mode = (label: string, f: ModeFit): string =>
  f.fits ? `${label}: fits, ${f.maxContext.toLocaleString()} tokens of context (${f.weightsEstimated ? '≈' : ''}${formatBytes(f.weightBytes)} of weights)` : `${label}: does not fit`;

export async function showFit(out: HTMLElement, source: string, budgetBytes: number, accessToken: string | undefined): Promise<void> {
  out.textContent = 'Checking whether it fits…';
  try {
    const fit = await checkFit(source, { budgetBytes }, { accessToken });
    out.dataset.fits = String(fit.df11.fits);
    out.textContent = `${(fit.parameters / 1e6).toFixed(0)}M parameters, ${fit.format.toUpperCase()} repo. At ${formatBytes(budgetBytes)}: ${mode('DF11', fit.df11)}; ${mode('BF16', fit.bf16)}.`;
  } catch (e) {
    delete out.dataset.fits;
    out.textContent = `Cannot tell whether it fits: ${explainError(e)}`;
  }
}
