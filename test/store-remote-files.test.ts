/** A remote directory read in place: Range reads checked against what was asked, a server ignoring Range, typed errors. */
import { describe, expect, it } from 'vitest';
import { remoteModelFiles } from '../src/store/remote-files.ts';
import { codeOf } from '../src/testing/error-code.ts';

const DIR = 'https://hub.test/org/m/resolve/main/';
const DATA = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
const LISTING = [{ name: 'model.safetensors', size: DATA.length, sha256: null }];

type Answer = (range: [number, number]) => Response;

function serve(answer: Answer) {
  const asked: string[] = [];
  const fetchFn = async (_url: string, init?: RequestInit): Promise<Response> => {
    const range = new Headers(init?.headers).get('range') ?? '';
    asked.push(`${range} ${init?.cache}`);
    const [, b, e] = /^bytes=(\d+)-(\d+)$/.exec(range)!;
    return answer([Number(b), Number(e) + 1]);
  };
  return { asked, file: () => remoteModelFiles(DIR, LISTING, fetchFn).open('model.safetensors') };
}

const partial: Answer = ([b, e]) => new Response(DATA.slice(b, e), { status: 206, headers: { 'content-range': `bytes ${b}-${e - 1}/${DATA.length}` } });

describe('remote model files', () => {
  it('reads exactly the bytes asked for, one Range request each, bypassing the HTTP cache', async () => {
    const { asked, file } = serve(partial);
    const source = await file();
    expect(source.size).toBe(1000);
    expect([...(await source.read(100, 164))]).toEqual([...DATA.slice(100, 164)]);
    expect([...(await source.read(999, 1000))]).toEqual([DATA[999]]);
    expect(asked).toEqual(['bytes=100-163 no-store', 'bytes=999-999 no-store']);
  });

  it('a server that ignores Range (200, whole file): the bytes asked for are cut out of the body', async () => {
    const { file } = serve(() => new Response(DATA.slice(), { status: 200 }));
    expect([...(await (await file()).read(500, 520))]).toEqual([...DATA.slice(500, 520)]);
  });

  it('a wrong Content-Range or a short body is a network error; 401/403 are access-denied', async () => {
    const shifted = serve(([b, e]) => new Response(DATA.slice(b + 1, e + 1), { status: 206, headers: { 'content-range': `bytes ${b + 1}-${e}/${DATA.length}` } }));
    expect(await codeOf((await shifted.file()).read(10, 20))).toBe('network');
    const short = serve(([b, e]) => new Response(DATA.slice(b, e - 1), { status: 206, headers: { 'content-range': `bytes ${b}-${e - 1}/${DATA.length}` } }));
    expect(await codeOf((await short.file()).read(10, 20))).toBe('network');
    const shortWhole = serve(() => new Response(DATA.slice(0, 15), { status: 200 }));
    expect(await codeOf((await shortWhole.file()).read(10, 20))).toBe('network');
    for (const status of [401, 403]) expect(await codeOf((await serve(() => new Response('', { status })).file()).read(0, 8))).toBe('access-denied');
    expect(await codeOf((await serve(partial).file()).read(990, 1001))).toBe('bad-request');
  });
});
