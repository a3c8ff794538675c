// Bundles every page entry point (src/pages/*.js) into dist/: ES modules, minified, with source maps.
// Shared code (src/lib, src/ui, npm packages) goes into common chunks the pages import.
// Workers (src/workers/*.js) are bundled each into one self-contained file, dist/workers/<name>.js:
// a worker loads no chunk of the pages.
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

const workers = path.join(root, "src", "workers");
const workerEntryPoints = readdirSync(workers)
  .filter((name) => name.endsWith(".js"))
  .sort()
  .map((name) => path.join(workers, name));
await build({
  entryPoints: workerEntryPoints,
  outdir: path.join(outdir, "workers"),
  bundle: true,
  format: "iife",
  minify: true,
  sourcemap: true,
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  legalComments: "linked",
  logLevel: "warning",
});
console.log(`built ${entryPoints.length} pages and ${workerEntryPoints.length} workers into dist/ (${outputs.length + workerEntryPoints.length} files)`);
