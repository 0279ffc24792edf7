// The package's Node entry (df11-web/node): the engine on Dawn with the WGSL bundled into the build.
import { afterAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { browserShaders } from '../src/gpu/shaders-browser.ts';
import { nodeShaders } from '../src/gpu/node.ts';
import { createNodeEngine } from '../src/node.ts';
import { refs } from './engine-scripted.ts';

const engine = createNodeEngine();
afterAll(() => engine.unload(), 60_000);

describe('df11-web/node', () => {
  it('bundles exactly the shaders/*.wgsl the repository reads from disk', () => {
    expect(new Map([...browserShaders].sort())).toEqual(new Map([...nodeShaders()].sort()));
  });

  it('createNodeEngine loads a model directory and answers with the greedy reference', { timeout: 300_000 }, async () => {
    await engine.load('models/stories-15m', { mode: 'bf16', contextLength: 32 });
    const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a story about Max.' }], temperature: 0, max_tokens: 3 });
    const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
    expect(reply.choices[0].message.content).toBe(tokenizer.decode(refs[2].greedy_ids.slice(0, 3)));
  });
});
