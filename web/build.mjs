// Bundles the playground into crates/server/assets/playground/ (committed, so
// `cargo build` needs no npm): app.js, app.css and index.html.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, statSync } from "node:fs";

const out = new URL("../crates/server/assets/playground/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, legalComments: "eof", logLevel: "warning" };
await build({ ...common, entryPoints: ["src/main.js"], outfile: `${out}app.js`, format: "iife", target: "es2020" });
await build({ ...common, entryPoints: ["src/style.css"], outfile: `${out}app.css` });
copyFileSync("index.html", `${out}index.html`);
for (const name of ["index.html", "app.js", "app.css"]) {
  console.log(`${name}: ${(statSync(`${out}${name}`).size / 1024).toFixed(1)} KiB`);
}
