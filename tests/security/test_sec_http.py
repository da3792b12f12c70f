"""Hostile HTTP and JMAP input, beyond tests/integration/test_http_*.py and
test_jmap_*.py: request smuggling (CL+TE, two Content-Lengths, odd
Transfer-Encodings, obs-fold, a space before the colon, missing or double
Host), oversized heads, path traversal in every spelling, absolute URIs
and Host/X-Forwarded tricks aimed at an internal listener (SECURITY.md
20), bad JSON for JMAP and the login, header injection through every
field a user sets when composing (delivered and counted), path names in
uploads and downloads (with a snapshot of the files), slow clients and
TLS downgrades. After each case a NEW client is served."""

import json
import re
import socket
import ssl
import threading
import time
import uuid

import pytest

from conftest import (SLOW, BOB, CORE, MAIL, SUBMISSION, assert_http_serves,
                      assert_tree_grew_only_in_store, free_port, new_web, raw_http,
                      tls_handshake, tree)

SMUGGLED = b"GET /static/style.css HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def server(sec_server):
    return sec_server


@pytest.fixture
def web(server):
    if getattr(server, "web", None) is None:
        server.web = new_web(server)
    return server.web


def responses(out):
    """The status lines of every response in out."""
    return [line for line in out.split(b"\r\n") if line.startswith(b"HTTP/1.")]


# --- request smuggling ------------------------------------------------------------

SMUGGLING = {
    "cl-te": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-cl": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Length: 48\r\n\r\n0\r\n\r\n", 400),
    "two-cl": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               b"Content-Length: 44\r\n\r\n", 400),
    "two-cl-same": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                    b"Content-Length: 0\r\n\r\n", 400),
    "cl-list": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n", 400),
    "cl-plus": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n", 400),
    "cl-negative": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: -44\r\n\r\n", 400),
    "cl-overflow": (b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 18446744073709551616\r\n\r\n", 413),
    "te-xchunked": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n"
                    b"\r\n", 501),
    "te-identity-chunked": (b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 501),
    "te-two-fields": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400),
    "te-obs-fold": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n"
                    b" chunked\r\n\r\n0\r\n\r\n", 501),
    "space-before-colon": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length : 44\r\n"
                           b"\r\n", 400),
    "chunk-size-overflow": (b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\nFFFFFFFFFFFFFFFFFF\r\n", 413),
    "no-host": (b"GET /static/app.js HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET /static/app.js HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_request_smuggling_is_refused_and_the_connection_closed(server, name):
    head, status = SMUGGLING[name]
    out = raw_http(server.http_port, head + SMUGGLED, timeout=5)
    got = responses(out)
    # One answer, the refusal, and never one for the request behind it.
    assert got and got[0].startswith(b"HTTP/1.1 %d " % status), (name, out[:300])
    assert len(got) == 1, (name, got)
    assert b"text/css" not in out
    assert_http_serves(server)


@pytest.mark.parametrize("head", [
    b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    b"GET /static/app.js HTTP/1.1\nHost: x\n\n",
    b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
], ids=["obs-fold", "nul-in-value", "bare-lf", "bare-cr"])
def test_odd_line_ends_never_give_two_requests(server, head):
    out = raw_http(server.http_port, head + SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), timeout=5)
    got = responses(out)
    # Refused, or one request; the pipelined one may follow, but never a
    # request made up of the odd header's pieces.
    assert got, out[:200]
    assert got[0].split()[1] in (b"200", b"400"), got
    assert len(got) <= 2, got
    assert_http_serves(server)


# --- oversized heads ---------------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"GET /static/app.js HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(3000)),
    b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nX-" + b"n" * 20000 + b": 1\r\n",
    b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nCookie: " + b"a=b; " * 5000 + b"\r\n",
    b"GET /static/app.js?" + b"q=1&" * 5000 + b" HTTP/1.1\r\nHost: x\r\n",
], ids=["3000-fields", "long-name", "cookie-bomb", "long-query"])
def test_oversized_heads_are_refused(server, head):
    out = raw_http(server.http_port, head + b"\r\n", timeout=5)
    # 8 KiB of header fields or of target (SECURITY.md 5).
    expected = b"HTTP/1.1 414 " if head.startswith(b"GET /static/app.js?") else b"HTTP/1.1 431 "
    assert out.startswith(expected), out[:100]
    assert len(responses(out)) == 1
    # Just under the limit is still a request.
    ok = raw_http(server.http_port, b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nX-Pad: "
                  + b"p" * 7000 + b"\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 "), ok[:100]
    assert_http_serves(server)


