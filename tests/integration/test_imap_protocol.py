"""The IMAP protocol as dijk speaks it, over raw sockets, command by command
and extension by extension: every capability the server announces
(RFC 3501 / RFC 9051 and LITERAL+, ENABLE, ID, IDLE, NAMESPACE, UNSELECT,
UIDPLUS, MOVE, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, CHILDREN,
CONDSTORE, QRESYNC, ESEARCH, SEARCHRES, SORT, SORT=DISPLAY, THREAD, QUOTA,
BINARY, STATUS=SIZE, COMPRESS=DEFLATE, APPENDLIMIT), checked against the
exact responses.

Each test works in an account of its own (conftest.fresh_account) on a server
shared by the module, so that tests can assume an empty, default account:
INBOX, Sent, Drafts, Trash, Junk and Archive, all subscribed.

Loopback may log in without TLS by default, so these tests check that
loopback is not told LOGINDISABLED; test_cleartext.py turns that off
(auth.cleartext_loopback = no) and checks LOGINDISABLED and
NO [PRIVACYREQUIRED] as every other address meets them."""

import base64
import calendar
import re
import socket
import time
import zlib

import pytest

from conftest import RawImap, fresh_account, imap_tls_context, smtp_deliver_raw

COMMON_CAPS = ("LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE"
               " SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN CONDSTORE"
               " QRESYNC ESEARCH SEARCHRES SORT SORT=DISPLAY"
               " THREAD=REFERENCES THREAD=ORDEREDSUBJECT QUOTA QUOTA=RES-STORAGE"
               " BINARY STATUS=SIZE COMPRESS=DEFLATE APPENDLIMIT=52428800")
CAPS_PLAIN = "IMAP4rev1 IMAP4rev2 STARTTLS AUTH=PLAIN SASL-IR " + COMMON_CAPS
CAPS_TLS = "IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR " + COMMON_CAPS
CAPS_AUTHED = "IMAP4rev1 IMAP4rev2 " + COMMON_CAPS
APPEND_LIMIT = 52428800
SYSTEM_FLAGS = "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
PERMANENT_RW = ("OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen"
                " \\Draft \\*)] Flags permitted")
DEFAULT_BOXES = ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
SPECIAL_USE = {"Archive": "\\Archive", "Drafts": "\\Drafts", "Junk": "\\Junk",
               "Sent": "\\Sent", "Trash": "\\Trash"}


# --- parsing IMAP data ------------------------------------------------------

class Q(str):
    """A quoted string or a literal (as opposed to an atom)."""


def parse(text):
    """Parses IMAP data into Python: a list for (...), None for NIL, Q for
    strings and literals, str for atoms (an atom keeps a [...] section
    and a <...> partial with it: BODY[HEADER.FIELDS (A B)]<0>)."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    pos = 0

    def value():
        nonlocal pos
        c = data[pos:pos + 1]
        if c == b"(":
            pos += 1
            items = []
            while True:
                while data[pos:pos + 1] == b" ":
                    pos += 1
                if data[pos:pos + 1] == b")":
                    pos += 1
                    return items
                if pos >= len(data):
                    raise ValueError(f"unclosed list in {data!r}")
                items.append(value())
        if c == b'"':
            pos += 1
            out = bytearray()
            while data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                out += data[pos:pos + 1]
                pos += 1
                if pos >= len(data):
                    raise ValueError(f"unclosed string in {data!r}")
            pos += 1
            return Q(out.decode("utf-8", "surrogateescape"))
        m = re.compile(rb"~?\{(\d+)\}\r\n").match(data, pos)
        if m:
            n = int(m.group(1))
            pos = m.end() + n
            return Q(data[m.end():pos].decode("utf-8", "surrogateescape"))
        start = pos
        depth = 0
        while pos < len(data):
            ch = data[pos:pos + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in (b" ", b"(", b")"):
                break
            pos += 1
        atom = data[start:pos].decode("utf-8", "surrogateescape")
        if atom == "":
            raise ValueError(f"empty atom at {pos} in {data!r}")
        return None if atom.upper() == "NIL" else atom

    items = []
    while pos < len(data):
        if data[pos:pos + 1] == b" ":
            pos += 1
            continue
        items.append(value())
    return items


def fetch_items(response):
    """'* 3 FETCH (A x B y)' -> (3, {"A": x, "B": y})."""
    m = re.match(r"\* (\d+) FETCH (\(.*\))$", response, re.S)
    assert m, response
    [items] = parse(m.group(2))
    assert len(items) % 2 == 0, response
    out = {}
    for i in range(0, len(items), 2):
        name = items[i].upper()
        assert name not in out, f"{name} twice in {response!r}"
        out[name] = items[i + 1]
    return int(m.group(1)), out


def fetches(untagged):
    """The FETCH responses among untagged ones: {seq: items}. Several
    responses for one message are merged (RFC 9051 7.5.2 allows that), but
    they may not contradict each other."""
    out = {}
    for r in untagged:
        if re.match(r"\* \d+ FETCH ", r):
            seq, items = fetch_items(r)
            for k, v in items.items():
                assert out.setdefault(seq, {}).get(k, v) == v, \
                    f"contradicting FETCH responses for {seq}: {untagged}"
                out[seq][k] = v
    return out


def lit(text):
    """An IMAP literal of text, as it appears in a response."""
    return "{%d}\r\n%s" % (len(text.encode("utf-8", "surrogateescape")), text)


def flagset(items):
    return set(items["FLAGS"])


def list_entries(untagged, kind="LIST"):
    """{name: (set of attributes, delimiter, extended data or None)}; each
    name once, and every untagged response a LIST (or LSUB) one."""
    out = {}
    for r in untagged:
        assert r.startswith(f"* {kind} "), untagged
        items = parse(r[len(kind) + 3:])
        attrs, delim, name = items[0], items[1], items[2]
        assert name not in out, f"{name} listed twice: {untagged}"
        out[str(name)] = (set(attrs), delim, items[3] if len(items) > 3 else None)
    return out


def status_items(response):
    m = re.match(r"\* STATUS (.*)$", response)
    assert m, response
    name, items = parse(m.group(1))
    return str(name), {items[i].upper(): int(items[i + 1]) for i in range(0, len(items), 2)}


def esearch(response):
    """'* ESEARCH (TAG "x") [UID] MIN 1 ...' -> (tag, uid, {name: value})."""
    m = re.match(r'\* ESEARCH \(TAG "([^"]*)"\)( UID)?(.*)$', response)
    assert m, response
    rest = m.group(3).split()
    assert len(rest) % 2 == 0, response
    return m.group(1), bool(m.group(2)), {rest[i]: rest[i + 1] for i in range(0, len(rest), 2)}


def seqset(text):
    """'1:3,7' -> [1, 2, 3, 7]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def apply_expunges(uids, untagged):
    """The UIDs left after the EXPUNGE responses, applied one by one
    (each renumbers the ones after it, RFC 3501 7.4.1)."""
    uids = list(uids)
    for r in untagged:
        m = re.match(r"\* (\d+) EXPUNGE$", r)
        if m:
            n = int(m.group(1))
            assert 1 <= n <= len(uids), (r, uids)
            del uids[n - 1]
    return uids


# --- fixtures and helpers ---------------------------------------------------

@pytest.fixture
def server(imap_shared_dijk):
    """The module's shared default server (see conftest.imap_shared_dijk)."""
    return imap_shared_dijk


@pytest.fixture
def account(server):
    """A new, empty account: (address, password)."""
    return fresh_account(server)


@pytest.fixture
def imap(server, account):
    """A client logged in to the test's account."""
    c = RawImap(server.imap_port)
    c.login(*account)
    yield c
    c.close()


def connect(server, account):
    return RawImap(server.imap_port).login(*account)


def message(subject="test", frm="Sender <sender@remote.test>", to="rcpt@example.test",
            date="Mon, 01 Jan 2024 10:00:00 +0000", body="hello\r\n", headers=()):
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}"]
    if date:
        lines.append(f"Date: {date}")
    lines.extend(headers)
    text = "\r\n".join(lines) + "\r\n\r\n" + body
    return text.encode("utf-8")


def append(c, mailbox, data, flags=None, date=None):
    """APPENDs data; returns its UID (from APPENDUID)."""
    cmd = f'APPEND "{mailbox}"'.encode("utf-8")
    if flags is not None:
        cmd += f" ({flags})".encode()
    if date is not None:
        cmd += f' "{date}"'.encode()
    cmd += b" {%d}\r\n" % len(data) + data
    untagged, tagged = c.cmd(cmd)
    m = re.match(r"OK \[APPENDUID (\d+) (\d+)\] APPEND completed$", tagged)
    assert m, (tagged, untagged)
    return int(m.group(2))


def select(c, mailbox, command="SELECT"):
    """SELECT or EXAMINE; returns the untagged responses."""
    untagged, tagged = c.cmd(f'{command} "{mailbox}"')
    expected = "OK [READ-WRITE] SELECT completed" if command == "SELECT" \
        else "OK [READ-ONLY] EXAMINE completed"
    assert tagged == expected, (tagged, untagged)
    return untagged


def status(c, mailbox, items):
    untagged, tagged = c.cmd(f'STATUS "{mailbox}" ({items})')
    assert tagged == "OK STATUS completed", (tagged, untagged)
    assert len(untagged) == 1, untagged
    name, values = status_items(untagged[0])
    assert name == mailbox
    return values


def uidvalidity(c, mailbox):
    return status(c, mailbox, "UIDVALIDITY")["UIDVALIDITY"]


def fill(c, mailbox, count, flags=None):
    """CREATEs mailbox and APPENDs count small messages; returns the UIDs."""
    if mailbox != "INBOX":
        assert c.cmd(f'CREATE "{mailbox}"') == ([], "OK CREATE completed")
    return [append(c, mailbox, message(subject=f"message {i + 1}"), flags)
            for i in range(count)]


