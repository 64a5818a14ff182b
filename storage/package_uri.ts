/**
 * How a package is named: `<protocol>://<name>`, `pkg://…` (jobhead's clients) or `gcs://…`
 * (Ray's). The head, its clients and the command line all read package URIs here, so
 * this file imports nothing but zod.
 */
import { z } from "zod";

/** Where an uploaded package lives: `pkg` (jobhead's clients) or `gcs` (Ray's). */
export const PackageProtocol = z.enum(["pkg", "gcs"]);
export type PackageProtocol = z.infer<typeof PackageProtocol>;

/** A package name: it names a file, so it is restricted like a job id. */
export const PackageName = z.string().regex(
  /^(?!\.)[A-Za-z0-9_.-]{1,128}$/,
  "must be 1-128 characters of A-Z a-z 0-9 _ . - and not start with '.'",
);

/** One package, written `<protocol>://<name>`. */
export interface PackageRef {
  protocol: PackageProtocol;
  name: string;
}

/** A package protocol, `://`, and the rest (the name, not yet checked). */
const PACKAGE_URI = new RegExp(`^(${PackageProtocol.options.join("|")})://(.*)$`, "s");

/** `<protocol>://<name>`. */
export function packageUri(ref: PackageRef): string {
  return `${ref.protocol}://${ref.name}`;
}

/** Whether `uri` is written as a package URI (`pkg://…`, `gcs://…`), whatever its name. */
export function isPackageUri(uri: string): boolean {
  return PACKAGE_URI.test(uri);
}

/** The package a `pkg://…` or `gcs://…` URI names; undefined for another URI or a bad name. */
export function parsePackageUri(uri: string): PackageRef | undefined {
  const match = PACKAGE_URI.exec(uri);
  if (!match || !PackageName.safeParse(match[2]).success) return undefined;
  return { protocol: match[1] as PackageProtocol, name: match[2] };
}
