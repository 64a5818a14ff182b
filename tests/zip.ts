/** Zip archives for the packages the tests upload, written with zip.js (as the client does). */
import { TextReader, Uint8ArrayReader, Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";

/**
 * Builds a zip archive holding `files` (path → contents), stored uncompressed: its size is
 * the size of its contents, and no ratio limit of the head comes into play.
 */
export async function makeZip(
  files: Record<string, string | Uint8Array>,
): Promise<Uint8Array<ArrayBuffer>> {
  const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false, level: 0 });
  for (const [path, contents] of Object.entries(files)) {
    const reader = typeof contents === "string"
      ? new TextReader(contents)
      : new Uint8ArrayReader(contents);
    await zip.add(path, reader);
  }
  return await zip.close() as Uint8Array<ArrayBuffer>;
}
