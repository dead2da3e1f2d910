"""The Debian package: built with dpkg-buildpackage from debian/, lintian
clean of errors, installed into this machine's own Apache with apt-get,
enabled with a2enmod, serving code on a test port, and removed again.

It changes the machine (a package installed, then purged), so it runs only
as root and only when asked for: scripts/dev test sets PYEXEC_TEST_DEB=1
in its normal pass."""
import glob
import os
import shutil
import signal
import subprocess
import tempfile

import pytest
import requests

from . import pyhttpd
from .pyhttpd import remaining, wait_for

PACKAGE = "libapache2-mod-pyexec"

pytestmark = [
    pytest.mark.skipif(os.environ.get("PYEXEC_TEST_DEB") != "1",
                       reason="set PYEXEC_TEST_DEB=1 (scripts/dev test does)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package"),
]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, "%s:\n%s\n%s" % (cmd, r.stdout[-4000:],
                                               r.stderr[-4000:])
    return r


def source_tree(dest):
    """The checkout as git sees it (tracked and new files, nothing
    ignored: no build trees, no node_modules)."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                cwd=pyhttpd.REPO).stdout.split("\0")
    # the editor bundle, where scripts/dev built it: a release tarball
    # carries it the same way (`make dist`)
    assets = os.path.join(pyhttpd.REPO, "htdocs", "assets")
    if os.path.isdir(assets):
        files += [os.path.join("htdocs", "assets", n)
                  for n in os.listdir(assets)]
    for f in filter(None, files):
        src = os.path.join(pyhttpd.REPO, f)
        if not os.path.exists(src):
            continue            # deleted in the working tree
        os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, f))


@pytest.fixture(scope="module")
def deb():
    work = tempfile.mkdtemp(prefix="pyexec-deb-")
    src = os.path.join(work, "mod-pyexec")
    source_tree(src)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src)
    debs = glob.glob(os.path.join(work, PACKAGE + "_*.deb"))
    assert len(debs) == 1, os.listdir(work)
    yield debs[0]
    shutil.rmtree(work, ignore_errors=True)


def test_the_package_holds_the_module_helper_conf_and_page(deb):
    files = run(["dpkg-deb", "--contents", deb]).stdout
    for path in ("./usr/lib/apache2/modules/mod_pyexec.so",
                 "./usr/lib/apache2/modules/pyexec-helper",
                 "./etc/apache2/mods-available/pyexec.load",
                 "./etc/apache2/mods-available/pyexec.conf",
                 "./usr/share/mod_pyexec/htdocs/index.html",
                 "./usr/share/mod_pyexec/htdocs/openapi.json",
                 "./usr/share/doc/%s/copyright" % PACKAGE):
        assert path in files, path
    info = run(["dpkg-deb", "--field", deb, "Package", "Depends"]).stdout
    assert PACKAGE in info and "apache2-api-20120211" in info
    assert "libpython3" in info and "libjansson" in info


def test_lintian_finds_no_errors(deb):
    if not shutil.which("lintian"):
        pytest.skip("lintian is not installed")
    r = subprocess.run(["lintian", "--fail-on", "error", deb],
                       capture_output=True, text=True)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    assert r.returncode == 0 and not errors, r.stdout + r.stderr


@pytest.fixture(scope="module")
def installed(deb):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    was_there = subprocess.run(["dpkg", "-s", PACKAGE],
                               capture_output=True).returncode == 0
    assert not was_there, "%s is installed already" % PACKAGE
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb],
        env=env)
    try:
        yield
    finally:
        subprocess.run(["a2dismod", "-q", "-f", "pyexec"],
                       capture_output=True)
        run(["apt-get", "purge", "-y", "-q", PACKAGE], env=env)


def system_apache_config(tmp, port):
    """Debian's own apache2.conf, but listening on a test port and writing
    its pid, logs and runtime files into tmp."""
    with open("/etc/apache2/apache2.conf") as f:
        conf = f.read()
    assert "Include ports.conf" in conf
    conf = conf.replace("Include ports.conf",
                        "Listen 127.0.0.1:%d" % port)
    path = os.path.join(tmp, "apache2.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def test_installed_enabled_and_serving_in_the_system_apache(installed):
    # not enabled by installing: it runs code for whoever can reach it
    assert not os.path.exists("/etc/apache2/mods-enabled/pyexec.load")
    run(["a2enmod", "-q", "pyexec"])
    assert os.path.islink("/etc/apache2/mods-enabled/pyexec.load")
    tmp = tempfile.mkdtemp(prefix="pyexec-sysapache-")
    os.chmod(tmp, 0o755)
    port = pyhttpd.free_port()
    conf = system_apache_config(tmp, port)
    env = dict(os.environ, APACHE_RUN_USER="www-data",
               APACHE_RUN_GROUP="www-data",
               APACHE_PID_FILE=os.path.join(tmp, "apache2.pid"),
               APACHE_RUN_DIR=tmp, APACHE_LOCK_DIR=tmp,
               APACHE_LOG_DIR=tmp, APACHE_STARTED_BY_SYSTEMD="",
               LANG="C")
    cmd = ["/usr/sbin/apache2", "-d", "/etc/apache2", "-f", conf]
    run(cmd + ["-t"], env=env)
    run(cmd + ["-k", "start"], env=env)
    try:
        url = "http://127.0.0.1:%d" % port
        last = []

        def answered():
            try:
                last[:] = [requests.post(url + "/execute",
                                         json={"code": "x = 6 * 7\nprint(x)"},
                                         timeout=10)]
            except requests.ConnectionError:
                return None
            return last[0].status_code == 200
        wait_for(answered, timeout=20, step=0.2)
        assert last and last[0].status_code == 200, \
            last[0].text if last else "no answer"
        r = last[0]
        body = r.json()
        assert body["stdout"] == "42\n"
        r = requests.post(url + "/execute",
                          json={"code": "print(x + 1)", "id": body["id"]},
                          timeout=10)
        assert r.json()["stdout"] == "43\n"
        r = requests.post(url + "/execute", json={"code": "import os"},
                          timeout=10)
        assert "PermissionError" in r.json()["stderr"]
        # the page and the API description from /usr/share/mod_pyexec
        assert requests.get(url + "/pyexec/", timeout=10).status_code == 200
        assert requests.get(url + "/pyexec/openapi.json",
                            timeout=10).json()["openapi"].startswith("3.1")
    finally:
        with open(os.path.join(tmp, "apache2.pid")) as f:
            pid = int(f.read())
        subprocess.run(cmd + ["-k", "stop"], env=env, capture_output=True)
        if not wait_for(lambda: not remaining([pid]), timeout=20, step=0.1):
            os.kill(pid, signal.SIGKILL)
        helpers = subprocess.run(["pgrep", "-f", "modules/pyexec-helper"],
                                 capture_output=True, text=True).stdout
        shutil.rmtree(tmp, ignore_errors=True)
    assert not helpers.strip(), helpers
