"""Session ids are bearer capabilities: none may appear on the status
page, in any log line or note, or in a request line httpd keeps; and GET
and DELETE of a session take the id in a PyExec-Session header too, so
that clients can keep it out of URLs."""
import http.client as http_client
import os
import re
import threading
import uuid

import pytest
import requests

from .conftest import Client, start
from .pyhttpd import wait_for

HEADER = "PyExec-Session"

# What an operator may well have: the status page with every worker's
# request line, an access log with the request line, the query and the
# path (%r %q %U) and our note, Debian's combined format, a rewrite into
# the endpoint and an ErrorDocument that lands on it; and mod_log_debug
# writing the request line as the MPM hands it to the scoreboard, before
# the URI is matched to a handler (quick_handler). httpd's own
# core:trace5 and http:trace4 write every request line and header as
# received, before any module runs (Authorization headers as much as
# ids): that is the one place left, and it is documented.
CONF = r"""
LoadModule rewrite_module {moddir}/mod_rewrite.so
LoadModule log_debug_module {moddir}/mod_log_debug.so
ExtendedStatus On
LogMessage "quick_handler sees %{{THE_REQUEST}}" hook=quick_handler
LogFormat "%r|%q|%U|%{{pyexec-session}}n|%{{pyexec-outcome}}n" ids
CustomLog "logs/ids_log" ids
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{{Referer}}i\" \"%{{User-Agent}}i\"" combined
CustomLog "logs/combined_log" combined
RewriteEngine On
RewriteRule "^/run$" "/execute" [PT]
ErrorDocument 404 /execute
"""
LOGLEVEL = "trace8 core:trace4 http:trace3"


def forms(sid):
    """How a full id may show: whole in either case, or its last group
    (48 random bits), which no escaping of the dashes hides."""
    tail = sid[-12:]
    return [sid, sid.upper(), tail, tail.upper()]


def files_under(root):
    for d, _, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


@pytest.fixture
def logged(request):
    from .pyhttpd import _apxs
    return start(request, loglevel=LOGLEVEL,
                 directives={"PyExecSpareHelpers": 2},
                 extra_conf=CONF.format(moddir=_apxs("LIBEXECDIR")))


