import { describe, expect, it } from 'vitest';
import { modelDirectoryUrl } from '../src/engine/model-source.ts';

describe('modelDirectoryUrl', () => {
  it('turns Hugging Face repo pages into resolve directories', () => {
    expect(modelDirectoryUrl('https://huggingface.co/DFloat11/Llama-3.2-1B-DF11')).toBe('https://huggingface.co/DFloat11/Llama-3.2-1B-DF11/resolve/main/');
    expect(modelDirectoryUrl('https://huggingface.co/owner/repo.v2/tree/dev/')).toBe('https://huggingface.co/owner/repo.v2/resolve/dev/');
  });

  it('keeps directory URLs, adding the trailing slash', () => {
    expect(modelDirectoryUrl('https://example.org/models/stories-15m-df11')).toBe('https://example.org/models/stories-15m-df11/');
    const resolve = 'https://huggingface.co/owner/repo/resolve/main/';
    expect(modelDirectoryUrl(resolve)).toBe(resolve);
  });
});
