/** Which typed error a failure is, for tests that check failure modes: 'ok' when there was none. */
import { Df11Error, type ErrorCode } from '../errors.ts';

/** The Df11Error code `p` rejects with ('ok' if it resolves); any other rejection is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return df11Code(e);
  }
}

/** The Df11Error code `f()` throws ('ok' if it returns); any other exception is rethrown. */
export function codeOfCall(f: () => unknown): ErrorCode | 'ok' {
  try {
    f();
    return 'ok';
  } catch (e) {
    return df11Code(e);
  }
}

function df11Code(e: unknown): ErrorCode {
  if (e instanceof Df11Error) return e.code;
  throw e;
}

/** What `p` rejects with; fails the test if it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
