"""Brute-force throttling and connection limits (docs/security.md, "Brute
force"): the auth process counts failed logins per address, per username
and per (username, address) for SMTP AUTH, IMAP and the webmail alike; in a
lock window even the right password is refused, unchecked, with the reply
of a wrong one; the owner still gets in from another address; every worker
limits the connections one address holds open. Password checks are
counted on the server's side, from the auth process's log."""
import base64
import http.client
import json
import re
import socket
import statistics
import threading
import time

import pytest

from conftest import PASSWORDS

ALICE = "alice@example.test"
BOB = "bob@example.test"
ATTACKER = "127.0.0.1"
OWNER = "127.0.0.2"

SMTP_BAD = b"535 5.7.8 Authentication credentials invalid\r\n"
IMAP_BAD = b"NO [AUTHENTICATIONFAILED] Authentication failed\r\n"


# --- Small clients that can choose their source address.

def connect(port, source, timeout=15.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    s.settimeout(timeout)
    return s


def read_line(sock, buf):
    """(line with its CRLF, rest of buf); b"" at end of stream."""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return b"", buf
        buf += chunk
    line, rest = buf.split(b"\r\n", 1)
    return line + b"\r\n", rest


class LineClient:
    def __init__(self, port, source):
        self.sock = connect(port, source)
        self.buf = b""

    def line(self):
        line, self.buf = read_line(self.sock, self.buf)
        return line

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def imap_login(port, source, user, password, conn=None):
    """(tagged reply bytes after the tag, the client) of one LOGIN."""
    c = conn or LineClient(port, source)
    if conn is None:
        greeting = c.line()
        if not greeting.startswith(b"* OK"):
            c.close()
            return greeting, None
    c.send(f'a LOGIN "{user}" "{password}"\r\n'.encode())
    while True:
        line = c.line()
        if line == b"" or line.startswith(b"a "):
            return line[2:], c
        if line.startswith(b"* BYE"):
            return line, c


def smtp_start(port, source):
    c = LineClient(port, source)
    greeting = c.line()
    if not greeting.startswith(b"220 "):
        c.close()
        return greeting, None
    c.send(b"EHLO client.test\r\n")
    while True:
        line = c.line()
        if line[:4] != b"250-":
            break
    return line, c


def smtp_auth(c, user, password):
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    c.send(f"AUTH PLAIN {plain}\r\n".encode())
    return c.line()


def web_login(port, source, user, password):
    """(status, body bytes) of POST /api/login."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15,
                                   source_address=(source, 0))
    try:
        c.request("POST", "/api/login",
                  body=json.dumps({"username": user, "password": password}),
                  headers={"Content-Type": "application/json",
                           "Origin": f"http://127.0.0.1:{port}"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def login_lines(d, outcome, user, source=None):
    """Auth process log lines of logins of user from source (None: any)
    with outcome (ok, failed, throttled), any protocol."""
    where = re.escape(source) if source else r"\S+"
    pattern = re.compile(
        rf"\b(smtp|imap|web) login {outcome} for {re.escape(user)} from "
        rf"{where}$")
    return [l for l in d.logs().splitlines() if pattern.search(l)]


def owner_gets_in(d, user):
    """The owner logs in from OWNER over IMAP, SMTP AUTH and the webmail."""
    reply, c = imap_login(d.imap_port, OWNER, user, PASSWORDS[user])
    assert reply.startswith(b"OK [CAPABILITY"), reply
    c.close()
    _, c = smtp_start(d.submission_port, OWNER)
    assert smtp_auth(c, user, PASSWORDS[user]) == \
        b"235 2.7.0 Authentication successful\r\n"
    c.close()
    status, body = web_login(d.http_port, OWNER, user, PASSWORDS[user])
    assert status == 200, body


# --- The attack.

class Attacker:
    """Guesses passwords for one account from one address until told to
    stop or out of guesses, over one protocol, reconnecting as needed."""

    def __init__(self, d, protocol, guesses, stop):
        self.d, self.protocol, self.guesses, self.stop = d, protocol, guesses, stop
        self.tries = 0
        self.errors = []

    def next_guess(self):
        with self.guesses["lock"]:
            if self.guesses["left"] == 0:
                return None
            self.guesses["left"] -= 1
            return f"guess-{self.guesses['left']:05d}"

    def run(self):
        try:
            getattr(self, "run_" + self.protocol)()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def run_imap(self):
        # Three failures end a connection: three tries, then a new one.
        while not self.stop.is_set():
            c = LineClient(self.d.imap_port, ATTACKER)
            if not c.line().startswith(b"* OK"):
                c.close()
                time.sleep(0.05)
                continue
            for _ in range(3):
                guess = self.next_guess()
                if guess is None or self.stop.is_set():
                    break
                reply, _ = imap_login(None, None, ALICE, guess, c)
                self.tries += 1
                assert reply == IMAP_BAD, reply
            c.close()
            if guess is None:
                return

    def run_smtp(self):
        while not self.stop.is_set():
            _, c = smtp_start(self.d.submission_port, ATTACKER)
            if c is None:
                time.sleep(0.05)
                continue
            for _ in range(3):
                guess = self.next_guess()
                if guess is None or self.stop.is_set():
                    break
                reply = smtp_auth(c, ALICE, guess)
                self.tries += 1
                assert reply == SMTP_BAD, reply
            c.close()
            if guess is None:
                return

    def run_web(self):
        while not self.stop.is_set():
            guess = self.next_guess()
            if guess is None:
                return
            status, body = web_login(self.d.http_port, ATTACKER, ALICE, guess)
            self.tries += 1
            assert status == 401, (status, body)


@pytest.fixture
def fast_clock(dijk_factory):
    # Ten minutes of the throttle's time pass in ten seconds.
    return dijk_factory(extra_config={"auth.test_clock_scale": "60"})


def test_ten_thousand_guesses_get_few_checks_and_the_owner_gets_in(fast_clock):
    d = fast_clock
    scale = 60
    stop = threading.Event()
    guesses = {"left": 10000, "lock": threading.Lock()}
    attackers = [Attacker(d, p, guesses, stop)
                 for p in ["imap"] * 6 + ["smtp"] * 6 + ["web"] * 6]
    threads = [threading.Thread(target=a.run) for a in attackers]
    start = time.monotonic()
    for t in threads:
        t.start()
    # The owner logs in from another address during the attack.
    time.sleep(3)
    owner_gets_in(d, ALICE)
    time.sleep(max(0.0, start + 600 / scale - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    errors = [e for a in attackers for e in a.errors]
    assert errors == []
    tries = sum(a.tries for a in attackers)
    checked = login_lines(d, "failed", ALICE, ATTACKER)
    throttled = login_lines(d, "throttled", ALICE, ATTACKER)
    print(f"10 scaled minutes: {tries} tries, {len(checked)} password checks,"
          f" {len(throttled)} throttled")
    # Every try reached the auth process, and fewer than 100 were checked.
    assert len(checked) + len(throttled) == tries
    assert len(checked) < 100, (len(checked), tries)
    assert len(throttled) > 2 * len(checked), (len(checked), len(throttled))
    # Each protocol was throttled.
    for proto in ("imap", "smtp", "web"):
        assert any(l.split(" login ")[0].endswith(proto) for l in throttled), proto
    assert len(login_lines(d, "ok", ALICE, OWNER)) == 3


def test_a_lock_refuses_even_the_right_password(dijk):
    d = dijk
    # Six wrong passwords for bob from one address, over two connections
    # (three failures end an IMAP connection). Three are free, the 4th
    # locks bob there for 2 s, the 5th (after it) for 4 s, the 6th for 8 s.
    pauses = [0, 0, 0, 0, 2.1, 4.1]
    conn = None
    for i in range(6):
        time.sleep(pauses[i])
        reply, conn = imap_login(d.imap_port, ATTACKER, BOB, f"wrong-{i}", conn)
        assert reply == IMAP_BAD, reply
        if i % 3 == 2:
            assert conn.line() == b"* BYE Too many failed logins\r\n"
            assert conn.line() == b""
            conn.close()
            conn = None
    assert len(login_lines(d, "failed", BOB, ATTACKER)) == 6
    # The right password now gets the reply of a wrong one, on every
    # protocol, and is not checked.
    t0 = time.monotonic()
    reply, conn = imap_login(d.imap_port, ATTACKER, BOB, PASSWORDS[BOB])
    took = time.monotonic() - t0
    assert reply == IMAP_BAD
    assert took >= 0.9, took  # the tarpit
    conn.close()
    _, conn = smtp_start(d.submission_port, ATTACKER)
    assert smtp_auth(conn, BOB, PASSWORDS[BOB]) == SMTP_BAD
    conn.close()
    wrong = web_login(d.http_port, ATTACKER, "nobody@example.test", "x-password")
    assert web_login(d.http_port, ATTACKER, BOB, PASSWORDS[BOB]) == wrong
    assert len(login_lines(d, "throttled", BOB, ATTACKER)) == 3
    assert login_lines(d, "ok", BOB, ATTACKER) == []
    assert len(login_lines(d, "failed", BOB, ATTACKER)) == 6
    # Meanwhile the owner gets in from elsewhere, and alice from here.
    owner_gets_in(d, BOB)
    reply, conn = imap_login(d.imap_port, ATTACKER, ALICE, PASSWORDS[ALICE])
    assert reply.startswith(b"OK [CAPABILITY"), reply
    conn.close()
    # Once the lock is over the right password works again.
    deadline = time.monotonic() + 20
    while True:
        reply, conn = imap_login(d.imap_port, ATTACKER, BOB, PASSWORDS[BOB])
        conn.close()
        if reply.startswith(b"OK [CAPABILITY"):
            break
        assert reply == IMAP_BAD
        assert time.monotonic() < deadline, "still locked"
        time.sleep(1)
    assert len(login_lines(d, "ok", BOB, ATTACKER)) == 1


def test_password_change_guesses_are_throttled(dijk):
    """A stolen session cannot guess the old password of a password change
    at Argon2id speed: the guesses count per session and address like
    logins, and a lock refuses even the right old password."""
    d = dijk
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=15)
    origin = {"Content-Type": "application/json",
              "Origin": f"http://127.0.0.1:{d.http_port}"}
    c.request("POST", "/api/login", headers=origin,
              body=json.dumps({"username": BOB, "password": PASSWORDS[BOB]}))
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 200, body
    cookie = r.getheader("Set-Cookie").split(";")[0]
    headers = {**origin, "Cookie": cookie, "X-Dijk-CSRF": body["csrf"]}

    def change(old):
        c.request("POST", "/api/password", headers=headers,
                  body=json.dumps({"old": old, "new": "a brand new password"}))
        r = c.getresponse()
        return r.status, r.read()
    wrong = change("guess-0")
    assert wrong[0] == 403
    for i in range(1, 4):  # three free, the 4th locks for 2 s
        assert change(f"guess-{i}") == wrong
    assert change(PASSWORDS[BOB]) == wrong
    log = d.logs()
    assert log.count("web password change wrong password for bob@example.test") == 4
    assert log.count("web password change throttled for session:") == 1
    c.close()
    # Logins are not affected, and the password did not change.
    status, _ = web_login(d.http_port, ATTACKER, BOB, PASSWORDS[BOB])
    assert status == 200


def test_a_burst_of_right_logins_is_not_throttled(dijk):
    """A mail client opens several connections at once, just after a
    mistyped password: the checks of one username and address run one
    after the other, each judged on the one before, so none is refused."""
    d = dijk
    conn = None
    for i in range(3):
        reply, conn = imap_login(d.imap_port, ATTACKER, ALICE, f"typo-{i}", conn)
        assert reply == IMAP_BAD
    conn.close()
    replies = [None] * 10

    def one(i):
        reply, c = imap_login(d.imap_port, ATTACKER, ALICE, PASSWORDS[ALICE])
        replies[i] = reply
        c.close()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r.startswith(b"OK [CAPABILITY") for r in replies), replies
    assert len(login_lines(d, "ok", ALICE, ATTACKER)) == 10
    assert login_lines(d, "throttled", ALICE) == []


def test_unknown_user_and_wrong_password_look_the_same(dijk):
    """Byte-identical replies on each protocol, and the same time (within
    10 %) for the check. Each try comes from an address of its own so
    that no throttle applies."""
    d = dijk
    sources = (f"127.0.{j}.{i}" for j in range(1, 5) for i in range(1, 250))
    unknown = "nobody@example.test"
    # Bytes: IMAP, SMTP, web.
    for user in (ALICE, unknown):
        reply, conn = imap_login(d.imap_port, next(sources), user, "wrong-password")
        assert reply == IMAP_BAD
        conn.close()
        _, conn = smtp_start(d.submission_port, next(sources))
        assert smtp_auth(conn, user, "wrong-password") == SMTP_BAD
        conn.close()
    assert web_login(d.http_port, next(sources), ALICE, "wrong-password") == \
        web_login(d.http_port, next(sources), unknown, "wrong-password")
    # Timing: tries alternating between the two, so that the load of the
    # machine (other tests, other processes) weighs on both alike, in
    # batches until the medians agree within 10 % (a real difference
    # persists however many batches; noise fades), at most 4 x 40 each.
    times = {ALICE: [], unknown: []}
    for batch in range(4):
        for i in range(40):
            for user in ((ALICE, unknown) if i % 2 else (unknown, ALICE)):
                _, conn = smtp_start(d.submission_port, next(sources))
                t0 = time.perf_counter()
                assert smtp_auth(conn, user, "wrong-password") == SMTP_BAD
                times[user].append(time.perf_counter() - t0)
                conn.close()
        known = statistics.median(times[ALICE])
        nobody = statistics.median(times[unknown])
        if abs(known - nobody) <= 0.1 * max(known, nobody):
            break
    assert abs(known - nobody) <= 0.1 * max(known, nobody), (known, nobody)
    assert login_lines(d, "throttled", ALICE) == []


# --- Connection limits.

@pytest.fixture
def limited(dijk_factory):
    # One worker per protocol: the count is kept per worker.
    return dijk_factory(extra_config={"limits.connections_per_ip": "3",
                                      "workers": "1"})


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_connection_limit_imap(limited):
    d = limited
    held = [LineClient(d.imap_port, ATTACKER) for _ in range(3)]
    for c in held:
        assert c.line().startswith(b"* OK [CAPABILITY")
    over = LineClient(d.imap_port, ATTACKER)
    assert over.line() == b"* BYE Too many connections from your address\r\n"
    assert over.line() == b""
    over.close()
    # Another address is not affected.
    other = LineClient(d.imap_port, OWNER)
    assert other.line().startswith(b"* OK [CAPABILITY")
    other.close()
    # A closed connection makes room.
    held.pop().close()

    def room():
        c = LineClient(d.imap_port, ATTACKER)
        ok = c.line().startswith(b"* OK")
        if ok:
            held.append(c)
        else:
            c.close()
        return ok
    wait_for(room)
    for c in held:
        c.close()


def test_connection_limit_smtp(limited):
    d = limited
    held = [LineClient(d.submission_port, ATTACKER) for _ in range(3)]
    for c in held:
        assert c.line().startswith(b"220 ")
    over = LineClient(d.submission_port, ATTACKER)
    assert over.line() == b"421 4.7.0 Too many connections from your address\r\n"
    assert over.line() == b""
    over.close()
    other = LineClient(d.submission_port, OWNER)
    assert other.line().startswith(b"220 ")
    other.close()
    for c in held:
        c.close()


def test_connection_limit_http(limited):
    d = limited

    def get(conn):
        conn.request("GET", "/static/style.css")
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    held = [http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=15,
                                       source_address=(ATTACKER, 0))
            for _ in range(3)]
    for c in held:
        assert get(c)[0] == 200
    over = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=15,
                                      source_address=(ATTACKER, 0))
    status, headers, _ = get(over)
    assert status == 503
    assert headers.get("Connection", "").lower() == "close"
    over.close()
    # The held connections go on; another address is served.
    assert get(held[0])[0] == 200
    other = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=15,
                                       source_address=(OWNER, 0))
    assert get(other)[0] == 200
    other.close()
    # Closing one makes room for a new one.
    held.pop().close()
    time.sleep(0.2)
    fresh = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=15,
                                       source_address=(ATTACKER, 0))
    assert get(fresh)[0] == 200
    fresh.close()
    for c in held:
        c.close()
