import assert from "node:assert/strict";
import { MMAP_THRESHOLD_BYTES } from "./allocator.ts";

/**
 * In a process of its own (the setting is process-wide): how many of 400 buffers of the
 * threshold's size glibc gives mappings of their own, before and after the call. 12.5 MiB
 * each time outgrows the free top of the heap, which glibc serves from first. The chunk
 * header before a buffer says whether it is mapped (bit 1 of its size word, IS_MMAPPED).
 */
const PROBE = `
import { MMAP_THRESHOLD_BYTES, returnLargeBuffersToTheSystem } from ${
  JSON.stringify(new URL("./allocator.ts", import.meta.url).href)
};
const libc = Deno.dlopen("libc.so.6", {
  malloc: { parameters: ["usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
});
const mappedOf400 = () => {
  const buffers = Array.from({ length: 400 }, () => libc.symbols.malloc(MMAP_THRESHOLD_BYTES));
  const mapped = buffers.filter((buffer) => {
    const sizeWord = new Deno.UnsafePointerView(Deno.UnsafePointer.offset(buffer, -8));
    return (sizeWord.getBigUint64() & 2n) !== 0n;
  }).length;
  for (const buffer of buffers) libc.symbols.free(buffer);
  return mapped;
};
const before = mappedOf400();
const applied = returnLargeBuffersToTheSystem();
console.log(JSON.stringify({ before, applied, after: mappedOf400() }));
`;

Deno.test("buffers of the threshold's size get mappings of their own", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--allow-ffi", "--allow-read", PROBE],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const probe = JSON.parse(new TextDecoder().decode(stdout));
  assert.ok(MMAP_THRESHOLD_BYTES < 128 * 1024, "below glibc's own starting threshold");
  assert.equal(probe.before, 0, "glibc's default serves them from its heap");
  assert.equal(probe.applied, true);
  assert.ok(probe.after > 0, `${probe.after} of 400 mapped`);
});
