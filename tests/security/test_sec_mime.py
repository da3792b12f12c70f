"""Hostile MIME, beyond tests/integration/test_imap_abuse.py's hostile
messages: multiparts and message/rfc822 1000 deep, 100k header fields,
RFC 2047 bombs and tricks, base64 and quoted-printable garbage, charset
bombs, RFC 2231 parameter bombs, odd boundaries, path names as attachment
names, NUL bytes. Each message goes into a mailbox of its own by IMAP
APPEND (or by SMTP where the MX path matters) and is read back every way
a client reads it: IMAP BODYSTRUCTURE, ENVELOPE, sections and BINARY,
SEARCH, and JMAP Email/get with its body values. Every reply must be
well formed, nothing may crash, and a new client is served after."""

import base64
import re
import uuid

import pytest

from conftest import (SLOW, RawImap, add_account, assert_imap_serves,
                      assert_tree_grew_only_in_store, tree, Web)


@pytest.fixture
def server(sec_server):
    return sec_server


@pytest.fixture
def reader(server):
    """An account with a webmail session and an IMAP login."""
    if getattr(server, "mime_reader", None) is None:
        address, password = add_account(server, prefix="mime")
        server.mime_reader = Web(server, address, password)
    return server.mime_reader


def literal_balanced(response):
    """True when every {n} literal in a response is followed by n bytes
    and the parentheses outside strings and literals balance."""
    data = response.encode("utf-8", "surrogateescape")
    depth, i = 0, 0
    while i < len(data):
        ch = data[i:i + 1]
        if ch == b'"':
            i += 1
            while data[i:i + 1] != b'"':
                if data[i:i + 1] == b"\\":
                    i += 1
                i += 1
                if i >= len(data):
                    return False
        elif ch == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", data[i:])
            if not m:
                return False
            i += m.end() + int(m.group(1)) - 1
        elif ch == b"(":
            depth += 1
        elif ch == b")":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def read_every_way(server, reader, data, sections=("1", "2", "1.1", "TEXT")):
    """Appends data to a new mailbox and reads it back over IMAP and JMAP.
    Returns (the JMAP Email, {IMAP item: response})."""
    box = f"mime{uuid.uuid4().hex[:8]}"
    got = {}
    with RawImap(server.imap_port, timeout=15 * SLOW) as c:
        c.login(reader.user, reader.password)
        assert c.cmd(f"CREATE {box}")[1] == "OK CREATE completed"
        # NUL bytes may come only in a literal8 (RFC 3516).
        tilde = b"~" if b"\x00" in data else b""
        _, tagged = c.cmd(b"APPEND %s %s{%d}\r\n" % (box.encode(), tilde, len(data)) + data)
        assert tagged.startswith("OK [APPENDUID"), tagged
        assert c.cmd(f"SELECT {box}")[1].startswith("OK")
        items = ["BODYSTRUCTURE", "BODY", "ENVELOPE", "RFC822.SIZE", "BODY.PEEK[HEADER]"]
        items += [f"BODY.PEEK[{s}]" for s in sections]
        items += [f"BINARY.PEEK[{s}]" for s in sections if s[0].isdigit()]
        for item in items:
            untagged, tagged = c.cmd(f"FETCH 1 ({item})")
            assert tagged.startswith(("OK", "NO")) or (
                item.startswith("BINARY") and tagged.startswith("NO")), (item, tagged)
            if tagged.startswith("OK"):
                assert len(untagged) == 1 and untagged[0].startswith("* 1 FETCH ("), \
                    (item, untagged[:1])
                assert literal_balanced(untagged[0][2:]), (item, untagged[0][:300])
                got[item] = untagged[0]
        for search in ("SEARCH TEXT needle", "SEARCH SUBJECT needle", "SEARCH HEADER X-No x"):
            assert c.cmd(search)[1] == "OK SEARCH completed", search
        assert c.cmd("NOOP") == ([], "OK NOOP completed")
    ids = reader.ok("Email/query", {"filter": {"inMailbox": _mailbox_id(reader, box)}})["ids"]
    assert len(ids) == 1, ids
    [email] = reader.ok("Email/get", {
        "ids": ids, "fetchAllBodyValues": True, "maxBodyValueBytes": 100000,
        "properties": ["subject", "from", "to", "bodyStructure", "textBody", "htmlBody",
                       "attachments", "bodyValues", "preview", "size"]})["list"]
    assert email["size"] == len(data)
    return email, got


