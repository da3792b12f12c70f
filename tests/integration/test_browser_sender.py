"""The webmail tells a verified sender from a forged one.

dijk receives three messages on its MX from loopback clients, with a
private nsd (DnsServer) answering for the senders' domains: one signed
with a.test's DKIM key from a.test's SPF address (DMARC pass), one that
claims to be from a.test but comes unsigned from elsewhere (DMARC fail;
a.test's policy is p=none so it is still delivered), and one from a
domain that publishes nothing. Chromium (tests/browser/run.mjs) then
reads what the reading pane shows next to each sender."""

import smtplib
import subprocess

from conftest import DIJK, PASSWORDS
from dnsserver import DnsServer
from test_browser import browse

BOB = "bob@example.test"
GOOD, FORGED, PLAIN = "Signed by a.test", "Pretends to be a.test", "From a quiet domain"


def signer(tmp_path):
    """A data directory used only to sign as a.test (dijk dkim sign), and
    the zone lines of its public keys."""
    data = tmp_path / "signer"
    data.mkdir()
    run = lambda *a, **kw: subprocess.run([DIJK, *a, "--data", str(data)], check=True,
                                          capture_output=True, **kw)
    run("init", "--hostname", "mx.a.test")
    run("domain", "add", "a.test")
    run("dkim", "generate", "a.test")
    records = []
    for line in run("dns", "a.test").stdout.decode().splitlines():
        if "._domainkey." in line and not line.startswith(";"):
            name, _ttl, _class, _type, value = line.split(None, 4)
            records.append(f"{name} TXT {value}")
    return (lambda message: run("dkim", "sign", "a.test", input=message).stdout), records


def deliver(d, source, sender, message):
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30,
                      source_address=(source, 0)) as s:
        s.sendmail(sender, [BOB], message)


def test_reading_pane_marks_verified_and_forged_senders(dijk_factory, tmp_path):
    sign, keys = signer(tmp_path)
    zones = {
        "a.test": ['@ TXT "v=spf1 ip4:127.0.0.2 -all"', '_dmarc TXT "v=DMARC1; p=none"',
                   *keys],
        "quiet.test": ["@ A 127.0.0.7"],
    }
    with DnsServer(tmp_path / "dns", zones) as dns:
        d = dijk_factory("sender", {"dns.resolver": dns.address, "dns.trust_anchor": ""})
        deliver(d, "127.0.0.2", "news@a.test",
                sign(f"From: News <news@a.test>\r\nTo: {BOB}\r\nSubject: {GOOD}\r\n"
                     f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n".encode()))
        deliver(d, "127.0.0.9", "news@a.test",
                f"From: News <news@a.test>\r\nTo: {BOB}\r\nSubject: {FORGED}\r\n"
                f"\r\nplease log in here\r\n".encode())
        deliver(d, "127.0.0.7", "someone@quiet.test",
                f"From: someone@quiet.test\r\nTo: {BOB}\r\nSubject: {PLAIN}\r\n"
                f"\r\nhi\r\n".encode())
        stored = {d.message(BOB, uid).split(b"Subject: ")[1].split(b"\r\n")[0].decode(): uid
                  for uid, _, _ in d.messages(BOB)}
        assert set(stored) == {GOOD, FORGED, PLAIN}
        good = d.message(BOB, stored[GOOD])
        assert b"dkim=pass header.d=a.test" in good and b"dmarc=pass" in good, good[:900]
        assert b"dmarc=fail" in d.message(BOB, stored[FORGED])

        out = browse("sender-checks", base=f"http://127.0.0.1:{d.http_port}",
                     brandPath="/b/mail/", user=BOB, password=PASSWORDS[BOB],
                     subjects=[GOOD, FORGED, PLAIN])
    [mark] = out["marks"][GOOD]
    assert mark["text"] == "Verified" and "verified" in mark["kind"].split()
    assert "a.test" in mark["title"]
    [mark] = out["marks"][FORGED]
    assert mark["text"] == "Unverified sender" and "unverified" in mark["kind"].split()
    assert "DMARC fail" in mark["title"]
    assert out["marks"][PLAIN] == []
