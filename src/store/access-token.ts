/**
 * An access token (a Hugging Face token for gated or private repos) sent only to the model's own origin.
 *
 * Requests to `origin` carry `Authorization: Bearer <token>` and are made with `redirect: 'manual'`, so the
 * token never follows a redirect to another origin (the hub answers weight files with a 302 to its CDN):
 * where the redirect's Location is readable (Node), it is followed here without the header; where it is
 * not (browsers return an opaque redirect), the request is repeated with `redirect: 'follow'`, and the
 * Fetch standard has the browser drop `Authorization` on a cross-origin redirect. Requests to any other
 * origin go out unchanged.
 */
import type { FetchFn } from './listing.ts';

/** Redirects followed by hand before giving up (fetch's own limit is 20). */
const MAX_REDIRECTS = 20;

export function withAccessToken(fetchFn: FetchFn, token: string, origin: string): FetchFn {
  const authorization = `Bearer ${token}`;
  return async (input, init = {}) => {
    if (new URL(input).origin !== origin) return fetchFn(input, init);
    const headers = new Headers(init.headers);
    headers.set('Authorization', authorization);
    let response = await fetchFn(input, { ...init, headers, redirect: 'manual' });
    if (response.type === 'opaqueredirect') return fetchFn(input, { ...init, headers, redirect: 'follow' });
    let url = input;
    for (let hops = 0; isRedirect(response.status) && hops < MAX_REDIRECTS; hops++) {
      const location = response.headers.get('location');
      if (location === null) break;
      url = new URL(location, url).href;
      const sameOrigin = new URL(url).origin === origin;
      const next = new Headers(init.headers);
      if (sameOrigin) next.set('Authorization', authorization);
      // Another origin: no token, and fetch follows any further redirects itself.
      response = await fetchFn(url, { ...init, headers: next, redirect: sameOrigin ? 'manual' : 'follow' });
      if (!sameOrigin) break;
    }
    return response;
  };
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}