def plain(user, password, authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def deliver(server, rcpt, body):
    """An SMTP delivery to rcpt (through the MX port)."""
    return smtp_deliver_raw(server.smtp_port, rcpts=(rcpt,), body=body)


def wait_for(c, predicate, timeout):
    """Reads untagged responses until predicate(response) is true; returns
    the responses read. Fails after timeout seconds."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"nothing matching within {timeout}s; got {got}")
        c.sock.settimeout(left)
        try:
            r = c.response()
        except socket.timeout:
            raise AssertionError(f"nothing matching within {timeout}s; got {got}")
        finally:
            c.sock.settimeout(c.timeout)
        got.append(r)
        if predicate(r):
            return got


# --- greeting, CAPABILITY, NOOP, LOGOUT, ID, NAMESPACE ----------------------

def test_greeting_and_capability(server):
    with RawImap(server.imap_port) as c:
        assert c.greeting == f"* OK [CAPABILITY {CAPS_PLAIN}] dijk ready"
        assert c.cmd("CAPABILITY") == ([f"* CAPABILITY {CAPS_PLAIN}"],
                                       "OK CAPABILITY completed")
        assert c.cmd("capability") == ([f"* CAPABILITY {CAPS_PLAIN}"],
                                       "OK CAPABILITY completed")
        # Loopback may log in without TLS: no LOGINDISABLED. (A client
        # that is neither on loopback nor on TLS cannot be made here.)
        assert "LOGINDISABLED" not in CAPS_PLAIN.split()


def test_capability_after_login(server, account):
    with RawImap(server.imap_port) as c:
        untagged, tagged = c.cmd(f'LOGIN "{account[0]}" "{account[1]}"')
        assert untagged == []
        assert tagged == f"OK [CAPABILITY {CAPS_AUTHED}] Logged in"
        assert c.cmd("CAPABILITY") == ([f"* CAPABILITY {CAPS_AUTHED}"],
                                       "OK CAPABILITY completed")
        select(c, "INBOX")
        assert c.cmd("CAPABILITY") == ([f"* CAPABILITY {CAPS_AUTHED}"],
                                       "OK CAPABILITY completed")


def test_noop_in_every_state(server, account):
    with RawImap(server.imap_port) as c:
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
        c.login(*account)
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
        select(c, "INBOX")
        assert c.cmd("NOOP") == ([], "OK NOOP completed")


@pytest.mark.parametrize("state", ["not-authenticated", "authenticated", "selected"])
def test_logout(server, account, state):
    with RawImap(server.imap_port) as c:
        if state != "not-authenticated":
            c.login(*account)
        if state == "selected":
            select(c, "INBOX")
        assert c.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")
        c.assert_closed()


def test_id(server, account):
    with RawImap(server.imap_port) as c:
        assert c.cmd('ID ("name" "pytest" "version" "1.0")') == (
            ['* ID ("name" "dijk")'], "OK ID completed")
        c.login(*account)
        assert c.cmd("ID NIL") == (['* ID ("name" "dijk")'], "OK ID completed")


def test_namespace(imap):
    assert imap.cmd("NAMESPACE") == (['* NAMESPACE (("" "/")) NIL NIL'],
                                     "OK NAMESPACE completed")


def test_enable(server, account):
    with RawImap(server.imap_port) as c:
        # Only in the authenticated state (RFC 5161 3.1).
        assert c.cmd("ENABLE CONDSTORE")[1].startswith("BAD ")
        c.login(*account)
        assert c.cmd("ENABLE CONDSTORE") == (["* ENABLED CONDSTORE"], "OK ENABLE completed")
        # Unknown capabilities are ignored, not refused.
        assert c.cmd("ENABLE QRESYNC X-NOT-A-CAPABILITY IMAP4rev2") == (
            ["* ENABLED QRESYNC IMAP4rev2"], "OK ENABLE completed")
        assert c.cmd("ENABLE X-UNKNOWN") == (["* ENABLED"], "OK ENABLE completed")
        # enable = "ENABLE" 1*(SP capability)
        untagged, tagged = c.cmd("ENABLE")
        assert tagged.startswith("BAD "), (untagged, tagged)
        assert untagged == []


# --- LOGIN, AUTHENTICATE ----------------------------------------------------

def test_login(server, account):
    user, password = account
    with RawImap(server.imap_port) as c:
        assert c.cmd(f'LOGIN "{user}" "wrong-password"') == (
            [], "NO [AUTHENTICATIONFAILED] Authentication failed")
        # An unknown user gets the same answer as a wrong password.
        assert c.cmd(f'LOGIN "nobody@example.test" "{password}"') == (
            [], "NO [AUTHENTICATIONFAILED] Authentication failed")
        assert c.cmd(f'LOGIN "{user}"')[1].startswith("BAD ")
        # Still not logged in.
        assert c.cmd('SELECT INBOX') == ([], "BAD Log in first")
        # Atoms and literals are astrings too.
        assert c.cmd(b"LOGIN {%d}\r\n%s {%d}\r\n%s" % (
            len(user), user.encode(), len(password), password.encode())) == (
            [], f"OK [CAPABILITY {CAPS_AUTHED}] Logged in")
        # Once logged in, LOGIN is not a command any more.
        assert c.cmd(f'LOGIN "{user}" "{password}"')[1].startswith("BAD ")
    with RawImap(server.imap_port) as c:
        assert c.cmd(f"LOGIN {user} {password}") == (
            [], f"OK [CAPABILITY {CAPS_AUTHED}] Logged in")


def test_authenticate_plain_with_initial_response(server, account):
    user, password = account
    with RawImap(server.imap_port) as c:
        assert c.cmd(f"AUTHENTICATE PLAIN {plain(user, 'wrong')}") == (
            [], "NO [AUTHENTICATIONFAILED] Authentication failed")
        assert c.cmd(f"AUTHENTICATE PLAIN {plain('nobody@example.test', password)}") == (
            [], "NO [AUTHENTICATIONFAILED] Authentication failed")
        # An authorization identity other than the user's own is refused.
        assert c.cmd(f"AUTHENTICATE PLAIN {plain(user, password, 'bob@example.test')}") == (
            [], "NO [AUTHORIZATIONFAILED] Not authorized")
        assert c.cmd(f"authenticate plain {plain(user, password)}") == (
            [], f"OK [CAPABILITY {CAPS_AUTHED}] Logged in")
        select(c, "INBOX")
    with RawImap(server.imap_port) as c:
        # The same authzid as the user is fine.
        assert c.cmd(f"AUTHENTICATE PLAIN {plain(user, password, user)}") == (
            [], f"OK [CAPABILITY {CAPS_AUTHED}] Logged in")


def test_authenticate_plain_with_continuation(server, account):
    user, password = account
    with RawImap(server.imap_port) as c:
        # "*" cancels the exchange: BAD (RFC 3501 6.2.2).
        c.send("A1 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
        c.send("*\r\n")
        assert c.read_tagged("A1") == ([], "BAD Authentication cancelled")
        # Not base64: BAD too.
        c.send("A2 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
        c.send("%%%not-base64%%%\r\n")
        assert c.read_tagged("A2")[1].startswith("BAD ")
        # A wrong password.
        c.send("A3 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
        c.send(plain(user, "wrong") + "\r\n")
        assert c.read_tagged("A3") == ([], "NO [AUTHENTICATIONFAILED] Authentication failed")
        # An unknown mechanism.
        assert c.cmd("AUTHENTICATE X-UNKNOWN")[1].startswith("NO ")
        # And the right one.
        c.send("A4 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
        c.send(plain(user, password) + "\r\n")
        assert c.read_tagged("A4") == ([], f"OK [CAPABILITY {CAPS_AUTHED}] Logged in")
        select(c, "INBOX")


def test_commands_before_login_are_refused(server):
    with RawImap(server.imap_port) as c:
        for command in ("SELECT INBOX", "LIST \"\" *", "CREATE x", "STATUS INBOX (MESSAGES)",
                        "APPEND INBOX {0+}\r\n", "FETCH 1 FLAGS", "UID FETCH 1 FLAGS",
                        "IDLE", "NAMESPACE", "GETQUOTAROOT INBOX", "ENABLE CONDSTORE"):
            untagged, tagged = c.cmd(command)
            assert untagged == [] and tagged.startswith("BAD "), (command, untagged, tagged)
        assert c.cmd("NOOP") == ([], "OK NOOP completed")


# --- TLS ----------------------------------------------------------------------

def test_starttls_then_login(server, account):
    with RawImap(server.imap_port) as c:
        assert c.cmd("STARTTLS") == ([], "OK Begin TLS negotiation now")
        c.sock = imap_tls_context().wrap_socket(c.sock)
        c.sock.settimeout(c.timeout)
        # No STARTTLS any more, and no second one.
        assert c.cmd("CAPABILITY") == ([f"* CAPABILITY {CAPS_TLS}"], "OK CAPABILITY completed")
        assert c.cmd("STARTTLS") == ([], "BAD STARTTLS not available")
        c.login(*account)
        select(c, "INBOX")
        assert c.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")


def test_starttls_discards_pipelined_commands(server, account):
    with RawImap(server.imap_port) as c:
        # Everything after STARTTLS in the same packet is thrown away
        # (it was not protected by TLS: CVE-2011-0411 style injection).
        c.send(f'S1 STARTTLS\r\nS2 LOGIN "{account[0]}" "{account[1]}"\r\nS3 CAPABILITY\r\n')
        assert c.response() == "S1 OK Begin TLS negotiation now"
        assert c.buf == b""
        c.sock = imap_tls_context().wrap_socket(c.sock)
        c.sock.settimeout(c.timeout)
        # Not logged in by the injected LOGIN; S2 and S3 never answered.
        assert c.cmd("SELECT INBOX", tag="S4") == ([], "BAD Log in first")
        assert c.cmd("NOOP", tag="S5") == ([], "OK NOOP completed")


def test_starttls_after_login_is_refused(imap):
    untagged, tagged = imap.cmd("STARTTLS")
    assert untagged == [] and tagged.startswith("BAD "), tagged


def test_implicit_tls(server, account):
    with RawImap(server.imaps_port, tls=True) as c:
        assert c.greeting == f"* OK [CAPABILITY {CAPS_TLS}] dijk ready"
        assert c.cmd("STARTTLS") == ([], "BAD STARTTLS not available")
        c.login(*account)
        append(c, "INBOX", message(subject="over TLS"))
        select(c, "INBOX")
        untagged, tagged = c.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert tagged == "OK FETCH completed"
        assert untagged == ["* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] "
                            + lit("Subject: over TLS\r\n\r\n") + ")"]


# --- COMPRESS=DEFLATE ----------------------------------------------------------

def start_compression(c):
    """Switches a client to raw DEFLATE both ways (RFC 4978)."""
    assert c.buf == b"", f"uncompressed data after the OK: {c.buf!r}"
    zout = zlib.compressobj(6, zlib.DEFLATED, -15)
    zin = zlib.decompressobj(-15)

    def send(data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        c.sock.sendall(zout.compress(data) + zout.flush(zlib.Z_SYNC_FLUSH))

    def fill():
        chunk = c.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unread: {c.buf!r}")
        c.buf += zin.decompress(chunk)

    c.send = send
    c._fill = fill
    c.zin = zin


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "imaps"])
def test_compress_deflate(server, account, tls):
    port = server.imaps_port if tls else server.imap_port
    with RawImap(port, tls=tls) as c:
        # Only once authenticated (RFC 4978: a command-auth).
        assert c.cmd("COMPRESS DEFLATE")[1].startswith("BAD ")
        c.login(*account)
        assert c.cmd("COMPRESS")[1].startswith("BAD ")
        assert c.cmd("COMPRESS X-NOSUCH")[1].startswith(("BAD ", "NO "))
        assert c.cmd("COMPRESS DEFLATE") == ([], "OK DEFLATE active")
        start_compression(c)
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
        # A second COMPRESS is refused.
        assert c.cmd("COMPRESS DEFLATE") == (
            [], "NO [COMPRESSIONACTIVE] Already compressing")
        # Literals both ways, and a big, compressible response.
        body = "line of text that compresses well\r\n" * 3000
        data = message(subject="compressed", body=body)
        uid = append(c, "INBOX", data)
        select(c, "INBOX")
        untagged, tagged = c.cmd(f"UID FETCH {uid} (BODY.PEEK[])")
        assert tagged == "OK UID FETCH completed"
        assert untagged == [f"* 1 FETCH (UID {uid} BODY[] " + lit(data.decode()) + ")"]
        assert c.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")
        # The stream ends with the connection.
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                break
            assert c.zin.decompress(chunk) == b"", chunk


def test_compress_then_idle(server, account):
    """Unsolicited responses during IDLE get through the DEFLATE stream at
    once (each write is flushed)."""
    with RawImap(server.imap_port) as c:
        c.login(*account)
        assert c.cmd("COMPRESS DEFLATE") == ([], "OK DEFLATE active")
        start_compression(c)
        select(c, "INBOX")
        c.send("I1 IDLE\r\n")
        assert c.response() == "+ idling"
        deliver(server, account[0], b"Subject: compressed idle\r\n\r\nhello\r\n")
        wait_for(c, lambda r: r == "* 1 EXISTS", timeout=1.0)
        c.send("DONE\r\n")
        untagged, tagged = c.read_tagged("I1")
        assert tagged == "OK IDLE terminated"


def test_big_fetch_to_a_slow_reader(server, account):
    """A FETCH bigger than the server's output buffer, to a client that
    does not read for a while: everything arrives, in order, exactly."""
    with RawImap(server.imap_port) as c:
        c.login(*account)
        bodies = []
        for i in range(6):
            data = (f"Subject: big {i}\r\n\r\n".encode()
                    + bytes([65 + i]) * (600 * 1024) + b"\r\n")
            bodies.append(data)
            append(c, "INBOX", data)
        select(c, "INBOX")
        c.send("F1 FETCH 1:* (BODY.PEEK[])\r\nF2 NOOP\r\n")
        time.sleep(1.5)
        untagged, tagged = c.read_tagged("F1")
        assert tagged == "OK FETCH completed"
        f = fetches(untagged)
        assert [f[n]["BODY[]"].encode() for n in range(1, 7)] == bodies
        assert c.read_tagged("F2") == ([], "OK NOOP completed")


# --- SELECT, EXAMINE ------------------------------------------------------------

def test_select_and_examine(server, account, imap):
    imap.ok("CREATE box")
    append(imap, "box", message(subject="one"), flags="\\Seen")
    append(imap, "box", message(subject="two"))
    append(imap, "box", message(subject="three"))
    v = uidvalidity(imap, "box")
    modseq = status(imap, "box", "HIGHESTMODSEQ")["HIGHESTMODSEQ"]
    untagged = select(imap, "box")
    # IMAP4rev1 (RFC 3501 6.3.1): FLAGS, EXISTS, RECENT, UNSEEN,
    # PERMANENTFLAGS, UIDNEXT, UIDVALIDITY; and HIGHESTMODSEQ (RFC 7162
    # 3.1.2.1). An IMAP4rev2 LIST line may come too; it is checked below.
    assert [r for r in untagged if not r.startswith("* LIST ")] == [
        f"* {SYSTEM_FLAGS}",
        f"* {PERMANENT_RW}",
        "* 3 EXISTS",
        # This session is the first read-write one to see the three
        # messages: they are \Recent for it (RFC 3501 2.3.2).
        "* 3 RECENT",
        "* OK [UNSEEN 2] First unseen",
        f"* OK [UIDVALIDITY {v}] UIDs valid",
        "* OK [UIDNEXT 4] Predicted next UID",
        f"* OK [HIGHESTMODSEQ {modseq}] Highest",
    ]
    assert [r for r in untagged if r.startswith("* LIST ")] in ([], ['* LIST () "/" "box"'])
    # A store in the selected mailbox works.
    assert imap.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)") == ([], "OK STORE completed")
    # EXAMINE: read-only, no permanent flags. Selecting again ended the
    # session that had claimed the three messages: none is \Recent any more.
    untagged = select(imap, "box", "EXAMINE")
    assert [r for r in untagged if not r.startswith("* LIST ")] == [
        f"* {SYSTEM_FLAGS}",
        "* OK [PERMANENTFLAGS ()] Read-only mailbox",
        "* 3 EXISTS",
        "* 0 RECENT",
        "* OK [UNSEEN 2] First unseen",
        f"* OK [UIDVALIDITY {v}] UIDs valid",
        "* OK [UIDNEXT 4] Predicted next UID",
        f"* OK [HIGHESTMODSEQ {status(imap, 'box', 'HIGHESTMODSEQ')['HIGHESTMODSEQ']}] Highest",
    ]
    untagged, tagged = imap.cmd("STORE 2 +FLAGS (\\Deleted)")
    assert tagged.startswith("NO [READ-ONLY]") or tagged.startswith("NO "), tagged
    # BODY[] does not set \Seen in a read-only mailbox.
    untagged, tagged = imap.cmd("FETCH 3 (BODY[TEXT])")
    assert tagged == "OK FETCH completed"
    assert untagged == ["* 3 FETCH (BODY[TEXT] {7}\r\nhello\r\n)"]
    assert imap.cmd("FETCH 3 FLAGS") == (["* 3 FETCH (FLAGS ())"], "OK FETCH completed")
    assert imap.cmd("EXPUNGE")[1].startswith("NO ")
    # The HIGHESTMODSEQ grew with the STORE.
    assert status(imap, "box", "HIGHESTMODSEQ")["HIGHESTMODSEQ"] > modseq


def test_select_inbox_any_case_and_missing_mailbox(imap):
    append(imap, "INBOX", message())
    untagged = select(imap, "inbox")
    assert "* 1 EXISTS" in untagged
    assert imap.cmd("FETCH 1 (UID)") == (["* 1 FETCH (UID 1)"], "OK FETCH completed")
    # A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
    assert imap.cmd("SELECT nosuch") == ([], "NO [NONEXISTENT] No such mailbox")
    assert imap.cmd("FETCH 1 (UID)") == ([], "BAD No mailbox selected")
    assert imap.cmd("EXAMINE nosuch") == ([], "NO [NONEXISTENT] No such mailbox")


def test_select_in_condstore_session_reports_closed(imap):
    imap.ok("CREATE other")
    imap.ok("ENABLE CONDSTORE")
    select(imap, "INBOX")
    untagged = select(imap, "other")
    # The [CLOSED] boundary comes first (RFC 7162 3.2.11 / RFC 9051 7.1).
    assert untagged[0].startswith("* OK [CLOSED]"), untagged
    assert sum(r.startswith("* OK [CLOSED]") for r in untagged) == 1


def test_status_on_selected_mailbox(imap):
    fill(imap, "box", 2)
    select(imap, "box")
    assert status(imap, "box", "MESSAGES UIDNEXT") == {"MESSAGES": 2, "UIDNEXT": 3}


# --- CREATE, DELETE, RENAME ------------------------------------------------------

def test_create_hierarchy(imap):
    assert imap.cmd("CREATE a/b/c") == ([], "OK CREATE completed")
    # The parents were made too, as real mailboxes.
    entries = list_entries(imap.ok('LIST "" "a*"'))
    assert entries == {
        "a": ({"\\HasChildren"}, "/", None),
        "a/b": ({"\\HasChildren"}, "/", None),
        "a/b/c": ({"\\HasNoChildren"}, "/", None),
    }
    assert imap.cmd("CREATE a/b") == ([], "NO [ALREADYEXISTS] Mailbox exists already")
    assert imap.cmd("CREATE a/b/c") == ([], "NO [ALREADYEXISTS] Mailbox exists already")
    assert imap.cmd("CREATE INBOX")[1].startswith("NO ")
    assert imap.cmd("CREATE inbox")[1].startswith("NO ")
    # A trailing delimiter only says "will have children".
    assert imap.cmd("CREATE d/") == ([], "OK CREATE completed")
    assert list_entries(imap.ok('LIST "" d*')) == {"d": ({"\\HasNoChildren"}, "/", None)}
    # Sub-mailboxes of INBOX.
    assert imap.cmd("CREATE INBOX/sub") == ([], "OK CREATE completed")
    assert list_entries(imap.ok('LIST "" INBOX*')) == {
        "INBOX": ({"\\HasChildren"}, "/", None),
        "INBOX/sub": ({"\\HasNoChildren"}, "/", None),
    }
    # Every new mailbox can be selected, and is empty.
    for name in ("a", "a/b", "a/b/c", "d", "INBOX/sub"):
        assert "* 0 EXISTS" in select(imap, name)


def test_delete(imap):
    fill(imap, "p/q", 2)
    assert imap.cmd("DELETE nosuch") == ([], "NO [NONEXISTENT] No such mailbox")
    assert imap.cmd("DELETE INBOX")[1].startswith("NO ")
    assert imap.cmd("DELETE inbox")[1].startswith("NO ")
    # A mailbox with children is refused here; the child stays.
    assert imap.cmd("DELETE p")[1].startswith("NO ")
    assert status(imap, "p/q", "MESSAGES") == {"MESSAGES": 2}
    assert imap.cmd("DELETE p/q") == ([], "OK DELETE completed")
    assert imap.cmd('STATUS p/q (MESSAGES)') == ([], "NO [NONEXISTENT] No such mailbox")
    assert list_entries(imap.ok('LIST "" p*')) == {"p": ({"\\HasNoChildren"}, "/", None)}
    assert imap.cmd("DELETE p") == ([], "OK DELETE completed")
    assert list_entries(imap.ok('LIST "" *')).keys() == set(DEFAULT_BOXES)


def test_recreated_mailbox_does_not_reuse_uids(imap):
    """RFC 9051 6.3.4/6.3.5: a mailbox created again under a deleted one's
    name has higher UIDs or another UIDVALIDITY."""
    uids = fill(imap, "again", 3)
    old = uidvalidity(imap, "again")
    imap.ok("DELETE again")
    imap.ok("CREATE again")
    uid = append(imap, "again", message())
    assert uidvalidity(imap, "again") != old or uid > max(uids)


def test_rename_with_children(imap):
    fill(imap, "p/q/r", 1)
    append(imap, "p/q", message(subject="in q"))
    append(imap, "p", message(subject="in p"), flags="\\Flagged")
    imap.ok("SUBSCRIBE p/q")
    assert imap.cmd("RENAME p z") == ([], "OK RENAME completed")
    entries = list_entries(imap.ok('LIST "" *'))
    assert not [n for n in entries if n.startswith("p")], entries
    assert {n: entries[n] for n in entries if n.startswith("z")} == {
        "z": ({"\\HasChildren"}, "/", None),
        "z/q": ({"\\HasChildren"}, "/", None),
        "z/q/r": ({"\\HasNoChildren"}, "/", None),
    }
    assert status(imap, "z/q", "MESSAGES") == {"MESSAGES": 1}
    assert status(imap, "z/q/r", "MESSAGES") == {"MESSAGES": 1}
    # No session had selected it: the message is \Recent for this one.
    select(imap, "z")
    assert imap.cmd("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])") == (
        ["* 1 FETCH (FLAGS (\\Flagged \\Recent) BODY[HEADER.FIELDS (SUBJECT)] "
         + lit("Subject: in p\r\n\r\n") + ")"], "OK FETCH completed")
    imap.ok("UNSELECT")
    # The subscription moved along.
    assert list_entries(imap.ok('LSUB "" z*'), "LSUB").keys() == {"z/q"}
    # Errors.
    assert imap.cmd("RENAME nosuch x") == ([], "NO [NONEXISTENT] No such mailbox")
    assert imap.cmd("RENAME z Sent") == ([], "NO [ALREADYEXISTS] Mailbox exists already")
    assert imap.cmd("RENAME z INBOX")[1].startswith("NO ")
    assert imap.cmd("RENAME z z/q/new")[1].startswith("NO ")
    # Into a new hierarchy: the parents are made.
    assert imap.cmd("RENAME z/q/r n1/n2/r") == ([], "OK RENAME completed")
    assert {n for n in list_entries(imap.ok('LIST "" n1*'))} == {"n1", "n1/n2", "n1/n2/r"}


def test_rename_inbox_moves_its_messages(imap):
    uids = [append(imap, "INBOX", message(subject=f"inbox {i}")) for i in range(3)]
    before = status(imap, "INBOX", "UIDNEXT UIDVALIDITY")
    assert imap.cmd("RENAME INBOX Old") == ([], "OK RENAME completed")
    assert status(imap, "Old", "MESSAGES") == {"MESSAGES": 3}
    # INBOX is still there, empty, and does not reuse the UIDs.
    after = status(imap, "INBOX", "MESSAGES UIDNEXT UIDVALIDITY")
    assert after["MESSAGES"] == 0
    assert after["UIDVALIDITY"] != before["UIDVALIDITY"] or after["UIDNEXT"] >= before["UIDNEXT"]
    assert "INBOX" in list_entries(imap.ok('LIST "" *'))
    select(imap, "Old")
    untagged, _ = imap.cmd("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    got = {items["UID"]: items["BODY[HEADER.FIELDS (SUBJECT)]"]
           for items in fetches(untagged).values()}
    assert got == {str(u): f"Subject: inbox {i}\r\n\r\n" for i, u in enumerate(uids)}
    uid = append(imap, "INBOX", message(subject="new"))
    select(imap, "INBOX")
    assert imap.cmd("UID FETCH 1:* (UID)") == ([f"* 1 FETCH (UID {uid})"], "OK UID FETCH completed")


# --- SUBSCRIBE, LSUB --------------------------------------------------------------

def test_subscribe_unsubscribe_lsub(imap):
    # A new account has its default mailboxes subscribed.
    assert list_entries(imap.ok('LSUB "" *'), "LSUB").keys() == set(DEFAULT_BOXES)
    imap.ok("CREATE news")
    assert "news" not in list_entries(imap.ok('LSUB "" *'), "LSUB")
    assert imap.cmd("SUBSCRIBE news") == ([], "OK SUBSCRIBE completed")
    assert imap.cmd('LSUB "" news') == (['* LSUB () "/" "news"'], "OK LSUB completed")
    assert imap.cmd("UNSUBSCRIBE news") == ([], "OK UNSUBSCRIBE completed")
    assert imap.cmd('LSUB "" news') == ([], "OK LSUB completed")
    # A subscription outlives its mailbox (RFC 3501 6.3.6): LSUB shows it
    # \Noselect, LIST (SUBSCRIBED) \NonExistent.
    imap.ok("CREATE gone")
    imap.ok("SUBSCRIBE gone")
    imap.ok("DELETE gone")
    assert imap.cmd('LSUB "" gone') == (['* LSUB (\\Noselect) "/" "gone"'], "OK LSUB completed")
    assert list_entries(imap.ok('LIST (SUBSCRIBED) "" gone')) == {
        "gone": ({"\\Subscribed", "\\NonExistent"}, "/", None)}


def test_lsub_percent_shows_unsubscribed_parent_as_noselect(imap):
    """RFC 3501 6.3.9: "foo/bar" subscribed, "foo" not: LSUB "" % must
    return foo, flagged \\Noselect."""
    imap.ok("CREATE foo/bar")
    imap.ok("SUBSCRIBE foo/bar")
    entries = list_entries(imap.ok('LSUB "" %'), "LSUB")
    assert entries["foo"] == ({"\\Noselect"}, "/", None), entries
    assert "foo/bar" not in entries


# --- LIST -----------------------------------------------------------------------

@pytest.fixture
def tree(imap):
    """Work, Work/Projects, Work/Projects/Alpha, Personal on the defaults;
    Work/Projects/Alpha subscribed, Work not."""
    imap.ok("CREATE Work/Projects/Alpha")
    imap.ok("CREATE Personal")
    imap.ok("SUBSCRIBE Work/Projects/Alpha")
    return imap


def test_list_patterns(tree):
    imap = tree
    entries = list_entries(imap.ok('LIST "" *'))
    expected = {name: ({"\\HasNoChildren"} | ({SPECIAL_USE[name]} if name in SPECIAL_USE
                                                else set()), "/", None)
                for name in DEFAULT_BOXES}
    expected.update({
        "Work": ({"\\HasChildren"}, "/", None),
        "Work/Projects": ({"\\HasChildren"}, "/", None),
        "Work/Projects/Alpha": ({"\\HasNoChildren"}, "/", None),
        "Personal": ({"\\HasNoChildren"}, "/", None),
    })
    assert entries == expected
    # % does not cross the delimiter.
    assert list_entries(imap.ok('LIST "" %')).keys() == set(DEFAULT_BOXES) | {"Work", "Personal"}
    assert list_entries(imap.ok('LIST "" Work/%')).keys() == {"Work/Projects"}
    assert list_entries(imap.ok('LIST "" Work/*')).keys() == {"Work/Projects",
                                                               "Work/Projects/Alpha"}
    assert list_entries(imap.ok('LIST "" %/%/%')).keys() == {"Work/Projects/Alpha"}
    assert list_entries(imap.ok('LIST "" *Alpha')).keys() == {"Work/Projects/Alpha"}
    assert list_entries(imap.ok('LIST "" W%s')).keys() == set()
    assert list_entries(imap.ok('LIST "" W*s')).keys() == {"Work/Projects"}
    # The reference is put before the pattern.
    assert list_entries(imap.ok('LIST "Work/" %')).keys() == {"Work/Projects"}
    assert list_entries(imap.ok('LIST Work/Projects/ *')).keys() == {"Work/Projects/Alpha"}
    # INBOX in any case; other names are case-sensitive.
    assert imap.cmd('LIST "" inbox') == (['* LIST (\\HasNoChildren) "/" "INBOX"'],
                                         "OK LIST completed")
    assert imap.cmd('LIST "" work') == ([], "OK LIST completed")
    assert imap.cmd('LIST "" nosuch') == ([], "OK LIST completed")


def test_list_empty_pattern_gives_the_delimiter(imap):
    assert imap.cmd('LIST "" ""') == (['* LIST (\\Noselect) "/" ""'], "OK LIST completed")


def test_list_special_use(tree):
    imap = tree
    # Selection option SPECIAL-USE (RFC 6154): only those.
    entries = list_entries(imap.ok('LIST (SPECIAL-USE) "" *'))
    assert {n: e[0] & set(SPECIAL_USE.values()) for n, e in entries.items()} == {
        n: {u} for n, u in SPECIAL_USE.items()}
    # Return option SPECIAL-USE: everything, the attributes on those.
    entries = list_entries(imap.ok('LIST "" * RETURN (SPECIAL-USE)'))
    assert len(entries) == 10
    for name, (attrs, _, _) in entries.items():
        assert attrs & set(SPECIAL_USE.values()) == ({SPECIAL_USE[name]} if name in SPECIAL_USE
                                                     else set()), (name, attrs)


def test_list_extended_subscribed(tree):
    imap = tree
    imap.ok("UNSUBSCRIBE Junk")
    entries = list_entries(imap.ok('LIST (SUBSCRIBED) "" *'))
    subscribed = set(DEFAULT_BOXES) - {"Junk"} | {"Work/Projects/Alpha"}
    assert entries.keys() == subscribed
    for name, (attrs, _, _) in entries.items():
        assert "\\Subscribed" in attrs, (name, attrs)
    # RECURSIVEMATCH: Work has a subscribed child: listed with CHILDINFO
    # (RFC 5258 3.5), without \Subscribed.
    entries = list_entries(imap.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" %'))
    assert entries.keys() == set(DEFAULT_BOXES) - {"Junk"} | {"Work"}
    attrs, _, extra = entries["Work"]
    assert "\\Subscribed" not in attrs
    assert extra == ["CHILDINFO", ["SUBSCRIBED"]]
    assert entries["INBOX"][2] is None
    # RECURSIVEMATCH alone is an error.
    assert imap.cmd('LIST (RECURSIVEMATCH) "" %')[1].startswith("BAD ")
    assert imap.cmd('LIST (NOSUCHOPTION) "" %')[1].startswith("BAD ")
    # RETURN (SUBSCRIBED): all, with \Subscribed on the subscribed ones.
    entries = list_entries(imap.ok('LIST "" * RETURN (SUBSCRIBED)'))
    assert len(entries) == 10
    assert {n for n, e in entries.items() if "\\Subscribed" in e[0]} == subscribed


def test_list_return_children_and_several_patterns(tree):
    imap = tree
    entries = list_entries(imap.ok('LIST "" ("INBOX" "Work" "Work/Projects") RETURN (CHILDREN)'))
    assert entries == {
        "INBOX": ({"\\HasNoChildren"}, "/", None),
        "Work": ({"\\HasChildren"}, "/", None),
        "Work/Projects": ({"\\HasChildren"}, "/", None),
    }


def test_list_status(tree):
    """LIST-STATUS (RFC 5819): each LIST followed by its STATUS."""
    imap = tree
    append(imap, "Personal", message(), flags="\\Seen")
    append(imap, "Personal", message())
    append(imap, "Personal", message())
    untagged, tagged = imap.cmd('LIST "" % RETURN (STATUS (MESSAGES UNSEEN))')
    assert tagged == "OK LIST completed"
    pairs = {}
    for i in range(0, len(untagged), 2):
        assert untagged[i].startswith("* LIST "), untagged
        name = str(parse(untagged[i][7:])[2])
        assert untagged[i + 1].startswith("* STATUS "), untagged
        assert status_items(untagged[i + 1])[0] == name
        pairs[name] = status_items(untagged[i + 1])[1]
    assert pairs == {n: {"MESSAGES": 0, "UNSEEN": 0} for n in DEFAULT_BOXES + ["Work"]} | {
        "Personal": {"MESSAGES": 3, "UNSEEN": 2}}


# --- STATUS ---------------------------------------------------------------------

def test_status_items(imap):
    imap.ok("CREATE box")
    sizes = []
    for flags in ("\\Seen", "\\Deleted", "", "\\Seen \\Deleted"):
        data = message(subject=f"status {flags}")
        sizes.append(len(data))
        append(imap, "box", data, flags=flags)
    untagged, tagged = imap.cmd(
        "STATUS box (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ RECENT)")
    assert tagged == "OK STATUS completed"
    [line] = untagged
    name, values = status_items(line)
    assert name == "box"
    # Items come back in the order asked. No session has selected box yet:
    # all four messages are still recent.
    assert re.match(r'\* STATUS "box" \(MESSAGES 4 UIDNEXT 5 UIDVALIDITY \d+ UNSEEN 2'
                    r' DELETED 2 SIZE \d+ HIGHESTMODSEQ \d+ RECENT 4\)$', line), line
    assert values["SIZE"] == sum(sizes)
    select(imap, "box")
    untagged, _ = imap.cmd("FETCH 1:* (MODSEQ)")
    assert values["HIGHESTMODSEQ"] == max(int(i["MODSEQ"][0]) for i in fetches(untagged).values())
    imap.ok("UNSELECT")
    # The SELECT claimed them, and the UNSELECT ended their recency.
    assert status(imap, "box", "RECENT") == {"RECENT": 0}
    assert imap.cmd("STATUS nosuch (MESSAGES)") == ([], "NO [NONEXISTENT] No such mailbox")
    assert imap.cmd("STATUS box (NOSUCHITEM)")[1].startswith("BAD ")
    assert imap.cmd("STATUS box MESSAGES")[1].startswith("BAD ")
    # APPENDLIMIT as a STATUS item (RFC 7889).
    assert status(imap, "box", "APPENDLIMIT") == {"APPENDLIMIT": APPEND_LIMIT}
    # QUOTA=RES-STORAGE requires the DELETED-STORAGE item (RFC 9208 5.1):
    # the space an EXPUNGE would free (the \\Deleted messages 2 and 4).
    untagged, tagged = imap.cmd("STATUS box (DELETED DELETED-STORAGE)")
    assert tagged == "OK STATUS completed", tagged
    values = status_items(untagged[0])[1]
    freed = sizes[1] + sizes[3]
    assert values["DELETED"] == 2
    assert values["DELETED-STORAGE"] in (freed, (freed + 1023) // 1024), (values, freed)


# --- mailbox names: modified UTF-7 and UTF-8 --------------------------------------

def test_modified_utf7_names(server, account, imap):
    assert imap.cmd('CREATE "Entw&APw-rfe"') == ([], "OK CREATE completed")
    assert imap.cmd('CREATE "A&-B"') == ([], "OK CREATE completed")  # "A&B"
    assert imap.cmd('LIST "" "Entw*"') == (['* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"'],
                                           "OK LIST completed")
    assert imap.cmd('LIST "" "A&-*"') == (['* LIST (\\HasNoChildren) "/" "A&-B"'],
                                          "OK LIST completed")
    append(imap, "Entw&APw-rfe", message())
    assert status(imap, "Entw&APw-rfe", "MESSAGES") == {"MESSAGES": 1}
    # A client that enabled IMAP4rev2 sees and uses UTF-8.
    with connect(server, account) as c:
        assert c.cmd("ENABLE IMAP4rev2") == (["* ENABLED IMAP4rev2"], "OK ENABLE completed")
        assert c.cmd('LIST "" "Entw*"') == (['* LIST (\\HasNoChildren) "/" "Entwürfe"'],
                                            "OK LIST completed")
        assert c.cmd('LIST "" "A&*"') == (['* LIST (\\HasNoChildren) "/" "A&B"'],
                                          "OK LIST completed")
        assert c.cmd('CREATE "Brouillons/été"') == ([], "OK CREATE completed")
        assert status(c, "Entwürfe", "MESSAGES") == {"MESSAGES": 1}
    # ... which the IMAP4rev1 client sees in modified UTF-7.
    assert list_entries(imap.ok('LIST "" "Brouillons/*"')).keys() == {"Brouillons/&AOk-t&AOk-"}
    assert status(imap, "Brouillons/&AOk-t&AOk-", "MESSAGES") == {"MESSAGES": 0}


def test_names_with_spaces_quotes_and_backslashes(imap):
    for name, quoted in (("My Folder", '"My Folder"'), ('say "hi"', '"say \\"hi\\""'),
                         ("back\\slash", '"back\\\\slash"'), ("(paren)", '"(paren)"'),
                         ("a%b*c", '"a%b*c"')):
        assert imap.cmd(f"CREATE {quoted}") == ([], "OK CREATE completed"), name
        untagged, tagged = imap.cmd(f'LIST "" {quoted}')
        assert tagged == "OK LIST completed"
        assert [str(parse(r[7:])[2]) for r in untagged] == [name], untagged
        append(imap, name.replace("\\", "\\\\").replace('"', '\\"'), message())
        untagged, tagged = imap.cmd(f"STATUS {quoted} (MESSAGES)")
        assert tagged == "OK STATUS completed"
        assert status_items(untagged[0]) == (name, {"MESSAGES": 1})
        assert imap.cmd(f"DELETE {quoted}") == ([], "OK DELETE completed"), name
    # A literal works as a mailbox name too.
    assert imap.cmd(b"CREATE {9}\r\nliteral 1") == ([], "OK CREATE completed")
    assert status(imap, "literal 1", "MESSAGES") == {"MESSAGES": 0}


# --- APPEND ---------------------------------------------------------------------

def test_append_flags_date_and_appenduid(imap):
    imap.ok("CREATE box")
    v = uidvalidity(imap, "box")
    data = message(subject="appended")
    untagged, tagged = imap.cmd(
        b'APPEND box (\\Seen \\Flagged $Label1) "14-Jul-2021 09:30:00 +0200" {%d}\r\n'
        % len(data) + data)
    assert untagged == []
    assert tagged == f"OK [APPENDUID {v} 1] APPEND completed"
    # No flags and no date: now.
    before = time.time()
    uid = append(imap, "box", data)
    assert uid == 2
    # The first session to select box: both messages are \Recent for it.
    select(imap, "box")
    untagged, _ = imap.cmd("FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    f = fetches(untagged)
    assert flagset(f[1]) == {"\\Seen", "\\Flagged", "\\Recent", "$Label1"}
    assert f[1]["INTERNALDATE"] == "14-Jul-2021 07:30:00 +0000" or \
        f[1]["INTERNALDATE"] == "14-Jul-2021 09:30:00 +0200"
    assert f[1]["RFC822.SIZE"] == str(len(data))
    assert f[1]["BODY[]"] == data.decode()
    assert flagset(f[2]) == {"\\Recent"}
    assert f[2]["INTERNALDATE"].endswith(" +0000"), f[2]
    when = calendar.timegm(time.strptime(f[2]["INTERNALDATE"][:20], "%d-%b-%Y %H:%M:%S"))
    assert before - 5 <= when <= time.time() + 5
    # A date-time that is not one; flags that cannot be set.
    assert imap.cmd(b'APPEND box "31-Feb-2021 09:30:00 +0200" {5}\r\nhello')[1].startswith("BAD")
    assert imap.cmd(b'APPEND box (\\Recent) {5}\r\nhello')[1].startswith("BAD")
    assert imap.cmd(b'APPEND box (\\Bogus) {5}\r\nhello')[1].startswith("BAD")
    assert status(imap, "box", "MESSAGES") == {"MESSAGES": 2}


def test_append_to_selected_mailbox_reports_exists(imap):
    fill(imap, "box", 1)
    select(imap, "box")
    data = message()
    untagged, tagged = imap.cmd(b"APPEND box {%d}\r\n" % len(data) + data)
    assert tagged.startswith("OK [APPENDUID ")
    # The new message is \Recent for this session, like the one it selected.
    assert untagged == ["* 2 EXISTS", "* 2 RECENT"]


def test_append_trycreate(imap):
    data = message()
    assert imap.cmd(b"APPEND nosuch {%d}\r\n" % len(data) + data) == (
        [], "NO [TRYCREATE] No such mailbox")
    # Not created.
    assert imap.cmd('LIST "" nosuch') == ([], "OK LIST completed")


def test_append_over_appendlimit_refused_before_data(imap):
    imap.send(b"T1 APPEND INBOX {%d}\r\n" % (APPEND_LIMIT + 1))
    # NO [TOOBIG] straight away, not "+": no data is sent.
    assert imap.response() == f"T1 NO [TOOBIG] Literal larger than {APPEND_LIMIT} bytes"
    assert imap.cmd("NOOP") == ([], "OK NOOP completed")
    assert status(imap, "INBOX", "MESSAGES") == {"MESSAGES": 0}


def test_append_literal_plus(imap):
    data = message(subject="nonsync")
    imap.send(b"T1 APPEND INBOX (\\Seen) {%d+}\r\n" % len(data) + data + b"\r\n"
              b"T2 NOOP\r\n")
    # No continuation request: straight to the tagged replies.
    r = imap.response()
    assert re.match(r"T1 OK \[APPENDUID \d+ 1\] APPEND completed$", r), r
    assert imap.response() == "T2 OK NOOP completed"
    select(imap, "INBOX")
    untagged, _ = imap.cmd("FETCH 1 (FLAGS BODY.PEEK[])")
    assert fetches(untagged) == {1: {"FLAGS": ["\\Seen", "\\Recent"], "BODY[]": data.decode()}}


def test_append_literal8_with_binary(imap):
    """BINARY (RFC 3516): ~{n} may carry NUL; a plain literal may not."""
    body = b"\x00\x01\x02binary\x00\r\n"
    data = (b"From: a@remote.test\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
            b"\r\n" + body)
    untagged, tagged = imap.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
    assert tagged.startswith("NO ") or tagged.startswith("BAD "), tagged
    untagged, tagged = imap.cmd(b"APPEND INBOX ~{%d}\r\n" % len(data) + data)
    assert re.match(r"OK \[APPENDUID \d+ \d+\] APPEND completed$", tagged), tagged
    select(imap, "INBOX")
    assert imap.cmd("FETCH 1 (BINARY.SIZE[1] RFC822.SIZE)") == (
        [f"* 1 FETCH (BINARY.SIZE[1] {len(body)} RFC822.SIZE {len(data)})"],
        "OK FETCH completed")
    untagged, tagged = imap.cmd("FETCH 1 (BINARY.PEEK[1])")
    assert tagged == "OK FETCH completed"
    assert untagged == ["* 1 FETCH (BINARY[1] ~{%d}\r\n%s)" % (len(body), body.decode())]


# --- FETCH ----------------------------------------------------------------------

SIMPLE = (b"From: Alice Example <alice@example.test>\r\n"
          b"To: Bob <bob@example.test>, carol@example.test\r\n"
          b"Cc: dave@example.test\r\n"
          b"Subject: Hello there\r\n"
          b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
          b"Message-ID: <m1@example.test>\r\n"
          b"\r\n"
          b"Body text line\r\n")
SIMPLE_HEADER = SIMPLE[:SIMPLE.index(b"\r\n\r\n") + 4]
MULTIPART = (b"From: a@example.test\r\n"
             b"Subject: multi\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=XX\r\n"
             b"\r\n"
             b"preamble\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain; charset=us-ascii\r\n"
             b"\r\n"
             b"first part\r\n"
             b"\r\n"
             b"--XX\r\n"
             b"Content-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"\r\n"
             b"AAECAwQF\r\n"
             b"--XX--\r\n")
ENVELOPE = ('("Mon, 7 Feb 1994 21:52:25 -0800" "Hello there"'
            ' (("Alice Example" NIL "alice" "example.test"))'
            ' (("Alice Example" NIL "alice" "example.test"))'
            ' (("Alice Example" NIL "alice" "example.test"))'
            ' (("Bob" NIL "bob" "example.test")(NIL NIL "carol" "example.test"))'
            ' ((NIL NIL "dave" "example.test")) NIL NIL "<m1@example.test>")')
BODY_SIMPLE = '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 16 1)'


@pytest.fixture
def fetchbox(imap):
    """box: 1 = SIMPLE (\\Seen $Important, dated 1994), 2 = MULTIPART; selected
    by the first session to do so, for which both are \\Recent."""
    imap.ok("CREATE box")
    append(imap, "box", SIMPLE, flags="\\Seen $Important", date="07-Feb-1994 21:52:25 -0800")
    append(imap, "box", MULTIPART, date="01-Mar-2020 12:00:00 +0000")
    select(imap, "box")
    return imap


def test_fetch_static_items(fetchbox):
    imap = fetchbox
    assert imap.cmd("FETCH 1 (FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE)") == ([
        '* 1 FETCH (FLAGS (\\Seen \\Recent $Important) UID 1'
        ' INTERNALDATE "08-Feb-1994 05:52:25 +0000"'
        f' RFC822.SIZE {len(SIMPLE)} ENVELOPE {ENVELOPE})'], "OK FETCH completed")
    untagged, _ = imap.cmd("FETCH 2 (ENVELOPE)")
    assert untagged == ['* 2 FETCH (ENVELOPE (NIL "multi" ((NIL NIL "a" "example.test"))'
                        ' ((NIL NIL "a" "example.test")) ((NIL NIL "a" "example.test"))'
                        ' NIL NIL NIL NIL NIL))']
    untagged, _ = imap.cmd("FETCH 1:2 (BODYSTRUCTURE)")
    assert untagged == [
        '* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 16 1'
        ' NIL NIL NIL NIL))',
        '* 2 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 12 1'
        ' NIL NIL NIL NIL)("application" "octet-stream" NIL NIL NIL "base64" 8 NIL NIL NIL NIL)'
        ' "mixed" ("boundary" "XX") NIL NIL NIL))',
    ]
    untagged, _ = imap.cmd("FETCH 1:2 (BODY)")
    assert untagged == [
        f'* 1 FETCH (BODY {BODY_SIMPLE})',
        '* 2 FETCH (BODY (("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 12 1)'
        '("application" "octet-stream" NIL NIL NIL "base64" 8) "mixed"))',
    ]


def test_fetch_macros(fetchbox):
    imap = fetchbox
    fast = (f'FLAGS (\\Seen \\Recent $Important) INTERNALDATE "08-Feb-1994 05:52:25 +0000"'
            f' RFC822.SIZE {len(SIMPLE)}')
    assert imap.cmd("FETCH 1 FAST") == ([f"* 1 FETCH ({fast})"], "OK FETCH completed")
    assert imap.cmd("FETCH 1 ALL") == ([f"* 1 FETCH ({fast} ENVELOPE {ENVELOPE})"],
                                       "OK FETCH completed")
    assert imap.cmd("FETCH 1 FULL") == (
        [f"* 1 FETCH ({fast} ENVELOPE {ENVELOPE} BODY {BODY_SIMPLE})"], "OK FETCH completed")
    # A macro is used by itself.
    assert imap.cmd("FETCH 1 (ALL)")[1].startswith("BAD ")
    assert imap.cmd("FETCH 1 (FAST UID)")[1].startswith("BAD ")


def test_fetch_sections(fetchbox):
    imap = fetchbox
    text = SIMPLE[len(SIMPLE_HEADER):]

    def one(items, seq=1):
        untagged, tagged = imap.cmd(f"FETCH {seq} ({items})")
        assert tagged == "OK FETCH completed", tagged
        assert len(untagged) == 1, untagged
        return fetch_items(untagged[0])[1]

    assert one("BODY.PEEK[]") == {"BODY[]": SIMPLE.decode()}
    assert one("BODY.PEEK[HEADER]") == {"BODY[HEADER]": SIMPLE_HEADER.decode()}
    assert one("BODY.PEEK[TEXT]") == {"BODY[TEXT]": text.decode()}
    assert one("BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]") == {
        "BODY[HEADER.FIELDS (SUBJECT FROM)]":
            "From: Alice Example <alice@example.test>\r\nSubject: Hello there\r\n\r\n"}
    got = one("BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM To Cc Date)]")
    assert {k.upper(): v for k, v in got.items()} == {
        "BODY[HEADER.FIELDS.NOT (SUBJECT FROM TO CC DATE)]": "Message-ID: <m1@example.test>\r\n\r\n"}
    # A field that is not there: only the blank line.
    assert one("BODY.PEEK[HEADER.FIELDS (X-NONE)]") == {
        "BODY[HEADER.FIELDS (X-NONE)]": "\r\n"}
    # Part 1 of a non-multipart message is its body.
    assert one("BODY.PEEK[1]") == {"BODY[1]": text.decode()}
    # Partial: <start.length>; the response names only the start.
    untagged, _ = imap.cmd("FETCH 1 (BODY.PEEK[]<0.10>)")
    assert untagged == ["* 1 FETCH (BODY[]<0> {10}\r\nFrom: Alic)"]
    untagged, _ = imap.cmd("FETCH 1 (BODY.PEEK[TEXT]<5.100>)")
    assert untagged == ["* 1 FETCH (BODY[TEXT]<5> {11}\r\ntext line\r\n)"]
    untagged, _ = imap.cmd("FETCH 1 (BODY.PEEK[TEXT]<1000.10>)")
    assert untagged == ["* 1 FETCH (BODY[TEXT]<1000> {0}\r\n)"]
    # Multipart sections.
    assert one("BODY.PEEK[1]", 2) == {"BODY[1]": "first part\r\n"}
    assert one("BODY.PEEK[1.MIME]", 2) == {
        "BODY[1.MIME]": "Content-Type: text/plain; charset=us-ascii\r\n\r\n"}
    assert one("BODY.PEEK[2]", 2) == {"BODY[2]": "AAECAwQF"}
    assert one("BODY.PEEK[2.MIME]", 2) == {
        "BODY[2.MIME]": "Content-Type: application/octet-stream\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\n"}
    assert one("BODY.PEEK[TEXT]", 2) == {
        "BODY[TEXT]": MULTIPART[MULTIPART.index(b"\r\n\r\n") + 4:].decode()}
    # RFC822, RFC822.HEADER, RFC822.TEXT.
    assert one("RFC822.HEADER") == {"RFC822.HEADER": SIMPLE_HEADER.decode()}
    # All of the above were peeks: message 2 is still unseen.
    assert one("FLAGS", 2) == {"FLAGS": ["\\Recent"]}
    # Several items in one response, in the order asked (RFC 9051 allows
    # any order; dijk keeps it).
    untagged, _ = imap.cmd("FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)")
    assert untagged == ["* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] "
                        + lit("Subject: Hello there\r\n\r\n") + f" RFC822.SIZE {len(SIMPLE)})"]


def test_fetch_binary(fetchbox):
    imap = fetchbox
    assert imap.cmd("FETCH 2 (BINARY.SIZE[2])") == (["* 2 FETCH (BINARY.SIZE[2] 6)"],
                                                    "OK FETCH completed")
    # Decoded bytes with NUL: a literal8.
    assert imap.cmd("FETCH 2 (BINARY.PEEK[2])") == (
        ["* 2 FETCH (BINARY[2] ~{6}\r\n\x00\x01\x02\x03\x04\x05)"], "OK FETCH completed")
    assert imap.cmd("FETCH 2 (BINARY.PEEK[1])") == (
        ["* 2 FETCH (BINARY[1] {12}\r\nfirst part\r\n)"], "OK FETCH completed")
    # No NUL in these bytes: a plain literal will do.
    assert imap.cmd("FETCH 2 (BINARY.PEEK[2]<1.2>)") == (
        ["* 2 FETCH (BINARY[2]<1> {2}\r\n\x01\x02)"], "OK FETCH completed")
    assert imap.cmd("FETCH 2 FLAGS") == (["* 2 FETCH (FLAGS (\\Recent))"], "OK FETCH completed")
    # BINARY (not PEEK) sets \Seen like BODY.
    untagged, _ = imap.cmd("FETCH 2 (BINARY[1])")
    assert fetches(untagged)[2] == {"BINARY[1]": "first part\r\n",
                                    "FLAGS": ["\\Seen", "\\Recent"]}


NESTED_INNER = (b"From: c@example.test\r\n"
                b"Subject: inner\r\n"
                b"Message-ID: <inner@x>\r\n"
                b"MIME-Version: 1.0\r\n"
                b"Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
                b"\r\n"
                b"--alt\r\n"
                b"Content-Type: text/plain\r\n"
                b"\r\n"
                b"plain version\r\n"
                b"\r\n"
                b"--alt\r\n"
                b"Content-Type: text/html\r\n"
                b"\r\n"
                b"<p>html</p>\r\n"
                b"\r\n"
                b"--alt--\r\n")
NESTED_PART1 = b"Caf=C3=A9 =3D ok=\r\n soft\r\n"
NESTED = (b"From: a@example.test\r\n"
          b"To: b@example.test\r\n"
          b"Subject: nested\r\n"
          b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
          b"MIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
          b"\r\n"
          b"--outer\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n"
          b"\r\n"
          + NESTED_PART1 +
          b"\r\n"
          b"--outer\r\n"
          b"Content-Type: message/rfc822\r\n"
          b"Content-Description: forwarded\r\n"
          b"\r\n"
          + NESTED_INNER +
          b"\r\n"
          b"--outer--\r\n")


def ci(x):
    """Upper-cases the strings of a parsed structure (type names, parameter
    names and encodings compare case-insensitively)."""
    if isinstance(x, list):
        return [ci(i) for i in x]
    return x.upper() if isinstance(x, str) else x


def test_fetch_nested_message_structure(imap):
    append(imap, "INBOX", NESTED)
    select(imap, "INBOX")

    def one(item):
        untagged, tagged = imap.cmd(f"FETCH 1 ({item})")
        assert tagged == "OK FETCH completed", (item, tagged)
        [(seq, items)] = fetches(untagged).items()
        [(name, value)] = items.items()
        return name, value

    inner_header = NESTED_INNER[:NESTED_INNER.index(b"\r\n\r\n") + 4].decode()
    assert one("BODY.PEEK[2]") == ("BODY[2]", NESTED_INNER.decode())
    assert one("BODY.PEEK[2.HEADER]") == ("BODY[2.HEADER]", inner_header)
    assert one("BODY.PEEK[2.TEXT]") == ("BODY[2.TEXT]", NESTED_INNER.decode()[len(inner_header):])
    assert one("BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]") == (
        "BODY[2.HEADER.FIELDS (SUBJECT)]", "Subject: inner\r\n\r\n")
    assert one("BODY.PEEK[2.MIME]") == (
        "BODY[2.MIME]", "Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n")
    assert one("BODY.PEEK[2.1]") == ("BODY[2.1]", "plain version\r\n")
    assert one("BODY.PEEK[2.2]") == ("BODY[2.2]", "<p>html</p>\r\n")
    assert one("BODY.PEEK[2.1.MIME]") == ("BODY[2.1.MIME]", "Content-Type: text/plain\r\n\r\n")
    assert one("BODY.PEEK[1]") == ("BODY[1]", NESTED_PART1.decode())
    # BINARY decodes quoted-printable (soft line break included).
    decoded = "Café = ok soft\r\n"
    assert one("BINARY.PEEK[1]") == ("BINARY[1]", decoded)
    assert one("BINARY.SIZE[1]") == ("BINARY.SIZE[1]", str(len(decoded.encode())))
    # A part that does not exist: empty (RFC 9051 6.4.5 allows NIL or "").
    name, value = one("BODY.PEEK[3]")
    assert name == "BODY[3]" and value in ("", None)
    # BODYSTRUCTURE, with the encapsulated message's envelope and structure.
    _, bs = one("BODYSTRUCTURE")
    part1, part2 = bs[0], bs[1]
    assert ci(bs[2]) == "MIXED" and ci(bs[3]) == ["BOUNDARY", "OUTER"]
    assert ci(part1[:6]) == ["TEXT", "PLAIN", ["CHARSET", "UTF-8"], None, None, "QUOTED-PRINTABLE"]
    assert part1[6:8] == [str(len(NESTED_PART1)), "2"]
    assert ci(part2[:6]) == ["MESSAGE", "RFC822", None, None, "FORWARDED", "7BIT"]
    assert part2[6] == str(len(NESTED_INNER))
    envelope, body, lines = part2[7], part2[8], part2[9]
    assert envelope[1] == "inner" and envelope[9] == "<inner@x>"
    assert envelope[2] == [[None, None, "c", "example.test"]]
    assert ci(body[0][:2]) == ["TEXT", "PLAIN"] and ci(body[1][:2]) == ["TEXT", "HTML"]
    assert ci(body[2]) == "ALTERNATIVE"
    assert body[0][6:8] == ["15", "1"] and body[1][6:8] == ["13", "1"]
    assert lines == str(NESTED_INNER.count(b"\r\n"))
    _, b = one("BODY")
    assert ci(b[1][:6]) == ["MESSAGE", "RFC822", None, None, "FORWARDED", "7BIT"]


def test_fetch_header_fields_repeated_and_folded(imap):
    data = (b"Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            b"Received: from c\r\n"
            b"\tby d; Mon, 1 Jan 2024 09:00:00 +0000\r\n"
            b"X-Test: one\r\n"
            b"Subject: folded\r\n"
            b" subject line\r\n"
            b"x-test: two\r\n"
            b"From: f@example.test\r\n"
            b"\r\n"
            b"body\r\n")
    append(imap, "INBOX", data)
    select(imap, "INBOX")
    untagged, _ = imap.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (RECEIVED)])")
    assert fetches(untagged)[1]["BODY[HEADER.FIELDS (RECEIVED)]"] == (
        "Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        "Received: from c\r\n\tby d; Mon, 1 Jan 2024 09:00:00 +0000\r\n\r\n")
    untagged, _ = imap.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (x-TEST)])")
    assert fetches(untagged)[1]["BODY[HEADER.FIELDS (X-TEST)]"] == \
        "X-Test: one\r\nx-test: two\r\n\r\n" or \
        fetches(untagged)[1].get("BODY[HEADER.FIELDS (x-TEST)]") == "X-Test: one\r\nx-test: two\r\n\r\n"
    untagged, _ = imap.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED X-TEST FROM)])")
    assert list(fetches(untagged)[1].values()) == ["Subject: folded\r\n subject line\r\n\r\n"]
    # The envelope's subject is unfolded.
    untagged, _ = imap.cmd("FETCH 1 (ENVELOPE)")
    assert fetches(untagged)[1]["ENVELOPE"][1] == "folded subject line"
    # The fast path of SEARCH HEADER and the full one agree.
    assert imap.cmd("SEARCH HEADER X-Test two") == (["* SEARCH 1"], "OK SEARCH completed")
    assert imap.cmd('SEARCH HEADER Received "by d"') == (["* SEARCH 1"], "OK SEARCH completed")
    assert imap.cmd('SEARCH SUBJECT "subject line"') == (["* SEARCH 1"], "OK SEARCH completed")


def test_envelope_quoting_groups_and_8bit(imap):
    data = ('From: "Doe, John" <john@example.test>\r\n'
            "Sender: secretary@example.test\r\n"
            "Reply-To: list@example.test\r\n"
            "To: Team: a@x.test, B <b@y.test>;, solo@z.test\r\n"
            "Cc: undisclosed-recipients:;\r\n"
            'Subject: He said "hi" \\ ok\r\n'
            "In-Reply-To: <m0@x>\r\n"
            "Message-ID: <m1@x>\r\n"
            "\r\n"
            "body\r\n").encode()
    append(imap, "INBOX", data)
    data8 = "From: x@example.test\r\nSubject: Grüße aus Köln\r\n\r\nbody\r\n".encode()
    append(imap, "INBOX", data8)
    select(imap, "INBOX")
    untagged, _ = imap.cmd("FETCH 1 (ENVELOPE)")
    env = fetches(untagged)[1]["ENVELOPE"]
    assert env == [
        None, 'He said "hi" \\ ok',
        [["Doe, John", None, "john", "example.test"]],
        [[None, None, "secretary", "example.test"]],
        [[None, None, "list", "example.test"]],
        [[None, None, "Team", None], [None, None, "a", "x.test"], ["B", None, "b", "y.test"],
         [None, None, None, None], [None, None, "solo", "z.test"]],
        [[None, None, "undisclosed-recipients", None], [None, None, None, None]],
        None, "<m0@x>", "<m1@x>"]
    # 8-bit text cannot be a quoted string for an IMAP4rev1 client: a literal.
    untagged, _ = imap.cmd("FETCH 2 (ENVELOPE)")
    raw = untagged[0].encode("utf-8", "surrogateescape")
    subject = "Grüße aus Köln".encode()
    assert b"{%d}\r\n%s" % (len(subject), subject) in raw, raw
    assert fetches(untagged)[2]["ENVELOPE"][1] == "Grüße aus Köln"


def test_large_message_roundtrip(imap):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\r\n"
    data = b"From: big@example.test\r\nSubject: big\r\n\r\n" + line * (5 * 1024 * 1024 // len(line))
    uid = append(imap, "INBOX", data)
    select(imap, "INBOX")
    untagged, tagged = imap.cmd(f"UID FETCH {uid} (RFC822.SIZE BODY.PEEK[])")
    assert tagged == "OK UID FETCH completed"
    items = fetches(untagged)[1]
    assert items["RFC822.SIZE"] == str(len(data))
    assert items["BODY[]"].encode() == data
    untagged, _ = imap.cmd(f"UID FETCH {uid} (BODY.PEEK[TEXT]<5000000.100>)")
    assert fetches(untagged)[1]["BODY[TEXT]<5000000>"].encode() == \
        data[data.index(b"\r\n\r\n") + 4:][5000000:5000100]


def test_search_in_large_messages(imap):
    """SEARCH BODY/TEXT find text anywhere in a message, however long its
    body (RFC 3501 6.4.4): here 1.1 MiB, words at the start and the end."""
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\r\n"
    for n, size in enumerate((100 * 1024, 1100 * 1024)):
        data = (b"From: big@example.test\r\nSubject: big\r\n\r\nstartword%d\r\n" % n
                + line * (size // len(line)) + b"endword%d\r\n" % n)
        append(imap, "INBOX", data)
    select(imap, "INBOX")
    wrong = []
    for n in (1, 2):
        for criteria in (f"BODY startword{n - 1}", f"BODY endword{n - 1}",
                         f"TEXT startword{n - 1}", f"TEXT endword{n - 1}"):
            got = imap.cmd(f"SEARCH {criteria}")
            if got != ([f"* SEARCH {n}"], "OK SEARCH completed"):
                wrong.append(f"SEARCH {criteria}: {got}")
    assert wrong == [], "\n".join(wrong)


def test_keywords_are_case_insensitive(imap):
    fill(imap, "box", 2)
    select(imap, "box")
    imap.ok("STORE 1 +FLAGS ($Label Work)")
    imap.ok("STORE 1 +FLAGS ($LABEL WORK)")
    untagged, _ = imap.cmd("FETCH 1 FLAGS")
    assert {f.upper() for f in flagset(fetches(untagged)[1])} == {"$LABEL", "WORK", "\\RECENT"}
    assert len(fetches(untagged)[1]["FLAGS"]) == 3, untagged
    assert imap.cmd("SEARCH KEYWORD $label") == (["* SEARCH 1"], "OK SEARCH completed")
    assert imap.cmd("SEARCH UNKEYWORD work") == (["* SEARCH 2"], "OK SEARCH completed")
    untagged, _ = imap.cmd("STORE 1 -FLAGS ($label)")
    assert {f.upper() for f in flagset(fetches(untagged)[1])} == {"WORK", "\\RECENT"}


ODD_MESSAGES = [
    b"Subject: bare lf\nFrom: a@x.test\n\nbody line\nsecond\n",
    b"Subject: no body\r\nFrom: a@x.test\r\n",
    b"Subject: no body, blank\r\n\r\n",
    b"\r\nno header at all\r\n",
    b"no header, no blank line at all",
    b"Subject: cr only\rFrom: a@x.test\r\rbody\r",
    b"Subject: long\r\n\r\n" + b"x" * 100000 + b"\r\n",
    b"Subject: mixed\r\n\nbody\r\n",
    b"Subject: \xff\xfe raw 8-bit \x80\r\n\r\nbody \xc3\xa9\r\n",
    b"From: a@x.test\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nno end boundary",
    b"From: a@x.test\r\nContent-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n",
    b"From: a@x.test\r\nContent-Type: message/rfc822\r\n\r\n",
]


def test_sections_are_consistent_on_odd_messages(imap):
    """Whatever the message: RFC822.SIZE is the length of BODY[], and
    BODY[HEADER] followed by BODY[TEXT] is BODY[] (RFC 3501 6.4.5)."""
    for data in ODD_MESSAGES:
        append(imap, "INBOX", data)
    select(imap, "INBOX")
    wrong = []
    for n, data in enumerate(ODD_MESSAGES, 1):
        untagged, tagged = imap.cmd(
            f"FETCH {n} (RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT]"
            f" BODYSTRUCTURE ENVELOPE)")
        if tagged != "OK FETCH completed":
            wrong.append(f"{data[:30]!r}: {tagged}")
            continue
        items = fetches(untagged)[n]
        whole = items["BODY[]"].encode("utf-8", "surrogateescape")
        head = items["BODY[HEADER]"].encode("utf-8", "surrogateescape")
        text = items["BODY[TEXT]"].encode("utf-8", "surrogateescape")
        if whole != data:
            wrong.append(f"{data[:30]!r}: BODY[] is {whole[:60]!r}")
        if int(items["RFC822.SIZE"]) != len(whole):
            wrong.append(f"{data[:30]!r}: RFC822.SIZE {items['RFC822.SIZE']} != {len(whole)}")
        if head + text != whole:
            wrong.append(f"{data[:30]!r}: HEADER {head[:60]!r} + TEXT {text[:60]!r}")
        if not isinstance(items["ENVELOPE"], list) or len(items["ENVELOPE"]) != 10:
            wrong.append(f"{data[:30]!r}: ENVELOPE {items['ENVELOPE']}")
        if not isinstance(items["BODYSTRUCTURE"], list):
            wrong.append(f"{data[:30]!r}: BODYSTRUCTURE {items['BODYSTRUCTURE']}")
    assert wrong == [], "\n".join(wrong)


def test_fetch_binary_unknown_encoding(imap):
    data = (b"From: a@remote.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nabc\r\n")
    append(imap, "INBOX", data)
    select(imap, "INBOX")
    untagged, tagged = imap.cmd("FETCH 1 (BINARY.PEEK[1])")
    assert tagged.startswith("NO [UNKNOWN-CTE]"), tagged


def test_fetch_without_peek_sets_seen(fetchbox):
    imap = fetchbox
    # The \Seen is reported in the same FETCH response.
    untagged, tagged = imap.cmd("FETCH 2 (BODY[1])")
    assert tagged == "OK FETCH completed"
    assert fetches(untagged) == {2: {"BODY[1]": "first part\r\n",
                                     "FLAGS": ["\\Seen", "\\Recent"]}}
    # Already seen: no FLAGS added.
    assert imap.cmd("FETCH 2 (BODY[1])") == (["* 2 FETCH (BODY[1] {12}\r\nfirst part\r\n)"],
                                             "OK FETCH completed")
    imap.ok("STORE 1:2 -FLAGS.SILENT (\\Seen)")
    for item, name in (("RFC822", "RFC822"), ("RFC822.TEXT", "RFC822.TEXT"),
                       ("BODY[]", "BODY[]"), ("BODY[TEXT]", "BODY[TEXT]")):
        untagged, _ = imap.cmd(f"FETCH 1 ({item})")
        got = fetches(untagged)[1]
        assert set(got) == {name, "FLAGS"}, (item, got)
        assert set(got["FLAGS"]) == {"\\Seen", "\\Recent", "$Important"}, (item, got)
        imap.ok("STORE 1 -FLAGS.SILENT (\\Seen)")
    # RFC822.HEADER and the PEEKs do not.
    for item in ("RFC822.HEADER", "BODY.PEEK[]", "RFC822.SIZE", "ENVELOPE"):
        untagged, _ = imap.cmd(f"FETCH 1 ({item})")
        assert "FLAGS" not in fetches(untagged)[1], (item, untagged)
    assert imap.cmd("FETCH 1 FLAGS") == (["* 1 FETCH (FLAGS (\\Recent $Important))"],
                                         "OK FETCH completed")
    assert status(imap, "box", "UNSEEN") == {"UNSEEN": 2}


def test_fetch_sequence_sets_and_uid_fetch(imap):
    uids = fill(imap, "box", 5)
    # Make UIDs differ from sequence numbers: expunge the first two.
    select(imap, "box")
    imap.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    imap.ok("EXPUNGE")
    assert uids == [1, 2, 3, 4, 5]
    assert imap.cmd("FETCH 1:* (UID)") == (
        ["* 1 FETCH (UID 3)", "* 2 FETCH (UID 4)", "* 3 FETCH (UID 5)"], "OK FETCH completed")
    assert imap.cmd("FETCH 3,1 (UID)") == (
        ["* 1 FETCH (UID 3)", "* 3 FETCH (UID 5)"], "OK FETCH completed")
    assert imap.cmd("FETCH * (UID)") == (["* 3 FETCH (UID 5)"], "OK FETCH completed")
    assert imap.cmd("FETCH 3:2 (UID)") == (
        ["* 2 FETCH (UID 4)", "* 3 FETCH (UID 5)"], "OK FETCH completed")
    # Sequence numbers past the end are an error...
    assert imap.cmd("FETCH 4 (UID)")[1].startswith("BAD ")
    assert imap.cmd("FETCH 0 (UID)")[1].startswith("BAD ")
    # ... UIDs that do not exist are not (UID is always in the answer).
    assert imap.cmd("UID FETCH 4 (FLAGS)") == (["* 2 FETCH (UID 4 FLAGS (\\Recent))"],
                                               "OK UID FETCH completed")
    assert imap.cmd("UID FETCH 1:2 (FLAGS)") == ([], "OK UID FETCH completed")
    assert imap.cmd("UID FETCH 100:* (UID)") == (["* 3 FETCH (UID 5)"], "OK UID FETCH completed")
    assert imap.cmd("UID FETCH 4:* (UID)") == (
        ["* 2 FETCH (UID 4)", "* 3 FETCH (UID 5)"], "OK UID FETCH completed")
    assert imap.cmd("FETCH 1 (NOSUCHITEM)")[1].startswith("BAD ")
    assert imap.cmd("FETCH x (UID)")[1].startswith("BAD ")
    assert imap.cmd("FETCH 1")[1].startswith("BAD ")


def test_fetch_modseq_and_changedsince(imap):
    fill(imap, "box", 3)
    imap.ok("ENABLE CONDSTORE")
    select(imap, "box")
    untagged, _ = imap.cmd("FETCH 1:3 (MODSEQ)")
    modseqs = {seq: int(items["MODSEQ"][0]) for seq, items in fetches(untagged).items()}
    assert sorted(modseqs) == [1, 2, 3]
    assert modseqs[1] < modseqs[2] < modseqs[3]
    assert untagged[0] == f"* 1 FETCH (MODSEQ ({modseqs[1]}))"
    since = modseqs[3]
    imap.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    untagged, tagged = imap.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})")
    assert tagged == "OK UID FETCH completed"
    f = fetches(untagged)
    assert list(f) == [2]
    assert f[2]["UID"] == "2" and f[2]["FLAGS"] == ["\\Flagged", "\\Recent"]
    assert int(f[2]["MODSEQ"][0]) > since
    # CHANGEDSINCE with a plain FETCH: MODSEQ comes too.
    untagged, _ = imap.cmd(f"FETCH 1:* (UID) (CHANGEDSINCE {modseqs[1]})")
    assert set(fetches(untagged)) == {2, 3}
    assert all("MODSEQ" in items for items in fetches(untagged).values())
    # VANISHED needs QRESYNC.
    assert imap.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[1].startswith("BAD ")


def test_condstore_untagged_fetch_carries_uid_and_modseq(server, account, imap):
    """RFC 7162 3.2.4 (a server that supports QRESYNC): once CONDSTORE is
    enabled, every untagged FETCH caused by STORE, by a FETCH that sets
    \\Seen, or by another session carries UID and MODSEQ, once per message."""
    fill(imap, "box", 2)
    imap.ok("ENABLE CONDSTORE")
    select(imap, "box")
    untagged, tagged = imap.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert tagged == "OK STORE completed"
    f = fetches(untagged)
    assert list(f) == [1] and f[1].keys() == {"FLAGS", "UID", "MODSEQ"}, untagged
    assert f[1]["UID"] == "1" and f[1]["FLAGS"] == ["\\Flagged", "\\Recent"]
    untagged, tagged = imap.cmd("FETCH 2 (BODY[TEXT])")
    f = fetches(untagged)
    assert list(f) == [2] and f[2].keys() == {"BODY[TEXT]", "FLAGS", "UID", "MODSEQ"}, untagged
    with connect(server, account) as other:
        select(other, "box")
        other.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
    untagged, tagged = imap.cmd("NOOP")
    f = fetches(untagged)
    assert list(f) == [2] and f[2].keys() == {"FLAGS", "UID", "MODSEQ"}, untagged


# --- STORE ----------------------------------------------------------------------

def test_store_flags(server, account, imap):
    fill(imap, "box", 3)
    # The first session to select box: the three messages are \Recent for
    # it, whatever STORE does to their other flags.
    select(imap, "box")
    assert imap.cmd("STORE 1 +FLAGS (\\Seen \\Flagged)") == (
        ["* 1 FETCH (FLAGS (\\Seen \\Flagged \\Recent))"], "OK STORE completed")
    assert imap.cmd("STORE 1 -FLAGS (\\Seen)") == (
        ["* 1 FETCH (FLAGS (\\Flagged \\Recent))"], "OK STORE completed")
    untagged, _ = imap.cmd("STORE 1:2 FLAGS (\\Answered \\Draft)")
    f = fetches(untagged)
    assert {s: flagset(i) for s, i in f.items()} == {
        1: {"\\Answered", "\\Draft", "\\Recent"}, 2: {"\\Answered", "\\Draft", "\\Recent"}}
    # .SILENT: no untagged FETCH for this session.
    assert imap.cmd("STORE 3 +FLAGS.SILENT (\\Deleted)") == ([], "OK STORE completed")
    assert imap.cmd("STORE 1:3 FLAGS.SILENT ()") == ([], "OK STORE completed")
    assert imap.cmd("FETCH 1:3 FLAGS") == (
        ["* 1 FETCH (FLAGS (\\Recent))", "* 2 FETCH (FLAGS (\\Recent))",
         "* 3 FETCH (FLAGS (\\Recent))"],
        "OK FETCH completed")
    # Keywords.
    untagged, _ = imap.cmd("STORE 2 +FLAGS ($Label1 Work \\Seen)")
    assert flagset(fetches(untagged)[2]) == {"$Label1", "Work", "\\Seen", "\\Recent"}
    untagged, _ = imap.cmd("STORE 2 -FLAGS (Work)")
    assert flagset(fetches(untagged)[2]) == {"$Label1", "\\Seen", "\\Recent"}
    # A single flag without parentheses.
    untagged, _ = imap.cmd("STORE 2 +FLAGS \\Flagged")
    assert flagset(fetches(untagged)[2]) == {"$Label1", "\\Seen", "\\Flagged", "\\Recent"}
    # UID STORE answers with the UID.
    untagged, tagged = imap.cmd("UID STORE 3 +FLAGS (\\Seen)")
    assert tagged == "OK STORE completed" or tagged == "OK UID STORE completed"
    assert fetches(untagged) == {3: {"UID": "3", "FLAGS": ["\\Seen", "\\Recent"]}}
    # Errors: \Recent cannot be stored, nor made-up system flags.
    assert imap.cmd("STORE 1 +FLAGS (\\Recent)")[1].startswith("BAD ")
    assert imap.cmd("STORE 1 +FLAGS (\\Bogus)")[1].startswith("BAD ")
    assert imap.cmd("STORE 1 NOSUCH (\\Seen)")[1].startswith("BAD ")
    assert imap.cmd("STORE 9 +FLAGS (\\Seen)")[1].startswith("BAD ")
    untagged, _ = imap.cmd("FETCH 2 FLAGS")
    assert flagset(fetches(untagged)[2]) == {"$Label1", "\\Seen", "\\Flagged", "\\Recent"}
    # The flags persist for a new session; \Recent is not among them (this
    # session claimed the messages).
    with connect(server, account) as other:
        select(other, "box")
        untagged, _ = other.cmd("FETCH 2 FLAGS")
        assert flagset(fetches(untagged)[2]) == {"$Label1", "\\Seen", "\\Flagged"}


def test_store_unchangedsince(imap):
    fill(imap, "box", 3)
    select(imap, "box")
    untagged, _ = imap.cmd("FETCH 1:3 (MODSEQ)")
    modseqs = {seq: int(i["MODSEQ"][0]) for seq, i in fetches(untagged).items()}
    imap.ok("STORE 2 +FLAGS.SILENT ($Changed)")
    # 2 changed after modseqs[3]: it fails; 1 and 3 are stored.
    untagged, tagged = imap.cmd(f"STORE 1:3 (UNCHANGEDSINCE {modseqs[3]}) +FLAGS (\\Flagged)")
    assert tagged == "OK [MODIFIED 2] Conditional STORE failed"
    f = fetches(untagged)
    assert set(f) == {1, 3}, untagged
    for seq in (1, 3):
        assert flagset(f[seq]) == {"\\Flagged", "\\Recent"}
        assert int(f[seq]["MODSEQ"][0]) > modseqs[3]
    untagged, _ = imap.cmd("FETCH 2 (FLAGS)")
    assert flagset(fetches(untagged)[2]) == {"$Changed", "\\Recent"}
    # UID STORE: the MODIFIED set holds UIDs. .SILENT still gets MODSEQ
    # (RFC 7162 3.1.3).
    untagged, tagged = imap.cmd("UID STORE 1:3 (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Seen)")
    m = re.match(r"OK \[MODIFIED ([0-9:,]+)\] ", tagged)
    assert m and seqset(m.group(1)) == [1, 2, 3], tagged
    # UNCHANGEDSINCE 0 always fails (RFC 7162 3.1.3).
    untagged, tagged = imap.cmd("STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\\Answered)")
    assert tagged == "OK [MODIFIED 3] Conditional STORE failed", tagged
    assert "\\Answered" not in flagset(fetches(imap.cmd("FETCH 3 FLAGS")[0])[3])
    untagged, _ = imap.cmd("FETCH 1 (MODSEQ)")
    current = int(fetches(untagged)[1]["MODSEQ"][0])
    untagged, tagged = imap.cmd(f"STORE 1 (UNCHANGEDSINCE {current}) +FLAGS.SILENT (\\Seen)")
    assert tagged == "OK STORE completed"
    f = fetches(untagged)
    assert set(f) == {1} and int(f[1]["MODSEQ"][0]) > current, untagged


# --- SEARCH -----------------------------------------------------------------------

SEARCH_MESSAGES = [
    # (message, flags, internal date)
    (message(subject="Quarterly report", frm="Alice Anders <alice@a.test>", to="bob@b.test",
             date="Wed, 01 Jan 2020 10:00:00 +0000", body="the numbers look good\r\n",
             headers=["Cc: carol@c.test"]),
     "\\Seen \\Answered", "02-Jan-2020 10:00:00 +0000"),
    (message(subject="Re: Quarterly report", frm="bob@b.test", to="alice@a.test",
             date="Sun, 05 Jan 2020 10:00:00 +0000", body="agreed, ship it\r\n",
             headers=["Bcc: dave@d.test", "X-Priority: 1"]),
     "\\Flagged $Work", "05-Jan-2020 10:00:00 +0000"),
    (message(subject="Lunch", frm="carol@c.test", to="Alice <alice@a.test>",
             date="Wed, 10 Feb 2021 12:00:00 +0000", body="pizza?\r\n"),
     "\\Deleted", "10-Feb-2021 23:30:00 +0000"),
    (message(subject="Draft note", frm="dave@d.test", to="erin@e.test",
             date="Tue, 15 Mar 2022 08:00:00 +0000", body="x" * 2000 + "\r\n"),
     "\\Draft \\Seen", "15-Mar-2022 08:00:00 +0000"),
    (message(subject="=?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?=", frm="=?UTF-8?Q?=C3=89mile?= <emile@e.test>",
             to="alice@a.test", date="Thu, 20 Apr 2023 18:00:00 +0000",
             body="crème brûlée\r\n",
             headers=["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                      "Content-Transfer-Encoding: 8bit"]),
     "", "20-Apr-2023 18:00:00 +0000"),
]

SEARCH_CASES = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("ANSWERED", [1]),
    ("BCC dave", [2]),
    ("BEFORE 1-Feb-2021", [1, 2]),
    ("BEFORE 10-Feb-2021", [1, 2]),
    ("BODY numbers", [1]),
    ('BODY "ship it"', [2]),
    ("CC carol", [1]),
    ("DELETED", [3]),
    ("DRAFT", [4]),
    ("FLAGGED", [2]),
    ("FROM alice", [1]),
    ("FROM Anders", [1]),
    ("FROM bob", [2]),
    ('HEADER X-Priority 1', [2]),
    ('HEADER X-Priority ""', [2]),
    ('HEADER Subject report', [1, 2]),
    ("KEYWORD $Work", [2]),
    ("KEYWORD $Other", []),
    ("LARGER 1000", [4]),
    ("NEW", [2, 3, 5]),  # the session that selected box first: all are \Recent
    ("NOT SEEN", [2, 3, 5]),
    ("OLD", []),
    ("ON 10-Feb-2021", [3]),
    ("OR FROM alice FROM carol", [1, 3]),
    ("RECENT", [1, 2, 3, 4, 5]),
    ("SEEN", [1, 4]),
    ("SENTBEFORE 1-Jan-2021", [1, 2]),
    ("SENTBEFORE 5-Jan-2020", [1]),
    ("SENTON 5-Jan-2020", [2]),
    ("SENTSINCE 1-Jan-2022", [4, 5]),
    ("SENTSINCE 15-Mar-2022", [4, 5]),
    ("SINCE 15-Mar-2022", [4, 5]),
    ("SINCE 16-Mar-2022", [5]),
    ("SMALLER 1000", [1, 2, 3, 5]),
    ("SUBJECT quarterly", [1, 2]),
    ("SUBJECT uarterl", [1, 2]),
    ("SUBJECT lunch", [3]),
    ("TEXT pizza", [3]),
    ("TEXT Lunch", [3]),
    ("TEXT erin@e.test", [4]),
    ("TO alice", [2, 3, 5]),
    ("TO erin", [4]),
    ("UID 3:4", [2, 3]),  # UIDs are 2..6 (UID 1 was expunged)
    ("UID 1", []),
    ("UID *", [5]),
    ("UNANSWERED", [2, 3, 4, 5]),
    ("UNDELETED", [1, 2, 4, 5]),
    ("UNDRAFT", [1, 2, 3, 5]),
    ("UNFLAGGED", [1, 3, 4, 5]),
    ("UNKEYWORD $Work", [1, 3, 4, 5]),
    ("UNSEEN", [2, 3, 5]),
    ("2:3", [2, 3]),
    ("1,4:*", [1, 4, 5]),
    ("*", [5]),
    ("5:4", [4, 5]),
    ("SEEN SINCE 1-Jan-2022", [4]),
    ("(OR (FROM alice) (SUBJECT lunch)) NOT (DELETED)", [1]),
    ("NOT (OR SEEN (OR FLAGGED DELETED))", [5]),
    ("OR (SEEN FLAGGED) (NOT (UNDELETED))", [3]),
    ("OR OR ANSWERED DRAFT DELETED", [1, 3, 4]),
    ("NOT NOT SEEN", [1, 4]),
    ("((((SEEN))))", [1, 4]),
    ("CHARSET US-ASCII SUBJECT lunch", [3]),
    ("CHARSET UTF-8 FROM Emile", [5]),
]


@pytest.fixture
def searchbox(imap):
    """box with the five SEARCH_MESSAGES at sequence numbers 1-5, UIDs 2-6."""
    imap.ok("CREATE box")
    append(imap, "box", message(subject="expunged"))
    for data, flags, date in SEARCH_MESSAGES:
        append(imap, "box", data, flags=flags, date=date)
    append(imap, "box", message(subject="placeholder"))
    select(imap, "box")
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    imap.ok("UID EXPUNGE 1")
    untagged, _ = imap.cmd("STORE 6 +FLAGS.SILENT (\\Deleted)")
    imap.ok("UID EXPUNGE 7")
    untagged, _ = imap.cmd("FETCH 1:* (UID)")
    assert [fetch_items(r)[1]["UID"] for r in untagged] == ["2", "3", "4", "5", "6"]
    # \Deleted of message 3 (UID 4) came from the APPEND.
    return imap


def test_search_keys(searchbox):
    imap = searchbox
    wrong = []
    for criteria, expected in SEARCH_CASES:
        untagged, tagged = imap.cmd(f"SEARCH {criteria}")
        want = ["* SEARCH" + "".join(f" {n}" for n in expected)]
        if (untagged, tagged) != (want, "OK SEARCH completed"):
            wrong.append(f"SEARCH {criteria}: expected {want}, got {untagged} {tagged}")
    assert wrong == [], "\n".join(wrong)


def test_search_strings_match_substrings(searchbox):
    """RFC 3501 6.4.4 / RFC 9051 6.4.4: "a message matches the key if the
    string is a substring of the associated text" - not only whole words."""
    imap = searchbox
    wrong = []
    for criteria, expected in (("BODY umber", [1]), ('BODY "ook goo"', [1]), ("TEXT izz", [3]),
                               ("TEXT ship", [2]), ('BODY "hip i"', [2]), ("SUBJECT uarterl", [1, 2]),
                               ("FROM lice@a.tes", [1]), ("TO rin@e", [4])):
        untagged, tagged = imap.cmd(f'SEARCH {criteria}')
        want = ["* SEARCH" + "".join(f" {n}" for n in expected)]
        if (untagged, tagged) != (want, "OK SEARCH completed"):
            wrong.append(f"SEARCH {criteria}: expected {want}, got {untagged} {tagged}")
    assert wrong == [], "\n".join(wrong)


def test_search_sent_dates_use_the_day_of_the_date_header(imap):
    """RFC 3501 6.4.4: SENTBEFORE, SENTON and SENTSINCE compare the Date:
    header's date "disregarding time and timezone": the day written in the
    header, not the UTC day."""
    imap.ok("CREATE box")
    append(imap, "box", message(date="Wed, 01 Jan 2020 23:30:00 -0500"))  # 2 Jan in UTC
    append(imap, "box", message(date="Thu, 02 Jan 2020 01:00:00 +0900"))  # 1 Jan in UTC
    select(imap, "box")
    assert imap.cmd("SEARCH SENTON 1-Jan-2020") == (["* SEARCH 1"], "OK SEARCH completed")
    assert imap.cmd("SEARCH SENTON 2-Jan-2020") == (["* SEARCH 2"], "OK SEARCH completed")
    assert imap.cmd("SEARCH SENTBEFORE 2-Jan-2020") == (["* SEARCH 1"], "OK SEARCH completed")
    assert imap.cmd("SEARCH SENTSINCE 2-Jan-2020") == (["* SEARCH 2"], "OK SEARCH completed")


def test_uid_search(searchbox):
    imap = searchbox
    assert imap.cmd("UID SEARCH UNSEEN") == (["* SEARCH 3 4 6"], "OK UID SEARCH completed")
    assert imap.cmd("UID SEARCH UID 3:5 SEEN") == (["* SEARCH 5"], "OK UID SEARCH completed")
    # A sequence set in UID SEARCH is still sequence numbers.
    assert imap.cmd("UID SEARCH 1:2") == (["* SEARCH 2 3"], "OK UID SEARCH completed")


def test_search_utf8(searchbox):
    imap = searchbox
    term = "Café".encode()
    assert imap.cmd(b"SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(term) + term) == (
        ["* SEARCH 5"], "OK SEARCH completed")
    term = "brûlée".encode()
    assert imap.cmd(b"SEARCH CHARSET UTF-8 BODY {%d}\r\n" % len(term) + term) == (
        ["* SEARCH 5"], "OK SEARCH completed")
    term = "Émile".encode()
    assert imap.cmd(b"SEARCH CHARSET UTF-8 FROM {%d}\r\n" % len(term) + term) == (
        ["* SEARCH 5"], "OK SEARCH completed")


def test_search_is_case_insensitive_beyond_ascii(searchbox):
    """RFC 9051 6.4.4: string matching is case-insensitive; for non-ASCII
    text servers SHOULD use i;unicode-casemap (RFC 5051)."""
    imap = searchbox
    for key, term in (("SUBJECT", "CAFÉ CRÈME"), ("BODY", "BRÛLÉE"), ("FROM", "éMILE")):
        term = term.encode()
        assert imap.cmd(b"SEARCH CHARSET UTF-8 %s {%d}\r\n" % (key.encode(), len(term))
                        + term) == (["* SEARCH 5"], "OK SEARCH completed"), key


def test_search_errors(searchbox):
    imap = searchbox
    untagged, tagged = imap.cmd("SEARCH CHARSET KOI8-R SUBJECT x")
    assert untagged == []
    assert tagged.startswith("NO [BADCHARSET"), tagged
    for bad in ("NOSUCHKEY", "BEFORE notadate", "LARGER x", "SINCE", "OR SEEN",
                "(SEEN", "SEEN)", "KEYWORD", "UID x", ""):
        untagged, tagged = imap.cmd(f"SEARCH {bad}".rstrip())
        assert untagged == [] and tagged.startswith("BAD "), (bad, untagged, tagged)
    assert imap.cmd("SEARCH SEEN") == (["* SEARCH 1 4"], "OK SEARCH completed")


def test_esearch(searchbox):
    imap = searchbox
    untagged, tagged = imap.cmd("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN", tag="E1")
    assert tagged == "OK SEARCH completed"
    assert [esearch(r) for r in untagged] == [
        ("E1", False, {"MIN": "2", "MAX": "5", "COUNT": "3", "ALL": "2:3,5"})]
    # RETURN () is RETURN (ALL).
    untagged, _ = imap.cmd("SEARCH RETURN () SEEN", tag="E2")
    assert [esearch(r) for r in untagged] == [("E2", False, {"ALL": "1,4"})]
    untagged, _ = imap.cmd("UID SEARCH RETURN (ALL COUNT) UNSEEN", tag="E3")
    assert [esearch(r) for r in untagged] == [("E3", True, {"ALL": "3:4,6", "COUNT": "3"})]
    untagged, _ = imap.cmd("SEARCH RETURN (COUNT) KEYWORD nothing", tag="E4")
    assert [esearch(r) for r in untagged] == [("E4", False, {"COUNT": "0"})]
    # No match: no MIN, MAX or ALL, but still the ESEARCH response.
    untagged, _ = imap.cmd("SEARCH RETURN (MIN MAX ALL) KEYWORD nothing", tag="E5")
    assert untagged == ['* ESEARCH (TAG "E5")']
    untagged, _ = imap.cmd("SEARCH RETURN (MIN) ALL", tag="E6")
    assert untagged == ['* ESEARCH (TAG "E6") MIN 1']
    assert imap.cmd("SEARCH RETURN (NOSUCH) ALL")[1].startswith("BAD ")


def test_searchres_save_alone_sends_no_esearch(searchbox):
    """RFC 5182 2.1 / RFC 9051 6.4.4: SAVE as the only result option
    suppresses the ESEARCH response."""
    assert searchbox.cmd("SEARCH RETURN (SAVE) FLAGGED") == ([], "OK SEARCH completed")
    assert searchbox.cmd("UID SEARCH RETURN (SAVE) FLAGGED") == ([], "OK UID SEARCH completed")


def test_searchres_dollar(searchbox):
    imap = searchbox
    assert imap.cmd("SEARCH RETURN (SAVE) FLAGGED")[1] == "OK SEARCH completed"
    assert imap.cmd("FETCH $ (UID)") == (["* 2 FETCH (UID 3)"], "OK FETCH completed")
    assert imap.cmd("UID FETCH $ (FLAGS)") == (
        ["* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent $Work))"], "OK UID FETCH completed")
    assert imap.cmd("SEARCH $") == (["* SEARCH 2"], "OK SEARCH completed")
    assert imap.cmd("SEARCH OR $ DELETED") == (["* SEARCH 2 3"], "OK SEARCH completed")
    # SAVE with ALL: answered, and all saved.
    untagged, _ = imap.cmd("SEARCH RETURN (SAVE ALL) UNSEEN", tag="S1")
    assert [esearch(r) for r in untagged] == [("S1", False, {"ALL": "2:3,5"})]
    assert imap.cmd("FETCH $ (UID)") == (
        ["* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)", "* 5 FETCH (UID 6)"], "OK FETCH completed")
    # UID SEARCH saves the same messages.
    assert imap.cmd("UID SEARCH RETURN (SAVE) SEEN")[1] == "OK UID SEARCH completed"
    assert imap.cmd("FETCH $ (UID)") == (["* 1 FETCH (UID 2)", "* 4 FETCH (UID 5)"],
                                         "OK FETCH completed")
    # COPY and STORE on $.
    imap.ok("CREATE saved")
    untagged, tagged = imap.cmd("COPY $ saved")
    assert re.match(r"OK \[COPYUID \d+ 2,5 1:2\] COPY completed$", tagged), tagged
    untagged, _ = imap.cmd("STORE $ +FLAGS (\\Flagged)")
    assert set(fetches(untagged)) == {1, 4}
    # An empty result: $ matches nothing, and is not an error.
    assert imap.cmd("SEARCH RETURN (SAVE) KEYWORD nothing")[1] == "OK SEARCH completed"
    assert imap.cmd("FETCH $ (UID)") == ([], "OK FETCH completed")
    # SELECT (even of the same mailbox) empties $ (RFC 5182 2.1).
    assert imap.cmd("SEARCH RETURN (SAVE) ALL")[1] == "OK SEARCH completed"
    select(imap, "box")
    assert imap.cmd("FETCH $ (UID)") == ([], "OK FETCH completed")
    # Expunged messages leave $ (RFC 5182 2.1). (3, UID 4, is \\Deleted
    # already.)
    assert imap.cmd("SEARCH RETURN (SAVE) 1:2")[1] == "OK SEARCH completed"
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    imap.ok("EXPUNGE")
    assert imap.cmd("FETCH $ (UID)") == (["* 1 FETCH (UID 3)"], "OK FETCH completed")


def test_searchres_save_with_min_max(searchbox):
    """RFC 5182 2.1: SAVE with MIN and/or MAX but neither ALL nor COUNT
    saves only the messages MIN/MAX name."""
    imap = searchbox
    untagged, _ = imap.cmd("SEARCH RETURN (SAVE MIN) UNSEEN", tag="S2")
    assert [esearch(r) for r in untagged] == [("S2", False, {"MIN": "2"})]
    assert imap.cmd("FETCH $ (UID)") == (["* 2 FETCH (UID 3)"], "OK FETCH completed")
    untagged, _ = imap.cmd("SEARCH RETURN (SAVE MAX) UNSEEN", tag="S3")
    assert [esearch(r) for r in untagged] == [("S3", False, {"MAX": "5"})]
    assert imap.cmd("FETCH $ (UID)") == (["* 5 FETCH (UID 6)"], "OK FETCH completed")
    untagged, _ = imap.cmd("SEARCH RETURN (SAVE MIN MAX) UNSEEN", tag="S4")
    assert imap.cmd("FETCH $ (UID)") == (["* 2 FETCH (UID 3)", "* 5 FETCH (UID 6)"],
                                         "OK FETCH completed")
    # With COUNT, everything is saved.
    untagged, _ = imap.cmd("SEARCH RETURN (SAVE MIN COUNT) UNSEEN", tag="S5")
    assert imap.cmd("FETCH $ (UID)") == (
        ["* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)", "* 5 FETCH (UID 6)"], "OK FETCH completed")


def test_search_modseq(searchbox):
    imap = searchbox
    untagged, _ = imap.cmd("FETCH 1:* (MODSEQ)")
    modseqs = {seq: int(i["MODSEQ"][0]) for seq, i in fetches(untagged).items()}
    imap.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    untagged, _ = imap.cmd("FETCH 2 (MODSEQ)")
    m2 = int(fetches(untagged)[2]["MODSEQ"][0])
    # The highest MODSEQ of the messages found comes along (RFC 7162 3.1.5).
    assert imap.cmd(f"SEARCH MODSEQ {max(modseqs.values()) + 1}") == (
        [f"* SEARCH 2 (MODSEQ {m2})"], "OK SEARCH completed")
    assert imap.cmd(f"SEARCH MODSEQ {m2 + 1}") == (["* SEARCH"], "OK SEARCH completed")
    untagged, _ = imap.cmd(f"SEARCH MODSEQ {modseqs[5]}")
    assert untagged == [f"* SEARCH 2 5 (MODSEQ {m2})"]
    untagged, _ = imap.cmd(f'SEARCH MODSEQ "/flags/\\\\seen" all {modseqs[5]}')
    assert untagged == [f"* SEARCH 2 5 (MODSEQ {m2})"]
    untagged, _ = imap.cmd(f"SEARCH RETURN (ALL) MODSEQ {modseqs[5]}", tag="M1")
    assert untagged == [f'* ESEARCH (TAG "M1") ALL 2,5 MODSEQ {m2}']


def test_search_in_imap4rev2_answers_esearch(searchbox):
    imap = searchbox
    imap.ok("ENABLE IMAP4rev2")
    untagged, tagged = imap.cmd("SEARCH UNSEEN", tag="R1")
    assert tagged == "OK SEARCH completed"
    assert untagged == ['* ESEARCH (TAG "R1") ALL 2:3,5']
    untagged, _ = imap.cmd("UID SEARCH SEEN", tag="R2")
    assert untagged == ['* ESEARCH (TAG "R2") UID ALL 2,5']
    untagged, _ = imap.cmd("SEARCH KEYWORD nothing", tag="R3")
    assert untagged == ['* ESEARCH (TAG "R3")']
    untagged, _ = imap.cmd("UID SEARCH KEYWORD nothing", tag="R4")
    assert untagged == ['* ESEARCH (TAG "R4") UID']


# --- SORT -------------------------------------------------------------------------

SORT_MESSAGES = [
    # subject, from, to, cc, date, size padding, internal date
    ("Re: banana", "Zed Zulu <zed@z.test>", "mike@m.test", "bob@b.test",
     "Mon, 03 Jun 2024 10:00:00 +0000", 300, "05-Jun-2024 10:00:00 +0000"),
    ("apple", "anna@a.test", "zoe@z.test", "",
     "Sat, 01 Jun 2024 10:00:00 +0000", 100, "03-Jun-2024 10:00:00 +0000"),
    ("Cherry", "Mary Major <mary@m.test>", "bob@b.test", "amy@a.test",
     "Sun, 02 Jun 2024 10:00:00 +0000", 500, "04-Jun-2024 10:00:00 +0000"),
    ("[fwd: Banana]", "bill@b.test", "abe@a.test", "zack@z.test",
     "Tue, 04 Jun 2024 10:00:00 +0000", 0, "01-Jun-2024 10:00:00 +0000"),
]


@pytest.fixture
def sortbox(imap):
    imap.ok("CREATE box")
    for subject, frm, to, cc, date, pad, internal in SORT_MESSAGES:
        headers = [f"Cc: {cc}"] if cc else []
        append(imap, "box", message(subject=subject, frm=frm, to=to, date=date,
                                    body="p" * pad + "\r\n", headers=headers), date=internal)
    select(imap, "box")
    return imap


@pytest.mark.parametrize("criteria,expected", [
    ("ARRIVAL", [4, 2, 3, 1]),
    ("REVERSE ARRIVAL", [1, 3, 2, 4]),
    ("DATE", [2, 3, 1, 4]),
    ("REVERSE DATE", [4, 1, 3, 2]),
    ("SIZE", [4, 2, 1, 3]),
    ("REVERSE SIZE", [3, 1, 2, 4]),
    # Base subjects: banana, apple, cherry, banana (RFC 5256 2.1); ties in
    # sequence order.
    ("SUBJECT", [2, 1, 4, 3]),
    ("REVERSE SUBJECT", [3, 1, 4, 2]),
    # FROM sorts on the mailbox (local part) of the first From address.
    ("FROM", [2, 4, 3, 1]),
    ("TO", [4, 3, 1, 2]),
    # No Cc sorts as the empty string: first.
    ("CC", [2, 3, 1, 4]),
    # DISPLAYFROM (RFC 5957): the display name, else the address.
    ("DISPLAYFROM", [2, 4, 3, 1]),
    ("DISPLAYTO", [4, 3, 1, 2]),
    ("REVERSE DISPLAYFROM", [1, 3, 4, 2]),
    ("SUBJECT REVERSE DATE", [2, 4, 1, 3]),
    ("REVERSE SUBJECT REVERSE SIZE", [3, 1, 4, 2]),
])
def test_sort(sortbox, criteria, expected):
    want = ["* SORT " + " ".join(map(str, expected))]
    assert sortbox.cmd(f"SORT ({criteria}) UTF-8 ALL") == (want, "OK SORT completed")


def test_sort_with_search_and_uid(sortbox):
    imap = sortbox
    assert imap.cmd("SORT (SIZE) UTF-8 NOT SUBJECT apple") == (["* SORT 4 1 3"],
                                                                "OK SORT completed")
    assert imap.cmd("SORT (DATE) US-ASCII 2:3") == (["* SORT 2 3"], "OK SORT completed")
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    imap.ok("EXPUNGE")
    assert imap.cmd("UID SORT (ARRIVAL) UTF-8 ALL") == (["* SORT 4 2 3"],
                                                        "OK UID SORT completed")
    assert imap.cmd("SORT (ARRIVAL) UTF-8 ALL") == (["* SORT 3 1 2"], "OK SORT completed")
    assert imap.cmd("SORT (SUBJECT) UTF-8 KEYWORD none") == (["* SORT"], "OK SORT completed")
    untagged, tagged = imap.cmd("SORT (SUBJECT) KOI8-R ALL")
    assert tagged.startswith("NO [BADCHARSET"), tagged
    assert imap.cmd("SORT (NOSUCH) UTF-8 ALL")[1].startswith("BAD ")
    assert imap.cmd("SORT () UTF-8 ALL")[1].startswith("BAD ")
    assert imap.cmd("SORT (REVERSE) UTF-8 ALL")[1].startswith("BAD ")
    assert imap.cmd("SORT SUBJECT UTF-8 ALL")[1].startswith("BAD ")


# --- THREAD -----------------------------------------------------------------------

def thread_message(subject, msgid, refs=None, in_reply_to=None, date=""):
    headers = [f"Message-ID: <{msgid}>"]
    if refs:
        headers.append("References: " + " ".join(f"<{r}>" for r in refs))
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
    return message(subject=subject, date=date, headers=headers)


@pytest.fixture
def threadbox(imap):
    """A conversation, in an order that is not the date order:
    1 Other (Jan 3)
    2 Plan (Jan 1)            <a>
    3 Re: Plan (Jan 2)        <b>  refs <a>
    4 Re: Plan (Jan 4)        <c>  refs <a> <b>
    5 Re: Plan (Jan 5)        <e>  in-reply-to <a> only
    """
    imap.ok("CREATE box")
    for data in (
        thread_message("Other", "d@x", date="Wed, 03 Jan 2024 10:00:00 +0000"),
        thread_message("Plan", "a@x", date="Mon, 01 Jan 2024 10:00:00 +0000"),
        thread_message("Re: Plan", "b@x", refs=["a@x"], in_reply_to="a@x",
                       date="Tue, 02 Jan 2024 10:00:00 +0000"),
        thread_message("Re: Plan", "c@x", refs=["a@x", "b@x"], in_reply_to="b@x",
                       date="Thu, 04 Jan 2024 10:00:00 +0000"),
        thread_message("RE: plan", "e@x", in_reply_to="a@x",
                       date="Fri, 05 Jan 2024 10:00:00 +0000"),
    ):
        append(imap, "box", data)
    select(imap, "box")
    return imap


def test_thread_orderedsubject(threadbox):
    """RFC 5256: threads by base subject, sorted by the date of their first
    message; in a thread, the first message is the parent of all others,
    which are siblings in date order."""
    assert threadbox.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL") == (
        ["* THREAD (2 (3)(4)(5))(1)"], "OK THREAD completed")
    assert threadbox.cmd("UID THREAD ORDEREDSUBJECT UTF-8 ALL") == (
        ["* THREAD (2 (3)(4)(5))(1)"], "OK UID THREAD completed")
    # Two messages: a parent and one child are written flat.
    assert threadbox.cmd("THREAD ORDEREDSUBJECT UTF-8 2:3") == (
        ["* THREAD (2 3)"], "OK THREAD completed")


