// The web page (htdocs/) in a real browser against a real httpd with
// mod_pyexec. Run by `scripts/dev test`; screenshots land in
// <build>/e2e/screenshots.
import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {createRequire} from "node:module";
import {readFile} from "node:fs/promises";
import {startHttpd, startCluster, launchBrowser, shot} from "./harness.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let server;
let browser;

before(async () => {
    server = await startHttpd();
    browser = await launchBrowser();
});

after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
});

const CELLS = "#runs > article.run";

// A fresh browser profile on the page; fails the test on any script error.
async function open(t, options = {}, url = server.url) {
    const context = await browser.newContext({
        viewport: {width: 1000, height: 900}, ...options,
    });
    t.after(() => context.close());
    const page = await context.newPage();
    // no script errors, no CSP refusals, nothing fetched from elsewhere
    const errors = [];
    const origin = new URL(url).origin;
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => {
        // what an output frame's policy refuses is that policy at work
        // (the hostile-HTML test counts on it); the page's own is a failure
        if (/Content Security Policy/.test(m.text()) &&
            m.location().url !== "about:srcdoc") errors.push(m.text());
    });
    page.on("request", (r) => {
        const u = new URL(r.url());
        if (u.origin !== origin && u.protocol !== "data:") errors.push("fetched " + r.url());
    });
    t.after(() => assert.deepEqual(errors, []));
    if (options.beforeGoto) await options.beforeGoto(page);
    await page.goto(url);
    return page;
}

// Replaces the editor's text as a user's paste would.
async function setCode(page, code) {
    await page.locator(".cm-content").click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(code);
}

async function cell(page, n) {
    const c = page.locator(CELLS).nth(n - 1);
    await c.waitFor({timeout: 15000});
    return c;
}

async function runAndWait(page, code, how = "click") {
    const before = await page.locator(CELLS).count();
    await setCode(page, code);
    if (how === "click") await page.locator("#run").click();
    else await page.keyboard.press(how);
    const c = await cell(page, before + 1);
    await assert.doesNotReject(page.locator("#run").filter({hasText: "Execute"})
        .waitFor({timeout: 15000}));
    return c;
}

const text = (loc) => loc.textContent();
const editorFocused = (page) => page.evaluate(
    () => document.activeElement.classList.contains("cm-content"));

test("the editor is CodeMirror with line numbers, Python highlighting and indentation", async (t) => {
    const page = await open(t);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.editor),
                 "codemirror");
    assert.equal(await page.locator("#code").isHidden(), true);
    await setCode(page, "for i in range(3):");
    await page.keyboard.press("Enter");
    await page.keyboard.type("print(i)");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Tab");
    await page.keyboard.type("x = [1, 2");
    const doc = await page.evaluate(
        () => [...document.querySelectorAll(".cm-line")].map((l) => l.textContent));
    // auto-indent after the colon, Tab indents by four more, ']' closed
    assert.deepEqual(doc, ["for i in range(3):", "    print(i)", "        x = [1, 2]"]);
    assert.deepEqual(await page.locator(".cm-lineNumbers .cm-gutterElement:visible")
                         .allTextContents().then((a) => a.filter((s) => /^\d+$/.test(s))),
                     ["1", "2", "3"]);
    // 'for' is coloured as a keyword, unlike the plain name next to it
    const colours = await page.evaluate(() => {
        const line = document.querySelector(".cm-line");
        const kw = [...line.querySelectorAll("span")].find((s) => s.textContent === "for");
        return [kw && getComputedStyle(kw).color, getComputedStyle(line).color];
    });
    assert.ok(colours[0], "the keyword has a span of its own");
    assert.notEqual(colours[0], colours[1]);
    // the cursor sits after '2', before the auto-closed ']': matching bracket shown
    await page.keyboard.press("ArrowRight");
    assert.ok(await page.locator(".cm-matchingBracket").count() >= 1);
    // completion only when asked for
    await page.keyboard.press("End");
    await page.keyboard.press("Enter");
    await page.keyboard.type("pri");
    assert.equal(await page.locator(".cm-tooltip-autocomplete").count(), 0);
    await page.keyboard.press("Control+Space");
    await page.locator(".cm-tooltip-autocomplete").getByText("print").first().waitFor();
});

test("code typed and run by the button shows its stdout, the time and the session", async (t) => {
    const page = await open(t);
    await page.locator(".cm-content").click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type("print('typed', 6 * 7)");
    const answer = page.waitForResponse("**/execute");
    await page.locator("#run").click();
    // every run asks for its output as it is written
    assert.match((await answer).headers()["content-type"], /^text\/event-stream\b/);
    const c = await cell(page, 1);
    assert.equal(await text(c.locator(".stdout pre")), "typed 42\n");
    assert.equal(await c.locator("pre.code").textContent(), "print('typed', 6 * 7)");
    // a stream's headers go out before the run, so it has no
    // Server-Timing: the page times it, from the stream's start to its
    // answer (a plain answer's time is the header's: the test below)
    const time = c.locator(".run-time");
    assert.match(await text(time), /^\d+\.\d+ ms$/);
    assert.ok(parseFloat(await text(time)) < 1000, await text(time));
    assert.match(await time.getAttribute("title"), /as the page saw it/);
    const sid = await page.locator("#sid").inputValue();
    assert.match(sid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(await c.locator(".run-session").getAttribute("title"), sid);
    await page.screenshot({path: shot("run-click")});
});

// The page as it is with a server or proxy that does not stream: every
// request asks for plain JSON only.
const plainAnswers = (page) => page.route("**/execute", (route) => route.continue({
    headers: {...route.request().headers(), accept: "application/json"},
}));

test("a plain JSON answer shows as a stream's does, with the Server-Timing time", async (t) => {
    const page = await open(t, {beforeGoto: plainAnswers});
    const answer = page.waitForResponse("**/execute");
    const c = await runAndWait(page, "print('plain', 6 * 7)");
    const headers = (await answer).headers();
    assert.match(headers["content-type"], /^application\/json\b/);
    assert.equal(await text(c.locator(".stdout pre")), "plain 42\n");
    // the time shown is the one in the Server-Timing header
    const timing = headers["server-timing"];
    const ms = parseFloat(/dur=([0-9.]+)/.exec(timing)[1]);
    const shown = await text(c.locator(".run-time"));
    assert.match(shown, /^\d+\.\d+ ms$/);
    // rounded as shown: to 2 decimals below 10 ms, to 1 above (a busy
    // machine's first run can take tens of ms)
    const half = ms < 10 ? 0.005 : 0.05;
    assert.ok(Math.abs(parseFloat(shown) - ms) <= half + 1e-9,
              shown + " vs " + timing);
    assert.match(await c.locator(".run-time").getAttribute("title"), /Server-Timing/);
    assert.equal(await page.locator("#runs .is-live").count(), 0, "no live cell");
});

test("the stdin box feeds input() for each run; empty, input() meets EOF", async (t) => {
    const page = await open(t);
    await setCode(page, "name = input('Name? ')\nage = int(input('Age? '))\n" +
                        "print('Hi', name, age + 1)");
    const box = page.locator("#stdin-box");
    assert.equal(await box.evaluate((d) => d.open), false);     // folded away
    // next after Execute in the tab order (Esc, Tab from the code still
    // lands on Execute), and opened by keyboard
    await page.locator("#run").focus();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "stdin-label");
    await page.keyboard.press("Enter");
    assert.equal(await box.evaluate((d) => d.open), true);
    await page.keyboard.press("Tab");
    const stdin = page.getByRole("textbox", {name: "Input (stdin)", exact: true});
    assert.equal(await stdin.evaluate((n) => n === document.activeElement), true);
    assert.equal(await stdin.getAttribute("aria-describedby"), "stdin-hint");
    assert.match(await text(page.locator("#stdin-hint")), /^What input\(\) reads/);
    await page.keyboard.insertText("Ada\n36\n");
    // Ctrl+Enter runs from the box too
    const sent = page.waitForRequest("**/execute");
    await page.keyboard.press("Control+Enter");
    assert.equal(JSON.parse((await sent).postData()).stdin, "Ada\n36\n");
    const c = await cell(page, 1);
    assert.equal(await text(c.locator(".stdout pre")), "Name? Age? Hi Ada 37\n");
    assert.equal(await stdin.inputValue(), "Ada\n36\n", "kept for the next run");
    // emptied: the next run reads nothing, and sends no stdin at all
    await stdin.fill("");
    const second = page.waitForRequest("**/execute");
    await page.locator("#run").click();
    assert.equal("stdin" in JSON.parse((await second).postData()), false);
    const c2 = await cell(page, 2);
    assert.match(await text(c2.locator(".stderr pre")), /EOFError: EOF when reading a line/);
});

