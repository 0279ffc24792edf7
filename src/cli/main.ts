import type { Command } from './command.ts';
import { Df11Error } from '../errors.ts';

/** Every subcommand, each in its own module under commands/. */
const COMMANDS: Array<() => Promise<Command>> = [
  () => import('./commands/compress.ts').then((m) => m.command),
  () => import('./commands/decompress.ts').then((m) => m.command),
  () => import('./commands/verify.ts').then((m) => m.command),
  () => import('./commands/build-models.ts').then((m) => m.command),
  () => import('./commands/plan.ts').then((m) => m.command),
  () => import('./commands/logits.ts').then((m) => m.command),
  () => import('./commands/run.ts').then((m) => m.command),
];

export async function main(argv: string[]): Promise<number> {
  const commands = await Promise.all(COMMANDS.map((load) => load()));
  const [name, ...args] = argv;
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const width = Math.max(...commands.map((c) => c.name.length), 0);
    const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
    const out = `usage: df11 <command> [options]\n\ncommands:\n${list}\n\n'df11 <command> --help' shows a command's options.\n`;
    if (name === undefined || name === '--help' || name === '-h') {
      process.stdout.write(out);
      return 0;
    }
    process.stderr.write(`df11: unknown command '${name}'\n\n${out}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (e) {
    if (e instanceof Df11Error) {
      process.stderr.write(`df11 ${command.name}: error [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