def test_thread_references(threadbox):
    """RFC 5256 REFERENCES: 3 answers 2, 4 answers 3, 5 answers 2; roots by
    date: 2 (Jan 1) then 1 (Jan 3)."""
    assert threadbox.cmd("THREAD REFERENCES UTF-8 ALL") == (
        ["* THREAD (2 (3 4)(5))(1)"], "OK THREAD completed")
    assert threadbox.cmd("THREAD REFERENCES US-ASCII NOT 3") == (
        ["* THREAD (2 (4)(5))(1)"], "OK THREAD completed")
    assert threadbox.cmd("THREAD NOSUCH UTF-8 ALL")[1].startswith("BAD ")
    assert threadbox.cmd("THREAD REFERENCES KOI8-R ALL")[1].startswith("NO [BADCHARSET")


def test_thread_references_dummy_parent(imap):
    """Two answers to a message that is not in the mailbox: a dummy parent
    at the top level keeps its two children ("((1)(2))"); with one child
    the child takes its place."""
    imap.ok("CREATE box")
    for data in (
        thread_message("Re: lost", "r1@x", refs=["lost@x"], date="Mon, 01 Jan 2024 10:00:00 +0000"),
        thread_message("Re: lost", "r2@x", refs=["lost@x"], date="Tue, 02 Jan 2024 10:00:00 +0000"),
        thread_message("Re: alone", "r3@x", refs=["gone@x"], date="Wed, 03 Jan 2024 10:00:00 +0000"),
    ):
        append(imap, "box", data)
    select(imap, "box")
    assert imap.cmd("THREAD REFERENCES UTF-8 ALL") == (
        ["* THREAD ((1)(2))(3)"], "OK THREAD completed")


