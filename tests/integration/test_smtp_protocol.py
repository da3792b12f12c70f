"""The SMTP protocol as dijk speaks it, command by command, over raw
sockets (exact reply lines), smtplib and swaks: the greeting and EHLO,
the mail transaction, PIPELINING, CHUNKING (BDAT), SIZE, 8BITMIME,
SMTPUTF8, recipients and relaying, submission with AUTH, and TLS."""

import base64
import smtplib
import ssl
import subprocess

import pytest

from conftest import (PASSWORDS, RawSmtp, StoreMark, assert_smtp_still_serves,
                      split_received)

HOST = "mail.example.test"
GREETING = [f"220 {HOST} ESMTP dijk"]
OK = ["250 2.0.0 Ok"]
MAIL_OK = ["250 2.1.0 Ok"]
RCPT_OK = ["250 2.1.5 Ok"]
GO_AHEAD = ["354 End data with <CR><LF>.<CR><LF>"]
BYE = [f"221 2.0.0 {HOST} closing connection"]
ALICE = "alice@example.test"
BOB = "bob@example.test"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(data):
    return base64.b64encode(data).decode()


def plain_response(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}".encode())


def assert_queued(reply):
    assert len(reply) == 1 and reply[0].startswith("250 2.0.0 Ok: queued as "), reply


@pytest.fixture
def server(smtp_shared_dijk):
    """The module's shared default server (see conftest.smtp_shared_dijk)."""
    return smtp_shared_dijk


def mark(d):
    if not hasattr(d, "mark"):
        d.mark = StoreMark(d)
    return d.mark


def new_messages(d, user):
    """The messages of user stored since the test began."""
    return mark(d).new_messages(user)


def stored_bodies(d, user):
    """The same, as the bytes after dijk's Received header."""
    return mark(d).new_bodies(user)


def send_data(c, body):
    """DATA with body (already dot-stuffed, ending in CRLF); returns the reply."""
    assert c.cmd("DATA") == GO_AHEAD
    c.send(body + b".\r\n")
    return c.reply()


def login(c, user):
    r = c.cmd(f"AUTH PLAIN {plain_response(user, PASSWORDS[user])}")
    assert r == ["235 2.7.0 Authentication successful"], r


def expected_ehlo(tls_offered=True, auth=False, size=52428800):
    lines = [f"250-{HOST}", "250-PIPELINING", f"250-SIZE {size}", "250-8BITMIME",
             "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES"]
    if tls_offered:
        lines.append("250-STARTTLS")
    if auth:
        lines.append("250-AUTH PLAIN LOGIN")
    lines.append("250 CHUNKING")
    return lines


# --- greeting, EHLO, HELO -------------------------------------------------

def test_greeting_and_ehlo_on_each_port(server):
    with RawSmtp(server.smtp_port) as c:
        assert c.greeting == GREETING
        assert c.cmd("EHLO client.remote.test") == expected_ehlo()
        # EHLO may be repeated; the answer is the same.
        assert c.cmd("ehlo client.remote.test") == expected_ehlo()
    with RawSmtp(server.submission_port) as c:
        assert c.greeting == GREETING
        assert c.cmd("EHLO client.remote.test") == expected_ehlo(auth=True)


def test_helo_gives_single_line_and_plain_smtp(server):
    body = b"Subject: helo\r\n\r\nvia HELO\r\n"
    with RawSmtp(server.smtp_port) as c:
        assert c.cmd("HELO client.remote.test") == [f"250 {HOST}"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, body))
        assert c.cmd("QUIT") == BYE
    [(uid, _, _)] = new_messages(server, ALICE)
    header, content = split_received(server.message(ALICE, uid))
    assert header.startswith(b"Received: from client.remote.test ([127.0.0.1])\r\n")
    assert b"by mail.example.test (dijk) with SMTP id " in header
    assert content == body


def test_helo_ehlo_need_a_name(server):
    with RawSmtp(server.smtp_port) as c:
        assert c.cmd("EHLO") == ["501 5.5.4 Syntax: EHLO hostname"]
        assert c.cmd("HELO") == ["501 5.5.4 Syntax: HELO hostname"]
        assert c.cmd("EHLO   ") == ["501 5.5.4 Syntax: EHLO hostname"]
        # No HELO accepted, so no transaction either.
        assert c.cmd("MAIL FROM:<x@remote.test>") == ["503 5.5.1 Send HELO or EHLO first"]


# --- the transaction ------------------------------------------------------

