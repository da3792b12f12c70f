"""Hostile IMAP input, beyond tests/integration/test_imap_abuse.py: tags,
mailbox names, LIST patterns and sequence sets at and past every limit,
number overflows in partial fetches and UIDs, NUL bytes and invalid UTF-8
in strings and literals, other users' mailboxes named every way, path
tricks in COPY/MOVE/APPEND targets (with a snapshot of the files),
pipelining and COMPRESS floods, slow clients, and TLS downgrades. After
each case a NEW client logs in, appends and fetches, and no worker
crashed (conftest.sec_server checks the log)."""

import base64
import re
import socket
import ssl
import threading
import time
import uuid
import zlib

import pytest

from conftest import (SLOW, RawImap, add_account, assert_imap_serves,
                      assert_tree_grew_only_in_store,
                      tls_handshake, tree)

MAX_LINE = 64 * 1024


@pytest.fixture
def server(sec_server):
    return sec_server


@pytest.fixture
def account(server):
    if getattr(server, "imap_account", None) is None:
        server.imap_account = add_account(server, prefix="imapsec")
        with RawImap(server.imap_port) as c:
            c.login(*server.imap_account)
            for i in range(3):
                data = b"From: a@remote.test\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i)
                _, tagged = c.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
                assert tagged.startswith("OK [APPENDUID"), tagged
    return server.imap_account


def login(server, account):
    c = RawImap(server.imap_port)
    c.login(*account)
    return c


def send_quietly(c, data):
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def bye_and_closed(c):
    rest = c.rest_until_close().decode("latin-1")
    lines = [x for x in rest.split("\r\n") if x]
    assert lines and lines[-1].startswith("* BYE "), lines[-3:]
    return lines


# --- tags ---------------------------------------------------------------------

@pytest.mark.parametrize("tag", [b"T" * 1000, b"T" * 50000, b"A\x01", b"A\x7f", b"A\xff",
                                 b"A{1}", b"A\\"])
def test_bad_or_overlong_tags_get_untagged_bad(server, account, tag):
    with login(server, account) as c:
        c.send(tag + b" NOOP\r\n")
        r = c.response()
        assert r.startswith("* BAD "), r[:100]
        # Never echoed back: a reply is not a mirror for the client's bytes.
        assert tag.decode("latin-1") not in r
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_imap_serves(server)


# --- mailbox names and LIST patterns ------------------------------------------

def test_mailbox_name_near_the_line_limit(server, account):
    name = "n" * (MAX_LINE - 200)
    with login(server, account) as c:
        for command in (f'CREATE "{name}"', f'SELECT "{name}"', f'STATUS "{name}" (MESSAGES)',
                        f'RENAME INBOX "{name}"', f'DELETE "{name}"', f'SUBSCRIBE "{name}"'):
            untagged, tagged = c.cmd(command)
            assert tagged.startswith(("NO ", "BAD ")), (command[:20], tagged)
            assert name not in tagged
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_imap_serves(server)


def test_mailbox_hierarchy_thousand_levels_deep(server, account):
    name = "/".join(["d"] * 1000)
    with login(server, account) as c:
        untagged, tagged = c.cmd(f'CREATE "{name}"')
        assert tagged.startswith(("NO ", "BAD ")), tagged
        untagged, tagged = c.cmd('LIST "" "d/*"')
        assert tagged == "OK LIST completed" and untagged == [], untagged[:3]
    assert_imap_serves(server)


@pytest.mark.parametrize("pattern", [
    "*" * 5000, "%" * 5000, "*a" * 2000 + "b", "%/" * 2000, "*%" * 2000 + "x",
], ids=["stars", "percents", "star-a-b", "percent-slash", "mixed"])
def test_list_pattern_bombs_answer_quickly(server, account, pattern):
    """Patterns that make a naive backtracking matcher exponential."""
    with login(server, account) as c:
        for i in range(30):
            c.cmd(f'CREATE "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{i}"')
        t0 = time.monotonic()
        untagged, tagged = c.cmd(f'LIST "" "{pattern}"')
        assert tagged.startswith(("OK ", "NO ", "BAD ")), tagged
        assert time.monotonic() - t0 < 5 * SLOW
        for i in range(30):
            c.cmd(f'DELETE "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{i}"')
    assert_imap_serves(server)


# --- other users' mailboxes -----------------------------------------------------

