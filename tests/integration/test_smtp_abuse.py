"""Hostile and broken SMTP clients: over-long and malformed lines, SMTP
smuggling through bare CR/LF, overflowing numbers, shell metacharacters
and address tricks, error floods, early talkers, STARTTLS command
injection, idle and slow clients, many connections. After each case a new
client must still be able to deliver, and nothing of a refused message may
be stored."""

import concurrent.futures
import socket
import ssl
import threading
import time

import pytest

from conftest import RawSmtp, StoreMark, assert_smtp_still_serves, smtp_deliver_raw

HOST = "mail.example.test"
OK = ["250 2.0.0 Ok"]
MAIL_OK = ["250 2.1.0 Ok"]
RCPT_OK = ["250 2.1.5 Ok"]
GO_AHEAD = ["354 End data with <CR><LF>.<CR><LF>"]
BYE = [f"221 2.0.0 {HOST} closing connection"]
BARE_CONTENT = ["554 5.6.0 Bare CR or LF in message content; rejected"]
ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
def server(smtp_shared_dijk):
    """The module's shared default server (see conftest.smtp_shared_dijk)."""
    return smtp_shared_dijk


def mark(d):
    if not hasattr(d, "mark"):
        d.mark = StoreMark(d)
    return d.mark


def assert_nothing_stored_and_still_serves(d):
    """Nothing of the refused messages was stored or queued, and a NEW
    client can deliver: bob's only new message is that client's."""
    assert mark(d).new_messages(ALICE) == []
    assert d.queue() == []
    body = smtp_deliver_raw(d.smtp_port, rcpts=(BOB,))
    assert mark(d).new_bodies(BOB) == [body]


def assert_queued(reply):
    assert len(reply) == 1 and reply[0].startswith("250 2.0.0 Ok: queued as "), reply


def open_transaction(port, rcpt=ALICE, sender="x@remote.test"):
    c = RawSmtp(port)
    c.ehlo()
    assert c.cmd(f"MAIL FROM:<{sender}>") == MAIL_OK
    assert c.cmd(f"RCPT TO:<{rcpt}>") == RCPT_OK
    return c


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- command lines --------------------------------------------------------

def test_command_line_too_long(server):
    # 512 octets with the CRLF is the limit (RFC 5321 4.5.3.1.4)...
    with RawSmtp(server.smtp_port) as c:
        line = b"NOOP " + b"x" * 505
        assert len(line) + 2 == 512
        assert c.cmd(line) == OK
        # ...one more is too long.
        c.send(b"NOOP " + b"x" * 506 + b"\r\n")
        assert c.reply() == ["500 5.5.2 Line too long"]
        c.assert_closed()
    # No CRLF at all: refused without waiting for the end of the line.
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * 20000)
        assert c.reply() == ["500 5.5.2 Line too long"]
        c.assert_closed()
    # AUTH lines may be longer, but not unbounded.
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        c.send(b"AUTH PLAIN " + b"A" * 3000 + b"\r\n")
        assert c.reply() == ["500 5.5.2 Line too long"]
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


@pytest.mark.parametrize("data", [
    b"NOOP\n",
    b"NO\nOP\r\n",
    b"NOOP\rNOOP\r\n",
    b"MAIL FROM:<x@remote.test>\nRCPT TO:<alice@example.test>\r\n",
], ids=["lf-end", "lf-inside", "cr-inside", "lf-between-commands"])
def test_bare_lf_or_cr_in_command(server, data):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(data)
        assert c.reply() == ["500 5.5.2 Bare CR or LF in command; closing"]
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


