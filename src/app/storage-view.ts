/**
 * The demo's storage manager: stored models with their size, a verify button (re-hash every stored chunk;
 * damaged ones are fetched again) and a delete button, and the browser's quota.
 */
import type { ModelStore } from '../store/model-store.ts';
import { formatBytes } from './dom.ts';

export async function renderStorage(list: HTMLElement, estimate: HTMLElement, store: ModelStore, onError: (e: unknown) => void): Promise<void> {
  const models = await store.list();
  const rows = await Promise.all(
    models.map(async (m) => {
      const li = document.createElement('li');
      const label = document.createElement('span');
      const size = await store.size(m.id);
      const state = m.state === 'complete' ? '' : ` (incomplete: ${m.filesComplete} of ${m.filesTotal} files)`;
      label.textContent = `${m.id} — ${formatBytes(size)}${state}`;
      const result = document.createElement('span');
      result.className = 'muted';
      result.setAttribute('role', 'status');
      const verify = document.createElement('button');
      verify.type = 'button';
      verify.textContent = 'Verify';
      verify.className = 'secondary';
      verify.setAttribute('aria-label', `Verify ${m.id}`);
      verify.disabled = m.state !== 'complete';
      verify.addEventListener('click', () => {
        verify.disabled = true;
        result.textContent = 'Verifying…';
        store
          .verify(m.id)
          .then((refetched) => (result.textContent = verifiedText(refetched)))
          .catch((e: unknown) => {
            result.textContent = 'Verification failed.';
            onError(e);
          })
          .finally(() => (verify.disabled = false));
      });
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Delete';
      remove.className = 'secondary';
      remove.setAttribute('aria-label', `Delete ${m.id}`);
      remove.addEventListener('click', () => {
        remove.disabled = true;
        store
          .delete(m.id)
          .then(() => renderStorage(list, estimate, store, onError))
          .catch(onError);
      });
      li.append(label, result, verify, remove);
      return li;
    }),
  );
  list.replaceChildren(...rows);
  if (rows.length === 0) {
    const empty = document.createElement('li');
    empty.className = 'muted';
    empty.textContent = 'No models stored.';
    list.append(empty);
  }
  const quota = await globalThis.navigator?.storage?.estimate?.().catch(() => undefined);
  estimate.textContent = quota?.quota ? `Browser storage: ${formatBytes(quota.usage ?? 0)} used of ${formatBytes(quota.quota)} available to this site.` : '';
}

/** What a verify run found: the count of damaged chunks it fetched again. */
function verifiedText(refetched: number): string {
  if (refetched === 0) return 'Verified: every chunk intact.';
  return `Verified: ${refetched} damaged chunk${refetched === 1 ? '' : 's'} fetched again.`;
}
