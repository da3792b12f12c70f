"""The IMAP server driven by real clients: mbsync (isync) pulling and
two-way syncing a large INBOX (and the same pipelined FETCHes under
COMPRESS=DEFLATE by hand), mutt reading a message under a terminal (tmux),
concurrent imaplib sessions with IDLE woken by SMTP, APPEND durability
across kill -9, and TLS as openssl s_client sees it: versions, close_notify,
a command sent right after the handshake."""

import base64
import hashlib
import os
import pty
import random
import re
import select
import shlex
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import zlib
import imaplib

import pytest

from conftest import PASSWORDS, kill9_family, wait_until

SANITIZED = bool(os.environ.get("DIJK_SANITIZED"))
ALICE = "alice@example.test"


# --- helpers -----------------------------------------------------------------

def imap_login(server, user=ALICE, timeout=30):
    """An imaplib session on the plaintext loopback port, logged in.
    TCP_NODELAY: imaplib writes a literal and its CRLF separately, and
    Nagle plus delayed ACKs would cost 40 ms an APPEND."""
    m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=timeout)
    m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    typ, data = m.login(user, PASSWORDS[user])
    assert typ == "OK", data
    return m


def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data


APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


class RawImap:
    """A line-level IMAP client on a plain socket, used to pipeline APPENDs
    with LITERAL+ (what imaplib cannot do): no round trip per message."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.tag = 0
        greeting = self.line()
        assert greeting.startswith(b"* OK"), greeting

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def next_tag(self):
        self.tag += 1
        return f"r{self.tag}"

    def command(self, text):
        """Sends one command without literals; returns (untagged, tagged)."""
        tag = self.next_tag()
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag.encode() + b" "):
                return untagged, line
            untagged.append(line)

    def login(self, user):
        _, done = self.command(f'LOGIN "{user}" "{PASSWORDS[user]}"')
        assert done.split()[1] == b"OK", done

    def append_many(self, mailbox, messages, flags=None, batch=100):
        """APPENDs messages (bytes) in order, pipelined; returns
        [(uidvalidity, uid)] from the APPENDUID of each OK."""
        out = []
        for start in range(0, len(messages), batch):
            chunk = messages[start:start + batch]
            tags = []
            payload = bytearray()
            for i, msg in enumerate(chunk):
                tag = self.next_tag()
                tags.append(tag.encode())
                f = flags[start + i] if flags else ""
                f = f"({f}) " if f else ""
                payload += f"{tag} APPEND {mailbox} {f}{{{len(msg)}+}}\r\n".encode()
                payload += msg + b"\r\n"
            self.sock.sendall(payload)
            done = {}
            while len(done) < len(tags):
                line = self.line()
                t = line.split(b" ", 1)[0]
                if t in tags:
                    done[t] = line
            for t in tags:
                line = done[t]
                assert line.split()[1] == b"OK", line
                m = APPENDUID_RE.search(line)
                assert m, line
                out.append((int(m.group(1)), int(m.group(2))))
        return out

    def close(self):
        try:
            self.sock.sendall(b"z LOGOUT\r\n")
        except OSError:
            pass
        self.sock.close()


def fill_inbox(server, messages, flags=None, connections=1):
    """APPENDs messages to ALICE's INBOX; returns {uid: bytes}. With
    several connections the messages are split between them (in order
    within each), and the server's commits can overlap."""
    flags = flags or [""] * len(messages)
    parts = [list(range(k, len(messages), connections)) for k in range(connections)]
    results = [None] * connections

    def run(k):
        c = RawImap(server.imap_port)
        try:
            c.login(ALICE)
            results[k] = c.append_many("INBOX", [messages[i] for i in parts[k]],
                                       [flags[i] for i in parts[k]])
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(r is not None for r in results), "an APPEND connection failed"
    out = {}
    for k in range(connections):
        uids = [u for _, u in results[k]]
        assert uids == sorted(uids), uids
        for i, u in zip(parts[k], uids):
            assert u not in out, f"UID {u} given twice"
            out[u] = messages[i]
    assert len({v for r in results for v, _ in r}) == 1, "UIDVALIDITY changed between APPENDs"
    return dict(sorted(out.items()))


FETCH_UID_RE = re.compile(rb"UID (\d+)")
FETCH_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")


def server_flags(server, user=ALICE, mailbox="INBOX"):
    """{uid: set of flags} of a mailbox, read over a fresh imaplib session
    (EXAMINE, so that reading changes nothing). \\Recent is left out."""
    m = imap_login(server, user)
    try:
        ok(m.select(mailbox, readonly=True))
        data = ok(m.uid("FETCH", "1:*", "(UID FLAGS)"))
    finally:
        m.logout()
    out = {}
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            item = item[0]
        u = FETCH_UID_RE.search(item)
        f = FETCH_FLAGS_RE.search(item)
        assert u and f, item
        out[int(u.group(1))] = set(f.group(1).decode().split()) - {"\\Recent"}
    return out


def uid_set(uids):
    return ",".join(str(u) for u in sorted(uids))


