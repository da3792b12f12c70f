"""Hostile SMTP input, beyond tests/integration/test_smtp_abuse.py: more
smuggling variants (counted: 0 or 1 message, never 2), BDAT chunks that
carry fake ends and commands, sizes that overflow, over-long names and
addresses, NUL and invalid UTF-8, pipelining and error floods before and
without authentication, slow clients, and TLS downgrades on every SMTP
TLS endpoint. After each case a NEW client must deliver exactly its
message, and the module's server must not have crashed."""

import socket
import ssl
import threading
import time

import pytest

from conftest import (SLOW, ALICE, BOB, RawSmtp, assert_smtp_serves, split_received,
                      tls_handshake)

HOST = "mail.example.test"
OK = ["250 2.0.0 Ok"]
MAIL_OK = ["250 2.1.0 Ok"]
RCPT_OK = ["250 2.1.5 Ok"]
GO_AHEAD = ["354 End data with <CR><LF>.<CR><LF>"]
BARE = ["554 5.6.0 Bare CR or LF in message content; rejected"]
TOO_MANY_ERRORS = ["421 4.7.0 Too many errors, closing connection"]
TIMEOUT = 3
SERVER_CONFIG = {"smtp.timeout": str(TIMEOUT)}


@pytest.fixture
def server(sec_server):
    return sec_server


class Count:
    """Messages of alice and bob before a test, to count what it added."""

    def __init__(self, d):
        self.d = d
        self.before = {u: {uid for uid, _, _ in d.messages(u)} for u in (ALICE, BOB)}

    def new(self, user):
        return [split_received(self.d.message(user, uid))[1]
                for uid, _, _ in self.d.messages(user) if uid not in self.before[user]]


def transaction(port, rcpt=ALICE, sender="x@remote.test"):
    c = RawSmtp(port)
    c.ehlo()
    assert c.cmd(f"MAIL FROM:<{sender}>") == MAIL_OK
    assert c.cmd(f"RCPT TO:<{rcpt}>") == RCPT_OK
    return c


def queued(reply):
    return len(reply) == 1 and reply[0].startswith("250 2.0.0 Ok: queued as ")


def reply_or_close(c):
    """The next reply, or None when the server closed instead."""
    try:
        return c.reply()
    except (EOFError, ConnectionResetError):
        return None


# --- SMTP smuggling: never two messages -----------------------------------------