# --- paths ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/static/.%2e/app.js", "/static/%252e%252e/app.js",
    "/static/%c0%ae%c0%ae/app.js", "/static/..%5c..%5cetc/passwd", "/static/..\\..\\etc\\passwd",
    "/static//..//app.js", "/static/app.js%00.png", "/%2fetc/passwd", "//etc/passwd",
    "/static/app.js/..", "/jmap/download/a1/../../../etc/passwd/x",
])
def test_path_traversal_never_reaches_a_file(server, target):
    out = raw_http(server.http_port,
                   f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(
                       "latin-1"))
    status = out.split(b" ", 2)[1] if out else b""
    assert status in (b"400", b"401", b"404"), (target, out[:200])
    assert b"root:" not in out
    assert_http_serves(server)


# --- absolute URIs, Host and X-Forwarded-* (no server-side request) -------------------

def test_no_request_reaches_an_internal_listener(server, web):
    """SECURITY.md 20: whatever a request names (absolute URI, Host,
    X-Forwarded-*, Forwarded, a cookie, a JMAP argument), the server
    connects nowhere: an internal listener counts no connection."""
    port = free_port()
    hits = []
    lst = socket.socket()
    lst.bind(("127.0.0.1", port))
    lst.listen(16)
    lst.settimeout(0.2)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = lst.accept()
                hits.append(conn.recv(1000))
                conn.close()
            except socket.timeout:
                pass
            except OSError:
                return

    t = threading.Thread(target=accept)
    t.start()
    internal = f"127.0.0.1:{port}"
    try:
        heads = [
            f"GET http://{internal}/ HTTP/1.1\r\nHost: {internal}\r\n",
            f"GET http://{internal}/jmap/session HTTP/1.1\r\nHost: x\r\n",
            f"GET / HTTP/1.1\r\nHost: {internal}\r\n",
            f"GET /b/mail/ HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: {internal}\r\n"
            f"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nForwarded: for=127.0.0.1;host={internal};proto=http\r\n",
            f"GET /.well-known/jmap HTTP/1.1\r\nHost: {internal}\r\n",
            f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {internal}\r\n",
            f"GET / HTTP/1.1\r\nHost: x\r\nCookie: dijk_brand=http://{internal}/\r\n",
            f"GET /api/logo?url=http://{internal}/ HTTP/1.1\r\nHost: x\r\n",
        ]
        for head in heads:
            out = raw_http(server.http_port, (head + "Connection: close\r\n\r\n").encode())
            assert out.startswith(b"HTTP/1.1 "), (head, out[:100])
            # A redirect never points at what the request named.
            for line in out.split(b"\r\n\r\n")[0].split(b"\r\n"):
                if line.lower().startswith(b"location:"):
                    assert internal.encode() not in line, (head, line)
        # JMAP arguments that look like URLs are data, not places to go.
        r = web.api([["Core/echo", {"url": f"http://{internal}/"}, "a"],
                     ["Email/query", {"accountId": web.account,
                                      "filter": {"text": f"http://{internal}/"}}, "b"]])
        assert r[0][0] == "Core/echo" and r[1][0] == "Email/query"
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(5)
        lst.close()
    assert hits == []
    assert_http_serves(server)


# --- bad JSON -----------------------------------------------------------------------------

BAD_JSON = {
    "deep-arrays": b'{"using": [], "methodCalls": [' + b"[" * 100000 + b"]" * 100000 + b"]}",
    "deep-objects": b'{"using": [], "methodCalls": []' + b', "x": {"a":' * 50000 + b"1"
                    + b"}" * 50000 + b"}",
    "huge-number": b'{"using": [], "methodCalls": [], "n": 1' + b"0" * 100000 + b"}",
    "huge-exponent": b'{"using": [], "methodCalls": [], "n": 1e999999999999}',
    "invalid-utf8": b'{"using": ["\xff\xfe"], "methodCalls": []}',
    "overlong-utf8": b'{"using": ["\xc0\xaf"], "methodCalls": []}',
    "lone-surrogate": b'{"using": ["\\ud800"], "methodCalls": []}',
    "duplicate-using": b'{"using": [], "using": ["urn:x"], "methodCalls": []}',
    "trailing-garbage": b'{"using": [], "methodCalls": []} {"x": 1}',
    "bom": b'\xef\xbb\xbf{"using": [], "methodCalls": []}',
    "nul-byte": b'{"using": [], "methodCalls": []\x00}',
    "nan": b'{"using": [], "methodCalls": [], "n": NaN}',
    "single-quotes": b"{'using': [], 'methodCalls': []}",
    "comment": b'{"using": [], /* x */ "methodCalls": []}',
}


