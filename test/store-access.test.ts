/** Gated repos: the access token goes to the model's origin only, and 401/403 are access-denied. */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import { openModel } from '../src/format/model-reader.ts';
import { withAccessToken } from '../src/store/access-token.ts';
import { openModelStore } from '../src/store/model-store.ts';
import { codeOf } from '../src/testing/error-code.ts';
import { qwen3FourB } from './official-layouts.ts';

const HUB = 'https://hub.test';
const CDN = 'https://cdn.test';
const DIR = `${HUB}/org/gated/resolve/main/`;
const TOKEN = 'hf_secret';

interface Seen {
  url: string;
  authorization: string | null;
  range: string | null;
}

/**
 * The hub's behaviour for a gated repo: every file under DIR needs the token (401 without, 403 with a wrong
 * one); .safetensors files answer 302 to the CDN (with X-Linked-Size), which serves them to anyone.
 */
function gatedHub(files: Map<string, Uint8Array>, seen: Seen[]) {
  return async (url: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    seen.push({ url, authorization: headers.get('authorization'), range: headers.get('range') });
    const head = init.method === 'HEAD';
    if (url.startsWith(`${CDN}/`)) {
      const data = files.get(url.slice(CDN.length + 1))!;
      return new Response(head ? null : (data as Uint8Array<ArrayBuffer>), { headers: { 'content-length': String(data.length) } });
    }
    const name = url.slice(DIR.length);
    const data = files.get(name);
    const auth = headers.get('authorization');
    if (auth === null) return new Response('gated', { status: 401 });
    if (auth !== `Bearer ${TOKEN}`) return new Response('forbidden', { status: 403 });
    if (!data) return new Response('', { status: 404 });
    if (name.endsWith('.safetensors')) {
      const redirect = new Response(null, { status: 302, headers: { location: `${CDN}/${name}`, 'x-linked-size': String(data.length) } });
      if (init.redirect === 'manual') return redirect;
      return gatedHub(files, seen)(`${CDN}/${name}`, { ...init, headers: {} }); // a browser drops Authorization cross-origin
    }
    return new Response(head ? null : (data as Uint8Array<ArrayBuffer>), { headers: { 'content-length': String(data.length) } });
  };
}

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
});

describe('withAccessToken', () => {
  it('sends the token to the model origin, follows the 302 to the CDN without it, keeps Range', async () => {
    const seen: Seen[] = [];
    const files = new Map([['w.safetensors', new Uint8Array(100)]]);
    const f = withAccessToken(gatedHub(files, seen), TOKEN, HUB);
    const r = await f(`${DIR}w.safetensors`, { headers: { Range: 'bytes=10-' } });
    expect(r.status).toBe(200);
    expect(seen).toEqual([
      { url: `${DIR}w.safetensors`, authorization: `Bearer ${TOKEN}`, range: 'bytes=10-' },
      { url: `${CDN}/w.safetensors`, authorization: null, range: 'bytes=10-' },
    ]);
    await f(`${CDN}/w.safetensors`);
    expect(seen.at(-1)!.authorization).toBeNull();
  });

  it('an opaque redirect (a browser hiding Location) is repeated with redirect: follow', async () => {
    const calls: RequestInit[] = [];
    const opaque = { type: 'opaqueredirect', status: 0, headers: new Headers() } as Response;
    const f = withAccessToken(async (_url, init = {}) => (calls.push(init), init.redirect === 'manual' ? opaque : new Response('ok')), TOKEN, HUB);
    expect(await (await f(`${DIR}x`)).text()).toBe('ok');
    expect(calls.map((c) => c.redirect)).toEqual(['manual', 'follow']);
  });
});

describe('a gated repo through the model store', () => {
  it('without a token is access-denied; with a wrong one too; with the right one it loads, and the CDN never sees it', async () => {
    const files = await qwen3FourB();
    const seen: Seen[] = [];
    const store = openModelStore({ fetch: gatedHub(files, seen), locks: undefined });
    expect(await codeOf(store.fetchModel(DIR))).toBe('access-denied');
    expect(await codeOf(store.fetchModel(DIR, { accessToken: 'hf_wrong' }))).toBe('access-denied');
    const stored = await store.fetchModel(DIR, { accessToken: TOKEN });
    expect((await openModel(stored)).unitNames).toEqual(['model.layers.0', 'model.layers.1']);
    expect(seen.some((s) => s.url.startsWith(CDN))).toBe(true);
    for (const s of seen) if (!s.url.startsWith(`${HUB}/`)) expect(s.authorization, s.url).toBeNull();
  });
});
