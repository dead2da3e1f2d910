// What the browser tests stand on: a real httpd with mod_pyexec, started
// by the integration tests' harness (tests/integration/pyhttpd.py, serve
// mode) on a free loopback port, and Debian's chromium driven by
// playwright-core. Nothing here mocks the server.
import {spawn} from "node:child_process";
import {createServer} from "node:net";
import {mkdirSync} from "node:fs";
import {dirname, join, resolve} from "node:path";
import {fileURLToPath} from "node:url";
import {chromium} from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "..", "..");
export const BUILD = resolve(process.env.PYEXEC_BUILD_DIR || join(REPO, "build"));
export const SHOTS = join(BUILD, "e2e", "screenshots");

function freePort() {
    return new Promise((ok, fail) => {
        const srv = createServer();
        srv.on("error", fail);
        srv.listen(0, "127.0.0.1", () => {
            const {port} = srv.address();
            srv.close(() => ok(port));
        });
    });
}

async function waitForPage(url, proc, log, ms) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (proc.exitCode !== null) {
            throw new Error("pyhttpd.py exited " + proc.exitCode + ":\n" + log());
        }
        try {
            const r = await fetch(url);
            if (r.ok) return;
        } catch (e) { /* not listening yet */ }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("httpd did not answer " + url + " in time:\n" + log());
}

/** A Python server of the test harness, run until stop(): its output
 * as it comes, and a handle once it serves at url. */
function spawnServer(args, options = {}) {
    const server = {output: ""};
    const proc = spawn("/usr/bin/python3", args,
                       {...options, stdio: ["ignore", "pipe", "pipe"]});
    proc.stdout.on("data", (d) => { server.output += d; });
    proc.stderr.on("data", (d) => { server.output += d; });
    const stopNow = () => { if (proc.exitCode === null) proc.kill("SIGTERM"); };
    process.once("exit", stopNow);
    server.proc = proc;
    server.stopNow = stopNow;
    server.serving = (url) => ({
        url,
        log: () => server.output,
        stop() {
            process.removeListener("exit", stopNow);
            if (proc.exitCode !== null) return Promise.resolve();
            return new Promise((ok) => {
                proc.once("exit", ok);
                proc.kill("SIGTERM");
            });
        },
    });
    return server;
}

/** Starts httpd with the module; resolves to {url, stop()}. */
export async function startHttpd() {
    const port = await freePort();
    const server = spawnServer([
        join(REPO, "tests", "integration", "pyhttpd.py"),
        "--build-dir", BUILD, "--port", String(port), "--exit-with-parent",
        // every page of the suite is one client, 127.0.0.1, with many
        // sessions over the run
        "--directive", "PyExecMaxClientSessions=off",
        // as scripts/dev serve has it: the page's charts and tables
        "--directive", "PyExecAllowModules=numpy pandas matplotlib",
    ]);
    const url = "http://127.0.0.1:" + port + "/";
    try {
        await waitForPage(url, server.proc, () => server.output, 60000);
    } catch (e) {
        server.stopNow();
        throw e;
    }
    return server.serving(url);
}

/** Two backends and a front with mod_proxy_balancer, each a real httpd
 * (tests/integration/hosts.py, serve mode; in network namespaces of their
 * own when root); resolves to {url, stop()} with the front's url. */
export async function startCluster() {
    const server = spawnServer([
        "-m", "tests.integration.hosts", "--build-dir", BUILD,
        "--exit-with-parent",
    ], {cwd: REPO});
    const end = Date.now() + 120000;
    let url = null;
    while (!url && Date.now() < end && server.proc.exitCode === null) {
        const m = /front at (http:\/\/\S+\/)/.exec(server.output);
        if (m) url = m[1];
        else await new Promise((r) => setTimeout(r, 100));
    }
    if (!url) {
        server.stopNow();
        throw new Error("hosts.py did not start the cluster:\n" + server.output);
    }
    return server.serving(url);
}

/** Debian's chromium, headless, with no network of its own. */
export function launchBrowser() {
    mkdirSync(SHOTS, {recursive: true});
    return chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        headless: true,
        args: [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage",
        ],
    });
}

export function shot(name) {
    return join(SHOTS, name + ".png");
}