def test_thread_references_promotes_children_of_inner_dummies(imap):
    """RFC 5256 REFERENCES step 3 below the top level: a dummy (a message
    referenced but not in the mailbox) inside a thread goes, and its
    children take its place among their new siblings, sorted by date."""
    imap.ok("CREATE box")
    for data in (
        thread_message("Plan", "a1@x", date="Mon, 01 Jan 2024 10:00:00 +0000"),
        thread_message("Re: Plan", "b1@x", refs=["a1@x", "lost@x"],
                       date="Tue, 02 Jan 2024 10:00:00 +0000"),
        thread_message("Re: Plan", "c1@x", refs=["a1@x", "lost@x"],
                       date="Thu, 04 Jan 2024 10:00:00 +0000"),
        thread_message("Re: Plan", "d1@x", refs=["a1@x"],
                       date="Wed, 03 Jan 2024 10:00:00 +0000"),
        thread_message("Re: Plan", "e1@x", refs=["a1@x", "gone@x", "b1@x"],
                       date="Fri, 05 Jan 2024 10:00:00 +0000"),
    ):
        append(imap, "box", data)
    select(imap, "box")
    # a1 answered by b1 and c1 through the missing lost@x, and by d1; e1
    # answers b1 (its own chain names a1 and gone@x before b1, but b1 has
    # its parent already).
    assert imap.cmd("THREAD REFERENCES UTF-8 ALL") == (
        ["* THREAD (1 (2 5)(4)(3))"], "OK THREAD completed")


