/**
 * Typed errors. Every failure the library reports is a `Df11Error` with a stable `code`, so callers
 * (and the worker protocol, which sends `{ name, code, message }`) can branch on it without parsing
 * messages. Add a code here rather than throwing a plain `Error`.
 */
export type ErrorCode =
  // format: files and configs
  | 'safetensors-header' // header length, JSON or shape invalid
  | 'safetensors-bounds' // a tensor's bytes lie outside the file or overlap another
  | 'dtype' // a tensor has a dtype the caller cannot use
  | 'missing-tensor'
  | 'config' // config.json missing a field or holding a bad value
  | 'unsupported-architecture'
  | 'unsupported-format' // a model layout this library does not read (DFloat11 v0.1 pickles: layer_N.pkl, decode.ptx)
  | 'corrupt-stream' // DF11 data that cannot be decoded (zero code length, bad pointer, counts disagree)
  | 'unencodable' // weights DF11 cannot represent (exponent >= 240: Inf, NaN, huge)
  // gpu
  | 'no-webgpu'
  | 'device-lost'
  | 'out-of-memory'
  | 'gpu-validation'
  | 'gpu-limits' // the model needs more than the adapter's limits allow (maxBufferSize, maxStorageBufferBindingSize…)
  // store
  | 'network'
  | 'access-denied' // HTTP 401/403: a gated or private repo (give an access token)
  | 'integrity'
  | 'quota-exceeded'
  | 'storage'
  // engine
  | 'context-overflow'
  | 'not-loaded'
  | 'aborted'
  | 'bad-request'
  | 'unsupported-parameter' // an OpenAI request field the engine does not implement (n > 1, tools, response_format); the message names it
  | 'model-too-large'
  | 'internal'; // an unexpected exception (a bug), wrapped so callers still get a code

export class Df11Error extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'Df11Error';
  }

  /** The plain shape that crosses a worker boundary. */
  toJSON(): SerializedError {
    return { name: this.name, code: this.code, message: this.message };
  }
}

export interface SerializedError {
  name: string;
  code: ErrorCode;
  message: string;
}

export function isDf11Error(e: unknown, code?: ErrorCode): e is Df11Error {
  return e instanceof Df11Error && (code === undefined || e.code === code);
}

/** Rebuild a typed error on the far side of a worker boundary. */
export function deserializeError(e: SerializedError): Df11Error {
  const err = new Df11Error(e.code, e.message);
  err.name = e.name;
  return err;
}