def run_pty(cmd, timeout, env=None):
    """Runs cmd with its stdout and stderr on a pseudo-terminal (mbsync
    prints its progress counters only to a terminal); returns
    (exit code, output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                         close_fds=True, env=env, start_new_session=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                raise AssertionError(f"{cmd[0]} still running after {timeout} s:\n"
                                     + out.decode(errors="replace")[-4000:])
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child side is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return p.wait(timeout=timeout), out.decode(errors="replace").replace("\r\n", "\n")


# --- 1. mbsync ---------------------------------------------------------------

MBSYNC_STATS_RE = re.compile(
    r"C: (\d+)/(\d+)\s+B: (\d+)/(\d+)\s+"
    r"F: \+(\d+)/(\d+) \*(\d+)/(\d+) #(\d+)/(\d+)\s+"
    r"N: \+(\d+)/(\d+) \*(\d+)/(\d+) #(\d+)/(\d+)")


class Mbsync:
    """One mbsync configuration: far = dijk over implicit TLS, near = a
    Maildir in tmp_path, one channel over INBOX syncing everything both
    ways with expunges."""

    def __init__(self, server, tmp_path):
        self.dir = tmp_path / "mbsync"
        self.maildir = self.dir / "mail"
        self.inbox = self.maildir / "INBOX"
        self.maildir.mkdir(parents=True)
        self.rc = self.dir / "mbsyncrc"
        self.rc.write_text(
            "IMAPAccount dijk\n"
            "Host 127.0.0.1\n"
            f"Port {server.imaps_port}\n"
            f"User {ALICE}\n"
            f"Pass {PASSWORDS[ALICE]}\n"
            "SSLType IMAPS\n"
            "SSLVersions TLSv1.2 TLSv1.3\n"
            f"CertificateFile {server.data / 'cert.pem'}\n"
            "\n"
            "IMAPStore remote\n"
            "Account dijk\n"
            "\n"
            "MaildirStore local\n"
            f"Path {self.maildir}/\n"
            f"Inbox {self.inbox}\n"
            "\n"
            "Channel inbox\n"
            "Far :remote:\n"
            "Near :local:\n"
            "Patterns INBOX\n"
            "Create Both\n"
            "Expunge Both\n"
            "Sync All\n"
            "SyncState *\n"
        )
        self.env = dict(os.environ, HOME=str(self.dir))

    def run(self, *args, timeout=120):
        """Runs mbsync -V on the channel; returns (the counters of its last
        progress line as a dict, the output)."""
        code, out = run_pty(["mbsync", "-V", "-c", str(self.rc), *args, "-a"],
                            timeout, self.env)
        assert code == 0, f"mbsync exited with {code}:\n{out[-6000:]}"
        lines = MBSYNC_STATS_RE.findall(out)
        assert lines, f"no progress counters in mbsync's output:\n{out[-4000:]}"
        v = list(map(int, lines[-1]))
        stats = {
            "channels": (v[0], v[1]), "boxes": (v[2], v[3]),
            "far_new": (v[4], v[5]), "far_flags": (v[6], v[7]), "far_expunged": (v[8], v[9]),
            "near_new": (v[10], v[11]), "near_flags": (v[12], v[13]),
            "near_expunged": (v[14], v[15]),
        }
        assert stats["channels"] == (1, 1) and stats["boxes"] == (1, 1), out[-4000:]
        return stats, out

    def run_debug(self, timeout=120):
        """Runs mbsync with the IMAP conversation logged (-Dn); returns the
        commands it sent."""
        r = subprocess.run(["mbsync", "-Dn", "-c", str(self.rc), "-a"], env=self.env,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0, f"mbsync exited with {r.returncode}:\n{out[-6000:]}"
        return [line.split(">>> ", 1)[1] for line in out.splitlines() if ">>> " in line]

    def files(self):
        """{path: maildir flags} of every message file of the local INBOX."""
        out = {}
        for sub in ("new", "cur"):
            for name in os.listdir(self.inbox / sub):
                flags = name.split(":2,", 1)[1] if ":2," in name else ""
                out[self.inbox / sub / name] = flags
        return out

    def state(self):
        """Everything the near side holds: names, contents and the sync
        state files, to see that a run changed nothing."""
        snap = {}
        for root, _, names in os.walk(self.maildir):
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    snap[p] = f.read()
        return snap


TOKEN_RE = re.compile(rb"^X-Token: (\S+)\r?$", re.M)
MAILDIR_TO_IMAP = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered", "D": "\\Draft"}


def mbsync_message(i, rng):
    """Message i of the mbsync test: distinct (its token), mostly small,
    every 97th a ~60 KiB base64 attachment, some with UTF-8 and lines that
    start with "From " or a dot."""
    token = f"mb{i:05d}-{rng.getrandbits(40):010x}"
    body = [f"Message number {i} of the sync test.", "", f"From the token {token}",
            ".a line starting with a dot", "Grüße, ünïcödé"]
    if i % 97 == 5:
        raw = rng.randbytes(45_000)
        b64 = base64.b64encode(raw).decode()
        body += [b64[k:k + 76] for k in range(0, len(b64), 76)]
    head = [f"From: sender{i % 13}@remote.test", f"To: {ALICE}",
            f"Subject: sync test {i}", f"Message-ID: <{token}@remote.test>",
            f"X-Token: {token}", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()


def local_as_sent(data):
    """A Maildir copy as mbsync wrote it, back to the bytes on the server:
    mbsync stores LF line ends and adds an X-TUID header of its own."""
    data = re.sub(rb"^X-TUID: [^\n]*\n", b"", data, count=1, flags=re.M)
    return data.replace(b"\n", b"\r\n")


def local_by_token(mb):
    """{token: (path, maildir flags)} of the local INBOX; no token twice."""
    out = {}
    for path, flags in mb.files().items():
        tokens = TOKEN_RE.findall(path.read_bytes())
        assert len(tokens) == 1, path
        token = tokens[0].decode()
        assert token not in out, f"{token} twice in the Maildir: {out[token][0]}, {path}"
        out[token] = (path, flags)
    return out


def set_local_flags(path, flags):
    """What a Maildir MUA does: the message goes to cur/ with its flags
    (sorted, as the Maildir spec asks) after ':2,'."""
    base = path.name.split(":2,", 1)[0]
    new = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}"
    os.rename(path, new)


def assert_converged(server, mb, expected, token_of):
    """Server flags and local file flags both equal expected {uid: set of
    IMAP flags}, and both sides hold exactly the messages of expected."""
    flags = server_flags(server)
    assert set(flags) == set(expected), (
        f"server UIDs differ: missing {sorted(set(expected) - set(flags))[:10]},"
        f" extra {sorted(set(flags) - set(expected))[:10]}")
    wrong = {u: (flags[u], expected[u]) for u in expected if flags[u] != expected[u]}
    assert not wrong, f"{len(wrong)} server messages with other flags (got, want): " \
        f"{dict(list(wrong.items())[:8])}"
    local = local_by_token(mb)
    assert set(local) == {token_of[u] for u in expected}, (
        f"local Maildir has {len(local)} messages, want {len(expected)}")
    wrong = {}
    for u, want in expected.items():
        path, lf = local[token_of[u]]
        got = {MAILDIR_TO_IMAP[c] for c in lf if c in MAILDIR_TO_IMAP}
        assert "T" not in lf, path
        if got != want:
            wrong[u] = (path.name, want)
    assert not wrong, f"{len(wrong)} local messages with other flags: {dict(list(wrong.items())[:8])}"


def test_mbsync_pull_and_two_way_flag_sync(dijk, tmp_path):
    n = 200 if SANITIZED else 1000
    rng = random.Random(7)
    messages = [mbsync_message(i, rng) for i in range(n)]
    sent = fill_inbox(dijk, messages, connections=4)
    uids = sorted(sent)
    token_of = {u: TOKEN_RE.search(sent[u]).group(1).decode() for u in uids}
    assert len(set(token_of.values())) == n
    assert len(dijk.messages(ALICE)) == n

    mb = Mbsync(dijk, tmp_path)

    # 1. The first run pulls everything, byte for byte.
    t0 = time.monotonic()
    stats, out = mb.run()
    pull_time = time.monotonic() - t0
    assert stats["near_new"] == (n, n), (stats, out[-3000:])
    assert stats["far_new"] == (0, 0) and stats["far_flags"] == (0, 0), stats
    assert stats["far_expunged"] == (0, 0) and stats["near_expunged"] == (0, 0), stats
    files = mb.files()
    assert len(files) == n, f"{len(files)} files in the Maildir, want {n}"
    local = local_by_token(mb)
    by_token = {token_of[u]: u for u in uids}
    assert set(local) == set(by_token)
    for token, (path, flags) in local.items():
        assert flags == "", (path, flags)
        assert local_as_sent(path.read_bytes()) == sent[by_token[token]], (
            f"UID {by_token[token]}: the local copy {path.name} differs from what was appended")
    # What the store holds (read apart from IMAP) is what mbsync got.
    big = [u for u in uids if len(sent[u]) > 10_000]
    sample = sorted({uids[0], uids[-1], *rng.sample(uids, 8), *big[:8]})
    for u in sample:
        stored = dijk.message(ALICE, u)
        assert stored == sent[u], f"UID {u}: the store differs from what was appended"
        assert local_as_sent(local[token_of[u]][0].read_bytes()) == stored
    assert pull_time < (240 if SANITIZED else 60), pull_time

    # 2. Flags change on both sides; one run makes them agree.
    idx = {u: i for i, u in enumerate(uids)}
    expected = {u: set() for u in uids}
    local_changes = {}
    for u in uids:
        i, f = idx[u], set()
        if i % 7 == 1:
            f.add("S")
        if i % 11 == 2:
            f.add("F")
        if i % 13 == 3:
            f.add("R")
        if f:
            local_changes[u] = f
            expected[u] |= {MAILDIR_TO_IMAP[c] for c in f}
    for u, f in local_changes.items():
        set_local_flags(local[token_of[u]][0], f)
    server_seen = [u for u in uids if idx[u] % 5 == 0]
    server_flagged = [u for u in uids if idx[u] % 9 == 4]
    m = imap_login(dijk)
    try:
        ok(m.select("INBOX"))
        ok(m.uid("STORE", uid_set(server_seen), "+FLAGS.SILENT", "(\\Seen)"))
        ok(m.uid("STORE", uid_set(server_flagged), "+FLAGS.SILENT", "(\\Flagged)"))
    finally:
        m.logout()
    for u in server_seen:
        expected[u].add("\\Seen")
    for u in server_flagged:
        expected[u].add("\\Flagged")
    both = [u for u in local_changes if u in server_seen or u in server_flagged]
    assert both, "the test wants messages changed on both sides"

    stats, out = mb.run()
    assert stats["far_new"] == (0, 0) and stats["near_new"] == (0, 0), stats
    assert stats["far_expunged"] == (0, 0) and stats["near_expunged"] == (0, 0), stats
    assert stats["far_flags"][0] > 0 and stats["near_flags"][0] > 0, stats
    assert_converged(dijk, mb, expected, token_of)

    # 3. Flags are taken away on both sides.
    local = local_by_token(mb)
    for u in uids:
        if idx[u] % 22 == 2:  # locally flagged above
            path, lf = local[token_of[u]]
            assert "F" in lf
            set_local_flags(path, set(lf) - {"F"})
            expected[u].discard("\\Flagged")
    unseen = [u for u in uids if idx[u] % 10 == 0]
    m = imap_login(dijk)
    try:
        ok(m.select("INBOX"))
        ok(m.uid("STORE", uid_set(unseen), "-FLAGS.SILENT", "(\\Seen)"))
    finally:
        m.logout()
    for u in unseen:
        expected[u].discard("\\Seen")
    stats, out = mb.run()
    assert stats["far_new"] == (0, 0) and stats["near_new"] == (0, 0), stats
    assert stats["far_expunged"] == (0, 0) and stats["near_expunged"] == (0, 0), stats
    assert_converged(dijk, mb, expected, token_of)

    # 4. Deletions: a file removed locally, a message marked trashed
    # locally, and a message expunged on the server all go, everywhere.
    local = local_by_token(mb)
    gone_local, trashed, gone_server = uids[17], uids[29], uids[23]
    os.unlink(local[token_of[gone_local]][0])
    path, lf = local[token_of[trashed]]
    set_local_flags(path, set(lf) | {"T"})
    m = imap_login(dijk)
    try:
        ok(m.select("INBOX"))
        ok(m.uid("STORE", str(gone_server), "+FLAGS.SILENT", "(\\Deleted)"))
        ok(m.expunge())
    finally:
        m.logout()
    stats, out = mb.run()
    assert stats["far_new"] == (0, 0) and stats["near_new"] == (0, 0), stats
    for u in (gone_local, trashed, gone_server):
        del expected[u]
    assert_converged(dijk, mb, expected, token_of)
    assert sorted(u for u, _, _ in dijk.messages(ALICE)) == sorted(expected)

    # 5. Nothing is left to do: a further run changes nothing on either side.
    before_local = mb.state()
    before_server = server_flags(dijk)
    stats, out = mb.run()
    zero = (0, 0)
    assert all(stats[k] == zero for k in ("far_new", "far_flags", "far_expunged",
                                          "near_new", "near_flags", "near_expunged")), \
        (stats, out[-3000:])
    assert mb.state() == before_local, "a run with nothing to do changed the Maildir"
    assert server_flags(dijk) == before_server
    # ...and what it says to the server only reads.
    commands = mb.run_debug()
    writes = [c for c in commands
              if re.match(r"\d+ (APPEND|(UID )?STORE|(UID )?EXPUNGE|EXPUNGE|COPY|MOVE)", c)
              or "BODY.PEEK[]" in c or "BODY[]" in c]
    assert not writes, f"a run with nothing to do sent {writes[:5]}"
    assert any("SELECT" in c for c in commands), commands
    assert mb.state() == before_local
    assert server_flags(dijk) == before_server
    print(f"mbsync pulled {n} messages in {pull_time:.2f} s")


def test_compress_deflate_pipelined_fetches(dijk):
    """What mbsync does over COMPRESS=DEFLATE (RFC 4978), without mbsync:
    one UID FETCH per message, all sent at once; every command gets its
    tagged OK and exactly its message."""
    n = 200 if SANITIZED else 500
    rng = random.Random(11)
    sent = fill_inbox(dijk, [mbsync_message(i, rng) for i in range(n)], connections=4)
    sock = socket.create_connection(("127.0.0.1", dijk.imap_port), timeout=20)
    try:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"* OK")
        sock.sendall(f'a LOGIN "{ALICE}" "{PASSWORDS[ALICE]}"\r\n'.encode())
        assert f.readline().startswith(b"a OK"), "LOGIN failed"
        sock.sendall(b"c COMPRESS DEFLATE\r\n")
        line = f.readline()
        assert line.startswith(b"c OK"), line
        # Nothing more can be buffered in f: the server waits for us.
        f.detach()
        inflate = zlib.decompressobj(-15)
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)

        def send(data):
            sock.sendall(deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH))

        got = bytearray()

        def read_until(rx, what):
            # Search only what is new (and a little before it): the reply
            # grows to megabytes.
            start = 0
            while not rx.search(got, start):
                start = max(0, len(got) - 64)
                try:
                    chunk = sock.recv(1 << 16)
                except socket.timeout:
                    raise AssertionError(f"no {what} within 20 s") from None
                assert chunk, f"connection closed before {what}"
                got.extend(inflate.decompress(chunk))

        send(b"s SELECT INBOX\r\n")
        read_until(re.compile(rb"\r\ns OK"), "SELECT's OK")
        got.clear()
        uids = sorted(sent)
        send(b"".join(b"f%d UID FETCH %d (BODY.PEEK[])\r\n" % (u, u) for u in uids))
        last = re.compile(rb"\r\nf%d (OK|NO|BAD)" % uids[-1])
        try:
            read_until(last, "the last FETCH's reply")
        finally:
            answered = set(int(x) for x in re.findall(rb"\r\nf(\d+) OK UID FETCH", got))
            missing = sorted(set(uids) - answered)
            assert not missing, (f"{len(missing)} of {n} pipelined UID FETCHes got no reply"
                                 f" (under COMPRESS=DEFLATE), e.g. {missing[:10]}")
        send(b"z LOGOUT\r\n")
        read_until(re.compile(rb"\r\nz OK"), "LOGOUT's OK")
        # ...and then the server closes the connection (RFC 9051 6.1.3).
        sock.settimeout(10)
        try:
            while sock.recv(1 << 16):
                pass
        except socket.timeout:
            raise AssertionError("the connection is still open 10 s after LOGOUT's OK") from None
    finally:
        sock.close()
    # Each reply holds exactly its message.
    pos = 0
    for u in uids:
        head = re.compile(rb"\* \d+ FETCH \(UID %d BODY\[\] \{(\d+)\}\r\n" % u)
        m = head.search(got, pos)
        assert m, f"no FETCH data for UID {u}"
        size = int(m.group(1))
        body = bytes(got[m.end():m.end() + size])
        assert body == sent[u], f"UID {u}: FETCH under COMPRESS returned other bytes"
        pos = m.end() + size


# --- 2. mutt -----------------------------------------------------------------

class Tmux:
    """A private tmux server (its own socket in tmp_path) running one
    program in a 200x50 window. The program's exit status is written to a
    file by the shell that runs it (tmux 3.3's #{pane_dead_status} is
    sometimes never set), and the pane stays after it ends."""

    def __init__(self, tmp_path):
        self.sock = str(tmp_path / "tmux.sock")
        self.status_file = tmp_path / "tmux.status"

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True,
                           text=True, timeout=30)
        if check:
            assert r.returncode == 0, f"tmux {args}: {r.stderr}"
        return r

    def start(self, command):
        status = shlex.quote(str(self.status_file))
        self.tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", "t",
                  f"{command}; echo $? > {status}.tmp; mv {status}.tmp {status}")
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def status(self):
        """None while the program runs; then its exit status."""
        try:
            return int(self.status_file.read_text())
        except FileNotFoundError:
            return None

    def kill(self):
        self.tmux("kill-server", check=False)


def test_mutt_reads_a_message(dijk, tmp_path):
    token = f"{random.getrandbits(64):016x}"
    # One message read earlier, the one to read, and one after it.
    fill_inbox(dijk, [b"From: old@remote.test\r\nSubject: already read\r\n\r\nold\r\n"],
               flags=["\\Seen"])
    body = (f"Hello Alice,\r\n\r\nthe secret word is zebra-{token}.\r\n"
            "A second paragraph, for good measure.\r\n")
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=30) as s:
        s.sendmail("carol@remote.test", [ALICE],
                   (f"From: Carol <carol@remote.test>\r\nTo: {ALICE}\r\n"
                    f"Subject: mutt test {token}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
                    f"Message-ID: <{token}@remote.test>\r\n\r\n{body}").encode())
        s.sendmail("dave@remote.test", [ALICE],
                   (f"From: dave@remote.test\r\nTo: {ALICE}\r\nSubject: later {token}\r\n"
                    f"Date: Mon, 2 Nov 2026 11:00:00 +0000\r\n\r\nlater\r\n").encode())
    (old, _, _), (target, _, _), (later, _, _) = dijk.messages(ALICE)
    assert server_flags(dijk) == {old: {"\\Seen"}, target: set(), later: set()}

    home = tmp_path / "home"
    home.mkdir()
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f'set folder="imaps://alice%40example.test@127.0.0.1:{dijk.imaps_port}/"\n'
        'set spoolfile="+INBOX"\n'
        f'set imap_pass="{PASSWORDS[ALICE]}"\n'
        f'set certificate_file="{dijk.data / "cert.pem"}"\n'
        "set ssl_verify_host=no\n"
        "set ssl_force_tls=yes\n"
        "set move=no\n"
        "set quit=yes\n"
        "set delete=no\n"
        'set header_cache=""\n'
        'set message_cachedir=""\n'
        'set record=""\n'
        'set postponed=""\n'
        "set sort=date\n"
        "set pager_stop=yes\n"
        "set mark_old=no\n"
        "set imap_passive=yes\n"
        "set mail_check=3600\n"
        "set timeout=3600\n"
    )
    cmd = (f"env HOME={shlex.quote(str(home))} LC_ALL=C.UTF-8 mutt -n -F {shlex.quote(str(muttrc))}"
           " -e 'push <display-message>'")
    t = Tmux(tmp_path)
    try:
        t.start(cmd)
        timeout = 60 if SANITIZED else 20
        def shown():
            if t.status() is not None:
                return "dead"
            s = t.screen()
            return s if f"zebra-{token}" in s else None

        screen = wait_until(shown, timeout, interval=0.2, what="mutt to show the message")
        assert screen != "dead", f"mutt ended with {t.status()}:\n{t.screen()}"
        assert f"Subject: mutt test {token}" in screen, screen
        assert "From: Carol <carol@remote.test>" in screen, screen
        assert f"the secret word is zebra-{token}." in screen, screen
        assert "A second paragraph, for good measure." in screen, screen
        # Back to the index, then quit (quit=yes: no question asked).
        t.keys("q")
        wait_until(lambda: "later " + token in t.screen() or t.status() is not None,
                   timeout, interval=0.2, what="mutt's index")
        t.keys("q")
        wait_until(lambda: t.status() is not None, timeout, interval=0.2,
                   what="mutt to exit")
        assert t.status() == 0, f"mutt ended with {t.status()}:\n{t.screen()}"
    finally:
        t.kill()
    assert server_flags(dijk) == {old: {"\\Seen"}, target: {"\\Seen"}, later: set()}


# --- 3. concurrent sessions and IDLE ------------------------------------------

class Idler:
    """An imaplib session in IDLE on INBOX; a thread reads its lines and
    stamps each with time.monotonic()."""

    def __init__(self, server):
        self.m = imap_login(server)
        self.exists = int(ok(self.m.select("INBOX"))[0])
        self.m.sock.settimeout(None)
        self.lines = []  # (time, line)
        self.cond = threading.Condition()
        self.m.send(b"i1 IDLE\r\n")
        first = self.m.readline()
        assert first.startswith(b"+ "), first
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                line = self.m.readline()
            except (OSError, ValueError):
                line = b""
            with self.cond:
                self.lines.append((time.monotonic(), line))
                self.cond.notify_all()
            if not line or line.startswith(b"i1 "):
                return

    def wait_for(self, pattern, timeout):
        """(time, line) of the first line matching pattern (bytes regex)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for stamp, line in self.lines:
                    if rx.match(line):
                        return stamp, line
                    if line == b"":
                        raise AssertionError(f"IDLE connection closed: {self.lines}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} within {timeout} s: {self.lines[-10:]}")
                self.cond.wait(left)

    def done(self):
        self.m.send(b"DONE\r\n")
        stamp, line = self.wait_for(rb"i1 ", 10)
        assert line.startswith(b"i1 OK"), line
        self.thread.join(5)
        self.m.logout()


