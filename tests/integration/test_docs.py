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
                                           "SetHandler pyexec-health",
                                           "SetHandler pyexec-error",
                                           "Mutex pyexec-registry"}
    assert not extra, extra


def test_the_readme_table_and_the_reference_agree():
    with open(os.path.join(pyhttpd.REPO, "README.md")) as f:
        readme = f.read()
    assert "docs/directives.md" in readme
    for name in accepted():
        assert "`%s`" % name in readme, name


# -- the rest of the documentation ---------------------------------------------

DOC_DIR = os.path.join(pyhttpd.REPO, "docs")
MOD_DIR = os.path.join(pyhttpd.REPO, "mod_pyexec")


def doc_files():
    return [os.path.join(pyhttpd.REPO, "README.md")] + sorted(
        os.path.join(DOC_DIR, n) for n in os.listdir(DOC_DIR)
        if n.endswith(".md"))


def prose(path):
    """The file's text outside fenced code blocks."""
    with open(path) as f:
        text = f.read()
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def slug(heading):
    """The anchor GitHub gives a heading."""
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


def anchors(path):
    return {slug(h) for h in re.findall(r"^#+ (.+)$", prose(path), flags=re.M)}


def test_every_relative_link_resolves():
    """Links between the README and docs/ (and to files of the tree) lead
    somewhere, anchors included."""
    checked = 0
    for path in doc_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(path)):
            if re.match(r"[a-z]+:", target):
                continue                # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = (os.path.normpath(os.path.join(os.path.dirname(path),
                                                  file_part))
                    if file_part else path)
            assert os.path.exists(dest), (path, target)
            if anchor and dest.endswith(".md"):
                assert anchor in anchors(dest), (path, target)
            checked += 1
    assert checked >= 30


def test_the_readme_leads_to_every_docs_page():
    readme = prose(os.path.join(pyhttpd.REPO, "README.md"))
    for name in os.listdir(DOC_DIR):
        if name.endswith(".md"):
            assert "(docs/%s)" % name in readme, name


def code_tags():
    """Every PYEXEC_LOGNO(nnnnn) in the module's sources, with its file."""
    found = []
    for name in sorted(os.listdir(MOD_DIR)):
        if name.endswith(".c"):
            with open(os.path.join(MOD_DIR, name)) as f:
                found += [(t, name) for t in
                          re.findall(r"PYEXEC_LOGNO\((\d{5})\)", f.read())]
    return found


def test_log_tags_are_used_once_and_each_is_documented():
    found = code_tags()
    assert len(found) >= 30
    seen = {}
    for tag, name in found:
        assert tag not in seen, "PYX%s in %s and %s" % (tag, seen[tag], name)
        seen[tag] = name
    with open(os.path.join(DOC_DIR, "operations.md")) as f:
        section = f.read().split("## Log messages", 1)[1]
    documented = re.findall(r"^\| `PYX(\d{5})` \|", section, flags=re.M)
    assert len(documented) == len(set(documented)), "a tag listed twice"
    assert set(documented) == set(seen), (
        "in the code, not in docs/operations.md: %s; listed, not in the "
        "code: %s" % (sorted(set(seen) - set(documented)),
                      sorted(set(documented) - set(seen))))


def test_the_file_map_is_the_tree():
    """docs/architecture.md's table names every source file of the module
    and no other; mod_pyexec.c's map names every file of the httpd side."""
    with open(os.path.join(DOC_DIR, "architecture.md")) as f:
        arch = f.read()
    mapped = set()
    for row in re.findall(r"^\| `mod_pyexec/([^|]+)\|", arch, flags=re.M):
        names = re.findall(r"`([^`]+)`", "`" + row)
        base = None
        for n in names:
            if n.startswith("."):       # `foo.c`, `.h`
                mapped.add(base + n)
            else:
                base = os.path.splitext(n)[0]
                mapped.add(n)
    tree = {n for n in os.listdir(MOD_DIR) if n.endswith((".c", ".h"))}
    assert mapped == tree, ("missing from the map: %s; mapped but gone: %s"
                            % (sorted(tree - mapped), sorted(mapped - tree)))
    with open(os.path.join(MOD_DIR, "mod_pyexec.c")) as f:
        head = f.read().split("#include", 1)[0]
    for n in tree:
        if n.endswith(".c") and not n.startswith(("helper_", "sandbox_",
                                                   "mod_pyexec")):
            assert n in head, "mod_pyexec.c's map lacks %s" % n
