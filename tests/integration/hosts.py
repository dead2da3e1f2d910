"""Several hosts with mod_pyexec behind a front httpd (README, "Many
hosts"), each a real httpd of pyhttpd.py.

A Cluster is backends with routes h1, h2, ... (PyExecRoute, the health
handler, mod_remoteip trusting the front) and one front running Apache's
mod_proxy_balancer on the shipped conf/pyexec-balancer.conf, of which
only the BalancerMember addresses change (one line per backend), and
the health check's interval if asked.

Run as root with `ip` and `curl`, each host gets a network namespace of
its own, joined by a veth pair to a bridge in the root namespace: real
separate addresses (10.X.Y.1 the bridge, .10 the front, .11, .12, ...
the backends, port 80 everywhere), so that the front's X-Forwarded-For
and each host's view of its clients are those of separate machines.
X.Y is random and every name carries this process's pid, so that two
runs on one machine never meet. Otherwise (or with
PYEXEC_HOSTS=loopback) the hosts are ports of 127.0.0.1.

The pages that answer loopback clients only (server-status,
balancer-manager) are reached from inside each host's namespace, on its
own loopback (Httpd.local_request): the shipped `Require` stays as it is.
"""
import os
import random
import re
import shutil
import subprocess
import threading
import urllib.parse
import xml.etree.ElementTree as ET

from . import pyhttpd

BALANCER_CONF = os.path.join(pyhttpd.REPO, "conf", "pyexec-balancer.conf")
BALANCER = "pyexec"
FRONT_MODULES = ("proxy", "proxy_http", "proxy_balancer",
                 "lbmethod_bybusyness", "slotmem_shm", "proxy_hcheck")
BACKEND_MODULES = ("remoteip",)
MEMBER_LINE = re.compile(r'^(?P<indent>[ \t]*)BalancerMember "http://[^"]*"'
                         r' route=h\d+(?P<rest>.*)$', re.M)
# the balancer-manager ignores every parameter of a request whose
# Referer is not its own host (its guard against cross-site requests)
MANAGER_HEADERS = {"Referer": "http://%s/balancer-manager" % pyhttpd.LOOPBACK}
XML_NS = {"httpd": "http://httpd.apache.org"}
FRONT_OCTET, FIRST_BACKEND_OCTET = 10, 11

HEALTH_CONF = """<Location "/pyexec-health">
    SetHandler pyexec-health
</Location>
"""


def front_conf(members, hcinterval=None):
    """conf/pyexec-balancer.conf with one BalancerMember line per
    (route, url) of members, each the shipped line but for its address
    and route; hcinterval, if given, replaces the health check's."""
    with open(BALANCER_CONF) as f:
        text = f.read()
    found = list(MEMBER_LINE.finditer(text))
    if not found or any(text[a.end():b.start()] != "\n"
                        for a, b in zip(found, found[1:])):
        raise RuntimeError("%s: no block of BalancerMember lines"
                           % BALANCER_CONF)
    template = found[0]
    rest = template["rest"]
    if hcinterval is not None:
        rest = re.sub(r"\bhcinterval=\S+", "hcinterval=%s" % hcinterval, rest)
    lines = ['%sBalancerMember "%s" route=%s%s'
             % (template["indent"], url, route, rest)
             for route, url in members]
    return text[:found[0].start()] + "\n".join(lines) + text[found[-1].end():]


def backend_conf(front_address):
    """A backend's own part: the health handler, and the client address
    from the front's X-Forwarded-For, so that per-client limits count
    real clients, not the front."""
    return HEALTH_CONF + ("RemoteIPHeader X-Forwarded-For\n"
                          "RemoteIPInternalProxy %s\n" % front_address)


def netns_wanted():
    """Separate network namespaces: as root, with the tools, unless
    PYEXEC_HOSTS=loopback asks for the fallback."""
    return (os.environ.get("PYEXEC_HOSTS") != "loopback"
            and os.geteuid() == 0
            and all(shutil.which(t) for t in ("ip", "curl")))


def _ip(*args):
    subprocess.run(("ip",) + args, check=True, capture_output=True,
                   text=True, timeout=30)


def _free_subnet():
    """10.X.Y, random, that no address or route here uses yet."""
    used = "".join(subprocess.run(["ip", "-4", "-o"] + what,
                                  capture_output=True, text=True).stdout
                   for what in (["addr"], ["route"]))
    for _ in range(100):
        net = "10.%d.%d" % (random.randint(100, 254), random.randint(0, 254))
        if not re.search(r"(^|[^0-9.])%s\." % re.escape(net), used, re.M):
            return net
    raise RuntimeError("no free 10.X.Y.0/24 subnet")