@pytest.mark.parametrize("name", list(BAD_JSON))
def test_bad_json_to_jmap_is_a_clean_400(server, web, name):
    status, _, body = web.raw("POST", "/jmap/api", BAD_JSON[name])
    assert status == 400, (name, status, str(body)[:200])
    assert isinstance(body, dict) and body["type"] in (
        "urn:ietf:params:jmap:error:notJSON", "urn:ietf:params:jmap:error:notRequest",
        "urn:ietf:params:jmap:error:limit"), body
    assert body["status"] == 400
    # The session still works.
    assert web.api([["Core/echo", {"ok": 1}, "e"]]) == [["Core/echo", {"ok": 1}, "e"]]
    assert_http_serves(server)


@pytest.mark.parametrize("body", [
    b"[" * 100000, b'{"username": "\xff", "password": "x"}', b'{"username": "a\\u0000b", "password": "x"}',
    b'{"username": 1e999999, "password": "x"}', b'{"username": "a", "username": "b", "password": "x"}',
    b'{"username": "' + b"u" * 20000 + b'", "password": "x"}',
], ids=["deep", "invalid-utf8", "nul", "huge-number", "duplicate", "long"])
def test_bad_json_to_login_is_refused(server, body):
    out = raw_http(server.http_port,
                   b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   b"Content-Type: application/json\r\nOrigin: http://127.0.0.1:%d\r\n"
                   b"Connection: close\r\nContent-Length: %d\r\n\r\n"
                   % (server.http_port, server.http_port, len(body)) + body)
    assert out.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 413 ")), out[:200]
    assert b"set-cookie" not in out.lower()
    assert_http_serves(server)


def test_jmap_argument_bombs(server, web):
    """Valid JSON that is hostile as arguments: deep filters, huge id
    lists, back-reference chains, absurd numbers."""
    acc = web.account
    calls = [
        ["Email/query", {"accountId": acc, "filter": "DEEP"}, "a"],
        ["Email/get", {"accountId": acc, "ids": [f"e{i}" for i in range(100000)]}, "b"],
        ["Email/query", {"accountId": acc, "position": 2 ** 70, "limit": -1}, "c"],
        ["Email/query", {"accountId": acc, "limit": 1e308}, "d"],
        ["Email/get", {"accountId": acc, "#ids": {"resultOf": "d", "name": "Email/query",
                                                   "path": "/ids/" + "*/" * 2000 + "x"}}, "e"],
        ["Mailbox/get", {"accountId": acc, "properties": ["name"] * 50000}, "f"],
    ]
    deep = '{"operator": "NOT", "conditions": [' * 5000 + '{"text": "x"}' + "]}" * 5000
    request = json.dumps({"using": [CORE, MAIL], "methodCalls": calls}).replace('"DEEP"', deep)
    status, _, body = web.raw("POST", "/jmap/api", request)
    if status == 200:
        kinds = [r[0] for r in body["methodResponses"]]
        assert len(kinds) == len(calls)
        assert kinds[0] == "error" and kinds[1] == "error" and kinds[2] == "error", body
    else:
        assert status == 400 and body["type"].startswith("urn:ietf:params:jmap:error:"), body
    assert web.api([["Core/echo", {}, "z"]]) == [["Core/echo", {}, "z"]]
    assert_http_serves(server)


# --- header injection through compose, delivered and counted ------------------------

INJECT = "\r\nBcc: evil@remote.test\r\nX-Injected: yes"


def _compose(web, **fields):
    obj = {"mailboxIds": {web.role("drafts"): True}, "from": [{"email": web.user}],
           "to": [{"email": BOB}], "subject": "s",
           "bodyValues": {"1": {"value": "body"}}, "textBody": [{"partId": "1"}]}
    obj.update(fields)
    return obj


