/** The dashboard's static files: read once from `static/`, served with ETags and a strict CSP. */
import type { Context } from "hono";
import { NotFoundError } from "../../storage/errors.ts";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
};

/**
 * Everything the page loads comes from the head: no inline script or style, no other
 * origin, no framing (so no page can trick a click on Stop).
 */
const PAGE_HEADERS = {
  "content-security-policy": [
    "default-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

/** The files under a directory, served by their path relative to it. */
export class Assets {
  #dir: URL;
  #extra: Record<string, string>;
  #files: Promise<Map<string, Asset>> | undefined;

  /**
   * `dir`: a `file:` URL ending in `/`. `extra`: more files, by path, with their text.
   * Nothing is read until the first request.
   */
  constructor(dir: URL, extra: Record<string, string> = {}) {
    this.#dir = dir;
    this.#extra = extra;
  }

  /** Answers with file `path`; throws NotFoundError when there is none. */
  async serve(c: Context, path: string): Promise<Response> {
    this.#files ??= this.#load();
    const asset = (await this.#files).get(path);
    if (!asset) throw new NotFoundError(`No file "${path}" in the dashboard`);
    return answer(c, asset);
  }

  /**
   * Answers with a module's view script, read from `file` at each request (a module's
   * files are its own: the head does not keep them).
   */
  static async serveScript(c: Context, file: URL): Promise<Response> {
    return answer(c, await toAsset(await Deno.readFile(file), TYPES.js));
  }

  async #load(): Promise<Map<string, Asset>> {
    const files = new Map<string, Asset>();
    const walk = async (dir: URL, prefix: string) => {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isDirectory) {
          await walk(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`);
          continue;
        }
        const type = TYPES[entry.name.split(".").pop() ?? ""];
        if (!entry.isFile || !type) continue;
        const body = await Deno.readFile(new URL(entry.name, dir));
        files.set(`${prefix}${entry.name}`, await toAsset(body, type));
      }
    };
    await walk(this.#dir, "");
    for (const [path, text] of Object.entries(this.#extra)) {
      const type = TYPES[path.split(".").pop() ?? ""];
      files.set(path, await toAsset(new TextEncoder().encode(text), type));
    }
    return files;
  }
}

async function toAsset(body: Uint8Array<ArrayBuffer>, type: string): Promise<Asset> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const etag = `"${
    Array.from(hash.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("")
  }"`;
  return { body, type, etag };
}

function answer(c: Context, asset: Asset): Response {
  const headers: Record<string, string> = {
    ...PAGE_HEADERS,
    "content-type": asset.type,
    "cache-control": "no-cache",
    etag: asset.etag,
  };
  if (c.req.header("if-none-match") === asset.etag) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(asset.body, { headers });
}
