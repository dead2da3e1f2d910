"""Bad requests: a clear JSON error and the right status, never a crash."""
import json
import os
import shutil
import socket
import tempfile

import pytest
import requests

from . import pyhttpd
from .conftest import start


def assert_json_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


@pytest.mark.parametrize("raw", [
    b"{",
    b"not json",
    b'{"code": "print(1)"',
    b'{"code": "print(1)"}}',
    b"",
    b"[]",
    b'"print(1)"',
    b"null",
    b'{"code": "\\ud800"}',
    b'{"code": "a", "code": "b"}',
    b"[" * 5000 + b"]" * 5000,
])
def test_invalid_json_is_400(client, raw):
    assert_json_error(client.post(raw=raw), 400)


def test_invalid_utf8_is_400(client):
    msg = assert_json_error(client.post(raw=b'{"code": "print(\'\xff\')"}'),
                            400)
    assert "UTF-8" in msg


@pytest.mark.parametrize("body", [
    {},
    {"id": "x"},
    {"code": 1},
    {"code": None},
    {"code": ["print(1)"]},
    {"code": {"a": 1}},
    {"code": True},
])
def test_missing_or_non_string_code_is_400(client, body):
    msg = assert_json_error(client.post(body), 400)
    assert "code" in msg


@pytest.mark.parametrize("sid", [1, None, [], {}, True])
def test_non_string_id_is_400(client, sid):
    msg = assert_json_error(client.post({"code": "1", "id": sid}), 400)
    assert "id" in msg


@pytest.mark.parametrize("sid", [
    "", "abc", "123e4567-e89b-12d3-a456-42661417400",
    "123e4567-e89b-12d3-a456-4266141740000", "../../etc/passwd",
    "123e4567e89b12d3a456426614174000xxxx",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    " 123e4567-e89b-12d3-a456-426614174000",
])
def test_bad_id_shape_is_400(client, sid):
    assert_json_error(client.post({"code": "1", "id": sid}), 400)


def test_nul_in_code_is_400(client):
    msg = assert_json_error(client.post({"code": "print(1)\u0000"}), 400)
    assert "NUL" in msg


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH",
                                    "OPTIONS"])
def test_other_methods_are_405_with_allow(client, method):
    r = requests.request(method, client.url, timeout=10)
    assert_json_error(r, 405)
    assert "POST" in r.headers["Allow"]


def test_code_over_limit_is_413(client):
    msg = assert_json_error(client.post({"code": "#" * (64 * 1024 + 1)}),
                            413)
    assert "limit" in msg


def test_code_at_limit_runs(client):
    code = "x = 1" + " " * (64 * 1024 - 5)
    assert len(code) == 64 * 1024
    assert client.post({"code": code}).status_code == 200


def test_huge_body_is_413_without_reading_it(client):
    r = client.post(raw=b'{"code": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert_json_error(r, 413)


@pytest.mark.parametrize("ctype", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
    "application/jsonx", "",
])
def test_non_json_content_type_is_415(client, ctype):
    r = requests.post(client.url, data=b'{"code": "print(1)"}',
                      headers={"Content-Type": ctype}, timeout=10)
    assert_json_error(r, 415)


def test_json_content_type_with_charset_is_accepted(client):
    r = requests.post(client.url, data=b'{"code": "print(1)"}',
                      headers={"Content-Type":
                               "application/json; charset=utf-8"},
                      timeout=10)
    assert r.status_code == 200
    assert r.json()["stdout"] == "1\n"