def _mailbox_id(reader, name):
    boxes = reader.ok("Mailbox/get", {"ids": None})["list"]
    return next(m["id"] for m in boxes if m["name"] == name)


def depth_of(part):
    d = 0
    while part.get("subParts"):
        part = part["subParts"][0]
        d += 1
    return d


# --- nesting ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["multipart", "message", "alternating"])
def test_thousand_levels_deep(server, reader, kind):
    depth = 1000
    if kind == "multipart":
        head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                        for i in range(depth))
        tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    elif kind == "message":
        head = b"".join(b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i
                        for i in range(depth))
        tail = b""
    else:
        head = b"".join((b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i))
                        if i % 2 else b"Content-Type: message/rfc822\r\n\r\n"
                        for i in range(depth))
        tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)) if i % 2)
    data = (b"From: deep@remote.test\r\nSubject: deep needle\r\nMIME-Version: 1.0\r\n" + head
            + b"Content-Type: text/plain\r\n\r\nleaf needle\r\n" + tail)
    email, got = read_every_way(server, reader, data)
    assert "BODYSTRUCTURE" in got and "ENVELOPE" in got
    # The JMAP tree is bounded: past the nesting limit the rest is one
    # opaque part, never a recursion without end.
    assert depth_of(email["bodyStructure"]) <= depth
    assert email["bodyStructure"]["type"] in ("multipart/mixed", "message/rfc822", "text/plain")
    assert_imap_serves(server)


def test_ten_thousand_sibling_parts(server, reader):
    parts = b"".join(b"--s\r\nContent-Type: text/plain\r\n\r\np%d\r\n" % i for i in range(10000))
    data = (b"From: a@remote.test\r\nSubject: siblings\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=s\r\n\r\n" + parts + b"--s--\r\n")
    email, got = read_every_way(server, reader, data)
    assert email["bodyStructure"]["type"] == "multipart/mixed"
    assert_imap_serves(server)


# --- headers --------------------------------------------------------------------------------

def test_hundred_thousand_header_fields(server, reader):
    data = (b"From: a@remote.test\r\nSubject: fields needle\r\n"
            + b"".join(b"X-F%d: v\r\n" % i for i in range(100000)) + b"\r\nbody\r\n")
    email, got = read_every_way(server, reader, data, sections=("1", "TEXT"))
    assert email["subject"] == "fields needle"
    assert_imap_serves(server)


@pytest.mark.parametrize("header", [
    b"Subject: " + b" ".join([b"=?utf-8?b?" + base64.b64encode("ü".encode() * 20) + b"?="] * 10000),
    b"Subject: =?utf-8?b?" + base64.b64encode(b"A" * 300000) + b"?=",
    b"Subject: =?utf-8?q?" + b"=41" * 100000 + b"?=",
    b"Subject: " + b"=?utf-8?q?a?=" * 20000,
    b"Subject: =?utf-8?b?" + base64.b64encode(b"=?utf-8?b?" + base64.b64encode(b"<script>") + b"?=")
    + b"?=",
    b"Subject: =?x-no-such-charset?q?abc?= =?utf-8?b?!!!!?= =?utf-8?z?abc?= =?utf-8?q?=ZZ?=",
    b"Subject: =?utf-7?q?+ADw-script+AD4-alert(1)+ADw-/script+AD4-?=",
    b"Subject: =?utf-8?q?a=0D=0AX-Injected:_yes?=",
    b"Subject: =?utf-8*en-us*" + b"x" * 5000 + b"?q?a?=",
    b"From: =?utf-8?b?" + base64.b64encode(b"Evil <ceo@example.test>") + b"?= <x@remote.test>",
    b"From: " + b", ".join(b"=?utf-8?q?n%d?= <a%d@remote.test>" % (i, i) for i in range(5000)),
], ids=["10k-words", "300k-word", "100k-q-escapes", "20k-adjacent", "nested-encoded",
        "bad-charset-and-b64", "utf7-script", "encoded-crlf", "huge-language", "encoded-address",
        "5000-encoded-names"])
