/**
 * The default GPU memory budget, from what the browser and adapter report. WebGPU reports no memory size,
 * so this is a documented heuristic, and callers (the demo's budget control, `load({ budget })`) override it:
 *
 *   budget = clamp(BUFFERS_PER_BUDGET · maxBufferSize, MIN, MAX)
 *   and, where the browser reports navigator.deviceMemory (GiB of RAM, rounded, reported up to 8) below 8,
 *   at most half of it (phones and small laptops share that memory with the GPU).
 *
 * Why maxBufferSize: the adapter promises one buffer of that size, so the GPU has at least that much
 * memory; desktop GPUs report 2–4 GiB and more, phones 256 MiB–1 GiB, so twice it is a cautious guess.
 */
export const GIB = 2 ** 30;
export const BUFFERS_PER_BUDGET = 2;
export const MIN_BUDGET_BYTES = 1 * GIB;
export const MAX_BUDGET_BYTES = 16 * GIB;

export interface BudgetHints {
  /** navigator.deviceMemory, where the browser reports it. */
  deviceMemoryGiB?: number;
}

export function defaultBudgetBytes(limits: Pick<GPUSupportedLimits, 'maxBufferSize'>, hints: BudgetHints = {}): number {
  let budget = Math.min(Math.max(BUFFERS_PER_BUDGET * limits.maxBufferSize, MIN_BUDGET_BYTES), MAX_BUDGET_BYTES);
  const ram = hints.deviceMemoryGiB;
  if (ram !== undefined && Number.isFinite(ram) && ram > 0 && ram < 8) budget = Math.min(budget, Math.floor((ram * GIB) / 2));
  return Math.floor(budget);
}

/** The hints this environment gives (none in Node). */
export function environmentHints(): BudgetHints {
  const ram = (globalThis.navigator as { deviceMemory?: unknown } | undefined)?.deviceMemory;
  return typeof ram === 'number' ? { deviceMemoryGiB: ram } : {};
}