def test_thread_references_merges_by_subject(imap):
    """RFC 5256 REFERENCES step 5: roots with the same base subject are
    merged; one that is a reply ("Re:"/"Fwd:") becomes a child of one
    that is not."""
    imap.ok("CREATE box")
    for data in (
        thread_message("Meeting", "m1@x", date="Mon, 01 Jan 2024 10:00:00 +0000"),
        thread_message("Fwd: Meeting", "m2@x", date="Tue, 02 Jan 2024 10:00:00 +0000"),
        thread_message("Unrelated", "u1@x", date="Wed, 03 Jan 2024 10:00:00 +0000"),
    ):
        append(imap, "box", data)
    select(imap, "box")
    assert imap.cmd("THREAD REFERENCES UTF-8 ALL") == (
        ["* THREAD (1 2)(3)"], "OK THREAD completed")


# --- COPY, MOVE, EXPUNGE, CLOSE, UNSELECT, CHECK ------------------------------------

def test_copy(imap):
    fill(imap, "src", 3)
    imap.ok("CREATE dst")
    append(imap, "dst", message())
    v = uidvalidity(imap, "dst")
    select(imap, "src")
    imap.ok("STORE 2 +FLAGS.SILENT (\\Flagged $Keep)")
    assert imap.cmd("COPY 2:3 dst") == ([], f"OK [COPYUID {v} 2:3 2:3] COPY completed")
    assert imap.cmd("UID COPY 1,3 dst") == ([], f"OK [COPYUID {v} 1,3 4:5] COPY completed")
    assert imap.cmd("COPY 1 nosuch") == ([], "NO [TRYCREATE] No such mailbox")
    assert imap.cmd("COPY 9 dst")[1].startswith("BAD ")
    # UID COPY of UIDs that do not exist: nothing to do, no COPYUID.
    untagged, tagged = imap.cmd("UID COPY 100:200 dst")
    assert tagged.startswith("OK ") and "COPYUID" not in tagged
    # The source is unchanged; the copies kept flags.
    assert status(imap, "src", "MESSAGES") == {"MESSAGES": 3}
    # No session had dst selected: the copies (new messages there, whatever
    # they were in src) are \Recent for the first one to select it.
    assert status(imap, "dst", "RECENT") == {"RECENT": 5}
    select(imap, "dst")
    untagged, _ = imap.cmd("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    got = {int(i["UID"]): (flagset(i), i["BODY[HEADER.FIELDS (SUBJECT)]"])
           for i in fetches(untagged).values()}
    assert got == {
        1: ({"\\Recent"}, "Subject: test\r\n\r\n"),
        2: ({"\\Flagged", "\\Recent", "$Keep"}, "Subject: message 2\r\n\r\n"),
        3: ({"\\Recent"}, "Subject: message 3\r\n\r\n"),
        4: ({"\\Recent"}, "Subject: message 1\r\n\r\n"),
        5: ({"\\Recent"}, "Subject: message 3\r\n\r\n"),
    }