test("Ctrl+Enter and Cmd+Enter run the code", async (t) => {
    const page = await open(t);
    let c = await runAndWait(page, "print('by keyboard')", "Control+Enter");
    assert.equal(await text(c.locator(".stdout pre")), "by keyboard\n");
    c = await runAndWait(page, "print('by mac keyboard')", "Meta+Enter");
    assert.equal(await text(c.locator(".stdout pre")), "by mac keyboard\n");
    // no blank line inserted by the key: the code ran as it was
    assert.equal(await text(c.locator("pre.code")), "print('by mac keyboard')");
});

test("variables persist across runs of the session", async (t) => {
    const page = await open(t);
    await runAndWait(page, "x = 41\ndef f(): return x + 1");
    const sid = await page.locator("#sid").inputValue();
    const c = await runAndWait(page, "print(f())");
    assert.equal(await text(c.locator(".stdout pre")), "42\n");
    assert.equal(await page.locator("#sid").inputValue(), sid);
    assert.equal(await text(c.locator(".run-no")), "[2]");
});

test("the button shows the run and cannot fire twice", async (t) => {
    const page = await open(t);
    const posts = [];
    page.on("request", (r) => { if (r.method() === "POST") posts.push(r.url()); });
    await setCode(page, "import time\ntime.sleep(0.6)\nprint('slept')");
    const run = page.locator("#run");
    await run.focus();
    await page.keyboard.press("Enter");
    assert.equal(await run.isDisabled(), true);
    assert.equal(await run.getAttribute("aria-busy"), "true");
    assert.equal(await text(run), "Running…");
    // the id field cannot change under a run in flight
    assert.equal(await page.locator("#sid").evaluate((n) => n.readOnly), true);
    await run.click({force: true});
    await page.keyboard.press("Enter");
    await page.keyboard.press("Control+Enter");
    const c = await cell(page, 1);
    assert.equal(await text(c.locator(".stdout pre")), "slept\n");
    await page.waitForTimeout(300);
    assert.equal(await page.locator(CELLS).count(), 1);
    assert.equal(posts.length, 1);
    assert.equal(await run.isDisabled(), false);
    assert.equal(await text(run), "Execute");
    // keyboard focus stayed on the button through the run
    assert.equal(await page.evaluate(() => document.activeElement.id), "run");
});

test("a blocked import shows the PermissionError traceback", async (t) => {
    const page = await open(t);
    const c = await runAndWait(page, "import socket");
    const err = await text(c.locator(".stderr pre"));
    assert.match(err, /^Traceback \(most recent call last\):\n/);
    assert.match(err, /PermissionError: Importing 'socket' is restricted\.\n$/);
    assert.equal(await c.evaluate((n) => n.classList.contains("has-error")), true);
});

test("the timeout ends the session, says so, and the next run starts a new one", async (t) => {
    const page = await open(t);
    await runAndWait(page, "kept = 1");
    const first = await page.locator("#sid").inputValue();
    const c = await runAndWait(page, "while True:\n    pass");
    assert.equal(await text(c.locator(".error")), "Execution timeout. Session terminated.");
    assert.match(await text(c.locator(".notice")), /next run starts a new session/);
    assert.equal(await page.locator("#sid").inputValue(), "");
    await page.screenshot({path: shot("timeout")});
    const next = await runAndWait(page, "print('kept' in globals())");
    assert.equal(await text(next.locator(".stdout pre")), "False\n");
    const second = await page.locator("#sid").inputValue();
    assert.ok(second && second !== first);
    assert.match(await text(next.locator(".run-session")), /^new session/);
});

test("the memory limit ends the session, says so, and the next run works", async (t) => {
    const page = await open(t);
    await runAndWait(page, "print('before')");
    const first = await page.locator("#sid").inputValue();
    const c = await runAndWait(page, "data = bytearray(200 * 1024 * 1024)");
    assert.equal(await text(c.locator(".error")), "Memory limit exceeded. Session terminated.");
    assert.match(await text(c.locator(".notice")), /session has ended/);
    const next = await runAndWait(page, "print('after')");
    assert.equal(await text(next.locator(".stdout pre")), "after\n");
    const second = await page.locator("#sid").inputValue();
    assert.ok(second && second !== first);
});

