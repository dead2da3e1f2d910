"""Fixtures: real httpd instances with mod_pyexec (see pyhttpd.py)."""
import sys

import pytest
import requests

from . import pyhttpd


class Client:
    """Talks to one httpd's /execute."""

    def __init__(self, httpd):
        self.httpd = httpd
        self.url = httpd.url + "/execute"
        self.http = requests.Session()

    def post(self, body=None, raw=None, headers=None, timeout=30):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        if raw is not None:
            return self.http.post(self.url, data=raw, headers=h,
                                  timeout=timeout)
        return self.http.post(self.url, json=body, headers=h,
                              timeout=timeout)

    def run(self, code, sid=None, expect=200):
        body = {"code": code}
        if sid is not None:
            body["id"] = sid
        r = self.post(body)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()

    def session(self):
        """A fresh session id."""
        return self.run("pass")["id"]

    def session_get(self, sid, timeout=30):
        return self.http.get(self.url, params={"id": sid}, timeout=timeout)

    def session_delete(self, sid, timeout=30):
        return self.http.delete(self.url, params={"id": sid},
                                timeout=timeout)


def start(request, **kw):
    """A server for one test or module. Its sessions all come from
    127.0.0.1, so PyExecMaxClientSessions is off unless the test names it
    (None: the module's default)."""
    kw["directives"] = dict(kw.get("directives") or {})
    kw["directives"].setdefault("PyExecMaxClientSessions", "off")
    h = pyhttpd.Httpd(**kw)
    try:
        h.start()
        h.wait_spares(1)
    except Exception:
        h.stop()
        log = h.read_log()
        h.cleanup()
        pytest.fail("httpd did not start:\n" + log)

    def fin():
        h.stop()
        reports = h.sanitizer_reports()
        if reports:
            sys.stderr.write("\n--- sanitizer reports in %s ---\n%s\n" % (
                h.url, h.read_log()[-20000:]))
            h.cleanup()
            pytest.fail("sanitizer reports in the error log: %s" % reports)
        if request.session.testsfailed:
            sys.stderr.write("\n--- error log of %s ---\n%s\n" % (
                h.url, h.read_log()[-5000:]))
        h.cleanup()
    request.addfinalizer(fin)
    return h


@pytest.fixture(scope="session")
def httpd(request):
    """The shared server: event MPM with two children. Every test's
    sessions come from 127.0.0.1 and live on after it: no per-client
    cap (test_limits_hold.py tests the default)."""
    return start(request, directives={"PyExecSpareHelpers": 4,
                                      "PyExecMaxSessions": 2000,
                                      "PyExecMaxClientSessions": "off"})


@pytest.fixture
def client(httpd):
    return Client(httpd)
