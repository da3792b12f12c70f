"""Durability: what dijk acknowledged with a 250 is stored, whole, exactly
once -- under load (Postfix's smtp-source), across kill -9 of the whole
process family, and across a graceful SIGTERM in the middle of a storm."""

import base64
import hashlib
import os
import random
import re
import signal
import smtplib
import socket
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest

from conftest import kill9_family, pid_alive, wait_until

SANITIZED = bool(os.environ.get("DIJK_SANITIZED"))
ALICE = "alice@example.test"
BOB = "bob@example.test"


# --- a storm of distinct, self-checking messages -----------------------------

def make_message(token, rng):
    """A message whose body hash is in its header, so that a stored copy can
    be checked on its own. Sizes range from a few hundred bytes to ~256 KiB,
    so that a cut-off blob would show."""
    size = rng.choice([300, 2_000, 8_000, 30_000, 120_000, 250_000])
    raw = rng.randbytes(size * 3 // 4)
    b64 = base64.b64encode(raw)
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    body = b"\r\n".join(lines) + b"\r\n"
    digest = hashlib.sha256(body).hexdigest()
    head = (
        f"From: storm@remote.test\r\n"
        f"To: {ALICE}\r\n"
        f"Subject: storm {token}\r\n"
        f"Message-ID: <{token}@remote.test>\r\n"
        f"X-Token: {token}\r\n"
        f"X-Body-SHA256: {digest}\r\n"
        f"\r\n"
    ).encode()
    return head + body


TOKEN_RE = re.compile(rb"^X-Token: (\S+)\r$", re.M)
HASH_RE = re.compile(rb"^X-Body-SHA256: ([0-9a-f]{64})\r$", re.M)


class Storm:
    """THREADS threads sending distinct messages to the MX port over
    smtplib until stopped, several per connection. `acked` holds the tokens
    whose DATA got its 250 (sendmail returned without error); `sent` maps
    every token tried to its bytes."""

    def __init__(self, port, threads=10, seed=0, recipients=(ALICE,)):
        self.port = port
        self.recipients = list(recipients)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = set()
        self.sent = {}
        self.errors = 0
        self.threads = [
            threading.Thread(target=self._run, args=(seed * 1000 + i,), daemon=True)
            for i in range(threads)
        ]

    def _run(self, seed):
        rng = random.Random(seed)
        n = 0
        while not self.stop_event.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=15) as s:
                    s.ehlo("storm.remote.test")
                    for _ in range(rng.randint(1, 8)):
                        if self.stop_event.is_set():
                            break
                        token = f"s{seed}-{n}-{rng.getrandbits(48):012x}"
                        n += 1
                        msg = make_message(token, rng)
                        with self.lock:
                            self.sent[token] = msg
                        s.sendmail("storm@remote.test", self.recipients, msg)
                        with self.lock:
                            self.acked.add(token)
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.errors += 1
                # The server is gone or going: try again shortly.
                time.sleep(0.05)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=30):
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t for t in self.threads if t.is_alive()]
        assert not alive, f"{len(alive)} sender threads hang"