def test_mail_rcpt_data_flow_stores_exact_bytes(server):
    body = (b"From: x@remote.test\r\nTo: alice@example.test\r\nSubject: flow\r\n\r\n"
            b"line one\r\n\r\n  indented\ttab\r\nlast line\r\n")
    with RawSmtp(server.smtp_port) as c:
        assert c.greeting == GREETING
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, body))
        # A second transaction on the same connection.
        assert c.cmd("MAIL FROM:<>") == MAIL_OK  # the null sender is fine on MX
        assert c.cmd("RCPT TO: <bob@example.test>") == RCPT_OK  # space tolerated
        assert_queued(send_data(c, b"Subject: bounce\r\n\r\nsecond\r\n"))
        assert c.cmd("QUIT") == BYE
        c.assert_closed()
    [(uid, size, _)] = new_messages(server, ALICE)
    stored = server.message(ALICE, uid)
    assert size == len(stored)
    header, content = split_received(stored)
    assert header.startswith(b"Received: from client.remote.test ([127.0.0.1])\r\n"
                             b"\tby mail.example.test (dijk) with ESMTP id ")
    assert content == body
    assert stored_bodies(server, BOB) == [b"Subject: bounce\r\n\r\nsecond\r\n"]


def test_rset_clears_the_transaction(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd("RSET") == OK
        assert c.cmd("DATA") == ["503 5.5.1 Need MAIL before DATA"]
        assert c.cmd("RCPT TO:<bob@example.test>") == ["503 5.5.1 Need MAIL before RCPT"]
        assert c.cmd("RSET extra") == ["501 5.5.4 No parameters allowed"]
        # A new sender is accepted (not "Sender already specified").
        assert c.cmd("MAIL FROM:<y@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{BOB}>") == RCPT_OK
        assert_queued(send_data(c, b"Subject: after rset\r\n\r\nx\r\n"))
        assert c.cmd("RSET") == OK  # RSET outside a transaction is fine
        assert c.cmd("QUIT") == BYE
    # Only bob, the recipient of the second transaction, got mail.
    assert new_messages(server, ALICE) == []
    assert stored_bodies(server, BOB) == [b"Subject: after rset\r\n\r\nx\r\n"]


def test_noop_help_vrfy_expn(server):
    with RawSmtp(server.smtp_port) as c:
        # These work before EHLO too.
        assert c.cmd("NOOP") == OK
        assert c.cmd("noop with an argument") == OK
        r = c.cmd("HELP")
        assert len(r) == 1 and r[0].startswith("214 2.0.0 Commands: "), r
        for verb in ("EHLO", "MAIL", "RCPT", "DATA", "BDAT", "QUIT"):
            assert verb in r[0].split()
        assert c.cmd("VRFY alice") == ["252 2.5.0 Cannot VRFY user, but will accept message"]
        assert c.cmd("VRFY <nobody@example.test>") == [
            "252 2.5.0 Cannot VRFY user, but will accept message"]
        assert c.cmd("VRFY") == ["501 5.5.4 Argument required"]
        assert c.cmd("EXPN staff") == ["502 5.5.1 EXPN not available"]
        assert c.cmd("EXPN") == ["501 5.5.4 Argument required"]
        assert c.cmd("NOOP") == OK


def test_quit_closes(server):
    with RawSmtp(server.smtp_port) as c:
        assert c.cmd("QUIT now") == ["501 5.5.4 No parameters allowed"]
        assert c.cmd("QUIT") == BYE
        c.assert_closed()
    with RawSmtp(server.smtp_port) as c:
        # QUIT in the middle of a transaction: nothing is delivered.
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd("quit") == BYE
        c.assert_closed()
    assert new_messages(server, ALICE) == []


def test_unknown_command(server):
    with RawSmtp(server.smtp_port) as c:
        for line in ("FOO", "MAILX FROM:<x@remote.test>", "EHLOX a", "TURN", "ETRN example.test",
                     "X" * 40):
            assert c.cmd(line) == ["500 5.5.2 Command not recognized"], line
        assert c.cmd("NOOP") == OK


def test_malformed_arguments(server):
    long_local = "a" * 65
    too_long = "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "test"  # 248 octets
    too_long = "x" * 10 + too_long  # 258 octets inside <>
    mail_cases = [
        ("MAIL FROM:alice@example.test", "501 5.1.7 Address must be enclosed in <>"),
        ("MAIL FROM:<x@remote.test", "501 5.1.7 Address must be enclosed in <>"),
        ("MAIL FROM:", "501 5.1.7 Address must be enclosed in <>"),
        ("MAIL <x@remote.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL TO:<x@remote.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL FROM:<x@remote.test>junk", "501 5.5.4 Space expected after the address"),
        ("MAIL FROM:<x@remote.test> FOO=bar", "555 5.5.4 Unsupported parameter"),
        ("MAIL FROM:<x@remote.test> SIZE=12k", "501 5.5.4 Bad SIZE value"),
        ("MAIL FROM:<x@remote.test> SIZE=", "501 5.5.4 Bad SIZE value"),
        ("MAIL FROM:<x@remote.test> BODY=9BIT", "501 5.5.4 Bad BODY value"),
        ("MAIL FROM:<nodomain>", "501 5.1.3 Address must have a domain"),
        ("MAIL FROM:<x@>", "501 5.1.2 Bad domain syntax"),
        ("MAIL FROM:<x@-bad.test>", "501 5.1.2 Bad domain syntax"),
        ("MAIL FROM:<x@bad..test>", "501 5.1.2 Bad domain syntax"),
        ("MAIL FROM:<x@bad_domain.test>", "501 5.1.2 Bad domain syntax"),
        ("MAIL FROM:<x..y@remote.test>", "501 5.1.3 Bad address syntax"),
        ("MAIL FROM:<.x@remote.test>", "501 5.1.3 Bad address syntax"),
        ("MAIL FROM:<x y@remote.test>", "501 5.1.3 Bad address syntax"),
        ("MAIL FROM:<@remote.test>", "501 5.1.3 Source routes are not accepted"),
        (f"MAIL FROM:<{long_local}@remote.test>", "501 5.1.3 Bad address syntax"),
        (f"MAIL FROM:<{too_long}>", "501 5.1.3 Address too long"),
    ]
    rcpt_cases = [
        ("RCPT TO:<>", "501 5.1.3 Empty address not allowed here"),
        ("RCPT TO:alice@example.test", "501 5.1.7 Address must be enclosed in <>"),
        ("RCPT FROM:<alice@example.test>", "501 5.5.4 Syntax: RCPT TO:<address>"),
        ("RCPT TO:<alice@example.test> NOTIFY=NEVER", "555 5.5.4 Unsupported parameter"),
        ("RCPT TO:<alice>", "501 5.1.3 Address must have a domain"),
        ("DATA please", "501 5.5.4 No parameters allowed"),
        ("BDAT", "501 5.5.4 Syntax: BDAT size [LAST]"),
        ("BDAT ten", "501 5.5.4 Syntax: BDAT size [LAST]"),
        ("BDAT -1", "501 5.5.4 Syntax: BDAT size [LAST]"),
        ("BDAT 10 FIRST", "501 5.5.4 Syntax: BDAT size [LAST]"),
        ("BDAT 10 LAST more", "501 5.5.4 Syntax: BDAT size [LAST]"),
        ("STARTTLS now", "501 5.5.4 No parameters allowed"),
    ]
    # One connection per case: each error counts toward the session's limit.
    for line, want in mail_cases:
        with RawSmtp(server.smtp_port) as c:
            c.ehlo()
            assert c.cmd(line) == [want], line
            # The session goes on, and no sender was taken.
            assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK, line
    for line, want in rcpt_cases:
        with RawSmtp(server.smtp_port) as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
            assert c.cmd(line) == [want], line
            assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK, line
            assert c.cmd("RSET") == OK
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd("AUTH") == ["501 5.5.4 Syntax: AUTH mechanism [initial-response]"]
        assert c.cmd("AUTH PLAIN a b") == ["501 5.5.4 Syntax: AUTH mechanism [initial-response]"]
    assert new_messages(server, ALICE) == []


def test_commands_out_of_order(server):
    with RawSmtp(server.smtp_port) as c:
        assert c.cmd("MAIL FROM:<x@remote.test>") == ["503 5.5.1 Send HELO or EHLO first"]
        assert c.cmd(f"RCPT TO:<{ALICE}>") == ["503 5.5.1 Need MAIL before RCPT"]
        assert c.cmd("DATA") == ["503 5.5.1 Need MAIL before DATA"]
        c.ehlo()
        assert c.cmd(f"RCPT TO:<{ALICE}>") == ["503 5.5.1 Need MAIL before RCPT"]
        assert c.cmd("DATA") == ["503 5.5.1 Need MAIL before DATA"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd("MAIL FROM:<y@remote.test>") == ["503 5.5.1 Sender already specified"]
        # MAIL accepted but no recipient yet.
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
        assert c.cmd("RCPT TO:<nobody@example.test>") == ["550 5.1.1 User unknown"]
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    with RawSmtp(server.smtp_port) as c:
        # EHLO in the middle of a transaction resets it (RFC 5321 4.1.4).
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        c.ehlo()
        assert c.cmd("DATA") == ["503 5.5.1 Need MAIL before DATA"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
    with RawSmtp(server.submission_port) as c:
        user = ALICE
        r = c.cmd(f"AUTH PLAIN {plain_response(user, PASSWORDS[user])}")
        assert r == ["503 5.5.1 Send EHLO first"], r
    assert new_messages(server, ALICE) == []
    assert_smtp_still_serves(server)


# --- PIPELINING -----------------------------------------------------------

def test_pipelining_replies_in_order(server):
    body = b"Subject: pipelined\r\n\r\nall in one write\r\n"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<x@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        assert c.reply() == MAIL_OK
        assert c.reply() == RCPT_OK
        assert c.reply() == ["550 5.1.1 User unknown"]
        assert c.reply() == RCPT_OK
        assert c.reply() == GO_AHEAD
        c.send(body + b".\r\nQUIT\r\n")
        assert_queued(c.reply())
        assert c.reply() == BYE
        c.assert_closed()
    assert stored_bodies(server, ALICE) == [body]
    assert stored_bodies(server, BOB) == [body]


def test_pipelining_whole_session_in_one_write(server):
    body = b"Subject: one write\r\n\r\nx\r\n"
    with RawSmtp(server.smtp_port) as c:
        c.send(b"EHLO client.remote.test\r\nMAIL FROM:<x@remote.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\n" + body + b".\r\n"
               b"MAIL FROM:<y@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
               + body + b".\r\nQUIT\r\n")
        assert c.reply() == expected_ehlo()
        for _ in range(2):
            assert c.reply() == MAIL_OK
            assert c.reply() == RCPT_OK
            assert c.reply() == GO_AHEAD
            assert_queued(c.reply())
        assert c.reply() == BYE
        c.assert_closed()
    assert stored_bodies(server, BOB) == [body]
    assert stored_bodies(server, ALICE) == [body]


# --- CHUNKING (BDAT) ------------------------------------------------------

def test_bdat_chunks_stored_exactly(server):
    # A CRLF split across two chunks, and a leading dot that BDAT must NOT
    # unstuff.
    chunks = [b"Subject: chunked\r\n\r\nfirst part\r",
              b"\n..not unstuffed\r\n.\r\n",
              b"last chunk\r\n"]
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        total = 0
        for chunk in chunks[:-1]:
            total += len(chunk)
            c.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
            assert c.reply() == [f"250 2.0.0 {total} octets received"]
        c.send(f"BDAT {len(chunks[-1])} LAST\r\n".encode() + chunks[-1])
        assert_queued(c.reply())
        assert c.cmd("QUIT") == BYE
    assert stored_bodies(server, ALICE) == [b"".join(chunks)]


def test_bdat_zero_last_and_pipelined_chunks(server):
    part1 = b"Subject: zero last\r\n\r\n"
    part2 = b"body\r\n"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        # The whole transaction in one write, ended by an empty LAST chunk.
        c.send(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
               + f"BDAT {len(part1)}\r\n".encode() + part1
               + f"bdat {len(part2)}\r\n".encode() + part2
               + b"BDAT 0 LAST\r\nNOOP\r\n")
        assert c.reply() == MAIL_OK
        assert c.reply() == RCPT_OK
        assert c.reply() == [f"250 2.0.0 {len(part1)} octets received"]
        assert c.reply() == [f"250 2.0.0 {len(part1) + len(part2)} octets received"]
        assert_queued(c.reply())
        assert c.reply() == OK
        # A message made of a single BDAT ... LAST, sent in separate writes.
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{BOB}>") == RCPT_OK
        c.send(b"BDAT 9 LAST\r\n")
        c.assert_silent(0.2)  # waits for the 9 octets
        c.send(b"Hi: x\r\n\r\n")
        assert_queued(c.reply())
    assert stored_bodies(server, BOB) == [part1 + part2, b"Hi: x\r\n\r\n"]


def test_bdat_without_mail_consumes_chunk(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        # The chunk is "QUIT\r\n": if it were read as a command the
        # connection would close.
        c.send(b"BDAT 6\r\nQUIT\r\n")
        assert c.reply() == ["503 5.5.1 Need MAIL before BDAT"]
        c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
        assert c.reply() == ["503 5.5.1 Need MAIL before BDAT"]
        assert c.cmd("NOOP") == OK
        # MAIL but no valid recipient: the chunk is consumed as well.
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
        assert c.reply() == ["554 5.5.1 No valid recipients"]
        assert c.cmd("NOOP") == OK
    assert new_messages(server, ALICE) == [] and new_messages(server, BOB) == []
    assert_smtp_still_serves(server)


def test_data_after_bdat_refused(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        c.send(b"BDAT 7\r\nhello\r\n")
        assert c.reply() == ["250 2.0.0 7 octets received"]
        assert c.cmd("DATA") == ["503 5.5.1 DATA not allowed after BDAT"]
        assert c.cmd("RSET") == OK
        assert new_messages(server, ALICE) == []
        # A fresh transaction may use DATA again.
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, b"Subject: data again\r\n\r\nx\r\n"))
    assert stored_bodies(server, ALICE) == [b"Subject: data again\r\n\r\nx\r\n"]


# --- SIZE -----------------------------------------------------------------

def test_size_parameter(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test> SIZE=52428800") == MAIL_OK
        assert c.cmd("RSET") == OK
        assert c.cmd("MAIL FROM:<x@remote.test> SIZE=52428801") == [
            "552 5.3.4 Message size exceeds fixed limit"]
        assert c.cmd("MAIL FROM:<x@remote.test> size=0 BODY=7BIT") == MAIL_OK


def test_message_over_max_message_size(dijk_factory):
    d = dijk_factory(extra_config={"smtp.max_message_size": "2048"})
    mark(d)
    line = b"x" * 62 + b"\r\n"  # 64 octets
    exact = b"Subject: big\r\n\r\n" + line * 31 + b"y" * 46 + b"\r\n"
    assert len(exact) == 2048
    over = exact[:-2] + b"z\r\n"  # 2049 octets
    big = b"Subject: big\r\n\r\n" + line * 200  # 12816 octets
    with RawSmtp(d.smtp_port) as c:
        assert c.cmd("EHLO client.remote.test") == expected_ehlo(size=2048)
        assert c.cmd("MAIL FROM:<x@remote.test> SIZE=2049") == [
            "552 5.3.4 Message size exceeds fixed limit"]
        for body in (over, big):
            assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
            assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
            assert send_data(c, body) == ["552 5.3.4 Message size exceeds fixed limit"], len(body)
        # Same limit for BDAT.
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        c.send(f"BDAT {len(over)} LAST\r\n".encode() + over)
        assert c.reply() == ["552 5.3.4 Message size exceeds fixed limit"]
        assert d.messages(ALICE) == []
        # The session goes on; exactly the limit is accepted.
        assert c.cmd("MAIL FROM:<x@remote.test> SIZE=2048") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, exact))
    assert stored_bodies(d, ALICE) == [exact]
    assert_smtp_still_serves(d)


# --- content --------------------------------------------------------------

def test_dot_stuffing_removed(server):
    sent = (b"Subject: dots\r\n\r\n..leading dot\r\n...\r\n..\r\n"
            b"a line with . inside\r\n.. two\r\n")
    want = (b"Subject: dots\r\n\r\n.leading dot\r\n..\r\n.\r\n"
            b"a line with . inside\r\n. two\r\n")
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, sent))
    assert stored_bodies(server, ALICE) == [want]


