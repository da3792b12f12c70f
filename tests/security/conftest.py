"""Fixtures of the bad-input security suite.

The suite reuses the integration suite's servers and raw clients
(tests/integration/conftest.py: Dijk, RawSmtp, RawImap, the shared-server
fixtures...). That file is loaded here under a module name of its own and
everything in it is re-exported, so that pytest sees its fixtures as this
directory's and the tests can `from conftest import RawSmtp`.

What this file adds: one server per test module (started once, checked
after every test for a crash in its log, stopped at the end of the module),
a snapshot of the files around the data directory, and "still serving"
checks for each protocol that a test runs after its hostile input."""

import http.client
import importlib.util
import json
import os
import re
import socket
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_INTEGRATION = _HERE.parent / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("dijk_integration_conftest", _INTEGRATION)
_it = importlib.util.module_from_spec(_spec)
sys.modules["dijk_integration_conftest"] = _it
_spec.loader.exec_module(_it)
globals().update({k: v for k, v in vars(_it).items() if not k.startswith("__")})

from dijk_integration_conftest import (  # noqa: E402
    DOMAIN, IMAP_BAD_LOG, PASSWORDS, Dijk, RawImap, RawSmtp, add_account, smtp_deliver_raw,
    split_received)

# Time bounds and read timeouts stretch under ASan+UBSan (scripts/test.sh
# sets DIJK_SANITIZED), where the server runs several times slower.
SLOW = 4 if os.environ.get("DIJK_SANITIZED") else 1

ALICE = "alice@example.test"
BOB = "bob@example.test"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"


# --- one server per module ----------------------------------------------------

@pytest.fixture(scope="module")
def _sec_servers():
    servers = []
    yield servers
    for d in servers:
        code = d.stop()
        logs = d.logs()
        assert code in (None, 0), f"dijk serve exited with {code}:\n{logs[-4000:]}"
        for bad in IMAP_BAD_LOG:
            assert bad not in logs, logs[-8000:]


@pytest.fixture
def sec_server(request, _sec_servers, tmp_path_factory):
    """The module's server. A module may set SERVER_CONFIG (extra dijk.conf
    keys). After each test: the master is alive and no process of it
    crashed (a crashed worker would be restarted by the master, so the
    log is what tells)."""
    servers = _sec_servers
    if not servers or servers[-1].proc is None or servers[-1].proc.poll() is not None:
        # The suite opens many connections from 127.0.0.1 on purpose
        # (floods, slow clients): the per-address limit would refuse
        # them first (tests/integration/test_rate_limit.py checks it).
        config = {"limits.connections_per_ip": "1000",
                  **(getattr(request.module, "SERVER_CONFIG", None) or {})}
        d = Dijk(tmp_path_factory.mktemp("sec") / "data", config)
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


# --- the file system ----------------------------------------------------------

def tree(root):
    """Every path under root, relative; SQLite's sidecar files are left out
    (they come and go)."""
    out = set()
    for p in Path(root).rglob("*"):
        rel = p.relative_to(root).as_posix()
        if re.search(r"-(wal|shm|journal)$", rel):
            continue
        out.add(rel)
    return out


# New files a delivery or an upload may make: blobs named by the store.
STORE_FILE = re.compile(r"data/(blobs|uploads|tmp)(/[0-9a-zA-Z._-]+)*$")


def assert_tree_grew_only_in_store(root, before, marker=None):
    """Nothing appeared under root (the data directory's parent) but blobs
    of the store, and no file named after marker anywhere near."""
    after = tree(root)
    new = sorted(p for p in after - before if not STORE_FILE.match(p))
    assert new == [], new
    if marker:
        for place in (Path(root), Path(root).parent, Path("/tmp"), Path("/")):
            assert not list(place.glob(f"*{marker}*")), place
        assert not list(Path(root).rglob(f"*{marker}*"))


# --- still serving ------------------------------------------------------------

def assert_smtp_serves(d, rcpt=BOB):
    """A NEW SMTP client delivers a message, and exactly it is stored."""
    before = {uid for uid, _, _ in d.messages(rcpt)}
    body = smtp_deliver_raw(d.smtp_port, rcpts=(rcpt,))
    new = [uid for uid, _, _ in d.messages(rcpt) if uid not in before]
    assert len(new) == 1, new
    assert split_received(d.message(rcpt, new[0]))[1] == body


def assert_imap_serves(d):
    """A NEW IMAP client logs in, APPENDs, SELECTs and FETCHes its message."""
    if getattr(d, "health_account", None) is None:
        d.health_account = add_account(d, prefix="health")
    data = f"From: h@remote.test\r\nSubject: health {uuid.uuid4().hex}\r\n\r\nok\r\n".encode()
    with RawImap(d.imap_port, timeout=10 * SLOW) as c:
        c.login(*d.health_account)
        _, tagged = c.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
        m = re.match(r"OK \[APPENDUID \d+ (\d+)\] APPEND completed$", tagged)
        assert m, tagged
        assert c.cmd("SELECT INBOX")[1] == "OK [READ-WRITE] SELECT completed"
        untagged, tagged = c.cmd(f"UID FETCH {m.group(1)} (BODY.PEEK[])")
        assert tagged == "OK UID FETCH completed", tagged
        assert untagged[-1].encode("utf-8", "surrogateescape").endswith(data + b")"), untagged
        assert c.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")


