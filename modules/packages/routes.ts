/** HTTP routes of the packages API (API.md, "Packages"): parse, call the store, respond. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { parseInput } from "../../kit/http.ts";
import { TooLargeError } from "../../kit/errors.ts";
import { describeRoute } from "../../kit/route_doc.ts";
import { InvalidStateError, NotFoundError } from "../../storage/errors.ts";
import type { PackageStore } from "../../storage/packages.ts";
import {
  PackageName,
  PackageProtocol,
  type PackageRef,
  packageUri,
} from "../../storage/package_uri.ts";
import { DeletePackageResponse, PackageInfo } from "./schemas.ts";

/** Options of `packageRoutes()`. */
export interface PackageRoutesOptions {
  /** Largest accepted package (zip) in bytes. */
  maxBytes: number;
  /** Whether a job that has not ended runs in the package: then it cannot be deleted. */
  usersOf(ref: PackageRef): Promise<boolean>;
}

const RefParams = z.object({ protocol: PackageProtocol, name: PackageName });

/** The packages API as a Hono app. */
export function packageRoutes(store: PackageStore, options: PackageRoutesOptions): Hono {
  const app = new Hono();

  const getDoc = describeRoute({
    summary: "Whether the head has a package: its URI and size, or 404",
    params: RefParams,
    response: PackageInfo,
  });
  app.get("/api/packages/:protocol/:name", getDoc, async (c) => {
    const ref = refParams(c);
    const size = await store.size(ref);
    if (size === undefined) throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
    return c.json({ uri: packageUri(ref), size } satisfies PackageInfo);
  });

  const putDoc = describeRoute({
    summary: "Uploads a package: a zip that `runtime_env.working_dir` then names",
    description: "Checked at upload: no entry may land outside the directory it unpacks to.",
    params: RefParams,
    body: { mediaType: "application/zip", schema: z.file() },
    response: PackageInfo,
  });
  app.put("/api/packages/:protocol/:name", putDoc, async (c) => {
    const ref = refParams(c);
    const declared = Number(c.req.header("content-length"));
    if (declared > options.maxBytes) throw tooLarge(options.maxBytes);
    const body = c.req.raw.body ?? new Blob([]).stream();
    const size = await store.put(ref, body.pipeThrough(limitBytes(options.maxBytes)));
    return c.json({ uri: packageUri(ref), size } satisfies PackageInfo);
  });

  const deleteDoc = describeRoute({
    summary: "Deletes a package and its extracted copies",
    description: "Refused with 409 while a job that has not ended runs in it.",
    params: RefParams,
    response: DeletePackageResponse,
  });
  app.delete("/api/packages/:protocol/:name", deleteDoc, async (c) => {
    const ref = refParams(c);
    if (await store.size(ref) === undefined) {
      throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
    }
    if (await options.usersOf(ref)) {
      throw new InvalidStateError(
        `Cannot delete package ${packageUri(ref)}: a job that has not ended runs in it`,
      );
    }
    await store.delete(ref);
    return c.json({ deleted: true } satisfies DeletePackageResponse);
  });

  return app;
}

function refParams(c: Context): PackageRef {
  return {
    protocol: parseInput(PackageProtocol, c.req.param("protocol"), "protocol"),
    name: parseInput(PackageName, c.req.param("name"), "package name"),
  };
}

/** Passes bytes through until `maxBytes`, then errors the stream with TooLargeError. */
function limitBytes(maxBytes: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.length;
      if (seen > maxBytes) throw tooLarge(maxBytes);
      controller.enqueue(chunk);
    },
  });
}

function tooLarge(maxBytes: number): TooLargeError {
  return new TooLargeError(`Package is over the limit of ${maxBytes} bytes`);
}
