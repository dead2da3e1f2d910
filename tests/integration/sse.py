"""A Server-Sent Events client as the HTML standard's parser reads a
stream ("9.2.6 Interpreting an event stream"): lines end at CRLF, LF or
CR; a line starting with ':' is a comment; "field: value" with one
leading space dropped; data lines join with LF; a blank line dispatches.
Each event comes with the time it arrived, for tests of latency."""
import http.client
import json
import time


class Event:
    def __init__(self, name, data, at):
        self.name = name
        self.data = data
        self.at = at            # seconds since the request was sent

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "Event(%r, %r, %.3f)" % (self.name, self.data[:80], self.at)


def _lines(fp):
    """Lines of the stream as it arrives, whatever ends them."""
    pending = b""
    while True:
        chunk = fp.read1(65536) if hasattr(fp, "read1") else fp.read(1)
        if not chunk:
            if pending:
                yield pending
            return
        pending += chunk
        while True:
            cut = min((i for i in (pending.find(b"\r"), pending.find(b"\n"))
                       if i >= 0), default=-1)
            if cut < 0 or (pending[cut:cut + 1] == b"\r"
                           and cut + 1 == len(pending)):
                break           # a CR at the end may be half of a CRLF
            line = pending[:cut]
            step = 2 if pending[cut:cut + 2] == b"\r\n" else 1
            pending = pending[cut + step:]
            yield line


class Stream:
    """POST /execute with Accept: text/event-stream: the response and its
    events, read as they come (iterate), or all at once (events())."""

    def __init__(self, port, body, host="127.0.0.1", path="/execute",
                 headers=None, timeout=30):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        h = {"Content-Type": "application/json",
             "Accept": "text/event-stream"}
        h.update(headers or {})
        self.t0 = time.monotonic()
        self.conn.request("POST", path, json.dumps(body), h)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())

    def __iter__(self):
        name, data = "", []
        for raw in _lines(self.response):
            line = raw.decode("utf-8")
            if line == "":
                if data:
                    yield Event(name or "message", "\n".join(data),
                                time.monotonic() - self.t0)
                name, data = "", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)

    def events(self):
        try:
            return list(self)
        finally:
            self.close()

    def close(self):
        self.conn.close()