def test_8bitmime(server):
    body = ("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, café, 日本語\r\n").encode()
    body += b"latin-1 \xe9\xff and high octets \x80\xfe\r\n"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test> BODY=8BITMIME") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, body))
        assert c.cmd("MAIL FROM:<x@remote.test> BODY=BINARYMIME") == [
            "555 5.5.4 BODY=BINARYMIME is not supported"]
        assert c.cmd("MAIL FROM:<x@remote.test> body=7bit") == MAIL_OK
    assert stored_bodies(server, ALICE) == [body]


def test_smtputf8(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        # Without SMTPUTF8, a non-ASCII address is refused...
        assert c.cmd("MAIL FROM:<jörg@remote.test>") == [
            "553 5.6.7 Non-ASCII address requires SMTPUTF8"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd("RCPT TO:<jörg@example.test>") == [
            "553 5.6.7 Non-ASCII address requires SMTPUTF8"]
        assert c.cmd("RSET") == OK
        # ...with it, the syntax is fine: the user does not exist here.
        assert c.cmd("MAIL FROM:<jörg@bücher.test> SMTPUTF8") == MAIL_OK
        assert c.cmd("RCPT TO:<jörg@example.test>") == ["550 5.1.1 User unknown"]
        assert c.cmd("RCPT TO:<用户@example.test>") == ["550 5.1.1 User unknown"]
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        body = "Subject: utf8\r\nFrom: jörg@bücher.test\r\n\r\nhallo\r\n".encode()
        assert_queued(send_data(c, body))
        # Invalid UTF-8 is a syntax error even with SMTPUTF8.
        assert c.cmd(b"MAIL FROM:<j\xc3\x28rg@remote.test> SMTPUTF8")[0].startswith("501 ")
    assert stored_bodies(server, ALICE) == [body]


# --- recipients -----------------------------------------------------------

def test_unknown_user(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd("RCPT TO:<nobody@example.test>") == ["550 5.1.1 User unknown"]
        assert c.cmd("RCPT TO:<alice.x@example.test>") == ["550 5.1.1 User unknown"]
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
    assert new_messages(server, ALICE) == []
    assert server.queue() == []


def test_relay_denied_on_mx(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>") == MAIL_OK  # forged local sender
        for rcpt in ("carol@remote.test", "alice@example.test.remote.test",
                     "alice@sub.example.test", "alice@[127.0.0.1]"):
            assert c.cmd(f"RCPT TO:<{rcpt}>") == ["554 5.7.1 Relay access denied"], rcpt
        assert c.cmd("DATA") == ["554 5.5.1 No valid recipients"]
        # A local recipient next to a refused remote one gets the message.
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd("RCPT TO:<carol@remote.test>") == ["554 5.7.1 Relay access denied"]
        assert_queued(send_data(c, b"Subject: local only\r\n\r\nx\r\n"))
    assert server.queue() == []
    assert len(new_messages(server, ALICE)) == 1


def test_duplicate_recipients_delivered_once(server):
    body = b"Subject: dup\r\n\r\nonce\r\n"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        for _ in range(3):
            assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, body))
    assert stored_bodies(server, ALICE) == [body]


def test_multiple_local_recipients(server):
    body = b"Subject: both\r\n\r\nto alice and bob\r\n"
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert c.cmd(f"RCPT TO:<{BOB}>") == RCPT_OK
        assert_queued(send_data(c, body))
    [(ua, _, _)] = new_messages(server, ALICE)
    [(ub, _, _)] = new_messages(server, BOB)
    a, b = server.message(ALICE, ua), server.message(BOB, ub)
    assert split_received(a)[1] == body
    assert a == b  # the same Received header too: one message, two copies


def test_too_many_recipients(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        rcpts = [ALICE if i % 2 == 0 else BOB for i in range(100)]
        c.send("".join(f"RCPT TO:<{r}>\r\n" for r in rcpts).encode())
        for i in range(100):
            assert c.reply() == RCPT_OK, i
        assert c.cmd(f"RCPT TO:<{ALICE}>") == ["452 4.5.3 Too many recipients"]
        assert c.cmd("RCPT TO:<x@example.test>") == ["452 4.5.3 Too many recipients"]
        body = b"Subject: many\r\n\r\nx\r\n"
        assert_queued(send_data(c, body))
    assert stored_bodies(server, ALICE) == [body]
    assert stored_bodies(server, BOB) == [body]


# --- submission and AUTH --------------------------------------------------

def test_submission_requires_auth(server):
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == ["530 5.7.0 Authentication required"]
        assert c.cmd(f"RCPT TO:<{BOB}>") == ["503 5.5.1 Need MAIL before RCPT"]
    assert new_messages(server, BOB) == []


def test_submission_sender_must_be_the_user(server):
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        login(c, ALICE)
        assert c.cmd(f"MAIL FROM:<{BOB}>") == [
            "553 5.7.1 Sender address not owned by the authenticated user"]
        assert c.cmd("MAIL FROM:<alice@remote.test>") == [
            "553 5.7.1 Sender address not owned by the authenticated user"]
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{BOB}>") == RCPT_OK
        body = b"Subject: from alice\r\n\r\nx\r\n"
        assert_queued(send_data(c, body))
    [(uid, _, _)] = new_messages(server, BOB)
    header, content = split_received(server.message(BOB, uid))
    assert content == body
    assert b" with ESMTPA id " in header  # authenticated, no TLS (loopback)


def test_wrong_password_and_unknown_user_same_reply(server):
    bad = ["535 5.7.8 Authentication credentials invalid"]
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd(f"AUTH PLAIN {plain_response(ALICE, 'wrong-password')}") == bad
        assert c.cmd(f"AUTH PLAIN {plain_response('nobody@example.test', 'x-password')}") == bad
        # The third failure on one connection ends it.
        assert c.cmd(f"AUTH PLAIN {plain_response(ALICE, PASSWORDS[BOB])}") == bad
        assert c.reply() == ["421 4.7.0 Too many failed authentications, closing connection"]
        c.assert_closed()
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        # LOGIN, same answers.
        for user, password in ((ALICE, "wrong-password"), ("nobody@example.test", "pw")):
            assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
            assert c.cmd(b64(user.encode())) == ["334 UGFzc3dvcmQ6"]
            assert c.cmd(b64(password.encode())) == bad
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == ["530 5.7.0 Authentication required"]
        login(c, ALICE)  # the right password still works afterwards
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == MAIL_OK


def test_auth_login_via_swaks(server):
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.submission_port}", "--helo", "client.test",
         "--auth", "LOGIN", "--auth-user", ALICE, "--auth-password", PASSWORDS[ALICE],
         "--from", ALICE, "--to", BOB, "--header", "Subject: swaks login",
         "--body", "sent with AUTH LOGIN"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "334 VXNlcm5hbWU6" in r.stdout and "235 2.7.0 Authentication successful" in r.stdout
    [(uid, _, _)] = new_messages(server, BOB)
    stored = server.message(BOB, uid)
    assert b"Subject: swaks login\r\n" in stored
    assert b"sent with AUTH LOGIN" in stored


def test_auth_login_raw_and_cancel(server):
    user_b64 = b64(ALICE.encode())
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        # Cancelled at the user name...
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd("*") == ["501 5.0.0 Authentication cancelled"]
        # ...and at the password.
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd(user_b64) == ["334 UGFzc3dvcmQ6"]
        assert c.cmd("*") == ["501 5.0.0 Authentication cancelled"]
        # Still not authenticated.
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == ["530 5.7.0 Authentication required"]
        # The user name as an initial response.
        assert c.cmd(f"AUTH LOGIN {user_b64}") == ["334 UGFzc3dvcmQ6"]
        assert c.cmd("*") == ["501 5.0.0 Authentication cancelled"]
        # The whole exchange.
        assert c.cmd("auth login") == ["334 VXNlcm5hbWU6"]
        assert c.cmd(user_b64) == ["334 UGFzc3dvcmQ6"]
        assert c.cmd(b64(PASSWORDS[ALICE].encode())) == ["235 2.7.0 Authentication successful"]
        assert c.cmd("AUTH LOGIN") == ["503 5.5.1 Already authenticated"]
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{BOB}>") == RCPT_OK
        assert_queued(send_data(c, b"Subject: login\r\n\r\nx\r\n"))
    assert stored_bodies(server, BOB) == [b"Subject: login\r\n\r\nx\r\n"]


def test_auth_plain_initial_response(server):
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd(f"AUTH PLAIN {plain_response(BOB, PASSWORDS[BOB])}") == [
            "235 2.7.0 Authentication successful"]
        assert c.cmd(f"MAIL FROM:<{BOB}>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, b"Subject: plain\r\n\r\nx\r\n"))
    assert stored_bodies(server, ALICE) == [b"Subject: plain\r\n\r\nx\r\n"]


def test_auth_plain_continuation(server):
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN") == ["334 "]
        assert c.cmd("*") == ["501 5.0.0 Authentication cancelled"]
        assert c.cmd("AUTH PLAIN") == ["334 "]
        # An authzid different from the user is refused.
        assert c.cmd(plain_response(ALICE, PASSWORDS[ALICE], authzid=BOB)) == [
            "535 5.7.8 Authentication credentials invalid"]
        assert c.cmd("AUTH PLAIN") == ["334 "]
        # An authzid equal to the user is fine.
        assert c.cmd(plain_response(ALICE, PASSWORDS[ALICE], authzid=ALICE)) == [
            "235 2.7.0 Authentication successful"]
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == MAIL_OK


def test_auth_unknown_mechanism(server):
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd("AUTH CRAM-MD5") == ["504 5.5.4 Unrecognized authentication type"]
        assert c.cmd("AUTH XOAUTH2 dG9rZW4=") == ["504 5.5.4 Unrecognized authentication type"]
        login(c, ALICE)


def test_auth_malformed_responses(server):
    with RawSmtp(server.submission_port) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN !!!not-base64!!!") == ["501 5.5.2 Cannot decode the response"]
        assert c.cmd(f"AUTH PLAIN {b64(b'no separators at all')}") == [
            "501 5.5.2 Malformed PLAIN response"]
        assert c.cmd("AUTH PLAIN =") == ["501 5.5.2 Malformed PLAIN response"]
        assert c.cmd("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
        assert c.cmd("%%%") == ["501 5.5.2 Cannot decode the response"]
        # Empty user name and password.
        assert c.cmd(f"AUTH PLAIN {b64(bytes(2))}") == [
            "535 5.7.8 Authentication credentials invalid"]
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == ["530 5.7.0 Authentication required"]
        login(c, ALICE)


def test_auth_on_mx_port_refused(server):
    with RawSmtp(server.smtp_port) as c:
        ehlo = c.ehlo()
        assert not any("AUTH" in line for line in ehlo)
        assert c.cmd(f"AUTH PLAIN {plain_response(ALICE, PASSWORDS[ALICE])}") == [
            "503 5.5.1 AUTH not available on this port"]
        assert c.cmd("AUTH LOGIN") == ["503 5.5.1 AUTH not available on this port"]
        # Not authenticated: relaying is still refused.
        assert c.cmd(f"MAIL FROM:<{ALICE}>") == MAIL_OK
        assert c.cmd("RCPT TO:<carol@remote.test>") == ["554 5.7.1 Relay access denied"]
    assert server.queue() == []


# --- swaks and TLS --------------------------------------------------------

def test_swaks_plain_delivery(server):
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.smtp_port}", "--helo", "client.remote.test",
         "--from", "sender@remote.test", "--to", ALICE, "--header", "Subject: swaks mx",
         "--body", "plain delivery by swaks"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    [(uid, _, _)] = new_messages(server, ALICE)
    header, content = split_received(server.message(ALICE, uid))
    assert header.startswith(b"Received: from client.remote.test ([127.0.0.1])")
    assert b" with ESMTP id " in header
    assert b"Subject: swaks mx\r\n" in content and b"plain delivery by swaks" in content


def test_swaks_starttls_auth_submission(dijk):
    # Its own server: it queues outbound mail, which the shared one never has.
    mark(dijk)
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{dijk.submission_port}", "--helo", "client.test",
         "--tls", "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", PASSWORDS[BOB],
         "--from", BOB, "--to", f"{ALICE},carol@remote.test",
         "--header", "Subject: swaks tls", "--body", "starttls and auth"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "220 2.0.0 Ready to start TLS" in r.stdout
    [(uid, _, _)] = dijk.messages(ALICE)
    header, content = split_received(dijk.message(ALICE, uid))
    assert b" with ESMTPSA id " in header
    assert b"Subject: swaks tls\r\n" in content and b"starttls and auth" in content
    queued = dijk.queue()
    assert len(queued) == 1 and "carol@remote.test" in queued[0]


def test_submissions_implicit_tls(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, context=tls_context(),
                          timeout=10) as s:
        code, caps = s.ehlo("client.test")
        assert code == 250
        caps = caps.split(b"\n")
        assert b"AUTH PLAIN LOGIN" in caps
        assert b"STARTTLS" not in caps
        assert s.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
        assert s.docmd("MAIL FROM:<alice@example.test>") == (530, b"5.7.0 Authentication required")
        s.login(ALICE, PASSWORDS[ALICE])
        assert s.sendmail(ALICE, [BOB], b"Subject: smtps\r\n\r\nx\r\n") == {}
    [(uid, _, _)] = new_messages(server, BOB)
    header, content = split_received(server.message(BOB, uid))
    assert b" with ESMTPSA id " in header
    assert content == b"Subject: smtps\r\n\r\nx\r\n"


def test_starttls_resets_and_cannot_repeat(server):
    with RawSmtp(server.smtp_port) as c:
        c.ehlo()
        # A transaction begun before STARTTLS does not survive it.
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
        c.starttls(tls_context())
        # The EHLO state is forgotten too.
        assert c.cmd("MAIL FROM:<x@remote.test>") == ["503 5.5.1 Send HELO or EHLO first"]
        assert c.cmd("EHLO client.remote.test") == expected_ehlo(tls_offered=False)
        assert c.cmd(f"RCPT TO:<{ALICE}>") == ["503 5.5.1 Need MAIL before RCPT"]
        assert c.cmd("STARTTLS") == ["503 5.5.1 TLS already active"]
        assert c.cmd("MAIL FROM:<x@remote.test>") == MAIL_OK
        assert c.cmd(f"RCPT TO:<{ALICE}>") == RCPT_OK
        assert_queued(send_data(c, b"Subject: over tls\r\n\r\nx\r\n"))
        assert c.cmd("QUIT") == BYE
    [(uid, _, _)] = new_messages(server, ALICE)
    header, content = split_received(server.message(ALICE, uid))
    assert b" with ESMTPS id " in header
    assert content == b"Subject: over tls\r\n\r\nx\r\n"


def test_starttls_then_auth_on_submission_with_smtplib(server):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        s.starttls(context=tls_context())
        code, caps = s.ehlo("client.test")
        assert code == 250
        assert b"STARTTLS" not in caps.split(b"\n")
        assert b"AUTH PLAIN LOGIN" in caps.split(b"\n")
        assert s.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
        s.login(BOB, PASSWORDS[BOB])
        assert s.sendmail(BOB, [ALICE], b"Subject: s\r\n\r\nx\r\n") == {}
    assert stored_bodies(server, ALICE) == [b"Subject: s\r\n\r\nx\r\n"]