def untagged(m):
    """The untagged responses imaplib collected, as {name: [data]}, cleared."""
    got = {k: list(v) for k, v in m.untagged_responses.items()}
    m.untagged_responses.clear()
    return got


def test_concurrent_sessions_and_idle(dijk_factory):
    d = dijk_factory("idle", {"workers": "2"})
    seed = fill_inbox(d, [f"Subject: seed {i}\r\n\r\nseed {i}\r\n".encode() for i in range(5)])
    uids = sorted(seed)

    # Two sessions on INBOX: what one does, the other hears at its next NOOP.
    a, b = imap_login(d), imap_login(d)
    assert int(ok(a.select("INBOX"))[0]) == 5
    assert int(ok(b.select("INBOX"))[0]) == 5
    untagged(a), untagged(b)
    ok(a.append("INBOX", None, None, b"Subject: from a\r\n\r\nhello b\r\n"))
    ok(a.uid("STORE", str(uids[1]), "+FLAGS.SILENT", "(\\Flagged)"))
    ok(b.noop())
    got = untagged(b)
    assert got.get("EXISTS") == [b"6"], got
    assert any(re.match(rb"2 \(.*FLAGS \([^)]*\\Flagged", x) for x in got.get("FETCH", [])), got
    ok(b.uid("STORE", str(uids[2]), "+FLAGS.SILENT", "(\\Deleted)"))
    ok(b.expunge())
    ok(a.noop())
    got = untagged(a)
    assert got.get("EXPUNGE") == [b"3"], got
    sa = ok(a.uid("SEARCH", "ALL"))[0].split()
    sb = ok(b.uid("SEARCH", "ALL"))[0].split()
    assert sa == sb and len(sa) == 5, (sa, sb)
    b.logout()

    # Two IDLE sessions (with two workers, likely in different processes)
    # hear of every SMTP delivery within a second of its 250.
    count = 5
    idlers = [Idler(d), Idler(d)]
    try:
        delays = []
        for k in range(5):
            count += 1
            with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
                s.ehlo("idle.remote.test")
                s.sendmail("idle@remote.test", [ALICE],
                           f"Subject: idle {k}\r\n\r\nwake up {k}\r\n".encode())
                acked = time.monotonic()
            for idler in idlers:
                stamp, _ = idler.wait_for(rb"\* %d EXISTS" % count, 10)
                delays.append(stamp - acked)
        print("IDLE delays after the 250:", [f"{x:.3f}" for x in delays])
        assert all(x < 1.0 for x in delays), delays

        # A flag change and an APPEND by the other session wake IDLE too.
        ok(a.uid("STORE", str(uids[0]), "+FLAGS.SILENT", "(\\Answered)"))
        t0 = time.monotonic()
        for idler in idlers:
            stamp, line = idler.wait_for(rb"\* 1 FETCH \(.*\\Answered", 10)
            assert stamp - t0 < 1.0, (stamp - t0, line)
        ok(a.append("INBOX", None, None, b"Subject: from a again\r\n\r\nhi\r\n"))
        count += 1
        t0 = time.monotonic()
        for idler in idlers:
            stamp, _ = idler.wait_for(rb"\* %d EXISTS" % count, 10)
            assert stamp - t0 < 1.0, stamp - t0
    finally:
        for idler in idlers:
            idler.done()
    a.logout()
    assert len(d.messages(ALICE)) == count


