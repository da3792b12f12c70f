"""Fixtures for the integration tests: a real `dijk serve` started on free
loopback ports in a temporary data directory, and helpers to look inside
its store through the admin CLI."""

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Test servers and peers (DnsServer, SmtpPeer, PostfixPeer) live in
# tests/support; tests import them by module name.
sys.path.insert(0, str(ROOT / "tests" / "support"))
DIJK = os.environ.get("DIJK_BIN", str(ROOT / "build" / "dijk"))
DOMAIN = "example.test"
PASSWORDS = {
    "alice@example.test": "alice-password-1",
    "bob@example.test": "bob-password-22",
}

# Every test server runs without DNS ("none": each lookup fails at once,
# as a temporary error), so that no test depends on the machine's resolver
# or on real DNS (there is no network), and no lookup waits for a timeout:
# outbound mail stays queued and the MX's SPF, DKIM and DMARC checks say
# temperror at once. A test of outbound mail points dns.resolver at its
# own DnsServer instead. The empty trust anchor turns DNSSEC validation
# off: the default, the real root key, could validate no test zone.
NO_DNS_RESOLVER = "none"


_handed_out = set()


def _port_pool():
    """Ports below the kernel's ephemeral range: no outgoing connection
    (dijk's deliveries, bound to 127.0.0.X, make many) can hold one of
    them as its source port when a server wants to listen on it."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    pool = range(max(1024, low - 12000), low)
    # Run by pytest-xdist (scripts/test.sh), each worker process takes
    # every Nth port of its own, so two workers never pick the same port
    # between checking that it is free and a server binding it.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        pool = pool[int(worker[2:]) % count::count]
    return pool


def free_port():
    """A port nothing listens on now, and never one handed out before in
    this test run: a server's seven ports are picked before it binds them.
    Picked from below the ephemeral range, free on every loopback address
    the tests use."""
    pool = _port_pool()
    rng = random.Random()
    while True:
        port = rng.choice(pool)
        if port in _handed_out:
            continue
        try:
            for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        _handed_out.add(port)
        return port


def free_udp_port():
    """Like free_port, for a server that also needs the UDP port (DNS)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def wait_port(port, timeout=15.0, banner=b"220", host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                s.settimeout(2)
                got = s.recv(512)
                if got.startswith(banner):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"port {host}:{port} did not answer with {banner!r}")


