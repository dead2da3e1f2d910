"""PyExecAllowModules: the scientific stack, opt in (Debian's
python3-numpy), inside the full sandbox and the memory limit."""
import os
import time
import uuid

import pytest

from .conftest import Client, start

if not os.path.isdir("/usr/lib/python3/dist-packages/numpy"):
    pytest.skip("python3-numpy is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def sci(request):
    return start(request, directives={"PyExecAllowModules": "numpy",
                                      "PyExecSpareHelpers": 2})


def test_numpy_is_not_importable_unless_allowed(client):
    body = client.run("import numpy")
    assert body["stderr"].endswith(
        "ModuleNotFoundError: No module named 'numpy'\n")


def test_numpy_works_and_is_preloaded(sci):
    c = Client(sci)
    r = c.post({"code": "import time\n"
                        "t = time.perf_counter()\n"
                        "import numpy as np\n"
                        "print(time.perf_counter() - t)"})
    assert r.status_code == 200 and "stderr" not in r.json(), r.text
    # already in the warm helper: the import statement itself finds it
    # loaded, nothing like a real import of numpy (tens of milliseconds).
    # Timed inside the run, not by Server-Timing: a fresh helper's first
    # run pays its copy-on-write faults (more under the sanitizers), which
    # say nothing about preloading
    assert float(r.json()["stdout"]) < 0.005, r.text
    sid = r.json()["id"]
    out = c.run("a = np.arange(12).reshape(3, 4)\n"
                "print(a.sum(), a.T.shape, np.linalg.det(np.eye(3)))", sid)
    assert out["stdout"] == "66 (4, 3) 1.0\n"
    # state persists like any other variable
    assert c.run("print(a.mean())", sid)["stdout"] == "5.5\n"
    out = c.run("rng = np.random.default_rng(7)\n"
                "m = rng.random((300, 300))\n"
                "print(np.allclose(m @ np.linalg.inv(m), np.eye(300)))", sid)
    assert out["stdout"] == "True\n", out


def test_blas_runs_on_one_thread(sci):
    c = Client(sci)
    before = set(sci.helper_pids())
    sid = c.run("import numpy as np\nm = np.ones((400, 400))\n"
                "for _ in range(5):\n    m = m @ m / 400\nprint(m[0, 0])"
                )["id"]
    assert sid
    for pid in set(sci.helper_pids()) - before or sci.helper_pids():
        with open("/proc/%d/status" % pid) as f:
            threads = [l for l in f if l.startswith("Threads:")][0]
        assert threads.split()[1] == "1", (pid, threads)


def test_other_installed_packages_stay_unimportable(sci):
    # python3-requests is installed in the same dist-packages directory
    body = Client(sci).run("import requests")
    assert body["stderr"].endswith(
        "ModuleNotFoundError: No module named 'requests'\n")


def test_the_sandbox_holds_for_numpy_too(sci, tmp_path):
    c = Client(sci)
    os.chmod(tmp_path, 0o777)
    secret = tmp_path / "secret.npy"
    import numpy
    numpy.save(secret, numpy.arange(5))
    os.chmod(secret, 0o644)
    target = tmp_path / ("written-%s.npy" % uuid.uuid4().hex)
    out = c.run("import numpy as np\nprint(np.load(%r))" % str(secret))
    assert "[0 1 2 3 4]" not in out.get("stdout", "")
    assert "Error" in out["stderr"]
    out = c.run("import numpy as np\nnp.save(%r, np.arange(3))" % str(target))
    assert "Error" in out["stderr"]
    assert not target.exists()
    out = c.run("import numpy as np\nnp.savetxt('/tmp/x-%s.txt', [1])"
                % uuid.uuid4().hex)
    assert "Error" in out["stderr"]


def test_numpy_memory_counts_against_the_limit(sci):
    c = Client(sci)
    start_t = time.monotonic()
    out = c.run("import numpy as np\nbig = np.ones(300_000_000)")
    assert out["error"] == "Memory limit exceeded. Session terminated."
    assert time.monotonic() - start_t < 2
    # a large array within the limit is fine
    out = c.run("import numpy as np\nok = np.ones(5_000_000)\n"
                "print(ok.nbytes)")
    assert out["stdout"] == "40000000\n"


def test_the_blocked_list_wins(request):
    h = start(request, directives={
        "PyExecAllowModules": "numpy",
        "PyExecBlockModules": "default numpy.f2py"})
    c = Client(h)
    assert c.run("import numpy as np\nprint(np.int64(3) * 2)")["stdout"] \
        == "6\n"
    out = c.run("import numpy.f2py")
    assert out["stderr"].endswith(
        "PermissionError: Importing 'numpy.f2py' is restricted.\n")
    out = c.run("from numpy import f2py")
    assert "PermissionError" in out["stderr"]


def test_blocking_an_allowed_package_blocks_it(request):
    h = start(request, directives={"PyExecAllowModules": "numpy",
                                   "PyExecBlockModules": "default numpy"})
    out = Client(h).run("import numpy")
    assert out["stderr"].endswith(
        "PermissionError: Importing 'numpy' is restricted.\n")


def test_a_package_that_is_not_installed_is_reported_not_fatal(request):
    h = start(request, directives={
        "PyExecAllowModules": "numpy no_such_package_%s" % uuid.uuid4().hex[:8]})
    c = Client(h)
    assert c.run("import numpy as np\nprint(np.pi > 3)")["stdout"] \
        == "True\n"
    log = h.read_log()
    assert "PyExecAllowModules: cannot import no_such_package_" in log
