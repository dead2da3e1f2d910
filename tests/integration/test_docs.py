"""The directive reference stays true to the code: every directive the
module accepts has its entry, with the Apache manual's fields, and every
entry names a directive that exists."""
import os
import re

from . import pyhttpd

SOURCE = os.path.join(pyhttpd.REPO, "mod_pyexec", "pyexec_config.c")
DOCS = os.path.join(pyhttpd.REPO, "docs", "directives.md")
FIELDS = ("Description", "Syntax", "Default", "Context", "Module")


def accepted():
    with open(SOURCE) as f:
        return set(re.findall(r'AP_INIT_\w+\("(\w+)"', f.read()))


def entries():
    with open(DOCS) as f:
        text = f.read()
    out = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        name, _, body = part.partition("\n")
        out[name.strip()] = body
    return out


def test_every_directive_has_an_entry_with_the_manual_fields():
    docs = entries()
    names = accepted()
    assert len(names) >= 16
    for name in names:
        assert name in docs, name
        for field in FIELDS:
            assert re.search(r"^\| %s \| .+ \|$" % field, docs[name],
                             flags=re.M), (name, field)
        syntax = re.search(r"^\| Syntax \| `([^`]+)`", docs[name], flags=re.M)
        assert syntax and syntax.group(1).startswith(name), name


def test_no_entry_for_a_directive_that_does_not_exist():
    extra = set(entries()) - accepted() - {"SetHandler pyexec",
                                           "SetHandler pyexec-sessions",
                                           "Mutex pyexec-registry"}
    assert not extra, extra


def test_the_readme_table_and_the_reference_agree():
    with open(os.path.join(pyhttpd.REPO, "README.md")) as f:
        readme = f.read()
    assert "docs/directives.md" in readme
    for name in accepted():
        assert "`%s`" % name in readme, name