@pytest.mark.parametrize("name", [
    "user/bob/INBOX", "user.bob", "~bob/INBOX", "#shared/bob", "Other Users/bob/INBOX",
    "../bob@example.test/INBOX", "#mh/../../bob", "\\\\bob\\INBOX", "/INBOX", "INBOX/../../x",
])
def test_other_users_mailboxes_are_unreachable(server, account, name):
    """No name reaches bob's mail: bob's INBOX holds a secret that must
    never appear in any reply."""
    secret = f"secret-{uuid.uuid4().hex}"
    with RawImap(server.imap_port) as b:
        b.login("bob@example.test", "bob-password-22")
        data = f"Subject: {secret}\r\n\r\n{secret}\r\n".encode()
        assert b.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)[1].startswith("OK")
    with login(server, account) as c:
        q = '"' + name.replace("\\", "\\\\") + '"'
        replies = []
        for command in (f"SELECT {q}", f"EXAMINE {q}", f"STATUS {q} (MESSAGES UIDNEXT)",
                        f'LIST "" {q}', f"GETQUOTAROOT {q}", f"SELECT {q}", "FETCH 1:* (BODY[])",
                        "UID FETCH 1:* (ENVELOPE)", "SEARCH TEXT " + secret):
            untagged, tagged = c.cmd(command)
            replies.append((untagged, tagged))
        text = repr(replies)
        assert secret not in text
        # The account sees its own mailboxes only.
        untagged, _ = c.cmd('LIST "" "*"')
        assert all("bob" not in u for u in untagged), untagged
    assert_imap_serves(server)


# --- targets that look like paths ------------------------------------------------

def test_copy_move_append_to_path_names_write_nothing_outside(server, account):
    root = server.data.parent
    marker = f"imaptrav{uuid.uuid4().hex[:8]}"
    targets = [f"../{marker}", f"../../{marker}", f"/tmp/{marker}", f"%2e%2e/{marker}",
               f"blobs/../../{marker}", f"..\\\\{marker}"]
    before = tree(root)
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        for t in targets:
            q = f'"{t}"'
            for command in (f"COPY 1 {q}", f"MOVE 99 {q}", f"UID COPY 1:* {q}"):
                untagged, tagged = c.cmd(command)
                assert tagged.startswith(("NO ", "BAD ", "OK ")), (command, tagged)
                if tagged.startswith("NO"):
                    assert "TRYCREATE" in tagged or "No such" in tagged or "NONEXISTENT" in tagged, \
                        tagged
            data = b"Subject: trav\r\n\r\nx\r\n"
            _, tagged = c.cmd(f"APPEND {q} {{{len(data)}+}}\r\n".encode() + data)
            assert tagged.startswith(("NO [TRYCREATE]", "BAD ")), tagged
    assert_tree_grew_only_in_store(root, before, marker)
    assert_imap_serves(server)


# --- sequence sets and numbers ------------------------------------------------------

@pytest.mark.parametrize("command", [
    "FETCH 4294967296 FLAGS", "FETCH 1:4294967296 FLAGS", "UID FETCH 99999999999999999999 FLAGS",
    "FETCH 0 FLAGS", "FETCH 1,,2 FLAGS", "FETCH :1 FLAGS", "FETCH 1: FLAGS", "FETCH -1 FLAGS",
    "FETCH 1 (BODY[]<0.9223372036854775808>)", "FETCH 1 (BODY[]<9223372036854775808.1>)",
    "FETCH 1 (BODY[]<18446744073709551615.18446744073709551615>)",
    "FETCH 1 (BODY[4294967296])", "FETCH 1 (BODY[1.4294967297])",
    "STORE 1 +FLAGS.SILENT (\\Seen) (UNCHANGEDSINCE 99999999999999999999)",
    "SEARCH MODSEQ 99999999999999999999", "SEARCH SMALLER 18446744073709551616",
    "SELECT INBOX (QRESYNC (4294967296 1))", "UID EXPUNGE 4294967296",
])
def test_numbers_past_32_and_64_bits_are_bad(server, account, command):
    with login(server, account) as c:
        assert c.cmd("SELECT INBOX")[1].startswith("OK")
        untagged, tagged = c.cmd(command)
        assert tagged.startswith(("BAD ", "NO ")), (command, tagged)
        assert not any(u.startswith("* 1 FETCH (BODY") for u in untagged), untagged
        assert c.cmd("NOOP")[1] == "OK NOOP completed"
    assert_imap_serves(server)


def test_huge_ranges_do_not_expand(server, account):
    """Ranges are not expanded into lists: 1:4294967295 many times over on
    a mailbox of three messages answers at once."""
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        many = ",".join(["1:4294967295"] * 3000)
        t0 = time.monotonic()
        for command in (f"UID FETCH {many} (FLAGS)", f"UID SEARCH UID {many}",
                        "UID FETCH 4294967295:1 (UID)", "FETCH 1:* (UID)", "SEARCH 1:*,*:1,*"):
            untagged, tagged = c.cmd(command)
            assert tagged.startswith(("OK ", "BAD ")), (command[:30], tagged)
        assert time.monotonic() - t0 < 5 * SLOW
        untagged, tagged = c.cmd("UID FETCH 1:4294967295 (FLAGS)")
        assert tagged == "OK UID FETCH completed" and len(untagged) == 3, untagged
    assert_imap_serves(server)


