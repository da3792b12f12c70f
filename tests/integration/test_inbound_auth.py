"""SPF, DKIM and DMARC on inbound mail, as dijk reports them in the
Authentication-Results field it puts on top of each stored message
(RFC 8601), and as it enforces a DMARC p=reject policy.

dijk B serves b.test as mx.b.test on 127.0.0.3 and resolves through a
private nsd (tests/support/dnsserver.py). Mail reaches it from dijk A
(a.test on 127.0.0.2, which signs with the keys of `dijk dkim generate`
and publishes what `dijk dns` prints) and from Python's smtplib bound to
other loopback addresses, for domains whose SPF names some of them."""

import re
import smtplib
import ssl
import uuid

import pytest

from conftest import free_port, wait_until

A_ADDR = "127.0.0.2"
B_ADDR = "127.0.0.3"
LISTED = "127.0.0.4"    # named by the SPF records of the test domains
UNLISTED = "127.0.0.5"  # named by none
ALICE = "alice@a.test"
ALICE_PW = "alice-inbound-pw-1"
BOB = "bob@b.test"
BOB_PW = "bob-inbound-pw-22"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def sender_zone(policy="none", spf=f"v=spf1 ip4:{LISTED} -all"):
    """A domain that sends from LISTED, with a DMARC policy."""
    records = [f"@ A {LISTED}"]
    if spf:
        records.append(f'@ TXT "{spf}"')
    if policy:
        records.append(f'_dmarc TXT "v=DMARC1; p={policy}"')
    return records


def make_receiver(dijk_factory, dns, port, extra=None):
    config = {"dns.resolver": dns.address, "dns.trust_anchor": dns.trust_anchor,
              "outbound.port": str(port), "outbound.bind": B_ADDR}
    config.update(extra or {})
    return dijk_factory("b", extra_config=config, domain="b.test", hostname="mx.b.test",
                        users={BOB: BOB_PW}, address=B_ADDR, ports={"smtp": port})


def make_message(from_addr, tag=None, extra_headers=""):
    tag = tag or uuid.uuid4().hex[:12]
    return (f"{extra_headers}"
            f"From: <{from_addr}>\r\n"
            f"To: <{BOB}>\r\n"
            f"Subject: inbound {tag}\r\n"
            f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{tag}@{from_addr.split('@')[1]}>\r\n"
            f"\r\n"
            f"Checked on arrival: {tag}.\r\n").encode()


def send_from(ip, port, mail_from, message, rcpt=BOB, helo="client.remote.test"):
    """One MX delivery from source address ip; returns smtplib's refused
    (raises smtplib's errors for a refused sender or message)."""
    with smtplib.SMTP(B_ADDR, port, local_hostname=helo, source_address=(ip, 0),
                      timeout=30) as s:
        return s.sendmail(mail_from, [rcpt], message)


def header_block(stored):
    end = stored.find(b"\r\n\r\n")
    assert end > 0, stored[:500]
    text = stored[:end + 2].decode("utf-8", "replace")
    return [m.group(0) for m in re.finditer(r"[^\s:][^:\r\n]*:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*",
                                            text)]


def auth_results(stored, authserv="mx.b.test"):
    """(the unfolded values of the Authentication-Results fields of
    authserv, the index of the first among all fields)."""
    fields = header_block(stored)
    found, first = [], None
    for i, f in enumerate(fields):
        name, _, value = f.partition(":")
        if name.strip().lower() != "authentication-results":
            continue
        value = " ".join(value.split())
        if value.split(";", 1)[0].strip().lower() == authserv:
            found.append(value)
            first = i if first is None else first
    return found, first


def results(value):
    """{method: [(result, properties)]} of one Authentication-Results value."""
    out = {}
    for part in value.split(";")[1:]:
        m = re.match(r"\s*(spf|dkim|dmarc)\s*=\s*(\w+)(.*)", part, re.S)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2).lower(), m.group(3)))
    return out


def checked(stored, spf=None, dkim=None, dmarc=None):
    """Asserts one Authentication-Results field of mx.b.test on top of the
    stored message (above the message's own fields) with these results;
    returns its parsed results."""
    found, first = auth_results(stored)
    assert len(found) == 1, (found, stored[:1500])
    fields = header_block(stored)
    own = next(i for i, f in enumerate(fields) if f.lower().startswith("from:"))
    assert first < own, fields
    r = results(found[0])
    for method, want in (("spf", spf), ("dkim", dkim), ("dmarc", dmarc)):
        if want is not None:
            got = [res for res, _ in r.get(method, [])]
            assert got and all(g == want for g in got), (method, want, found[0])
    return r


def has_property(r, method, prop, value):
    return any(re.search(rf"\b{re.escape(prop)}=(\S+@)?{re.escape(value)}\b", props, re.I)
               for _, props in r.get(method, []))


