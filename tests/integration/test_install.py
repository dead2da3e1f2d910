"""`make install` into a staging root, and httpd serving what it installed.

The installed conf/pyexec.conf must serve the web page at /pyexec/, whose
requests go to /pyexec/execute, and keep /execute for API clients.
"""
import os
import shutil
import subprocess
import tempfile

import pytest
import requests

from . import pyhttpd
from .conftest import start

BUILD = os.path.abspath(os.environ.get("PYEXEC_BUILD_DIR")
                        or os.path.join(pyhttpd.REPO, "build"))


def make_var(name):
    out = subprocess.run(["make", "-s", "-C", BUILD, "--no-print-directory",
                          "-f", "Makefile", "-f", "-", "print-var"],
                         input="print-var:\n\t@echo $(%s)\n" % name,
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


@pytest.fixture(scope="module")
def staged():
    root = tempfile.mkdtemp(prefix="pyexec-install-")
    os.chmod(root, 0o755)
    try:
        subprocess.run(["make", "-s", "-C", BUILD, "install", "DESTDIR=" + root],
                       check=True, capture_output=True, text=True)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def staged_path(root, var):
    return root + make_var(var)


def test_install_puts_module_helper_conf_and_page_in_place(staged):
    moddir = staged_path(staged, "apachemoddir")
    confdir = staged_path(staged, "confdir")
    htdocs = staged_path(staged, "htdocsdir")
    for path in (os.path.join(moddir, "mod_pyexec.so"),
                 os.path.join(moddir, "pyexec-helper"),
                 os.path.join(confdir, "pyexec.load"),
                 os.path.join(confdir, "pyexec.conf"),
                 os.path.join(htdocs, "index.html"),
                 os.path.join(htdocs, "app.js"),
                 os.path.join(htdocs, "app.css"),
                 os.path.join(htdocs, "assets", "editor.js"),
                 os.path.join(htdocs, "assets", "editor.LICENSES.txt")):
        assert os.path.isfile(path), path
    assert not os.path.exists(os.path.join(moddir, "mod_pyexec.la"))
    load = open(os.path.join(confdir, "pyexec.load")).read()
    assert "LoadModule pyexec_module %s/mod_pyexec.so" % make_var("apachemoddir") in load
    conf = open(os.path.join(confdir, "pyexec.conf")).read()
    assert '"%s"' % make_var("htdocsdir") in conf
    assert "@htdocsdir@" not in conf and "@moduledir@" not in conf


@pytest.fixture(scope="module")
def installed_httpd(request, staged):
    """httpd on the installed pyexec.conf (paths moved into staging) and
    without the harness's own /execute, so both endpoints are the conf's."""
    conf = open(os.path.join(staged_path(staged, "confdir"), "pyexec.conf")).read()
    htdocs = make_var("htdocsdir")
    conf = conf.replace('"%s"' % htdocs, '"%s%s"' % (staged, htdocs))
    return start(request, extra_conf=conf, execute_location=False)


def test_installed_conf_serves_the_page_and_both_endpoints(installed_httpd):
    base = installed_httpd.url
    r = requests.get(base + "/pyexec", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"].endswith("/pyexec/")
    page = requests.get(base + "/pyexec/", timeout=10)
    assert page.status_code == 200
    assert '<script src="app.js"' in page.text
    js = requests.get(base + "/pyexec/assets/editor.js", timeout=10)
    assert js.status_code == 200
    assert "javascript" in js.headers["Content-Type"]
    assert "PyExecEditor" in js.text
    # the page posts to "execute" relative to itself
    for path in ("/pyexec/execute", "/execute"):
        r = requests.post(base + path, json={"code": "print(6 * 7)"}, timeout=10)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["stdout"] == "42\n"
        assert r.headers["Server-Timing"].startswith("exec;dur=")
    assert requests.post(base + "/elsewhere", json={"code": "1"},
                         timeout=10).status_code != 200


@pytest.fixture(scope="module")
def dist_tree(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist") / "tree"
    subprocess.run(["make", "-s", "-C", BUILD, "distdir", "distdir=%s" % d],
                   check=True, capture_output=True, text=True)
    return d


def test_dist_tree_carries_the_editor_bundle_and_no_node_modules(dist_tree):
    """`make dist` is how the bundle reaches installs without Node.js."""
    d = dist_tree
    for f in ("htdocs/assets/editor.js", "htdocs/assets/editor.LICENSES.txt",
              "htdocs/index.html", "htdocs/app.js", "web/package-lock.json",
              "web/src/editor.js", "tests/e2e/package-lock.json",
              "conf/pyexec.conf.in", "LICENSE", "configure"):
        assert (d / f).is_file(), f
    assert "PyExecEditor" in (d / "htdocs/assets/editor.js").read_text()
    found = [p for p in d.rglob("*")
             if p.name in ("node_modules", "__pycache__")
             or p.name in ("pyexec.conf", "pyexec.load")]
    assert found == []


def test_dist_tree_installs_the_page_with_no_node_on_path(dist_tree, tmp_path):
    hide = tmp_path / "no-node"
    hide.mkdir()
    for tool in ("node", "npm", "npx"):
        (hide / tool).symlink_to("/bin/false")
    env = dict(os.environ, PATH="%s:%s" % (hide, os.environ["PATH"]))
    build = tmp_path / "build"
    build.mkdir()
    subprocess.run([str(dist_tree / "configure"), "--prefix=/usr"], cwd=build,
                   env=env, check=True, capture_output=True, text=True)
    root = tmp_path / "root"
    subprocess.run(["make", "-s", "install-data", "DESTDIR=%s" % root],
                   cwd=build, env=env, check=True, capture_output=True,
                   text=True)
    installed = root / "usr/share/mod_pyexec/htdocs/assets/editor.js"
    assert installed.read_bytes() == (dist_tree / "htdocs/assets/editor.js").read_bytes()
    conf = next(root.rglob("pyexec.conf")).read_text()
    assert '"/usr/share/mod_pyexec/htdocs"' in conf
