// The chat demo: load a model (bundled DF11 by default), chat with streaming and a stop button,
// settings, stats, plain-language errors, and a clear message when WebGPU is missing.
import './style.css';
import { registerSW } from 'virtual:pwa-register';
import type { ChatMessage, EngineEvent, LoadProgress } from '../engine/types.ts';
import { isDf11Error } from '../errors.ts';
import { byId, formatBytes } from './dom.ts';
import { hostEngine, type HostedEngine } from './engine-host.ts';
import { explainError } from './explain.ts';
import { adapterBudget } from '../engine/fit.ts';
import { openModelStore, type ModelStore } from '../store/model-store.ts';
import { showFit } from './fit-view.ts';
import { renderStats, residencyText } from './stats-view.ts';
import { renderStorage } from './storage-view.ts';
import { Bubble, Transcript } from './transcript.ts';

const DEFAULT_MODEL = 'models/stories-15m-df11/';

const ui = {
  noWebGpu: byId('no-webgpu'),
  error: byId('error'),
  loadForm: byId<HTMLFormElement>('load-form'),
  modelSelect: byId<HTMLSelectElement>('model-select'),
  modelUrl: byId<HTMLInputElement>('model-url'),
  accessToken: byId<HTMLInputElement>('access-token'),
  budgetGb: byId<HTMLInputElement>('budget-gb'),
  contextLength: byId<HTMLInputElement>('context-length'),
  fitStatus: byId('fit-status'),
  storedModels: byId('stored-models'),
  storageEstimate: byId('storage-estimate'),
  useWorker: byId<HTMLInputElement>('use-worker'),
  weightsMode: byId<HTMLSelectElement>('weights-mode'),
  load: byId<HTMLButtonElement>('load'),
  progress: byId('load-progress'),
  status: byId('load-status'),
  temperature: byId<HTMLInputElement>('temperature'),
  topP: byId<HTMLInputElement>('top-p'),
  maxTokens: byId<HTMLInputElement>('max-tokens'),
  stats: byId('stats'),
  composer: byId<HTMLFormElement>('composer'),
  message: byId<HTMLTextAreaElement>('message'),
  send: byId<HTMLButtonElement>('send'),
  stop: byId<HTMLButtonElement>('stop'),
  clear: byId<HTMLButtonElement>('clear'),
};
const transcript = new Transcript(byId('transcript'));
let store: ModelStore | null = null;

let host: HostedEngine | null = null;
let modelReady = false;
/** The source of the model the engine holds now. */
let loadedSource: string | null = null;
let conversation: ChatMessage[] = [];
let running: AbortController | null = null;
let loading: AbortController | null = null;

function showError(e: unknown): void {
  ui.error.textContent = explainError(e);
  ui.error.hidden = false;
}

function clearError(): void {
  ui.error.hidden = true;
}

function updateControls(): void {
  const busy = running !== null;
  ui.send.disabled = !modelReady || busy;
  ui.message.disabled = !modelReady;
  ui.stop.disabled = !busy;
  ui.load.disabled = busy;
}

function setProgress(fraction: number): void {
  const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  ui.progress.setAttribute('aria-valuenow', String(pct));
  (ui.progress.firstElementChild as HTMLElement).style.width = `${pct}%`;
}

/** `?resident=N`: DF11 layers kept resident in BF16 (default 'auto': as many as the budget allows). */
let residentLayers: number | 'auto' = 'auto';

function describeProgress(p: LoadProgress): string {
  const amount = p.total > 0 ? ` ${formatBytes(p.loaded)} / ${formatBytes(p.total)}` : '';
  if (p.phase === 'download') {
    const rate = p.bytesPerSecond ? `, ${formatBytes(p.bytesPerSecond)}/s` : '';
    const eta = p.etaSeconds != null && p.loaded < p.total ? `, ${Math.ceil(p.etaSeconds)} s left` : '';
    return `Downloading${p.file ? ` ${p.file}` : ''}…${amount}${rate}${eta}`;
  }
  if (p.phase === 'compress') return `Compressing to DF11 (once, stored for next time)… unit ${p.loaded} of ${p.total}${p.file ? ` (${p.file})` : ''}`;
  if (p.phase === 'upload') {
    const plan = p.plan ? ` (context ${p.plan.contextLength.toLocaleString()}, resident BF16: ${residencyText(p.plan.resident)})` : '';
    const units = p.total > 0 ? ` unit ${p.loaded} of ${p.total}` : '';
    return `Uploading weights to the GPU…${units}${plan}`;
  }
  if (p.phase === 'ready') return 'Ready.';
  return 'Preparing the GPU kernels…';
}