def wait_http(port, timeout=15.0, host="127.0.0.1"):
    """Waits until an HTTP server answers on port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                s.sendall(b"HEAD /static/style.css HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"port {host}:{port} did not answer HTTP")


LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "http", "https")


# Data directories made by dijk init, domain add and user add, one per
# kind of server, copied for each server of that kind (Dijk._initialise).
_templates = {}
_template_dir = None


def _template_root():
    global _template_dir
    if _template_dir is None:
        _template_dir = tempfile.mkdtemp(prefix="dijk-templates-")
        atexit.register(shutil.rmtree, _template_dir, ignore_errors=True)
    return _template_dir


class Dijk:
    """One dijk data directory and, once started, its running server.

    The defaults make the server every older test expects: domain
    example.test, hostname mail.example.test, the users of PASSWORDS,
    every listener on 127.0.0.1 on a free port. Tests of mail between
    servers give their own: domain (one name or a list; the first is
    .domain), hostname, users ({address: password}), address (the
    loopback address every listener binds, e.g. "127.0.0.2"), and ports
    ({listener: port}, e.g. {"smtp": 2525}, for servers that must share
    a port number on different addresses)."""

    def __init__(self, data, extra_config=None, domain=DOMAIN,
                 hostname="mail.example.test", users=None, address="127.0.0.1",
                 ports=None):
        self.data = Path(data)
        self.proc = None
        self.log_path = self.data.parent / (self.data.name + ".log")
        self.domains = [domain] if isinstance(domain, str) else list(domain)
        self.domain = self.domains[0]
        self.hostname = hostname
        self.users = dict(PASSWORDS if users is None else users)
        self.address = address
        self._initialise()
        ports = dict(ports or {})
        unknown = set(ports) - set(LISTENERS)
        assert not unknown, f"no such listeners: {unknown}"
        for name in LISTENERS:
            setattr(self, f"{name}_port", ports.get(name) or free_port())
        self.config = {
            "hostname": hostname,
            **{f"listen.{name}": f"{address}:{getattr(self, name + '_port')}"
               for name in LISTENERS},
            # No test server may reach real DNS (see NO_DNS_RESOLVER).
            "dns.resolver": NO_DNS_RESOLVER,
            "dns.trust_anchor": "",
        }
        self.config.update(extra_config or {})
        self.write_config()

    def _initialise(self):
        """dijk init, domain add and user add into the data directory; the
        first server of a kind in this test process makes it, the others
        copy it (with its owners: each file keeps the user of the process
        that uses it). Most tests start several servers, and the commands,
        each user's Argon2id above all, took a second a server under ASan."""
        key = (DIJK, self.hostname, tuple(self.domains), tuple(self.users.items()))
        template = _templates.get(key)
        if template is None:
            template = Path(_template_root()) / str(len(_templates)) / "data"
            template.parent.mkdir()
            self._run_cli(template, "init", "--hostname", self.hostname)
            for d in self.domains:
                self._run_cli(template, "domain", "add", d)
            for user, password in self.users.items():
                self._run_cli(template, "user", "add", user, "--password-stdin",
                              input=password + "\n")
            _templates[key] = template
        subprocess.run(["cp", "-a", f"{template}/.", str(self.data)], check=True)

    def write_config(self):
        text = "".join(f"{k} = {v}\n" for k, v in self.config.items())
        (self.data / "dijk.conf").write_text(text)

    def cli(self, *args, input=None, check=True):
        return self._run_cli(self.data, *args, input=input, check=check)

    @staticmethod
    def _run_cli(data, *args, input=None, check=True):
        r = subprocess.run(
            [DIJK, *args, "--data", str(data)],
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True,
            timeout=60,
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"dijk {' '.join(args)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
            )
        return r

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [DIJK, "serve", "--data", str(self.data)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for port in (self.smtp_port, self.submission_port):
            wait_port(port, host=self.address)
        if self.config.get("listen.imap"):
            wait_port(self.imap_port, banner=b"* OK", host=self.address)
        if self.config.get("listen.http"):
            wait_http(self.http_port, host=self.address)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.log.close()
        self.proc = None
        return code

    def logs(self):
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def children(self, name):
        """PIDs of the master's children named dijk-NAME (auth, smtp)."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        pids = []
        for pid in out:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm == f"dijk-{name}":
                pids.append(int(pid))
        return pids

    # The store, seen through the admin CLI.
    def messages(self, user, mailbox="INBOX"):
        r = self.cli("mail", "list", user, "--mailbox", mailbox)
        rows = []
        for line in r.stdout.decode().splitlines():
            uid, size, date = line.split()
            rows.append((int(uid), int(size), int(date)))
        return rows

    def message(self, user, uid, mailbox="INBOX"):
        return self.cli("mail", "get", user, str(uid), "--mailbox", mailbox).stdout

    def all_messages(self, user, mailbox="INBOX"):
        return [self.message(user, uid, mailbox) for uid, _, _ in self.messages(user, mailbox)]

    def queue(self):
        return self.cli("queue", "list").stdout.decode().splitlines()


# The shared servers of the abuse modules take hundreds of connections at
# once from 127.0.0.1 (test_many_simultaneous_*): above the default limit
# per address (20), which test_rate_limit.py checks.
SHARED_SERVER_CONFIG = {"limits.connections_per_ip": "1000"}


@pytest.fixture
def dijk_factory(tmp_path):
    servers = []

    def make(name="data", extra_config=None, start=True, **kwargs):
        """kwargs: Dijk's domain, hostname, users, address, ports."""
        d = Dijk(tmp_path / name, extra_config, **kwargs)
        servers.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in servers:
        code = d.stop()
        assert code in (None, 0), f"dijk serve exited with {code}:\n{d.logs()[-4000:]}"
        assert "panic" not in d.logs(), d.logs()[-4000:]
        assert "ERROR: AddressSanitizer" not in d.logs(), d.logs()[-8000:]
        assert "runtime error:" not in d.logs(), d.logs()[-8000:]


@pytest.fixture
def dijk(dijk_factory):
    return dijk_factory()


# --- Process helpers (appended for test_processes.py / test_durability.py) ---

def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate until it returns something truthy; returns that, or
    raises AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def descendants(pid):
    """All live descendants of pid, found through /proc/PID/task/*/children."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.append(k)
                    todo.append(k)
    return found


def kill9_family(server, timeout=10):
    """SIGKILLs a running Dijk's master and every process under it, as a
    power cut would, then reaps the master. The master is stopped first so
    that it cannot fork a replacement between the listing and the kill.
    Returns the PIDs killed."""
    master = server.proc.pid
    os.kill(master, signal.SIGSTOP)
    family = descendants(master)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(master, signal.SIGKILL)
    code = server.stop(timeout=timeout)
    assert code == -signal.SIGKILL, f"master ended with {code}"
    wait_until(lambda: not any(pid_alive(p) for p in family), timeout,
               what="the killed children to disappear")
    return [master, *family]


# --- Raw SMTP over a socket (test_smtp_protocol.py, test_smtp_abuse.py) ---

import re as _re  # noqa: E402
import uuid as _uuid  # noqa: E402


class RawSmtp:
    """A line-level SMTP client on a plain socket. Every read has a timeout,
    so a server that does not answer fails the test instead of hanging."""

    def __init__(self, port, greeting=True, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.greeting = self.reply() if greeting else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unread: {self.buf!r}")
        self.buf += chunk

    def line(self):
        """One reply line, without its CRLF."""
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def reply(self):
        """The lines of one reply, up to the line with a space (or nothing)
        after the code."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def cmd(self, line):
        self.send(line.encode("utf-8") + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def ehlo(self, name="client.remote.test"):
        r = self.cmd(f"EHLO {name}")
        assert r[0] == "250-mail.example.test", r
        return r

    def rest_until_close(self, timeout=5.0):
        """Everything the server sends until it closes the connection."""
        self.sock.settimeout(timeout)
        data, self.buf = self.buf, b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except ConnectionResetError:
            return data
        except socket.timeout:
            raise AssertionError(f"connection still open after {timeout}s; got {data!r}")

    def assert_closed(self, timeout=5.0):
        rest = self.rest_until_close(timeout)
        assert rest == b"", f"data after the last reply: {rest!r}"

    def assert_silent(self, wait=0.3):
        """Nothing more arrives within wait seconds (the connection stays open)."""
        assert self.buf == b"", f"unexpected data: {self.buf!r}"
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        finally:
            self.sock.settimeout(10.0)
        raise AssertionError(f"unexpected data: {chunk!r}")

    def starttls(self, context):
        assert self.buf == b"", f"data after the 220 of STARTTLS: {self.buf!r}"
        self.sock = context.wrap_socket(self.sock)
        self.sock.settimeout(10.0)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def split_received(stored):
    """(the trace fields dijk prepends, the bytes after them): its Received
    field and, on mail that came in over the MX, the Authentication-Results
    field of its checks right below it."""
    m = _re.match(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*"
                  rb"(?:Authentication-Results: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)?",
                  stored)
    assert m, f"stored message does not start with a Received header: {stored[:200]!r}"
    return m.group(0), stored[m.end():]


def smtp_deliver_raw(port, rcpts=("bob@example.test",), body=None,
                     sender="health@remote.test"):
    """A plain MX delivery on a new connection; returns the body sent."""
    if body is None:
        body = (f"Subject: health {_uuid.uuid4().hex}\r\n\r\nstill serving\r\n").encode()
    with RawSmtp(port) as c:
        assert c.greeting == ["220 mail.example.test ESMTP dijk"], c.greeting
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{sender}>") == ["250 2.1.0 Ok"]
        for r in rcpts:
            assert c.cmd(f"RCPT TO:<{r}>") == ["250 2.1.5 Ok"]
        assert c.cmd("DATA") == ["354 End data with <CR><LF>.<CR><LF>"]
        c.send(body + b".\r\n")
        r = c.reply()
        assert len(r) == 1 and r[0].startswith("250 2.0.0 Ok: queued as "), r
        assert c.cmd("QUIT") == ["221 2.0.0 mail.example.test closing connection"]
    return body


def assert_smtp_still_serves(dijk, rcpt="bob@example.test"):
    """A NEW client can still deliver, and gets exactly its message stored."""
    before = dijk.messages(rcpt)
    body = smtp_deliver_raw(dijk.smtp_port, rcpts=(rcpt,))
    after = dijk.messages(rcpt)
    assert len(after) == len(before) + 1, (before, after)
    _, content = split_received(dijk.message(rcpt, after[-1][0]))
    assert content == body


class StoreMark:
    """What a server's store held when a test began, so that a test on a
    shared server can see exactly what it added."""

    def __init__(self, dijk):
        self.dijk = dijk
        self.uids = {u: {row[0] for row in dijk.messages(u)} for u in PASSWORDS}

    def new_messages(self, user):
        return [row for row in self.dijk.messages(user) if row[0] not in self.uids[user]]

    def new_bodies(self, user):
        """The new messages of user, without dijk's Received header."""
        return [split_received(self.dijk.message(user, uid))[1]
                for uid, _, _ in self.new_messages(user)]


@pytest.fixture(scope="module")
def _smtp_shared_servers(tmp_path_factory):
    servers = []
    yield servers
    for d in servers:
        code = d.stop()
        assert code in (None, 0), f"dijk serve exited with {code}:\n{d.logs()[-4000:]}"
        for bad in ("panic", "ERROR: AddressSanitizer", "runtime error:"):
            assert bad not in d.logs(), d.logs()[-8000:]


@pytest.fixture
def smtp_shared_dijk(_smtp_shared_servers, tmp_path_factory):
    """One default server shared by the tests of a module (starting a
    server per test is slow under ASan). Never give it outbound mail: its
    queue stays empty. .mark is a StoreMark taken as the test begins; a
    test that kills the server fails, and the next test gets a new one."""
    servers = _smtp_shared_servers
    if not servers or servers[-1].proc is None or servers[-1].proc.poll() is not None:
        d = Dijk(tmp_path_factory.mktemp("shared") / "data",
                 extra_config=SHARED_SERVER_CONFIG)
        servers.append(d)
        d.start()
    d = servers[-1]
    log_start = len(d.logs())
    d.mark = StoreMark(d)
    yield d
    assert d.proc is not None and d.proc.poll() is None, \
        f"dijk serve died during the test:\n{d.logs()[log_start:][-4000:]}"
    new_log = d.logs()[log_start:]
    for bad in ("panic", "ERROR: AddressSanitizer", "runtime error:"):
        assert bad not in new_log, new_log[-8000:]


# --- Raw IMAP over a socket (test_imap_protocol.py, test_imap_abuse.py) ---

import ssl as _ssl  # noqa: E402
import itertools as _itertools  # noqa: E402

_LITERAL_AT_END = _re.compile(rb"~?\{(\d+)\+?\}$")
_LITERAL_TO_SEND = _re.compile(rb"\{(\d+)(\+?)\}\r\n")


def imap_tls_context():
    ctx = _ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = _ssl.CERT_NONE
    return ctx


class RawImap:
    """A response-level IMAP client on a plain (or TLS) socket. A response
    is returned as the exact bytes the server sent, without the final
    CRLF: a literal stays inline ("* 1 FETCH (BODY[] {5}\\r\\nhello)").
    Text is decoded as UTF-8 (surrogateescape). Every read has a timeout."""

    def __init__(self, port, tls=False, greeting=True, timeout=10.0):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # Small writes (a literal's announcement, then its data) must not
        # wait for delayed ACKs.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            self.sock = imap_tls_context().wrap_socket(self.sock)
        self.sock.settimeout(timeout)
        self.buf = b""
        self._tags = _itertools.count(1)
        self.greeting = self.response() if greeting else None

    # --- reading
    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unread: {self.buf!r}")
        self.buf += chunk

    def rawline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response_bytes(self):
        """One whole response: a line and the literals it announces."""
        out = self.rawline()
        while True:
            m = _LITERAL_AT_END.search(out)
            if not m or out.startswith(b"+"):
                return out
            out += b"\r\n" + self._take(int(m.group(1)))
            out += self.rawline()

    def response(self):
        return self.response_bytes().decode("utf-8", "surrogateescape")

    # --- writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.sock.sendall(data)

    def tag(self):
        return f"A{next(self._tags):03d}"

    def read_tagged(self, tag):
        """(untagged responses, the tagged one without its tag)."""
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + " "):
                return untagged, r[len(tag) + 1:]
            untagged.append(r)

    def cmd(self, command, tag=None):
        """Sends a command (str or bytes, without the tag and final CRLF;
        literals written inline as "{n}\\r\\ndata") and returns (untagged,
        tagged-without-tag). Waits for "+" before the data of each
        synchronizing literal; a tagged reply instead ends the command."""
        tag = tag or self.tag()
        if isinstance(command, str):
            command = command.encode("utf-8", "surrogateescape")
        data = tag.encode() + b" " + command + b"\r\n"
        pos = 0
        untagged = []
        while True:
            m = _LITERAL_TO_SEND.search(data, pos)
            if m is None:
                self.send(data[pos:])
                break
            self.send(data[pos:m.end()])
            pos = m.end()
            if not m.group(2):  # synchronizing: wait for "+"
                while True:
                    r = self.response()
                    if r.startswith("+"):
                        break
                    if r.startswith(tag + " "):
                        return untagged, r[len(tag) + 1:]
                    untagged.append(r)
            n = int(m.group(1))
            self.send(data[pos:pos + n])
            pos += n
        more, tagged = self.read_tagged(tag)
        return untagged + more, tagged

    def ok(self, command):
        """cmd() that must end in a tagged OK; returns the untagged ones."""
        untagged, tagged = self.cmd(command)
        assert tagged.startswith("OK"), (command, untagged, tagged)
        return untagged

    def login(self, user, password):
        untagged, tagged = self.cmd(f'LOGIN "{user}" "{password}"')
        assert untagged == [], untagged
        assert tagged.startswith("OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), tagged
        assert tagged.endswith("] Logged in"), tagged
        return self

    # --- connection state
    def rest_until_close(self, timeout=5.0):
        self.sock.settimeout(timeout)
        data, self.buf = self.buf, b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except (ConnectionResetError, _ssl.SSLError):
            return data
        except socket.timeout:
            raise AssertionError(f"connection still open after {timeout}s; got {data!r}")

    def assert_closed(self, timeout=5.0):
        rest = self.rest_until_close(timeout)
        assert rest == b"", f"data after the last response: {rest!r}"

    def assert_silent(self, wait=0.3):
        assert self.buf == b"", f"unexpected data: {self.buf!r}"
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        finally:
            self.sock.settimeout(self.timeout)
        raise AssertionError(f"unexpected data: {chunk!r}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_account_counter = _itertools.count(1)


def add_account(dijk, prefix="u"):
    """A new, empty account on a (running) server: (address, password)."""
    address = f"{prefix}{next(_account_counter)}x{_uuid.uuid4().hex[:6]}@{DOMAIN}"
    password = "pw-" + _uuid.uuid4().hex
    dijk.cli("user", "add", address, "--password-stdin", input=password + "\n")
    return address, password


class AccountPool:
    """New accounts made ahead of need, a few at a time in the background
    (the admin CLI takes most of a second under ASan)."""

    def __init__(self, dijk, ahead=2):
        import collections
        import concurrent.futures
        self.dijk = dijk
        self.ahead = ahead
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.futures = collections.deque()

    def get(self):
        while len(self.futures) < self.ahead + 1:
            self.futures.append(self.executor.submit(add_account, self.dijk))
        return self.futures.popleft().result()

    def close(self):
        self.executor.shutdown(wait=True, cancel_futures=True)


def fresh_account(dijk):
    """A new, empty account on a running server, from its AccountPool."""
    if getattr(dijk, "account_pool", None) is None:
        dijk.account_pool = AccountPool(dijk)
    return dijk.account_pool.get()


# Signs in a log that a process crashed (the master restarts a crashed
# worker, so the server as a whole stays up).
IMAP_BAD_LOG = ("panic", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                "killed by signal", "munmap_chunk()", "double free", "free(): invalid",
                "malloc(): ")


@pytest.fixture(scope="module")
def _imap_shared_servers(tmp_path_factory):
    servers = []
    yield servers
    for d in servers:
        if getattr(d, "account_pool", None) is not None:
            d.account_pool.close()
        code = d.stop()
        assert code in (None, 0), f"dijk serve exited with {code}:\n{d.logs()[-4000:]}"
        for bad in IMAP_BAD_LOG:
            assert bad not in d.logs(), d.logs()[-8000:]


@pytest.fixture
def imap_shared_dijk(_imap_shared_servers, tmp_path_factory):
    """One default server shared by the tests of a module, like
    smtp_shared_dijk but without the store mark: IMAP tests work in
    accounts of their own (add_account). .log_start is where the log of
    the test begins."""
    servers = _imap_shared_servers
    if not servers or servers[-1].proc is None or servers[-1].proc.poll() is not None:
        d = Dijk(tmp_path_factory.mktemp("imapshared") / "data",
                 extra_config=SHARED_SERVER_CONFIG)
        servers.append(d)
        d.start()
    d = servers[-1]
    d.log_start = len(d.logs())
    yield d
    assert d.proc is not None and d.proc.poll() is None, \
        f"dijk serve died during the test:\n{d.logs()[d.log_start:][-4000:]}"
    new_log = d.logs()[d.log_start:]
    for bad in IMAP_BAD_LOG:
        assert bad not in new_log, new_log[-8000:]


# --- Outbound mail: DNS, foreign SMTP servers (test_outbound.py and others) ---

@pytest.fixture
def dns_factory(tmp_path):
    """make(zones, signed=(), name="dns") -> a started DnsServer (see
    tests/support/dnsserver.py) on a free port; stopped after the test."""
    from dnsserver import DnsServer
    servers = []

    def make(zones, signed=(), name="dns"):
        d = DnsServer(tmp_path / name, zones, signed=signed, port=free_udp_port())
        servers.append(d)
        return d.start()

    yield make
    for d in servers:
        d.stop()


@pytest.fixture
def smtp_peer_factory():
    """make(host, port, **options) -> a started SmtpPeer (see
    tests/support/smtppeer.py); stopped after the test."""
    from smtppeer import SmtpPeer
    peers = []

    def make(host, port, **options):
        p = SmtpPeer(host, port, **options)
        peers.append(p)
        return p.start()

    yield make
    for p in peers:
        p.stop()


@pytest.fixture
def postfix_factory():
    """make(address, port, domain, **options) -> a started private Postfix
    (see tests/support/postfixpeer.py); stopped and removed after the test."""
    from postfixpeer import PostfixPeer
    instances = []

    def make(address, port, domain, **options):
        p = PostfixPeer(address, port, domain, **options)
        instances.append(p)
        return p.start()

    yield make
    for p in instances:
        p.stop()
