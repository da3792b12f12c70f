"""The http worker and the brand portal: security headers on every
response, embedded static files (ETag, gzip, HEAD), request limits and
targets that are refused, `dijk brand` on the command line, and the
portal that asks once which webmail a visitor wants and remembers it."""
import gzip
import http.client
import socket
import ssl
import struct
import time
import zlib

import pytest

from conftest import wait_until

PNG = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" +
       struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0) + b"\0\0\0\0")


def png_file(tmp_path, name="logo.png", data=PNG):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def request(d, method, path, headers=None, body=None, tls=False):
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", d.https_port, timeout=10,
                                        context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get(d, path, **kw):
    return request(d, "GET", path, **kw)


def assert_security_headers(h, tls=False):
    csp = h["content-security-policy"]
    for part in ("default-src 'none'", "script-src 'self'",
                 "frame-ancestors 'none'", "base-uri 'none'",
                 "form-action 'self'"):
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert ("strict-transport-security" in h) == tls


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One server for the tests that do not change brands."""
    from conftest import Dijk
    d = Dijk(tmp_path_factory.mktemp("web") / "data")
    d.start()
    yield d
    assert d.stop() == 0
    assert "error" not in d.logs().lower(), d.logs()[-3000:]


# --- Headers and static files ---------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/b/mail/", "/static/style.css",
                                  "/nowhere", "/b/mail/brand.css"])
def test_every_response_has_the_security_headers(web, path):
    status, h, _ = get(web, path)
    assert status in (200, 302, 404)
    assert_security_headers(h)


def test_https_serves_the_same_with_hsts(web):
    status, h, body = get(web, "/b/mail/", tls=True)
    assert status == 200 and b"<form id=\"login-form\"" in body
    assert_security_headers(h, tls=True)


def test_static_file_etag_and_revalidation(web):
    status, h, body = get(web, "/static/app.js")
    assert status == 200
    assert h["content-type"] == "text/javascript; charset=utf-8"
    assert h["cache-control"] == "no-cache"
    assert "content-encoding" not in h
    assert b"addEventListener" in body
    etag = h["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    status, h2, body2 = get(web, "/static/app.js", headers={"If-None-Match": etag})
    assert status == 304 and body2 == b""
    status, _, _ = get(web, "/static/app.js", headers={"If-None-Match": '"other"'})
    assert status == 200


def test_static_file_gzip(web):
    _, _, plain = get(web, "/static/style.css")
    status, h, packed = get(web, "/static/style.css",
                            headers={"Accept-Encoding": "br, gzip, deflate"})
    assert status == 200 and h["content-encoding"] == "gzip"
    assert h["vary"] == "Accept-Encoding"
    assert gzip.decompress(packed) == plain
    assert len(packed) < len(plain)
    _, h, body = get(web, "/static/style.css", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in h and body == plain
    _, h, body = get(web, "/static/style.css", headers={"Accept-Encoding": "xgzip"})
    assert "content-encoding" not in h and body == plain


def test_head_has_headers_and_no_body(web):
    status, h, body = request(web, "HEAD", "/static/style.css")
    assert status == 200 and body == b""
    assert h["content-type"] == "text/css; charset=utf-8"


def test_keep_alive_serves_several_requests_on_one_connection(web):
    c = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=10)
    try:
        socks = set()
        for path in ("/static/style.css", "/static/app.js", "/b/mail/", "/x"):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            assert r.status in (200, 404)
            socks.add(id(c.sock))
        assert len(socks) == 1
    finally:
        c.close()


# --- Refused requests -----------------------------------------------------------

def raw(d, data, timeout=10):
    with socket.create_connection(("127.0.0.1", d.http_port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"Content-Length: 0" in out:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return out


@pytest.mark.parametrize("target", [
    "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2fapp.js", "/static/app.js%00",
    "/b/../static/app.js", "/./static/app.js", "/static/%zz", "/b/mail/%0a",
])
def test_bad_targets_are_refused(web, target):
    out = raw(web, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]


def test_unknown_paths_and_methods(web):
    assert get(web, "/etc/passwd")[0] == 404
    assert get(web, "/static/")[0] == 404
    assert get(web, "/static/nothing.js")[0] == 404
    assert request(web, "PUT", "/static/app.js", body=b"x")[0] == 405
    assert request(web, "DELETE", "/")[0] == 405
    assert request(web, "POST", "/static/app.js", body=b"x")[0] == 404


def test_oversized_headers_are_refused_and_the_server_goes_on(web):
    # Over 8 KiB of header fields: 431 (SECURITY.md 5); over libevent's own
    # cap on the whole head (64 KiB), its 400.
    big = "a" * 20000
    out = raw(web, f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 431 "), out[:100]
    huge = "a" * 70000
    out = raw(web, f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 400 "), out[:100]
    out = raw(web, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414 "), out[:100]
    assert get(web, "/static/style.css")[0] == 200


def test_oversized_body_is_refused(web):
    out = raw(web, b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 104857600\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 "), out[:100]
    assert get(web, "/static/style.css")[0] == 200


def test_garbage_gets_400(web):
    for junk in (b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n"):
        out = raw(web, junk)
        assert out.startswith(b"HTTP/1.1 400 "), (junk, out[:100])
    # A TLS hello on the plain port is no request line: no answer, and
    # the others are served meanwhile.
    with socket.create_connection(("127.0.0.1", web.http_port), timeout=2) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40)
        assert get(web, "/static/style.css")[0] == 200
        with pytest.raises(socket.timeout):
            s.recv(100)


# --- dijk brand -----------------------------------------------------------------

def test_brand_cli(dijk_factory, tmp_path):
    d = dijk_factory("brands", start=False)
    d.cli("domain", "add", "north.test")
    d.cli("domain", "add", "south.test")
    logo = png_file(tmp_path)
    d.cli("brand", "add", "north", "--display", "North Net", "--color", "#1A6",
          "--logo", logo, "--domain", "north.test", "--domain", "example.test")
    d.cli("brand", "add", "south", "--display", "Süd & Co", "--color", "#123456",
          "--domain", "south.test")
    lines = d.cli("brand", "list").stdout.decode().splitlines()
    assert lines == [
        "north\t#11aa66\timage/png\tNorth Net\texample.test north.test",
        "south\t#123456\tno-logo\tSüd & Co\tsouth.test",
    ]
    svg = png_file(tmp_path, "logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'>"
                   b"<script>alert(1)</script></svg>")
    huge = png_file(tmp_path, "huge.png", PNG + b"\0" * (300 * 1024))
    refused = [
        (["brand", "add", "North", "--display", "x", "--color", "#123", "--domain", "south.test"], "brand name"),
        (["brand", "add", "x/y", "--display", "x", "--color", "#123", "--domain", "south.test"], "brand name"),
        (["brand", "add", "x", "--display", "x", "--color", "red", "--domain", "south.test"], "colour"),
        (["brand", "add", "x", "--display", "x", "--color", "#12345", "--domain", "south.test"], "colour"),
        (["brand", "add", "x", "--display", "a\nb", "--color", "#123", "--domain", "south.test"], "display"),
        (["brand", "add", "x", "--display", "x", "--color", "#123", "--domain", "south.test",
          "--logo", svg], "PNG"),
        (["brand", "add", "x", "--display", "x", "--color", "#123", "--domain", "south.test",
          "--logo", huge], "larger than"),
        (["brand", "add", "x", "--display", "x", "--color", "#123", "--domain", "nowhere.test"],
         "no such domain"),
        (["brand", "add", "x", "--display", "x", "--color", "#123", "--domain", "south.test"],
         "belongs to another brand"),
        (["brand", "add", "north", "--display", "x", "--color", "#123", "--domain", "other.test"],
         "exists already"),
        (["brand", "add", "x", "--display", "x", "--color", "#123"], "--domain"),
        (["brand", "del", "nothing"], "no such brand"),
    ]
    for args, words in refused:
        r = d.cli(*args, check=False)
        assert r.returncode != 0, args
        assert words in r.stderr.decode(), (args, r.stderr)
    # Nothing of the refused ones was kept.
    assert d.cli("brand", "list").stdout.decode().splitlines() == lines
    d.cli("brand", "del", "south")
    assert [x.split("\t")[0] for x in d.cli("brand", "list").stdout.decode().splitlines()] == ["north"]
    # A brand can take a domain given up by a deleted one.
    d.cli("brand", "add", "south2", "--display", "S", "--color", "#fff", "--domain", "south.test")


# --- The portal -----------------------------------------------------------------

def test_no_brand_goes_straight_to_the_default_login(web):
    status, h, _ = get(web, "/")
    assert status == 302 and h["location"] == "/b/mail/"
    status, h, body = get(web, "/b/mail/")
    assert status == 200 and h["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="/static/app.js">' in body
    assert b"<script>" not in body  # no inline script
    assert get(web, "/b/mail")[1]["location"] == "/b/mail/"
    assert get(web, "/b/other/")[0] == 404


def test_one_brand_goes_straight_to_it(dijk_factory, tmp_path):
    d = dijk_factory("onebrand", start=False)
    d.cli("brand", "add", "acme", "--display", "Acme Mail", "--color", "#aa2200",
          "--logo", png_file(tmp_path), "--domain", "example.test")
    d.start()
    status, h, _ = get(d, "/")
    assert status == 302 and h["location"] == "/b/acme/"
    assert get(d, "/b/mail/")[0] == 404
    status, h, css = get(d, "/b/acme/brand.css")
    assert status == 200 and h["content-type"] == "text/css; charset=utf-8"
    assert b"--brand: #aa2200;" in css and b"--brand-ink: #ffffff;" in css
    status, h, logo = get(d, "/b/acme/logo")
    assert status == 200 and h["content-type"] == "image/png" and logo == PNG
    assert get(d, "/b/acme/logo", headers={"If-None-Match": h["etag"]})[0] == 304
    import json
    status, h, body = get(d, "/b/acme/brand.json")
    assert json.loads(body) == {"name": "acme", "display": "Acme Mail",
                                "color": "#aa2200", "logo": True,
                                "domains": ["example.test"], "choice": False}


def cookie_of(h):
    return h["set-cookie"].split(";")[0]


def test_two_brands_ask_once_and_remember(dijk_factory, tmp_path):
    d = dijk_factory("twobrands", start=False)
    d.cli("domain", "add", "south.test")
    d.cli("brand", "add", "north", "--display", "North <Net> & Co", "--color", "#1a6b3c",
          "--logo", png_file(tmp_path), "--domain", "example.test")
    d.cli("brand", "add", "south", "--display", "Süd", "--color", "#f0c000",
          "--domain", "south.test")
    d.start()
    status, h, page = get(d, "/")
    assert status == 200 and b"Choose your webmail" in page
    # Display names are escaped; each brand links to its choice.
    assert b"North &lt;Net&gt; &amp; Co" in page and b"<Net>" not in page
    assert "Süd".encode() in page
    assert b'href="/choose/north"' in page and b'href="/choose/south"' in page
    assert b'src="/b/north/logo"' in page
    status, h, css = get(d, "/brands.css")
    assert b".brand-north {" in css and b"--brand: #f0c000;" in css
    assert b"--brand-ink: #111111;" in css  # dark text on the yellow brand
    # Choosing sets a long-lived cookie and goes to the brand's login.
    status, h, _ = get(d, "/choose/south")
    assert status == 303 and h["location"] == "/b/south/"
    parts = [p.strip() for p in h["set-cookie"].split(";")]
    assert parts[0] == "dijk_brand=south"
    assert "Max-Age=31536000" in parts and "Path=/" in parts
    assert "HttpOnly" in parts and "SameSite=Lax" in parts
    assert "Secure" not in parts  # plain HTTP on loopback
    # Next visit goes straight there.
    status, h, _ = get(d, "/", headers={"Cookie": "dijk_brand=south"})
    assert status == 302 and h["location"] == "/b/south/"
    status, h, _ = get(d, "/", headers={"Cookie": "a=b; dijk_brand=north; c=d"})
    assert status == 302 and h["location"] == "/b/north/"
    # /choose always asks; a stale or forged choice asks again.
    assert b"Choose your webmail" in get(d, "/choose", headers={"Cookie": "dijk_brand=south"})[2]
    for cookie in ("dijk_brand=gone", "dijk_brand=../x", "dijk_brand=" + "n" * 300):
        status, _, page = get(d, "/", headers={"Cookie": cookie})
        assert status == 200 and b"Choose your webmail" in page, cookie
    assert get(d, "/choose/nothing")[0] == 404
    # Over HTTPS the cookie is Secure.
    status, h, _ = get(d, "/choose/north", tls=True)
    assert status == 303 and "Secure" in [p.strip() for p in h["set-cookie"].split(";")]
    status, _, body = get(d, "/b/south/brand.json")
    assert b'"choice":true' in body
    # A brand removed while serving is gone within seconds, in every
    # worker.
    d.cli("brand", "del", "south")
    time.sleep(2.5)
    for _ in range(6):
        status, h, _ = get(d, "/")
        assert status == 302 and h["location"] == "/b/north/"
