/** Model URLs are http(s) only, and a remote shard index cannot name files outside the model directory. */
import { describe, expect, it } from 'vitest';
import { directoryUrl, listRemoteFiles, type FetchFn } from '../src/store/listing.ts';
import { codeOf, codeOfCall } from '../src/testing/error-code.ts';

describe('model URLs', () => {
  it('http(s) URLs and page-relative paths are accepted', () => {
    expect(directoryUrl('https://example.com/m')).toBe('https://example.com/m/');
    expect(directoryUrl('models/x', 'http://localhost:4173/')).toBe('http://localhost:4173/models/x/');
  });

  it('other schemes are a bad request', () => {
    for (const url of ['javascript:alert(1)', 'data:text/plain,x', 'file:///etc/', 'blob:https://a/b', 'ftp://example.com/m/']) {
      expect(codeOfCall(() => directoryUrl(url, 'https://example.com/')), url).toBe('bad-request');
    }
  });
});

describe('remote shard index', () => {
  /** A server with config.json and an index whose weight map names `shard`. */
  const server = (shard: unknown): FetchFn => async (url) => {
    const name = url.slice('https://example.com/m/'.length);
    const body: Record<string, unknown> = {
      'config.json': { model_type: 'llama' },
      'model.safetensors.index.json': { weight_map: { 'model.norm.weight': shard } },
    };
    if (name in body) return new Response(JSON.stringify(body[name]), { headers: { 'content-type': 'application/json' } });
    return new Response('', { status: 404 });
  };

  it('shard names leading outside the directory are rejected before any request for them', async () => {
    for (const shard of ['../x.safetensors', '/x.safetensors', '.', '', null, 'a/b.safetensors']) {
      expect(await codeOf(listRemoteFiles('https://example.com/m/', server(shard))), String(shard)).toBe('config');
    }
  });
});