def _quietly(f):
    """f(), for a teardown that must go on whatever one step does."""
    try:
        f()
    except Exception:
        pass


class Network:
    """A bridge in the root namespace and one network namespace per
    host, each joined to the bridge by a veth pair. Everything made is
    recorded as soon as it exists, so that down() removes what a failed
    setup left."""

    made = 0        # in this process: a tag each (interface names are
                    # at most 15 characters)

    def __init__(self):
        self.tag = "%d%s" % (os.getpid(), "abcdefghijklmnopqrstuvwxyz"[
            Network.made % 26])
        Network.made += 1
        self.subnet = _free_subnet()
        self.bridge = "pxbr" + self.tag
        self.namespaces = []
        self.bridge_made = False
        self.forward_rule = None

    def address(self, octet):
        return "%s.%d" % (self.subnet, octet)

    def up(self):
        _ip("link", "add", self.bridge, "type", "bridge")
        self.bridge_made = True
        _ip("addr", "add", self.address(1) + "/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self._let_bridge_forward()

    def _let_bridge_forward(self):
        """Where br_netfilter is loaded (Docker loads it, and sets the
        FORWARD policy to DROP), frames between two ports of a bridge go
        through iptables' FORWARD chain: let this bridge's through."""
        if not os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables") \
                or not shutil.which("iptables"):
            return
        rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j",
                "ACCEPT"]
        subprocess.run(["iptables", "-I"] + rule, check=True,
                       capture_output=True, timeout=30)
        self.forward_rule = rule

    def add_host(self, name, octet):
        """A namespace for host name at subnet.octet; its name."""
        ns = "pyexec-%s-%s" % (self.tag, name)
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        veth = "pxv%s-%d" % (self.tag, octet)
        # the namespace's end is created there: no name clash with the
        # root namespace's interfaces
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0",
            "netns", ns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", self.address(octet) + "/24",
            "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def down(self):
        """Remove every namespace (and with it its veth pair) and the
        bridge; what is already gone is no error."""
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []
        if self.forward_rule:
            subprocess.run(["iptables", "-D"] + self.forward_rule,
                           capture_output=True)
            self.forward_rule = None
        if self.bridge_made:
            subprocess.run(["ip", "link", "del", self.bridge],
                           capture_output=True)
            self.bridge_made = False