test("an unknown session id says so plainly, then a new session starts", async (t) => {
    const page = await open(t);
    const gone = "00000000-0000-4000-8000-000000000000";
    await page.getByLabel("Session ID").fill(gone);
    await page.getByLabel("Session ID").press("Enter");
    const c = await runAndWait(page, "print(1)");
    assert.match(await text(c.locator(".error")), /Unknown session id/);
    assert.match(await text(c.locator(".notice")), /no longer exists.*next run starts a new session/);
    assert.equal(await page.locator("#sid").inputValue(), "");
    const next = await runAndWait(page, "print(2)");
    assert.equal(await text(next.locator(".stdout pre")), "2\n");
    assert.notEqual(await page.locator("#sid").inputValue(), "");
});

test("a pasted id continues another page's session; Copy copies the id", async (t) => {
    const first = await open(t, {permissions: ["clipboard-read", "clipboard-write"]});
    await runAndWait(first, "shared = 'from the first page'");
    await first.getByRole("button", {name: "Copy"}).click();
    await first.locator("#status").filter({hasText: "copied"}).waitFor();
    const copied = await first.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, await first.locator("#sid").inputValue());

    const second = await open(t);
    await setCode(second, "print(shared)");
    await second.getByLabel("Session ID").fill(copied);
    // Ctrl+Enter works from the id field too
    await second.getByLabel("Session ID").press("Control+Enter");
    const c = await cell(second, 1);
    assert.equal(await text(c.locator(".stdout pre")), "from the first page\n");
});

test("a reload stays in the session; Edit puts a cell's code back", async (t) => {
    const page = await open(t);
    await runAndWait(page, "kept = 'across a reload'");
    const sid = await page.locator("#sid").inputValue();
    await page.reload();
    assert.equal(await page.locator("#sid").inputValue(), sid);
    const c = await runAndWait(page, "print(kept)");
    assert.equal(await text(c.locator(".stdout pre")), "across a reload\n");
    await setCode(page, "something else");
    await c.getByRole("button", {name: "Edit the code of run 1"}).click();
    assert.deepEqual(await page.locator(".cm-line").allTextContents(), ["print(kept)"]);
    assert.equal(await editorFocused(page), true);
});

test("a malformed id is refused without sticking", async (t) => {
    const page = await open(t);
    await page.getByLabel("Session ID").fill("not-a-session");
    await page.getByLabel("Session ID").press("Enter");
    assert.match(await text(page.locator("#status")), /not a session id/);
    const c = await runAndWait(page, "print(1)");
    assert.match(await text(c.locator(".error")), /'id' is not a session id/);
    assert.match(await text(c.locator(".notice")), /next run starts a new session/);
    assert.equal(await page.locator("#sid").inputValue(), "");
    const next = await runAndWait(page, "print(2)");
    assert.equal(await text(next.locator(".stdout pre")), "2\n");
});

test("Copy works without the Clipboard API (plain http on a remote host)", async (t) => {
    const page = await open(t, {
        permissions: ["clipboard-read", "clipboard-write"],
        beforeGoto: (p) => p.addInitScript(() => Object.defineProperty(
            Navigator.prototype, "clipboard", {get: () => undefined})),
    });
    await runAndWait(page, "pass");
    const sid = await page.locator("#sid").inputValue();
    await page.getByRole("button", {name: "Copy"}).click();
    await page.locator("#status").filter({hasText: "copied"}).waitFor();
    const reader = await page.context().newPage();
    await reader.goto(server.url + "app.css");
    assert.equal(await reader.evaluate(() => navigator.clipboard.readText()), sid);
});

test("New session clears the history and starts fresh", async (t) => {
    const page = await open(t);
    await runAndWait(page, "y = 5");
    const old = await page.locator("#sid").inputValue();
    const deletes = [];
    page.on("request", (r) => {
        if (r.method() === "DELETE") {
            deletes.push({url: r.url(), sid: r.headers()["pyexec-session"]});
        }
    });
    await page.getByRole("button", {name: "New session"}).click();
    assert.equal(await page.locator(CELLS).count(), 0);
    assert.equal(await page.locator("#sid").inputValue(), "");
    const c = await runAndWait(page, "print('y' in globals())");
    assert.equal(await text(c.locator(".stdout pre")), "False\n");
    assert.equal(await text(c.locator(".run-no")), "[1]");
    assert.notEqual(await page.locator("#sid").inputValue(), old);
    // the old session was ended on the server, not left to idle out
    const gone = await page.evaluate(async (id) =>
        (await fetch("execute?id=" + id)).status, old);
    assert.equal(gone, 404);
    // by the PyExec-Session header: the id stays out of the URL
    assert.deepEqual(deletes, [{url: server.url + "execute", sid: old}]);
});

test("through a balancer front: sessions stick to their host, New session may land on another", async (t) => {
    const cluster = await startCluster();
    t.after(() => cluster.stop());
    const page = await open(t, {}, cluster.url);
    const routeOf = (sid) => /\.(h\d+)$/.exec(sid)?.[1];
    const seen = new Set();
    // each new session: its variable is there run after run, its id keeps
    // its host's route; "New session" lets the balancer pick the next host
    for (let n = 0; n < 6 && seen.size < 2; n++) {
        if (n > 0) await page.getByRole("button", {name: "New session"}).click();
        await runAndWait(page, "x = " + (10 * n));
        const sid = await page.locator("#sid").inputValue();
        assert.match(sid, /^[0-9a-f-]{36}\.h\d+$/);
        for (let i = 1; i <= 3; i++) {
            const c = await runAndWait(page, "x += 1\nprint(x)");
            assert.equal(await text(c.locator(".stdout pre")), (10 * n + i) + "\n");
            assert.equal(await page.locator("#sid").inputValue(), sid);
        }
        seen.add(routeOf(sid));
    }
    assert.equal(seen.size, 2, "every new session landed on " + [...seen]);
    await page.screenshot({path: shot("through-front")});
});