def test_copy_into_the_selected_mailbox_reports_exists(imap):
    fill(imap, "box", 2)
    v = uidvalidity(imap, "box")
    select(imap, "box")
    untagged, tagged = imap.cmd("COPY 1:2 box")
    assert tagged == f"OK [COPYUID {v} 1:2 3:4] COPY completed"
    # The copies are \Recent for this session, like the two it selected.
    assert untagged == ["* 4 EXISTS", "* 4 RECENT"]
    assert imap.cmd("FETCH 3:4 (UID)") == (["* 3 FETCH (UID 3)", "* 4 FETCH (UID 4)"],
                                           "OK FETCH completed")


def test_move(imap):
    fill(imap, "src", 4)
    imap.ok("CREATE dst")
    v = uidvalidity(imap, "dst")
    select(imap, "src")
    untagged, tagged = imap.cmd("MOVE 2:3 dst")
    assert tagged == "OK MOVE completed"
    # RFC 6851: COPYUID in an untagged OK before the EXPUNGEs.
    assert re.match(rf"\* OK \[COPYUID {v} 2:3 1:2\]( .+)?$", untagged[0]), untagged
    assert all(re.match(r"\* \d+ EXPUNGE$", r) for r in untagged[1:]), untagged
    assert apply_expunges([1, 2, 3, 4], untagged[1:]) == [1, 4]
    # UID MOVE.
    untagged, tagged = imap.cmd("UID MOVE 4 dst")
    assert tagged == "OK MOVE completed" or tagged == "OK UID MOVE completed", tagged
    assert re.match(rf"\* OK \[COPYUID {v} 4 3\]( .+)?$", untagged[0]), untagged
    assert untagged[1:] == ["* 2 EXPUNGE"]
    assert imap.cmd("MOVE 1 nosuch") == ([], "NO [TRYCREATE] No such mailbox")
    assert status(imap, "dst", "MESSAGES") == {"MESSAGES": 3}
    assert imap.cmd("FETCH 1:* (UID)") == (["* 1 FETCH (UID 1)"], "OK FETCH completed")
    # MOVE in a read-only mailbox.
    select(imap, "src", "EXAMINE")
    assert imap.cmd("MOVE 1 dst")[1].startswith("NO ")