def only_message(server, user=BOB, mailbox="INBOX", timeout=15):
    rows = wait_until(lambda: server.messages(user, mailbox), timeout, interval=0.2,
                      what=f"a message in {mailbox} of {user}")
    assert len(rows) == 1, rows
    return server.message(user, rows[0][0], mailbox)


# --- from dijk A -------------------------------------------------------------------

def dijk_dns_records(a, domain, kinds):
    """The zone-file lines of `dijk dns DOMAIN` whose owner contains one of
    kinds ("_domainkey", "_dmarc", or the domain itself for SPF)."""
    out = []
    for line in a.cli("dns", domain).stdout.decode().splitlines():
        if not line or line.startswith(";"):
            continue
        owner = line.split()[0]
        for kind in kinds:
            if kind == "spf" and owner == domain + "." and "v=spf1" in line:
                out.append(line)
            elif kind != "spf" and kind in owner:
                out.append(line)
    return out


def test_mail_from_dijk_passes_spf_dkim_dmarc(dijk_factory, dns_factory):
    port = free_port()
    a = dijk_factory("a", start=False, domain="a.test", hostname="mx.a.test",
                     users={ALICE: ALICE_PW}, address=A_ADDR, ports={"smtp": port})
    a.cli("dkim", "generate", "a.test")
    published = dijk_dns_records(a, "a.test", ("spf", "_domainkey", "_dmarc"))
    assert any("_domainkey" in r for r in published), published
    assert any("v=spf1" in r for r in published), published
    assert any("_dmarc" in r for r in published), published
    dns = dns_factory({"a.test": ["@ MX 10 mx", f"mx A {A_ADDR}", *published],
                       "b.test": ["@ MX 10 mx", f"mx A {B_ADDR}"]})
    a.config.update({"dns.resolver": dns.address, "dns.trust_anchor": dns.trust_anchor,
                     "outbound.port": str(port), "outbound.bind": A_ADDR,
                     "queue.retry": "1"})
    a.write_config()
    a.start()
    b = make_receiver(dijk_factory, dns, port)
    msg = make_message(ALICE)
    with smtplib.SMTP(A_ADDR, a.submission_port, timeout=30) as s:
        s.starttls(context=tls_context())
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, [BOB], msg) == {}
    stored = only_message(b)
    r = checked(stored, spf="pass", dkim="pass", dmarc="pass")
    assert has_property(r, "spf", "smtp.mailfrom", "a.test"), r
    assert has_property(r, "dkim", "header.d", "a.test"), r
    assert has_property(r, "dmarc", "header.from", "a.test"), r
    assert stored.endswith(msg)


def test_a_tenant_cannot_get_another_hosted_domains_signature(dijk_factory, dns_factory):
    """A hosts a.test and c.test, both with keys. alice@a.test writes a
    message with From: boss@c.test: it is signed for a.test (her own
    domain) only, so c.test's DMARC fails at B instead of passing."""
    port = free_port()
    a = dijk_factory("a", start=False, domain=["a.test", "c.test"], hostname="mx.a.test",
                     users={ALICE: ALICE_PW}, address=A_ADDR, ports={"smtp": port})
    a.cli("dkim", "generate", "a.test")
    a.cli("dkim", "generate", "c.test")
    dns = dns_factory({
        "a.test": ["@ MX 10 mx", f"mx A {A_ADDR}",
                   *dijk_dns_records(a, "a.test", ("spf", "_domainkey", "_dmarc"))],
        "c.test": ["@ MX 10 mx.a.test.",
                   *dijk_dns_records(a, "c.test", ("spf", "_domainkey")),
                   '_dmarc TXT "v=DMARC1; p=none"'],
        "b.test": ["@ MX 10 mx", f"mx A {B_ADDR}"]})
    a.config.update({"dns.resolver": dns.address, "dns.trust_anchor": dns.trust_anchor,
                     "outbound.port": str(port), "outbound.bind": A_ADDR,
                     "queue.retry": "1"})
    a.write_config()
    a.start()
    b = make_receiver(dijk_factory, dns, port)
    msg = make_message("boss@c.test")
    with smtplib.SMTP(A_ADDR, a.submission_port, timeout=30) as s:
        s.starttls(context=tls_context())
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, [BOB], msg) == {}
    stored = only_message(b)
    r = checked(stored, dkim="pass", dmarc="fail")
    assert has_property(r, "dkim", "header.d", "a.test"), r
    assert not has_property(r, "dkim", "header.d", "c.test"), r
    assert b"d=c.test" not in stored


# --- from a Python client ------------------------------------------------------------

