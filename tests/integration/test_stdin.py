"""Standard input (issue 15, its first part): "stdin" in the request is
what input(), sys.stdin.readline() and sys.stdin.read() read during that
run, then EOF; without it, EOF at once, as before."""
import pytest

from .conftest import Client, start


@pytest.fixture(scope="module")
def server(request):
    return start(request, directives={"PyExecMaxCodeSize": "4K",
                                      "PyExecSpareHelpers": 2})


def run(server, code, stdin=None, sid=None, expect=200):
    body = {"code": code}
    if stdin is not None:
        body["stdin"] = stdin
    if sid:
        body["id"] = sid
    r = Client(server).post(body)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def test_input_reads_lines_with_their_prompts(server):
    out = run(server, "name = input('Name? ')\nage = int(input('Age? '))\n"
                      "print(f'Hello {name}, next year {age + 1}')",
              stdin="Ada\n36\n")
    # the prompts go to stdout, the answers are not echoed: as a script
    # whose stdin is a pipe
    assert out["stdout"] == "Name? Age? Hello Ada, next year 37\n"
    assert "stderr" not in out


def test_input_until_eof(server):
    """Every line, the empty one and a last one without its newline, then
    EOFError."""
    out = run(server, "lines = []\n"
                      "while True:\n"
                      "    try:\n"
                      "        lines.append(input())\n"
                      "    except EOFError:\n"
                      "        break\n"
                      "print(lines)", stdin="one\ntwo\n\nfour")
    assert out["stdout"] == "['one', 'two', '', 'four']\n"


def test_sys_stdin_read_and_readline(request):
    """With the import hook off (the OS layers alone), sys.stdin itself:
    readline, read, and EOF after."""
    bare = start(request, directives={"PyExecTestNoImportHook": "On",
                                      "PyExecSpareHelpers": 1})
    try:
        out = run(bare, "import sys\n"
                        "print(repr(sys.stdin.readline()))\n"
                        "print(repr(sys.stdin.read()))\n"
                        "print(repr(sys.stdin.read()), repr(sys.stdin.readline()))",
                  stdin="first\nsecond\nthird\n")
        assert out["stdout"] == ("'first\\n'\n'second\\nthird\\n'\n"
                                 "'' ''\n")
    finally:
        bare.stop()


def test_without_stdin_input_is_eof_at_once(server):
    out = run(server, "input('prompt> ')")
    assert out["stdout"] == "prompt> "
    assert out["stderr"].endswith("EOFError: EOF when reading a line\n")


def test_stdin_belongs_to_its_run(server):
    """The next run of the session starts at EOF again, or with its own."""
    out = run(server, "a = input()", stdin="kept\nunread\n")
    sid = out["id"]
    out = run(server, "print(a)\ninput()", sid=sid)
    assert out["stdout"] == "kept\n"
    assert "EOFError" in out["stderr"]
    out = run(server, "print(input())", stdin="fresh\n", sid=sid)
    assert out["stdout"] == "fresh\n"


def test_text_of_any_kind(server):
    out = run(server, "s = input()\nprint(len(s), ascii(s))",
              stdin="h\u00e9\u65e5\U0001f600\x00z\n")
    assert out["stdout"] == "6 'h\\xe9\\u65e5\\U0001f600\\x00z'\n"


def test_stdin_counts_toward_the_code_limit(server):
    code = "print(len(input()))"
    room = 4096 - len(code)
    out = run(server, code, stdin="x" * room)
    assert out["stdout"] == "%d\n" % room
    r = Client(server).post({"code": code, "stdin": "x" * (room + 1)})
    assert r.status_code == 413
    assert "'stdin'" in r.json()["error"]


def test_stdin_must_be_a_string(server):
    for bad in (1, None, ["a"], {"a": 1}):
        r = Client(server).post({"code": "1", "stdin": bad})
        assert r.status_code == 400, bad
        assert "'stdin'" in r.json()["error"]
