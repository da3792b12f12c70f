"""Hostile and broken IMAP clients: over-long lines, literals announced
over the limits (before and after login), absurd literal sizes, deep
nesting, malformed commands, error floods, commands before login,
malformed mailbox names, and names that look like paths. After each case
a NEW client must still be able to log in, append and fetch, no worker may
have crashed (conftest.IMAP_BAD_LOG), and nothing may appear outside the
store."""

import re
import socket
import uuid
from pathlib import Path

import pytest

from conftest import RawImap, add_account, fresh_account

APPEND_LIMIT = 52428800
PREAUTH_LIMIT = 8192
MAX_LINE = 64 * 1024
PREAUTH_MAX_LINE = 8 * 1024
DEFAULT_BOXES = {"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"}


@pytest.fixture
def server(imap_shared_dijk):
    """The module's shared default server (see conftest.imap_shared_dijk)."""
    return imap_shared_dijk


@pytest.fixture
def account(server):
    """An account shared by the module's tests (they leave its mailboxes
    as they found them, apart from messages in INBOX)."""
    if getattr(server, "abuse_account", None) is None:
        server.abuse_account = add_account(server, prefix="abuse")
    return server.abuse_account


@pytest.fixture
def empty_account(server):
    """A new, empty account."""
    return fresh_account(server)


def login(server, account):
    c = RawImap(server.imap_port)
    c.login(*account)
    return c


def send_quietly(c, data):
    """Sends, ignoring a connection the server already closed."""
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def closed_after(c, expected_last):
    """Everything until the server closes; its last line must be
    expected_last (a regex)."""
    rest = c.rest_until_close().decode("latin-1")
    lines = [line for line in rest.split("\r\n") if line]
    assert lines, "the server closed without a word"
    assert re.fullmatch(expected_last, lines[-1]), lines
    assert rest.endswith("\r\n"), rest[-200:]
    return lines


def assert_still_serves(server):
    """A NEW client can log in, APPEND, SELECT and FETCH its message back."""
    if not hasattr(server, "health_account"):
        server.health_account = add_account(server, prefix="health")
    subject = f"health {uuid.uuid4().hex}"
    data = f"From: h@remote.test\r\nSubject: {subject}\r\n\r\nstill serving\r\n".encode()
    with RawImap(server.imap_port) as c:
        c.login(*server.health_account)
        untagged, tagged = c.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
        m = re.match(r"OK \[APPENDUID \d+ (\d+)\] APPEND completed$", tagged)
        assert m, tagged
        uid = m.group(1)
        untagged, tagged = c.cmd("SELECT INBOX")
        assert tagged == "OK [READ-WRITE] SELECT completed", tagged
        untagged, tagged = c.cmd(f"UID FETCH {uid} (BODY.PEEK[])")
        assert tagged == "OK UID FETCH completed"
        assert untagged[-1].endswith(f"(UID {uid} BODY[] {{{len(data)}}}\r\n{data.decode()})"), \
            untagged
        assert c.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")


def mailbox_names(c):
    untagged, tagged = c.cmd('LIST "" *')
    assert tagged == "OK LIST completed"
    names = set()
    for r in untagged:
        m = re.match(r'\* LIST \([^)]*\) "/" (.*)$', r, re.S)
        assert m, r
        names.add(m.group(1))
    return names


# --- over-long lines ----------------------------------------------------------

@pytest.mark.parametrize("state", ["preauth", "authenticated"])
def test_overlong_line(server, account, state):
    limit = PREAUTH_MAX_LINE if state == "preauth" else MAX_LINE
    # At the limit (CRLF included) a line is still a command...
    with RawImap(server.imap_port) as c:
        if state == "authenticated":
            c.login(*account)
        line = b"A1 ID (\"x\" \"" + b"y" * (limit - 16) + b"\")"
        assert len(line) + 2 == limit
        untagged, tagged = c.cmd(line[3:], tag="A1")
        assert tagged == "OK ID completed", tagged
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    # ... one more byte is not: BYE, and the connection closes.
    with RawImap(server.imap_port) as c:
        if state == "authenticated":
            c.login(*account)
        send_quietly(c, b"A1 ID (\"x\" \"" + b"y" * (limit - 15) + b"\")\r\n")
        assert closed_after(c, r"\* BYE .*") == ["* BYE Command line too long"]
    # Without any CRLF: refused without waiting for the end.
    with RawImap(server.imap_port) as c:
        if state == "authenticated":
            c.login(*account)
        send_quietly(c, b"A1 NOOP " + b"x" * (limit + 100))
        assert closed_after(c, r"\* BYE .*") == ["* BYE Command line too long"]
    assert_still_serves(server)


def test_overlong_line_around_literals(server, account):
    """The line limit counts every line of a command, not only the first."""
    with login(server, account) as c:
        send_quietly(c, b"A1 LIST {1}\r\n")
        assert c.response().startswith("+ ")
        send_quietly(c, b"x " + b"y" * (MAX_LINE + 10) + b"\r\n")
        assert closed_after(c, r"\* BYE .*") == ["* BYE Command line too long"]
    assert_still_serves(server)