# --- 4. APPEND durability under kill -9 ---------------------------------------

HASH_RE = re.compile(rb"^X-Body-SHA256: ([0-9a-f]{64})\r$", re.M)
ATOKEN_RE = re.compile(rb"^X-Token: (\S+)\r$", re.M)


def append_message(token, rng):
    size = rng.choice([200, 1_500, 6_000, 20_000, 70_000])
    raw = rng.randbytes(size * 3 // 4)
    b64 = base64.b64encode(raw)
    body = b"\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + b"\r\n"
    head = (f"From: appender@remote.test\r\nTo: {ALICE}\r\nSubject: append {token}\r\n"
            f"Message-ID: <{token}@remote.test>\r\nX-Token: {token}\r\n"
            f"X-Body-SHA256: {hashlib.sha256(body).hexdigest()}\r\n\r\n").encode()
    return head + body


class Appenders:
    """THREADS imaplib sessions APPENDing distinct messages until stopped;
    every third with \\Flagged. acked maps (uidvalidity, uid) to (token,
    flagged) for each APPEND that got its tagged OK."""

    def __init__(self, server, threads, seed):
        self.server = server
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}
        self.acked = {}
        self.errors = []
        self.per_thread = {}
        self.threads = [threading.Thread(target=self._run, args=(seed * 100 + i,), daemon=True)
                        for i in range(threads)]

    def _run(self, seed):
        rng = random.Random(seed)
        n = 0
        while not self.stop_event.is_set():
            try:
                m = imap_login(self.server, timeout=15)
                while not self.stop_event.is_set():
                    token = f"a{seed}-{n}-{rng.getrandbits(40):010x}"
                    n += 1
                    msg = append_message(token, rng)
                    flagged = n % 3 == 0
                    with self.lock:
                        self.sent[token] = msg
                    typ, data = m.append("INBOX", "(\\Flagged)" if flagged else None, None, msg)
                    if typ != "OK":
                        with self.lock:
                            self.errors.append((token, typ, data))
                        continue
                    mu = APPENDUID_RE.search(data[0])
                    assert mu, data
                    with self.lock:
                        self.acked[(int(mu.group(1)), int(mu.group(2)))] = (token, flagged)
                        self.per_thread[seed] = self.per_thread.get(seed, 0) + 1
            except (OSError, imaplib.IMAP4.error, EOFError):
                time.sleep(0.05)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def all_busy(self, at_least):
        """True once every thread has had at_least APPENDs acknowledged."""
        with self.lock:
            return (len(self.per_thread) == len(self.threads)
                    and min(self.per_thread.values()) >= at_least)

    def stop(self, timeout=30):
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "APPEND threads hang"