def test_move_within_the_selected_mailbox(imap):
    fill(imap, "box", 2)
    v = uidvalidity(imap, "box")
    select(imap, "box")
    untagged, tagged = imap.cmd("UID MOVE 1 box")
    assert tagged.startswith("OK "), tagged
    assert re.match(rf"\* OK \[COPYUID {v} 1 3\]( .+)?$", untagged[0]), untagged
    # Whatever the order of EXISTS and EXPUNGE, the client ends up with
    # UIDs 2 and 3.
    assert imap.cmd("NOOP")[1] == "OK NOOP completed"
    assert imap.cmd("FETCH 1:* (UID)") == (["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"],
                                           "OK FETCH completed")
    assert status(imap, "box", "MESSAGES UIDNEXT") == {"MESSAGES": 2, "UIDNEXT": 4}


def test_uid_is_not_repeated_in_uid_fetch(imap):
    fill(imap, "box", 1)
    select(imap, "box")
    assert imap.cmd("UID FETCH 1 (UID FLAGS)") == (["* 1 FETCH (UID 1 FLAGS (\\Recent))"],
                                                   "OK UID FETCH completed")
    assert imap.cmd("UID FETCH 1 (FLAGS UID)") == (["* 1 FETCH (UID 1 FLAGS (\\Recent))"],
                                                   "OK UID FETCH completed")