/** Device loss and the engine's recovery from it: the status line says what happens; a failed recovery leaves no model. */
function onEngineEvent(event: EngineEvent): void {
  if (event.type === 'device-lost') ui.status.textContent = 'The GPU was reset; loading the model again from storage…';
  else if (event.type === 'recovered') {
    ui.status.textContent = `Recovered from a GPU reset: ${event.model} loaded again from storage, the conversation kept.`;
    void refreshStats();
  } else {
    modelReady = false;
    updateControls();
    ui.status.textContent = 'The GPU was reset and the model could not be loaded again.';
    ui.error.textContent = `The GPU stopped responding and loading the model again failed ${event.attempts} times (${event.error.message}). Load it again, or reload the page.`;
    ui.error.hidden = false;
  }
}

async function refreshStats(): Promise<void> {
  if (host) renderStats(ui.stats, await host.engine.stats(), host.inWorker);
}

async function load(source: string): Promise<void> {
  loading?.abort();
  const controller = (loading = new AbortController());
  clearError();
  // The loaded model keeps answering while another loads, and stays if that load fails (the engine swaps
  // on success only); a new host (worker on/off) starts empty.
  const previous = modelReady ? loadedSource : null;
  if (!host || host.inWorker !== ui.useWorker.checked) {
    await host?.dispose();
    host = hostEngine(ui.useWorker.checked);
    host.engine.onEvent(onEngineEvent);
    modelReady = false;
    loadedSource = null;
  }
  updateControls();
  setProgress(0);
  ui.status.textContent = `Loading ${source}…`;
  const started = performance.now();
  try {
    const context = Number(ui.contextLength.value);
    const result = await host.engine.load(source, {
      mode: ui.weightsMode.value === 'bf16' || ui.weightsMode.value === 'df11' ? ui.weightsMode.value : undefined,
      residentLayers,
      signal: controller.signal,
      accessToken: ui.accessToken.value.trim() || undefined,
      budget: budgetEdited ? budgetBytes() : undefined,
      contextLength: ui.contextLength.value !== '' && context > 0 ? Math.floor(context) : undefined,
      onProgress: (p) => {
        if (p.total > 0) setProgress(p.loaded / p.total);
        ui.status.textContent = describeProgress(p);
      },
    });
    setProgress(1);
    modelReady = true;
    loadedSource = source;
    conversation = [];
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    ui.status.textContent = `Ready: ${source} (${result.contextLength.toLocaleString()} tokens of context, loaded in ${seconds} s).`;
    await refreshStats();
  } catch (e) {
    if (controller.signal.aborted) return;
    ui.status.textContent = previous && modelReady ? `${source} could not be loaded; still using ${previous}.` : 'The model could not be loaded.';
    showError(e);
  } finally {
    if (loading === controller) loading = null;
    updateControls();
    void refreshStorage();
  }
}

/** The budget input in bytes (GB = GiB). */
function budgetBytes(): number {
  return Math.round(Number(ui.budgetGb.value) * 2 ** 30);
}

/** Whether the user set the budget (else the engine's default applies, less what a loaded model holds). */
let budgetEdited = false;

async function refreshStorage(): Promise<void> {
  try {
    store ??= openModelStore();
    await renderStorage(ui.storedModels, ui.storageEstimate, store, showError);
  } catch (e) {
    showError(e);
  }
}

function selectedSource(): string {
  return ui.modelUrl.value.trim() || ui.modelSelect.value;
}

async function refreshFit(): Promise<void> {
  if (budgetBytes() > 0) await showFit(ui.fitStatus, selectedSource(), budgetBytes(), ui.accessToken.value.trim() || undefined);
}

async function send(text: string): Promise<void> {
  if (!host || !modelReady || running) return;
  clearError();
  conversation.push({ role: 'user', content: text });
  transcript.add(new Bubble('user', text));
  const bubble = transcript.add(new Bubble('assistant'));
  bubble.setState('streaming');
  const controller = (running = new AbortController());
  updateControls();
  try {
    const stream = await host.engine.chat.completions.create({
      messages: conversation,
      stream: true,
      temperature: Number(ui.temperature.value),
      top_p: Number(ui.topP.value),
      max_tokens: Number(ui.maxTokens.value),
      signal: controller.signal,
    });
    let finish = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        bubble.append(choice.delta.content);
        transcript.scroll();
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    bubble.setState('done', finish === 'length' ? 'Reached the token limit.' : '');
  } catch (e) {
    if (isDf11Error(e, 'aborted')) bubble.setState('stopped', 'Stopped.');
    else {
      bubble.setState('error', 'No answer.');
      showError(e);
    }
  } finally {
    if (bubble.text) conversation.push({ role: 'assistant', content: bubble.text });
    running = null;
    updateControls();
    await refreshStats().catch(() => undefined);
  }
}

