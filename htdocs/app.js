// mod_pyexec's page: an editor, an Execute button and the runs of one
// session as cells. Everything the server sends is shown with
// textContent, never parsed as HTML in the page: images go in as data:
// URLs, HTML output only into a sandboxed frame that runs nothing.
"use strict";

(function () {
    const ENDPOINT = new URL("execute", document.baseURI).href;
    // The server ends every run after its own limit (2 s by default), but a
    // run may wait its turn behind others of the same session.
    const CLIENT_TIMEOUT_MS = 60000;
    const SESSION_KEY = "pyexec.session";
    // a UUID, and on one of many hosts its route (PyExecRoute)
    const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[A-Za-z0-9_-]{1,32})?$/i;

    const EXAMPLES = [
        {title: "Hello, World!", code: "print('Hello, World!')\n"},
        {title: "Variables persist between runs", code:
            "# Variables, functions and imports live on in the session.\n" +
            "# Run this a few times: the count goes up.\n" +
            "try:\n    count += 1\nexcept NameError:\n    count = 1\n" +
            "print('run number', count)\n"},
        {title: "Output and errors", code:
            "print('What is printed goes to stdout.')\n\n" +
            "def ratio(a, b):\n    return a / b\n\n" +
            "# An exception's traceback goes to stderr.\nratio(1, 0)\n"},
        {title: "Blocked import", code:
            "# Modules that reach the host (os, sys, socket, subprocess, ...)\n" +
            "# are refused.\nimport os\n"},
        {title: "Timeout", code:
            "# A run that takes longer than the limit (2 s by default) is\n" +
            "# stopped and its session ends; the next run starts a new one.\n" +
            "while True:\n    pass\n"},
        {title: "Memory limit", code:
            "# Asking for more than the limit (100 MB by default) ends the\n" +
            "# session.\n" +
            "data = bytearray(200 * 1024 * 1024)\n"},
        {title: "Top-level await", code:
            "import asyncio\n\nasync def square(n):\n    await asyncio.sleep(0.1)\n" +
            "    return n * n\n\n" +
            "print(await asyncio.gather(*(square(i) for i in range(5))))\n"},
        {title: "A chart", code:
            "import matplotlib.pyplot as plt\nimport numpy as np\n\n" +
            "x = np.linspace(0, 2 * np.pi, 200)\n" +
            "plt.plot(x, np.sin(x), label='sin')\n" +
            "plt.plot(x, np.cos(x), label='cos')\n" +
            "plt.title('Two waves')\nplt.legend()\n" +
            "# shows the figure here, as a PNG you can download\nplt.show()\n"},
        {title: "A DataFrame", code:
            "import pandas as pd\n\n" +
            "df = pd.DataFrame({\n" +
            "    'city': ['Lisbon', 'Oslo', 'Nairobi', 'Lima'],\n" +
            "    'sunshine_h': [2806, 1668, 2442, 1230],\n" +
            "    'rain_mm': [774, 763, 869, 16],\n})\n" +
            "# the value of a last bare expression is shown, as in a notebook\n" +
            "df.sort_values('rain_mm')\n"},
    ];

    const $ = (id) => document.getElementById(id);
    const els = {
        code: $("code"), codeLabel: $("code-label"), examples: $("examples"),
        run: $("run"), status: $("status"), sid: $("sid"), copy: $("copy"),
        fresh: $("new"), runs: $("runs"), empty: $("empty"),
        stdin: $("stdin"),
    };
    let editor = null;
    let busy = false;
    let runNo = 0;

    // -- editor: CodeMirror from assets/editor.js, else the textarea -----

    function textareaEditor(ta) {
        ta.hidden = false;
        ta.addEventListener("keydown", (e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
                e.preventDefault();
                run();
            } else if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey &&
                       !e.altKey && !e.metaKey && !ta.dataset.escaped) {
                e.preventDefault();
                ta.setRangeText("    ", ta.selectionStart, ta.selectionEnd, "end");
            } else if (e.key === "Escape") {
                ta.dataset.escaped = "1";   // the next Tab leaves
                return;
            }
            delete ta.dataset.escaped;
        });
        return {
            kind: "textarea",
            getCode: () => ta.value,
            setCode: (text) => { ta.value = text; },
            focus: () => ta.focus(),
        };
    }

    function setupEditor() {
        const lib = window.PyExecEditor;
        if (lib && typeof lib.create === "function") {
            try {
                const ed = lib.create(els.code, {
                    onRun: run, labelId: "code-label", describedBy: "keys-hint",
                });
                ed.kind = "codemirror";
                // the label points at the hidden textarea; make it work
                els.codeLabel.addEventListener("click", (e) => {
                    e.preventDefault();
                    ed.focus();
                });
                return ed;
            } catch (err) {
                console.error("mod_pyexec: editor failed, using a textarea", err);
            }
        }
        return textareaEditor(els.code);
    }

    // -- session id ------------------------------------------------------

    function currentSession() {
        return els.sid.value.trim();
    }

    function setSession(id) {
        els.sid.value = id || "";
        els.sid.dataset.known = id || "";
        try {
            if (id) sessionStorage.setItem(SESSION_KEY, id);
            else sessionStorage.removeItem(SESSION_KEY);
        } catch (e) { /* storage off: the field still holds the id */ }
    }

    function shortId(id) {
        return id ? id.slice(0, 8) + "…" : "";
    }

    // -- output ----------------------------------------------------------

    function setStatus(text, isError) {
        els.status.textContent = text;
        els.status.classList.toggle("is-error", !!isError);
    }

    function el(tag, cls, text) {
        const node = document.createElement(tag);
        if (cls) node.className = cls;
        if (text !== undefined) node.textContent = text;   // text, never HTML
        return node;
    }

    // One labelled block of a cell, a named group: the code, stdout,
    // stderr or output (stdout with display items).
    function group(no, name, labelClass) {
        const box = el("div");
        box.setAttribute("role", "group");
        box.append(el("span", labelClass));
        return nameGroup(box, no, name);
    }

    function nameGroup(box, no, name) {
        const label = box.firstElementChild;
        box.className = "stream " + (name === "code" ? "source" : name);
        label.textContent = name;
        label.id = "run-" + no + "-" + name;
        box.setAttribute("aria-labelledby", label.id);
        return box;
    }

    function block(no, name, text, labelClass) {
        const box = group(no, name, labelClass);
        box.append(el("pre", name === "code" ? "code" : null, text));
        return box;
    }

    // -- rich output: the answer's display items ------------------------

    // Jupyter's order of preference, less what the page will not show
    // (JavaScript, PDF). Markdown, LaTeX and JSON have no renderer here and
    // are shown as their source, which still says more than text/plain.
    const MIME_ORDER = [
        "text/html", "image/svg+xml", "image/png", "image/jpeg", "image/gif",
        "image/webp", "text/markdown", "text/latex", "application/json",
        "text/plain",
    ];
    const IMAGE_EXT = {
        "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
        "image/webp": "webp", "image/svg+xml": "svg",
    };
    // The frame's own policy, first in its document: nothing but inline
    // styles and data: images, so even a frame that could run a script
    // could not load or send anything.
    const FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; " +
                      "img-src data:; base-uri 'none'; form-action 'none'";
    const FRAME_STYLE =
        ":root{color-scheme:light dark}" +
        "body{margin:0;padding:.4rem .5rem;font:14px/1.45 system-ui,sans-serif}" +
        "table{border-collapse:collapse}" +
        "th,td{padding:.15em .55em;border:1px solid rgba(128,128,128,.45)}" +
        "thead th{border-bottom-width:2px}";
    // what a horizontal scrollbar takes from the frame's height: the probe
    // is measured without one
    const SCROLLBAR_PX = 18;
    let figureNo = 0;       // download names, unique on the page

    function pickMime(data) {
        return MIME_ORDER.find((m) => m === "application/json" ?
            m in data : typeof data[m] === "string");
    }

    function utf8Base64(text) {
        const bytes = new TextEncoder().encode(text);
        let bin = "";
        // in slices: fromCharCode takes its bytes as arguments
        for (let i = 0; i < bytes.length; i += 0x8000) {
            bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return btoa(bin);
    }

    function imageItem(mime, data, alt, meta) {
        const url = "data:" + mime + ";base64," + (mime === "image/svg+xml" ?
            utf8Base64(data[mime]) : data[mime].replace(/\s+/g, ""));
        const box = el("figure", "display display-image");
        // an SVG as an <img> runs no script and loads nothing; as DOM
        // it could do both
        const img = el("img");
        img.alt = alt;
        img.src = url;
        for (const dim of ["width", "height"]) {
            const v = meta && meta[dim];
            if (Number.isFinite(v) && v > 0 && v <= 10000) img[dim] = Math.round(v);
        }
        const ext = IMAGE_EXT[mime];
        const no = ++figureNo;
        const link = el("a", "download", "Download " + ext.toUpperCase());
        link.href = url;
        link.download = "figure-" + no + "." + ext;
        link.setAttribute("aria-label", "Download figure " + no + " (" +
                          ext.toUpperCase() + ")");
        const caption = el("figcaption");
        caption.append(link);
        box.append(img, caption);
        return box;
    }

    function frameDocument(html) {
        return "<!doctype html><html><head><meta charset=\"utf-8\">" +
               "<meta http-equiv=\"Content-Security-Policy\" content=\"" +
               FRAME_CSP + "\"><style>" + FRAME_STYLE + "</style></head><body>" +
               html + "</body></html>";
    }

    // The visible frame has an origin of its own, so the page cannot read
    // its height. A copy of the document in a hidden frame that is
    // same-origin but still runs no script (sandbox="allow-same-origin",
    // the same policy inside) is laid out at the same width, measured and
    // removed at once; the frame gets that height, up to the cap in
    // app.css, beyond which it scrolls.
    function fitFrame(frame, srcdoc, box) {
        const probe = el("iframe", "display-frame is-probe");
        probe.setAttribute("sandbox", "allow-same-origin");
        probe.setAttribute("aria-hidden", "true");
        probe.tabIndex = -1;
        probe.addEventListener("load", () => {
            let height = 0;
            try {
                const root = probe.contentDocument.documentElement;
                height = root.scrollHeight;
                if (root.scrollWidth > root.clientWidth) height += SCROLLBAR_PX;
            } catch (e) { /* unmeasurable: the cap's height, scrolling */ }
            probe.remove();
            frame.dataset.width = String(box.clientWidth);
            // its height is the border box (app.css)
            const borders = frame.offsetHeight - frame.clientHeight;
            frame.style.height = height > 0 ? height + borders + "px" : "";
            frame.classList.toggle("is-unmeasured", !(height > 0));
        }, {once: true});
        probe.srcdoc = srcdoc;
        box.append(probe);
    }

    function htmlItem(html, title) {
        const box = el("div", "display display-html");
        const frame = el("iframe", "display-frame");
        // no allow-scripts, no allow-same-origin, no forms, popups or
        // navigation of the page: the frame shows, and does nothing else
        frame.setAttribute("sandbox", "");
        frame.title = title;
        const srcdoc = frameDocument(html);
        frame.srcdoc = srcdoc;
        box.append(frame);
        fitFrame(frame, srcdoc, box);
        // a narrower or wider cell wraps the content anew
        if (typeof ResizeObserver === "function") {
            let timer = null;
            new ResizeObserver(() => {
                if (!frame.dataset.width ||
                    Math.abs(box.clientWidth - Number(frame.dataset.width)) < 2) return;
                clearTimeout(timer);
                timer = setTimeout(() => fitFrame(frame, srcdoc, box), 150);
            }).observe(box);
        }
        return box;
    }

    function displayItem(item, name) {
        const data = item && typeof item.data === "object" && item.data ? item.data : {};
        const meta = item && typeof item.metadata === "object" && item.metadata ? item.metadata : {};
        const plain = typeof data["text/plain"] === "string" ? data["text/plain"] : "";
        if (meta.dropped) return el("p", "notice display-dropped", plain);
        const mime = pickMime(data);
        if (IMAGE_EXT[mime]) return imageItem(mime, data, plain, meta[mime]);
        if (mime === "text/html") return htmlItem(data[mime], name);
        let text = mime ? data[mime] : "";
        if (mime === "application/json") text = JSON.stringify(text, null, 2);
        const pre = el("pre", "display display-text", text);
        if (mime) pre.dataset.mime = mime;
        return pre;
    }

    function displayName(no, i) {
        return "Run " + no + ", output " + (i + 1);
    }

    // stdout with the display items where they fell in it: offsets count
    // code points, as Python's len does, not JavaScript's UTF-16 units.
    // `rendered` are the items the run's events showed already
    // (liveDisplay): one that is the same item is moved here rather than
    // made again, so a figure keeps its number and a frame its height.
    function outputBlock(no, stdout, items, rendered) {
        const box = group(no, "output", "stream-label");
        const chars = Array.from(stdout);
        let at = 0;
        const text = (end) => {
            if (end > at) box.append(el("pre", "out", chars.slice(at, end).join("")));
            at = Math.max(at, end);
        };
        items.forEach((item, i) => {
            const off = Number(item && item.stdout_offset);
            text(Number.isFinite(off) ? Math.min(Math.max(off, 0), chars.length) : at);
            const seen = rendered && rendered[i];
            box.append(seen && seen.json === JSON.stringify(item) ? seen.node :
                       displayItem(item, displayName(no, i)));
        });
        text(chars.length);
        return box;
    }

    // Long output scrolls inside its cell; then it must scroll by keyboard
    // too, so it becomes a tab stop (only then: a tab stop per cell is noise).
    function focusableIfScrolling(cell) {
        for (const pre of cell.querySelectorAll("pre")) {
            if (pre.scrollHeight > pre.clientHeight + 1) pre.tabIndex = 0;
        }
    }

    // The cell of a run's answer; it takes the place of the run's live
    // cell, if it had one.
    function addCell(run, live) {
        const cell = el("article", "run");
        cell.dataset.outcome = run.outcome;
        if (run.error || run.stderr) cell.classList.add("has-error");

        const head = el("div", "run-head");
        const no = el("span", "run-no", "[" + run.no + "]");
        // run numbers restart only with New session, which clears the cells
        no.id = "run-" + run.no;
        cell.setAttribute("aria-labelledby", no.id);
        no.setAttribute("aria-label", "Run " + run.no);
        head.append(no);
        if (Number.isFinite(run.ms)) {
            const t = el("span", "run-time", formatMs(run.ms));
            t.title = run.msByPage ?
                "time from the run's start to its answer, as the page saw it" :
                "time spent running the code (Server-Timing)";
            head.append(t);
        }
        if (run.session) {
            const s = el("span", "run-session",
                          (run.newSession ? "new session " : "session ") +
                          shortId(run.session));
            s.title = run.session;
            head.append(s);
        }
        const again = el("button", "reuse", "Edit");
        again.type = "button";
        again.setAttribute("aria-label", "Edit the code of run " + run.no);
        again.title = "Put this code back into the editor";
        again.addEventListener("click", () => {
            editor.setCode(run.code);
            editor.focus();
        });
        head.append(again);
        cell.append(head);

        cell.append(block(run.no, "code", run.code, "visually-hidden"));
        const shown = run.display || [];
        if (shown.length) {
            cell.append(outputBlock(run.no, run.stdout || "", shown,
                                    live && live.rendered));
        } else if (run.stdout) {
            cell.append(block(run.no, "stdout", run.stdout, "stream-label"));
        }
        if (run.stderr) cell.append(block(run.no, "stderr", run.stderr, "stream-label"));
        if (run.error) cell.append(el("div", "error", run.error));
        if (!run.stdout && !run.stderr && !run.error && !shown.length) {
            cell.append(el("p", "quiet", "(no output)"));
        }
        if (run.notice) cell.append(el("p", "notice", run.notice));

        els.empty.hidden = true;
        if (live) live.node.replaceWith(cell);
        else els.runs.append(cell);
        focusableIfScrolling(cell);
        cell.scrollIntoView({block: "nearest"});
    }

    function addMarker(text) {
        els.runs.append(el("p", "run is-marker", text));
    }

    function formatMs(ms) {
        if (ms < 10) return ms.toFixed(2) + " ms";
        if (ms < 1000) return ms.toFixed(1) + " ms";
        return (ms / 1000).toFixed(2) + " s";
    }

    // -- output as it happens -------------------------------------------

    // What a run has written so far, in a cell at the end of the log while
    // it runs: text as it comes, display items as they come, laid out as
    // the answer's cell will be. That cell, made from the answer alone,
    // then takes this one's place. It is a <div>, not an <article> as the
    // cells of answers are, and the log is aria-busy meanwhile (setBusy),
    // so that a screen reader reads the run once, when it is over, rather
    // than at every line it prints.
    function liveCell(no, code) {
        const live = {
            no, node: el("div", "run is-live"), stdout: "", stderr: "",
            display: [], rendered: [], blocks: {}, tails: {},
            follow: new Set(), frame: 0,
        };
        const head = el("div", "run-head");
        head.append(el("span", "run-no", "[" + no + "]"),
                    el("span", "run-live", "running…"));
        live.node.append(head, block(no, "code", code, "visually-hidden"));
        els.empty.hidden = true;
        els.runs.append(live.node);
        live.node.scrollIntoView({block: "nearest"});
        return live;
    }

    // The cell's stdout or stderr block, made when first written to;
    // stdout's comes first, as in the answer's cell.
    function liveBlock(live, name) {
        let box = live.blocks[name];
        if (!box) {
            box = live.blocks[name] = group(live.no, name, "stream-label");
            if (name === "stdout" && live.blocks.stderr) {
                live.blocks.stderr.before(box);
            } else {
                live.node.append(box);
            }
            if (name === "stderr") live.node.classList.add("has-error");
        }
        return box;
    }

    function liveText(live, name, text) {
        if (!text) return;
        live[name] += text;
        let pre = live.tails[name];
        if (!pre) {
            pre = live.tails[name] = el("pre", "out", "");
            followEnd(live, pre);
            liveBlock(live, name).append(pre);
        }
        // text, never HTML, and appended: no copy of all that came before
        if (pre.firstChild) pre.firstChild.appendData(text);
        else pre.textContent = text;
        if (!live.frame) {
            live.frame = requestAnimationFrame(() => {
                live.frame = 0;
                for (const p of live.follow) p.scrollTop = p.scrollHeight;
            });
        }
    }

    // A long output scrolls inside its block (app.css); while it grows the
    // block shows its end, as a terminal does, unless the user scrolls up
    // to read. A scroll event may come after more text did: it is the
    // user's only when it went up from where the page put it.
    function followEnd(live, pre) {
        live.follow.add(pre);
        pre.addEventListener("scroll", () => {
            const end = pre.scrollHeight - pre.clientHeight;
            if (pre.scrollTop >= end - 2) live.follow.add(pre);
            else if (pre.scrollTop < (pre.dataset.top || 0) - 2) live.follow.delete(pre);
            pre.dataset.top = pre.scrollTop;
        }, {passive: true});
    }

    // A display item, where it fell: after the stdout written before it,
    // which the events brought first. The stdout block becomes the output
    // block, as in the answer's cell.
    function liveDisplay(live, item) {
        const box = liveBlock(live, "stdout");
        if (!live.display.length) nameGroup(box, live.no, "output");
        const node = displayItem(item, displayName(live.no, live.display.length));
        live.display.push(item);
        live.rendered.push({json: JSON.stringify(item), node});
        live.tails.stdout = null;       // the text after it is a <pre> of its own
        box.append(node);
    }

    // Server-Sent Events from a fetch body (EventSource only sends GET),
    // parsed as the HTML standard has it: lines end at CRLF, LF or CR, a
    // line that starts with ':' is a comment, "data" lines join with LF, a
    // blank line dispatches, and what no blank line ended is dropped; "id"
    // and "retry" mean nothing to a request that is never sent again.
    // Returns a function that takes the text as it comes.
    function eventParser(onEvent) {
        let rest = "";          // the start of a line not ended yet
        let afterCR = false;    // a CR ended the last piece: a LF next is its CRLF
        let type = "";
        let data = null;
        const line = (text) => {
            if (text === "") {
                if (data !== null) onEvent(type || "message", data);
                type = "";
                data = null;
                return;
            }
            const colon = text.indexOf(":");
            if (colon === 0) return;
            const field = colon < 0 ? text : text.slice(0, colon);
            let value = colon < 0 ? "" : text.slice(colon + 1);
            if (value.startsWith(" ")) value = value.slice(1);
            if (field === "event") type = value;
            else if (field === "data") data = data === null ? value : data + "\n" + value;
        };
        return (piece) => {
            if (!piece) return;
            if (afterCR && piece.startsWith("\n")) piece = piece.slice(1);
            afterCR = piece.endsWith("\r");
            const ends = /\r\n|\r|\n/g;
            let at = 0;
            let m;
            while ((m = ends.exec(piece)) !== null) {
                line(rest + piece.slice(at, m.index));
                rest = "";
                at = ends.lastIndex;
            }
            rest += piece.slice(at);
        };
    }

    function isEventStream(response) {
        const type = (response.headers.get("Content-Type") || "").split(";")[0];
        return response.ok && !!response.body &&
               type.trim().toLowerCase() === "text/event-stream";
    }

    // A streamed run: its events into the live cell until `result`, whose
    // data is the very answer a plain request gets. A stream that ends
    // without it throws, as a network failure does. `started` is when its
    // headers came.
    async function readEvents(response, live, sent, started) {
        let answer = null;
        const feed = eventParser((type, data) => {
            if (answer !== null) return;
            if (type === "result") {
                answer = data;
                return;
            }
            let value = null;
            try {
                value = JSON.parse(data);
            } catch (e) { /* not an event of the contract's: skipped */ }
            if (!value || typeof value !== "object") return;
            if ((type === "stdout" || type === "stderr") && typeof value.text === "string") {
                liveText(live, type, value.text);
            } else if (type === "display") {
                liveDisplay(live, value);
            }
        });
        const reader = response.body.getReader();
        const utf8 = new TextDecoder();
        while (answer === null) {
            const {done, value} = await reader.read();
            if (done) break;
            feed(utf8.decode(value, {stream: true}));
        }
        if (answer === null) {
            const err = new Error("the events stopped before the answer");
            err.name = "StreamCut";
            throw err;
        }
        // the answer is in: whatever else came would not be the contract's
        reader.cancel().catch(() => {});
        const run = interpret(response, answer, sent);
        // headers went out before the run, so a stream has no Server-Timing
        if (run.ms === null && run.outcome !== "bad-answer") {
            run.ms = performance.now() - started;
            run.msByPage = true;
        }
        return run;
    }

    // A run that got no answer; what its events showed stays in the cell.
    function failed(err, live) {
        const during = live && (live.stdout || live.stderr || live.display.length);
        let error;
        if (err.name === "AbortError") {
            error = live ? "The run had not ended after " + CLIENT_TIMEOUT_MS / 1000 +
                           " s, so the page stopped waiting for it."
                         : "No answer from the server within " +
                           CLIENT_TIMEOUT_MS / 1000 + " s.";
        } else if (live) {
            error = "The connection to the server was lost before the run " +
                    "ended" + (err.name === "StreamCut" ? "" : " (" + err.message + ")") +
                    ". " + (during ? "What it wrote until then is shown. " : "") +
                    "Check the connection and run again.";
        } else {
            error = "Could not reach the server (" + err.message + "). " +
                    "Check the connection and run again.";
        }
        return {
            outcome: "network", ms: null, error,
            stdout: live ? live.stdout : "", stderr: live ? live.stderr : "",
            display: live ? live.display : [],
        };
    }

    // -- one run -----------------------------------------------------------

    function serverTiming(response) {
        const m = /(?:^|,)\s*exec\s*;[^,]*\bdur=([0-9.]+)/.exec(
            response.headers.get("Server-Timing") || "");
        return m ? parseFloat(m[1]) : null;
    }

    // What the page makes of one answer; `sent` is the id the request carried.
    function interpret(response, text, sent) {
        let answer = null;
        try {
            answer = JSON.parse(text);
        } catch (e) { /* handled below */ }
        const status = response.status;
        if (!answer || typeof answer !== "object" || Array.isArray(answer)) {
            const type = (response.headers.get("Content-Type") || "no type").split(";")[0];
            return {
                outcome: "bad-answer",
                ms: null,
                error: "The server answered HTTP " + status +
                       (response.statusText ? " " + response.statusText : "") +
                       " with " + type + ", not the JSON mod_pyexec sends. " +
                       "Is mod_pyexec handling " + ENDPOINT + "?",
            };
        }
        const run = {
            outcome: "ok",
            stdout: typeof answer.stdout === "string" ? answer.stdout : "",
            stderr: typeof answer.stderr === "string" ? answer.stderr : "",
            error: typeof answer.error === "string" ? answer.error : "",
            session: typeof answer.id === "string" ? answer.id : "",
            display: Array.isArray(answer.display) ? answer.display : [],
            ms: serverTiming(response),
        };
        if (response.ok) {
            if (run.error && /Session terminated/i.test(run.error)) {
                run.outcome = "terminated";
                run.ended = true;
                run.notice = "This session has ended and its variables are gone. " +
                             "The next run starts a new session.";
            } else if (run.error) {
                run.outcome = "error";
            }
            return run;
        }
        run.outcome = "http-" + status;
        if (!run.error) run.error = "The server answered HTTP " + status + ".";
        if (status === 404 && sent) {
            run.ended = true;
            run.session = sent;
            run.notice = "Session " + shortId(sent) + " no longer exists (it " +
                         "expired, was ended, or the id is mistyped). The next " +
                         "run starts a new session.";
        } else if (status === 400 && sent && /'id'/.test(run.error)) {
            run.ended = true;
            run.notice = "That is not a session id, so the field was cleared: " +
                         "the next run starts a new session.";
        } else if (status === 429 || status === 503) {
            const after = response.headers.get("Retry-After");
            if (after) run.notice = "Try again in " + after + " s.";
        }
        return run;
    }

    // The Execute button stays focusable while busy (aria-disabled, not
    // disabled), so keyboard focus is not thrown to <body> by every run;
    // `busy` is what refuses a second request.
    function setBusy(on) {
        busy = on;
        els.run.setAttribute("aria-disabled", on ? "true" : "false");
        els.run.setAttribute("aria-busy", on ? "true" : "false");
        els.run.textContent = on ? "Running…" : "Execute";
        els.fresh.disabled = on;
        els.sid.readOnly = on;
        // a run's live cell changes until its answer's cell replaces it
        if (on) els.runs.setAttribute("aria-busy", "true");
        else els.runs.removeAttribute("aria-busy");
        document.body.classList.toggle("is-running", on);
    }

    async function run() {
        if (busy) {
            setStatus("Still running the previous code…");
            return;
        }
        const code = editor.getCode();
        if (!code.trim()) {
            setStatus("Nothing to run: the editor is empty.", true);
            return;
        }
        setBusy(true);
        setStatus("Running…");
        const sent = currentSession();
        // the value of a last bare expression is shown, as in a notebook
        const body = {code, display_result: true};
        if (sent) body.id = sent;
        // sent with every run while the box holds text: what a program
        // reads from its standard input, as a terminal would give it
        if (els.stdin && els.stdin.value) body.stdin = els.stdin.value;
        const no = ++runNo;
        let result;
        let live = null;
        const abort = new AbortController();
        // the whole run, its events included
        const timer = setTimeout(() => abort.abort(), CLIENT_TIMEOUT_MS);
        try {
            const response = await fetch(ENDPOINT, {
                method: "POST",
                // output as it is written; refusals still come as JSON
                headers: {"Content-Type": "application/json",
                          "Accept": "text/event-stream, application/json"},
                body: JSON.stringify(body),
                cache: "no-store",
                credentials: "same-origin",
                signal: abort.signal,
            });
            if (isEventStream(response)) {
                // its headers go out as the run starts
                const started = performance.now();
                live = liveCell(no, code);
                result = await readEvents(response, live, sent, started);
            } else {
                result = interpret(response, await response.text(), sent);
            }
        } catch (err) {
            result = failed(err, live);
        } finally {
            clearTimeout(timer);
        }
        result.no = no;
        result.code = code;
        result.newSession = !sent && !!result.session;
        if (result.ended) {
            setSession("");
        } else if (result.session) {
            setSession(result.session);
        }
        // the results log announces the cell; the status line only keeps
        // what is wrong in view, so nothing is read out twice
        addCell(result, live);
        setStatus(result.error ? "Run " + no + ": " + result.error : "",
                  !!result.error);
        setBusy(false);
    }

    // -- wiring ----------------------------------------------------------

    async function copySession() {
        const id = currentSession();
        if (!id) {
            setStatus("No session yet: the first run starts one.");
            return;
        }
        try {
            await navigator.clipboard.writeText(id);
        } catch (e) {
            // no Clipboard API outside secure contexts (plain http)
            els.sid.select();
            if (!document.execCommand || !document.execCommand("copy")) {
                setStatus("Copying is not allowed here: the id is selected, " +
                          "copy it with Ctrl+C.", true);
                return;
            }
        }
        setStatus("Session ID copied.");
    }

    function newSession() {
        const old = currentSession();
        if (old) {
            // free its interpreter on the server now rather than at idle
            // expiry; nothing waits for this, and a failure changes nothing.
            // The id goes in a header: a URL is what proxies and logs keep
            fetch(ENDPOINT, {method: "DELETE",
                             headers: {"PyExec-Session": old}})
                .catch(() => {});
        }
        setSession("");
        runNo = 0;
        els.runs.textContent = "";
        els.empty.hidden = false;
        setStatus("New session: the next run starts it.");
        editor.focus();
    }

    function sessionEdited() {
        const id = currentSession();
        if (id === (els.sid.dataset.known || "")) return;
        if (id && !SESSION_ID.test(id)) {
            setStatus("That is not a session id: ids look like " +
                      "0b7c2c5e-3f0e-4a52-9d8e-3f3b8c1d2a11.", true);
            return;
        }
        setSession(id);
        if (els.runs.children.length) {
            addMarker(id ? "Now in session " + shortId(id) + "." :
                           "No session: the next run starts a new one.");
        }
        setStatus(id ? "The next run uses session " + shortId(id) + "." :
                       "The next run starts a new session.");
    }

    function loadExample() {
        const value = els.examples.value;
        if (value === "") return;
        const ex = EXAMPLES[Number(value)];
        els.examples.value = "";
        if (!ex) return;
        editor.setCode(ex.code);
        editor.focus();
        setStatus("Loaded the example “" + ex.title + "”. Ctrl+Enter runs it.");
    }

    // Chrome changes a closed <select> on every arrow key; loading an
    // example there would replace the user's code while they browse the
    // list. Picked by mouse or touch, it loads; by keyboard, Enter loads.
    let examplesByKey = false;
    function examplesKey(e) {
        if (e.key === "Enter" || e.key === " ") {
            if (els.examples.value !== "") {
                e.preventDefault();
                loadExample();
            }
        } else if (e.key.startsWith("Arrow") || e.key.length === 1 ||
                   e.key === "Home" || e.key === "End" ||
                   e.key.startsWith("Page")) {
            examplesByKey = true;
        }
    }

    function examplesChanged() {
        if (examplesByKey) {
            examplesByKey = false;
            const ex = EXAMPLES[Number(els.examples.value)];
            if (ex) setStatus("Enter loads the example “" + ex.title + "”.");
            return;
        }
        loadExample();
    }

    function init() {
        EXAMPLES.forEach((ex, i) => {
            const opt = el("option", null, ex.title);
            opt.value = String(i);
            els.examples.append(opt);
        });
        editor = setupEditor();
        document.documentElement.dataset.editor = editor.kind;
        let saved = "";
        try { saved = sessionStorage.getItem(SESSION_KEY) || ""; } catch (e) { /* off */ }
        setSession(saved);

        els.run.addEventListener("click", run);
        els.copy.addEventListener("click", copySession);
        els.fresh.addEventListener("click", newSession);
        els.sid.addEventListener("change", sessionEdited);
        els.sid.addEventListener("keydown", (e) => {
            // Ctrl+Enter goes on to the page's handler and runs
            if (e.key === "Enter") sessionEdited();
        });
        els.examples.addEventListener("keydown", examplesKey);
        els.examples.addEventListener("change", examplesChanged);
        // Ctrl+Enter from anywhere on the page, not only the editor
        document.addEventListener("keydown", (e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.defaultPrevented) {
                e.preventDefault();
                run();
            }
        });
    }

    init();
}());