SMUGGLED = (b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\ninner\r\n")

FAKE_ENDS = {
    "LF.CR": b"\n.\r",
    "CR.CR": b"\r.\r",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "CRLF.NUL.CRLF": b"\r\n.\x00\r\n",
    "NUL.CRLF": b"\r\n\x00.\r\n",
    "CRLF.SP.CRLF": b"\r\n. \r\n",
    "CRLF..CRLF": b"\r\n..\r\n",
    "LF.LF.CRLF": b"\n.\n\r\n",
    "CRCRLF.CRLF": b"\r\r\n.\r\n",
    "CRLF.LFCRLF": b"\r\n.\n\r\n",
    "start-dot-LF": None,  # the fake end is the very first line of the data
}


@pytest.mark.parametrize("name", list(FAKE_ENDS))
def test_smuggling_variant_gives_at_most_one_message(server, name):
    count = Count(server)
    fake = FAKE_ENDS[name]
    with transaction(server.smtp_port) as c:
        assert c.cmd("DATA") == GO_AHEAD
        if fake is None:
            data = b".\n" + SMUGGLED + b".\r\n"
        else:
            data = b"Subject: outer\r\n\r\nouter" + fake + SMUGGLED + b".\r\n"
        c.send(data + b"QUIT\r\n")
        r = c.reply()
        if r == BARE:
            c.assert_closed()
        else:
            # Dot-stuffed or a dot followed by other bytes: one ordinary
            # message holding the "smuggled" text as text.
            assert queued(r), r
            assert c.reply() == [f"221 2.0.0 {HOST} closing connection"]
    # The smuggled recipient got nothing; alice got at most the outer one.
    assert count.new(BOB) == []
    outer = count.new(ALICE)
    assert len(outer) <= 1
    if r == BARE:
        assert outer == []
    else:
        assert b"MAIL FROM:<evil@remote.test>" in outer[0]
    assert_smtp_serves(server)


def test_bdat_chunk_with_crlf_dot_crlf_and_commands_is_one_message(server):
    """BDAT data is counted, never scanned for an end: CRLF.CRLF and
    commands inside a chunk are just content."""
    count = Count(server)
    body = b"Subject: chunked\r\n\r\nfirst\r\n.\r\n" + SMUGGLED + b"after\r\n"
    with transaction(server.smtp_port) as c:
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        assert queued(c.reply())
        assert c.cmd("NOOP") == OK
    assert count.new(BOB) == []
    assert count.new(ALICE) == [body]
    assert_smtp_serves(server)


def test_bdat_chunk_shorter_than_announced_swallows_no_command(server):
    """A chunk announced bigger than what follows takes the next command
    lines as data; they are never run as commands."""
    count = Count(server)
    with transaction(server.smtp_port) as c:
        c.send(b"BDAT 200 LAST\r\nSubject: short\r\n\r\nx\r\n" + SMUGGLED)
        c.assert_silent(0.4)  # still reading the chunk: no 250 for MAIL/RCPT
    assert count.new(BOB) == [] and count.new(ALICE) == []
    assert_smtp_serves(server)


def test_data_pipelined_before_354_is_one_message(server):
    """A client that does not wait for 354 (RFC 2920 forbids it) still
    gets one message, never a second one from the bytes after the end."""
    count = Count(server)
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
               b"Subject: eager\r\n\r\nbody\r\n.\r\n" + SMUGGLED + b".\r\n")
        replies = []
        while True:
            r = reply_or_close(c)
            if r is None or r[0].startswith(("221", "421", "5")) and not r[0].startswith("554 5.5.1"):
                replies.append(r)
                break
            replies.append(r)
            if len(replies) >= 8:
                break
    assert len(count.new(ALICE)) <= 1
    assert len(count.new(BOB)) <= 1
    assert len(count.new(ALICE)) + len(count.new(BOB)) <= 2
    # The smuggled DATA (after a legal end) is a new transaction of the same
    # client: allowed, but it must have gone through every check; what must
    # never happen is a message that did not go through MAIL and RCPT.
    for body in count.new(BOB):
        assert body == b"Subject: smuggled\r\n\r\ninner\r\n", body
    assert_smtp_serves(server)


# --- numbers that overflow ----------------------------------------------------

@pytest.mark.parametrize("line,reply", [
    ("BDAT 4294967296", "consumed"),
    ("BDAT 18446744073709551615 LAST", "consumed"),
    ("BDAT 000000000000000000000000000000000000000000000000000000001 LAST", None),
    ("BDAT -1", "501 5.5.4 Syntax: BDAT size [LAST]"),
    ("BDAT 1 LAST EXTRA", "501 5.5.4 Syntax: BDAT size [LAST]"),
    ("BDAT", "501 5.5.4 Syntax: BDAT size [LAST]"),
], ids=["2^32", "2^64-1", "leading-zeros", "negative", "extra", "empty"])
def test_bdat_size_edge_cases(server, line, reply):
    count = Count(server)
    with transaction(server.smtp_port) as c:
        if reply is None:
            # Either refused as a number too long to be one, or a chunk
            # of one octet.
            c.send(line.encode() + b"\r\n")
            c.sock.settimeout(0.3)
            try:
                r = c.reply()
            except socket.timeout:
                r = None
            c.sock.settimeout(10)
            if r is None:
                c.send(b"x")
                r = c.reply()
                assert queued(r), r
            else:
                assert r == ["501 5.5.4 Syntax: BDAT size [LAST]"], r
        elif reply == "consumed":
            # RFC 3030: a chunk is read whatever its fate; one past the
            # size limit is read and dropped, never buffered, and the
            # 552 comes at its end. Nothing is answered before.
            c.send(line.encode() + b"\r\n" + b"z" * 300000)
            c.assert_silent(0.5)
            c.close()
            assert count.new(ALICE) == []
            assert_smtp_serves(server)
            return
        else:
            r = c.cmd(line)
            assert r == [reply], r
        if reply is not None and reply.startswith("552"):
            pass
        else:
            # The session is in step: a plain NOOP is answered as such.
            assert c.cmd("RSET") == OK
            assert c.cmd("NOOP") == OK
    assert count.new(BOB) == []
    assert_smtp_serves(server)