def test_expunge_and_uid_expunge(imap):
    fill(imap, "box", 5)
    select(imap, "box")
    imap.ok("STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
    # UID EXPUNGE removes only the given \Deleted messages.
    untagged, tagged = imap.cmd("UID EXPUNGE 4:5")
    assert tagged == "OK EXPUNGE completed" or tagged == "OK UID EXPUNGE completed", tagged
    assert apply_expunges([1, 2, 3, 4, 5], untagged) == [1, 2, 3]
    untagged, tagged = imap.cmd("EXPUNGE")
    assert tagged == "OK EXPUNGE completed"
    assert untagged == ["* 2 EXPUNGE"]
    assert imap.cmd("EXPUNGE") == ([], "OK EXPUNGE completed")
    assert imap.cmd("FETCH 1:* (UID)") == (["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"],
                                           "OK FETCH completed")
    assert status(imap, "box", "MESSAGES UIDNEXT") == {"MESSAGES": 2, "UIDNEXT": 6}


def test_close_expunges_silently_unselect_does_not(imap):
    fill(imap, "box", 3)
    select(imap, "box")
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert imap.cmd("UNSELECT") == ([], "OK UNSELECT completed")
    assert imap.cmd("FETCH 1 FLAGS") == ([], "BAD No mailbox selected")
    assert status(imap, "box", "MESSAGES DELETED") == {"MESSAGES": 3, "DELETED": 1}
    # CLOSE on EXAMINE does not expunge either.
    select(imap, "box", "EXAMINE")
    assert imap.cmd("CLOSE") == ([], "OK CLOSE completed")
    assert status(imap, "box", "MESSAGES") == {"MESSAGES": 3}
    select(imap, "box")
    assert imap.cmd("CLOSE") == ([], "OK CLOSE completed")
    assert imap.cmd("NOOP") == ([], "OK NOOP completed")
    assert status(imap, "box", "MESSAGES DELETED") == {"MESSAGES": 2, "DELETED": 0}
    assert imap.cmd("CLOSE") == ([], "BAD No mailbox selected")
    assert imap.cmd("UNSELECT") == ([], "BAD No mailbox selected")


def test_check(imap):
    assert imap.cmd("CHECK") == ([], "BAD No mailbox selected")
    select(imap, "INBOX")
    assert imap.cmd("CHECK") == ([], "OK CHECK completed")


# --- IDLE ---------------------------------------------------------------------------

def test_idle_sees_smtp_delivery(server, account, imap):
    user, _ = account
    untagged = select(imap, "INBOX")
    assert "* 0 EXISTS" in untagged and "* 0 RECENT" in untagged
    imap.send("I1 IDLE\r\n")
    assert imap.response() == "+ idling"
    deliver(server, user, b"Subject: during idle\r\n\r\nhello\r\n")
    # Within a second of the delivery's "250 queued"; the new message is
    # \Recent for this session, the only one with INBOX selected.
    got = wait_for(imap, lambda r: r.endswith(" RECENT"), timeout=1.0)
    assert got == ["* 1 EXISTS", "* 1 RECENT"], got
    imap.send("DONE\r\n")
    assert imap.read_tagged("I1") == ([], "OK IDLE terminated")
    untagged, _ = imap.cmd("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert untagged == ["* 1 FETCH (FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] "
                        + lit("Subject: during idle\r\n\r\n") + ")"]


def test_idle_sees_other_sessions(server, account, imap):
    fill(imap, "INBOX", 2)
    # The first to select INBOX: 1 and 2 are \Recent for this session.
    select(imap, "INBOX")
    imap.send("I1 IDLE\r\n")
    assert imap.response() == "+ idling"
    with connect(server, account) as other:
        assert "* 0 RECENT" in select(other, "INBOX")
        other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        got = wait_for(imap, lambda r: r.startswith("* 1 FETCH"), timeout=1.0)
        assert fetch_items(got[-1])[1]["FLAGS"] == ["\\Flagged", "\\Recent"]
        other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
        got = wait_for(imap, lambda r: r == "* 2 EXPUNGE", timeout=1.0)
        # The APPENDing session has INBOX selected read-write and learns of
        # the new message first (at the end of its APPEND): it is \Recent
        # for that session, not for this one, which keeps only message 1.
        data = message()
        untagged, tagged = other.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
        assert tagged.startswith("OK [APPENDUID "), tagged
        assert untagged == ["* 2 EXISTS", "* 1 RECENT"], untagged
        got = wait_for(imap, lambda r: r.endswith(" RECENT"), timeout=1.0)
        assert got == ["* 2 EXISTS", "* 1 RECENT"], got
        assert other.cmd("FETCH 1:2 FLAGS") == (
            ["* 1 FETCH (FLAGS (\\Flagged))", "* 2 FETCH (FLAGS (\\Recent))"],
            "OK FETCH completed")
    imap.send("DONE\r\n")
    assert imap.read_tagged("I1") == ([], "OK IDLE terminated")
    assert imap.cmd("FETCH 1:2 FLAGS") == (
        ["* 1 FETCH (FLAGS (\\Flagged \\Recent))", "* 2 FETCH (FLAGS ())"],
        "OK FETCH completed")


def test_idle_without_selected_mailbox_and_bad_done(imap):
    imap.send("I1 IDLE\r\n")
    assert imap.response() == "+ idling"
    imap.assert_silent(0.3)
    imap.send("DONE\r\n")
    assert imap.read_tagged("I1") == ([], "OK IDLE terminated")
    imap.send("I2 IDLE\r\n")
    assert imap.response() == "+ idling"
    imap.send("NOT DONE\r\n")
    untagged, tagged = imap.read_tagged("I2")
    assert tagged.startswith("BAD "), tagged
    assert imap.cmd("NOOP") == ([], "OK NOOP completed")


# --- QUOTA --------------------------------------------------------------------------

def test_quota(imap):
    data = message(body="q" * 5000 + "\r\n")
    append(imap, "INBOX", data)
    used = (len(data) + 1023) // 1024
    untagged, tagged = imap.cmd("GETQUOTAROOT INBOX")
    assert tagged == "OK GETQUOTAROOT completed"
    assert untagged[0] == '* QUOTAROOT "INBOX" ""' or untagged[0] == '* QUOTAROOT INBOX ""'
    m = re.match(r'\* QUOTA "" \(STORAGE (\d+) (\d+)\)$', untagged[1])
    assert m and len(untagged) == 2, untagged
    assert int(m.group(1)) == used
    limit = int(m.group(2))
    assert limit > 0
    assert imap.cmd('GETQUOTA ""') == ([f'* QUOTA "" (STORAGE {used} {limit})'],
                                       "OK GETQUOTA completed")
    # Every mailbox has the same root.
    untagged, _ = imap.cmd("GETQUOTAROOT Sent")
    assert untagged[0] in ('* QUOTAROOT "Sent" ""', '* QUOTAROOT Sent ""')
    assert imap.cmd('GETQUOTA "nosuch"')[1].startswith("NO ")
    assert imap.cmd('SETQUOTA "" (STORAGE 1)')[1].startswith("NO ")


# --- QRESYNC --------------------------------------------------------------------------

@pytest.fixture
def qresync_box(server, account, imap):
    """box with UIDs 1-5, QRESYNC enabled; then, seen from another session:
    2 flagged, 3 and 5 expunged, 6 appended. Returns (uidvalidity,
    HIGHESTMODSEQ before the changes)."""
    fill(imap, "box", 5)
    assert imap.cmd("ENABLE QRESYNC") == (["* ENABLED QRESYNC"], "OK ENABLE completed")
    untagged = select(imap, "box")
    v = uidvalidity(imap, "box")
    [modseq] = [int(m.group(1)) for r in untagged
                for m in [re.match(r"\* OK \[HIGHESTMODSEQ (\d+)\]", r)] if m]
    imap.ok("UNSELECT")
    with connect(server, account) as other:
        select(other, "box")
        other.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        other.ok("STORE 3,5 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
        append(other, "box", message())
    return v, modseq


def test_qresync_select(imap, qresync_box):
    v, modseq = qresync_box
    untagged, tagged = imap.cmd(f"SELECT box (QRESYNC ({v} {modseq}))")
    assert tagged == "OK [READ-WRITE] SELECT completed"
    assert "* VANISHED (EARLIER) 3,5" in untagged
    assert "* 4 EXISTS" in untagged
    f = fetches(untagged)
    # The changed messages: 2 (flagged) and 6 (new), with UID and MODSEQ.
    assert {int(i["UID"]): flagset(i) for i in f.values()} == {2: {"\\Flagged"}, 6: set()}
    assert all(int(i["MODSEQ"][0]) > modseq for i in f.values())
    assert {seq: i["UID"] for seq, i in f.items()} == {2: "2", 4: "6"}
    # With the known UIDs, VANISHED only tells about those.
    untagged, _ = imap.cmd(f"SELECT box (QRESYNC ({v} {modseq} 1:4))")
    assert [r for r in untagged if r.startswith("* VANISHED")] == ["* VANISHED (EARLIER) 3"]
    # EXAMINE too.
    untagged, tagged = imap.cmd(f"EXAMINE box (QRESYNC ({v} {modseq}))")
    assert tagged == "OK [READ-ONLY] EXAMINE completed"
    assert "* VANISHED (EARLIER) 3,5" in untagged
    # Another UIDVALIDITY: no VANISHED, no FETCH.
    untagged, _ = imap.cmd(f"SELECT box (QRESYNC ({v + 1} {modseq}))")
    assert not [r for r in untagged if r.startswith("* VANISHED") or " FETCH " in r], untagged


def test_qresync_expunge_reports_vanished(imap, qresync_box):
    select(imap, "box")
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert imap.cmd("EXPUNGE") == (["* VANISHED 1"], "OK EXPUNGE completed")
    # Left: UIDs 2, 4, 6.
    imap.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert imap.cmd("UID EXPUNGE 2:6") == (["* VANISHED 2,4"], "OK EXPUNGE completed")
    # MOVE too.
    imap.ok("CREATE dst")
    untagged, tagged = imap.cmd("MOVE 1 dst")
    assert tagged == "OK MOVE completed"
    assert untagged[1:] == ["* VANISHED 6"], untagged


def test_qresync_uid_fetch_vanished(imap, qresync_box):
    """RFC 7162 3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED) reports the
    UIDs of the set expunged since m in a VANISHED (EARLIER) response."""
    v, modseq = qresync_box
    select(imap, "box")
    untagged, tagged = imap.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert tagged == "OK UID FETCH completed"
    assert [r for r in untagged if r.startswith("* VANISHED")] == ["* VANISHED (EARLIER) 3,5"]
    assert untagged[0] == "* VANISHED (EARLIER) 3,5", untagged
    assert {int(i["UID"]) for i in fetches(untagged).values()} == {2, 6}
    untagged, _ = imap.cmd(f"UID FETCH 1:4 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert [r for r in untagged if r.startswith("* VANISHED")] == ["* VANISHED (EARLIER) 3"]


def test_qresync_needs_enable(imap):
    fill(imap, "box", 1)
    v = uidvalidity(imap, "box")
    assert imap.cmd(f"SELECT box (QRESYNC ({v} 1))")[1].startswith("BAD ")
    assert imap.cmd("SELECT box (NOSUCH)")[1].startswith("BAD ")
    # SELECT (CONDSTORE) enables CONDSTORE.
    untagged, tagged = imap.cmd("SELECT box (CONDSTORE)")
    assert tagged == "OK [READ-WRITE] SELECT completed"
    untagged, _ = imap.cmd("STORE 1 +FLAGS (\\Seen)")
    assert "MODSEQ" in fetches(untagged)[1]


# --- IMAP4rev2 -----------------------------------------------------------------------

def test_imap4rev2_select(imap):
    fill(imap, "box", 2)
    imap.ok("CREATE other")
    imap.ok("ENABLE IMAP4rev2")
    v = uidvalidity(imap, "box")
    untagged = select(imap, "box")
    # No RECENT, no UNSEEN; a LIST response (RFC 9051 6.3.2).
    assert untagged[:3] == [f"* {SYSTEM_FLAGS}", f"* {PERMANENT_RW}", "* 2 EXISTS"]
    assert not [r for r in untagged if "RECENT" in r or "UNSEEN" in r], untagged
    assert f"* OK [UIDVALIDITY {v}] UIDs valid" in untagged
    assert "* OK [UIDNEXT 3] Predicted next UID" in untagged
    assert '* LIST () "/" "box"' in untagged or '* LIST (\\HasNoChildren) "/" "box"' in untagged
    # EXPUNGE is still EXPUNGE (no QRESYNC).
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert imap.cmd("EXPUNGE") == (["* 1 EXPUNGE"], "OK EXPUNGE completed")


def test_imap4rev2_select_reports_closed(imap):
    """RFC 9051 6.3.2: when SELECT closes the selected mailbox, the server
    MUST send an untagged OK [CLOSED]: before the new mailbox's data."""
    imap.ok("CREATE other")
    imap.ok("ENABLE IMAP4rev2")
    select(imap, "INBOX")
    untagged = select(imap, "other")
    assert untagged[0].startswith("* OK [CLOSED]"), untagged
    untagged = select(imap, "INBOX", "EXAMINE")
    assert untagged[0].startswith("* OK [CLOSED]"), untagged


# --- two sessions on one mailbox ---------------------------------------------------

def test_two_sessions_see_each_others_changes(server, account, imap):
    fill(imap, "box", 3)
    select(imap, "box")
    with connect(server, account) as b:
        select(b, "box")
        # A flag.
        imap.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        assert b.cmd("NOOP") == (["* 1 FETCH (FLAGS (\\Flagged))"], "OK NOOP completed")
        assert b.cmd("NOOP") == ([], "OK NOOP completed")
        # An expunge is not reported during FETCH, STORE or SEARCH (sequence
        # numbers would shift under the client: RFC 3501 7.4.1)...
        imap.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert imap.cmd("EXPUNGE") == (["* 2 EXPUNGE"], "OK EXPUNGE completed")
        untagged, tagged = b.cmd("FETCH 1 (FLAGS)")
        assert tagged == "OK FETCH completed"
        assert not [r for r in untagged if "EXPUNGE" in r], untagged
        untagged, tagged = b.cmd("SEARCH ALL")
        assert not [r for r in untagged if "EXPUNGE" in r], untagged
        assert "* SEARCH 1 2 3" in untagged
        untagged, tagged = b.cmd("STORE 1 +FLAGS.SILENT (\\Seen)")
        assert not [r for r in untagged if "EXPUNGE" in r], untagged
        # Its data may be gone: the FETCH is answered without it or with
        # NO, and still without EXPUNGE (RFC 9051 7.5.1).
        untagged, tagged = b.cmd("FETCH 2 (BODY.PEEK[])")
        assert tagged.startswith(("OK", "NO")), tagged
        assert not [r for r in untagged if "EXPUNGE" in r], untagged
        # ... but at the next NOOP.
        untagged, _ = b.cmd("NOOP")
        assert "* 2 EXPUNGE" in untagged
        assert apply_expunges([1, 2, 3], untagged) == [1, 3]
        assert b.cmd("FETCH 1:* (UID)") == (["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"],
                                            "OK FETCH completed")
        # A new message.
        append(imap, "box", message())
        untagged, _ = b.cmd("NOOP")
        assert "* 3 EXISTS" in untagged
        assert b.cmd("FETCH 3 (UID)") == (["* 3 FETCH (UID 4)"], "OK FETCH completed")
        # UID commands may report expunges.
        imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        imap.ok("EXPUNGE")
        untagged, _ = b.cmd("UID FETCH 3 (FLAGS)")
        assert "* 1 EXPUNGE" in untagged or not [r for r in untagged if "EXPUNGE" in r]
        untagged, _ = b.cmd("NOOP")
        assert b.cmd("FETCH 1:* (UID)") == (["* 1 FETCH (UID 3)", "* 2 FETCH (UID 4)"],
                                            "OK FETCH completed")


def test_deleting_the_selected_mailbox_from_another_session(server, account, imap):
    fill(imap, "box", 1)
    select(imap, "box")
    with connect(server, account) as b:
        b.ok("DELETE box")
    untagged, tagged = imap.cmd("NOOP")
    # The session cannot go on with a mailbox that is gone: BYE (or NO)
    # but never a crash.
    assert untagged and untagged[-1].startswith("* BYE") or tagged.startswith("NO"), \
        (untagged, tagged)


# --- \Recent (IMAP4rev1) -----------------------------------------------------------
# A message is \Recent for one session only: the first read-write one (SELECT,
# never EXAMINE) to have its mailbox selected when it learns of the message,
# at SELECT or when an update adds it to its view; it stays so until that
# session deselects. IMAP4rev2 sessions never see \Recent (RFC 3501 2.3.2,
# RFC 9051 appendix E).

def counts(untagged):
    """The EXISTS and RECENT responses among untagged ones, in order."""
    return [r for r in untagged if re.match(r"\* \d+ (EXISTS|RECENT)$", r)]


def noop_until_news(c, timeout=2.0):
    """NOOPs until one has untagged responses (a delivery's may take a
    moment); returns them."""
    deadline = time.monotonic() + timeout
    while True:
        untagged, tagged = c.cmd("NOOP")
        assert tagged == "OK NOOP completed", tagged
        if untagged or time.monotonic() > deadline:
            return untagged
        time.sleep(0.05)


def test_recent_goes_to_the_first_read_write_session(server, account, imap):
    imap.ok("CREATE box")
    append(imap, "box", message(subject="one"), flags="\\Seen")
    append(imap, "box", message(subject="two"))
    append(imap, "box", message(subject="three"), flags="$Label")
    # Nobody has selected box: all three are waiting to be claimed.
    assert status(imap, "box", "RECENT") == {"RECENT": 3}
    assert counts(select(imap, "box")) == ["* 3 EXISTS", "* 3 RECENT"]
    assert imap.cmd("FETCH 1:3 FLAGS") == (
        ["* 1 FETCH (FLAGS (\\Seen \\Recent))", "* 2 FETCH (FLAGS (\\Recent))",
         "* 3 FETCH (FLAGS (\\Recent $Label))"], "OK FETCH completed")
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH 1 2 3"], "OK SEARCH completed")
    assert imap.cmd("SEARCH NEW") == (["* SEARCH 2 3"], "OK SEARCH completed")
    assert imap.cmd("SEARCH OLD") == (["* SEARCH"], "OK SEARCH completed")
    assert imap.cmd("SEARCH NOT RECENT") == (["* SEARCH"], "OK SEARCH completed")
    assert imap.cmd("UID SEARCH NEW") == (["* SEARCH 2 3"], "OK UID SEARCH completed")
    untagged, _ = imap.cmd("SEARCH RETURN (COUNT ALL) RECENT", tag="R1")
    assert [esearch(r) for r in untagged] == [("R1", False, {"COUNT": "3", "ALL": "1:3"})]
    # STATUS of the selected mailbox counts this session's \Recent ones.
    assert status(imap, "box", "RECENT") == {"RECENT": 3}
    with connect(server, account) as other:
        # A second read-write session: the messages were claimed already.
        assert counts(select(other, "box")) == ["* 3 EXISTS", "* 0 RECENT"]
        assert other.cmd("FETCH 1:3 FLAGS") == (
            ["* 1 FETCH (FLAGS (\\Seen))", "* 2 FETCH (FLAGS ())",
             "* 3 FETCH (FLAGS ($Label))"], "OK FETCH completed")
        assert other.cmd("SEARCH RECENT") == (["* SEARCH"], "OK SEARCH completed")
        assert other.cmd("SEARCH NEW") == (["* SEARCH"], "OK SEARCH completed")
        assert other.cmd("SEARCH OLD") == (["* SEARCH 1 2 3"], "OK SEARCH completed")
        assert status(other, "box", "RECENT") == {"RECENT": 0}
        # A flag change: each session sees the message with its own \Recent.
        assert other.cmd("STORE 2 +FLAGS (\\Flagged)") == (
            ["* 2 FETCH (FLAGS (\\Flagged))"], "OK STORE completed")
        assert imap.cmd("NOOP") == (["* 2 FETCH (FLAGS (\\Flagged \\Recent))"],
                                    "OK NOOP completed")
        # \Seen makes a \Recent message not NEW any more.
        imap.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
        assert imap.cmd("SEARCH NEW") == (["* SEARCH 3"], "OK SEARCH completed")
        assert imap.cmd("SEARCH RECENT SEEN") == (["* SEARCH 1 2"], "OK SEARCH completed")
    # Still \Recent for this session after the other one left.
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH 1 2 3"], "OK SEARCH completed")


def test_examine_does_not_claim_recent(server, account, imap):
    fill(imap, "box", 2)
    # Read-only: nothing is \Recent for this session, nothing is claimed.
    assert counts(select(imap, "box", "EXAMINE")) == ["* 2 EXISTS", "* 0 RECENT"]
    assert imap.cmd("FETCH 1:2 FLAGS") == (
        ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"], "OK FETCH completed")
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH"], "OK SEARCH completed")
    assert imap.cmd("SEARCH OLD") == (["* SEARCH 1 2"], "OK SEARCH completed")
    assert status(imap, "box", "RECENT") == {"RECENT": 2}
    # New mail while box is examined: still nobody's.
    with connect(server, account) as other:
        append(other, "box", message(subject="three"))
        assert status(other, "box", "RECENT") == {"RECENT": 3}
    assert counts(imap.ok("NOOP")) == ["* 3 EXISTS", "* 0 RECENT"]
    assert imap.cmd("FETCH 3 FLAGS") == (["* 3 FETCH (FLAGS ())"], "OK FETCH completed")
    assert status(imap, "box", "RECENT") == {"RECENT": 3}
    # Another session EXAMINEs it too: the same.
    with connect(server, account) as other:
        assert counts(select(other, "box", "EXAMINE")) == ["* 3 EXISTS", "* 0 RECENT"]
        assert status(other, "box", "RECENT") == {"RECENT": 3}
    # The first SELECT, even after this session's EXAMINE, claims all three.
    assert counts(select(imap, "box")) == ["* 3 EXISTS", "* 3 RECENT"]
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH 1 2 3"], "OK SEARCH completed")
    assert status(imap, "box", "RECENT") == {"RECENT": 3}
    with connect(server, account) as other:
        assert counts(select(other, "box", "EXAMINE")) == ["* 3 EXISTS", "* 0 RECENT"]
        assert status(other, "box", "RECENT") == {"RECENT": 0}


def test_new_mail_is_recent_for_the_selecting_session(server, account, imap):
    user, _ = account
    fill(imap, "INBOX", 1)
    assert counts(select(imap, "INBOX")) == ["* 1 EXISTS", "* 1 RECENT"]
    with connect(server, account) as other:
        # An APPEND from a session that does not have INBOX selected: not
        # claimed until this session hears of it, at its next command.
        append(other, "INBOX", message(subject="appended"))
        assert status(other, "INBOX", "RECENT") == {"RECENT": 1}
        assert imap.cmd("NOOP") == (["* 2 EXISTS", "* 2 RECENT"], "OK NOOP completed")
        assert status(other, "INBOX", "RECENT") == {"RECENT": 0}
        # An SMTP delivery: the same.
        deliver(server, user, b"Subject: delivered\r\n\r\nhello\r\n")
        assert noop_until_news(imap) == ["* 3 EXISTS", "* 3 RECENT"]
        assert status(other, "INBOX", "RECENT") == {"RECENT": 0}
        # And during IDLE.
        imap.send("I1 IDLE\r\n")
        assert imap.response() == "+ idling"
        append(other, "INBOX", message(subject="appended during idle"))
        got = wait_for(imap, lambda r: r.endswith(" RECENT"), timeout=1.0)
        assert got == ["* 4 EXISTS", "* 4 RECENT"], got
        deliver(server, user, b"Subject: delivered during idle\r\n\r\nhello\r\n")
        got = wait_for(imap, lambda r: r.endswith(" RECENT"), timeout=1.0)
        assert got == ["* 5 EXISTS", "* 5 RECENT"], got
        imap.send("DONE\r\n")
        assert imap.read_tagged("I1") == ([], "OK IDLE terminated")
        # None of them is \Recent for the other session.
        assert counts(select(other, "INBOX")) == ["* 5 EXISTS", "* 0 RECENT"]
        assert other.cmd("SEARCH RECENT") == (["* SEARCH"], "OK SEARCH completed")
    untagged, _ = imap.cmd("FETCH 1:5 FLAGS")
    assert {seq: items["FLAGS"] for seq, items in fetches(untagged).items()} == {
        n: ["\\Recent"] for n in range(1, 6)}
    assert imap.cmd("SEARCH NEW") == (["* SEARCH 1 2 3 4 5"], "OK SEARCH completed")


def test_own_append_and_copy_are_recent(imap):
    fill(imap, "box", 1)
    imap.ok("CREATE other")
    assert counts(select(imap, "box")) == ["* 1 EXISTS", "* 1 RECENT"]
    data = message(subject="own")
    untagged, tagged = imap.cmd(b"APPEND box (\\Seen) {%d}\r\n" % len(data) + data)
    assert tagged.startswith("OK [APPENDUID "), tagged
    assert untagged == ["* 2 EXISTS", "* 2 RECENT"]
    untagged, tagged = imap.cmd("COPY 1:2 box")
    assert tagged.startswith("OK [COPYUID "), tagged
    assert untagged == ["* 4 EXISTS", "* 4 RECENT"]
    # A copy to a mailbox that is not selected is nobody's yet.
    imap.ok("COPY 1:2 other")
    assert status(imap, "other", "RECENT") == {"RECENT": 2}
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH 1 2 3 4"], "OK SEARCH completed")
    assert imap.cmd("SEARCH NEW") == (["* SEARCH 1 3"], "OK SEARCH completed")
    assert imap.cmd("FETCH 4 FLAGS") == (["* 4 FETCH (FLAGS (\\Seen \\Recent))"],
                                         "OK FETCH completed")
    # An expunged \Recent message no longer counts at the next EXISTS.
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert imap.cmd("EXPUNGE") == (["* 1 EXPUNGE"], "OK EXPUNGE completed")
    untagged, tagged = imap.cmd("APPEND box {5}\r\nhello")
    assert tagged.startswith("OK [APPENDUID "), tagged
    assert untagged == ["* 4 EXISTS", "* 4 RECENT"]
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH 1 2 3 4"], "OK SEARCH completed")
    assert status(imap, "box", "RECENT") == {"RECENT": 4}


def test_imap4rev2_sees_no_recent(server, account, imap):
    user, _ = account
    fill(imap, "INBOX", 2)
    imap.ok("ENABLE IMAP4rev2")
    untagged = select(imap, "INBOX")
    assert counts(untagged) == ["* 2 EXISTS"]
    assert not [r for r in untagged if "RECENT" in r], untagged
    assert imap.cmd("FETCH 1:2 FLAGS") == (
        ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"], "OK FETCH completed")
    assert imap.cmd("STORE 1 +FLAGS (\\Flagged)") == (
        ["* 1 FETCH (FLAGS (\\Flagged))"], "OK STORE completed")
    # Its own APPEND, another session's, a delivery, in IDLE or not.
    data = message()
    untagged, tagged = imap.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
    assert tagged.startswith("OK [APPENDUID "), tagged
    assert untagged == ["* 3 EXISTS"]
    with connect(server, account) as other:
        append(other, "INBOX", message())
        assert imap.cmd("NOOP") == (["* 4 EXISTS"], "OK NOOP completed")
        imap.send("I1 IDLE\r\n")
        assert imap.response() == "+ idling"
        deliver(server, user, b"Subject: delivered during idle\r\n\r\nhello\r\n")
        assert wait_for(imap, lambda r: r.endswith(" EXISTS"), timeout=1.0) == ["* 5 EXISTS"]
        # An IMAP4rev2 session is still a read-write one: it claimed them all,
        # without showing it.
        assert counts(select(other, "INBOX")) == ["* 5 EXISTS", "* 0 RECENT"]
        other.ok("STORE 5 +FLAGS.SILENT (\\Answered)")
        got = wait_for(imap, lambda r: r.startswith("* 5 FETCH"), timeout=1.0)
        # (IMAP4rev2 puts the UID in unsolicited FETCH responses.)
        assert got == ["* 5 FETCH (UID 5 FLAGS (\\Answered))"], got
        imap.send("DONE\r\n")
        assert imap.read_tagged("I1") == ([], "OK IDLE terminated")
    untagged, _ = imap.cmd("FETCH 1:5 FLAGS")
    assert {seq: items["FLAGS"] for seq, items in fetches(untagged).items()} == {
        1: ["\\Flagged"], 2: [], 3: [], 4: [], 5: ["\\Answered"]}
    untagged, _ = imap.cmd("FETCH 5 FAST")
    assert fetches(untagged)[5]["FLAGS"] == ["\\Answered"]


def test_reselecting_gives_no_recent(server, account, imap):
    fill(imap, "box", 2)
    imap.ok("CREATE other")
    assert counts(select(imap, "box")) == ["* 2 EXISTS", "* 2 RECENT"]
    # SELECT of the same mailbox ends the selection that claimed them.
    assert counts(select(imap, "box")) == ["* 2 EXISTS", "* 0 RECENT"]
    assert imap.cmd("FETCH 1:2 FLAGS") == (
        ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"], "OK FETCH completed")
    assert imap.cmd("SEARCH RECENT") == (["* SEARCH"], "OK SEARCH completed")
    assert imap.cmd("SEARCH OLD") == (["* SEARCH 1 2"], "OK SEARCH completed")
    assert status(imap, "box", "RECENT") == {"RECENT": 0}
    # The same after UNSELECT, CLOSE, SELECT of another mailbox and LOGOUT
    # (the new message is appended while box is not selected: unclaimed).
    imap.ok("UNSELECT")
    for leave in ("UNSELECT", "CLOSE", 'SELECT "other"'):
        append(imap, "box", message(subject=f"before {leave}"))
        n = status(imap, "box", "MESSAGES")["MESSAGES"]
        assert counts(select(imap, "box")) == [f"* {n} EXISTS", "* 1 RECENT"], leave
        assert imap.cmd("SEARCH RECENT") == ([f"* SEARCH {n}"], "OK SEARCH completed")
        imap.ok(leave)
        assert counts(select(imap, "box")) == [f"* {n} EXISTS", "* 0 RECENT"], leave
        imap.ok("UNSELECT")
    append(imap, "box", message(subject="before logout"))
    with connect(server, account) as other:
        assert counts(select(other, "box")) == ["* 6 EXISTS", "* 1 RECENT"]
        assert other.cmd("LOGOUT") == (["* BYE Logging out"], "OK LOGOUT completed")
    assert counts(select(imap, "box")) == ["* 6 EXISTS", "* 0 RECENT"]
    assert status(imap, "box", "RECENT") == {"RECENT": 0}


def test_status_recent_of_the_selected_mailbox(server, account, imap):
    fill(imap, "box", 2)
    assert status(imap, "box", "RECENT") == {"RECENT": 2}
    select(imap, "box")
    # Its own \Recent messages, no longer unclaimed.
    assert status(imap, "box", "MESSAGES RECENT") == {"MESSAGES": 2, "RECENT": 2}
    with connect(server, account) as other:
        assert status(other, "box", "RECENT") == {"RECENT": 0}
        append(other, "box", message(subject="new"))
        # Unclaimed, for the other session; for this one, unclaimed plus
        # its own two. Then the update after the command claims it.
        assert status(other, "box", "RECENT") == {"RECENT": 1}
        assert imap.cmd('STATUS "box" (MESSAGES RECENT)') == (
            ['* STATUS "box" (MESSAGES 3 RECENT 3)', "* 3 EXISTS", "* 3 RECENT"],
            "OK STATUS completed")
        assert imap.cmd("NOOP") == ([], "OK NOOP completed")
        assert status(other, "box", "RECENT") == {"RECENT": 0}
        assert status(imap, "box", "RECENT") == {"RECENT": 3}
        # A session that selects box has none of them.
        select(other, "box")
        assert status(other, "box", "RECENT") == {"RECENT": 0}
    # STATUS of a mailbox this session has not selected counts only
    # the unclaimed ones.
    append(imap, "INBOX", message())
    assert status(imap, "INBOX", "RECENT") == {"RECENT": 1}
    assert status(imap, "box", "RECENT") == {"RECENT": 3}
    imap.ok("UNSELECT")
    assert status(imap, "box", "RECENT") == {"RECENT": 0}