def test_overlong_authenticate_and_idle_lines(server, account):
    with RawImap(server.imap_port) as c:
        c.send("A1 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
        send_quietly(c, b"A" * (PREAUTH_MAX_LINE * 2) + b"\r\n")
        assert closed_after(c, r"\* BYE .*")[-1].startswith("* BYE")
    with login(server, account) as c:
        c.send("A1 IDLE\r\n")
        assert c.response() == "+ idling"
        send_quietly(c, b"D" * (PREAUTH_MAX_LINE * 2))
        assert closed_after(c, r"\* BYE .*")[-1].startswith("* BYE")
    assert_still_serves(server)


# --- literals over the limits --------------------------------------------------

def test_synchronizing_literal_over_appendlimit(server, empty_account):
    with login(server, empty_account) as c:
        for size in (APPEND_LIMIT + 1, 2 ** 32, 2 ** 32 + 1, 2 ** 63, 2 ** 64 - 1):
            c.send(b"A1 APPEND INBOX {%d}\r\n" % size)
            # Refused straight away: no "+", and nothing of the command stays.
            assert c.response() == f"A1 NO [TOOBIG] Literal larger than {APPEND_LIMIT} bytes", size
            assert c.cmd("NOOP") == ([], "OK NOOP completed")
        c.send(b"A2 APPEND INBOX ~{4294967296}\r\n")
        assert c.response() == f"A2 NO [TOOBIG] Literal larger than {APPEND_LIMIT} bytes"
        # At the limit, the "+" comes (the data is not sent; the client gives
        # up by closing).
        c.send(b"A3 APPEND INBOX {%d}\r\n" % APPEND_LIMIT)
        assert c.response().startswith("+ ")
    with login(server, empty_account) as c:
        assert c.cmd("STATUS INBOX (MESSAGES)") == (['* STATUS "INBOX" (MESSAGES 0)'],
                                                    "OK STATUS completed")
    assert_still_serves(server)


@pytest.mark.parametrize("size", ["18446744073709551616", "99999999999999999999999999999",
                                  "4294967296", "-1", "0x10", "1e9", ""])
def test_absurd_literal_sizes(server, account, size):
    """Sizes that overflow or are not numbers: a clean NO or BAD, and the
    session goes on in step (no data is taken as a command)."""
    with login(server, account) as c:
        c.send(f"A1 APPEND INBOX {{{size}}}\r\n")
        r = c.response()
        assert re.match(r"A1 (NO|BAD) ", r), r
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


def test_nonsynchronizing_literal_over_the_limit_closes(server, account):
    """A {n+} literal over the limit cannot be refused without losing step
    with the client (RFC 7888 4): BYE and close."""
    with login(server, account) as c:
        send_quietly(c, b"A1 APPEND INBOX {%d+}\r\n" % (APPEND_LIMIT + 1) + b"x" * 1000)
        assert closed_after(c, r"\* BYE .*") == ["* BYE [TOOBIG] Literal too large"]
    with RawImap(server.imap_port) as c:
        send_quietly(c, b"A1 LOGIN {%d+}\r\n" % (PREAUTH_LIMIT + 1) + b"x" * 1000)
        assert closed_after(c, r"\* BYE .*") == ["* BYE [TOOBIG] Literal too large"]
    assert_still_serves(server)


def test_preauth_literal_over_8k_refused(server, account):
    user, password = account
    with RawImap(server.imap_port) as c:
        for size in (PREAUTH_LIMIT + 1, 1000000, 2 ** 32):
            c.send(b"A1 LOGIN {%d}\r\n" % size)
            assert c.response() == f"A1 NO [TOOBIG] Literal larger than {PREAUTH_LIMIT} bytes"
        # At the limit a literal is taken; the login fails (no such user).
        c.send(b"A2 LOGIN {%d}\r\n" % PREAUTH_LIMIT)
        assert c.response().startswith("+ ")
        c.send(b"u" * PREAUTH_LIMIT + b" password\r\n")
        assert c.response() == "A2 NO [AUTHENTICATIONFAILED] Authentication failed"
        # The session went on: a real login works.
        untagged, tagged = c.cmd(f'LOGIN "{user}" "{password}"')
        assert tagged.startswith("OK [CAPABILITY "), tagged
    assert_still_serves(server)


def test_too_many_literals(server, account):
    with login(server, account) as c:
        c.send("A1 SEARCH")
        for i in range(64):
            c.send(b" SUBJECT {1}\r\n")
            assert c.response().startswith("+ "), i
            c.send(b"x")
        c.send(b" SUBJECT {1}\r\n")
        assert closed_after(c, r"\* BYE .*") == ["* BYE Too many literals"]
    # 64 are fine.
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        command = b"SEARCH" + b" SUBJECT {1}\r\nx" * 64
        assert c.cmd(command) == (["* SEARCH"], "OK SEARCH completed")
    assert_still_serves(server)


# --- nesting --------------------------------------------------------------------

@pytest.mark.parametrize("depth", [17, 100, 30000])
def test_deep_parenthesis_nesting(server, account, depth):
    with login(server, account) as c:
        assert c.cmd("SELECT INBOX")[1].startswith("OK")
        for command in (b"FETCH 1 " + b"(" * depth + b"FLAGS" + b")" * depth,
                        b"SEARCH " + b"(" * depth + b"SEEN" + b")" * depth,
                        b"STATUS INBOX " + b"(" * depth + b"MESSAGES" + b")" * depth,
                        b"LIST " + b"(" * depth + b"SUBSCRIBED" + b")" * depth + b' "" *',
                        b"ID " + b"(" * depth + b")" * depth,
                        b"SEARCH " + b"(" * depth):
            untagged, tagged = c.cmd(command)
            assert untagged == [] and tagged.startswith("BAD "), (command[:40], untagged, tagged)
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


def test_deep_search_key_nesting(server, account):
    with login(server, account) as c:
        assert c.cmd("SELECT INBOX")[1].startswith("OK")
        assert c.cmd(b"SEARCH " + b"(" * 10 + b"SEEN" + b")" * 10) == (
            ["* SEARCH"], "OK SEARCH completed")
        for command in (b"SEARCH " + b"NOT " * 15000 + b"SEEN",
                        b"SEARCH " + b"OR " * 5000 + b"SEEN " * 5001,
                        b"SORT (DATE) UTF-8 " + b"NOT " * 10000 + b"SEEN",
                        b"THREAD REFERENCES UTF-8 " + b"NOT " * 10000 + b"SEEN"):
            untagged, tagged = c.cmd(command)
            assert untagged == [] and tagged.startswith("BAD "), (command[:40], untagged, tagged)
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


# --- malformed commands -------------------------------------------------------------

UNTAGGED_BAD = [b"", b" NOOP", b"*", b"+ x", b"\x00", b"A" * 70 + b" NOOP", b"(A1) NOOP",
                b"A{1} NOOP", b"A%1 NOOP", b'"A1" NOOP']
TAGGED_BAD = [b"A1", b"A1 ", b"A1 NOSUCHCOMMAND", b"A1 NOOP\x00", b"A1 SELECT \xff\xfe",
              b'A1 SELECT "unterminated', b"A1 FETCH 1 (FLAGS", b"A1 FETCH 1 FLAGS)",
              b"A1 UID", b"A1 UID NOSUCH 1", b"A1 UID LIST", b'A1 SELECT "a\\b"',
              b"A1 SELECT INBOX extra arguments", b"A1 CREATE", b"A1 RENAME onlyone",
              b"A1 STATUS INBOX", b"A1 STORE 1 +FLAGS", b"A1 FETCH", b"A1 SEARCH",
              b"A1 LIST", b"A1 APPEND", b"A1 COPY 1", b"A1 NOOP)", b"A1 NOOP (",
              b"A1 FETCH 1:* (BODY[HEADER.FIELDS ()])", b"A1 FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.x]",
              b"A1 FETCH 1 (BODY[]<10.>)", b"A1 FETCH 1 (BODY[]<1.0>)",
              b"A1 FETCH 0:4294967296 FLAGS", b"A1 SEARCH UID 1:4294967296",
              b"A1 SEARCH LARGER 99999999999999999999999", b"A1 STORE 1 +FLAGS (\\Recent)",
              b"A1 LOGIN a b", b"A1 AUTHENTICATE PLAIN", b"A1 STARTTLS",
              b"A1 SELECT {1+}\r\nx extra", b"A1 ENABLE", b'A1 SELECT ""']


@pytest.mark.parametrize("line", UNTAGGED_BAD, ids=lambda b: repr(b)[2:30])
def test_malformed_without_tag_gets_untagged_bad(server, account, line):
    with login(server, account) as c:
        c.send(line + b"\r\n")
        r = c.response()
        assert r.startswith("* BAD "), r
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    with RawImap(server.imap_port) as c:
        c.send(line + b"\r\n")
        r = c.response()
        assert r.startswith("* BAD "), r
        assert c.cmd("NOOP") == ([], "OK NOOP completed")


@pytest.mark.parametrize("line", TAGGED_BAD, ids=lambda b: repr(b)[2:40])
def test_malformed_with_tag_gets_tagged_bad(server, account, line):
    with login(server, account) as c:
        c.cmd(b"APPEND INBOX {12}\r\nSubject: x\r\n")
        assert c.cmd("SELECT INBOX")[1].startswith("OK")
        c.send(line + b"\r\n")
        untagged, tagged = c.read_tagged("A1")
        assert tagged.startswith("BAD "), (line, untagged, tagged)
        assert untagged == [], untagged
        assert c.cmd("NOOP") == ([], "OK NOOP completed")


def test_bare_lf_line_end(server, account):
    """A line ended by a bare LF is refused; the session stays in step."""
    with login(server, account) as c:
        c.send(b"A1 NOOP\nA2 NOOP\r\n")
        untagged, tagged = c.read_tagged("A1")
        assert tagged.startswith("BAD "), tagged
        assert c.read_tagged("A2") == ([], "OK NOOP completed")
        assert c.cmd("NOOP") == ([], "OK NOOP completed")


# --- error floods ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["syntax", "preauth", "unknown-command", "mixed"])
def test_twenty_bad_commands_disconnect(server, account, kind):
    bad = {
        "syntax": b"A{n} FETCH (",
        "preauth": b"A{n} SELECT INBOX",
        "unknown-command": b"A{n} NOSUCHCOMMAND",
        "mixed": None,
    }[kind]
    mixed = [b"A{n} NOSUCHCOMMAND", b"A{n} FETCH (", b"A{n} SELECT", b"A{n} UID NOSUCH",
             b"A{n} FETCH 1:* NOSUCHITEM"]
    with RawImap(server.imap_port) as c:
        if kind != "preauth":
            c.login(*account)
            c.cmd("SELECT INBOX")
        for n in range(1, 20):
            line = (bad or mixed[n % len(mixed)]).replace(b"{n}", str(n).encode())
            c.send(line + b"\r\n")
            untagged, tagged = c.read_tagged(f"A{n}")
            assert tagged.startswith("BAD "), (n, tagged)
        # The 20th: its BAD, then BYE and close.
        c.send((bad or mixed[0]).replace(b"{n}", b"20") + b"\r\n")
        lines = closed_after(c, r"\* BYE .*")
        assert lines[0].startswith("A20 BAD "), lines
        assert lines[-1] == "* BYE Too many errors", lines
    assert_still_serves(server)


def test_good_commands_do_not_reset_the_error_count_below_the_limit(server, account):
    """Errors interleaved with good commands are counted all the same."""
    with RawImap(server.imap_port) as c:
        for n in range(1, 20):
            assert c.cmd(b"FETCH (", tag=f"B{n}")[1].startswith("BAD ")
            assert c.cmd("NOOP") == ([], "OK NOOP completed")
        c.send(b"B20 FETCH (\r\n")
        lines = closed_after(c, r"\* BYE .*")
        assert lines[-1] == "* BYE Too many errors"


def test_failed_logins_disconnect(server, account):
    user, _ = account
    with RawImap(server.imap_port) as c:
        for n in range(1, 3):
            assert c.cmd(f'LOGIN "{user}" "wrong{n}"') == (
                [], "NO [AUTHENTICATIONFAILED] Authentication failed")
        c.send(f'Z LOGIN "{user}" "wrong3"\r\n')
        lines = closed_after(c, r"\* BYE .*")
        assert lines == ["Z NO [AUTHENTICATIONFAILED] Authentication failed",
                         "* BYE Too many failed logins"]
    assert_still_serves(server)


# --- commands before login -----------------------------------------------------------

PREAUTH_REFUSED = ["SELECT INBOX", "EXAMINE INBOX", "CREATE x", "DELETE INBOX", "RENAME INBOX x",
                   "SUBSCRIBE INBOX", "UNSUBSCRIBE INBOX", 'LIST "" *', 'LSUB "" *',
                   "STATUS INBOX (MESSAGES)", "APPEND INBOX {1+}\r\nx", "CHECK", "CLOSE",
                   "UNSELECT", "EXPUNGE", "SEARCH ALL", "FETCH 1:* FLAGS", "STORE 1 +FLAGS \\Seen",
                   "COPY 1 INBOX", "MOVE 1 INBOX", "UID FETCH 1:* FLAGS", "UID SEARCH ALL",
                   "UID STORE 1 +FLAGS \\Seen", "UID COPY 1 INBOX", "UID MOVE 1 INBOX",
                   "UID EXPUNGE 1:*", "UID SORT (DATE) UTF-8 ALL", "UID THREAD REFERENCES UTF-8 ALL",
                   "SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL", "IDLE", "NAMESPACE",
                   "ENABLE IMAP4rev2", "GETQUOTA \"\"", "GETQUOTAROOT INBOX",
                   "SETQUOTA \"\" (STORAGE 1)"]


def test_commands_before_login(server, empty_account):
    with RawImap(server.imap_port) as c:
        for n, command in enumerate(PREAUTH_REFUSED):
            untagged, tagged = c.cmd(command, tag=f"P{n}")
            assert untagged == [] and tagged.startswith("BAD "), (command, untagged, tagged)
            if n % 15 == 14:  # stay under the error limit
                c.close()
                c = RawImap(server.imap_port)
        # Still not logged in; the allowed ones work.
        assert c.cmd("CAPABILITY")[1] == "OK CAPABILITY completed"
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
        assert c.cmd("ID NIL")[1] == "OK ID completed"
        c.login(*empty_account)
        # Nothing happened to the account.
        assert mailbox_names(c) == {f'"{b}"' for b in DEFAULT_BOXES}
        assert c.cmd("STATUS INBOX (MESSAGES)") == (['* STATUS "INBOX" (MESSAGES 0)'],
                                                    "OK STATUS completed")
        c.close()
    assert_still_serves(server)


# --- malformed mailbox names ------------------------------------------------------------

BAD_MUTF7 = ['"Bad&AP"', '"&Jjo"', '"&"', '"a&b"', '"&ANw"', '"&-&"',  # unterminated
             '"&AGEAYgBj-"',  # printable ASCII encoded ("abc")
             '"&2D0-"',  # a lone high surrogate
             '"&AOkA-"', '"&AO-"',  # bits left over: not whole UTF-16 units
             '"&AAA-"']  # U+0000
BAD_UTF8 = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"a\x80b", b"\xf4\x90\x80\x80", b"\xe2\x82"]


