#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Make docker/seccomp.json: Docker's default seccomp profile plus exactly
the calls mod_pyexec's helpers make once, at start, to build their
sandbox (sandbox_linux.c). Nothing else is added, nothing is taken away.

    python3 docker/seccomp.py DEFAULT.json > docker/seccomp.json

DEFAULT.json is the default profile of the Docker the image is tested
with, Debian 12's docker.io, as the Debian package
golang-github-docker-docker-dev ships it
(/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json);
tests/integration/test_container.py makes the profile again from it and
checks that it is the committed one.

Why each is needed, and why it is safe to let the container's processes
make these calls: docs/security.md, "In a container".
"""
import json
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080


def masked_zero(index, mask):
    """arg[index] & mask == 0"""
    return {"index": index, "value": mask, "valueTwo": 0,
            "op": "SCMP_CMP_MASKED_EQ"}


ADDED = [
    {
        # the zygote: unshare(user, net, ipc, uts), then unshare(mount);
        # never a pid, cgroup or time namespace by unshare
        "names": ["unshare"],
        "action": "SCMP_ACT_ALLOW",
        "args": [masked_zero(0, CLONE_NEWPID | CLONE_NEWCGROUP
                             | CLONE_NEWTIME)],
        "comment": "mod_pyexec: the zygote's user, net, ipc, uts and "
                   "mount namespaces",
    },
    {
        # each helper: clone(CLONE_PARENT | CLONE_NEWPID | CLONE_NEWNS);
        # Docker's own rule allows clone with no namespace flag at all
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [masked_zero(0, CLONE_NEWCGROUP | CLONE_NEWUTS
                             | CLONE_NEWIPC | CLONE_NEWUSER
                             | CLONE_NEWNET)],
        "excludes": {"arches": ["s390", "s390x"]},
        "comment": "mod_pyexec: each helper's pid and mount namespaces",
    },
    {
        # the read-only root of the Python library: tmpfs, bind mounts,
        # remounts, pivot_root, the old root detached; the helper's own
        # /proc detached
        "names": ["mount", "umount2", "pivot_root"],
        "action": "SCMP_ACT_ALLOW",
        "comment": "mod_pyexec: the helpers' read-only root, in their "
                   "own mount namespace",
    },
    {
        "names": ["sethostname"],
        "action": "SCMP_ACT_ALLOW",
        "comment": "mod_pyexec: the zygote's uts namespace is named "
                   "'sandbox'",
    },
    {
        # Landlock: in Docker's default already (Debian 12's docker.io and
        # Docker 25 on); named here so that the profile holds on a base
        # that lacks them
        "names": ["landlock_create_ruleset", "landlock_add_rule",
                  "landlock_restrict_self"],
        "action": "SCMP_ACT_ALLOW",
        "comment": "mod_pyexec: the helpers' Landlock rules",
    },
]


def profile(default):
    out = dict(default)
    out["syscalls"] = list(default["syscalls"]) + ADDED
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1]) as f:
        default = json.load(f)
    json.dump(profile(default), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
