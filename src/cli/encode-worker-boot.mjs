// Loads the TypeScript encoder worker through tsx (worker threads do not inherit the parent's loader).
const { register } = await import('tsx/esm/api');
register();
await import(new URL('./encode-worker.ts', import.meta.url).href);
