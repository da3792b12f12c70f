"""Hard limits keep memory bounded (SECURITY.md 5): over-limit input gets
its clean protocol error, the worker's peak resident memory (VmHWM, which
the kernel keeps for the process's whole life) grows by less than a bound
however much is sent, and the worker goes on serving.

Each case sends 64 MiB that the server must refuse, not buffer: a command
line with no end, a DATA line with no end, an IMAP literal announced at
4 GiB and one at the limit plus one, a header field of an HTTP request
with no end. One worker of each kind, so the memory measured is the one
that took the bytes."""
import os
import socket
import time

import pytest

from conftest import Dijk, RawImap, RawSmtp, assert_smtp_still_serves

SENT = 64 * 1024 * 1024
# ASan keeps freed memory in quarantine and its shadow grows with what
# was touched: the bound is looser there, and still far below SENT.
BOUND = (160 if os.environ.get("DIJK_SANITIZED") else 24) * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = Dijk(tmp_path_factory.mktemp("limits") / "data", {"workers": "1"}).start()
    yield d
    assert d.stop() == 0


def status_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def worker(server, name):
    [pid] = server.children(name)
    return pid


def flood(sock, total=SENT, chunk=b"a" * 65536):
    """Sends up to total bytes; the server may hang up first."""
    sent = 0
    sock.settimeout(10)
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    return sent


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            out += data
    except (socket.timeout, ConnectionResetError):
        pass
    return out


@pytest.fixture
def peak(server):
    """Checks, after the test, that each worker's peak memory grew by
    less than BOUND since before it."""
    names = ("smtp", "imap", "http")
    before = {n: status_kib(worker(server, n), "VmHWM") for n in names}
    yield
    for n in names:
        grown = status_kib(worker(server, n), "VmHWM") - before[n]
        assert grown < BOUND, f"dijk-{n} peak grew by {grown >> 20} MiB"


def test_endless_smtp_command_line(server, peak):
    with RawSmtp(server.smtp_port) as s:
        flood(s.sock)
        out = s.rest_until_close(timeout=10)
    assert out.startswith(b"500 5.5.2"), out[:200]
    assert_smtp_still_serves(server)


def test_endless_data_line(server, peak):
    with RawSmtp(server.smtp_port) as s:
        s.ehlo()
        assert s.cmd("MAIL FROM:<a@remote.test>")[0].startswith("250")
        assert s.cmd("RCPT TO:<bob@example.test>")[0].startswith("250")
        assert s.cmd("DATA")[0].startswith("354")
        flood(s.sock)
        s.send(b"\r\n.\r\n")
        reply = s.reply()
    assert reply[-1].startswith("5"), reply
    assert_smtp_still_serves(server)


@pytest.mark.parametrize("literal", ["{4294967296}", "{4294967295+}", "{52428801}"])
def test_huge_imap_literals(server, peak, literal):
    imap = RawImap(server.imap_port)
    try:
        imap.login("alice@example.test", "alice-password-1")
        imap.send(f"a1 APPEND INBOX {literal}\r\n".encode())
        first = imap.response()
        assert first.startswith(("a1 NO", "a1 BAD", "* BYE")), first
        if literal.endswith("+}"):
            flood(imap.sock)
    finally:
        imap.close()
    again = RawImap(server.imap_port)
    try:
        again.login("alice@example.test", "alice-password-1")
        assert again.ok("NOOP") is not None
    finally:
        again.close()


def test_endless_imap_line(server, peak):
    imap = RawImap(server.imap_port)
    try:
        imap.send(b"a1 LOGIN ")
        flood(imap.sock)
        out = read_all(imap.sock)
        # The greeting, then the refusal of the line, then the close.
        assert b"* BYE" in out or b" BAD " in out, out[:300]
    finally:
        imap.close()


def test_endless_http_header(server, peak):
    s = socket.create_connection(("127.0.0.1", server.http_port))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        flood(s)
        out = read_all(s)
        assert out.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), out[:100]
    finally:
        s.close()
    c = socket.create_connection(("127.0.0.1", server.http_port))
    c.sendall(b"GET /static/style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_all(c).startswith(b"HTTP/1.1 200 ")
    c.close()