test("the examples menu loads each feature and limit, and they run", async (t) => {
    const page = await open(t);
    const labels = await page.locator("#examples option").allTextContents();
    for (const want of ["Hello", "persist", "Blocked import", "Timeout",
                        "Memory limit", "Top-level await", "chart", "DataFrame"]) {
        assert.ok(labels.some((l) => l.includes(want)), "example: " + want);
    }
    const expect = {
        "Hello, World!": (c) => c.locator(".stdout pre").textContent()
            .then((s) => assert.equal(s, "Hello, World!\n")),
        "Variables persist between runs": (c) => c.locator(".stdout pre").textContent()
            .then((s) => assert.equal(s, "run number 1\n")),
        "Blocked import": (c) => c.locator(".stderr pre").textContent()
            .then((s) => assert.match(s, /PermissionError: Importing 'os' is restricted/)),
        "Top-level await": (c) => c.locator(".stdout pre").textContent()
            .then((s) => assert.equal(s, "[0, 1, 4, 9, 16]\n")),
        "Output and errors": async (c) => {
            assert.equal(await text(c.locator(".stdout pre")),
                         "What is printed goes to stdout.\n");
            assert.match(await text(c.locator(".stderr pre")),
                         /line 7, in <module>\n  File "<stdin>", line 4, in ratio\nZeroDivisionError: division by zero\n$/);
        },
        "Timeout": (c) => c.locator(".error").textContent()
            .then((s) => assert.equal(s, "Execution timeout. Session terminated.")),
        "Memory limit": (c) => c.locator(".error").textContent()
            .then((s) => assert.match(s, /Memory limit exceeded/)),
        "A chart": (c) => c.locator(".display-image img[src^='data:image/png;base64,']")
            .waitFor({timeout: 15000}),
        "A DataFrame": async (c) => {
            const {inside} = await htmlFrame(c);
            assert.equal(await inside.locator("td", {hasText: "Nairobi"}).count(), 1);
        },
    };
    assert.deepEqual(Object.keys(expect).sort(), labels.slice(1).sort(),
                     "every example is run here");
    let n = 0;
    for (const [label, check] of Object.entries(expect)) {
        await page.selectOption("#examples", {label});
        // the menu resets, so the same example can be picked again
        assert.equal(await page.locator("#examples").inputValue(), "");
        assert.equal(await editorFocused(page), true);
        await page.keyboard.press("Control+Enter");
        await check(await cell(page, ++n));
    }
    await page.selectOption("#examples", {label: "Variables persist between runs"});
    await page.keyboard.press("Control+Enter");
    // a second Ctrl+Enter while that runs is ignored (else "run number 2")
    await page.keyboard.press("Control+Enter");
    const c = await cell(page, ++n);
    assert.equal(await text(c.locator(".stdout pre")), "run number 1\n",
                 "a new session after the memory limit ended the old one");
    await page.waitForFunction(() => !document.querySelector("#run").disabled);
    await page.keyboard.press("Control+Enter");
    assert.equal(await text((await cell(page, ++n)).locator(".stdout pre")), "run number 2\n");

    // browsing the closed menu by keyboard does not replace the code...
    await setCode(page, "mine = 1");
    await page.locator("#examples").focus();
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    assert.deepEqual(await page.locator(".cm-line").allTextContents(), ["mine = 1"]);
    // ...Enter loads the one chosen
    await page.keyboard.press("Enter");
    assert.equal(await page.locator(".cm-line").first().textContent(),
                 "# Variables, functions and imports live on in the session.");
});

test("output is always text: <script> and tags are shown, never run", async (t) => {
    const page = await open(t);
    const c = await runAndWait(page,
        "print('<script>window.owned = 1</script><img src=x onerror=\"window.owned = 2\"><b>bold</b>')\n" +
        "raise ValueError('<i>not italic</i>')");
    assert.equal(await text(c.locator(".stdout pre")),
        "<script>window.owned = 1</script><img src=x onerror=\"window.owned = 2\"><b>bold</b>\n");
    assert.match(await text(c.locator(".stderr pre")), /ValueError: <i>not italic<\/i>\n$/);
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.owned), undefined);
    assert.equal(await page.locator("#runs script, #runs img, #runs b, #runs i").count(), 0);
});

// -- rich output: display items among stdout ---------------------------

// An HTML output of the cell, once app.js has measured and sized it.
async function htmlFrame(c, n = 0) {
    const frame = c.locator("iframe.display-frame:not(.is-probe)").nth(n);
    await frame.waitFor({timeout: 15000});
    await c.page().waitForFunction((f) => f.style.height !== "" &&
        !f.parentNode.querySelector(".is-probe"), await frame.elementHandle());
    return {frame, inside: c.frameLocator("iframe.display-frame:not(.is-probe)").nth(n)};
}

// Python: H(html) is an object whose rich form is that HTML
const H_CLASS = "class H:\n    def __init__(self, h): self.h = h\n" +
    "    def _repr_html_(self): return self.h\n";
const showHtml = (html) => H_CLASS + "display(H(" + JSON.stringify(html) + "))\n";

test("a chart shows as an image, with pixels drawn, and downloads as a PNG", async (t) => {
    const page = await open(t);
    await page.selectOption("#examples", {label: "A chart"});
    await page.keyboard.press("Control+Enter");
    const c = await cell(page, 1);
    const img = c.locator(".display-image img");
    await img.waitFor({timeout: 15000});
    assert.equal(await img.isVisible(), true);
    assert.match(await img.getAttribute("alt"), /^<Figure size \d+x\d+ with 1 Axes>$/);
    // drawn on a canvas in the page: lines and axes, neither blank nor a
    // solid block
    const px = await img.evaluate(async (im) => {
        await im.decode();
        const canvas = document.createElement("canvas");
        canvas.width = im.naturalWidth;
        canvas.height = im.naturalHeight;
        const g = canvas.getContext("2d");
        g.drawImage(im, 0, 0);
        const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) ink++;
        }
        return {w: canvas.width, h: canvas.height, ink, src: im.src};
    });
    assert.match(px.src, /^data:image\/png;base64,/);
    assert.ok(px.w >= 320 && px.h >= 240, px.w + "x" + px.h);
    assert.ok(px.ink > 2000 && px.ink < px.w * px.h / 2, px.ink + " inked pixels");
    const box = await img.boundingBox();
    assert.ok(box.width >= 320 && box.height >= 240, JSON.stringify(box));
    assert.equal(await c.locator(".quiet").count(), 0, "no '(no output)'");

    const link = c.getByRole("link", {name: /^Download figure \d+ \(PNG\)$/});
    assert.equal(await link.getAttribute("href"), px.src);
    const name = await link.getAttribute("download");
    assert.match(name, /^figure-\d+\.png$/);
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    assert.equal(download.suggestedFilename(), name);
    const bytes = await readFile(await download.path());
    assert.equal(bytes.subarray(0, 8).toString("hex"), "89504e470d0a1a0a");
    await c.screenshot({path: shot("chart")});
});

