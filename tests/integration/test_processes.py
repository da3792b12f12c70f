"""The process family of `dijk serve`: a master, one dijk-auth, N dijk-smtp
workers; restarts after crashes, crash loops, and orderly stops."""

import os
import signal
import smtplib
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import PASSWORDS, descendants, pid_alive, wait_until

ALICE = "alice@example.test"
BOB = "bob@example.test"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def family(server):
    """{pid: name} of every process under the master."""
    return {pid: comm(pid) for pid in descendants(server.proc.pid)}


def deliver(server, to=ALICE, tag="x", timeout=15):
    body = f"Subject: {tag}\r\nX-Tag: {tag}\r\n\r\nbody of {tag}\r\n".encode()
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=timeout) as s:
        assert s.sendmail("x@remote.test", [to], body) == {}
    return body


def login(server, user=ALICE, password=None, timeout=15):
    """AUTH on the submission port after STARTTLS; returns (code, text)."""
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=timeout) as s:
        s.starttls(context=tls_context())
        try:
            code, text = s.login(user, password or PASSWORDS[user])
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text


def port_refuses(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_family_master_one_auth_n_smtp(dijk_factory):
    d = dijk_factory("family", {"workers": "2"})
    assert comm(d.proc.pid) == "dijk"
    # A child is counted once it has its name (it takes it just after
    # the fork).
    fam = wait_until(lambda: (f := family(d)) and len(f) == 8 and
                     all(n.startswith("dijk-") for n in f.values()) and f, 10,
                     what="eight named children")
    names = sorted(fam.values())
    assert names == ["dijk-auth", "dijk-http", "dijk-http", "dijk-imap",
                     "dijk-imap", "dijk-queue", "dijk-smtp", "dijk-smtp"], fam
    # All are direct children of the master: no grandchildren.
    assert sorted(d.children("smtp") + d.children("auth") +
                  d.children("imap") + d.children("http") +
                  d.children("queue")) == sorted(fam)
    deliver(d)
    assert len(d.messages(ALICE)) == 1


def test_workers_zero_means_one_per_core(dijk_factory):
    d = dijk_factory("percore", {"workers": "0"})
    cores = min(os.cpu_count(), 64)
    wait_until(lambda: len(d.children("smtp")) == cores, 10,
               what=f"{cores} smtp workers")
    assert len(d.children("auth")) == 1


def test_kill9_smtp_worker_is_replaced(dijk_factory):
    d = dijk_factory("smtpkill", {"workers": "2"})
    before = set(d.children("smtp"))
    assert len(before) == 2
    auth = d.children("auth")
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = wait_until(
        lambda: (now := set(d.children("smtp"))) and len(now) == 2 and victim not in now and now,
        5, what="a new smtp worker")
    assert after - before and after & before == before - {victim}
    assert d.children("auth") == auth
    # Several connections, so that both workers take some.
    for i in range(6):
        deliver(d, tag=f"after-kill-{i}")
    assert len(d.messages(ALICE)) == 6
    assert any(str(victim) in line and "signal 9" in line for line in d.logs().splitlines())
    assert d.proc.poll() is None


def test_kill9_auth_is_replaced_and_auth_works_again(dijk_factory):
    d = dijk_factory("authkill", {"workers": "2"})
    assert login(d)[0] == 235
    (old,) = d.children("auth")
    smtp = sorted(d.children("smtp"))
    os.kill(old, signal.SIGKILL)
    codes = []

    def auth_ok():
        try:
            code, _ = login(d, timeout=5)
        except (OSError, smtplib.SMTPException) as e:
            codes.append(repr(e))
            return False
        codes.append(code)
        return code == 235

    wait_until(auth_ok, 5, interval=0.1, what="AUTH to work again")
    # While dijk-auth was away, the answer was "try later", never "wrong
    # password".
    assert 535 not in codes, codes
    new = wait_until(lambda: d.children("auth"), 5, what="an auth process")
    assert len(new) == 1 and new[0] != old
    assert sorted(d.children("smtp")) == smtp, "the smtp workers did not need a restart"
    # The wrong password is still refused.
    assert login(d, password="not-the-password")[0] == 535
    for i in range(4):  # every worker reconnects to the new auth process
        assert login(d)[0] == 235


def test_smtp_crash_loop_does_not_kill_master(dijk_factory):
    d = dijk_factory("crashloop", {"workers": "2"})
    auth = d.children("auth")
    killed = set()
    for _ in range(5):
        workers = wait_until(
            lambda: [p for p in d.children("smtp") if p not in killed], 15,
            interval=0.02, what="a restarted smtp worker")
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        assert d.proc.poll() is None, d.logs()[-3000:]
    # The master waits longer each time, but comes back with all workers.
    wait_until(lambda: len([p for p in d.children("smtp") if p not in killed]) == 2,
               20, what="two fresh smtp workers")
    assert d.proc.poll() is None
    assert d.children("auth") == auth
    deliver(d, tag="after-loop")
    assert len(d.messages(ALICE)) == 1


def test_auth_stops_after_the_workers(dijk_factory):
    """On a stop, the workers end their logged-in sessions while the auth
    process still answers: it is stopped only when it is the last child,
    so no worker reports it lost."""
    d = dijk_factory("authlast", {"workers": "2"})
    user = "alice@example.test"
    sessions = []
    for _ in range(6):
        s = smtplib.SMTP("127.0.0.1", d.submission_port, timeout=10)
        s.login(user, PASSWORDS[user])
        sessions.append(s)
    assert d.stop() == 0
    for s in sessions:
        s.close()
    logs = d.logs()
    assert "lost the connection to the auth process" not in logs, logs[-3000:]
    # The auth process's exit is the last one the master reports.
    exits = [line for line in logs.splitlines() if "process" in line and
             ("exited with" in line or "killed by" in line)]
    assert exits and "auth process" in exits[-1], exits


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_whole_family(dijk_factory, sig):
    d = dijk_factory("stop", {"workers": "2"})
    # auth, queue, 2 smtp, 2 imap, 2 http (the last may still be starting)
    kids = wait_until(lambda: (k := descendants(d.proc.pid)) and len(k) == 8 and k,
                      10, what="eight children")
    sock_path = d.data / "run" / "auth.sock"
    assert sock_path.exists()
    ports = (d.smtp_port, d.submission_port, d.submissions_port,
             d.imap_port, d.imaps_port, d.http_port, d.https_port)
    # An idle session is told 421 and does not hold up the stop.
    idle = socket.create_connection(("127.0.0.1", d.smtp_port), timeout=10)
    f = idle.makefile("rb")
    assert f.readline().startswith(b"220")
    idle.sendall(b"EHLO idle.remote.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    began = time.monotonic()
    code = d.stop(sig=sig, timeout=20)
    took = time.monotonic() - began
    assert code == 0, d.logs()[-3000:]
    assert took < 10, f"stopping took {took:.1f} s"
    assert f.readline().startswith(b"421"), "the idle session was not told 421"
    idle.close()
    assert not [p for p in kids if pid_alive(p)]
    for port in ports:
        assert port_refuses(port), f"port {port} still answers"
    assert not sock_path.exists()


def test_kill9_master_alone_children_follow(dijk_factory):
    """A master killed -9 leaves no orphans serving or lingering."""
    d = dijk_factory("orphans", {"workers": "2"})
    kids = wait_until(lambda: (f := family(d)) and len(f) == 8 and f, 10,
                      what="eight children")  # auth, queue, 2 smtp, 2 imap, 2 http
    os.kill(d.proc.pid, signal.SIGKILL)
    assert d.stop() == -signal.SIGKILL
    try:
        wait_until(lambda: not any(pid_alive(p) for p in kids), 5,
                   what="the orphaned children to exit")
    finally:
        left = {p: n for p, n in kids.items() if pid_alive(p)}
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, f"still running 5 s after the master died: {left}"
    assert port_refuses(d.smtp_port)
    # The same data directory serves again.
    d.start()
    deliver(d)
    assert len(d.messages(ALICE)) == 1


# --- SIGTERM while messages are in transit ------------------------------------

def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None, lines
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), lines


class SlowSender(threading.Thread):
    """Sends messages one after the other on raw SMTP, streaming each body
    in small pieces, so that a signal finds sessions at every stage: in
    DATA, after the final dot, between transactions. outcome[token] is the
    reply to the final dot (250, 421, ...) or None when none came."""

    def __init__(self, port, index, stop_event):
        super().__init__(daemon=True)
        self.port, self.index, self.stop_event = port, index, stop_event
        self.outcome = {}

    def run(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        except OSError:
            return
        with sock:
            f = sock.makefile("rb")
            try:
                if read_reply(f)[0] != 220:
                    return
                sock.sendall(b"EHLO slow.remote.test\r\n")
                if read_reply(f)[0] != 250:
                    return
                n = 0
                while not self.stop_event.is_set():
                    token = f"slow{self.index}-{n}"
                    n += 1
                    sock.sendall(b"MAIL FROM:<slow@remote.test>\r\n")
                    if read_reply(f)[0] != 250:
                        return
                    sock.sendall(b"RCPT TO:<alice@example.test>\r\n")
                    if read_reply(f)[0] != 250:
                        return
                    sock.sendall(b"DATA\r\n")
                    if read_reply(f)[0] != 354:
                        return
                    self.outcome[token] = None  # from here on it may be stored
                    sock.sendall(f"Subject: {token}\r\nX-Token: {token}\r\n\r\n".encode())
                    for i in range(5 + self.index % 7):
                        sock.sendall(b"%s line %d\r\n" % (token.encode(), i) * 50)
                        time.sleep(0.01)
                    sock.sendall(b".\r\n")
                    code, _ = read_reply(f)
                    self.outcome[token] = code
                    if code != 250:
                        return
            except OSError:
                return


def stored_tokens(server, user=ALICE):
    """{token: copies} over user's INBOX, read through `dijk mail get`."""
    found = {}
    uids = [uid for uid, _, _ in server.messages(user)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        messages = list(pool.map(lambda u: server.message(user, u), uids))
    for msg in messages:
        for line in msg.split(b"\r\n"):
            if line.startswith(b"X-Token: "):
                token = line[9:].decode()
                found[token] = found.get(token, 0) + 1
    return found


def test_sigterm_in_transit_never_250_without_message(dijk_factory):
    d = dijk_factory("transit", {"workers": "2"})
    stop = threading.Event()
    senders = [SlowSender(d.smtp_port, i, stop) for i in range(8)]
    for s in senders:
        s.start()
        time.sleep(0.03)
    time.sleep(0.8)
    code = d.stop(sig=signal.SIGTERM, timeout=30)
    stop.set()
    for s in senders:
        s.join(20)
    assert not any(s.is_alive() for s in senders), "a sender hangs"
    assert code == 0, d.logs()[-3000:]
    outcome = {}
    for s in senders:
        outcome.update(s.outcome)
    d.start()
    stored = stored_tokens(d)
    acked = {t for t, c in outcome.items() if c == 250}
    assert acked, "nothing was delivered before the signal"
    assert len(acked) < len(outcome), "the signal found no message in transit"
    for token, c in outcome.items():
        if c == 250:
            assert stored.get(token) == 1, f"{token}: 250 but stored {stored.get(token, 0)} times"
        else:
            assert c in (None, 421), f"{token}: answered {c}"
            assert token not in stored, f"{token}: stored, but the client got {c}"
    assert set(stored) <= set(outcome)
