"""The HTTP contract of POST /execute: output, errors, tracebacks."""
import subprocess

import pytest

CPYTHON = "/usr/bin/python3"


def cpython_stdin(code):
    """What CPython prints for a script read from standard input."""
    r = subprocess.run([CPYTHON, "-"], input=code, capture_output=True,
                       text=True, cwd="/")
    return r.stdout, r.stderr


def test_hello_world(client):
    r = client.post({"code": "print('Hello, World!')"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["id", "stdout"]
    assert body["stdout"] == "Hello, World!\n"


def test_assignment_answers_only_the_id(client):
    body = client.run("x = 5")
    assert list(body) == ["id"]


def test_stdout_and_stderr_together(client):
    body = client.run("import warnings\nprint('out')\n"
                      "print('err', file=__import__('io').StringIO())\n"
                      "1/0")
    assert body["stdout"] == "out\n"
    assert body["stderr"].endswith("ZeroDivisionError: division by zero\n")


def test_division_by_zero_traceback_exact(client):
    body = client.run("1 / 0")
    assert body["stderr"] == (
        "Traceback (most recent call last):\n"
        "  File \"<stdin>\", line 1, in <module>\n"
        "ZeroDivisionError: division by zero\n")
    assert "stdout" not in body


def test_output_before_exception_is_kept(client):
    body = client.run("print('before')\nraise ValueError('boom')")
    assert body["stdout"] == "before\n"
    assert body["stderr"].endswith("ValueError: boom\n")


@pytest.mark.parametrize("code", [
    "x = 1\ny = 2\n\nz = x / (y - 2)\n",
    "def f(n):\n    return g(n)\n\ndef g(n):\n    return 10 // n\n\nf(0)\n",
    "class A:\n    def m(self):\n        raise KeyError('k')\nA().m()\n",
    "try:\n    1/0\nexcept ZeroDivisionError as e:\n    raise RuntimeError('wrapped') from e\n",
    "try:\n    {}['missing']\nexcept KeyError:\n    int('x')\n",
    "import json\njson.loads('{')\n",
    "def f(:\n    pass\n",
    "x = (1,\n",
    "  indented = 1\n",
    "if True:\nprint('no indent')\n",
    "print('a'\n",
    "return 5\n",
    "'\\N{NOPE}'\n",
    "def r(): r()\nr()\n",
])
def test_traceback_matches_cpython(client, code):
    """Same stderr as CPython reading the script from stdin."""
    out, err = cpython_stdin(code)
    body = client.run(code)
    assert body.get("stdout", "") == out
    assert body.get("stderr", "") == err


@pytest.mark.parametrize("code,name", [
    ("import os", "os"),
    ("import sys", "sys"),
    ("import socket", "socket"),
    ("import subprocess", "subprocess"),
    ("import shutil", "shutil"),
    ("import pathlib", "pathlib"),
    ("import threading", "threading"),
    ("import os.path", "os.path"),
    ("from os import path", "os"),
    ("from os.path import join", "os.path"),
    ("import posix", "posix"),
    ("import _socket", "_socket"),
    ("import _posixsubprocess", "_posixsubprocess"),
    ("import _thread", "_thread"),
    ("import ctypes", "ctypes"),
    ("import _io", "_io"),
    ("__import__('os')", "os"),
    ("__import__('subprocess').run", "subprocess"),
    ("import importlib\nimportlib.import_module('os')", "os"),
    ("from importlib import import_module\nimport_module('socket')",
     "socket"),
    ("import importlib\nimportlib.__import__('sys')", "sys"),
])
def test_blocked_imports(client, code, name):
    body = client.run(code)
    assert body["stderr"].startswith("Traceback (most recent call last):\n")
    assert body["stderr"].endswith(
        "PermissionError: Importing '%s' is restricted.\n" % name)


def test_blocked_import_exact_text(client):
    body = client.run("import os\nos.system('rm -rf /')")
    assert body["stderr"] == (
        "Traceback (most recent call last):\n"
        "  File \"<stdin>\", line 1, in <module>\n"
        "PermissionError: Importing 'os' is restricted.\n")


@pytest.mark.parametrize("code", [
    "open('/etc/passwd')",
    "open('/tmp/x', 'w')",
    "import io\nio.open('/etc/passwd')",
    "import io\nio.FileIO('/etc/passwd')",
    "import codecs\ncodecs.open('/etc/passwd')",
])
def test_open_refused(client, code):
    body = client.run(code)
    assert "PermissionError: Using '" in body["stderr"]
    assert body["stderr"].endswith("' is restricted.\n")


def test_open_refused_exact_text(client):
    body = client.run("open('/etc/passwd')")
    assert body["stderr"].endswith(
        "PermissionError: Using 'open' is restricted.\n")


def test_allowed_modules_work(client):
    code = """
import math, json, re, collections, itertools, functools, random
import datetime, decimal, statistics, dataclasses, typing, asyncio
import fractions, heapq, bisect, string, textwrap, io, enum, copy
print(math.sqrt(16), json.dumps({'a': [1, 2]}), re.sub('a', 'b', 'aa'))
print(collections.Counter('aab')['a'], list(itertools.islice(itertools.count(), 3)))
print(functools.reduce(lambda a, b: a + b, [1, 2, 3]), 1 <= random.randint(1, 6) <= 6)
print(datetime.date(2024, 1, 31).isoformat(), decimal.Decimal('0.1') + decimal.Decimal('0.2'))
print(statistics.mean([1, 2, 3]), fractions.Fraction(1, 3) * 3)
@dataclasses.dataclass
class P:
    x: int
    y: typing.Optional[int] = None
print(P(1))
s = io.StringIO(); s.write('buffered'); print(s.getvalue())
"""
    body = client.run(code)
    assert "stderr" not in body, body.get("stderr")
    assert body["stdout"] == (
        "4.0 {\"a\": [1, 2]} bb\n"
        "2 [0, 1, 2]\n"
        "6 True\n"
        "2024-01-31 0.3\n"
        "2 1\n"
        "P(x=1, y=None)\n"
        "buffered\n")


def test_allowed_modules_use_blocked_ones_internally(client):
    # random uses os.urandom, tempfile-free json, asyncio uses socket
    body = client.run("import random, asyncio, uuid\n"
                      "random.seed()\n"
                      "print(len(str(uuid.uuid4())))")
    assert body.get("stdout") == "36\n", body


def test_top_level_await(client):
    body = client.run("import asyncio\nawait asyncio.sleep(0.01)\n"
                      "print('awaited')")
    assert body == {"id": body["id"], "stdout": "awaited\n"}


def test_asyncio_run(client):
    body = client.run("import asyncio\n"
                      "async def main():\n"
                      "    await asyncio.sleep(0)\n"
                      "    return 42\n"
                      "print(asyncio.run(main()))")
    assert body["stdout"] == "42\n"


def test_await_traceback_has_user_frames_only(client):
    body = client.run("import asyncio\n"
                      "async def g():\n"
                      "    raise ValueError('x')\n"
                      "await g()\n")
    assert body["stderr"] == (
        "Traceback (most recent call last):\n"
        "  File \"<stdin>\", line 4, in <module>\n"
        "  File \"<stdin>\", line 3, in g\n"
        "ValueError: x\n")


def test_input_raises_eoferror_at_once(client):
    body = client.run("input()")
    assert body["stderr"].endswith("EOFError: EOF when reading a line\n")


def test_input_prompt_goes_to_stdout(client):
    body = client.run("try:\n    input('name? ')\nexcept EOFError:\n"
                      "    print('eof')")
    assert body["stdout"] == "name? eof\n"


def test_server_timing_header(client):
    r = client.post({"code": "sum(range(1000))"})
    st = r.headers["Server-Timing"]
    assert st.startswith("exec;dur=")
    assert 0 <= float(st.split("=", 1)[1]) < 2000


def test_server_timing_on_errors_too(client):
    r = client.post({"code": "1/0"})
    assert r.headers["Server-Timing"].startswith("exec;dur=")


def test_output_is_capped_with_marker(client):
    # PyExecMaxOutput defaults to 1 MiB per stream
    body = client.run("print('x' * (3 * 1024 * 1024))")
    out = body["stdout"]
    assert out.startswith("x" * 1000)
    assert len(out.encode()) < 1024 * 1024 + 200
    assert "output truncated" in out.splitlines()[-1]


def test_output_cap_keeps_utf8_whole(client):
    body = client.run("print('\u00e9' * (1024 * 1024))")
    # valid JSON came back, so the cut fell on a character boundary
    assert body["stdout"].startswith("\u00e9\u00e9")
    assert "output truncated" in body["stdout"]


def test_stderr_is_capped_too(client):
    body = client.run("import io\nraise ValueError('y' * (2 * 1024 * 1024))")
    assert "output truncated" in body["stderr"]


def test_lone_surrogate_output_is_escaped(client):
    body = client.run("print('\\ud800')")
    assert body["stdout"] == "\\ud800\n"


def test_system_exit_message(client):
    body = client.run("print('a')\nexit('bye')")
    assert body["stdout"] == "a\n"
    assert body["stderr"] == "bye\n"


def test_system_exit_keeps_session(client):
    sid = client.run("x = 7\nraise SystemExit(3)")["id"]
    assert client.run("print(x)", sid)["stdout"] == "7\n"


def test_unicode_source_and_output(client):
    body = client.run("s = 'h\u00e9llo \u4e16\u754c \U0001f600'\nprint(s)")
    assert body["stdout"] == "h\u00e9llo \u4e16\u754c \U0001f600\n"


def test_coding_cookie_is_ignored_for_text_source(client):
    body = client.run("# -*- coding: latin-1 -*-\nprint('\u00e9')")
    assert body["stdout"] == "\u00e9\n"


def test_ui_is_served_at_root(httpd):
    import requests
    r = requests.get(httpd.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert '<script src="app.js"' in r.text
    assert "Content-Security-Policy" in r.text
    app = requests.get(httpd.url + "/app.js", timeout=10)
    assert app.status_code == 200
    assert 'new URL("execute", document.baseURI)' in app.text
    # output is rendered as text, never HTML (the browser tests show it)
    assert "textContent" in app.text and "innerHTML" not in app.text
    editor = requests.get(httpd.url + "/assets/editor.js", timeout=10)
    assert editor.status_code == 200
    assert "javascript" in editor.headers["Content-Type"]


def test_stdlib_packages_import_lazily_inside_the_sandbox(client):
    """Modules the zygote did not preload are read from the library at
    import time: directory listings must work under the sandbox."""
    body = client.run("import importlib.util, email.parser, http.client\n"
                      "import xml.dom.minidom, graphlib, tomllib\n"
                      "print(importlib.util.find_spec('json') is not None)\n"
                      "print(email.parser.Parser().parsestr('A: b')['A'])")
    assert body.get("stdout") == "True\nb\n", body


# --- compiled code is kept per session: it must change nothing -------------

def test_the_same_cell_run_again_sees_the_new_state(client):
    sid = client.session()
    client.run("n = 0", sid)
    outs = [client.run("n += 1\nprint(n)", sid)["stdout"] for _ in range(5)]
    assert outs == ["1\n", "2\n", "3\n", "4\n", "5\n"]


def test_the_same_failing_cell_fails_the_same_way_each_time(client):
    sid = client.session()
    errs = [client.run("print('before')\nundefined_name", sid) for _ in range(3)]
    assert all(e["stdout"] == "before\n" for e in errs)
    assert len({e["stderr"] for e in errs}) == 1
    assert errs[0]["stderr"].endswith(
        "NameError: name 'undefined_name' is not defined\n")
    syn = [client.run("def f(:\n    pass", sid)["stderr"] for _ in range(2)]
    assert syn[0] == syn[1] and "SyntaxError" in syn[0]


def test_cells_that_differ_late_are_not_confused(client):
    sid = client.session()
    a = "x = 'a'\n" + "# padding\n" * 200 + "print(x)"
    b = "x = 'b'\n" + "# padding\n" * 200 + "print(x)"
    for code, want in ((a, "a\n"), (b, "b\n"), (a, "a\n")):
        assert client.run(code, sid)["stdout"] == want


def test_a_redefined_function_replaces_the_old_one(client):
    sid = client.session()
    client.run("def f(): return 1", sid)
    client.run("def g(): return f() + 1", sid)
    assert client.run("print(g())", sid)["stdout"] == "2\n"
    client.run("def f(): return 10", sid)
    assert client.run("print(g())", sid)["stdout"] == "11\n"