@pytest.mark.parametrize("name", BAD_MUTF7)
def test_invalid_modified_utf7_names(server, account, name):
    with login(server, account) as c:
        before = mailbox_names(c)
        for command in (f"CREATE {name}", f"SELECT {name}", f"STATUS {name} (MESSAGES)",
                        f"RENAME INBOX {name}", f"SUBSCRIBE {name}", f"DELETE {name}",
                        f"APPEND {name} {{1+}}\r\nx", f'LIST "" {name}'):
            untagged, tagged = c.cmd(command)
            if command.startswith("LIST"):
                assert tagged.startswith(("OK", "BAD", "NO")) and untagged == [], \
                    (command, untagged, tagged)
                continue
            assert re.match(r"(BAD|NO) ", tagged), (command, tagged)
            assert untagged == [], (command, untagged)
        assert mailbox_names(c) == before
        assert c.cmd("STATUS INBOX (MESSAGES)")[1] == "OK STATUS completed"
    assert_still_serves(server)


def test_raw_8bit_names_refused_for_imap4rev1(server, account):
    with login(server, account) as c:
        before = mailbox_names(c)
        for data in [b'CREATE "Entw\xc3\xbcrfe"', b"CREATE {9}\r\nEntw\xc3\xbcrfe"]:
            untagged, tagged = c.cmd(data)
            assert re.match(r"(BAD|NO) ", tagged), (data, tagged)
        assert mailbox_names(c) == before
    assert_still_serves(server)


