/**
 * A fuzz worker process (forked by runner.ts): runs the cases it is sent, one at a time, and answers
 * each with its outcome. A case that throws anything but a Df11Error answers 'exception'. The parent
 * owns the time limit: a case that does not answer in time is a hang, and the process is killed.
 */
import { cpuTargets, type FuzzTarget } from './cpu-targets.ts';
import { gpuTarget, type GpuTarget } from './gpu-target.ts';
import type { ChildReply, ChildRequest } from './protocol.ts';

/** Targets that misbehave on purpose, so the runner's own classification is tested (test/fuzz.test.ts). */
const SELF_TESTS: FuzzTarget[] = [
  {
    name: 'self-test-hang',
    run: async () => {
      for (;;);
    },
  },
  { name: 'self-test-crash', run: async () => process.exit(3) },
  {
    name: 'self-test-throw',
    run: async () => {
      throw new TypeError('thrown on purpose');
    },
  },
];

const cpu = new Map<string, FuzzTarget>([...cpuTargets(), ...SELF_TESTS].map((t) => [t.name, t]));
let gpu: Promise<GpuTarget> | undefined;

async function target(name: string): Promise<FuzzTarget | GpuTarget> {
  if (name === 'gpu') return (gpu ??= gpuTarget());
  const t = cpu.get(name);
  if (!t) throw new Error(`no fuzz target '${name}'`);
  return t;
}

const send = (reply: ChildReply): void => {
  process.send!(reply);
};

process.on('message', (request: ChildRequest) => {
  void (async () => {
    try {
      const outcome = await (await target(request.target)).run(request.seed);
      send({ id: request.id, outcome });
    } catch (e) {
      send({ id: request.id, outcome: 'exception', detail: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
send({ id: -1, outcome: 'identical' }); // ready
