/** The demo's storage manager: stored models with their size and a delete button, and the browser's quota. */
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
      li.append(label, remove);
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
