/**
 * A minimal `fetch` on node:http for the store's Node tests. Node's built-in fetch (undici) can leave a
 * body read pending forever when the server cuts the connection mid-body, which would hang the
 * dropped-connection tests; node:http reports the cut as an error, as browsers do. It also counts the
 * body bytes that reach the client.
 */
import { request } from 'node:http';

export interface CountingFetch {
  fetch: (input: string, init?: RequestInit) => Promise<Response>;
  /** Body bytes received so far. */
  received(): number;
}

export function nodeHttpFetch(): CountingFetch {
  let received = 0;
  const fetchFn = (input: string, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(new DOMException('aborted', 'AbortError'));
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const req = request(input, { method: init.method ?? 'GET', headers, signal }, (res) => {
        const body =
          init.method === 'HEAD'
            ? null
            : new ReadableStream<Uint8Array>({
                start(controller) {
                  let complete = false;
                  res.on('data', (piece: Buffer) => {
                    received += piece.byteLength;
                    controller.enqueue(new Uint8Array(piece));
                  });
                  res.on('end', () => {
                    complete = true;
                    controller.close();
                  });
                  res.on('close', () => {
                    if (!complete) controller.error(new TypeError('network error: connection closed mid-body'));
                  });
                  res.on('error', (e) => controller.error(e));
                },
                cancel: () => void res.destroy(),
              });
        const responseHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
        resolve(new Response(body, { status: res.statusCode ?? 0, headers: responseHeaders }));
      });
      req.on('error', (e) => reject(signal?.aborted ? new DOMException('aborted', 'AbortError') : new TypeError(e.message)));
      req.end();
    });
  return { fetch: fetchFn, received: () => received };
}