@pytest.mark.parametrize("name", BAD_UTF8, ids=lambda b: b.hex())
def test_invalid_utf8_names_for_imap4rev2(server, account, name):
    with login(server, account) as c:
        assert c.cmd("ENABLE IMAP4rev2") == (["* ENABLED IMAP4rev2"], "OK ENABLE completed")
        before = mailbox_names(c)
        lit = b"{%d}\r\n" % len(name) + name
        for command in (b"CREATE " + lit, b"SELECT " + lit, b"STATUS " + lit + b" (MESSAGES)",
                        b"RENAME INBOX " + lit, b"SUBSCRIBE " + lit, b"DELETE " + lit,
                        b"APPEND " + lit + b" {1+}\r\nx"):
            untagged, tagged = c.cmd(command)
            assert re.match(r"(BAD|NO) ", tagged), (command, tagged)
            assert untagged == [], (command, untagged)
        assert mailbox_names(c) == before
    assert_still_serves(server)


def test_control_characters_and_overlong_names(server, account):
    with login(server, account) as c:
        before = mailbox_names(c)
        for name in (b"a\tb", b"a\x7fb", b"a\x1bb", b"a\rb", b"a\nb", b"x" * 5000,
                     b"/".join([b"d"] * 200)):
            lit = b"{%d}\r\n" % len(name) + name
            for command in (b"CREATE " + lit, b"RENAME INBOX " + lit):
                untagged, tagged = c.cmd(command)
                assert re.match(r"(BAD|NO) ", tagged), (name[:20], tagged)
        assert mailbox_names(c) == before
        assert c.cmd(b"CREATE {6}\r\na\x00b/cd")[1].startswith(("BAD", "NO"))
        assert c.cmd(b"CREATE ~{6}\r\na\x00b/cd")[1].startswith(("BAD", "NO"))
        assert mailbox_names(c) == before
    assert_still_serves(server)


