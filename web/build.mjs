// Builds htdocs/assets/editor.js (the CodeMirror bundle, one IIFE that
// defines window.PyExecEditor) and htdocs/assets/editor.LICENSES.txt (the
// licences of every package inside it). Run by `scripts/dev` and by
// `make dist`; installs never need Node.js because the dist tarball
// carries both files.
import {build} from "esbuild";
import {readFileSync, writeFileSync, mkdirSync, readdirSync} from "node:fs";
import {dirname, join, resolve} from "node:path";
import {fileURLToPath} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(here, "..", "htdocs", "assets");
mkdirSync(outDir, {recursive: true});

const result = await build({
    entryPoints: [join(here, "src", "editor.js")],
    bundle: true,
    format: "iife",
    globalName: "PyExecEditor",
    minify: true,
    target: ["es2020"],
    legalComments: "none",
    metafile: true,
    outfile: join(outDir, "editor.js"),
    logLevel: "warning",
});

// One licence text per bundled package, found from the inputs esbuild used.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
    // the innermost node_modules: a nested copy has a licence of its own
    const m = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input);
    if (!m || packages.has(m[2])) continue;
    const dir = join(here, m[1]);
    const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    packages.set(m[2], {
        version: meta.version,
        license: meta.license,
        text: file ? readFileSync(join(dir, file), "utf8").trim() : "",
    });
}
let notice = "Third-party software bundled in editor.js\n" +
             "=========================================\n";
for (const [name, p] of [...packages].sort()) {
    notice += `\n${name} ${p.version} (${p.license})\n` +
              "-".repeat(name.length + p.version.length + 1) + "\n" +
              (p.text || "(no licence file in the package)") + "\n";
}
writeFileSync(join(outDir, "editor.LICENSES.txt"), notice);

const size = readFileSync(join(outDir, "editor.js")).length;
console.log(`web: htdocs/assets/editor.js ${(size / 1024).toFixed(0)} KiB, ` +
            `${packages.size} packages`);
