"""Output as it happens (issue 15): POST /execute with Accept:
text/event-stream answers 200 at once with Server-Sent Events, stdout and
stderr as the code writes them, display items, and a last "result" event
that is exactly the plain answer. Read by a real SSE parser (sse.py)."""
import json
import time

import pytest

from . import pyhttpd
from .conftest import Client, start
from .sse import Stream

TIMEOUT_MSG = "Execution timeout. Session terminated."
MEMORY_MSG = "Memory limit exceeded. Session terminated."
CRASH_MSG = "Interpreter crashed. Session terminated."


@pytest.fixture(scope="module")
def server(request):
    return start(request, directives={"PyExecMaxOutput": "64K",
                                      "PyExecSpareHelpers": 3})


@pytest.fixture(scope="module")
def bare(request):
    """User code that may write to its own connection (no import hook)."""
    return start(request, directives={"PyExecTestNoImportHook": "On",
                                      "PyExecMaxOutput": "64K",
                                      "PyExecSpareHelpers": 2})


def stream(server, code, sid=None, **extra):
    body = {"code": code}
    body.update(extra)
    if sid:
        body["id"] = sid
    return Stream(server.port, body)


def streamed(server, code, sid=None, **extra):
    s = stream(server, code, sid, **extra)
    assert s.status == 200, s.response.read()[:300]
    assert s.headers["Content-Type"].startswith("text/event-stream")
    events = s.events()
    assert events and events[-1].name == "result", events
    assert [e.name for e in events].count("result") == 1
    return events


def text_of(events, name):
    return "".join(e.json()["text"] for e in events if e.name == name)


def without_id(answer):
    return {k: v for k, v in answer.items() if k != "id"}


# --- the stream --------------------------------------------------------------

CODE = ("import time\nprint('first')\ntime.sleep(0.5)\n"
        "print('é second', end='')\nprint(' third')\n1/0")


def test_events_add_up_to_the_plain_answer(server):
    events = streamed(server, CODE)
    result = events[-1].json()
    plain = Client(server).run(CODE)
    assert without_id(result) == without_id(plain)
    assert text_of(events, "stdout") == result["stdout"]
    assert text_of(events, "stderr") == result["stderr"]
    assert "ZeroDivisionError" in result["stderr"]
    # stdout came before stderr, in the order written
    names = [e.name for e in events]
    assert names.index("stderr") > max(i for i, n in enumerate(names)
                                       if n == "stdout")


def test_output_arrives_as_it_is_written(server):
    """The line before a 0.5 s sleep arrives long before the run ends;
    the headers before the first line (200 at once)."""
    s = stream(server, CODE)
    answered = time.monotonic() - s.t0
    events = s.events()
    first = next(e for e in events if e.name == "stdout")
    assert first.json()["text"].startswith("first")
    assert events[-1].at - first.at > 0.4, events
    assert answered < first.at + 0.05


def test_flush_sends_at_once_while_the_code_computes(server):
    events = streamed(server, "import time\nprint('go', flush=True)\n"
                              "t = time.monotonic()\n"
                              "while time.monotonic() - t < 0.6: pass\n"
                              "print('done')")
    go = next(e for e in events if e.name == "stdout")
    assert go.json()["text"] == "go\n"
    assert events[-1].at - go.at > 0.5
    # and without flush, coalescing sends it within a few ms all the same
    events = streamed(server, "import time\nprint('go')\n"
                              "t = time.monotonic()\n"
                              "while time.monotonic() - t < 0.6: pass")
    go = next(e for e in events if e.name == "stdout")
    assert events[-1].at - go.at > 0.5


def test_a_write_then_a_sleep_is_one_event(server):
    """print()'s text and its newline are one event, not two."""
    events = streamed(server, "import time\nprint('a')\ntime.sleep(0.2)\n"
                              "print('b')")
    assert [e.json()["text"] for e in events if e.name == "stdout"] == \
        ["a\n", "b\n"]


def test_large_writes_split_between_characters(server):
    """A write larger than one frame goes as several events, each cut
    between characters: none is repaired with U+FFFD."""
    events = streamed(server, "print('a' + 'é' * 20000 + '😀' * 3000)")
    pieces = [e.json()["text"] for e in events if e.name == "stdout"]
    assert len(pieces) > 1
    assert "".join(pieces) == "a" + "é" * 20000 + "😀" * 3000 + "\n"
    assert not any("\ufffd" in p for p in pieces)


def test_display_items_stream_with_their_offsets(server):
    events = streamed(server, "print('ab')\ndisplay({'text/html': '<b>x</b>', "
                              "'text/plain': 'x'}, raw=True)\nprint('c')\n7",
                      display_result=True)
    shown = [e.json() for e in events if e.name == "display"]
    result = events[-1].json()
    assert shown == result["display"]
    assert [d["stdout_offset"] for d in shown] == [3, 5]
    assert shown[1]["data"] == {"text/plain": "7"}


def test_stdin_while_streaming(server):
    events = streamed(server, "print('Hi', input('Name? '))", stdin="Ada\n")
    assert events[-1].json()["stdout"] == "Name? Hi Ada\n"
    assert text_of(events, "stdout") == "Name? Hi Ada\n"


def test_without_the_accept_header_nothing_changes(server):
    r = Client(server).post({"code": "print(1)"})
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json()) == {"id", "stdout"}
    r = Client(server).post({"code": "print(1)"},
                            headers={"Accept": "application/json"})
    assert r.headers["Content-Type"] == "application/json"


