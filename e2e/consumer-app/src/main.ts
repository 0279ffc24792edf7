// What an app writes to chat with a model in a worker (README "Use it in your app").
import { createWorkerEngine, isDf11Error, type ChatCompletion, type LoadProgress } from 'df11-web';

const engine = createWorkerEngine(new Worker(new URL('./df11.worker.ts', import.meta.url), { type: 'module' }));
const progress: LoadProgress[] = [];

async function main(): Promise<void> {
  // mode 'bf16': the CI browser is SwiftShader, where per-layer DF11 decoding is slow
  await engine.load('/models/stories-15m-df11/', { mode: 'bf16', onProgress: (p) => progress.push(p) });
  const messages = [{ role: 'user' as const, content: 'Tell me a story about Max.' }];
  const reply: ChatCompletion = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 2 });
  document.body.dataset.answer = reply.choices[0].message.content;
  document.body.dataset.usage = JSON.stringify(reply.usage);
  document.body.dataset.logprobs = String(reply.choices[0].logprobs?.content.length);
  document.body.dataset.progress = String(progress.length > 0);
  try {
    await engine.chat.completions.create({ messages, n: 2 });
  } catch (e) {
    if (isDf11Error(e, 'unsupported-parameter')) document.body.dataset.refused = e.message;
  }
  // the shipped types are real types, not `any`: a wrong role does not compile
  // @ts-expect-error 'robot' is not a Role
  const wrong: Parameters<typeof engine.chat.completions.create>[0] = { messages: [{ role: 'robot', content: '' }] };
  void wrong;
}

main().catch((e: unknown) => {
  document.body.dataset.error = isDf11Error(e) ? `${e.code}: ${e.message}` : String(e);
});
