// The demo's engine worker (src/worker/worker.ts) plus what e2e/device-loss.spec.ts needs: once armed
// (a message on the CONTROL BroadcastChannel), the GPU device is destroyed at its first submit after the
// worker posted the answer's first text, i.e. while the next decode step's work is in flight.
import { createEngine } from '../src/engine/engine.ts';
import { exposeEngine } from '../src/worker/expose.ts';
import type { WorkerMessage } from '../src/worker/protocol.ts';
import { CONTROL, type ControlReply, type ControlRequest } from './engine-loss-control.ts';

const devices: GPUDevice[] = [];
const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...args: Parameters<GPUAdapter['requestDevice']>) {
  const device = await requestDevice.apply(this, args);
  devices.push(device);
  return device;
};

let armed = false;
let destroyAtNextSubmit = false;
const submit = GPUQueue.prototype.submit;
GPUQueue.prototype.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
  submit.apply(this, args);
  if (!destroyAtNextSubmit) return;
  destroyAtNextSubmit = false;
  devices.find((d) => d.queue === this)?.destroy();
};

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = scope.postMessage.bind(scope) as (message: WorkerMessage) => void;
scope.postMessage = ((message: WorkerMessage) => {
  post(message);
  if (armed && message.type === 'event' && message.method === 'chatStream' && message.event.choices[0]?.delta.content) {
    armed = false;
    destroyAtNextSubmit = true;
  }
}) as typeof scope.postMessage;

const control = new BroadcastChannel(CONTROL);
control.onmessage = (event: MessageEvent<ControlRequest>) => {
  if (event.data === 'arm') armed = true;
  if (event.data === 'arm' || event.data === 'devices') control.postMessage({ devices: devices.length } satisfies ControlReply);
};

exposeEngine(createEngine());