# --- names that look like paths ---------------------------------------------------------

def tree(root):
    """Every file and directory under root, relative; SQLite's sidecar
    files are left out (they come and go)."""
    out = set()
    for p in Path(root).rglob("*"):
        rel = p.relative_to(root).as_posix()
        if re.search(r"-(wal|shm|journal)$", rel):
            continue
        out.add(rel)
    return out


TRAVERSAL = ["../x", "../../x", "..", ".", "./x", "/abs", "a//b", "a/../../b", "~/x",
             "a\\..\\..\\b", "%2e%2e/x", "../../../../../../../../tmp/x", "x/..", "x/.",
             "blobs/../../x", "accounts/1/index.db", "../accounts/1/index.db", "/etc/passwd",
             "INBOX/../../x", "..." , "....//x", "x/", "/"]


def test_path_like_names_stay_inside_the_store(server, account):
    root = server.data.parent
    marker = f"dijk-traversal-{uuid.uuid4().hex[:8]}"
    names = [n.replace("x", marker) for n in TRAVERSAL]
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        c.cmd("UNSELECT")
        before = tree(root)
        data = b"From: t@remote.test\r\nSubject: traversal\r\n\r\nbody\r\n"
        for name in names:
            q = '"' + name.replace("\\", "\\\\") + '"'
            for command in (f"CREATE {q}", f"SUBSCRIBE {q}", f"STATUS {q} (MESSAGES)",
                            f"SELECT {q}", "UNSELECT", f"RENAME {q} {q[:-1]}-renamed\"",
                            f"DELETE {q[:-1]}-renamed\"", f"DELETE {q}", f"UNSUBSCRIBE {q}",
                            f'LIST "" {q}', f'LIST {q} "*"', f"GETQUOTAROOT {q}"):
                untagged, tagged = c.cmd(command)
                assert re.match(r"(OK|NO|BAD) ", tagged), (command, tagged)
            # APPEND writes message bytes: to a blob, never to a path.
            untagged, tagged = c.cmd(f"CREATE {q}")
            untagged, tagged = c.cmd(f"APPEND {q} {{{len(data)}+}}\r\n".encode() + data)
            assert re.match(r"(OK|NO|BAD) ", tagged), (name, tagged)
            c.cmd(f"DELETE {q}")
        # Names with a NUL: refused.
        for name in (b"../" + marker.encode() + b"\x00x", b"a\x00/../../" + marker.encode()):
            assert c.cmd(b"CREATE ~{%d}\r\n" % len(name) + name)[1].startswith(("BAD", "NO"))
        after = tree(root)
    new = after - before
    allowed = re.compile(r"data/blobs/[0-9a-f]{2}(/[0-9a-f]{30})?$")
    assert [p for p in new if not allowed.match(p)] == [], sorted(new)
    assert before - after <= {p for p in before if p.startswith("data/blobs/")}, before - after
    # No file named after the marker anywhere nearby.
    for place in (root, root.parent, Path("/tmp"), Path("/")):
        assert not [p for p in place.glob(f"*{marker}*")], place
    assert not [p for p in Path(root).rglob(f"*{marker}*")]
    assert_still_serves(server)


