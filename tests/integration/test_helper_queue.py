"""The helper's side of a session's queue, driven directly.

These tests play the supervisor (a SPAWN with a listening socket) and
then the workers (EXEC frames with tickets), with no httpd in between:
the interleavings that matter here (a request that reaches the helper
after one that was queued behind it, a request that never comes, one
sent twice) are races httpd would produce only by chance.
"""
import os
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from . import pyhttpd

HELPER = os.path.join(os.path.abspath(os.environ.get("PYEXEC_BUILD_DIR", "build")),
                      "pyexec-helper")

MAGIC = 0x58455950
VERSION = pyhttpd.PROTO_VERSION
EXEC, STARTED, RESULT, SKIPPED = 1, 2, 3, 4
SPAWN, SPAWNED, READY, REFUSED = 20, 21, 22, 23
WANT_STARTED = 0x1
TOKEN = bytes(range(16))
RESULT_FIXED = 40   # pyexec_protocol.h: PYEXEC_RESULT_FIXED_LEN
TURN_WAIT = 0.2     # helper_serve.c: TURN_WAIT_US


def frame(mtype, payload=b"", flags=0):
    return struct.pack("<IHHII", MAGIC, VERSION, mtype, flags,
                       len(payload)) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(sock):
    magic, version, mtype, flags, length = struct.unpack(
        "<IHHII", recv_exact(sock, 16))
    assert (magic, version) == (MAGIC, VERSION)
    return mtype, recv_exact(sock, length) if length else b""