test("a DataFrame shows as a table in a frame sized to it", async (t) => {
    const page = await open(t);
    await page.selectOption("#examples", {label: "A DataFrame"});
    await page.keyboard.press("Control+Enter");
    const c = await cell(page, 1);
    const {frame, inside} = await htmlFrame(c);
    // no scripts, no origin of the page's: the empty sandbox
    assert.equal(await frame.getAttribute("sandbox"), "");
    assert.match(await frame.evaluate((f) => f.srcdoc),
        /^<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:;/);
    const table = inside.locator("table");
    assert.deepEqual(await table.locator("thead th").allTextContents(),
                     ["", "city", "sunshine_h", "rain_mm"]);
    // sorted by rain, as the example asks
    assert.deepEqual(await table.locator("tbody tr td:first-of-type").allTextContents(),
                     ["Lima", "Oslo", "Lisbon", "Nairobi"]);
    assert.equal(await table.locator("td", {hasText: "2442"}).count(), 1);
    // the whole table in view: nothing clipped, nothing to scroll, and
    // no tall empty box either
    const f = await frame.boundingBox();
    const tb = await table.boundingBox();
    assert.ok(tb.height > 100, "the table has its rows: " + tb.height);
    assert.ok(tb.y >= f.y && tb.y + tb.height <= f.y + f.height,
              "table " + JSON.stringify(tb) + " in frame " + JSON.stringify(f));
    assert.ok(f.height < tb.height + 50, "frame " + f.height + " for table " + tb.height);
    const root = await inside.locator("html").evaluate(
        (n) => ({scroll: n.scrollHeight, client: n.clientHeight}));
    assert.ok(root.scroll <= root.client, JSON.stringify(root));
    await c.screenshot({path: shot("dataframe")});

    // a long one stops at the cap and scrolls inside its frame
    const long = await runAndWait(page, "import pandas as pd\npd.DataFrame({'n': range(50)})");
    const tall = await htmlFrame(long);
    const capped = (await tall.frame.boundingBox()).height;
    assert.ok(capped > 300 && capped <= 30 * 16 + 1, "capped at " + capped);
    const scroll = await tall.inside.locator("html").evaluate(
        (n) => ({scroll: n.scrollHeight, client: n.clientHeight}));
    assert.ok(scroll.scroll > scroll.client * 1.5, JSON.stringify(scroll));
});

test("an HTML output is fitted again when its cell gets narrower", async (t) => {
    const page = await open(t);
    const c = await runAndWait(page, showHtml("<p>" + "words that wrap ".repeat(50) + "</p>"));
    const {frame, inside} = await htmlFrame(c);
    const wide = (await frame.boundingBox()).height;
    await page.setViewportSize({width: 420, height: 900});
    // the text wraps into more lines, and the frame grows with it
    await page.waitForFunction(([f, h]) => f.getBoundingClientRect().height > h * 1.5 &&
        !f.parentNode.querySelector(".is-probe"),
        [await frame.elementHandle(), wide], {timeout: 5000});
    const p = await inside.locator("p").boundingBox();
    const f = await frame.boundingBox();
    assert.ok(p.y + p.height <= f.y + f.height, JSON.stringify({p, f}));
});

test("hostile HTML output runs nothing, loads nothing and cannot navigate the page", async (t) => {
    const page = await open(t);
    const answers = [];
    page.on("response", (r) => answers.push(r.request().method() + " " +
                                            new URL(r.url()).pathname));
    const c = await runAndWait(page, showHtml(
        "<p id=shown>still shown</p>" +
        "<script>window.top.pwned = 1</script>" +
        "<img src=x onerror=\"top.pwned = 2\">" +
        "<iframe src=\"javascript:top.pwned = 3\"></iframe>" +
        "<a id=js href=\"javascript:top.pwned = 4\">js</a> " +
        "<a id=top href=\"about:blank\" target=_top>top</a> " +
        "<a id=pop href=\"about:blank\" target=_blank>popup</a>" +
        "<meta http-equiv=refresh content=\"0;url=about:blank\">" +
        "<link rel=stylesheet href=\"probe.css\">" +
        "<form action=\"execute\" method=post target=_top>" +
        "<input name=code value=\"print(1)\"><button id=go>go</button></form>" +
        "<svg onload=\"top.pwned = 5\"><script>top.pwned = 6</script></svg>") +
        "class S:\n    def _repr_svg_(self): return " + JSON.stringify(
            "<svg xmlns='http://www.w3.org/2000/svg' width='60' height='30' " +
            "onload='top.pwned = 7'><script>top.pwned = 8</script>" +
            "<rect width='60' height='30' fill='teal'/></svg>") + "\n" +
        "display(S())\n");
    const {inside} = await htmlFrame(c);
    // the SVG is an image, never DOM of the page
    const svg = c.locator(".display-image img");
    assert.match(await svg.getAttribute("src"), /^data:image\/svg\+xml;base64,/);
    await svg.evaluate((im) => im.decode());
    assert.equal(await c.locator("svg, script").count(), 0);
    const unharmed = async (what) => {
        await page.waitForTimeout(300);
        assert.equal(await page.evaluate(() => window.pwned), undefined, what);
        assert.equal(page.url(), server.url, what);
    };
    await unharmed("as shown");
    for (const id of ["#js", "#top", "#pop", "#go"]) {
        await inside.locator(id).click({noWaitAfter: true, timeout: 5000});
    }
    await unharmed("clicked");
    assert.equal(page.context().pages().length, 1, "no popup");
    // the frame was not refreshed away, and fetched nothing
    assert.equal(await inside.locator("#shown").textContent(), "still shown");
    // since the page loaded, the one run: no probe.css, no x, and the
    // form did not post
    assert.deepEqual(answers, ["POST /execute"]);
    const next = await runAndWait(page, "print('the page still works')");
    assert.equal(await text(next.locator(".stdout pre")), "the page still works\n");
});

test("display items fall where they were shown in stdout", async (t) => {
    const page = await open(t);
    // code points before the item, one of them outside the BMP: UTF-16
    // offsets would split the text one character early
    const c = await runAndWait(page, H_CLASS +
        "print('a😀')\ndisplay(H('<p>one</p>'))\nprint('b')\n" +
        "H('<p>two</p>')\n");
    await htmlFrame(c, 1);
    const parts = await c.locator(".output > :not(.stream-label)").evaluateAll(
        (nodes) => nodes.map((n) => n.tagName === "PRE" ? n.textContent : n.className));
    assert.deepEqual(parts, ["a😀\n", "display display-html", "b\n", "display display-html"]);
    const inside = c.frameLocator("iframe.display-frame:not(.is-probe)");
    assert.equal(await inside.nth(0).locator("p").textContent(), "one");
    assert.equal(await inside.nth(1).locator("p").textContent(), "two");
    assert.equal(await c.getByRole("group", {name: "output"}).count(), 1);
});