def test_chunked_body_is_accepted(client):
    def gen():
        yield b'{"code": '
        yield b'"print(\'chunked\')"}'
    r = requests.post(client.url, data=gen(),
                      headers={"Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 200
    assert r.json()["stdout"] == "chunked\n"


def test_extra_keys_are_ignored(client):
    r = client.post({"code": "print(2)", "extra": [1, 2]})
    assert r.status_code == 200
    assert r.json().get("stdout") == "2\n", r.text


def test_malformed_requests_leave_the_server_serving(client, httpd):
    for raw in (b"{", b"\xff\xfe", b'{"code": 5}', b'{"id": 5}'):
        client.post(raw=raw)
    # a raw, broken HTTP exchange too
    with socket.create_connection(("127.0.0.1", httpd.port), 5) as s:
        s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"code\":")
    assert client.run("print('ok')")["stdout"] == "ok\n"


def test_error_bodies_are_json_objects(client):
    r = client.post(raw=b"{")
    assert json.loads(r.text) == r.json()


# --- the endpoint is a URL, not a file -------------------------------------

@pytest.fixture(scope="module")
def fenced(request):
    """<Directory> forbids the document root; <Location> forbids one URL
    that is also handled by pyexec."""
    htdocs = pyhttpd.HTDOCS
    return start(request, extra_conf="""
<Directory "%s">
    Require all denied
</Directory>
<Location "/closed/execute">
    SetHandler pyexec
    Require all denied
</Location>
""" % htdocs)


def test_directory_rules_do_not_reach_the_endpoint(fenced):
    """Like mod_proxy's URLs, /execute maps to no file: httpd does not walk
    the file system for it, so <Directory> sections do not apply."""
    r = requests.post(fenced.url + "/execute", json={"code": "print(1)"},
                      timeout=10)
    assert r.status_code == 200 and r.json()["stdout"] == "1\n"
    # ...while they still govern the files next to it
    assert requests.get(fenced.url + "/index.html",
                        timeout=10).status_code == 403


def test_location_rules_govern_the_endpoint(fenced):
    url = fenced.url + "/execute"
    sid = requests.post(url, json={"code": "n = 0"}, timeout=10).json()["id"]
    r = requests.post(fenced.url + "/closed/execute",
                      json={"code": "n += 1", "id": sid}, timeout=10)
    assert r.status_code == 403
    # refused before anything ran
    r = requests.post(url, json={"code": "print(n)", "id": sid}, timeout=10)
    assert r.json()["stdout"] == "0\n"


def test_a_request_rewritten_away_from_the_endpoint_meets_directory_rules(
        request):
    """The file-system walk is skipped only for the URI that <Location>
    gave to pyexec. A RewriteRule [PT] that sends a URI under the
    endpoint to a file elsewhere gets the walk, and with it the
    <Directory> rule that guards that file."""
    root = tempfile.mkdtemp(prefix="pyexec-rewrite-")
    request.addfinalizer(lambda: shutil.rmtree(root))
    os.chmod(root, 0o755)
    for name in ("public", "private"):
        os.mkdir(os.path.join(root, name), 0o755)
        with open(os.path.join(root, name, "data.txt"), "w") as f:
            f.write("%s data\n" % name)
        os.chmod(os.path.join(root, name, "data.txt"), 0o644)
    srv = start(request, extra_conf="""
LoadModule rewrite_module {moddir}/mod_rewrite.so
RewriteEngine On
RewriteRule "^/execute/(public|private)/(.*)$" "/files/$1/$2" [PT]
Alias "/files" "{root}"
<Directory "{root}">
    Require all granted
</Directory>
<Directory "{root}/private">
    Require all denied
</Directory>
""".format(moddir=pyhttpd.httpd_moddir(), root=root))
    # the control: a file the walk allows is served through the rewrite
    r = requests.get(srv.url + "/execute/public/data.txt", timeout=10)
    assert (r.status_code, r.text) == (200, "public data\n")
    r = requests.get(srv.url + "/execute/private/data.txt", timeout=10)
    assert r.status_code == 403, (r.status_code, r.text)
    assert "private data" not in r.text
    # the endpoint itself is still served
    r = requests.post(srv.url + "/execute", json={"code": "print(1)"},
                      timeout=10)
    assert r.json()["stdout"] == "1\n"