def test_accept_is_read_as_media_ranges(server):
    for accept, events in (("text/event-stream;q=0, application/json", False),
                           ("application/json;q=0.9, text/event-stream;q=0.5",
                            True),
                           ("TEXT/Event-Stream", True),
                           ("text/event-streamer", False)):
        r = Client(server).post({"code": "print(1)"},
                                headers={"Accept": accept})
        assert r.headers["Content-Type"].startswith(
            "text/event-stream" if events else "application/json"), accept


def test_a_slow_client_gets_the_whole_answer_not_a_timeout(request):
    """A client that reads nothing for 3 s while the run writes more than
    the sockets hold (16 MB of display items; loopback's buffers take about
    4): the worker stops sending it events rather than wait on it with the
    run's clock going, and the last event, read late, is the whole answer
    of a run that ended well in time."""
    import http.client
    server = start(request, directives={"PyExecMaxDisplay": "16M",
                                        "PyExecSpareHelpers": 1})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    code = ("for i in range(16):\n"
            "    display({'text/plain': '%x' % i * 1_000_000}, raw=True)\n"
            "print('done')")
    conn.request("POST", "/execute", json.dumps({"code": code}),
                 {"Content-Type": "application/json",
                  "Accept": "text/event-stream"})
    time.sleep(3)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    assert r.status == 200
    last = body.rstrip("\n").rsplit("\n\n", 1)[-1]
    assert last.startswith("event: result\ndata: ")
    result = json.loads(last[len("event: result\ndata: "):])
    assert "error" not in result, {k: str(v)[:100] for k, v in result.items()}
    assert result["stdout"] == "done\n"
    assert [d["data"]["text/plain"][:1] for d in result["display"]] == \
        list("0123456789abcdef")
    server.stop()


def test_a_refusal_before_the_run_is_a_plain_answer(server):
    s = stream(server, "1", sid="0b7c2c5e-3f0e-4a52-9d8e-3f3b8c1d2a11")
    assert s.status == 404
    assert s.headers["Content-Type"] == "application/json"
    assert "error" in json.loads(s.response.read())
    s = Stream(server.port, {"code": 1})
    assert s.status == 400


# --- limits while streaming ---------------------------------------------------

def test_timeout_is_the_last_event(server):
    c = Client(server)
    sid = c.session()
    events = streamed(server, "print('start', flush=True)\nwhile True: pass",
                      sid)
    assert events[0].json() == {"text": "start\n"}
    assert events[-1].json() == {"id": sid, "error": TIMEOUT_MSG}
    assert 1.9 < events[-1].at < 3.0
    assert c.session_get(sid).status_code == 404


def test_memory_limit_is_the_last_event(server):
    events = streamed(server, "print('x', flush=True)\na = ' ' * 300_000_000")
    assert events[-1].json()["error"] == MEMORY_MSG


def test_a_crash_is_the_last_event(bare):
    events = streamed(bare, "import random\nprint('x', flush=True)\n"
                            "random._os.abort()")
    assert events[-1].json()["error"] == CRASH_MSG


def test_the_output_cap_holds_for_the_whole_stream(server):
    events = streamed(server, "for i in range(5000):\n"
                              "    print('%040d' % i, flush=i % 7 == 0)")
    out = text_of(events, "stdout")
    result = events[-1].json()
    assert len(out.encode()) <= 64 * 1024
    assert result["stdout"].startswith(out)
    assert result["stdout"].endswith("[output truncated: more than 65536 "
                                     "bytes]\n")


# --- a client that leaves -----------------------------------------------------

def test_a_client_that_disconnects_leaves_the_run_to_finish(server):
    """Decided and documented: the run goes on to its end, so that the
    session is what its code makes of it; the next request works."""
    c = Client(server)
    sid = c.session()
    s = stream(server, "import time\nprint('started', flush=True)\n"
                       "time.sleep(0.5)\nfinished = True", sid)
    first = next(iter(s))
    assert first.name == "stdout"
    s.close()
    time.sleep(0.8)
    out = c.run("print(finished)", sid)
    assert out["stdout"] == "True\n"
    # and again straight after a disconnect, while the run still goes on
    s = stream(server, "import time\nprint('x', flush=True)\n"
                       "time.sleep(0.4)\ny = 2", sid)
    next(iter(s))
    s.close()
    assert c.run("print(y)", sid)["stdout"] == "2\n"


# --- what a helper streams is checked ------------------------------------------

FORGE = r'''
import random, stat, struct, time
os = random._os
def output(kind, payload):
    return struct.pack('<IHHII', 0x58455950, %d, 5, kind, len(payload)) + payload
skipped = struct.pack('<IHHII', 0x58455950, %d, 4, 0, 0)
for fd in range(64):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            os.write(fd, FORGED)
    except OSError:
        pass
time.sleep(1)
''' % (pyhttpd._proto_version(), pyhttpd._proto_version())


@pytest.mark.parametrize("forged,streaming", [
    ("output(1, b'')", True),
    ("output(1, b'x') + skipped", True),
    ("output(1, b'unasked')", False),
    ("output(9, b'no such kind')", True),
    # beyond the 64K cap; smaller than a socket's buffer, so that the
    # write to any other connection of the helper does not block
    ("output(1, b'x' * 70000)", True),
    ("output(3, b'not an item')", True),
    ("output(3, struct.pack('<II', 5, 2) + b'{}')", True),
])
def test_forged_output_ends_the_session(bare, forged, streaming):
    c = Client(bare)
    sid = c.session()
    logged = bare.read_log().count("PYX00303")
    code = FORGE.replace("FORGED", forged)
    if streaming:
        result = streamed(bare, code, sid)[-1].json()
    else:
        result = c.run(code, sid)
    assert result.get("error") == CRASH_MSG, result
    assert c.session_get(sid).status_code == 404
    assert bare.read_log().count("PYX00303") == logged + 1
