/** `GET /api/snapshot`: each module's section, plus the session, version and commit (API.md). */
import { join } from "node:path";
import { Hono } from "hono";
import { enveloped } from "../kit/envelope.ts";
import type { Logger } from "../kit/log.ts";
import type { HeadInfo, HeadModule } from "../kit/module.ts";
import { describeRoute } from "../kit/route_doc.ts";
import { EnvelopeError } from "../kit/schemas.ts";
import { type Snapshot, SnapshotResponse } from "./schemas.ts";

/**
 * The snapshot route over the modules `modules()` lists at request time, and the head's
 * own `sections`. A section that fails is left out, named in `msg` and logged: one
 * module never hides the others.
 */
export function snapshotRoutes(
  modules: () => readonly HeadModule[],
  info: HeadInfo,
  options: { logger: Logger; sections?: () => Record<string, unknown> },
): Hono {
  const { logger } = options;
  return new Hono().get(
    "/api/snapshot",
    describeRoute({
      summary: "Each module's section, and the head's session, version and commit",
      description: "Ray's dashboard envelope; a section whose module failed is left out, " +
        "and `msg` names it.",
      response: SnapshotResponse,
      errorBody: EnvelopeError,
    }),
    enveloped(async () => {
      const failures: string[] = [];
      const sections = await Promise.all(
        modules().filter((m) => m.snapshot).map(async (module) => {
          try {
            return [module.snapshotKey ?? module.name, await module.snapshot!()] as const;
          } catch (err) {
            logger.error(`the snapshot section of module "${module.name}" failed:`, err);
            failures.push(`the snapshot section of module "${module.name}" failed`);
            return undefined;
          }
        }),
      );
      const snapshot: Snapshot = {
        ...options.sections?.(),
        ...Object.fromEntries(sections.filter((s) => s !== undefined)),
        session_name: info.sessionName,
        version: info.version,
        commit: info.commit,
      };
      return { result: true, msg: failures.join("; "), data: { snapshot } };
    }),
  );
}

/** The commit checked out in the git work tree at `dir`, or "" when there is none. */
export async function readGitCommit(dir: string): Promise<string> {
  const gitDir = join(dir, ".git");
  try {
    const head = (await Deno.readTextFile(join(gitDir, "HEAD"))).trim();
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (!ref) return head;
    try {
      return (await Deno.readTextFile(join(gitDir, ref))).trim();
    } catch {
      // A packed ref: "<sha> <ref>" lines.
      const packed = await Deno.readTextFile(join(gitDir, "packed-refs"));
      const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`));
      return line?.split(" ")[0] ?? "";
    }
  } catch {
    return "";
  }
}