@pytest.mark.parametrize("param,reply", [
    ("SIZE=4294967296", "552 5.3.4 Message size exceeds fixed limit"),
    ("SIZE=", "501 5.5.4 Bad SIZE value"),
    ("SIZE=1 SIZE=2", None),
    ("SIZE=00000000000000000000000000000000000000001", None),
    ("BODY=8BITMIME SIZE=99999999999999999999", "501 5.5.4 Bad SIZE value"),
    ("BODY=NOSUCH", None),
    ("NOSUCHPARAM=1", None),
])
def test_mail_parameters_overflow_and_junk(server, param, reply):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<x@remote.test> {param}")
        if reply:
            assert r == [reply], r
        else:
            assert len(r) == 1 and r[0][:3] in ("250", "501", "555"), r
        assert c.cmd("RSET") == OK
    assert_smtp_serves(server)


# --- over-long names and addresses --------------------------------------------

@pytest.mark.parametrize("line", [
    "EHLO " + "a" * 500,
    "HELO " + "b." * 250,
    "MAIL FROM:<" + "l" * 65 + "@remote.test>",
    "MAIL FROM:<x@" + "d" * 64 + ".test>",
    "MAIL FROM:<x@" + ".".join(["abc"] * 100) + ">",
    "MAIL FROM:<" + "a." * 120 + "a@remote.test>",
])
def test_overlong_names_and_addresses_are_refused_cleanly(server, line):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd(line)
        if line.startswith("MAIL"):
            assert r == [r[0]] and r[0].startswith("501 5.1."), r
        else:
            # A long greeting name is refused or cut to what is kept.
            assert r[0].startswith(("501 5.", f"250-{HOST}", f"250 {HOST}")), r
        assert c.cmd("RSET") == OK
    assert_smtp_serves(server)