def fetch_mailbox(server):
    """(uidvalidity, {uid: (bytes, RFC822.SIZE, flags)}) of ALICE's INBOX over IMAP."""
    m = imap_login(server, timeout=60)
    try:
        ok(m.select("INBOX", readonly=True))
        uidvalidity = int(m.response("UIDVALIDITY")[1][0])
        data = ok(m.uid("SEARCH", "ALL"))
        uids = [int(x) for x in data[0].split()]
        out = {}
        for start in range(0, len(uids), 40):
            chunk = uids[start:start + 40]
            data = ok(m.uid("FETCH", uid_set(chunk), "(UID RFC822.SIZE FLAGS BODY.PEEK[])"))
            for i, item in enumerate(data):
                if not isinstance(item, tuple):
                    continue
                meta, body = item
                # Items after the literal come in the next element.
                if i + 1 < len(data) and isinstance(data[i + 1], bytes):
                    meta += data[i + 1]
                uid = int(FETCH_UID_RE.search(meta).group(1))
                size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
                f = FETCH_FLAGS_RE.search(meta)
                out[uid] = (body, size, set(f.group(1).decode().split()) if f else None)
            missing = set(chunk) - set(out)
            assert not missing, f"UID FETCH returned nothing for {sorted(missing)}"
    finally:
        m.logout()
    return uidvalidity, out