@pytest.mark.parametrize("field,value", [
    ("bcc", [{"name": "B" + INJECT, "email": BOB}]),
    ("bcc", [{"email": BOB + INJECT}]),
    ("cc", [{"email": "bob@example.test\r\n"}]),
    ("subject", "s\u2028Bcc: evil@remote.test"),
    ("subject", "s\u0085X-Injected: yes"),
    ("subject", "s\x00X-Injected: yes"),
    ("replyTo", [{"name": "R" + INJECT, "email": BOB}]),
    ("sender", [{"name": "S" + INJECT, "email": "OWN"}]),
    ("inReplyTo", ["a@b" + INJECT]),
    ("references", ["a@b", "c@d" + INJECT]),
    ("headers", [{"name": "X-Injected", "value": "yes"}]),
    ("headers", [{"name": "Subject\r\nBcc", "value": "evil@remote.test"}]),
    ("attachments", [{"blobId": "UPLOAD", "type": 'text/plain; name="a"' + INJECT, "name": "a"}]),
    ("attachments", [{"blobId": "UPLOAD", "type": "text/plain", "name": "a\"" + INJECT}]),
    ("attachments", [{"blobId": "UPLOAD", "type": "text/plain", "disposition": "attachment" + INJECT}]),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_compose_header_injection_creates_no_header(server, web, field, value):
    status, _, up = web.upload(b"attached\n", "text/plain")
    assert status == 201
    value = json.loads(json.dumps(value).replace("OWN", web.user).replace("UPLOAD", up["blobId"]))
    before = len(web.ids())
    status, _, reply = web.raw("POST", "/jmap/api", {
        "using": [CORE, MAIL], "methodCalls": [
            ["Email/set", {"accountId": web.account,
                           "create": {"x": _compose(web, **{field: value})}}, "c"]]})
    if status == 400:
        # Refused as a whole request (a NUL is no JSON string for us).
        assert reply["type"] == "urn:ietf:params:jmap:error:notJSON", reply
        assert len(web.ids()) == before
        assert_http_serves(server)
        return
    assert status == 200, reply
    [(name, r, _)] = reply["methodResponses"]
    assert name == "Email/set", r
    if r.get("created"):
        # Accepted (e.g. the field was ignored or encoded): the stored
        # message still has one Subject and no injected field.
        eid = r["created"]["x"]["id"]
        status, _, raw = web.raw(
            "GET", f"/jmap/download/{web.account}/{r['created']['x']['blobId']}/m.eml")
        assert status == 200
        head = raw.split(b"\r\n\r\n", 1)[0]
        names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")
                 if line and line[:1] not in (b" ", b"\t")]
        assert names.count(b"subject") == 1 and b"bcc" not in names, head
        assert b"x-injected" not in names, head
        for part in raw.split(b"\r\n\r\n")[1:]:
            assert b"\r\nX-Injected: yes" not in part.split(b"\r\n\r\n")[0]
        web.ok("Email/set", {"destroy": [eid]})
    else:
        assert r["notCreated"]["x"]["type"] == "invalidProperties", r
        assert len(web.ids()) == before
    assert_http_serves(server)


def test_submission_envelope_injection(server, web):
    """EmailSubmission/set's envelope is data too: CR/LF in mailFrom or
    rcptTo never becomes an SMTP command, and bob gets nothing."""
    bob_before = {uid for uid, _, _ in server.messages(BOB)}
    draft = web.ok("Email/set", {"create": {"d": _compose(web)}})["created"]["d"]["id"]
    ident = web.ok("Identity/get", {})["list"][0]["id"]
    for env in ({"mailFrom": {"email": web.user + ">\r\nRCPT TO:<bob@example.test"},
                 "rcptTo": [{"email": BOB}]},
                {"mailFrom": {"email": web.user},
                 "rcptTo": [{"email": "nobody@remote.test>\r\nRCPT TO:<bob@example.test"}]},
                {"mailFrom": {"email": web.user, "parameters": {"SIZE": "1\r\nRCPT TO:<x@y>"}},
                 "rcptTo": [{"email": "nobody@remote.test"}]}):
        r = web.api([["EmailSubmission/set", {"accountId": web.account, "create": {
            "s": {"identityId": ident, "emailId": draft, "envelope": env}}}, "s"]],
            using=(CORE, MAIL, SUBMISSION))
        result = r[0][1]
        assert r[0][0] == "EmailSubmission/set" and not result.get("created"), result
        assert result["notCreated"]["s"]["type"] in ("invalidProperties", "forbiddenFrom",
                                                     "invalidArguments"), result
    time.sleep(0.3)
    assert {uid for uid, _, _ in server.messages(BOB)} == bob_before
    assert server.queue() == []
    assert_http_serves(server)


# --- names of uploads and downloads ---------------------------------------------------------

def test_upload_and_download_names_write_no_file(server, web):
    root = server.data.parent
    marker = f"httptrav{uuid.uuid4().hex[:8]}"
    before = tree(root)
    for ctype in (f"../../{marker}", f"text/plain; name=../../{marker}",
                  f"application/x-{marker}/../../../x", "text/plain\x7f"):
        status, _, up = web.upload(b"data", ctype)
        assert status == 201 and "/" in up["type"] and ".." not in up["type"], up
        for name in (f"../../{marker}", f"..%2f..%2f{marker}", f"%2e%2e%2f{marker}",
                     f"/tmp/{marker}", f"a\\..\\..\\{marker}"):
            status, h, body = web.raw("GET", f"/jmap/download/{web.account}/{up['blobId']}/{name}")
            if status == 200:
                assert body == b"data"
                cd = h["content-disposition"]
                assert cd.startswith("attachment;"), cd
                # The plain filename= never carries a path separator.
                plain = re.search(r'filename="([^"]*)"', cd)
                assert plain and "/" not in plain.group(1) and "\\" not in plain.group(1), cd
            else:
                assert status in (400, 404), (name, status)
    assert_tree_grew_only_in_store(root, before, marker)
    assert_http_serves(server)


def test_blob_ids_of_other_forms_reach_nothing(server, web):
    other = new_web(server)
    status, _, up = other.upload(b"other user's secret", "text/plain")
    assert status == 201
    for blob in (up["blobId"], "../" + up["blobId"], up["blobId"] + "/..", "%2e%2e",
                 up["blobId"] + "%00", "U-1", "U18446744073709551616", "U0x1"):
        status, _, body = web.raw("GET", f"/jmap/download/{web.account}/{blob}/x")
        # Blob ids count per account: "U1" may well be this user's own.
        assert status in (200, 400, 404), (blob, status)
        assert b"secret" not in (body if isinstance(body, bytes) else json.dumps(body).encode())
        status, _, body = web.raw("GET", f"/jmap/download/{other.account}/{blob}/x")
        assert status in (400, 404), (blob, status)
    assert_http_serves(server)


# --- slow clients ----------------------------------------------------------------------------

def test_slow_clients_block_nobody(server):
    stop = threading.Event()
    socks = []

    def trickle(s):
        head = b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 10000
        for i in range(len(head)):
            if stop.is_set():
                return
            try:
                s.sendall(head[i:i + 1])
            except OSError:
                return
            stop.wait(0.3)

    threads = []
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
            socks.append(s)
            threads.append(threading.Thread(target=trickle, args=(s,)))
        for _ in range(20):  # and some that announce a body and never send it
            s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
            s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            socks.append(s)
        for t in threads:
            t.start()
        time.sleep(1)
        t0 = time.monotonic()
        for _ in range(5):
            assert_http_serves(server)
        web = new_web(server)
        assert web.api([["Core/echo", {}, "x"]]) == [["Core/echo", {}, "x"]]
        assert time.monotonic() - t0 < 5 * SLOW
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for s in socks:
            s.close()


# --- TLS ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_https_refuses_old_tls(server, version):
    v = getattr(ssl.TLSVersion, version)
    ok, info, _ = tls_handshake(server, "https", minimum=v, maximum=v)
    assert not ok, info
    ok, info, _ = tls_handshake(server, "https")
    assert ok and info in ("TLSv1.2", "TLSv1.3"), info
    assert_http_serves(server)


def test_https_refuses_weak_suites(server):
    offered = 0
    for weak in ("AES128-SHA", "AES128-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA",
                 "NULL-SHA256:ECDHE-RSA-NULL-SHA", "CAMELLIA128-SHA"):
        ok, info, cipher = tls_handshake(server, "https", maximum=ssl.TLSVersion.TLSv1_2,
                                         ciphers=weak)
        assert not ok, f"{weak} accepted: {cipher}"
        offered += info != "not offered"
    assert offered >= 4
    assert_http_serves(server)