# --- hostile messages ------------------------------------------------------------------------

def appended(c, mailbox, data):
    untagged, tagged = c.cmd(b"APPEND %s {%d}\r\n" % (mailbox.encode(), len(data)) + data)
    assert re.match(r"OK \[APPENDUID \d+ \d+\] APPEND completed$", tagged), tagged


def short(text, n=300):
    text = str(text)
    return text if len(text) <= 2 * n else f"{text[:n]} ...[{len(text)} chars]... {text[-n:]}"


def parsed_fetches(untagged):
    """test_imap_protocol.fetches(), failing with a short message when a
    response is malformed."""
    from test_imap_protocol import fetches
    try:
        return fetches(untagged)
    except (ValueError, AssertionError, IndexError) as e:
        raise AssertionError(f"malformed FETCH response ({short(e, 100)}): "
                             f"{short(untagged)}") from None


def fetch_one(c, items):
    """FETCH 1 (items) in the selected mailbox, parsed: {name: value}."""
    untagged, tagged = c.cmd(f"FETCH 1 ({items})")
    assert tagged == "OK FETCH completed", tagged
    f = parsed_fetches(untagged)
    assert list(f) == [1], short(untagged)
    return f[1]


@pytest.fixture
def hostile(server, account):
    """A client with a new mailbox of its own selected once filled."""
    c = login(server, account)
    box = f"hostile-{uuid.uuid4().hex[:8]}"
    assert c.cmd(f"CREATE {box}") == ([], "OK CREATE completed")
    c.box = box
    yield c
    c.cmd("UNSELECT")
    c.cmd(f"DELETE {box}")
    c.close()


def test_huge_address_list_gives_a_whole_envelope(server, hostile):
    """An ENVELOPE is a list of 10 fields however long its address lists:
    never cut short (a client would lose step with the server)."""
    c = hostile
    addrs = ", ".join(f'"Person Number {i:05d} with a long display name" '
                      f'<person.number.{i:05d}@a-rather-long-domain-name.example>'
                      for i in range(3400))
    appended(c, c.box, f"From: {addrs}\r\nSubject: many\r\n\r\nbody\r\n".encode())
    c.cmd(f"SELECT {c.box}")
    env = fetch_one(c, "ENVELOPE")["ENVELOPE"]
    assert isinstance(env, list) and len(env) == 10, [type(x) for x in env]
    assert env[1] == "many"
    assert env[2][0] == ["Person Number 00000 with a long display name", None,
                         "person.number.00000", "a-rather-long-domain-name.example"]
    assert env[2] == env[3] == env[4]  # Sender and Reply-To default to From
    assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