def test_append_durability_under_kill9(dijk_factory):
    d = dijk_factory("append", {"workers": "2"})
    rounds = 3
    storm_seconds = 1.0 if SANITIZED else 1.5
    sent, acked, seen = {}, {}, {}  # seen: token -> uid
    uidvalidity = None
    for rnd in range(rounds):
        app = Appenders(d, threads=6, seed=rnd + 1).start()
        # Every session is logged in and appending (LOGIN is slow under
        # ASan), then the storm goes on for a while before the kill.
        wait_until(lambda: app.all_busy(3), 60, what="all six sessions to be appending")
        time.sleep(storm_seconds)
        with app.lock:
            acked_before = len(app.acked)
        kill9_family(d)
        app.stop()
        assert acked_before >= 20, (
            f"round {rnd}: only {acked_before} APPENDs before the kill: {app.errors[:3]}\n"
            f"{d.logs()[-3000:]}")
        assert not app.errors, app.errors[:5]
        sent.update(app.sent)
        acked.update(app.acked)
        d.start()

        uv, box = fetch_mailbox(d)
        vals = {v for v, _ in acked}
        assert vals == {uv}, f"APPENDUID gave UIDVALIDITY {vals}, SELECT says {uv}"
        if uidvalidity is not None:
            assert uv == uidvalidity
        uidvalidity = uv
        # Every acknowledged APPEND is there, at its UID, whole, with its flag.
        for (_, uid), (token, flagged) in acked.items():
            assert uid in box, f"round {rnd}: APPENDUID {uid} ({token}) is gone after kill -9"
            body, size, flags = box[uid]
            assert body == sent[token], f"round {rnd}: UID {uid} is not the {token} appended"
            assert size == len(body), (uid, size, len(body))
            assert ("\\Flagged" in flags) == flagged, (uid, token, flags, flagged)
        # Nothing partial or doubled: every message is one appended, whole.
        tokens = {}
        for uid, (body, size, flags) in box.items():
            t = ATOKEN_RE.findall(body)
            h = HASH_RE.findall(body)
            assert len(t) == 1 and len(h) == 1, f"UID {uid}: {body[:300]!r}"
            token = t[0].decode()
            assert token in sent, f"UID {uid}: {token} was never sent"
            assert body == sent[token], f"UID {uid} ({token}): {len(body)} bytes of {len(sent[token])}"
            assert hashlib.sha256(body.split(b"\r\n\r\n", 1)[1]).hexdigest() == h[0].decode()
            assert size == len(body), (uid, size, len(body))
            assert token not in tokens, f"{token} stored twice: UIDs {tokens[token]} and {uid}"
            tokens[token] = uid
            if token in seen:
                assert seen[token] == uid, f"{token} moved from UID {seen[token]} to {uid}"
        assert all(t in tokens for t in seen), "a message seen after an earlier crash is gone"
        seen = tokens
        # The admin CLI sees the same store.
        listed = {uid: size for uid, size, _ in d.messages(ALICE)}
        assert listed == {uid: s for uid, (_, s, _) in box.items()}
        for uid in random.Random(rnd).sample(sorted(box), min(5, len(box))):
            assert d.message(ALICE, uid) == box[uid][0]

    # Still serving: a new APPEND gets a UID above all the others.
    m = imap_login(d)
    try:
        data = ok(m.append("INBOX", None, None, b"Subject: after\r\n\r\nalive\r\n"))
        mu = APPENDUID_RE.search(data[0])
        assert int(mu.group(1)) == uidvalidity and int(mu.group(2)) > max(seen.values())
    finally:
        m.logout()