@pytest.fixture
def world(dijk_factory, dns_factory):
    """dns(zones) starts nsd with b.test and zones; receiver(extra) starts
    dijk B; .port is the SMTP port."""
    class World:
        pass
    w = World()
    w.port = free_port()

    def dns(zones):
        w.dns = dns_factory({"b.test": ["@ MX 10 mx", f"mx A {B_ADDR}"], **zones})
        return w.dns

    def receiver(extra=None):
        w.b = make_receiver(dijk_factory, w.dns, w.port, extra)
        return w.b

    w.make_dns, w.receiver = dns, receiver
    return w


@pytest.mark.parametrize("source,spf,dmarc", [(LISTED, "pass", "pass"),
                                              (UNLISTED, "fail", "fail")],
                         ids=["listed", "unlisted"])
def test_spf_by_client_address(world, source, spf, dmarc):
    world.make_dns({"s.test": sender_zone("none")})
    b = world.receiver()
    msg = make_message("news@s.test")
    assert send_from(source, world.port, "news@s.test", msg) == {}
    stored = only_message(b)
    r = checked(stored, spf=spf, dkim="none", dmarc=dmarc)
    assert has_property(r, "spf", "smtp.mailfrom", "s.test"), r
    assert has_property(r, "dmarc", "header.from", "s.test"), r
    assert stored.endswith(msg)


def test_no_spf_no_dmarc_gives_none(world):
    world.make_dns({"n.test": [f"@ A {LISTED}"]})
    b = world.receiver()
    msg = make_message("someone@n.test")
    assert send_from(LISTED, world.port, "someone@n.test", msg) == {}
    checked(only_message(b), spf="none", dkim="none", dmarc="none")


@pytest.mark.parametrize("altered", [False, True], ids=["intact", "altered"])
def test_dkim_signature_checked(dijk_factory, world, altered):
    """A message signed with a.test's key (by `dijk dkim sign`) and sent
    from an address SPF does not list: DKIM alone decides DMARC."""
    signer = dijk_factory("signer", start=False, domain="a.test", hostname="mx.a.test",
                          users={ALICE: ALICE_PW})
    signer.cli("dkim", "generate", "a.test")
    keys = dijk_dns_records(signer, "a.test", ("_domainkey",))
    world.make_dns({"a.test": [*sender_zone("none"), *keys]})
    b = world.receiver()
    msg = make_message(ALICE)
    signed = signer.cli("dkim", "sign", "a.test", input=msg).stdout
    assert signed.startswith(b"DKIM-Signature:") and signed.endswith(msg), signed[:300]
    if altered:
        signed = signed.replace(b"Checked on arrival", b"Changed on the way")
    assert send_from(UNLISTED, world.port, ALICE, signed) == {}
    want = "fail" if altered else "pass"
    r = checked(only_message(b), spf="fail", dkim=want, dmarc=want)
    assert has_property(r, "dkim", "header.d", "a.test"), r


def test_forged_authentication_results_removed(world):
    world.make_dns({"s.test": sender_zone("none")})
    b = world.receiver()
    forged = ("Authentication-Results: mx.b.test; spf=pass smtp.mailfrom=ceo@bank.test;\r\n"
              "\tdkim=pass header.d=bank.test; dmarc=pass header.from=bank.test\r\n"
              "Authentication-Results: mx.b.test;\r\n"
              " dkim=pass header.d=forged-folded.test\r\n")
    msg = make_message("news@s.test", extra_headers=forged)
    assert send_from(UNLISTED, world.port, "news@s.test", msg) == {}
    stored = only_message(b)
    checked(stored, spf="fail", dkim="none", dmarc="fail")
    assert b"bank.test" not in stored, stored[:1500]
    assert b"forged-folded.test" not in stored, stored[:1500]
    assert b"Checked on arrival" in stored


@pytest.mark.parametrize("setting", ["reject", "quarantine"])
def test_dmarc_reject_policy(world, setting):
    world.make_dns({"r.test": sender_zone("reject")})
    b = world.receiver({"dmarc.reject": setting})
    msg = make_message("billing@r.test")
    if setting == "reject":
        with pytest.raises(smtplib.SMTPDataError) as e:
            send_from(UNLISTED, world.port, "billing@r.test", msg)
        assert 500 <= e.value.smtp_code < 600, e.value
        assert b.messages(BOB) == [] and b.messages(BOB, "Junk") == []
        # Still serving, and mail that passes gets through.
        assert send_from(LISTED, world.port, "billing@r.test", msg) == {}
        checked(only_message(b), spf="pass", dmarc="pass")
    else:
        assert send_from(UNLISTED, world.port, "billing@r.test", msg) == {}
        stored = only_message(b, mailbox="Junk")
        checked(stored, spf="fail", dmarc="fail")
        assert b.messages(BOB) == []
