/** reference.json of a model directory: HF transformers outputs (fp32 compute on the BF16 weights). Node only. */
import { readFileSync } from 'node:fs';

export interface ModelRef {
  input_ids: number[];
  last_logits: number[];
  argmax_per_position: number[];
  greedy_ids: number[];
}

/** A ref of the bundled text models (models/*), which also keep the prompt and the decoded greedy text. */
export interface TextRef extends ModelRef {
  prompt: string;
  greedy_text: string;
}

export function readRefs(dir: string): ModelRef[] {
  return (JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as { refs: ModelRef[] }).refs;
}

export function readTextRefs(dir: string): TextRef[] {
  return readRefs(dir) as TextRef[];
}