def test_rfc2047_bombs_and_tricks(server, reader, header):
    data = b"To: x@example.test\r\n" + header + b"\r\n\r\nbody needle\r\n"
    if not header.startswith(b"From:"):
        data = b"From: a@remote.test\r\n" + data
    email, got = read_every_way(server, reader, data, sections=("1", "TEXT"))
    subject = email["subject"] or ""
    if b"utf-7" in header:
        # Decoded as the charset says: markup in a subject is only text
        # (the webmail never puts a subject into HTML).
        assert subject == "<script>alert(1)</script>", subject
    else:
        # Decoded once: an encoded word inside a decoded one stays text.
        assert "<script>" not in subject
    # A CR or LF from an encoded word never reaches a client as a line
    # end (a reply would carry it into a header of its own).
    assert "\r" not in subject and "\n" not in subject, subject[:100]
    if header.startswith(b"From:") and b"Evil" in header:
        # The decoded display name is not taken for the address.
        assert email["from"][0]["email"] == "x@remote.test", email["from"]
    assert_imap_serves(server)


# --- bodies ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cte,body", [
    (b"base64", b"!!!!####$$$$" * 1000),
    (b"base64", b"QUJD" + b"=" * 100000),
    (b"base64", b"Q" + b"\r\n" * 50000 + b"UJD"),
    (b"base64", b"QUJ\x00D\xff\xfe" * 1000),
    (b"base64", base64.b64encode(b"\x00" * 3000000)),
    (b"quoted-printable", b"=ZZ=\r\n" * 50000 + b"=4"),
    (b"quoted-printable", b"=\r\n" * 200000),
    (b"x-uuencode", b"begin 644 ../../../tmp/x\r\n" + b"M" * 60 + b"\r\nend\r\n"),
    (b"8bit\r\nContent-Transfer-Encoding: base64", b"QUJD"),
], ids=["junk", "padding", "line-breaks", "nul-and-ff", "3mb-zeros", "qp-junk", "qp-soft-breaks",
        "uuencode-path", "two-encodings"])
def test_transfer_encoding_garbage(server, reader, cte, body):
    data = (b"From: a@remote.test\r\nSubject: cte needle\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
            b"Content-Type: text/plain\r\n\r\nfirst needle\r\n--z\r\n"
            b"Content-Type: application/octet-stream; name=a.bin\r\n"
            b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body + b"\r\n--z--\r\n")
    email, got = read_every_way(server, reader, data)
    assert email["attachments"] or email["bodyStructure"]["subParts"], email["bodyStructure"]
    assert_imap_serves(server)


