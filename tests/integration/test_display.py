"""Rich output (issue 14): display(), matplotlib's figures, pandas' tables
and the value of a final bare expression, in the answer's "display" list
(the shape of Jupyter's display_data), with PyExecMaxDisplay's cap, the
worker's checks of what a helper sends, and the sandbox around it all."""
import base64
import json
import os
import select
import socket
import struct
import uuid
import xml.etree.ElementTree as ET

import pytest

from . import pyhttpd
from .conftest import Client, start

STACK = all(os.path.isdir("/usr/lib/python3/dist-packages/" + p)
            for p in ("numpy", "pandas", "matplotlib"))
needs_stack = pytest.mark.skipif(not STACK, reason="python3-numpy, -pandas "
                                 "and -matplotlib are not installed")
MEMORY_MSG = "Memory limit exceeded. Session terminated."
CRASH_MSG = "Interpreter crashed. Session terminated."


@pytest.fixture(scope="module")
def server(request):
    directives = {"PyExecSpareHelpers": 2}
    if STACK:
        directives["PyExecAllowModules"] = "numpy pandas matplotlib"
    return start(request, directives=directives)


@pytest.fixture(scope="module")
def small(request):
    """A 64K display cap, and user code that may write to its own
    connection (no import hook), to forge what a helper sends."""
    return start(request, directives={"PyExecMaxDisplay": "64K",
                                      "PyExecTestNoImportHook": "On",
                                      "PyExecSpareHelpers": 2})


def run(server, code, sid=None, display_result=True, expect=200, **extra):
    body = {"code": code, "display_result": display_result}
    body.update(extra)
    if sid:
        body["id"] = sid
    r = Client(server).post(body)
    assert r.status_code == expect, (r.status_code, r.text[:500])
    return r.json()