class Helper:
    """One session helper, forked by a zygote we started ourselves."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "h.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(self.path)
        lsock.listen(64)
        self.chan, theirs = socket.socketpair(socket.AF_UNIX,
                                              socket.SOCK_SEQPACKET)
        os.chmod(tmp, 0o755)

        def as_nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        self.zygote = subprocess.Popen(
            [HELPER, "--zygote", "--channel", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env={}, cwd="/",
            preexec_fn=as_nobody if os.getuid() == 0 else None,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        spawn = struct.pack("<IIQIIII", 0, 1, 100 << 20, 1 << 20, 10,
                            1 << 16, 0) + TOKEN \
            + struct.pack("<I", 4 << 20) + b"subprocess\0"     # max_display
        socket.send_fds(self.chan, [frame(SPAWN, spawn)], [lsock.fileno()])
        lsock.close()
        self.chan.settimeout(30)
        self.pid = None
        while True:
            msg = self.chan.recv(65536)
            mtype = struct.unpack("<IHHII", msg[:16])[2]
            assert mtype != REFUSED, msg[16 + 16:]
            if mtype == READY:
                self.pid = struct.unpack("<i", msg[16 + 8:16 + 12])[0]
                break

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.path)
        return s

    def close(self):
        self.chan.close()       # the zygote leaves when its channel closes
        self.zygote.wait(10)
        # the session helper is our child (CLONE_PARENT): reap it
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def send_exec(sock, ticket, code, flags=0):
    # ticket, no stdin, the source
    sock.sendall(frame(EXEC, TOKEN + struct.pack("<II", ticket, 0)
                       + code.encode(), flags))


def result(sock):
    """stdout of the RESULT on sock (after STARTED, if one comes)."""
    mtype, payload = recv_frame(sock)
    if mtype == STARTED:
        mtype, payload = recv_frame(sock)
    assert mtype == RESULT, mtype
    status, flags, out_len, err_len = struct.unpack("<IIII", payload[:16])
    assert err_len == 0, payload[RESULT_FIXED + out_len:]
    return payload[RESULT_FIXED:RESULT_FIXED + out_len].decode()


@pytest.fixture
def helper():
    if not os.access(HELPER, os.X_OK):
        pytest.skip("no helper built at %s" % HELPER)
    with tempfile.TemporaryDirectory() as tmp:
        h = Helper(tmp)
        try:
            yield h
        finally:
            h.close()


def test_requests_run_in_ticket_order_not_arrival_order(helper):
    """A request counted in first runs first, even when a later one's
    frame reaches the helper before it: its worker was told nothing was
    ahead of it and started its clock on sending."""
    a, b, c = helper.connect(), helper.connect(), helper.connect()
    send_exec(a, 0, "log = []")
    assert result(a) == ""
    send_exec(b, 2, "log.append('second')", WANT_STARTED)
    time.sleep(0.05)            # b's frame has been waiting for a while
    send_exec(a, 1, "log.append('first')")
    assert result(a) == ""
    assert recv_frame(b)[0] == STARTED
    assert result(b) == ""
    send_exec(c, 3, "print(log)")
    assert result(c) == "['first', 'second']\n"


def test_a_ticket_that_never_comes_is_passed_over(helper):
    """A worker that counted itself in and then died or gave up before
    sending must not stall the session: a request queued behind it waits
    about TURN_WAIT, then runs."""
    a = helper.connect()
    send_exec(a, 0, "x = 1")
    assert result(a) == ""
    t = time.monotonic()
    send_exec(a, 2, "x += 1\nprint(x)", WANT_STARTED)   # ticket 1 never comes
    assert result(a) == "2\n"
    waited = time.monotonic() - t
    assert TURN_WAIT * 0.9 <= waited < TURN_WAIT + 1.5, waited


def test_a_request_with_nothing_ahead_does_not_wait_for_a_gap(helper):
    """Sent without WANT_STARTED, a request's worker found every earlier
    ticket answered or given up: it runs at once, since its own clock is
    running."""
    a = helper.connect()
    send_exec(a, 0, "x = 1")
    assert result(a) == ""
    t = time.monotonic()
    send_exec(a, 5, "x += 1\nprint(x)")      # tickets 1 to 4 never come
    assert result(a) == "2\n"
    assert time.monotonic() - t < TURN_WAIT * 0.5


def test_a_late_request_from_a_worker_that_left_is_dropped_safely(helper):
    """A late ticket whose worker already hung up, read in the same round
    as the request whose turn it is: the SKIPPED cannot be sent, its
    connection goes, and the other request still runs once, and the
    helper lives on (it once freed a moved request twice here)."""
    a = helper.connect()
    send_exec(a, 0, "n = 0")
    assert result(a) == ""
    send_exec(a, 1, "import time\ntime.sleep(0.3)\nn += 1")
    time.sleep(0.05)                    # the helper is busy with ticket 1
    late, now = helper.connect(), helper.connect()
    send_exec(late, 0, "n += 100")      # a copy of an answered ticket
    late.close()
    send_exec(now, 2, "n += 1\nprint(n)", WANT_STARTED)
    assert result(a) == ""
    assert result(now) == "2\n"
    last = helper.connect()
    send_exec(last, 3, "print(n)")
    assert result(last) == "2\n"


def test_a_request_whose_turn_passed_is_skipped_unrun(helper):
    """... and should it come after all, it is answered SKIPPED and not
    run, since later requests may have changed the session meanwhile."""
    a, late = helper.connect(), helper.connect()
    send_exec(a, 0, "x = 1")
    assert result(a) == ""
    send_exec(a, 2, "x = 2")
    assert result(a) == ""
    send_exec(late, 1, "x = 'late'")
    assert recv_frame(late) == (SKIPPED, b"")
    send_exec(late, 3, "print(x)")       # the connection is still good
    assert result(late) == "2\n"


def test_a_request_sent_twice_runs_once(helper):
    """A worker resends a request whose connection closed before any
    answer; should the first copy have been read after all, the second
    is skipped, never run again."""
    a, again = helper.connect(), helper.connect()
    send_exec(a, 0, "n = 0")
    assert result(a) == ""
    send_exec(a, 1, "n += 1")
    assert result(a) == ""
    send_exec(again, 1, "n += 1")
    assert recv_frame(again)[0] == SKIPPED
    send_exec(again, 2, "print(n)")
    assert result(again) == "1\n"


class Worker:
    """One request as pyexec_bridge.c sends it: on a connection the
    helper closed before any byte of an answer (to make room), it is sent
    once more on a new one."""

    def __init__(self, helper, ticket, code, flags=0):
        self.helper, self.args = helper, (ticket, code, flags)
        self.sock = helper.connect()
        try:
            send_exec(self.sock, *self.args)
        except BrokenPipeError:
            self.resend()

    def resend(self):
        self.sock.close()
        self.sock = self.helper.connect()
        send_exec(self.sock, *self.args)

    def result(self):
        try:
            first = self.sock.recv(1, socket.MSG_PEEK)
        except ConnectionResetError:
            first = b""
        if not first:
            self.resend()
        return result(self.sock)


def test_more_waiting_requests_than_kept_connections(helper):
    """Twelve requests queued at once, sent in the reverse of their
    tickets' order: the helper takes in more connections than the eight
    it keeps, so that it finds each turn, and runs them all in order."""
    first = Worker(helper, 0, "order = []")
    assert first.result() == ""
    workers = [Worker(helper, t, "order.append(%d)" % t, WANT_STARTED)
               for t in range(12, 0, -1)]
    for w in reversed(workers):
        assert w.result() == ""
    assert Worker(helper, 13, "print(order)").result() \
        == str(list(range(1, 13))) + "\n"


def test_silent_connections_neither_lock_out_nor_spin_the_helper(helper):
    """Connections that never send a request (anything running as User
    can open them) fill the helper's places: it must not spin on its
    backlog, and must close the silent ones to let a worker in."""
    a = helper.connect()
    send_exec(a, 0, "x = 1")
    assert result(a) == ""
    a.close()
    silent = [helper.connect() for _ in range(24)]
    time.sleep(0.2)
    before = pyhttpd.cpu_seconds(helper.pid)
    time.sleep(0.5)
    assert pyhttpd.cpu_seconds(helper.pid) - before < 0.1     # not spinning
    t = time.monotonic()
    assert Worker(helper, 1, "print(x)").result() == "1\n"
    assert time.monotonic() - t < 4
    for s in silent:
        s.close()