# --- NUL and invalid UTF-8 ----------------------------------------------------------

def test_nul_in_quoted_strings_and_literals(server, account):
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        for command in (b'SEARCH SUBJECT "a\x00b"', b'CREATE "x\x00y"',
                        b"SEARCH SUBJECT {3}\r\na\x00b", b"LOGIN {3}\r\na\x00b x"):
            untagged, tagged = c.cmd(command)
            assert tagged.startswith(("BAD ", "NO ")), (command, tagged)
        # A NUL in an APPEND literal (not literal8) is refused, not stored.
        _, before = c.cmd("STATUS INBOX (MESSAGES)")
        data = b"Subject: nul\r\n\r\na\x00b\r\n"
        untagged, tagged = c.cmd(b"APPEND INBOX {%d}\r\n" % len(data) + data)
        if tagged.startswith("OK"):
            # Stored byte for byte and given back as a literal8 only.
            uid = re.search(r"APPENDUID \d+ (\d+)", tagged).group(1)
            c.cmd("NOOP")
            untagged, tagged = c.cmd(f"UID FETCH {uid} (BINARY.PEEK[])")
            assert tagged.startswith("OK"), tagged
        else:
            assert tagged.startswith(("NO ", "BAD ")), tagged
        assert c.cmd("NOOP")[1] == "OK NOOP completed"
    assert_imap_serves(server)