def test_many_parts_give_a_whole_bodystructure(server, hostile):
    c = hostile
    name = b"n" * 600
    parts = b"".join(b"--b\r\nContent-Type: text/plain; name=\"%s%d\"\r\n"
                     b"Content-Disposition: attachment; filename=\"%s%d\"\r\n\r\npart %d\r\n\r\n"
                     % (name, i, name, i, i) for i in range(1800))
    appended(c, c.box, b"From: a@x.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")
    c.cmd(f"SELECT {c.box}")
    for item in ("BODYSTRUCTURE", "BODY"):
        structure = fetch_one(c, item)[item]
        # The parts come first, up to the subtype (the extension data after
        # it, such as ("BOUNDARY" "b"), are lists too).
        subparts = []
        for p in structure:
            if not isinstance(p, list):
                break
            subparts.append(p)
        assert len(subparts) == 1800, (item, len(subparts))
        assert structure[len(subparts)].upper() == "MIXED"
    assert fetch_one(c, "BODY.PEEK[1800]") == {"BODY[1800]": "part 1799\r\n"}
    assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


@pytest.mark.parametrize("kind", ["multipart", "message"])
def test_deep_mime_nesting(server, hostile, kind):
    """500 levels of nested multiparts (or of message/rfc822): every FETCH
    stays well formed and nothing crashes (parsers must not recurse
    without bound)."""
    c = hostile
    depth = 500
    if kind == "multipart":
        head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                        for i in range(depth))
        tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    else:
        head = b"".join(b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i
                        for i in range(depth))
        tail = b""
    data = (b"From: deep@x.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + head
            + b"Content-Type: text/plain\r\n\r\nleaf\r\n" + tail)
    appended(c, c.box, data)
    c.cmd(f"SELECT {c.box}")
    deep = "BODY.PEEK[" + ".".join(["1"] * 40) + "]"
    for items in ("BODYSTRUCTURE", "BODY", "ENVELOPE", "BODY.PEEK[]", "BODY.PEEK[1]", deep,
                  "BINARY.SIZE[1]", "BODY.PEEK[TEXT]", "BODY.PEEK[1.1.1.1.MIME]"):
        untagged, tagged = c.cmd(f"FETCH 1 ({items})")
        # A section deeper than the server handles may be refused as BAD.
        assert re.match(r"(OK|NO|BAD) " if items == deep else r"(OK|NO) ", tagged), (items, tagged)
        if tagged.startswith("OK"):
            assert list(parsed_fetches(untagged)) == [1], (items, short(untagged))
    assert c.cmd("SEARCH BODY leaf")[1] == "OK SEARCH completed"
    assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


def test_huge_header(server, hostile):
    c = hostile
    data = (b"From: h@x.test\r\nSubject: " + b"s" * 200000 + b"\r\n"
            + b"".join(b"X-Header-%d: value %d\r\n" % (i, i) for i in range(20000))
            + b"X-Last: needle\r\n\r\nbody\r\n")
    appended(c, c.box, data)
    c.cmd(f"SELECT {c.box}")
    env = fetch_one(c, "ENVELOPE")["ENVELOPE"]
    assert isinstance(env, list) and len(env) == 10
    assert fetch_one(c, "RFC822.SIZE") == {"RFC822.SIZE": str(len(data))}
    assert fetch_one(c, "BODY.PEEK[]")["BODY[]"].encode() == data
    for command in ("SEARCH HEADER X-Last needle", "SEARCH SUBJECT sss", "SORT (SUBJECT) UTF-8 ALL",
                    "THREAD REFERENCES UTF-8 ALL", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-LAST)])"):
        untagged, tagged = c.cmd(command)
        assert tagged.startswith("OK"), (command, tagged)
    assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_still_serves(server)


def test_thread_with_reference_loops_and_long_chains(server, hostile):
    c = hostile
    msgs = [
        # a and b refer to each other; c refers to itself.
        (b"a@x", [b"b@x"]), (b"b@x", [b"a@x"]), (b"c@x", [b"c@x"]),
        # d has a chain of 5000 references, e repeats d's id as its own.
        (b"d@x", [b"r%d@x" % i for i in range(5000)]), (b"d@x", [b"d@x", b"r1@x"]),
        # no Message-ID at all, references to nothing.
        (None, [b"nothing@x"]),
    ]
    for i, (msgid, refs) in enumerate(msgs):
        headers = (b"From: t@x.test\r\nSubject: subject %d\r\n"
                   b"Date: Mon, 0%d Jan 2024 10:00:00 +0000\r\n" % (i, i + 1))
        if msgid:
            headers += b"Message-ID: <" + msgid + b">\r\n"
        headers += b"References: " + b" ".join(b"<" + r + b">" for r in refs) + b"\r\n"
        appended(c, c.box, headers + b"\r\nbody\r\n")
    c.cmd(f"SELECT {c.box}")
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        untagged, tagged = c.cmd(f"THREAD {algorithm} UTF-8 ALL")
        assert tagged == "OK THREAD completed", tagged
        [line] = untagged
        assert line.startswith("* THREAD ")
        # Well formed, and every message in it exactly once (RFC 5256 4).
        from test_imap_protocol import parse
        numbers = re.findall(r"\d+", line)
        assert sorted(map(int, numbers)) == [1, 2, 3, 4, 5, 6], (algorithm, line)
        parse(line[9:])
    assert_still_serves(server)


