"""htdocs/openapi.json describes the API that httpd really serves: real
responses of every documented kind are validated against it (JSON Schema
2020-12, which OpenAPI 3.1 uses, with python3-jsonschema)."""
import json
import os
import re
import threading

import pytest
import requests

from . import pyhttpd
from .conftest import Client, start

jsonschema = pytest.importorskip("jsonschema")

SPEC_PATH = os.path.join(pyhttpd.REPO, "htdocs", "openapi.json")


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as f:
        return json.load(f)


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def check(spec, method, r):
    """r is a documented answer of `method` on /execute: its status,
    headers and body as the document says."""
    op = spec["paths"]["/execute"][method.lower()]
    status = str(r.status_code)
    assert status in op["responses"], (method, status, r.text)
    resp = resolve(spec, op["responses"][status])
    for name, h in resp.get("headers", {}).items():
        schema = resolve(spec, h)["schema"]
        assert name in r.headers, (method, status, name)
        validate(spec, schema, r.headers[name])
    content = resp.get("content")
    if not content:
        assert r.content == b"", (method, status, r.content)
        return
    assert r.headers["Content-Type"].split(";")[0] in content
    validate(spec, content["application/json"]["schema"], r.json())


def validate(spec, schema, value):
    resolver = jsonschema.RefResolver.from_schema(spec)
    jsonschema.Draft202012Validator(
        schema, resolver=resolver,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(value)


def test_the_document_is_openapi_3_1_with_valid_schemas(spec):
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] and spec["info"]["version"]
    for name, schema in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    # every reference points somewhere
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec))
    assert refs
    for ref in refs:
        resolve(spec, {"$ref": ref})
    # and every operation documents its answers
    for method, op in spec["paths"]["/execute"].items():
        assert op["responses"], method


def test_served_next_to_the_page(httpd, spec):
    r = requests.get(httpd.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == spec


def test_run_answers_match(client, spec):
    c = client
    check(spec, "POST", c.post({"code": "x = 1"}))
    r = c.post({"code": "print(1)"})
    check(spec, "POST", r)
    sid = r.json()["id"]
    check(spec, "POST", c.post({"code": "1/0", "id": sid}))
    check(spec, "POST", c.post({"code": "print('a' * 3000000)", "id": sid}))
    check(spec, "POST", c.post({"code": "import os", "id": sid}))
    check(spec, "POST", c.post({"code": "while True: pass"}))
    check(spec, "POST", c.post({"code": "b = bytearray(10**10)"}))
    check(spec, "POST", c.post(raw=b"{"))
    check(spec, "POST", c.post({"code": 1}))
    check(spec, "POST", c.post({"code": "x", "id": "nope"}))
    check(spec, "POST", c.post({"code": "x", "id":
                                "0b7c2c5e-3f0e-4a52-9d8e-3f3b8c1d2a11"}))
    check(spec, "POST", c.post({"code": "#" * (65536 + 1)}))
    check(spec, "POST", c.post({"code": "x"},
                               headers={"Content-Type": "text/plain"}))
    check(spec, "POST", c.post({"code": "1", "display_result": "no"}))
    check(spec, "POST", c.post({"code": "print(input())", "stdin": "a\\n"}))
    check(spec, "POST", c.post({"code": "1", "stdin": 2}))


def test_display_answers_match(client, spec):
    """Rich output as the schema has it: text, binary as base64, a JSON
    value, metadata, the dropped marker (at 256 items)."""
    c = client
    rich = ("class R:\n"
            "    def _repr_html_(self): return '<b>x</b>'\n"
            "    def _repr_png_(self): return b'\\x89PNG'\n"
            "    def _repr_json_(self): return {'a': [1, None]}\n"
            "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
            "        return {'text/markdown': '*m*'}, {'text/markdown': {'k': 1}}\n"
            "print('before')\ndisplay(R())\nR()")
    r = c.post({"code": rich, "display_result": True})
    assert len(r.json()["display"]) == 2
    assert r.json()["display"][0]["data"]["application/json"] == {"a": [1, None]}
    check(spec, "POST", r)
    r = c.post({"code": "for i in range(300): display(i)"})
    assert r.json()["display"][-1]["metadata"] == {"dropped": True}
    check(spec, "POST", r)


def test_session_answers_match(client, spec):
    c = client
    sid = c.run("x = 1")["id"]
    check(spec, "GET", c.session_get(sid))
    out = {}
    t = threading.Thread(target=lambda: out.update(
        r=c.post({"code": "import time\ntime.sleep(5)", "id": sid})))
    t.start()
    import time
    end = time.monotonic() + 5
    while not c.session_get(sid).json()["running"]:
        assert time.monotonic() < end
        time.sleep(0.05)
    check(spec, "DELETE", c.session_delete(sid))
    t.join(10)
    check(spec, "POST", out["r"])
    assert out["r"].json()["error"] == "Session deleted during the execution."
    check(spec, "GET", c.session_get(sid))
    check(spec, "DELETE", c.session_delete(sid))
    for method in ("GET", "DELETE"):
        check(spec, method, requests.request(method, c.url + "?id=zzz",
                                             timeout=10))
        check(spec, method, requests.request(method, c.url, timeout=10))
    # the id in the PyExec-Session header: each answer the one meant (a
    # server that ignored the header would answer 405, documented too)
    header = c.run("x = 1")["id"]
    for method, with_id, status in (("GET", header, 200),
                                    ("DELETE", header, 204),
                                    ("GET", header, 404),
                                    ("DELETE", "zzz", 400)):
        r = requests.request(method, c.url,
                             headers={"PyExec-Session": with_id}, timeout=10)
        assert r.status_code == status, (method, with_id, r.text)
        check(spec, method, r)


def test_limit_answers_match(request, spec):
    h = start(request, directives={"PyExecRateLimit": "2/m 2",
                                   "PyExecMaxSessions": 1,
                                   "PyExecSpareHelpers": 1})
    c = Client(h)
    check(spec, "POST", c.post({"code": "x = 1"}))
    r = c.post({"code": "x = 1"})
    assert r.status_code == 503          # the one session allowed is taken
    check(spec, "POST", r)
    r = c.post({"code": "x = 1"})
    assert r.status_code == 429
    check(spec, "POST", r)
    sid = "0b7c2c5e-3f0e-4a52-9d8e-3f3b8c1d2a11"
    for method in ("GET", "DELETE"):
        r = requests.request(method, c.url, params={"id": sid}, timeout=10)
        assert r.status_code == 429
        check(spec, method, r)


def test_streamed_events_match(httpd, spec):
    """Each event's data as the schemas have it: StreamText, DisplayItem,
    and the last the very ExecuteResult."""
    from .sse import Stream
    schemas = spec["components"]["schemas"]
    post = spec["paths"]["/execute"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in post
    s = Stream(httpd.port, {"code": "print('a')\nimport sys\n",
                            "display_result": True})
    assert s.status == 200
    events = s.events()
    names = [e.name for e in events]
    assert names[-1] == "result" and "stdout" in names and "stderr" in names
    for e in events:
        schema = {"stdout": schemas["StreamText"],
                  "stderr": schemas["StreamText"],
                  "display": schemas["DisplayItem"],
                  "result": schemas["ExecuteResult"]}[e.name]
        validate(spec, schema, e.json())
    events = Stream(httpd.port, {"code": "display(1)"}).events()
    validate(spec, schemas["DisplayItem"], events[0].json())
    validate(spec, schemas["ExecuteResult"], events[-1].json())