def test_local_part_64_is_fine_65_is_not(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<" + "l" * 64 + "@remote.test>") == MAIL_OK
        assert c.cmd("RSET") == OK
        r = c.cmd("MAIL FROM:<" + "l" * 65 + "@remote.test>")
        assert r[0].startswith("501 5.1."), r
    assert_smtp_serves(server)


# --- NUL and invalid UTF-8 ----------------------------------------------------

def test_nul_in_data_is_stored_byte_for_byte_or_refused(server):
    count = Count(server)
    body = b"Subject: nul\r\n\r\nbefore\x00after\r\n"
    with transaction(server.smtp_port) as c:
        assert c.cmd("DATA") == GO_AHEAD
        c.send(body + b".\r\n")
        r = c.reply()
        assert queued(r) or r[0].startswith("554 5.6."), r
        assert c.cmd("NOOP") == OK
    got = count.new(ALICE)
    assert got == ([body] if queued(r) else []), got
    assert_smtp_serves(server)


@pytest.mark.parametrize("address", [
    b"\xff\xfe@remote.test", b"caf\xc3@remote.test", b"\xc0\xafx@remote.test",
    b"x@\xed\xa0\x80.test", b"\xf4\x90\x80\x80@remote.test",
], ids=["ff-fe", "truncated", "overlong-slash", "surrogate", "above-10ffff"])
def test_invalid_utf8_addresses_refused_even_with_smtputf8(server, address):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd(b"MAIL FROM:<" + address + b"> SMTPUTF8")
        assert r[0].startswith("501 5.") or r[0].startswith("553 5."), r
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        r = c.cmd(b"RCPT TO:<" + address.replace(b"remote.test", b"example.test") + b">")
        assert r[0].startswith(("501 5.", "553 5.", "550 5.")), r
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert_smtp_serves(server)


def test_8bit_address_without_smtputf8_refused(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<jörg@remote.test>")
        assert r[0].startswith(("501 5.", "553 5.", "555 5.")), r
        assert c.cmd("MAIL FROM:<jörg@remote.test> SMTPUTF8") == MAIL_OK
    assert_smtp_serves(server)


# --- floods -------------------------------------------------------------------

def test_pipelined_noop_flood_is_answered_in_order(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"NOOP\r\n" * 5000 + b"QUIT\r\n")
        for i in range(5000):
            assert c.reply() == OK, i
        assert c.reply() == [f"221 2.0.0 {HOST} closing connection"]
        c.assert_closed()
    assert_smtp_serves(server)


def test_recipient_flood_is_capped(server):
    count = Count(server)
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<x@remote.test>\r\n" + b"RCPT TO:<alice@example.test>\r\n" * 150)
        assert c.reply() == MAIL_OK
        replies = [c.reply() for _ in range(150)]
        assert replies[:100] == [RCPT_OK] * 100
        assert set(map(tuple, replies[100:])) == {("452 4.5.3 Too many recipients",)}
        assert c.cmd("DATA") == GO_AHEAD
        c.send(b"Subject: many\r\n\r\nx\r\n.\r\n")
        assert queued(c.reply())
    # 100 times the same recipient is still one copy for her.
    assert len(count.new(ALICE)) == 1
    assert_smtp_serves(server)


def test_command_flood_before_auth_on_submission(server):
    """Submission without AUTH: every transaction command is refused, and
    a flood of them ends the connection."""
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@example.test>\r\n" * 50)
        replies = []
        while True:
            r = reply_or_close(c)
            if r is None:
                break
            replies.append(r[0])
            if r == TOO_MANY_ERRORS:
                break
        assert replies[-1] == TOO_MANY_ERRORS[0], replies
        assert all(r.startswith("530 5.7.0") for r in replies[:-1]), replies
        assert len(replies) <= 12
    assert_smtp_serves(server)


def test_auth_guessing_flood_is_cut_off(server):
    import base64
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        replies = []
        for i in range(30):
            token = base64.b64encode(f"\0alice@example.test\0guess{i}".encode()).decode()
            try:
                c.send(f"AUTH PLAIN {token}\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            r = reply_or_close(c)
            if r is None:
                break
            replies.append(r[0])
            if r[0].startswith("421"):
                break
        assert replies and all(r.startswith(("535 5.7.8", "421 4.7.0", "454 4.7.0"))
                               for r in replies), replies
        assert len(replies) < 30, "thirty wrong passwords on one connection were all answered"
    assert_smtp_serves(server, rcpt=ALICE)


def test_unknown_command_flood_in_one_write(server):
    with RawSmtp(server.smtp_port) as c:
        c.send(b"XYZZY\r\n" * 10000)
        replies = []
        while True:
            r = reply_or_close(c)
            if r is None:
                break
            replies.append(r[0])
            if r == TOO_MANY_ERRORS:
                break
        assert replies[-1] == TOO_MANY_ERRORS[0] and len(replies) <= 12, replies[-3:]
        rest = c.rest_until_close()
        assert rest == b"", rest[:100]
    assert_smtp_serves(server)


# --- slow clients -------------------------------------------------------------

def test_slowloris_trickle_is_cut_off_and_blocks_nobody(server):
    """Clients that send one byte of a command every second never finish a
    line. Each is cut off within a bounded time even though it is never
    silent for the whole timeout, and meanwhile a normal client delivers."""
    results = []
    started = time.monotonic()

    def trickle():
        try:
            with RawSmtp(server.smtp_port, timeout=30) as c:
                c.ehlo()
                c.sock.settimeout(0.9)
                sent = 0
                while time.monotonic() - started < 4 * TIMEOUT + 4:
                    try:
                        c.send(b"N")
                        sent += 1
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    try:
                        data = c.sock.recv(512)
                        if data:
                            c.buf += data
                        if not data or b"\r\n" in c.buf:
                            break
                    except socket.timeout:
                        pass
                results.append((time.monotonic() - started, c.buf))
        except Exception as e:  # noqa: BLE001 - reported below
            results.append((None, repr(e)))

    threads = [threading.Thread(target=trickle) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # While they trickle, a new client is served at once.
    t0 = time.monotonic()
    assert_smtp_serves(server)
    assert time.monotonic() - t0 < 5 * SLOW
    for t in threads:
        t.join(60)
    assert len(results) == 20
    for elapsed, got in results:
        assert elapsed is not None, got
        assert got.startswith(b"421 4.4.2 "), got
        assert elapsed <= 2 * TIMEOUT + 3 * SLOW, elapsed


def test_slow_data_trickle_is_cut_off(server):
    """The same inside DATA: a message that never ends is not kept open
    forever, and nothing of it is stored."""
    count = Count(server)
    with transaction(server.smtp_port) as c:
        assert c.cmd("DATA") == GO_AHEAD
        c.send(b"Subject: trickle\r\n\r\n")
        c.sock.settimeout(0.9)
        t0 = time.monotonic()
        got = b""
        while time.monotonic() - t0 < 4 * TIMEOUT + 4:
            try:
                c.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                data = c.sock.recv(512)
                got += data
                if not data or b"\r\n" in got:
                    break
            except socket.timeout:
                pass
        assert got.startswith(b"421 4.4.2 "), got
        assert time.monotonic() - t0 <= 2 * TIMEOUT + 3 * SLOW
    assert count.new(ALICE) == []
    assert_smtp_serves(server)


# --- TLS downgrades -----------------------------------------------------------

SMTP_TLS = ["smtp-starttls", "submission-starttls", "submissions"]


@pytest.mark.parametrize("endpoint", SMTP_TLS)
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_refused(server, endpoint, version):
    v = getattr(ssl.TLSVersion, version)
    ok, info, _ = tls_handshake(server, endpoint, minimum=v, maximum=v)
    assert not ok, f"{version} accepted on {endpoint}: {info}"
    # The same endpoint takes a modern client.
    ok, info, cipher = tls_handshake(server, endpoint)
    assert ok and info in ("TLSv1.2", "TLSv1.3"), info
    assert_smtp_serves(server)


@pytest.mark.parametrize("endpoint", SMTP_TLS)
def test_weak_tls12_suites_refused(server, endpoint):
    """Suites outside Mozilla intermediate (no forward secrecy, CBC, NULL,
    3DES) are refused; an intermediate suite is accepted."""
    offered = 0
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
                 "ECDHE-ECDSA-AES128-SHA", "NULL-SHA256:ECDHE-RSA-NULL-SHA:ECDHE-ECDSA-NULL-SHA",
                 "DES-CBC3-SHA:ECDHE-RSA-DES-CBC3-SHA"):
        ok, info, cipher = tls_handshake(server, endpoint, maximum=ssl.TLSVersion.TLSv1_2,
                                         ciphers=weak)
        assert not ok, f"{weak} accepted on {endpoint}: {cipher}"
        offered += info != "not offered"
    assert offered >= 4, "this OpenSSL could offer too few of the weak suites"
    ok, info, cipher = tls_handshake(
        server, endpoint, maximum=ssl.TLSVersion.TLSv1_2,
        ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
    assert ok and info == "TLSv1.2" and cipher.endswith("AES128-GCM-SHA256"), (info, cipher)
    assert_smtp_serves(server)


def test_starttls_twice_and_starttls_inside_a_transaction(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        r = c.cmd("STARTTLS")
        assert r[0].startswith(("503 5.5.1", "220 2.0.0")), r
        if r[0].startswith("220"):
            c.starttls(ctx)
            c.ehlo()
            # The transaction before TLS is gone (RFC 3207 4.2).
            assert c.cmd("RCPT TO:<alice@example.test>") == ["503 5.5.1 Need MAIL before RCPT"]
        else:
            assert c.cmd("RSET") == OK
            assert c.cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
            c.starttls(ctx)
            c.ehlo()
        r = c.cmd("STARTTLS")
        assert r[0].startswith("503 5.5.1"), r
        assert c.cmd("NOOP") == OK
    assert_smtp_serves(server)
