/** The channel between the device-loss harness page (engine-loss.ts) and its worker (engine-loss-worker.ts). */
export const CONTROL = 'df11-test-device-loss';
/** 'arm': destroy the device mid-answer in the next chat; 'devices': how many devices the worker made. */
export type ControlRequest = 'arm' | 'devices';
export interface ControlReply {
  devices: number;
}