# --- 5. TLS versions ------------------------------------------------------------

def s_client(port, mode, *args, timeout=30):
    """openssl s_client used as a person would: it waits for the session
    to be up (the greeting on imaps; the end of the handshake summary after
    -starttls imap, which eats the greeting), then types LOGOUT. Returns
    (exit code, everything it printed)."""
    extra = ["-starttls", "imap"] if mode == "starttls" else []
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                          "-crlf", "-ign_eof", *extra, *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    ready = re.compile(rb"\] dijk ready\r?\n" if mode == "imaps" else
                       rb"New, TLSv1\.[23], Cipher is [\s\S]*?"
                       rb"Verify return code: [^\n]*\n(?:[^\n]*\n)*?---\n")
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"s_client still running after {timeout} s:\n"
                                     + out.decode(errors="replace"))
            r, _, _ = select.select([p.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if not sent and ready.search(out):
                sent = True
                try:
                    p.stdin.write(b"a1 LOGOUT\n")
                    p.stdin.flush()
                except BrokenPipeError:
                    pass  # s_client is gone: what it printed tells why
    finally:
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        if p.poll() is None:
            p.kill()
        code = p.wait()
        p.stdout.close()
    return code, out.decode(errors="replace")


def tls_port(server, mode):
    return server.imaps_port if mode == "imaps" else server.imap_port


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_tls_versions(dijk, mode):
    port = tls_port(dijk, mode)
    cafile = ["-CAfile", str(dijk.data / "cert.pem")]
    # SECLEVEL=0 lets this OpenSSL offer TLS 1.0/1.1 at all: the refusal
    # must come from the server (a protocol_version alert).
    for old in ("-tls1", "-tls1_1"):
        code, out = s_client(port, mode, old, "-cipher", "DEFAULT:@SECLEVEL=0", *cafile)
        assert code != 0, f"{old} handshake succeeded:\n{out}"
        assert "alert protocol version" in out, out
        assert "a1 OK" not in out and "Cipher is (NONE)" in out, out
    for version, label in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        code, out = s_client(port, mode, version, *cafile)
        assert re.search(rf"Protocol\s*: {re.escape(label)}", out) or \
            f"New, {label}, Cipher is" in out, out
        assert "Verification: OK" in out, out
        assert "* BYE Logging out" in out and "a1 OK LOGOUT completed" in out, out


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_tls_logout_sends_close_notify(dijk, mode):
    """After LOGOUT the server ends TLS properly: a close_notify alert
    before the TCP close (RFC 8446 6.1, RFC 5246 7.2.1: "MUST"). Without
    it OpenSSL 3 clients report "unexpected eof while reading" and exit 1,
    and a truncation cannot be told from the end."""
    port = tls_port(dijk, mode)
    for version in ("-tls1_2", "-tls1_3"):
        code, out = s_client(port, mode, version, "-CAfile", str(dijk.data / "cert.pem"))
        assert "a1 OK LOGOUT completed" in out, out
        assert "unexpected eof while reading" not in out, (
            f"{version}: the server closed the connection without a TLS close_notify:\n"
            + out[-1500:])
        assert code == 0, out


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_tls_pipelined_logout_gets_its_reply(dijk, mode):
    """A client may send its first command as soon as TLS is up, without
    waiting for the greeting (s_client fed from a pipe does): the reply
    must not be lost. 30 tries, TLS 1.2 and 1.3."""
    lost = []
    for i in range(30):
        ctx = ssl.create_default_context(cafile=str(dijk.data / "cert.pem"))
        ctx.check_hostname = False
        if i % 2 == 0:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection(("127.0.0.1", tls_port(dijk, mode)), timeout=10)
        if mode == "starttls":
            f = raw.makefile("rb")
            assert f.readline().startswith(b"* OK"), "no greeting"
            raw.sendall(b"s1 STARTTLS\r\n")
            assert f.readline().startswith(b"s1 OK"), "STARTTLS refused"
            f.close()
        with ctx.wrap_socket(raw) as s:
            version = s.version()
            s.sendall(b"a1 LOGOUT\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not (b"* BYE Logging out\r\n" in data and data.endswith(b"a1 OK LOGOUT completed\r\n")):
            lost.append((i, version, data[-80:]))
    assert not lost, f"{len(lost)} of 30 LOGOUTs got no reply before the close: {lost[:4]}"
