"""MTA-STS (RFC 8461) both ways, and the other well-known documents.

dijk A (a.test) sends to s.test, whose policy host and MX are on
loopback, found through a private nsd (DnsServer). Certificates come from
a test CA that A trusts through outbound.tls_ca. The policy is served by
dijk B itself (its /.well-known/mta-sts.txt on mta-sts.s.test) or, to
make a policy and an MX disagree, by a small HTTPS server of the test.

Also: Thunderbird's autoconfig and Outlook's autodiscover documents that
`dijk dns` tells admins to point clients at."""

import http.server
import smtplib
import ssl
import subprocess
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from conftest import free_port, wait_until
from dnsserver import DnsServer

PASSWORD = "alice-password-11"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """A test CA and certificates it signed, by host name."""
    d = tmp_path_factory.mktemp("ca")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=dijk test CA", cwd=d)

    def issue(name, *hosts):
        san = ",".join(f"DNS:{h}" for h in hosts)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={hosts[0]}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", f"{name}.ext", cwd=d)
        return d / f"{name}.pem", d / f"{name}.key"

    issue.ca = d / "ca.pem"
    issue.dir = d
    return issue


class PolicyServer:
    """HTTPS on ADDR:port serving one MTA-STS policy text."""

    def __init__(self, address, port, cert, key, policy):
        self.policy = policy
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.headers.get("Host"), self.path))
                body = outer.policy.encode()
                self.send_response(200 if self.path == "/.well-known/mta-sts.txt" else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((address, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def zones(policy_address, mx_host="mx"):
    return {
        "a.test": ["@ MX 10 mx", "mx A 127.0.0.2",
                   '@ TXT "v=spf1 ip4:127.0.0.2 -all"'],
        "s.test": [f"@ MX 10 {mx_host}", "mx A 127.0.0.3", "other A 127.0.0.3",
                   f"mta-sts A {policy_address}", '_mta-sts TXT "v=STSv1; id=1"'],
    }


def make_pair(dijk_factory, tmp_path, ca, dns, https_port, b_cert):
    smtp_port = free_port()
    b = dijk_factory("b", {"dns.resolver": dns.address, "dns.trust_anchor": ""},
                     start=False, domain="s.test", hostname="mx.s.test",
                     users={"bob@s.test": PASSWORD}, address="127.0.0.3",
                     ports={"smtp": smtp_port, "https": https_port})
    if b_cert is not None:
        cert, key = b_cert
        (b.data / "cert.pem").write_bytes(cert.read_bytes())
        (b.data / "key.pem").write_bytes(key.read_bytes())
    b.start()
    a = dijk_factory("a", {
        "dns.resolver": dns.address, "dns.trust_anchor": "",
        "outbound.port": str(smtp_port), "outbound.bind": "127.0.0.2",
        "outbound.tls_ca": str(ca.ca), "outbound.mta_sts_port": str(https_port),
        "queue.retry": "1",
    }, domain="a.test", hostname="mx.a.test", users={"alice@a.test": PASSWORD},
        address="127.0.0.2", ports={"smtp": smtp_port})
    return a, b


def send(a, subject):
    with smtplib.SMTP(a.address, a.submission_port, timeout=20) as s:
        s.starttls(context=ssl._create_unverified_context())
        s.login("alice@a.test", PASSWORD)
        s.sendmail("alice@a.test", ["bob@s.test"],
                   f"From: alice@a.test\r\nTo: bob@s.test\r\nSubject: {subject}\r\n"
                   f"\r\nbody\r\n".encode())


def test_policy_served_by_dijk_is_honoured(dijk_factory, tmp_path, ca):
    """B publishes its own policy; A fetches it over verified HTTPS and
    delivers over verified TLS to the MX the policy names."""
    https_port = free_port()
    with DnsServer(tmp_path / "dns", zones("127.0.0.3")) as dns:
        a, b = make_pair(dijk_factory, tmp_path, ca, dns, https_port,
                         ca("s", "mx.s.test", "mta-sts.s.test"))
        send(a, "sts good")
        wait_until(lambda: b.messages("bob@s.test"), 20, what="the message at B")
        stored = b.message("bob@s.test", b.messages("bob@s.test")[0][0])
        assert b"Subject: sts good" in stored
        assert b" with ESMTPS " in stored
        assert a.queue() == []
        # What B serves is the policy dijk dns prints.
        ctx = ssl.create_default_context(cafile=str(ca.ca))
        ctx.check_hostname = False
        req = urllib.request.Request(f"https://127.0.0.3:{https_port}/.well-known/mta-sts.txt",
                                     headers={"Host": "mta-sts.s.test"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
        assert "version: STSv1" in text and "mode: enforce" in text
        assert "mx: mx.s.test" in text
        printed = a.cli("dns", "a.test").stdout.decode()
        assert "_mta-sts.a.test." in printed


def test_enforced_policy_refuses_an_mx_without_a_valid_certificate(
        dijk_factory, tmp_path, ca):
    """The policy host is valid, the MX shows dijk's self-signed
    certificate: enforce mode keeps the message queued, and says why."""
    https_port = free_port()
    cert, key = ca("policy", "mta-sts.s.test")
    policy = PolicyServer("127.0.0.4", https_port, cert, key,
                          "version: STSv1\nmode: enforce\nmx: mx.s.test\nmax_age: 600\n")
    try:
        with DnsServer(tmp_path / "dns", zones("127.0.0.4")) as dns:
            a, b = make_pair(dijk_factory, tmp_path, ca, dns, https_port, None)
            send(a, "sts bad cert")
            line = wait_until(lambda: [q for q in a.queue() if "attempts=" in q
                                       and "attempts=0" not in q], 20,
                              what="a failed attempt")[0]
            assert "MTA-STS" in line and "certificate" in line, line
            assert policy.requests and policy.requests[0] == (
                "mta-sts.s.test", "/.well-known/mta-sts.txt")
            time.sleep(2)  # more attempts, none of them delivers
            assert b.messages("bob@s.test") == []
            # In testing mode the same MX is used: the policy only reports.
            policy.policy = "version: STSv1\nmode: testing\nmx: mx.s.test\nmax_age: 600\n"
            dns.set_zone("s.test", zones("127.0.0.4")["s.test"][:-1] +
                         ['_mta-sts TXT "v=STSv1; id=2"'])
            a.cli("queue", "flush")
            wait_until(lambda: b.messages("bob@s.test"), 20, what="delivery in testing mode")
            assert a.queue() == []
    finally:
        policy.close()


def test_enforced_policy_refuses_an_mx_it_does_not_name(dijk_factory, tmp_path, ca):
    https_port = free_port()
    cert, key = ca("policy2", "mta-sts.s.test")
    policy = PolicyServer("127.0.0.4", https_port, cert, key,
                          "version: STSv1\nmode: enforce\nmx: mx.s.test\nmax_age: 600\n")
    try:
        # The MX record names other.s.test, which the policy does not.
        with DnsServer(tmp_path / "dns", zones("127.0.0.4", mx_host="other")) as dns:
            a, b = make_pair(dijk_factory, tmp_path, ca, dns, https_port,
                             ca("s2", "mx.s.test", "other.s.test"))
            send(a, "sts wrong mx")
            line = wait_until(lambda: [q for q in a.queue() if "error=" in q], 20,
                              what="a failed attempt")[0]
            assert "not in the MTA-STS policy" in line, line
            assert b.messages("bob@s.test") == []
    finally:
        policy.close()


def test_policy_host_with_an_untrusted_certificate_is_no_policy(
        dijk_factory, tmp_path, ca):
    """A policy that cannot be fetched over verified HTTPS does not count
    (RFC 8461 3.3): without one cached, mail goes as without MTA-STS."""
    https_port = free_port()
    with DnsServer(tmp_path / "dns", zones("127.0.0.3")) as dns:
        # B serves its policy with dijk's self-signed certificate.
        a, b = make_pair(dijk_factory, tmp_path, ca, dns, https_port, None)
        send(a, "sts untrusted policy")
        wait_until(lambda: b.messages("bob@s.test"), 20, what="the message at B")
        assert "MTA-STS policy of s.test" in a.logs()


# --- autoconfig and autodiscover ---------------------------------------------------

def get(b, path, host, method="GET", body=None):
    req = urllib.request.Request(f"https://127.0.0.1:{b.https_port}{path}", data=body,
                                 method=method, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, context=ssl._create_unverified_context(),
                                    timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_autoconfig_and_autodiscover(dijk):
    code, ctype, body = get(dijk, "/mail/config-v1.1.xml?emailaddress=alice%40example.test",
                            "autoconfig.example.test")
    assert code == 200 and ctype.startswith("application/xml")
    root = ET.fromstring(body)
    imap = root.find("./emailProvider/incomingServer[@type='imap']")
    smtp = root.find("./emailProvider/outgoingServer[@type='smtp']")
    assert imap.findtext("hostname") == "mail.example.test"
    assert imap.findtext("port") == str(dijk.imaps_port)
    assert smtp.findtext("port") == str(dijk.submissions_port)
    assert imap.findtext("socketType") == "SSL"
    # By host name alone, and under .well-known.
    code, _, _ = get(dijk, "/.well-known/autoconfig/mail/config-v1.1.xml",
                     "autoconfig.example.test")
    assert code == 200
    # Not for a domain this server does not serve.
    code, _, _ = get(dijk, "/mail/config-v1.1.xml?emailaddress=x%40other.test",
                     "autoconfig.other.test")
    assert code == 404
    # Outlook's autodiscover.
    request = (b'<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/'
               b'exchange/autodiscover/outlook/requestschema/2006"><Request>'
               b'<EMailAddress>bob@example.test</EMailAddress><AcceptableResponseSchema>'
               b'http://schemas.microsoft.com/exchange/autodiscover/outlook/'
               b'responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>')
    code, ctype, body = get(dijk, "/autodiscover/autodiscover.xml", "autodiscover.example.test",
                            method="POST", body=request)
    assert code == 200, body
    ns = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    root = ET.fromstring(body)
    protocols = {p.findtext("r:Type", namespaces=ns): p
                 for p in root.iterfind(".//r:Protocol", ns)}
    assert protocols["IMAP"].findtext("r:Port", namespaces=ns) == str(dijk.imaps_port)
    assert protocols["SMTP"].findtext("r:LoginName", namespaces=ns) == "bob@example.test"
    code, _, _ = get(dijk, "/autodiscover/autodiscover.xml", "autodiscover.example.test",
                     method="POST", body=request.replace(b"example.test", b"else.test"))
    assert code == 404
    # The MTA-STS policy only on mta-sts. of a local domain.
    code, _, body = get(dijk, "/.well-known/mta-sts.txt", "mta-sts.example.test")
    assert code == 200 and b"mx: mail.example.test" in body
    code, _, _ = get(dijk, "/.well-known/mta-sts.txt", "mail.example.test")
    assert code == 404
    code, _, _ = get(dijk, "/.well-known/mta-sts.txt", "mta-sts.other.test")
    assert code == 404
