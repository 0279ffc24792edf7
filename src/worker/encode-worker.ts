// A Web Worker that encodes DF11 units for the compress-once pool (src/format/unit-encoder.ts).
import { handleEncodeRequest, type EncodeRequest } from '../format/unit-encoder.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;
scope.onmessage = (event: MessageEvent<EncodeRequest>) => {
  const { reply, transfer } = handleEncodeRequest(event.data);
  scope.postMessage(reply, transfer);
};
