/**
 * Response schemas of the packages API (API.md, "Packages"): what `GET` and `PUT
 * /api/packages/{protocol}/{name}` answer. Clients parse with them too, so this file
 * imports nothing but zod.
 */
import { z } from "zod";

/** Response of `GET` and `PUT /api/packages/{protocol}/{name}`. */
export const PackageInfo = z.object({
  /** `<protocol>://<name>`: what `runtime_env.working_dir` refers to the package by. */
  uri: z.string(),
  /** Size of the zip in bytes. */
  size: z.number().int().nonnegative(),
});
export type PackageInfo = z.infer<typeof PackageInfo>;

/** Response of `DELETE /api/packages/{protocol}/{name}`. */
export const DeletePackageResponse = z.object({ deleted: z.literal(true) });
export type DeletePackageResponse = z.infer<typeof DeletePackageResponse>;