def fetch_all(server, user, uids):
    """Reads the given UIDs through `dijk mail get`, a few in parallel.
    A message the store cannot read whole (short blob, missing file) makes
    the CLI fail, and so this. Slow: one process per message."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(uids, pool.map(lambda u: server.message(user, u), uids)))


def read_store_directly(server, user, uids):
    """Reads the given UIDs of user's INBOX from the files on disk, as
    store_message_read does (accounts/ID/index.db names the blob through
    the message's content row,
    blobs/AB/CDEF... holds the bytes): thousands of messages in the time
    the CLI takes for a dozen. Returns {uid: bytes}; a missing blob reads as
    None. Callers cross-check a sample against `dijk mail get`."""
    with closing(sqlite3.connect(f"file:{server.data}/meta.db?mode=ro", uri=True)) as meta:
        (account,) = meta.execute("SELECT id FROM user WHERE address = ?", (user,)).fetchone()
    index = server.data / "accounts" / str(account) / "index.db"
    with closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as db:
        rows = dict(
            (uid, (size, blob)) for uid, size, blob in db.execute(
                "SELECT m.uid, c.size, c.blob FROM message m"
                " JOIN mailbox b ON b.id = m.mailbox_id"
                " JOIN content c ON c.id = m.content_id WHERE b.name = 'INBOX'"
            )
        )
    out = {}
    for uid in uids:
        size, blob = rows[uid]
        try:
            data = (server.data / "blobs" / blob[:2] / blob[2:]).read_bytes()
        except FileNotFoundError:
            data = None
        out[uid] = data
    return out


def check_stored(server, user, sent, acked, seen, cli_sample=12):
    """Checks every message of user's INBOX not yet in `seen` (token -> uid):
    it is whole (its body hash matches, it ends with the exact bytes sent),
    and no token is stored twice. Then checks every acknowledged token is
    stored. Returns the number of messages checked."""
    rows = server.messages(user)
    old = set(seen.values())
    new = [(uid, size) for uid, size, _ in rows if uid not in old]
    data = read_store_directly(server, user, [uid for uid, _ in new])
    # The direct reading must agree with the official one.
    sample = random.Random(len(new)).sample([uid for uid, _ in new], min(cli_sample, len(new)))
    for uid, via_cli in fetch_all(server, user, sample).items():
        assert via_cli == data[uid], f"UID {uid}: the CLI and the files disagree"
    for uid, size in new:
        stored = data[uid]
        assert stored is not None, f"UID {uid}: listed, but its message file is missing"
        assert len(stored) == size, f"UID {uid}: listed {size} bytes, file has {len(stored)}"
        assert stored.startswith(b"Received: "), f"UID {uid}: {stored[:200]!r}"
        tokens = TOKEN_RE.findall(stored)
        hashes = HASH_RE.findall(stored)
        assert len(tokens) == 1 and len(hashes) == 1, f"UID {uid}: {stored[:600]!r}"
        token = tokens[0].decode()
        body = stored.split(b"\r\n\r\n", 1)[1]
        assert hashlib.sha256(body).hexdigest() == hashes[0].decode(), (
            f"UID {uid} ({token}): body damaged ({len(body)} bytes)"
        )
        assert token in sent, f"UID {uid}: token {token} was never sent"
        assert stored.endswith(sent[token]), f"UID {uid} ({token}) differs from what was sent"
        assert token not in seen, f"{token} stored twice: UIDs {seen[token]} and {uid}"
        seen[token] = uid
    missing = sorted(t for t in acked if t not in seen)
    assert not missing, (
        f"{len(missing)} of {len(acked)} acknowledged messages are not stored, e.g. {missing[:5]}"
    )
    return len(new)


# --- 1. load: Postfix smtp-source ----------------------------------------------

def test_smtp_source_concurrency(dijk):
    """20 parallel sessions (-s 20), each sending messages back to back over
    its connection (-d), 10000 in all (-m); every one ends up in INBOX."""
    total = 2000 if SANITIZED else 10000
    cmd = ["smtp-source", "-d", "-s", "20", "-m", str(total), "-l", "4096",
           "-M", "source.remote.test", "-f", "sender@remote.test",
           "-t", ALICE, f"127.0.0.1:{dijk.smtp_port}"]
    r = subprocess.run(cmd, capture_output=True, timeout=240)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    rows = dijk.messages(ALICE)
    assert len(rows) == total
    uids = [uid for uid, _, _ in rows]
    assert len(set(uids)) == total and uids == sorted(uids)
    sizes = {size for _, size, _ in rows}
    # The header lines smtp-source writes differ by a few bytes (dates,
    # Message-Id counters); the 4096-byte payload is the same.
    assert max(sizes) - min(sizes) < 64, sizes
    assert 4096 < min(sizes) and max(sizes) < 4096 + 1024, sizes
    sizes_by_uid = {uid: size for uid, size, _ in rows}
    sample = sorted({uids[0], uids[-1]} | set(random.Random(1).sample(uids, 40)))
    bodies = set()
    for uid, stored in fetch_all(dijk, ALICE, sample).items():
        assert len(stored) == sizes_by_uid[uid]
        assert stored.startswith(b"Received: from source.remote.test ([127.0.0.1])")
        assert b"\r\nFrom: <sender@remote.test>\r\n" in stored
        body = stored.split(b"\r\n\r\n", 1)[1]
        bodies.add(body)
    assert len(bodies) == 1, "smtp-source sends the same payload each time"
    body = bodies.pop()
    assert len(body) >= 4096 and body.startswith(b"1XXXX"), body[:100]
    assert dijk.messages(BOB) == []


# --- 2. kill -9 of the whole process family during a storm -----------------

def test_kill9_storm_loses_no_acknowledged_message(dijk_factory):
    d = dijk_factory("crash", {"workers": "2"})
    rounds = 3
    # The sanitizer build delivers several times slower: a longer storm
    # reaches the same number of deliveries before the kill.
    storm_seconds = 5.0 if SANITIZED else 2.5
    seen = {}
    sent, acked = {}, set()
    total_checked = 0
    for rnd in range(rounds):
        storm = Storm(d.smtp_port, threads=10, seed=rnd + 1).start()
        time.sleep(storm_seconds)
        with storm.lock:
            acked_before_kill = len(storm.acked)
        kill9_family(d)
        storm.stop()
        assert acked_before_kill > 20, (
            f"round {rnd}: only {acked_before_kill} deliveries before the kill"
            f" ({storm.errors} errors):\n{d.logs()[-3000:]}"
        )
        sent.update(storm.sent)
        acked |= storm.acked
        d.start()
        total_checked += check_stored(d, ALICE, sent, acked, seen)
        assert d.messages(BOB) == []
    assert len(acked) <= total_checked <= len(sent)
    # The server is usable after the last crash.
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=15) as s:
        s.sendmail("x@remote.test", [BOB], b"Subject: after\r\n\r\nalive\r\n")
    assert len(d.messages(BOB)) == 1


def test_kill9_one_worker_during_storm(dijk_factory):
    """One smtp worker dies mid-storm: its sessions fail, the other worker
    and the replacement carry on, and nothing acknowledged is lost."""
    d = dijk_factory("oneworker", {"workers": "2"})
    storm = Storm(d.smtp_port, threads=10, seed=42).start()
    time.sleep(4.0 if SANITIZED else 1.5)
    victim = d.children("smtp")[0]
    os.kill(victim, signal.SIGKILL)
    with storm.lock:
        acked_at_kill = len(storm.acked)
    wait_until(lambda: len([p for p in d.children("smtp") if p != victim]) == 2, 10,
               what="the replacement worker")
    # The other worker and the replacement carry on. How fast is the
    # benchmarks' business: on a loaded machine (a sanitizer build, other
    # tests beside this one) 20 more deliveries may take several seconds.
    wait_until(lambda: len(storm.acked) > acked_at_kill + 20, 60,
               what="20 deliveries after the kill")
    storm.stop()
    checked = check_stored(d, ALICE, storm.sent, storm.acked, {})
    assert len(storm.acked) <= checked <= len(storm.sent)


# --- 3. graceful SIGTERM during a storm -------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_during_storm_loses_nothing(dijk_factory, sig):
    d = dijk_factory("graceful", {"workers": "2"})
    storm = Storm(d.smtp_port, threads=10, seed=77).start()
    time.sleep(5.0 if SANITIZED else 2.0)
    pids = [d.proc.pid, *d.children("smtp"), *d.children("auth")]
    began = time.monotonic()
    code = d.stop(sig=sig, timeout=40)
    took = time.monotonic() - began
    storm.stop()
    assert code == 0, d.logs()[-3000:]
    # Sessions waiting for their delivery get their answer; the rest get a
    # 421 at once: nothing needs the 20 s grace period.
    assert took < 10, f"stopping took {took:.1f} s"
    assert not any(pid_alive(p) for p in pids)
    assert len(storm.acked) > 20, f"only {len(storm.acked)} deliveries before the stop"
    d.start()
    checked = check_stored(d, ALICE, storm.sent, storm.acked, {})
    assert len(storm.acked) <= checked <= len(storm.sent)


# --- 4. many local recipients -------------------------------------------------

def test_many_local_recipients_each_get_a_copy(dijk):
    extra = [f"user{i}@example.test" for i in range(3)]
    for user in extra:
        dijk.cli("user", "add", user, "--password-stdin", input="password-" + user + "\n")
    recipients = [ALICE, BOB, *extra]
    body = (b"From: x@remote.test\r\nSubject: to everybody\r\n\r\n"
            + b"".join(b"line %d of the message for everybody\r\n" % i for i in range(500)))
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=30) as s:
        assert s.sendmail("x@remote.test", recipients, body) == {}
    for user in recipients:
        stored = dijk.all_messages(user)
        assert len(stored) == 1, user
        assert stored[0].startswith(b"Received: ") and stored[0].endswith(body), user


def test_same_recipient_twice_is_stored_once(dijk):
    """RCPT TO the same mailbox twice (in two spellings): one copy."""
    body = b"Subject: twice\r\n\r\nonce please\r\n"
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=30) as s:
        assert s.sendmail("x@remote.test",
                          [ALICE, "ALICE@Example.Test", ALICE, BOB], body) == {}
    assert len(dijk.messages(ALICE)) == 1
    assert len(dijk.messages(BOB)) == 1


# --- 5. large messages --------------------------------------------------------

def big_message(size, seed):
    rng = random.Random(seed)
    head = b"From: big@remote.test\r\nSubject: big\r\n\r\n"
    lines = []
    n = len(head)
    while n < size:
        line = base64.b64encode(rng.randbytes(57)) + b"\r\n"  # 78 octets
        lines.append(line)
        n += len(line)
    return head + b"".join(lines)


def test_large_message_near_10mib_intact(dijk):
    msg = big_message(10 * 1024 * 1024 - 4096, seed=5)
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=120) as s:
        assert s.sendmail("big@remote.test", [ALICE], msg) == {}
    rows = dijk.messages(ALICE)
    assert len(rows) == 1
    stored = dijk.message(ALICE, rows[0][0])
    assert rows[0][1] == len(stored)
    header_len = len(stored) - len(msg)
    assert 0 < header_len < 512
    assert stored[:header_len].startswith(b"Received: ")
    assert stored[header_len:] == msg


def smtp_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError(f"connection closed after {lines!r}")
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), lines


def test_large_message_bdat_chunks_intact(dijk):
    """The same through CHUNKING: BDAT in uneven chunks, the last with LAST."""
    msg = big_message(10 * 1024 * 1024 - 100_000, seed=6)
    with socket.create_connection(("127.0.0.1", dijk.smtp_port), timeout=120) as sock:
        f = sock.makefile("rb")
        assert smtp_reply(f)[0] == 220
        sock.sendall(b"EHLO bdat.remote.test\r\n")
        assert smtp_reply(f)[0] == 250
        sock.sendall(b"MAIL FROM:<big@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
        assert smtp_reply(f)[0] == 250
        assert smtp_reply(f)[0] == 250
        pos, chunk = 0, 1_000_003
        while pos < len(msg):
            part = msg[pos:pos + chunk]
            pos += len(part)
            last = b" LAST" if pos >= len(msg) else b""
            sock.sendall(b"BDAT %d%s\r\n" % (len(part), last) + part)
            code, lines = smtp_reply(f)
            assert code == 250, lines
        sock.sendall(b"QUIT\r\n")
        assert smtp_reply(f)[0] == 221
    stored = dijk.all_messages(ALICE)
    assert len(stored) == 1
    assert stored[0].startswith(b"Received: ") and stored[0].endswith(msg)
    assert len(stored[0]) - len(msg) < 512
