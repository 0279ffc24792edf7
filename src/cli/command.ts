/** One CLI subcommand. Text meant for pipes goes to stdout; progress and stats go to stderr. */
export interface Command {
  name: string;
  /** One line for `df11 --help`. */
  summary: string;
  /** Full usage text for `df11 <name> --help`. */
  usage: string;
  /** Returns the process exit code. */
  run(args: string[]): Promise<number>;
}