@pytest.mark.parametrize("text", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"])
def test_invalid_utf8_in_search_with_charset_utf8(server, account, text):
    with login(server, account) as c:
        c.cmd("SELECT INBOX")
        untagged, tagged = c.cmd(b"SEARCH CHARSET UTF-8 SUBJECT " + b"{%d}\r\n" % len(text) + text)
        assert tagged.startswith(("BAD ", "NO ")) or untagged == ["* SEARCH"], (untagged, tagged)
        untagged, tagged = c.cmd("SEARCH CHARSET X-NO-SUCH-CHARSET SUBJECT x")
        assert tagged.startswith("NO [BADCHARSET"), tagged
    assert_imap_serves(server)


# --- AUTHENTICATE garbage --------------------------------------------------------

@pytest.mark.parametrize("response", [
    b"!!!!", b"=====", b"AAA", base64.b64encode(b"no nuls at all"),
    base64.b64encode(b"\0\0\0\0"), base64.b64encode(b"a\0b\0c\0d"),
    base64.b64encode(b"\0" + b"u" * 5000 + b"\0p"), b"*",
])
def test_authenticate_plain_garbage(server, account, response):
    with RawImap(server.imap_port) as c:
        c.send(b"A1 AUTHENTICATE PLAIN\r\n")
        assert c.response() == "+ "
        c.send(response + b"\r\n")
        untagged, tagged = c.read_tagged("A1")
        assert tagged.startswith(("NO ", "BAD ")), tagged
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_imap_serves(server)


# --- floods -------------------------------------------------------------------------

def test_pipelined_noop_flood_answered_in_order(server, account):
    with login(server, account) as c:
        c.send(b"".join(b"N%d NOOP\r\n" % i for i in range(5000)) + b"Z LOGOUT\r\n")
        for i in range(5000):
            r = c.response()
            assert r == f"N{i} OK NOOP completed", (i, r)
        assert c.response() == "* BYE Logging out"
        assert c.response() == "Z OK LOGOUT completed"
    assert_imap_serves(server)


def test_preauth_command_flood(server, account):
    """Pipelined commands before login: answered in order, and anything
    that needs a login refused, until the error limit ends the session."""
    with RawImap(server.imap_port) as c:
        c.send(b"".join(b"C%d CAPABILITY\r\n" % i for i in range(2000))
               + b"".join(b"S%d SELECT INBOX\r\n" % i for i in range(100)))
        for i in range(2000):
            untagged, tagged = c.read_tagged(f"C{i}")
            assert tagged == "OK CAPABILITY completed", (i, tagged)
        lines = bye_and_closed(c)
        assert lines[-1] == "* BYE Too many errors", lines[-2:]
        assert all(re.match(r"S\d+ BAD ", x) for x in lines[:-1]), lines[:3]
        assert len(lines) <= 21
    assert_imap_serves(server)


def test_id_with_too_many_fields(server, account):
    """RFC 2971 allows 30 pairs; more are refused or ignored, before login
    (within its 8 KiB line) and after."""
    fields = " ".join(f'"k{i}" "v{i}"' for i in range(400))
    with RawImap(server.imap_port) as c:
        untagged, tagged = c.cmd(f"ID ({fields})")
        assert tagged.startswith(("BAD ", "OK ")), tagged
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    fields = " ".join(f'"k{i}" "v{i}"' for i in range(4000))
    with login(server, account) as c:
        untagged, tagged = c.cmd(f"ID ({fields})")
        assert tagged.startswith(("BAD ", "OK ")), tagged
        assert sum(map(len, untagged)) < 4096, "the server's ID answer grew with the request"
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_imap_serves(server)


def test_keyword_flood(server, account):
    """Thousands of keywords in one STORE: a clean NO/BAD or a bounded set,
    and FLAGS/PERMANENTFLAGS of the mailbox stay a sane size."""
    box = f"kw{uuid.uuid4().hex[:6]}"
    with login(server, account) as c:
        c.cmd(f"CREATE {box}")
        data = b"Subject: kw\r\n\r\nx\r\n"
        c.cmd(f"APPEND {box} {{{len(data)}}}\r\n".encode() + data)
        c.cmd(f"SELECT {box}")
        keywords = " ".join(f"k{i:05d}" for i in range(5000))
        untagged, tagged = c.cmd(f"STORE 1 +FLAGS ({keywords})")
        assert tagged.startswith(("OK ", "NO ", "BAD ")), tagged
        untagged, tagged = c.cmd(f"SELECT {box}")
        assert tagged.startswith("OK"), tagged
        assert sum(len(u) for u in untagged) < 200000
        c.cmd("UNSELECT")
        c.cmd(f"DELETE {box}")
    assert_imap_serves(server)


def test_compress_deflate_bomb(server, account):
    """A small deflate stream that inflates to 64 MiB of one endless line:
    the line limit holds after decompression too (BYE), without the
    worker inflating it all into memory first."""
    with login(server, account) as c:
        untagged, tagged = c.cmd("COMPRESS DEFLATE")
        assert tagged == "OK DEFLATE active", tagged
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = comp.compress(b"A1 NOOP " + b"x" * (64 * 1024 * 1024)) + comp.flush(zlib.Z_SYNC_FLUSH)
        assert len(bomb) < 200000
        send_quietly(c, bomb)
        c.sock.settimeout(10)
        got = b""
        try:
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        d = zlib.decompressobj(-15)
        text = d.decompress(got)
        assert b"* BYE Command line too long" in text, text[-200:]
    assert_imap_serves(server)


# --- slow clients -------------------------------------------------------------------

def test_slow_clients_block_nobody(server, account):
    """Thirty clients trickling a command one byte at a time (and thirty
    holding half a literal) do not delay a new client's whole session."""
    stop = threading.Event()
    socks = []

    def trickle(s, data):
        i = 0
        while not stop.is_set():
            try:
                s.sendall(data[i % len(data):i % len(data) + 1])
            except OSError:
                return
            i += 1
            stop.wait(0.5)

    threads = []
    try:
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", server.imap_port), timeout=10)
            s.recv(1000)
            socks.append(s)
            threads.append(threading.Thread(target=trickle, args=(s, b"A1 LOGIN someone pw")))
        for i in range(30):
            c = login(server, account)
            c.send(b"L1 APPEND INBOX {100000}\r\n")
            assert c.response().startswith("+ ")
            c.send(b"x" * 1000)
            socks.append(c.sock)
        for t in threads:
            t.start()
        time.sleep(1)
        t0 = time.monotonic()
        assert_imap_serves(server)
        assert time.monotonic() - t0 < 5 * SLOW
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for s in socks:
            s.close()
    assert_imap_serves(server)


# --- TLS --------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["imap-starttls", "imaps"])
def test_weak_tls12_suites_refused(server, account, endpoint):
    offered = 0
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES256-SHA384",
                 "ECDHE-ECDSA-AES256-SHA384", "NULL-SHA256:ECDHE-RSA-NULL-SHA",
                 "DHE-RSA-AES128-SHA"):
        ok, info, cipher = tls_handshake(server, endpoint, maximum=ssl.TLSVersion.TLSv1_2,
                                         ciphers=weak)
        assert not ok, f"{weak} accepted on {endpoint}: {cipher}"
        offered += info != "not offered"
    assert offered >= 4
    ok, info, cipher = tls_handshake(server, endpoint, maximum=ssl.TLSVersion.TLSv1_2,
                                     ciphers="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384")
    assert ok and info == "TLSv1.2", (info, cipher)
    ok, info, cipher = tls_handshake(server, endpoint, minimum=ssl.TLSVersion.TLSv1_1,
                                     maximum=ssl.TLSVersion.TLSv1_1)
    assert not ok, info
    assert_imap_serves(server)


def test_starttls_after_starttls_and_after_login(server, account):
    with RawImap(server.imap_port) as c:
        c.login(*account)
        untagged, tagged = c.cmd("STARTTLS")
        assert tagged.startswith("BAD "), tagged
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    assert_imap_serves(server)