def png_size(b64):
    png = base64.b64decode(b64, validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


# --- the contract stays as it was --------------------------------------

def test_plain_code_has_no_display_key(server):
    c = Client(server)
    assert set(c.run("x = 5")) == {"id"}
    # a bare expression shows nothing unless the request asks
    assert set(c.run("1 + 1")) == {"id"}
    out = c.run("print('hi')\n2 * 3")
    assert out["stdout"] == "hi\n" and "display" not in out


def test_display_result_must_be_a_boolean(server):
    r = Client(server).post({"code": "1", "display_result": "yes"})
    assert r.status_code == 400
    assert "display_result" in r.json()["error"]


# --- the value of a final bare expression --------------------------------

def test_final_expression_is_displayed_when_asked(server):
    out = run(server, "x = 6\nx * 7")
    assert out["display"] == [{"data": {"text/plain": "42"}, "metadata": {},
                               "stdout_offset": 0}]
    sid = out["id"]
    # the session keeps its variables; None, statements and a trailing
    # semicolon show nothing, as in a notebook
    for code in ("x", "None", "y = x", "print(x)", "x;", "x  ;  # quiet"):
        out = run(server, code, sid)
        if code == "x":
            assert out["display"][0]["data"]["text/plain"] == "6"
        else:
            assert "display" not in out, (code, out)


def test_final_expression_with_top_level_await(server):
    out = run(server, "import asyncio\nasync def f():\n"
                      "    await asyncio.sleep(0)\n    return 'done'\n"
                      "await f()")
    assert out["display"][0]["data"]["text/plain"] == "'done'"


def test_a_syntax_error_reads_as_without_display(server):
    plain = Client(server).run("x = (1,\nprint(2)")
    shown = run(server, "x = (1,\nprint(2)")
    assert "display" not in shown
    assert shown["stderr"] == plain["stderr"]
    assert "SyntaxError" in shown["stderr"]


def test_an_exception_in_the_final_expression(server):
    out = run(server, "print('before')\n1 / 0")
    assert out["stdout"] == "before\n"
    assert "ZeroDivisionError" in out["stderr"]
    assert "display" not in out


# --- display() and IPython's rules ---------------------------------------

RICH = r'''
class Rich:
    def _repr_html_(self): return '<b>bold</b>'
    def _repr_markdown_(self): return '*md*'
    def _repr_latex_(self): return r'$\alpha$'
    def _repr_json_(self): return {'a': [1, 2]}
    def _repr_svg_(self):
        return '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="2"/>'
    def _repr_png_(self): return PNG
    def __repr__(self): return 'Rich()'
import base64
PNG = base64.b64decode(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==')
'''


def test_display_follows_ipython_rules(server):
    out = run(server, RICH + "display(Rich())")
    (item,) = out["display"]
    data = item["data"]
    assert data["text/plain"] == "Rich()"
    assert data["text/html"] == "<b>bold</b>"
    assert data["text/markdown"] == "*md*"
    assert data["text/latex"] == "$\\alpha$"
    assert data["application/json"] == {"a": [1, 2]}    # a JSON value
    assert png_size(data["image/png"]) == (1, 1)
    svg = ET.fromstring(data["image/svg+xml"])
    assert svg.tag.endswith("svg") and svg.get("width") == "4"


def test_mimebundle_metadata_raw_and_include(server):
    out = run(server, r'''
class B:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {'text/html': '<i>b</i>', 'text/plain': 'B!'}, {'text/html': {'isolated': True}}
    def _repr_html_(self): return 'never: the bundle has it'
display(B())
display(B(), exclude=['text/html'])
display({'text/plain': 'raw', 'text/html': '<p>raw</p>'}, raw=True)
display(B(), metadata={'note': 1})
display(1, 'two')
display({'text/html': 'a\x00b\u2028'}, raw=True)
''')
    items = out["display"]
    assert items[0]["data"] == {"text/html": "<i>b</i>", "text/plain": "B!"}
    assert items[0]["metadata"] == {"text/html": {"isolated": True}}
    assert items[1]["data"] == {"text/plain": "B!"}
    assert items[2]["data"] == {"text/plain": "raw", "text/html": "<p>raw</p>"}
    assert items[3]["metadata"]["note"] == 1
    assert [i["data"] for i in items[4:6]] == [{"text/plain": "1"},
                                                {"text/plain": "'two'"}]
    # text a program may produce, NULs too, arrives as it was
    assert items[6]["data"] == {"text/html": "a\x00b\u2028", "text/plain": ""}


def test_json_python_writes_is_json_the_worker_takes(server):
    """Numbers of any size, NULs in keys, keys that become equal as
    strings, deep nesting: what Python's json writes passes the worker's
    check, and the session lives on."""
    out = run(server, "display({'application/json': {'big': 10**30, "
                      "'\\x00': [[[[[]]]]]}}, raw=True, metadata={1: 'a', '1': 'b'})\n"
                      "x = []\nfor _ in range(500): x = [x]\n"
                      "display({'application/json': x, 'text/plain': 'deep'}, raw=True)\n"
                      "print('alive')")
    assert out["stdout"] == "alive\n", out
    first, deep = out["display"]
    assert first["data"]["application/json"]["big"] == 10**30
    assert first["data"]["application/json"]["\x00"] == [[[[[]]]]]
    assert deep["data"]["text/plain"] == "deep"


def test_a_failing_formatter_is_reported_and_left_out(server):
    out = run(server, r'''
class Half:
    def _repr_html_(self): raise ValueError('no html today')
    def _repr_markdown_(self): return '**still**'
    def __repr__(self): return 'Half()'
display(Half())
print('after')
''')
    (item,) = out["display"]
    assert item["data"] == {"text/markdown": "**still**", "text/plain": "Half()"}
    assert "no html today" in out["stderr"] and "_repr_html_" in out["stderr"]
    assert out["stdout"] == "after\n"


def test_items_say_where_they_fell_in_stdout(server):
    """Offsets count code points, as len() does, so that a client can cut
    stdout at them whatever the text's script."""
    out = run(server, "print('héllo ✓')\ndisplay(1)\nprint('日本')\n"
                      "display(2)\ndisplay(3)\nprint('end')")
    stdout = out["stdout"]
    offsets = [i["stdout_offset"] for i in out["display"]]
    assert offsets == [len("héllo ✓\n"), len("héllo ✓\n日本\n"),
                       len("héllo ✓\n日本\n")]
    assert stdout[:offsets[0]] == "héllo ✓\n"
    assert stdout[offsets[0]:offsets[1]] == "日本\n"
    assert stdout[offsets[2]:] == "end\n"


# --- matplotlib -----------------------------------------------------------

@needs_stack
def test_plt_show_displays_each_figure_as_png_of_its_size(server):
    out = run(server, "import matplotlib.pyplot as plt\n"
                      "plt.figure(figsize=(4, 2), dpi=50); plt.plot([1, 3, 2])\n"
                      "plt.figure(figsize=(3, 3), dpi=40); plt.bar([1, 2], [3, 4])\n"
                      "print('before')\nplt.show()\nprint('after')")
    a, b = out["display"]
    assert png_size(a["data"]["image/png"]) == (200, 100)
    assert a["metadata"]["image/png"] == {"width": 200, "height": 100}
    assert a["data"]["text/plain"].startswith("<Figure size 200x100")
    assert png_size(b["data"]["image/png"]) == (120, 120)
    assert a["stdout_offset"] == b["stdout_offset"] == len("before\n")
    # shown, then closed
    out = run(server, "import matplotlib.pyplot as plt\nplt.get_fignums()",
              out["id"])
    assert out["display"][0]["data"]["text/plain"] == "[]"


@needs_stack
def test_figures_open_at_the_end_are_displayed_once(server):
    out = run(server, "import matplotlib.pyplot as plt\n"
                      "fig, ax = plt.subplots(figsize=(2, 1), dpi=100)\n"
                      "ax.plot([0, 1])\nfig")
    (item,) = out["display"]        # the final value, not again at the end
    assert png_size(item["data"]["image/png"]) == (200, 100)
    # without display_result the open figure is still shown at the end
    out = run(server, "import matplotlib.pyplot as plt\n"
                      "plt.plot([1, 2])", display_result=False)
    (item,) = out["display"]
    assert png_size(item["data"]["image/png"]) == (640, 480)


@needs_stack
def test_the_png_is_the_figure(server):
    """Not only a PNG header: the pixels are the figure's (a red square
    fills a red figure)."""
    out = run(server, "import matplotlib.pyplot as plt, io\n"
                      "fig = plt.figure(figsize=(1, 1), dpi=20, facecolor='red')\n"
                      "b = io.BytesIO(); fig.savefig(b, format='png')\n"
                      "print(len(b.getvalue()))")
    (item,) = out["display"]
    assert int(out["stdout"]) > 0          # savefig to BytesIO works too
    Image = pytest.importorskip("PIL.Image")    # python3-pil: matplotlib's
    import io
    img = Image.open(io.BytesIO(base64.b64decode(item["data"]["image/png"])))
    assert img.size == (20, 20)
    assert img.convert("RGB").getpixel((10, 10)) == (255, 0, 0)


@needs_stack
def test_savefig_to_a_path_fails_and_writes_nothing(server):
    name = "/tmp/pyexec-fig-%s.png" % uuid.uuid4().hex
    out = run(server, "import matplotlib.pyplot as plt\nplt.plot([1])\n"
                      "plt.savefig(%r)" % name)
    assert "Error" in out["stderr"], out
    assert not os.path.exists(name)


@needs_stack
def test_a_huge_figure_ends_as_memory_limit(server):
    c = Client(server)
    sid = c.session()
    out = run(server, "import matplotlib.pyplot as plt\n"
                      "fig = plt.figure(figsize=(200, 200), dpi=100)\n"
                      "plt.show()", sid)
    # Under AddressSanitizer a failed C++ new (Agg's pixel buffer) is the
    # sanitizer's own out-of-memory report and exit, not std::bad_alloc:
    # the session ends all the same, as a crash
    allowed = {MEMORY_MSG, CRASH_MSG} if server.sanitized() else {MEMORY_MSG}
    assert out.get("error") in allowed, {k: str(v)[:200]
                                         for k, v in out.items()}
    assert c.session_get(sid).status_code == 404


# --- pandas -----------------------------------------------------------------

@needs_stack
def test_dataframe_and_series_display_as_tables(server):
    out = run(server, "import pandas as pd\n"
                      "df = pd.DataFrame({'city': ['Oslo', 'Lima'], "
                      "'temp': [4.5, 19.25]})\n"
                      "display(df['temp'])\ndf")
    series, frame = out["display"]
    for item in (series, frame):
        assert "<table" in item["data"]["text/html"]
    assert "19.25" in series["data"]["text/html"]
    html = frame["data"]["text/html"]
    assert "<td>Oslo</td>" in html and "<td>19.25</td>" in html
    assert frame["data"]["text/plain"].split() == \
        ["city", "temp", "0", "Oslo", "4.50", "1", "Lima", "19.25"]


# --- the sandbox around the stack ----------------------------------------

def listening():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


STACK_ESCAPES = '''
import pandas as pd, numpy as np, matplotlib.pyplot as plt
for what, f in [
    ("csv", lambda: pd.DataFrame({"a": [1]}).to_csv(%(base)r + ".csv")),
    ("npy", lambda: np.save(%(base)r + ".npy", np.arange(3))),
    ("tofile", lambda: np.arange(3).tofile(%(base)r + ".bin")),
    ("png", lambda: plt.figure().savefig(%(base)r + ".png")),
    ("url", lambda: pd.read_csv("http://127.0.0.1:%(port)d/x.csv")),
    ("fromfile", lambda: np.fromfile("/etc/passwd", dtype=np.uint8)),
]:
    try:
        f()
        print(what, "worked")
    except BaseException as e:
        print(what, "refused", type(e).__name__)
plt.close("all")
'''


def assert_no_escape(server):
    base = "/tmp/pyexec-stack-%s" % uuid.uuid4().hex
    lsock = listening()
    try:
        out = run(server, STACK_ESCAPES % {"base": base,
                                           "port": lsock.getsockname()[1]})
        assert "worked" not in out.get("stdout", ""), out
        assert out["stdout"].count("refused") == 6, out
        # judged on the host: no file, no connection
        assert not [f for f in os.listdir("/tmp")
                    if f.startswith(os.path.basename(base))]
        assert select.select([lsock], [], [], 0.2)[0] == []
    finally:
        lsock.close()


@needs_stack
def test_the_stack_cannot_write_or_connect(server):
    assert_no_escape(server)


@needs_stack
def test_the_stack_cannot_write_or_connect_without_the_import_hook(request):
    bare = start(request, directives={
        "PyExecAllowModules": "numpy pandas matplotlib",
        "PyExecTestNoImportHook": "On", "PyExecSpareHelpers": 1})
    try:
        assert_no_escape(bare)
    finally:
        bare.stop()


# --- the cap ----------------------------------------------------------------

def test_an_item_beyond_the_cap_is_replaced_by_a_marker(small):
    out = run(small, "display({'text/plain': 'x' * 100000}, raw=True)\n"
                     "print('between')\n"
                     "display('small')")
    big, after = out["display"]
    assert big["metadata"] == {"dropped": True}
    text = big["data"]["text/plain"]
    assert "display dropped" in text and "PyExecMaxDisplay" in text
    assert big["stdout_offset"] == 0
    assert after["data"] == {"text/plain": "'small'"}
    assert after["stdout_offset"] == len("between\n")


def test_the_cap_counts_every_item_of_a_run(small):
    out = run(small, "for i in range(40):\n"
                     "    display({'text/plain': str(i) * 2000}, raw=True)")
    items = out["display"]
    kept = [i for i in items if not i["metadata"].get("dropped")]
    assert 20 <= len(kept) < 40 and len(items) == 40
    assert sum(len(json.dumps(i)) for i in kept) <= 64 * 1024 + 40 * 100
    # the next run has the whole cap again
    out = run(small, "display('x' * 1000)", out["id"])
    assert not out["display"][0]["metadata"].get("dropped")


def test_at_most_256_items_per_run(small):
    out = run(small, "for i in range(1000):\n    display(i)")
    items = out["display"]
    assert len(items) == 256
    assert items[-1]["metadata"] == {"dropped": True}
    assert "items" in items[-1]["data"]["text/plain"]
    assert items[254]["data"] == {"text/plain": "254"}


def test_zero_display_cap(request):
    none = start(request, directives={"PyExecMaxDisplay": "0",
                                      "PyExecSpareHelpers": 1})
    try:
        out = run(none, "display(1)\n2")
        assert [i["metadata"] for i in out["display"]] == [{"dropped": True}] * 2
    finally:
        none.stop()


# --- what a helper sends is checked -----------------------------------------

FORGE = r'''
import random, struct
os = random._os
def item(off, js):
    js = js.encode()
    return struct.pack('<II', off, len(js)) + js
def result(out, display, count):
    fixed = struct.pack('<IIIIQQII', 0, 0, len(out), 0, 1000, 0,
                        len(display), count)
    payload = fixed + out + display
    return struct.pack('<IHHII', 0x58455950, %d, 3, 0, len(payload)) + payload
import stat
for fd in range(64):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            os.write(fd, result(b'forged', FORGED, COUNT))
    except OSError:
        pass
import time
time.sleep(1)
''' % pyhttpd._proto_version()


@pytest.mark.parametrize("forged,count,why", [
    ("item(0, '{\"data\":{\"text/plain\":\"x\"},\"metadata\":{}')", 1,
     "malformed display item"),
    ("item(0, '{\"data\":{\"text/plain\":1},\"metadata\":{}}')", 1,
     "malformed display item"),
    ("item(0, '{\"data\":{\"text/plain\":\"x\"},\"metadata\":{},"
     "\"stdout_offset\":3}')", 1, "malformed display item"),
    ("item(99, '{\"data\":{\"text/plain\":\"x\"},\"metadata\":{}}')", 1,
     "outside its stdout"),
    ("item(0, '{\"data\":{\"text/plain\":\"x\"},\"metadata\":{}}')", 2,
     "malformed display section"),
    ("item(0, '{\"data\":{\"text/plain\":\"x\"},\"metadata\":{}}')[:-3]", 1,
     "malformed display section"),
    ("item(0, '{\"data\":{\"text/plain\":\"' + 'x' * 200000 + '\"},"
     "\"metadata\":{}}')", 1, "beyond the session's caps"),
])
def test_forged_display_items_end_the_session(small, forged, count, why):
    """User code writes its own answer with display items an honest
    helper never sends: the worker refuses it, the session ends as a
    crash, and nothing of it reaches the client."""
    c = Client(small)
    sid = c.session()
    before = small.read_log().count(why)
    code = FORGE.replace("FORGED", forged).replace("COUNT", str(count))
    out = run(small, code, sid)
    assert out.get("error") == CRASH_MSG, {k: str(v)[:200]
                                           for k, v in out.items()}
    assert "stdout" not in out and "display" not in out
    assert c.session_get(sid).status_code == 404
    assert small.read_log().count(why) == before + 1


def test_a_forged_well_formed_item_is_passed_on_as_json(small):
    """The worker's check is of shape, not of origin: a well-formed item
    from user code is the user's own output, and reaches its answer as
    valid JSON, the offset the worker's."""
    code = FORGE.replace(
        "FORGED", "item(6, '{\"data\":{\"text/plain\":\"\\\\u0000\\u00e9\","
                  "\"application/x+json\":{\"k\":[1,null]}},"
                  "\"metadata\":{\"m\":true}}  ')").replace("COUNT", "1")
    r = Client(small).post({"code": code})
    body = r.json()
    assert body["stdout"] == "forged"
    assert body["display"] == [{"data": {"text/plain": "\u0000\u00e9",
                                         "application/x+json": {"k": [1, None]}},
                                "metadata": {"m": True}, "stdout_offset": 6}]
