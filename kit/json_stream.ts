/** JSON answers too large to build in memory, streamed as the client reads them. */

/**
 * The JSON array of `items`, written as the client takes it: the source is pulled only
 * when the client has read what came before, so memory stays at about one item.
 */
export function jsonArrayStream(items: AsyncIterable<unknown>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator = items[Symbol.asyncIterator]();
  let first = true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) {
        controller.enqueue(encoder.encode(first ? "[]" : "]"));
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode((first ? "[" : ",") + JSON.stringify(next.value)));
      first = false;
    },
    async cancel() {
      await iterator.return?.();
    },
  }, { highWaterMark: 0 });
}