test("markdown, LaTeX and JSON show as their text; a dropped item as a note", async (t) => {
    const page = await open(t);
    const c = await runAndWait(page,
        "class M:\n    def _repr_markdown_(self): return '# <b>title</b>'\n" +
        "class L:\n    def _repr_latex_(self): return r'$\\alpha$'\n" +
        "class J:\n    def _repr_json_(self): return {'k': [1, 2]}\n" +
        "display(M(), L(), J())\n" +
        "display({'image/png': 'A' * (5 * 1024 * 1024)}, raw=True)\n");
    assert.deepEqual(await c.locator(".display-text").allTextContents(),
                     ["# <b>title</b>", "$\\alpha$", '{\n  "k": [\n    1,\n    2\n  ]\n}']);
    assert.equal(await c.locator(".display-text b").count(), 0);
    assert.match(await text(c.locator(".display-dropped")), /^\[display dropped: image\/png/);
});

// -- output as it happens: the run's events before its answer ----------

// Records, in the page and as the DOM changes, when each of `marks` (a
// name and a CSS selector, optionally with the text it must hold) first
// matches in the results, and when the run's answer cell (an <article>)
// comes. Resolves to {name: ms after the click}.
async function timeline(page, marks) {
    await page.evaluate((marks) => {
        const runs = document.getElementById("runs");
        const start = performance.now();
        const seen = window.seen = {};
        const base = runs.querySelectorAll("article.run").length;
        const check = () => {
            const now = performance.now() - start;
            for (const [name, sel, has] of marks) {
                if (name in seen) continue;
                const hit = [...runs.querySelectorAll(sel)].some(
                    (n) => !has || n.textContent.includes(has));
                if (hit) seen[name] = now;
            }
            if (runs.querySelectorAll("article.run").length > base && !("answer" in seen)) {
                seen.answer = now;
                observer.disconnect();
            }
        };
        const observer = new MutationObserver(check);
        observer.observe(runs, {childList: true, subtree: true, characterData: true});
    }, marks);
    await page.locator("#run").click();
    await page.waitForFunction(() => "answer" in window.seen, null, {timeout: 15000});
    return page.evaluate(() => window.seen);
}

// what the live cell shows: its output, never the code it echoes
const LIVE = "#runs > .is-live";

test("output shows as it is written: a line printed before a sleep is in the page 0.5 s before the run ends", async (t) => {
    const page = await open(t);
    // the session started already, so that the clock measures the run only
    await runAndWait(page, "import time");
    await setCode(page, "print('first line')\ntime.sleep(0.5)\nprint('second line')");
    const at = await timeline(page, [
        ["first", LIVE + " .stdout pre", "first line"],
        ["second", LIVE + " .stdout pre", "second line"],
    ]);
    t.diagnostic("first line at " + at.first.toFixed(1) + " ms, second at " +
                 at.second.toFixed(1) + " ms, answer at " + at.answer.toFixed(1) +
                 " ms after the click: the first shown " +
                 (at.answer - at.first).toFixed(1) + " ms before the run ended");
    assert.ok(at.first < at.second && at.second <= at.answer, JSON.stringify(at));
    assert.ok(at.second - at.first > 300, JSON.stringify(at));
    assert.ok(at.answer - at.first > 300, JSON.stringify(at));
    // the answer's cell took the live one's place, and it is as ever
    assert.equal(await page.locator(LIVE).count(), 0);
    const c = await cell(page, 2);
    assert.equal(await text(c.locator(".stdout pre")), "first line\nsecond line\n");
    assert.equal(await page.locator("#runs").getAttribute("aria-busy"), null);
});

// A cell as a list of its elements, attributes and texts, less what
// differs from one session or one run to the next (time, session id).
const cellShape = (c) => c.evaluate((cell) => {
    const out = [];
    const walk = (node, depth) => {
        for (const k of node.childNodes) {
            if (k.nodeType === Node.TEXT_NODE) {
                if (k.data) out.push(depth + " " + JSON.stringify(k.data));
            } else if (k.nodeType === Node.ELEMENT_NODE) {
                const attrs = [...k.attributes]
                    .filter((a) => !["style", "data-width", "title"].includes(a.name) ||
                                   k.tagName === "IFRAME" && a.name === "title")
                    .map((a) => a.name + "=" + a.value).sort();
                out.push(depth + " " + k.tagName + " " + attrs.join(" "));
                if (!k.matches(".run-time, .run-session")) walk(k, depth + 1);
            }
        }
    };
    walk(cell, 0);
    return out;
});

// a 1x1 PNG, as display() of raw data sends it
const DOT_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk" +
                "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const LIVE_MIX = H_CLASS + "import time, warnings\n" +
    "print('before')\n" +
    "warnings.warn('careful')\n" +
    "display(H('<p>a live frame</p>'))\n" +
    "display({'image/png': '" + DOT_PNG + "', 'text/plain': 'a dot'}, raw=True)\n" +
    "print('after')\n" +
    "time.sleep(0.6)\n" +
    "print('end')\n";

test("stderr and display items show as they come; the cell at the end is the plain answer's", async (t) => {
    const page = await open(t);
    await setCode(page, LIVE_MIX);
    const at = await timeline(page, [
        ["stdout", LIVE + " .output pre.out", "before"],
        ["stderr", LIVE + " .stderr pre", "UserWarning: careful"],
        ["frame", LIVE + " .output iframe.display-frame:not(.is-probe)"],
        ["image", LIVE + " .output .display-image img[alt='a dot']"],
        ["after", LIVE + " .output pre.out", "after"],
        ["end", LIVE + " .output pre.out", "end"],
    ]);
    t.diagnostic(JSON.stringify(Object.fromEntries(
        Object.entries(at).map(([k, v]) => [k, Math.round(v)]))));
    for (const mark of ["stdout", "stderr", "frame", "image", "after"]) {
        assert.ok(at.answer - at[mark] > 300, mark + " " + JSON.stringify(at));
    }
    const c = await cell(page, 1);
    await htmlFrame(c);
    // in the order written: text, the frame, the image, the text after
    assert.deepEqual(await c.locator(".output > :not(.stream-label)").evaluateAll(
        (nodes) => nodes.map((n) => n.tagName === "PRE" ? n.textContent : n.className)),
        ["before\n", "display display-html", "display display-image", "after\nend\n"]);
    assert.match(await text(c.locator(".stderr pre")), /UserWarning: careful\n$/);
    // the figure kept the number it had while live: the page's first
    assert.equal(await c.locator(".display-image a").getAttribute("download"), "figure-1.png");

    // the same code with a plain JSON answer: the same cell
    const plain = await open(t, {beforeGoto: plainAnswers});
    const pc = await runAndWait(plain, LIVE_MIX);
    await htmlFrame(pc);
    assert.deepEqual(await cellShape(c), await cellShape(pc));
    assert.match(await c.locator(".run-time").getAttribute("title"), /page/);
    assert.match(await pc.locator(".run-time").getAttribute("title"), /Server-Timing/);
});

test("a timeout shows the output written before it, then the timeout as ever", async (t) => {
    const page = await open(t);
    await runAndWait(page, "x = 1");
    await setCode(page, "print('started')\nwhile True: pass");
    const at = await timeline(page, [["started", LIVE + " .stdout pre", "started"]]);
    t.diagnostic("started at " + Math.round(at.started) + " ms, the timeout at " +
                 Math.round(at.answer) + " ms");
    assert.ok(at.answer - at.started > 1500, JSON.stringify(at));
    // the answer is {"id", "error"}, as a plain request gets: the cell is
    // the one a timeout has always had
    const c = await cell(page, 2);
    assert.equal(await text(c.locator(".error")), "Execution timeout. Session terminated.");
    assert.match(await text(c.locator(".notice")), /The next run starts a new session/);
    assert.equal(await c.getAttribute("data-outcome"), "terminated");
    assert.equal(await page.locator("#sid").inputValue(), "");
});

test("a stream that ends without its answer says so, keeps what came and the session", async (t) => {
    const page = await open(t);
    await runAndWait(page, "x = 1");
    const sid = await page.locator("#sid").inputValue();
    // CRLF and CR line ends, comments, a data field over two lines, an
    // event the page does not know: as the SSE standard parses them
    await page.route("**/execute", (route) => route.fulfill({
        status: 200, contentType: "text/event-stream; charset=utf-8",
        body: ": running\r\n\r\n" +
              "event: stdout\r\ndata: {\"text\":\ndata: \"partial \"}\r\n\r\n" +
              "event: progress\rdata: {\"text\": \"not shown\"}\r\r" +
              ": a comment\n" +
              "event: stdout\ndata:{\"text\":\"output\\n\"}\n\n" +
              "event: stderr\ndata: {\"text\": \"a warning\\n\"}\n\n" +
              // not ended by a blank line: dropped, as the standard says
              "event: result\ndata: {\"id\": \"" + sid + "\", \"stdout\": \"x\"}\n",
    }), {times: 1});
    const c = await runAndWait(page, "print(x)");
    assert.equal(await text(c.locator(".stdout pre")), "partial output\n");
    assert.equal(await text(c.locator(".stderr pre")), "a warning\n");
    assert.equal(await text(c.locator(".error")),
                 "The connection to the server was lost before the run ended. What it " +
                 "wrote until then is shown. Check the connection and run again.");
    assert.match(await text(page.locator("#status")), /connection to the server was lost/);
    assert.equal(await page.locator("#sid").inputValue(), sid);
    const next = await runAndWait(page, "print(x + 1)");
    assert.equal(await text(next.locator(".stdout pre")), "2\n");
});

test("the page stops waiting for a run after its own timeout, keeping what came", async (t) => {
    const page = await open(t, {beforeGoto: (p) => p.clock.install()});
    await runAndWait(page, "x = 1");
    const sid = await page.locator("#sid").inputValue();
    await setCode(page, "import time\nprint('waiting')\ntime.sleep(1.5)");
    await page.locator("#run").click();
    await page.locator(LIVE + " .stdout pre", {hasText: "waiting"}).waitFor();
    // past CLIENT_TIMEOUT_MS (60 s) on the page's clock
    await page.clock.fastForward(61000);
    const c = await cell(page, 2);
    assert.equal(await text(c.locator(".stdout pre")), "waiting\n");
    assert.equal(await text(c.locator(".error")),
                 "The run had not ended after 60 s, so the page stopped waiting for it.");
    assert.equal(await page.locator("#run").getAttribute("aria-busy"), "false");
    // the session is still there: the next run waits its turn behind that one
    assert.equal(await page.locator("#sid").inputValue(), sid);
    const next = await runAndWait(page, "print(x + 1)");
    assert.equal(await text(next.locator(".stdout pre")), "2\n");
});

test("long output scrolls inside its cell", async (t) => {
    const page = await open(t);
    const c = await runAndWait(page, "for i in range(400):\n    print('line', i)");
    const box = await c.locator(".stdout pre").evaluate((n) => ({
        scroll: n.scrollHeight, client: n.clientHeight,
        overflow: getComputedStyle(n).overflowY,
    }));
    assert.ok(box.scroll > box.client * 3, JSON.stringify(box));
    assert.equal(box.overflow, "auto");
    assert.match(await text(c.locator(".stdout pre")), /line 399\n$/);
});

test("a network failure shows a clear message and keeps the session", async (t) => {
    const own = await startHttpd();
    t.after(() => own.stop());
    const page = await open(t, {}, own.url);
    await runAndWait(page, "x = 1");
    const sid = await page.locator("#sid").inputValue();
    // the server goes while a run streams: what came stays in its cell
    await setCode(page, "import time\nprint('one')\ntime.sleep(1.5)\nprint('two')");
    await page.locator("#run").click();
    await page.locator(LIVE + " .stdout pre", {hasText: "one"}).waitFor();
    await own.stop();
    const cut = await cell(page, 2);
    assert.equal(await text(cut.locator(".stdout pre")), "one\n");
    assert.match(await text(cut.locator(".error")), new RegExp(
        "^The connection to the server was lost before the run ended \\(.+\\)\\. " +
        "What it wrote until then is shown\\. Check the connection and run again\\.$"));
    await page.locator("#run").filter({hasText: "Execute"}).waitFor();
    assert.equal(await page.locator("#sid").inputValue(), sid);
    // and then there is no server
    const c = await runAndWait(page, "print(x)");
    assert.match(await text(c.locator(".error")), /^Could not reach the server/);
    assert.match(await text(page.locator("#status")), /Could not reach the server/);
    assert.equal(await page.locator("#run").isDisabled(), false);
    assert.equal(await page.locator("#sid").inputValue(), sid);
});

test("an answer that is not JSON shows a clear message", async (t) => {
    const page = await open(t, {beforeGoto: (p) => p.route("**/execute", (route) =>
        route.fulfill({status: 502, contentType: "text/html",
                       body: "<html><body><h1>Bad Gateway</h1></body></html>"}))});
    const c = await runAndWait(page, "print(1)");
    assert.match(await text(c.locator(".error")),
                 /HTTP 502.*text\/html, not the JSON mod_pyexec sends/);
    assert.equal(await page.locator("#runs h1").count(), 0);
    assert.equal(await c.locator(".run-time").count(), 0, "no time without Server-Timing");
});

test("labels, live regions and keyboard focus order", async (t) => {
    const page = await open(t);
    // every control has an accessible name
    for (const [role, name] of [["button", "Execute"], ["button", "Copy"],
                                ["button", "New session"], ["combobox", "Examples"],
                                ["textbox", "Session ID"], ["textbox", "Code"]]) {
        assert.equal(await page.getByRole(role, {name, exact: true}).count(), 1,
                     role + " " + name);
    }
    assert.equal(await page.locator("#runs").getAttribute("aria-live"), "polite");
    assert.equal(await page.locator("#status").getAttribute("role"), "status");
    // Tab order: examples, editor; Tab inside indents; Esc then Tab leaves
    await page.locator("#examples").focus();
    await page.keyboard.press("Tab");
    assert.equal(await editorFocused(page), true);
    await page.keyboard.press("Tab");
    assert.equal(await editorFocused(page), true, "Tab indents, focus stays");
    assert.equal(await page.locator(".cm-line").first().textContent(),
                 "    print('Hello, World!')");
    // Esc then Tab leaves, even after a pause to read the hint
    await page.keyboard.press("Escape");
    await page.waitForTimeout(2500);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "run");
    // back in the editor, Tab indents again
    await page.keyboard.press("Shift+Tab");
    assert.equal(await editorFocused(page), true);
    await page.keyboard.press("Tab");
    assert.equal(await editorFocused(page), true);
    await page.keyboard.press("Escape");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    const c = await cell(page, 1);
    // both Tabs in the editor indented the line
    assert.equal(await text(c.locator("pre.code")), "        print('Hello, World!')");
    assert.match(await text(c.locator(".stderr pre")), /IndentationError/);
    // blocks of a cell are named groups
    assert.equal(await c.getByRole("group", {name: "stderr"}).count(), 1);
    assert.equal(await c.getByRole("group", {name: "code"}).count(), 1);
});

