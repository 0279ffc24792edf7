/**
 * Validation of the OpenAI request surface: fields the engine implements are checked, fields it does not
 * are refused with Df11Error('unsupported-parameter') naming the field, never silently ignored.
 * The sampling fields themselves are checked by the Sampler (sampler.ts).
 */
import { Df11Error } from '../errors.ts';
import type { ChatCompletionRequestBase, SamplingOptions } from './types.ts';

/** OpenAI's cap on top_logprobs. */
export const MAX_TOP_LOGPROBS = 20;

/** What a chat request asks for beyond sampling, once validated. */
export interface ChatRequestPlan {
  /** null: no logprobs; else how many alternatives per token (0..MAX_TOP_LOGPROBS). */
  topLogprobs: number | null;
}

/** Throws unsupported-parameter for n > 1, tools, tool_choice and JSON response formats; bad-request for bad values. */
export function validateChatRequest(request: ChatCompletionRequestBase): ChatRequestPlan {
  if (!Array.isArray(request.messages) || request.messages.length === 0) {
    throw new Df11Error('bad-request', 'messages must be a non-empty array');
  }
  const { n, tools, tool_choice, response_format, logprobs, top_logprobs } = request;
  if (n !== undefined && n !== null) {
    if (!Number.isInteger(n) || n < 1) throw new Df11Error('bad-request', 'n must be an integer >= 1');
    if (n > 1) throw unsupported('n', 'one choice per request (n = 1); send several requests instead');
  }
  if (tools !== undefined && tools !== null && (!Array.isArray(tools) || tools.length > 0)) {
    throw unsupported('tools', 'function calling is not implemented');
  }
  if (tool_choice !== undefined && tool_choice !== null && tool_choice !== 'none') {
    throw unsupported('tool_choice', 'function calling is not implemented');
  }
  if (response_format !== undefined && response_format !== null && response_format.type !== 'text') {
    throw unsupported('response_format', `only { type: 'text' } is implemented, not ${JSON.stringify(response_format.type)}`);
  }
  if (logprobs !== undefined && logprobs !== null && typeof logprobs !== 'boolean') {
    throw new Df11Error('bad-request', 'logprobs must be a boolean');
  }
  if (top_logprobs !== undefined && top_logprobs !== null) {
    if (!Number.isInteger(top_logprobs) || top_logprobs < 0 || top_logprobs > MAX_TOP_LOGPROBS) {
      throw new Df11Error('bad-request', `top_logprobs must be an integer in [0, ${MAX_TOP_LOGPROBS}]`);
    }
    if (!logprobs) throw new Df11Error('bad-request', 'top_logprobs needs logprobs: true');
  }
  return { topLogprobs: logprobs ? (top_logprobs ?? 0) : null };
}

/** The completion token cap: max_completion_tokens or max_tokens (Infinity when neither is given). */
export function maxCompletionTokens(options: SamplingOptions): number {
  const { max_tokens: legacy, max_completion_tokens: current } = options;
  if (legacy != null && current != null && legacy !== current) {
    throw new Df11Error('bad-request', `max_tokens (${legacy}) and max_completion_tokens (${current}) disagree; give one`);
  }
  const max = current ?? legacy ?? Infinity;
  if (!(max >= 1) || (max !== Infinity && !Number.isInteger(max))) {
    throw new Df11Error('bad-request', `${current != null ? 'max_completion_tokens' : 'max_tokens'} must be an integer >= 1`);
  }
  return max;
}

function unsupported(field: string, why: string): Df11Error {
  return new Df11Error('unsupported-parameter', `${field}: ${why}`);
}