def test_nul_byte_in_command(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd(b"NOOP\x00") == ["500 5.5.2 Control character in command"]
        assert c.cmd(b"MAIL FROM:<x@remote.test>\x00RCPT TO:<alice@example.test>") == [
            "500 5.5.2 Control character in command"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(b"RCPT TO:<alice@example.test\x00@evil.test>") == [
            "500 5.5.2 Control character in command"]
        assert c.cmd(b"\x00") == ["500 5.5.2 Control character in command"]
        # None of them counted as a recipient.
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert_nothing_stored_and_still_serves(server)


def test_too_many_errors_disconnects(server):
    with RawSmtp(server.smtp_port) as c:
        for i in range(9):
            assert c.cmd(f"BOGUS{i}") == ["500 5.5.2 Command not recognized"], i
        assert c.cmd("BOGUS9") == ["500 5.5.2 Command not recognized"]
        assert c.reply() == ["421 4.7.0 Too many errors, closing connection"]
        c.assert_closed()
    # All kinds of errors count; pipelined commands after the limit are
    # not answered.
    with RawSmtp(server.smtp_port) as c:
        c.send(b"MAIL FROM:<x@remote.test>\r\n"  # 503 no EHLO
               b"EHLO client.remote.test\r\n"
               b"RCPT TO:<alice@example.test>\r\n"  # 503 no MAIL
               b"MAIL FROM:x@remote.test\r\n"  # 501
               b"MAIL FROM:<x@remote.test>\r\n"
               b"RCPT TO:<carol@remote.test>\r\n"  # 554 relay
               + b"".join(b"RCPT TO:<nobody%d@example.test>\r\n" % i for i in range(6))  # 550
               + b"RCPT TO:<alice@example.test>\r\nNOOP\r\n")
        assert c.reply() == ["503 5.5.1 Send HELO or EHLO first"]
        assert c.reply()[0] == f"250-{HOST}"
        assert c.reply() == ["503 5.5.1 Need MAIL before RCPT"]
        assert c.reply() == ["501 5.1.7 Address must be enclosed in <>"]
        assert c.reply() == MAIL_OK
        assert c.reply() == ["554 5.7.1 Relay access denied"]
        for _ in range(6):
            assert c.reply() == ["550 5.1.1 User unknown"]
        assert c.reply() == ["421 4.7.0 Too many errors, closing connection"]
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


def _early_talker(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"EHLO client.remote.test\r\nMAIL FROM:<x@remote.test>\r\n"
                  b"RCPT TO:<alice@example.test>\r\n")
        data = b""
        try:
            while not data.startswith(b"220 ") or b"2.1.5" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            data += b"<no close after 5s>"
    return data


def test_talking_before_the_greeting(dijk_factory):
    """A client that sends before the 220 is refused: every time, not only
    when its bytes happen to be there before the server looks. The greet
    pause normally spares loopback clients; this server applies it to them."""
    server = dijk_factory("greet", {"smtp.greet_pause": "300",
                                    "smtp.greet_pause_loopback": "yes"})
    refusal = b"554 5.5.0 Talking before the greeting; goodbye\r\n"
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(_early_talker, [server.smtp_port] * 50))
    wrong = [r for r in results if r != refusal]
    assert wrong == [], f"{len(wrong)} of 50 early talkers were not refused; first got {wrong[0]!r}"
    # A client that waits gets the greeting after the pause and is served.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5) as s:
        banner = s.recv(512)
    assert banner.startswith(b"220 ")
    assert time.monotonic() - started >= 0.25
    assert_nothing_stored_and_still_serves(server)


def test_greet_pause_spares_loopback_by_default(server):
    """Local programs on loopback are greeted at once (the default)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5) as s:
        banner = s.recv(512)
    assert banner.startswith(b"220 ")
    assert time.monotonic() - started < 0.25


# --- SMTP smuggling in DATA -----------------------------------------------

SMUGGLED = (b"MAIL FROM:<evil@remote.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"From: ceo@example.test\r\nSubject: smuggled\r\n\r\ninner message\r\n")


@pytest.mark.parametrize("fake_end", [
    b"\n.\n", b"\n.\r\n", b"\r.\n", b"\r\n.\n", b"\r\n.\r",
], ids=["LF.LF", "LF.CRLF", "CR.LF", "CRLF.LF", "CRLF.CR"])
def test_data_smuggling_rejected(server, fake_end):
    with open_transaction(server.smtp_port, rcpt=ALICE) as c:
        assert c.cmd("DATA") == GO_AHEAD
        # The outer message, a fake end, a second transaction, and the real
        # end: all in one write, as an attacker's relay would pass it on.
        c.send(b"Subject: outer\r\n\r\nouter message" + fake_end + SMUGGLED
               + b".\r\nQUIT\r\n")
        assert c.reply() == BARE_CONTENT
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


def test_data_smuggling_in_separate_writes(server):
    with open_transaction(server.smtp_port, rcpt=ALICE) as c:
        assert c.cmd("DATA") == GO_AHEAD
        c.send(b"Subject: outer\r\n\r\nouter message\n.\n")
        c.assert_silent(0.3)  # no reply: the bare LF did not end the data
        c.send(SMUGGLED)
        c.assert_silent(0.3)  # no 250 for the smuggled MAIL or RCPT
        c.send(b".\r\n")
        assert c.reply() == BARE_CONTENT
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


@pytest.mark.parametrize("body", [
    b"Subject: x\r\n\r\nbare\rCR inside a line\r\n",
    b"Subject: x\r\n\r\nbare\nLF inside a line\r\n",
    b"Subject: x\nFrom: bare-lf@header.test\r\n\r\nbody\r\n",
    b"Subject: x\r\n\r\nends with a bare CR\r\r\n",
], ids=["cr-in-line", "lf-in-line", "lf-in-header", "cr-before-crlf"])
def test_bare_cr_or_lf_in_content_rejected(server, body):
    with open_transaction(server.smtp_port) as c:
        assert c.cmd("DATA") == GO_AHEAD
        c.send(body + b".\r\n")
        assert c.reply() == BARE_CONTENT
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


# --- the same in BDAT -----------------------------------------------------

@pytest.mark.parametrize("chunks", [
    [b"Subject: x\r\n\r\nbare\nLF\r\n"],
    [b"Subject: x\r\n\r\nfirst\r\n", b"bare\nLF in the last chunk\r\n"],
    [b"Subject: x\r\n\r\nouter\n.\n" + SMUGGLED + b".\r\n"],
    [b"Subject: x\r\n\r\nends with a bare CR\r"],
], ids=["lf", "lf-second-chunk", "smuggling", "cr-at-end"])
def test_bdat_bare_line_ends_rejected(server, chunks):
    with open_transaction(server.smtp_port) as c:
        total = 0
        for chunk in chunks[:-1]:
            total += len(chunk)
            c.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
            assert c.reply() == [f"250 2.0.0 {total} octets received"]
        c.send(f"BDAT {len(chunks[-1])} LAST\r\n".encode() + chunks[-1])
        assert c.reply() == BARE_CONTENT
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


def test_bdat_bare_lf_in_first_chunk_ends_session(server):
    with open_transaction(server.smtp_port) as c:
        c.send(b"BDAT 12\r\nbare\nLF\r\nxxx" + b"BDAT 6 LAST\r\nend\r\n\r\n")
        assert c.reply() == BARE_CONTENT
        c.assert_closed()
    assert_nothing_stored_and_still_serves(server)


# --- long lines -----------------------------------------------------------

def test_data_line_longer_than_998_octets(server):
    ok_line = b"a" * 998 + b"\r\n"
    long_line = b"b" * 999 + b"\r\n"
    with open_transaction(server.smtp_port) as c:
        assert c.cmd("DATA") == GO_AHEAD
        c.send(b"Subject: long\r\n\r\n" + long_line + b"after\r\n.\r\n")
        assert c.reply() == ["554 5.6.0 Line longer than 998 octets; rejected"]
        assert mark(server).new_messages(ALICE) == []
        # The session continues; 998 octets is allowed.
        assert c.cmd("RCPT TO:<alice@example.test>") == ["503 5.5.1 Need MAIL before RCPT"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd("DATA") == GO_AHEAD
        body = b"Subject: long\r\n\r\n" + ok_line
        c.send(body + b".\r\n")
        assert_queued(c.reply())
        # A very long line (bigger than any read buffer) as well.
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd("DATA") == GO_AHEAD
        c.send(b"Subject: huge line\r\n\r\n" + b"c" * 300000 + b"\r\n.\r\n")
        assert c.reply() == ["554 5.6.0 Line longer than 998 octets; rejected"]
        assert c.cmd("NOOP") == OK
    assert mark(server).new_bodies(ALICE) == [body]
    assert mark(server).new_messages(BOB) == []
    assert_smtp_still_serves(server)


def test_bdat_line_longer_than_998_octets(server):
    with open_transaction(server.smtp_port) as c:
        # 999 octets split over two chunks.
        c.send(b"BDAT 500\r\n" + b"d" * 500)
        assert c.reply() == ["250 2.0.0 500 octets received"]
        c.send(b"BDAT 501 LAST\r\n" + b"d" * 499 + b"\r\n")
        assert c.reply() == ["554 5.6.0 Line longer than 998 octets; rejected"]
        assert c.cmd("NOOP") == OK
    assert_nothing_stored_and_still_serves(server)


# --- numbers --------------------------------------------------------------

def test_size_value_overflow(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        for value in ("99999999999999999999", "18446744073709551616",
                      "999999999999999999999999999999", "-1", "0x10", "1e9"):
            assert c.cmd(f"MAIL FROM:<x@remote.test> SIZE={value}") == [
                "501 5.5.4 Bad SIZE value"], value
        # The largest 64-bit value parses, and is over the limit.
        assert c.cmd("MAIL FROM:<x@remote.test> SIZE=18446744073709551615") == [
            "552 5.3.4 Message size exceeds fixed limit"]
        assert c.cmd("MAIL FROM:<x@remote.test> SIZE=100") == MAIL_OK
    assert_nothing_stored_and_still_serves(server)


def test_bdat_size_overflow(server):
    with open_transaction(server.smtp_port) as c:
        for line in ("BDAT 18446744073709551616", "BDAT FFFFFFFFFFFFFFFFF",
                     "BDAT 99999999999999999999 LAST", "BDAT 0x10", "BDAT +5"):
            assert c.cmd(line) == ["501 5.5.4 Syntax: BDAT size [LAST]"], line
        # The transaction is intact and BDAT still works.
        body = b"Subject: after\r\n\r\nx\r\n"
        c.send(f"BDAT {len(body)} LAST\r\n".encode() + body)
        assert_queued(c.reply())
    assert mark(server).new_bodies(ALICE) == [body]
    assert_smtp_still_serves(server)


# --- addresses ------------------------------------------------------------

def test_shell_metacharacters_in_addresses(server, tmp_path):
    p = tmp_path / "p"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        for line in (f"MAIL FROM:<;touch {p};>",
                     f"MAIL FROM:<;touch {p};@remote.test>",
                     f"MAIL FROM:<$(touch {p})@remote.test>",
                     f"MAIL FROM:<`touch {p}`@remote.test>",
                     f"MAIL FROM:<|touch {p}@remote.test>"):
            r = c.cmd(line)
            assert len(r) == 1 and r[0].startswith("501 5.1."), (line, r)
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        for line in ("RCPT TO:<`id`@x>",
                     f"RCPT TO:<`touch {p}`@example.test>",
                     f"RCPT TO:<|touch {p}@example.test>",
                     "RCPT TO:<alice@example.test;id>"):
            r = c.cmd(line)
            assert len(r) == 1 and r[0].startswith("501 5.1."), (line, r)
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert_nothing_stored_and_still_serves(server)
    assert not p.exists()


def test_source_routes_rejected(server):
    route = "<@a.test,@b.test:u@c.test>"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:{route}") == ["501 5.1.3 Source routes are not accepted"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:{route}") == ["501 5.1.3 Source routes are not accepted"]
        assert c.cmd("RCPT TO:<@example.test:alice@example.test>") == [
            "501 5.1.3 Source routes are not accepted"]
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert_nothing_stored_and_still_serves(server)


def test_percent_hack_rejected(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        for rcpt in ("alice%example.test@example.test", "carol%remote.test@example.test",
                     "bob%remote.test%example.test@example.test"):
            assert c.cmd(f"RCPT TO:<{rcpt}>") == ["501 5.1.3 Bad address syntax"], rcpt
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert_nothing_stored_and_still_serves(server)


def test_quoted_at_in_local_part_rejected(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        # A quoted local part without '@' is ordinary syntax.
        assert c.cmd('MAIL FROM:<"john smith"@remote.test>') == MAIL_OK
        for rcpt in ('"alice@example.test"@example.test',
                     '"carol@remote.test"@example.test',
                     '"alice\\@example.test"@example.test',
                     '"carol%remote.test"@example.test'):
            assert c.cmd(f"RCPT TO:<{rcpt}>") == ["501 5.1.3 Bad address syntax"], rcpt
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert_nothing_stored_and_still_serves(server)


# --- STARTTLS command injection -------------------------------------------

def test_starttls_discards_pipelined_commands(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\n")
        assert c.reply() == ["220 2.0.0 Ready to start TLS"]
        c.starttls(tls_context())
        r = c.cmd("EHLO client.remote.test")
        assert r[0] == f"250-{HOST}", r  # not a 250 for the RSET
        assert r[-1] == "250 CHUNKING", r
        assert c.cmd("NOOP") == OK
        c.assert_silent(0.2)
    # The classic injection: a transaction planted before the handshake.
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\n")
        assert c.reply() == ["220 2.0.0 Ready to start TLS"]
        c.starttls(tls_context())
        assert c.cmd("EHLO client.remote.test")[0] == f"250-{HOST}"
        assert c.cmd("DATA") == ["503 5.5.1 Need MAIL before DATA"]
        assert c.cmd("RCPT TO:<alice@example.test>") == ["503 5.5.1 Need MAIL before RCPT"]
    assert_nothing_stored_and_still_serves(server)


# --- time -----------------------------------------------------------------

def test_idle_timeout(dijk_factory):
    d = dijk_factory(extra_config={"smtp.timeout": "2"})
    mark(d)
    results = {}

    def idle(name, setup):
        try:
            c = RawSmtp(d.smtp_port, timeout=15)
            setup(c)
            start = time.monotonic()
            reply = c.reply()
            elapsed = time.monotonic() - start
            c.assert_closed()
            results[name] = (reply, elapsed)
        except Exception as e:  # reported below
            results[name] = (repr(e), None)

    def after_greeting(c):
        pass

    def mid_transaction(c):
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK

    def mid_data(c):
        mid_transaction(c)
        assert c.cmd("DATA") == GO_AHEAD
        c.send(b"Subject: stalled\r\n\r\npartial")

    def mid_bdat(c):
        mid_transaction(c)
        c.send(b"BDAT 100 LAST\r\nSubject: stalled\r\n\r\n")

    threads = [threading.Thread(target=idle, args=(n, f))
               for n, f in (("greeting", after_greeting), ("transaction", mid_transaction),
                            ("data", mid_data), ("bdat", mid_bdat))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name in ("greeting", "transaction", "data", "bdat"):
        reply, elapsed = results[name]
        assert reply == ["421 4.4.2 Timeout, closing connection"], (name, reply)
        assert 1.0 <= elapsed <= 5.0, (name, elapsed)
    assert_nothing_stored_and_still_serves(d)


def test_slow_client_under_the_timeout_succeeds(dijk_factory):
    d = dijk_factory(extra_config={"smtp.timeout": "2"})
    mark(d)
    pieces = [b"Subject: slow\r\n", b"\r\nfirst line\r\n", b"second ", b"line\r\n", b"last\r\n"]
    with RawSmtp(d.smtp_port, timeout=15) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd("DATA") == GO_AHEAD
        start = time.monotonic()
        for piece in pieces:
            time.sleep(0.6)  # each pause well under the 2s timeout
            c.send(piece)
        c.send(b".\r\n")
        assert_queued(c.reply())
        assert time.monotonic() - start > 2.5  # longer than the timeout in all
        assert c.cmd("QUIT") == BYE
    assert mark(d).new_bodies(ALICE) == [b"".join(pieces)]
    assert_smtp_still_serves(d)


# --- many clients ---------------------------------------------------------

def test_many_simultaneous_connections(server):
    socks = []
    try:
        for _ in range(200):
            socks.append(RawSmtp(server.smtp_port, greeting=False, timeout=15))
        for c in socks:
            assert c.reply() == [f"220 {HOST} ESMTP dijk"]
        # While they are all open, a normal delivery works...
        assert_smtp_still_serves(server)
        # ...and the idle ones still answer.
        for c in socks[::10]:
            assert c.cmd("NOOP") == OK
        for c in socks[:100]:
            c.send(b"QUIT\r\n")
        for c in socks[:100]:
            assert c.reply() == BYE
    finally:
        for c in socks:
            c.close()
    assert_smtp_still_serves(server)
