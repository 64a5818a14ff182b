/**
 * Builds the npm package of jobhead's client for Node 20+ (`deno task build:npm [DIR]`,
 * default `dist/npm`): `mod.ts` bundled into one ES module with its dependencies (zod,
 * zip.js), and a package.json. Install it with `npm install <DIR>` (or pack it with
 * `npm pack`). Types are not generated yet: TypeScript users get them from the Deno package.
 * @module
 */
import { join, resolve } from "node:path";
import denoJson from "../deno.json" with { type: "json" };

/** Builds the package into `outDir`; throws with Deno's message when bundling fails. */
export async function buildNpmPackage(outDir: string): Promise<void> {
  const root = new URL("..", import.meta.url).pathname;
  await Deno.mkdir(outDir, { recursive: true });
  const bundled = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--format",
      "esm",
      "--config",
      join(root, "deno.json"),
      "-o",
      join(outDir, "index.js"),
      join(root, "mod.ts"),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!bundled.success) {
    throw new Error(`deno bundle failed: ${new TextDecoder().decode(bundled.stderr)}`);
  }
  const packageJson = {
    name: "@jobhead/client",
    version: denoJson.version,
    description: "jobhead's JobClient and API schemas: submit, follow, stop and list jobs",
    type: "module",
    main: "./index.js",
    exports: { ".": "./index.js" },
    engines: { node: ">=20" },
  };
  await Deno.writeTextFile(join(outDir, "package.json"), JSON.stringify(packageJson, null, 2));
}

if (import.meta.main) {
  const outDir = resolve(Deno.args[0] ?? "dist/npm");
  await buildNpmPackage(outDir);
  console.log(`npm package built in ${outDir}: npm install ${outDir}`);
}
