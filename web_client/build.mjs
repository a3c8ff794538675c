// Bundles every page entry point (src/pages/*.js) into dist/: ES modules, minified, with source maps.
// Shared code (src/lib, src/ui, npm packages) goes into common chunks the pages import.
import { readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.dirname(fileURLToPath(import.meta.url));
const pages = path.join(root, "src", "pages");
const entryPoints = readdirSync(pages)
  .filter((name) => name.endsWith(".js"))
  .sort()
  .map((name) => path.join(pages, name));
if (entryPoints.length === 0) throw new Error(`no page entry points in ${pages}`);

const outdir = path.join(root, "dist");
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints,
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  chunkNames: "chunks/[name]-[hash]",
  legalComments: "linked",
  logLevel: "warning",
  metafile: true,
});
const outputs = Object.keys(result.metafile.outputs).filter((file) => file.endsWith(".js"));
console.log(`built ${entryPoints.length} pages into dist/ (${outputs.length} files)`);
