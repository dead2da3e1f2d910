"""The data stack (issue 14, its first step): PyExecAllowModules numpy
pandas matplotlib, Debian's packages, preloaded in the zygote and
usable in the full sandbox: no home, no thread, no file written."""
import os
import struct
import uuid

import pytest

from .conftest import Client, start

for pkg in ("numpy", "pandas", "matplotlib"):
    if not os.path.isdir("/usr/lib/python3/dist-packages/" + pkg):
        pytest.skip("python3-%s is not installed" % pkg,
                    allow_module_level=True)


@pytest.fixture(scope="module")
def stack(request):
    return start(request, directives={
        "PyExecAllowModules": "numpy pandas matplotlib",
        "PyExecSpareHelpers": 2})


def run(server, code, sid=None):
    out = Client(server).run(code, sid)
    assert "error" not in out, out
    return out


def test_the_stack_is_loaded_before_the_session(stack):
    """All three are in the warm helper: importing them, pyplot and its
    Agg backend included, finds them loaded (well under 10 ms; a real
    import of matplotlib.pyplot takes hundreds)."""
    out = run(stack, "import time\n"
                     "t = time.perf_counter()\n"
                     "import numpy, pandas, matplotlib\n"
                     "import matplotlib.pyplot as plt\n"
                     "print(time.perf_counter() - t, matplotlib.get_backend())")
    assert "stderr" not in out, out
    took, backend = out["stdout"].split()
    assert float(took) < 0.010, out
    assert backend == "agg"


def test_a_figure_renders_to_png_of_its_size(stack):
    out = run(stack, "import io\n"
                     "import matplotlib.pyplot as plt\n"
                     "fig, ax = plt.subplots(figsize=(4, 2), dpi=50)\n"
                     "ax.plot([1, 3, 2]); ax.set_title('$x^2$ and text')\n"
                     "b = io.BytesIO(); fig.savefig(b, format='png')\n"
                     "print(b.getvalue().hex())")
    assert "stderr" not in out, out
    png = bytes.fromhex(out["stdout"].strip())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])     # IHDR
    assert (width, height) == (200, 100)
    # and as SVG, which parses
    out = run(stack, "import io\n"
                     "b = io.StringIO(); fig.savefig(b, format='svg')\n"
                     "print(b.getvalue())", out["id"])
    import xml.etree.ElementTree as ET
    assert ET.fromstring(out["stdout"]).tag.endswith("svg")


def test_savefig_to_a_path_writes_nothing(stack):
    """A figure saved to a file fails as any write does, and no file
    appears on the host."""
    path = "/tmp/pyexec-stack-%s.png" % uuid.uuid4().hex
    out = run(stack, "import matplotlib.pyplot as plt\n"
                     "fig = plt.figure()\n"
                     "print('drawn')\n"
                     "fig.savefig(%r)" % path)
    assert out.get("stdout") == "drawn\n", out
    last = out.get("stderr", "").strip().splitlines()[-1]
    assert last.startswith(("PermissionError", "OSError")), out
    assert not os.path.exists(path)


def test_pandas_frames_as_text_and_html(stack):
    out = run(stack, "import pandas as pd\n"
                     "df = pd.DataFrame({'a': [1, 2], 'b': [3.5, 4.5]})\n"
                     "print(df)\n"
                     "print(df._repr_html_())")
    assert "stderr" not in out, out
    assert "3.5" in out["stdout"] and "<td>4.5</td>" in out["stdout"]


def test_the_stack_is_not_importable_unless_allowed(client):
    for name in ("pandas", "matplotlib"):
        body = client.run("import %s" % name)
        assert body["stderr"].endswith(
            "ModuleNotFoundError: No module named '%s'\n" % name), body
