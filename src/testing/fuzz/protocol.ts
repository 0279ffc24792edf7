/** Messages between the fuzz runner and its worker processes. */
export type Outcome = 'typed' | 'identical' | 'silent' | 'exception' | 'hang' | 'crash' | 'disagree';

/** The outcomes that fail a fuzz run. */
export const FAILURES: readonly Outcome[] = ['exception', 'hang', 'crash', 'disagree'];

export interface ChildRequest {
  id: number;
  target: string;
  seed: number;
}

/** id -1 = the process is ready. */
export interface ChildReply {
  id: number;
  outcome: Outcome;
  detail?: string;
}