async function populateModels(): Promise<void> {
  const group = (label: string): HTMLOptGroupElement => {
    const g = document.createElement('optgroup');
    g.label = label;
    ui.modelSelect.append(g);
    return g;
  };
  const bundled = group('Bundled');
  try {
    const response = await fetch('models/index.json');
    const index = (await response.json()) as { models: { name: string; path: string; files: { size: number }[] }[] };
    for (const m of index.models) {
      const size = m.files.reduce((a, f) => a + f.size, 0);
      bundled.append(new Option(`${m.name} (${formatBytes(size)})`, `${m.path}/`));
    }
  } catch {
    bundled.append(new Option('stories-15m-df11', DEFAULT_MODEL));
  }
  // Well-known hub repos (public/curated-models.json); sizes: BF16 = 2 bytes per weight, DF11 ≈ 0.68 of it.
  try {
    const response = await fetch('curated-models.json');
    const curated = (await response.json()) as { models: { name: string; repo: string; parameters: number; format: 'bf16' | 'df11' }[] };
    const hub = group('Hugging Face');
    for (const m of curated.models) {
      const bf16 = 2 * m.parameters;
      const sizes = `${(m.parameters / 1e9).toFixed(2)}B, DF11 ≈ ${formatBytes(0.68 * bf16)} / BF16 ${formatBytes(bf16)}`;
      hub.append(new Option(`${m.name} (${sizes})`, `https://huggingface.co/${m.repo}`));
    }
  } catch {
    // the curated list is optional
  }
  ui.modelSelect.value = DEFAULT_MODEL;
}

/** The default budget from the adapter (src/model/budget.ts), shown in the budget input. */
async function initBudget(): Promise<void> {
  const budget = await adapterBudget().catch(() => ({ budgetBytes: 4 * 2 ** 30 }));
  ui.budgetGb.value = String(Math.round((budget.budgetBytes / 2 ** 30) * 4) / 4);
}

function wireEvents(): void {
  for (const [input, out] of [[ui.temperature, 'temperature-value'], [ui.topP, 'top-p-value']] as const) {
    const show = () => (byId(out).textContent = input.value);
    input.addEventListener('input', show);
    show();
  }
  ui.loadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void load(ui.modelUrl.value.trim() || ui.modelSelect.value);
  });
  ui.modelSelect.addEventListener('change', () => {
    ui.modelUrl.value = '';
    void refreshFit();
  });
  ui.modelUrl.addEventListener('change', () => void refreshFit());
  ui.budgetGb.addEventListener('change', () => {
    budgetEdited = true;
    void refreshFit();
  });
  for (const setting of [ui.useWorker, ui.weightsMode]) {
    setting.addEventListener('change', () => {
      if (modelReady || loading) void load(ui.modelUrl.value.trim() || ui.modelSelect.value);
    });
  }
  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = ui.message.value.trim();
    if (!text) return;
    ui.message.value = '';
    void send(text);
  });
  ui.message.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.stop.addEventListener('click', () => running?.abort());
  ui.clear.addEventListener('click', () => {
    running?.abort();
    conversation = [];
    transcript.clear();
  });
}

async function hasWebGpu(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

async function start(): Promise<void> {
  registerSW({ immediate: true });
  wireEvents();
  updateControls();
  const params = new URLSearchParams(location.search);
  if (params.get('worker') === '0') ui.useWorker.checked = false;
  const mode = params.get('mode');
  if (mode === 'bf16' || mode === 'df11') ui.weightsMode.value = mode;
  const resident = params.get('resident'); // DF11 layers kept decoded (the memory/speed dial); default auto
  if (resident !== null && /^\d+$/.test(resident)) residentLayers = Number(resident);
  if (!(await hasWebGpu())) {
    ui.noWebGpu.hidden = false;
    ui.status.textContent = 'WebGPU is not available in this browser.';
    ui.load.disabled = true;
    return;
  }
  await Promise.all([populateModels(), initBudget()]);
  void refreshFit();
  await load(params.get('model') ?? DEFAULT_MODEL);
}

void start();
