import { isDf11Error, type ErrorCode } from '../errors.ts';

/** What to tell a person when something fails, by error code. */
const PLAIN: Partial<Record<ErrorCode, string>> = {
  'no-webgpu': 'This browser cannot use the GPU (WebGPU is not available).',
  'device-lost': 'The GPU stopped responding (the browser reset it). The model loads again by itself; then send the message again.',
  'out-of-memory': 'The GPU ran out of memory. Try a smaller model or close other GPU-heavy tabs.',
  'model-too-large': 'This model does not fit in the GPU memory this browser allows.',
  network: 'The model could not be downloaded. Check the address and your connection.',
  integrity: 'The downloaded model files are damaged. They will be fetched again next time.',
  'quota-exceeded': 'There is not enough storage space for this model. Free some space or delete stored models.',
  storage: 'The browser storage (IndexedDB) failed. Private windows sometimes block it.',
  'context-overflow': 'The conversation is longer than the model can remember. Start a new chat.',
  'not-loaded': 'No model is loaded yet.',
  'unsupported-architecture': 'This kind of model is not supported yet.',
  'unsupported-format': 'These model files are in a layout this app cannot read.',
  'access-denied': 'The model host refused access (a gated or private repo: accept its terms and give an access token).',
  'gpu-limits': 'This model needs larger GPU buffers than this browser or GPU allows.',
  config: 'The model files are incomplete or not in a format this app understands.',
  'bad-request': 'One of the settings is out of range.',
  'corrupt-stream': 'The compressed weights are damaged and cannot be decoded.',
  'missing-tensor': 'The model files are incomplete (a weight is missing).',
  dtype: 'The model stores its weights in a number format this app cannot run.',
  'safetensors-header': 'A weight file of the model is damaged or not a safetensors file.',
  'safetensors-bounds': 'A weight file of the model is damaged or truncated.',
  'gpu-validation': 'The GPU rejected a computation (a bug, or a GPU this app does not support yet).',
  internal: 'An unexpected error happened (a bug in this app).',
};

export function explainError(e: unknown): string {
  if (isDf11Error(e)) {
    const plain = PLAIN[e.code];
    return plain ? `${plain} (${e.message})` : `Something went wrong: ${e.message}`;
  }
  return `Something went wrong: ${e instanceof Error ? e.message : String(e)}`;
}
