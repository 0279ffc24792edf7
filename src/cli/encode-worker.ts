/** A worker_threads encoder (see src/format/unit-encoder.ts): one request at a time, replies with transfers. */
import { parentPort } from 'node:worker_threads';
import { handleEncodeRequest, type EncodeRequest } from '../format/unit-encoder.ts';

parentPort!.on('message', (request: EncodeRequest) => {
  const { reply, transfer } = handleEncodeRequest(request);
  parentPort!.postMessage(reply, transfer);
});