@pytest.mark.parametrize("ctype,body", [
    (b"text/plain; charset=utf-7", b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-"),
    (b"text/plain; charset=iso-2022-jp", b"\x1b$B" * 10000 + b"\x1b(B"),
    (b"text/plain; charset=utf-16", b"\xff\xfe" + b"\x00\xd8" * 5000),
    (b"text/plain; charset=utf-32", b"\xff\xfe\x00\x00\x41"),
    (b"text/plain; charset=" + b"x" * 10000, b"text"),
    (b"text/plain; charset=../../../../tmp/gconv", b"text"),
    (b"text/plain; charset=\"utf-8\"; charset=utf-16", b"text"),
    (b"text/plain; charset=utf-8", b"\xc0\xaf\xed\xa0\x80\xf8\x88\x80\x80\x80" * 1000),
    (b"text/html; charset=gb18030", b"\x81\x30\x81" * 10000),
], ids=["utf7", "iso2022-escapes", "utf16-lone-surrogates", "utf32-odd", "long-name",
        "path-name", "two-charsets", "invalid-utf8", "gb18030-truncated"])
def test_charset_bombs(server, reader, ctype, body):
    data = (b"From: a@remote.test\r\nSubject: charset needle\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: " + ctype + b"\r\n\r\n" + body + b"\r\n")
    email, got = read_every_way(server, reader, data, sections=("1", "TEXT"))
    values = " ".join(v["value"] for v in email["bodyValues"].values())
    if b"utf-7" in ctype:
        # Decoded as the charset says; plain text is shown as text.
        assert "<script>alert(1)</script>" in values, values[:100]
    else:
        assert "<script>" not in values
    assert_imap_serves(server)


# --- parameters, boundaries, names ---------------------------------------------------------------

@pytest.mark.parametrize("header", [
    b"Content-Type: multipart/mixed; boundary=" + b"b" * 10000,
    b"Content-Type: multipart/mixed",
    b"Content-Type: multipart/mixed; boundary=\"\"",
    b"Content-Type: multipart/mixed; boundary=\"(.*)+$\\\\\"",
    b"Content-Type: multipart/mixed; " + b"; ".join(b"p%d=v" % i for i in range(20000)) + b"; boundary=z",
    b"Content-Type: multipart/mixed; boundary=z; name*0=a; name*99999999999999999999=b; "
    b"name*4294967296=c; name*=utf-8''%ff%fe%00; name*1*=%",
    b"Content-Type: multipart/mixed; boundary=z; " + b"; ".join(b"n*%d=x" % i for i in range(10000)),
    b"Content-Type: multipart/mixed; boundary=z\r\nContent-Type: text/html",
    b"Content-Type: ;;;;;;;===;;;",
], ids=["long-boundary", "no-boundary", "empty-boundary", "regex-boundary", "20k-params",
        "rfc2231-overflow", "rfc2231-10k-pieces", "two-content-types", "junk"])
def test_parameter_and_boundary_bombs(server, reader, header):
    data = (b"From: a@remote.test\r\nSubject: params needle\r\nMIME-Version: 1.0\r\n" + header
            + b"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\ninner needle\r\n--z--\r\n")
    read_every_way(server, reader, data)
    assert_imap_serves(server)


def test_attachment_names_that_are_paths_write_nothing(server, reader):
    root = server.data.parent
    marker = f"mimetrav{uuid.uuid4().hex[:8]}"
    names = [f"../../../../tmp/{marker}", f"/etc/{marker}", f"..\\..\\{marker}",
             f"%2e%2e%2f{marker}", f"{marker}\x00.txt", f"a/../../{marker}", "CON", ".."]
    parts = b"".join(
        b"--z\r\nContent-Type: application/octet-stream; name=\"" + n.encode() + b"\"\r\n"
        b"Content-Disposition: attachment; filename=\"" + n.encode() + b"\"; filename*=utf-8''"
        + n.replace("/", "%2F").encode() + b"\r\n\r\npayload\r\n" for n in names)
    data = (b"From: a@remote.test\r\nSubject: names needle\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\n" + parts + b"--z--\r\n")
    before = tree(root)
    email, got = read_every_way(server, reader, data)
    assert len(email["attachments"]) == len(names)
    for att in email["attachments"]:
        status, h, body = reader.raw(
            "GET", f"/jmap/download/{reader.account}/{att['blobId']}/x")
        assert status == 200 and body == b"payload"
        assert re.search(r'filename="[^"/\\]*"', h["content-disposition"]), h["content-disposition"]
    assert_tree_grew_only_in_store(root, before, marker)
    assert_imap_serves(server)


def test_nul_bytes_in_headers_and_body(server, reader):
    data = (b"From: a@remote.test\r\nSubject: nul\x00needle\r\nX-Nul: \x00\x00\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; name=\"a\x00b\"\r\n\r\n"
            b"body\x00needle\r\n")
    box = f"nul{uuid.uuid4().hex[:6]}"
    with RawImap(server.imap_port) as c:
        c.login(reader.user, reader.password)
        c.cmd(f"CREATE {box}")
        # Only a literal8 (BINARY) may carry NUL.
        _, tagged = c.cmd(b"APPEND %s ~{%d}\r\n" % (box.encode(), len(data)) + data)
        assert tagged.startswith(("OK", "NO", "BAD")), tagged
        if tagged.startswith("OK"):
            c.cmd(f"SELECT {box}")
            for item in ("BODYSTRUCTURE", "ENVELOPE", "BINARY.PEEK[1]", "BODY.PEEK[HEADER]"):
                untagged, tagged = c.cmd(f"FETCH 1 ({item})")
                assert tagged.startswith("OK"), (item, tagged)
                assert literal_balanced(untagged[0][2:]), untagged[0][:200]
    assert_imap_serves(server)