// axe-core's WCAG 2 A/AA rules, colour contrast included, on a page that
// shows every kind of result.
async function axeViolations(page, context = null) {
    if (!await page.evaluate(() => !!window.axe)) await page.addScriptTag({path: AXE});
    return page.evaluate(async (context) => {
        const r = await window.axe.run(context || document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"]},
        });
        return r.violations.map((v) => v.id + ": " +
            v.nodes.map((n) => n.target.join(" ")).join(", "));
    }, context);
}

for (const colorScheme of ["light", "dark"]) {
    test("no WCAG A/AA violations found by axe-core (" + colorScheme + ")", async (t) => {
        const page = await open(t, {colorScheme, bypassCSP: true});
        await page.locator("#stdin-box summary").click();
        await page.locator("#stdin").fill("a line of input\n");
        await runAndWait(page, "print('out')");
        await runAndWait(page, "1/0");
        await runAndWait(page, "while True: pass");
        // an image and its download link, a frame with a table
        await runAndWait(page, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()");
        await htmlFrame(await runAndWait(page, "import pandas as pd\npd.DataFrame({'a': [1, 2]})"));
        assert.deepEqual(await axeViolations(page), []);
        // and while a run streams into its live cell
        await setCode(page, "import time, warnings\nprint('live')\n" +
                            "warnings.warn('careful')\ntime.sleep(1.5)");
        await page.locator("#run").click();
        await page.locator(LIVE + " .stderr pre", {hasText: "careful"}).waitFor();
        assert.deepEqual(await axeViolations(page, LIVE), []);
        assert.equal(await page.locator(LIVE).count(), 1, "axe saw the live cell");
        await page.locator("#run").filter({hasText: "Execute"}).waitFor();
    });
}

test("readable in dark mode", async (t) => {
    const page = await open(t, {colorScheme: "dark"});
    await page.locator("#stdin-box summary").click();
    await page.locator("#stdin").fill("input for the run\n");
    await runAndWait(page, "print('dark', input())\n1/0");
    const [bg, fg] = await page.evaluate(() => {
        const s = getComputedStyle(document.body);
        return [s.backgroundColor, s.color];
    });
    const lum = (c) => c.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b) / 3;
    assert.ok(lum(bg) < 60 && lum(fg) > 180, bg + " on " + fg);
    // the stdin box is the page's, not a white system textarea
    const [sbg, sfg] = await page.locator("#stdin").evaluate((n) => {
        const s = getComputedStyle(n);
        return [s.backgroundColor, s.color];
    });
    assert.ok(lum(sbg) < 60 && lum(sfg) > 180, sbg + " on " + sfg);
    await page.screenshot({path: shot("dark"), fullPage: true});
});