def test_no_full_id_on_the_status_page_or_in_any_log(logged):
    h = logged
    c = Client(h)
    a, b, d, e, f = (c.session() for _ in range(5))
    unknown = str(uuid.uuid4())
    used = [a, b, d, e, f, unknown]

    pages = []
    stop = threading.Event()

    def watch():
        s = requests.Session()
        while not stop.is_set():
            for q in ("", "?auto"):
                pages.append(s.get(h.url + "/server-status" + q,
                                   timeout=10).text)

    watcher = threading.Thread(target=watch)
    watcher.start()
    # what each request answered, checked once the leaks have been looked
    # for (an old server that refuses the header still leaks the rest)
    answers = []

    def expect(status, r):
        answers.append((status, r.status_code, r.request.method,
                        r.request.url))

    try:
        # a run in flight, its id in the query as well as in the body
        out = {}
        running = threading.Thread(target=lambda: out.update(r=c.http.post(
            c.url + "?id=" + a, json={"code": "import time\n"
                                      "time.sleep(1.5)", "id": a},
            timeout=30)))
        running.start()
        assert wait_for(lambda: c.session_get(a).json()["running"], 5)
        http = requests.Session()
        for r in (http.get(c.url, params={"id": a}),
                  http.get(c.url, headers={HEADER: a}),
                  http.get(c.url + "?x=1&id=%s&y=2" % a),
                  http.get(c.url + "?id=%s&id=%s" % (a.upper(), a)),
                  http.get(c.url + "?id=%s&other=%s" % (a, b)),
                  http.head(c.url + "?id=" + a),
                  http.get(h.url + "/run?id=" + d),
                  http.get(h.url + "/missing?id=" + e,
                           headers={HEADER: e})):
            expect(200, r)
        # the dashes escaped: not an id the API takes, but the same secret
        # (sent as is: requests would unescape them)
        conn = http_client.HTTPConnection("127.0.0.1", h.port, timeout=10)
        conn.request("GET", "/execute?id=" + a.replace("-", "%2D"))
        escaped = conn.getresponse().status
        conn.close()
        expect(404, http.get(c.url, params={"id": unknown}))
        expect(404, http.get(c.url, headers={HEADER: unknown}))
        running.join(30)
        expect(200, out["r"])
        expect(204, http.delete(c.url + "?id=%s&why=done" % b))
        expect(204, http.delete(c.url, headers={HEADER: f}))
        expect(404, http.delete(c.url, params={"id": f}))
    finally:
        stop.set()
        watcher.join(30)
    for q in ("", "?auto"):
        pages.append(requests.get(h.url + "/server-status" + q,
                                  timeout=10).text)

    # an access-log line is written after its answer has gone out: wait
    # for the last one, however it looks
    ids_path = os.path.join(h.root, "logs", "ids_log")
    wait_for(lambda: [l for l in open(ids_path)
                      if l.startswith("DELETE /execute?id=")
                      and l.endswith("|rejected\n")], 10)

    for page in pages:
        for sid in used:
            for form in forms(sid):
                assert form not in page, (sid, page)
    written = list(files_under(h.root))
    assert any(p.endswith("ids_log") for p in written)
    for path in written:
        with open(path, "rb") as fh:
            data = fh.read()
        for sid in used:
            for form in forms(sid):
                assert form.encode() not in data, (path, sid, form)

    assert escaped == 400
    assert [x[0] for x in answers] == [x[1] for x in answers], answers

    # and what may show does: the prefix, in the request line, the query
    # and the note; on the status page, the workers' request lines
    with open(ids_path) as fh:
        ids_log = fh.read()
    assert "GET /execute?x=1&id=%s...&y=2 HTTP/1.1|?x=1&id=%s...&y=2|" \
           "/execute|%s|info" % (a[:8], a[:8], a[:8]) in ids_log, ids_log
    assert "DELETE /execute HTTP/1.1||/execute|%s|deleted" % f[:8] \
        in ids_log, ids_log
    assert "DELETE /execute?id=%s... HTTP/1.1|?id=%s...|/execute|%s|" \
           "rejected" % (f[:8], f[:8], f[:8]) in ids_log, ids_log
    assert "GET /run?id=%s... HTTP/1.1" % d[:8] in ids_log, ids_log
    assert "GET /missing?id=%s... HTTP/1.1" % e[:8] in ids_log, ids_log
    with open(os.path.join(h.root, "logs", "combined_log")) as fh:
        assert '"DELETE /execute?id=%s...&why=done HTTP/1.1" 204' % b[:8] \
            in fh.read()
    assert any(re.search(r"/execute\?[^ <]*id=%s\.\.\." % a[:8], p)
               for p in pages), "no request line of ours on the status page"
    assert "quick_handler sees GET /execute?x=1&id=%s...&y=2 HTTP/1.1" \
        % a[:8] in h.read_log()


# --- the PyExec-Session header ------------------------------------------

def test_get_and_delete_by_header_answer_as_by_query(client):
    sid = client.run("x = 1")["id"]
    by_query = client.session_get(sid)
    by_header = client.http.get(client.url, headers={HEADER: sid},
                                timeout=10)
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.headers["Cache-Control"] == "no-store"
    assert by_header.json() == by_query.json()
    # either case, as in the query
    assert client.http.get(client.url, headers={HEADER: sid.upper()},
                           timeout=10).json()["id"] == sid

    r = client.http.delete(client.url, headers={HEADER: sid}, timeout=10)
    assert r.status_code == 204 and r.content == b""
    assert client.post({"code": "print(x)", "id": sid}).status_code == 404
    for method in ("GET", "DELETE"):
        r = client.http.request(method, client.url, headers={HEADER: sid},
                                timeout=10)
        assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize("value", ["", "nope", "0b7c2c5e-3f0e-4a52",
                                   "{0b7c2c5e-3f0e-4a52-9a1e-1f2a3b4c5d6e}"])
def test_a_malformed_header_is_400(client, value):
    for method in ("GET", "DELETE"):
        r = client.http.request(method, client.url, headers={HEADER: value},
                                timeout=10)
        assert r.status_code == 400, (method, value, r.text)
        assert HEADER in r.json()["error"]


def test_header_and_query_must_agree(client):
    a = client.session()
    b = client.session()
    r = client.http.get(client.url, params={"id": a}, headers={HEADER: a},
                        timeout=10)
    assert r.status_code == 200 and r.json()["id"] == a
    for method in ("GET", "DELETE"):
        r = client.http.request(method, client.url, params={"id": a},
                                headers={HEADER: b}, timeout=10)
        assert r.status_code == 400, r.text
        assert "different sessions" in r.json()["error"]
    # neither was ended by the refused DELETE
    assert client.session_get(a).status_code == 200
    assert client.session_get(b).status_code == 200
