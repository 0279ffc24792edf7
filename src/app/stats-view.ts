import type { EngineStats } from '../engine/types.ts';
import { formatBytes } from './dom.ts';

/** Fills the stats panel's <dl> from the engine's stats. */
export function renderStats(root: HTMLElement, stats: EngineStats, inWorker: boolean): void {
  const rows: [string, string][] = [];
  rows.push(['Engine', inWorker ? 'Web Worker' : 'Main thread']);
  if (stats.last) {
    rows.push(['Prefill', `${stats.last.prefillTokensPerSecond.toFixed(1)} tok/s (${stats.last.prefillTokens} tokens)`]);
    rows.push(['Decode', `${stats.last.decodeTokensPerSecond.toFixed(1)} tok/s (${stats.last.completionTokens} tokens)`]);
  }
  const m = stats.memory;
  if (m && stats.df11) {
    rows.push(['Weights', m.weightMode === 'df11'
      ? `${formatBytes(stats.df11.storedBytes)} DF11 vs ${formatBytes(stats.df11.bf16Bytes)} BF16 (${(stats.df11.ratio * 100).toFixed(1)}%)`
      : `${formatBytes(m.weightBytes)} BF16`]);
    if (m.weightMode === 'df11') rows.push(['Saved', formatBytes(stats.df11.bf16Bytes - stats.df11.storedBytes)]);
    if (m.weightMode === 'df11') rows.push(['Resident BF16', residencyText(m.resident)]);
    rows.push(['KV cache', `${stats.contextLength.toLocaleString()} tokens (${formatBytes(m.kvCacheBytes)})`]);
    rows.push(['In use', `${stats.position.toLocaleString()} tokens`]);
    rows.push(['GPU memory', formatBytes(m.weightBytes + m.transientBytes + m.kvCacheBytes + m.activationBytes)]);
  }
  root.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    return [dt, dd];
  }));
}

/** The memory/speed dial as a line: "12 of 32 layers + head". */
export function residencyText(r: NonNullable<EngineStats['memory']>['resident']): string {
  return `${r.layers} of ${r.totalLayers} layers${r.head ? ' + head' : ''}`;
}