test("usable at phone width", async (t) => {
    const page = await open(t, {viewport: {width: 375, height: 740}, isMobile: true,
                                hasTouch: true});
    await page.locator("#stdin-box summary").tap();
    assert.ok((await page.locator("#stdin-box summary").boundingBox()).height >= 24,
              "a summary a finger can hit");
    const c = await runAndWait(page, "print('on a phone')");
    assert.equal(await text(c.locator(".stdout pre")), "on a phone\n");
    const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, "no sideways scrolling: " + overflow + " px");
    for (const sel of ["#run", "#new", "#copy", "#examples", "#sid", ".cm-editor",
                       "#stdin"]) {
        const b = await page.locator(sel).boundingBox();
        assert.ok(b && b.x >= 0 && b.x + b.width <= 375, sel + " " + JSON.stringify(b));
    }
    assert.ok((await page.locator("#run").boundingBox()).height >= 40, "touch-sized button");
    await page.screenshot({path: shot("phone"), fullPage: true});
});

test("without the editor bundle the page still works on a textarea", async (t) => {
    const page = await open(t, {beforeGoto: (p) => p.route("**/assets/editor.js",
        (route) => route.fulfill({status: 404, body: ""}))});
    assert.equal(await page.evaluate(() => document.documentElement.dataset.editor),
                 "textarea");
    const ta = page.getByRole("textbox", {name: "Code"});
    await ta.fill("if True:\n");
    await ta.press("End");
    await ta.press("Tab");
    await ta.pressSequentially("print('plain')");
    await ta.press("Control+Enter");
    const c = await cell(page, 1);
    assert.equal(await text(c.locator(".stdout pre")), "plain\n");
});

test("screenshot for the README", async (t) => {
    const page = await open(t, {viewport: {width: 960, height: 1000}});
    await runAndWait(page, "primes = [n for n in range(2, 50)\n          if all(n % d for d in range(2, n))]\nprint(primes)");
    await runAndWait(page, "print(len(primes), 'primes below 50; the largest is', max(primes))");
    await runAndWait(page, "import os");
    await setCode(page, "import asyncio\n\nasync def square(n):\n    await asyncio.sleep(0.1)\n    return n * n\n\nprint(await asyncio.gather(*(square(i) for i in range(5))))\n");
    await page.screenshot({path: shot("readme"), fullPage: true});
});