class Cluster:
    """Backends and a front, started and stopped together. Use as a
    context manager or call start/stop; stop() cleans up whatever
    start() got to, even after a failure."""

    def __init__(self, routes=("h1", "h2"), directives=None, hcinterval=None,
                 build_dir=None, front_role=True, front_extra=""):
        self.routes = tuple(routes)
        # configuration a test adds to the front's, after the shipped one
        self.front_extra = front_extra
        # False: a stock front, without mod_pyexec (and so without the
        # shipped conf's <IfModule pyexec_module> parts): routes travel by
        # cookie and ?route= only
        self.front_role = front_role
        self.directives = dict(directives or {})
        self.hcinterval = hcinterval
        self.build_dir = build_dir
        self.network = None
        self.front = None
        self.backends = {}

    # -- starting and stopping ---------------------------------------------

    def start(self):
        try:
            self._make_hosts()
            for route in self.routes:
                self.start_backend(route)
            self.front.start()
            for route in self.routes:
                self.wait_member(route, up=True)
        except BaseException:
            self.stop()
            raise
        return self

    def _place(self, name, octet):
        """(address, port, netns) of a host: its own namespace and
        address, or a port of the loopback."""
        if not self.network:
            return pyhttpd.LOOPBACK, pyhttpd.free_port(), None
        return (self.network.address(octet), 80,
                self.network.add_host(name, octet))

    def _make_hosts(self):
        if netns_wanted():
            self.network = Network()
            self.network.up()
        front_addr, front_port, front_ns = self._place("front", FRONT_OCTET)
        for i, route in enumerate(self.routes):
            self.backends[route] = self._backend(
                route, FIRST_BACKEND_OCTET + i, front_addr)
        members = [(r, b.url) for r, b in self.backends.items()]
        self.front = pyhttpd.Httpd(
            build_dir=self.build_dir, address=front_addr, port=front_port,
            netns=front_ns, execute_location=False,
            extra_modules=FRONT_MODULES, load_pyexec=self.front_role,
            extra_conf=front_conf(members, self.hcinterval)
            + self.front_extra)

    def _backend(self, route, octet, front_address):
        address, port, ns = self._place(route, octet)
        # every test client is one address: no per-client cap unless the
        # caller's directives set one
        directives = {"PyExecRoute": route, "PyExecMaxClientSessions": "off",
                      "PyExecMaxSessions": 200}
        directives.update(self.directives)
        return pyhttpd.Httpd(build_dir=self.build_dir, address=address,
                             port=port, netns=ns, directives=directives,
                             extra_modules=BACKEND_MODULES,
                             extra_conf=backend_conf(front_address))

    def stop(self):
        """Stop every httpd (at once: each takes a second or two), then
        remove the network; each step whatever became of the one
        before."""
        threads = [threading.Thread(target=_quietly, args=(h.stop,))
                   for h in self.hosts()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.network:
            self.network.down()

    def cleanup(self):
        for h in self.hosts():
            h.cleanup()

    def hosts(self):
        return [h for h in [self.front] + list(self.backends.values()) if h]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()

    # -- the hosts ----------------------------------------------------------

    @property
    def url(self):
        """The front's: what clients use."""
        return self.front.url

    @property
    def netns(self):
        return self.network is not None

    @property
    def client_address(self):
        """The address this process's requests come from, as a host
        sees it."""
        return self.network.address(1) if self.network else pyhttpd.LOOPBACK

    def backend(self, route):
        return self.backends[route]

    def stop_backend(self, route):
        """A real stop of that host's httpd: its sessions are gone."""
        self.backends[route].signal("stop")

    def start_backend(self, route):
        b = self.backends[route]
        b.start()
        b.wait_spares(1)

    # -- the balancer-manager -------------------------------------------------

    def _manager(self, query="", data=None):
        headers = dict(MANAGER_HEADERS)
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, text = self.front.local_request(
            "/balancer-manager" + query, data=data, headers=headers)
        if status != 200:
            raise RuntimeError("balancer-manager%s: %d %s"
                               % (query, status, text[:500]))
        return text

    def members(self):
        """{route: (worker name, status flags)} as the front's
        balancer-manager shows them (its XML view): flags such as
        {"Init", "Ok"}, "Drn" draining, "HcFl" failed its health check,
        "Err" in error."""
        root = ET.fromstring(self._manager("?b=%s&xml=1" % BALANCER))
        out = {}
        for w in root.iterfind(".//httpd:worker", XML_NS):
            out[w.findtext("httpd:route", "", XML_NS)] = (
                w.findtext("httpd:name", "", XML_NS),
                set(w.findtext("httpd:status", "", XML_NS).split()))
        return out

    def member_flags(self, route):
        return self.members()[route][1]

    def wait_member(self, route, up, timeout=30):
        """Wait until the health check has marked route's member usable
        (up) or failed (not up); the flags seen last."""
        def settled():
            flags = self.member_flags(route)
            usable = "Ok" in flags and not flags & {"HcFl", "Err"}
            return flags if usable == up else None
        flags = pyhttpd.wait_for(settled, timeout, step=0.2)
        if not flags:
            raise RuntimeError("member %s not %s after %ss: %s" % (
                route, "up" if up else "down", timeout,
                self.member_flags(route)))
        return flags

    def set_drain(self, route, on=True):
        """Drain (on) or undrain route's member, as the manager's form
        does: a POST with the balancer's nonce."""
        name = self.members()[route][0]
        page = self._manager()
        nonce = re.search(r"nonce=([0-9a-fA-F-]+)", page).group(1)
        self._manager(data=urllib.parse.urlencode({
            "b": BALANCER, "w": name, "nonce": nonce,
            "w_status_N": int(on)}))
        flags = self.member_flags(route)
        if ("Drn" in flags) != on:
            raise RuntimeError("member %s: drain %s not applied: %s"
                               % (route, on, flags))
        return flags


def serve(argv=None):
    """Run a Cluster until SIGTERM or Ctrl-C (`python3 -m
    tests.integration.hosts` from the top of the tree): for the browser
    suite (tests/e2e, which reads the "front at" line) and for trying the
    balancer by hand."""
    import argparse
    ap = argparse.ArgumentParser(description="Two backends with mod_pyexec "
                                 "behind a front with mod_proxy_balancer, "
                                 "until Ctrl-C.")
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started this one is "
                    "gone")
    args = ap.parse_args(argv)
    until_stopped = pyhttpd.stopper(args.exit_with_parent)
    c = Cluster(build_dir=args.build_dir)
    try:
        c.start()
        print("mod_pyexec cluster: front at %s/  backends %s" % (
            c.url, ", ".join("%s %s" % (r, b.url)
                             for r, b in c.backends.items())), flush=True)
        until_stopped()
    finally:
        c.stop()
        c.cleanup()
    return 0


if __name__ == "__main__":
    # python3 -m tests.integration.hosts, from the top of the tree
    raise SystemExit(serve())