def assert_http_serves(d):
    """A NEW HTTP client gets a static file and the login page answers."""
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    try:
        c.request("GET", "/static/style.css")
        r = c.getresponse()
        assert r.status == 200 and r.read()
    finally:
        c.close()


# --- the webmail, as a browser ------------------------------------------------

class Web:
    """A logged-in webmail session (cookie, CSRF value, JMAP account)."""

    def __init__(self, d, user, password):
        self.d = d
        self.user = user
        self.password = password
        self.cookie = self.csrf = None
        status, h, body = self.raw("POST", "/api/login",
                                   {"username": user, "password": password})
        assert status == 200, body
        self.cookie = h["set-cookie"].split(";")[0]
        self.csrf = body["csrf"]
        status, _, self.session = self.raw("GET", "/jmap/session")
        assert status == 200, self.session
        self.account = self.session["primaryAccounts"][MAIL]

    def raw(self, method, path, body=None, headers=None):
        h = {"Content-Type": "application/json",
             "Origin": f"http://127.0.0.1:{self.d.http_port}"}
        if self.cookie:
            h["Cookie"] = self.cookie
        if self.csrf:
            h["X-Dijk-CSRF"] = self.csrf
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30 * SLOW)
        try:
            data = json.dumps(body) if isinstance(body, (dict, list)) else body
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw
            return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed
        finally:
            c.close()

    def api(self, calls, using=(CORE, MAIL, SUBMISSION)):
        status, _, body = self.raw("POST", "/jmap/api",
                                   {"using": list(using), "methodCalls": calls})
        assert status == 200, body
        return body["methodResponses"]

    def ok(self, name, args):
        a = {"accountId": self.account}
        a.update(args)
        [(got, result, _)] = self.api([[name, a, "c"]])
        assert got == name, (name, result)
        return result

    def ids(self):
        return self.ok("Email/query", {})["ids"]

    def role(self, role):
        boxes = self.ok("Mailbox/get", {"ids": None})["list"]
        return next(m["id"] for m in boxes if m["role"] == role)

    def upload(self, data, type="application/octet-stream"):
        return self.raw("POST", f"/jmap/upload/{self.account}/", data,
                        headers={"Content-Type": type})

    def wait_for_subject(self, subject, timeout=10 * SLOW):
        deadline = time.monotonic() + timeout
        while True:
            ids = self.ok("Email/query", {"filter": {"subject": subject}})["ids"]
            if ids or time.monotonic() > deadline:
                assert ids, f"{subject!r} never arrived"
                return ids[0]
            time.sleep(0.05)


def new_web(d):
    address, password = add_account(d, prefix="web")
    return Web(d, address, password)


def raw_http(port, data, timeout=10, until_close=True):
    """Sends data on a new connection and returns every byte of the reply
    until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if not until_close and b"\r\n\r\n" in out:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return out


# --- TLS ----------------------------------------------------------------------

import ssl  # noqa: E402

TLS_ENDPOINTS = {
    # name: (listener attribute, how TLS starts)
    "smtp-starttls": ("smtp_port", "smtp"),
    "submission-starttls": ("submission_port", "smtp"),
    "submissions": ("submissions_port", None),
    "imap-starttls": ("imap_port", "imap"),
    "imaps": ("imaps_port", None),
    "https": ("https_port", None),
}


def tls_handshake(d, endpoint, minimum=None, maximum=None, ciphers=None):
    """Tries a TLS handshake with one of the server's TLS endpoints, after
    STARTTLS where it needs one. Returns (True, version, cipher) or
    (False, error text, None). SECLEVEL=0 lets this OpenSSL offer old
    versions and weak suites at all, so that a refusal is the server's."""
    attr, starttls = TLS_ENDPOINTS[endpoint]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
    except ssl.SSLError:
        return False, "not offered", None  # this OpenSSL lacks them all
    with warnings.catch_warnings():
        # Old versions are deprecated: offering them is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum:
            ctx.minimum_version = minimum
        if maximum:
            ctx.maximum_version = maximum
    raw = socket.create_connection(("127.0.0.1", getattr(d, attr)), timeout=10)
    try:
        if starttls:
            f = raw.makefile("rb")
            if starttls == "smtp":
                assert f.readline().startswith(b"220 ")
                raw.sendall(b"EHLO client.remote.test\r\n")
                while not f.readline().startswith(b"250 "):
                    pass
                raw.sendall(b"STARTTLS\r\n")
                assert f.readline().startswith(b"220 ")
            else:
                assert f.readline().startswith(b"* OK")
                raw.sendall(b"s1 STARTTLS\r\n")
                assert f.readline().startswith(b"s1 OK")
            f.close()
        try:
            s = ctx.wrap_socket(raw)
        except (ssl.SSLError, ConnectionResetError, OSError) as e:
            return False, str(e), None
        try:
            return True, s.version(), s.cipher()[0]
        finally:
            s.close()
    finally:
        raw.close()
