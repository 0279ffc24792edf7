import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ChatTemplate } from '../src/engine/chat-template.ts';
import { StreamingDetokenizer, TextTokenizer } from '../src/engine/tokenizer.ts';
import { memoryFiles } from '../src/format/memory-files.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { codeOf } from '../src/testing/error-code.ts';
import { readTextRefs } from '../src/testing/model-reference.ts';

const refs = readTextRefs('models/stories-15m');
const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));

describe('TextTokenizer (stories-15m, byte-level BPE)', () => {
  it.each(refs.map((r, i) => [i, r] as const))('encodes reference prompt %i to its input_ids', (_, ref) => {
    expect(tokenizer.encode(ref.prompt)).toEqual(ref.input_ids);
  });

  it.each(refs.map((r, i) => [i, r] as const))('decodes greedy_ids of prompt %i to greedy_text', (_, ref) => {
    expect(tokenizer.decode(ref.greedy_ids)).toBe(ref.greedy_text);
  });

  it('knows the special tokens and leaves them out of decoded text', () => {
    expect([...tokenizer.specialIds].sort()).toEqual([0, 1, 2]);
    expect(tokenizer.decode([1, ...refs[0].input_ids, 2])).toBe(refs[0].prompt);
    expect(tokenizer.specialToken('eos_token')).toBe('<|endoftext|>');
  });

  it('renders the ChatML template to the reference chat prompt', async () => {
    const template = await ChatTemplate.fromFiles(directoryFiles('models/stories-15m'), tokenizer);
    expect(template).not.toBeNull();
    const text = template!.render([{ role: 'user', content: 'Tell me a story about Max.' }], true);
    expect(text).toBe(refs[2].prompt);
    expect(tokenizer.encode(text)).toEqual(refs[2].input_ids);
    expect(template!.render([{ role: 'user', content: 'x' }], false)).toBe('<|im_start|>user\nx<|im_end|>\n');
  });
});

describe('where the chat template lives', () => {
  /** stories-15m's files in memory, with `extra` added (tokenizer_config.json keeps its own ChatML template). */
  const withFiles = (extra: Record<string, string>) => {
    const files = new Map(['tokenizer.json', 'tokenizer_config.json'].map((n) => [n, new Uint8Array(readFileSync(`models/stories-15m/${n}`))]));
    for (const [n, text] of Object.entries(extra)) files.set(n, new TextEncoder().encode(text));
    return memoryFiles(files);
  };
  const render = async (extra: Record<string, string>) =>
    (await ChatTemplate.fromFiles(withFiles(extra), tokenizer))?.render([{ role: 'user', content: 'hi' }], false);

  it('chat_template.jinja wins over chat_template.json, which wins over tokenizer_config.json', async () => {
    const jinja = '{% for m in messages %}J:{{ m.content }}{% endfor %}';
    const json = JSON.stringify({ chat_template: '{% for m in messages %}S:{{ m.content }}{% endfor %}' });
    expect(await render({})).toBe('<|im_start|>user\nhi<|im_end|>\n');
    expect(await render({ 'chat_template.json': json })).toBe('S:hi');
    expect(await render({ 'chat_template.json': json, 'chat_template.jinja': jinja })).toBe('J:hi');
  });

  it('a chat_template.json that is not JSON is a config error', async () => {
    expect(await codeOf(ChatTemplate.fromFiles(withFiles({ 'chat_template.json': '{' }), tokenizer))).toBe('config');
  });
});

describe('StreamingDetokenizer', () => {
  it('streams greedy_ids into exactly greedy_text', () => {
    for (const ref of refs) {
      const stream = new StreamingDetokenizer(tokenizer);
      const pieces = ref.greedy_ids.map((id) => stream.push(id));
      expect(pieces.join('') + stream.flush()).toBe(ref.greedy_text);
    }
  });

  it('never emits half a character when byte-level tokens split one', () => {
    const text = 'Größe: 42 € — 猫が好き 🐈‍⬛ ok';
    const ids = tokenizer.encode(text);
    expect(ids.length).toBeGreaterThan([...text].length / 2); // the vocab lacks most of these: byte tokens
    const stream = new StreamingDetokenizer(tokenizer);
    const pieces = ids.map((id) => stream.push(id));
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    expect(pieces.some((p) => p === '')).toBe(true); // some tokens end mid-character
    expect(pieces.join('') + stream.flush()).toBe(text);
  });

  it('flushes an incomplete character at the end as U+FFFD', () => {
    const ids = tokenizer.encode('é');
    expect(ids.length).toBe(2);
    const stream = new StreamingDetokenizer(tokenizer);
    expect(stream.push(ids[0])).toBe('');
    expect(stream.flush()).toBe('\uFFFD');
  });
});