def test_too_many_sequence_ranges(server, account):
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        many = ",".join(str(i) for i in range(1, 2 * 10001, 2))  # 10001 ranges
        assert len(many) < MAX_LINE - 100
        for command in (f"UID FETCH {many} (FLAGS)", f"UID SEARCH UID {many}",
                        f"UID STORE {many} +FLAGS (\\Seen)"):
            untagged, tagged = c.cmd(command)
            assert tagged.startswith("BAD ") and untagged == [], (command[:30], tagged)
        fine = ",".join(str(i) for i in range(1, 2 * 5000, 2))
        assert c.cmd(f"UID FETCH {fine} (FLAGS)")[1] == "OK UID FETCH completed"
    assert_still_serves(server)


# --- many clients, and clients that vanish ----------------------------------------------------

def test_many_simultaneous_sessions(server, account):
    """30 clients at once, each logging in, selecting and fetching."""
    import concurrent.futures
    # A mailbox of its own: other tests of this module share the server.
    box = f"shared-{uuid.uuid4().hex[:8]}"
    with login(server, account) as c:
        c.cmd(f"CREATE {box}")
        appended(c, box, b"Subject: shared\r\n\r\nfor everyone\r\n")

    def one(i):
        with RawImap(server.imap_port, timeout=60) as c:
            c.login(*account)
            c.cmd(f"SELECT {box}")
            untagged, tagged = c.cmd("FETCH 1 (BODY.PEEK[TEXT])")
            assert tagged == "OK FETCH completed", tagged
            assert untagged == ["* 1 FETCH (BODY[TEXT] {14}\r\nfor everyone\r\n)"], untagged
            assert c.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")
        return i

    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        assert sorted(pool.map(one, range(30))) == list(range(30))
    assert_still_serves(server)


def test_clients_vanishing_during_busy_commands(server, account):
    """Clients that disconnect while their command runs on the pool (a big
    FETCH, a SEARCH over big messages, an APPEND) leave no trace."""
    box = f"busy-{uuid.uuid4().hex[:8]}"
    with login(server, account) as c:
        c.cmd(f"CREATE {box}")
        for i in range(6):
            appended(c, box, b"Subject: busy %d\r\n\r\n" % i + b"word " * 200000 + b"\r\n")
    for command in (b"FETCH 1:* (BODY.PEEK[])", b"SEARCH BODY nomatchanywhere",
                    b"SORT (SUBJECT) UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL",
                    b"COPY 1:* INBOX", b"UID FETCH 1:* (BODYSTRUCTURE ENVELOPE BINARY.PEEK[1])"):
        for _ in range(3):
            c = login(server, account)
            c.cmd(f"SELECT {box}")
            c.send(b"X1 " + command + b"\r\n")
            c.close()
    with login(server, account) as c:
        assert c.cmd(f"DELETE {box}") == ([], "OK DELETE completed")
    assert_still_serves(server)


# --- many commands at once ------------------------------------------------------------------

def test_pipelined_commands_answered_in_order(server, account):
    with login(server, account) as c:
        c.send(b"".join(b"P%d NOOP\r\nQ%d FETCH (\r\n" % (n, n) for n in range(9))
               + b"R1 SELECT INBOX\r\nR2 LOGOUT\r\n")
        rest = c.rest_until_close().decode()
        tagged = [line.split(" ", 2)[:2] for line in rest.split("\r\n")
                  if line and not line.startswith("*")]
        assert tagged == [x for n in range(9) for x in (["P%d" % n, "OK"], ["Q%d" % n, "BAD"])] \
            + [["R1", "OK"], ["R2", "OK"]]
    assert_still_serves(server)


def test_connection_dropped_mid_command(server, empty_account):
    """Clients that vanish in the middle of a literal, an AUTHENTICATE or an
    IDLE leave nothing behind."""
    with login(server, empty_account) as c:
        c.send(b"A1 APPEND INBOX {1000}\r\n")
        assert c.response().startswith("+ ")
        c.send(b"x" * 500)
    with RawImap(server.imap_port) as c:
        c.send(b"A1 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
    with login(server, empty_account) as c:
        c.cmd("SELECT INBOX")
        c.send(b"A1 IDLE\r\n")
        assert c.response() == "+ idling"
    with socket.create_connection(("127.0.0.1", server.imaps_port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")  # half a TLS record
    with login(server, empty_account) as c:
        assert c.cmd("STATUS INBOX (MESSAGES)") == (['* STATUS "INBOX" (MESSAGES 0)'],
                                                    "OK STATUS completed")
    assert_still_serves(server)
