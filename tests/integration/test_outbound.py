"""Outbound mail against real peers: the persistent queue, MX lookup,
STARTTLS and DANE, pipelining, retries, delay notices and RFC 3464
bounces.

Every test builds its own little Internet on loopback: an nsd serving its
zones (tests/support/dnsserver.py), and mail servers that all listen on
one port number, each on its own address in 127/8; dijk's outbound.port
is that port, and its outbound.bind its own address. The sending dijk
serves a.test as mx.a.test on 127.0.0.2. Its peers are other dijk
servers, a private Postfix (tests/support/postfixpeer.py) and scripted
SMTP servers (tests/support/smtppeer.py) that record every command."""

import email
import email.policy
import imaplib
import re
import smtplib
import ssl
import time
import uuid

import pytest

from conftest import free_port, kill9_family, wait_until
from smtppeer import by_attempt, for_rcpt, make_certificate

A_ADDR = "127.0.0.2"
B_ADDR = "127.0.0.3"
ALICE = "alice@a.test"
ALICE_PW = "alice-outbound-pw-1"
BOB = "bob@b.test"
BOB_PW = "bob-outbound-pw-22"

# Addresses of foreign MX hosts; nothing listens on one unless a test
# starts a peer there.
PEER = ["127.0.0.%d" % n for n in range(10, 30)]


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- building the test network -------------------------------------------------

def mx_zone(ip, host="mx"):
    """Records of a domain whose one MX, host, is at ip."""
    return ["@ MX 10 " + host, f"{host} A {ip}"]


def a_zone():
    return mx_zone(A_ADDR)


def make_sender(dijk_factory, dns, port, extra=None, name="a", start=True):
    """dijk for a.test (hostname mx.a.test, user alice) on 127.0.0.2,
    delivering through dns to port; retries every second."""
    config = {
        "dns.resolver": dns.address,
        "dns.trust_anchor": dns.trust_anchor,
        "outbound.port": str(port),
        "outbound.bind": A_ADDR,
        "queue.retry": "1",
    }
    config.update(extra or {})
    return dijk_factory(name, extra_config=config, domain="a.test", hostname="mx.a.test",
                        users={ALICE: ALICE_PW}, address=A_ADDR, ports={"smtp": port},
                        start=start)


def make_message(sender=ALICE, to="someone@p.test", tag=None, extra_headers=""):
    """A complete message (nothing for dijk to add) and its unique tag."""
    tag = tag or uuid.uuid4().hex[:12]
    msg = (f"From: Alice <{sender}>\r\n"
           f"To: <{to}>\r\n"
           f"Subject: outbound {tag}\r\n"
           f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
           f"Message-ID: <{tag}@{sender.split('@')[1]}>\r\n"
           f"{extra_headers}"
           f"MIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n"
           f"\r\n"
           f"Hello, this is {tag}.\r\n"
           f".a line that starts with a dot\r\n"
           f"The end.\r\n").encode()
    return msg, tag


def submit(server, rcpts, message, sender=ALICE, password=ALICE_PW):
    """Sends over submission (STARTTLS, AUTH); returns smtplib's refused."""
    with smtplib.SMTP(server.address, server.submission_port, timeout=30) as s:
        s.starttls(context=tls_context())
        s.login(sender, password)
        return s.sendmail(sender, rcpts, message)


def queue_entries(server):
    """`dijk queue list` as dicts: id, sender, rcpts, size, line."""
    out = []
    for line in server.queue():
        f = line.split()
        assert len(f) >= 4, f"queue list line with under four fields: {line!r}"
        out.append({"id": f[0], "sender": f[1], "rcpts": f[2].split(","),
                    "size": int(f[3]), "line": line})
    return out


def wait_queue_empty(server, timeout=15):
    wait_until(lambda: server.queue() == [], timeout, interval=0.2,
               what=f"the queue of {server.hostname} to empty (now: {server.queue()})")


def stays(predicate, seconds, what):
    """predicate() holds throughout the next seconds (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"no longer true: {what}"
        time.sleep(0.1)
    assert predicate(), f"no longer true: {what}"


def inbox(server, user):
    return server.all_messages(user)


def wait_inbox(server, user, n, timeout=15):
    try:
        return wait_until(lambda: len(server.messages(user)) >= n and inbox(server, user),
                          timeout, interval=0.2, what=f"{n} message(s) in the INBOX of {user}")
    except AssertionError as e:
        raise AssertionError(f"{e}; queue: {server.queue()}") from None


# --- reading a DSN ---------------------------------------------------------------

def _field_value(v):
    """'rfc822; Bob@X' -> 'bob@x' (the part after the type, lowercased)."""
    v = " ".join(str(v).split())
    return v.split(";", 1)[1].strip().lower() if ";" in v else v.strip().lower()


class Dsn:
    """A stored RFC 3464 report, checked for its shape on the way in."""

    def __init__(self, raw):
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        m = self.msg
        assert m.get_content_type() == "multipart/report", raw[:2000]
        # RFC 6533's global report where an address is not ASCII.
        report = (m.get_param("report-type") or "").lower()
        assert report in ("delivery-status", "global-delivery-status"), m["Content-Type"]
        parts = m.get_payload()
        types = [p.get_content_type() for p in parts]
        status = [p for p in parts if p.get_content_type() == "message/" + report]
        assert len(status) == 1, types
        blocks = status[0].get_payload()
        if report == "global-delivery-status":
            # Python's parser splits only message/delivery-status into
            # its blocks: split the global one by its empty lines.
            text = (blocks[0].as_bytes() if isinstance(blocks, list)
                    else status[0].get_payload(decode=True)).decode("utf-8", "replace")
            blocks = [email.message_from_string(b.strip() + "\n", policy=email.policy.compat32)
                      for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
        assert isinstance(blocks, list) and len(blocks) >= 2, blocks
        self.per_message = {k.lower(): v for k, v in blocks[0].items()}
        self.recipients = {}
        for b in blocks[1:]:
            fields = {k.lower(): " ".join(str(v).split()) for k, v in b.items()}
            assert "final-recipient" in fields, fields
            self.recipients[_field_value(fields["final-recipient"])] = fields
        originals = [p for p in parts
                     if p.get_content_type() in ("text/rfc822-headers", "message/rfc822")]
        assert len(originals) == 1, types
        o = originals[0]
        if o.get_content_type() == "message/rfc822":
            self.original = o.get_payload()[0].as_bytes()
        else:
            self.original = o.get_payload(decode=True)
        self.original_type = o.get_content_type()

    def failed(self):
        return {r for r, f in self.recipients.items() if f.get("action", "").lower() == "failed"}

    def delayed(self):
        return {r for r, f in self.recipients.items() if f.get("action", "").lower() == "delayed"}


def assert_dsn_basics(dsn, reporting="mx.a.test", to=ALICE):
    m = dsn.msg
    assert "mailer-daemon@" + reporting in (m["From"] or "").lower(), m["From"]
    assert to in (m["To"] or "").lower(), m["To"]
    assert _field_value(dsn.per_message.get("reporting-mta", "")) == reporting, dsn.per_message
    assert dsn.original_type == "text/rfc822-headers", dsn.original_type


def assert_recipient(dsn, rcpt, action, status_class, diagnostic=None, remote=None):
    f = dsn.recipients.get(rcpt.lower())
    assert f is not None, f"no DSN block for {rcpt}: {dsn.recipients}"
    assert f.get("action", "").lower() == action, f
    assert re.fullmatch(rf"{status_class}\.\d{{1,3}}\.\d{{1,3}}", f.get("status", "")), f
    if diagnostic is not None:
        assert diagnostic in f.get("diagnostic-code", ""), f
        assert f["diagnostic-code"].lower().startswith("smtp;"), f
    if remote is not None:
        got = _field_value(f.get("remote-mta", ""))
        assert got in remote, f


# --- two dijk servers ---------------------------------------------------------------

def test_two_dijk_servers_deliver_to_each_other(dijk_factory, dns_factory):
    port = free_port()
    dns = dns_factory({"a.test": mx_zone(A_ADDR), "b.test": mx_zone(B_ADDR)})
    a = make_sender(dijk_factory, dns, port)
    b = dijk_factory("b", extra_config={
        "dns.resolver": dns.address, "dns.trust_anchor": dns.trust_anchor,
        "outbound.port": str(port), "outbound.bind": B_ADDR, "queue.retry": "1",
    }, domain="b.test", hostname="mx.b.test", users={BOB: BOB_PW}, address=B_ADDR,
        ports={"smtp": port})

    there, tag = make_message(ALICE, BOB)
    assert submit(a, [BOB], there) == {}
    [stored] = wait_inbox(b, BOB, 1)
    assert stored.startswith(b"Received: from mx.a.test ([127.0.0.2])"), stored[:300]
    assert stored.endswith(there), stored
    wait_queue_empty(a)

    # The same message through B's IMAP server.
    imap = imaplib.IMAP4(B_ADDR, b.imap_port)
    try:
        imap.login(BOB, BOB_PW)
        imap.select("INBOX")
        typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
        assert typ == "OK"
        assert f"outbound {tag}".encode() in data[0][1]
        assert f"<{tag}@a.test>".encode() in data[0][1]
    finally:
        imap.logout()

    back, _ = make_message(BOB, ALICE)
    assert submit(b, [ALICE], back, sender=BOB, password=BOB_PW) == {}
    [reply] = wait_inbox(a, ALICE, 1)
    assert reply.startswith(b"Received: from mx.b.test ([127.0.0.3])"), reply[:300]
    assert reply.endswith(back)
    wait_queue_empty(b)
    assert len(b.messages(BOB)) == 1 and len(a.messages(ALICE)) == 1


def test_postfix_receives_over_starttls(dijk_factory, dns_factory, postfix_factory, tmp_path):
    port = free_port()
    dns = dns_factory({"a.test": a_zone(), "p.test": mx_zone(PEER[0])})
    cert = make_certificate(tmp_path / "pf-cert", "mx.p.test")
    pf = postfix_factory(PEER[0], port, "p.test", users=["carol", "dave"], tls=cert)
    a = make_sender(dijk_factory, dns, port)
    msg, tag = make_message(ALICE, "carol@p.test")
    assert submit(a, ["carol@p.test", "dave@p.test"], msg) == {}
    for user in ("carol", "dave"):
        [got] = pf.wait_messages(user, 1)
        # (A Maildir file ends its lines with LF alone.)
        assert got.endswith(msg.replace(b"\r\n", b"\n")), got
        # Postfix's Received line: dijk's EHLO name, its bound address,
        # and TLS (ESMTPS) since Postfix offered STARTTLS.
        assert re.search(rb"Received: from mx\.a\.test \(\S+ \[127\.0\.0\.2\]\)", got), got[:600]
        assert b"with ESMTPS id" in got, got[:600]
    wait_queue_empty(a)
    # One transaction for both recipients of p.test: one queue file.
    wait_until(lambda: "from=<alice@a.test>" in pf.log(), 5, what="Postfix's log")
    assert pf.log().count("from=<alice@a.test>") == 1, pf.log()[-3000:]


# --- a scripted peer ------------------------------------------------------------

@pytest.fixture
def net(dijk_factory, dns_factory, smtp_peer_factory):
    """A port, and helpers to start DNS, peers and the sending dijk on it."""
    class Net:
        pass
    n = Net()
    n.port = free_port()

    def dns(zones, signed=()):
        zones = {"a.test": a_zone(), **zones}
        n.dns = dns_factory(zones, signed=signed)
        return n.dns

    def peer(ip, **options):
        options.setdefault("hostname", "mx.p.test")
        return smtp_peer_factory(ip, n.port, **options)

    def sender(extra=None, start=True):
        n.a = make_sender(dijk_factory, n.dns, n.port, extra, start=start)
        return n.a

    n.make_dns, n.peer, n.sender = dns, peer, sender
    return n


def test_delivery_to_peer_ehlo_bind_and_bytes(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0])
    a = net.sender()
    msg, _ = make_message(ALICE, "carol@p.test")
    assert submit(a, ["carol@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    s = peer.sessions[0]
    assert s.helo == "mx.a.test" and s.esmtp, s
    assert s.client[0] == A_ADDR, s.client
    assert t.mail_from == ALICE and t.rcpts == ["carol@p.test"], t
    assert t.data.endswith(msg), t.data
    assert not s.data_before_354, s
    wait_queue_empty(a)
    assert a.messages(ALICE) == []  # no report of any kind


@pytest.mark.parametrize("event", ["MAIL", "RCPT", "DOT"])
def test_4xx_then_250_arrives_exactly_once(net, event):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0], replies={event: by_attempt("451 4.3.0 Try again later", None)})
    a = net.sender()
    msg, _ = make_message(ALICE, "carol@p.test")
    assert submit(a, ["carol@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    assert t.data.endswith(msg)
    first, later = peer.sessions[0], peer.sessions[1]
    verb = {"DOT": "DATA"}.get(event, event)
    assert verb in first.verbs() and not any(x.accepted for x in first.transactions), first
    assert later.started - first.started >= 0.8, "retried without waiting (queue.retry = 1)"
    wait_queue_empty(a)
    # Neither a second copy nor a report comes later.
    stays(lambda: len(peer.delivered()) == 1, 3, "one delivered copy")
    assert a.messages(ALICE) == []


def test_5xx_at_rcpt_bounces_that_recipient_only(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0], replies={
        "RCPT": for_rcpt({"bad@p.test": "550 5.1.1 <bad@p.test>: no such user here"})})
    a = net.sender()
    msg, tag = make_message(ALICE, "good@p.test")
    assert submit(a, ["good@p.test", "bad@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    assert t.rcpts == ["good@p.test"], t
    [raw] = wait_inbox(a, ALICE, 1)
    dsn = Dsn(raw)
    assert_dsn_basics(dsn)
    assert dsn.failed() == {"bad@p.test"}, dsn.recipients
    assert_recipient(dsn, "bad@p.test", "failed", "5",
                     diagnostic="550 5.1.1 <bad@p.test>: no such user here",
                     remote=("mx.p.test", PEER[0]))
    assert f"Subject: outbound {tag}".encode() in dsn.original
    assert f"<{tag}@a.test>".encode() in dsn.original
    wait_queue_empty(a)
    # The bad recipient is not tried again, the good one not sent twice.
    stays(lambda: len(peer.transactions()) == 1, 2.5, "one transaction")
    assert len(a.messages(ALICE)) == 1


def test_5xx_after_data_bounces_every_recipient_once(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0], replies={"DOT": "554 5.7.1 Message content rejected"})
    a = net.sender()
    msg, tag = make_message(ALICE, "one@p.test")
    assert submit(a, ["one@p.test", "two@p.test"], msg) == {}
    [raw] = wait_inbox(a, ALICE, 1)
    dsn = Dsn(raw)
    assert_dsn_basics(dsn)
    assert dsn.failed() == {"one@p.test", "two@p.test"}, dsn.recipients
    for r in ("one@p.test", "two@p.test"):
        assert_recipient(dsn, r, "failed", "5", diagnostic="554 5.7.1 Message content rejected")
    wait_queue_empty(a)
    assert peer.delivered() == []
    stays(lambda: len(peer.transactions()) == 1 and len(a.messages(ALICE)) == 1, 2.5,
          "one attempt, one report")


def test_internationalized_recipient_needs_smtputf8(net):
    """A recipient whose address is not ASCII goes only to a server that
    offers SMTPUTF8 (RFC 6531), with the SMTPUTF8 parameter; one without
    it makes a 5.6.7 bounce, and never sees the address."""
    net.make_dns({"p.test": mx_zone(PEER[0]), "q.test": mx_zone(PEER[1])})
    plain = net.peer(PEER[0])
    able = net.peer(PEER[1], hostname="mx.q.test", extensions=("SMTPUTF8",))
    a = net.sender()
    msg, _ = make_message(ALICE, "jörg@q.test")
    with smtplib.SMTP(a.address, a.submission_port, timeout=30) as s:
        s.starttls(context=tls_context())
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, ["jörg@q.test", "jörg@p.test"], msg,
                          mail_options=["SMTPUTF8"]) == {}
    [t] = able.wait_delivered(1)
    assert t.rcpts == ["jörg@q.test"], t
    assert "SMTPUTF8" in [p.upper() for p in t.mail_params], t.mail_params
    [raw] = wait_inbox(a, ALICE, 1)
    dsn = Dsn(raw)
    assert_recipient(dsn, "jörg@p.test", "failed", "5")
    assert "5.6.7" in raw.decode("utf-8", "replace")
    wait_queue_empty(a)
    assert plain.transactions() == [], "the address went to a server without SMTPUTF8"


def test_one_transaction_per_domain(net):
    net.make_dns({"p.test": mx_zone(PEER[0]), "q.test": mx_zone(PEER[1])})
    p = net.peer(PEER[0])
    q = net.peer(PEER[1], hostname="mx.q.test")
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    rcpts = ["x@p.test", "y@q.test", "z@p.test"]
    assert submit(a, rcpts, msg) == {}
    [tp] = p.wait_delivered(1)
    [tq] = q.wait_delivered(1)
    wait_queue_empty(a)
    assert sorted(tp.rcpts) == ["x@p.test", "z@p.test"], tp
    assert tq.rcpts == ["y@q.test"], tq
    verbs = [v for s in p.sessions for v in s.verbs()]
    assert verbs.count("MAIL") == 1 and verbs.count("RCPT") == 2, p.sessions
    assert len(q.sessions) == 1 and q.sessions[0].verbs().count("MAIL") == 1


@pytest.mark.parametrize("offered", [True, False], ids=["pipelining", "no-pipelining"])
def test_pipelining_only_when_offered(net, offered):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0], pipelining=offered)
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test", "y@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    assert sorted(t.rcpts) == ["x@p.test", "y@p.test"]
    s = peer.sessions[0]
    early = {c.verb for c in s.commands if c.early}
    if offered:
        # RFC 2920: RCPTs and DATA go out without waiting for MAIL's reply.
        assert {"RCPT", "DATA"} <= early, s.commands
    else:
        assert early == set(), s.commands
    assert not s.data_before_354, s


# --- MX selection ----------------------------------------------------------------

def test_mx_preference_order_and_fallback(net):
    # Listed out of order; the best (10) is down, so 20 must get it, never 30.
    net.make_dns({"p.test": ["@ MX 30 mx3", "@ MX 10 mx1", "@ MX 20 mx2",
                             f"mx1 A {PEER[0]}", f"mx2 A {PEER[1]}", f"mx3 A {PEER[2]}"]})
    mx2 = net.peer(PEER[1], hostname="mx2.p.test")
    mx3 = net.peer(PEER[2], hostname="mx3.p.test")
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    [t] = mx2.wait_delivered(1)
    assert t.data.endswith(msg)
    wait_queue_empty(a)
    assert mx3.sessions == []


def test_no_mx_uses_the_address_record(net):
    net.make_dns({"p.test": [f"@ A {PEER[3]}"]})
    peer = net.peer(PEER[3])
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    assert t.rcpts == ["x@p.test"]
    wait_queue_empty(a)


@pytest.mark.parametrize("case", ["nxdomain", "null-mx", "no-address"])
def test_undeliverable_domain_bounces_at_once(net, case):
    net.make_dns({"p.test": {"nxdomain": ["www A 127.0.0.1"],  # x.p.test does not exist
                             "null-mx": ["x MX 0 ."],
                             "no-address": ["x TXT \"nothing to deliver to\""]}[case]})
    # Retries an hour apart: a bounce within seconds was not a retry's.
    a = net.sender({"queue.retry": "3600"})
    msg, tag = make_message(ALICE, "u@x.p.test")
    began = time.monotonic()
    assert submit(a, ["u@x.p.test"], msg) == {}
    [raw] = wait_inbox(a, ALICE, 1, timeout=15)
    assert time.monotonic() - began < 15
    dsn = Dsn(raw)
    assert_dsn_basics(dsn)
    assert_recipient(dsn, "u@x.p.test", "failed", "5")
    assert f"<{tag}@a.test>".encode() in dsn.original
    wait_queue_empty(a)


# --- TLS ---------------------------------------------------------------------

def test_starttls_used_when_offered(net, tmp_path):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    cert = make_certificate(tmp_path / "cert", "mx.p.test")  # self-signed: fine without DANE
    peer = net.peer(PEER[0], starttls=cert)
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    s = peer.sessions[0]
    assert s.tls and t.tls, s
    verbs = s.verbs()
    assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], s.commands
    assert all(c.tls for c in s.commands[2:]), s.commands
    assert s.plaintext_after_starttls == b""
    assert t.data.endswith(msg)


def dane_zone(port, ip, tlsa, host="mx"):
    return ["@ MX 10 " + host, f"{host} A {ip}", f"_{port}._tcp.{host} TLSA {tlsa}"]


@pytest.mark.parametrize("selector", ["3 1 1", "3 0 1"], ids=["spki", "full-cert"])
def test_dane_valid_tlsa_delivers_over_tls(net, tmp_path, selector):
    cert = make_certificate(tmp_path / "cert", "mx.p.test")
    digest = cert.spki_sha256 if selector == "3 1 1" else cert.cert_sha256
    dns = net.make_dns({"p.test": dane_zone(net.port, PEER[0], f"{selector} {digest}")},
                       signed=["p.test"])
    assert dns.dnssec_valid(f"_{net.port}._tcp.mx.p.test", "TLSA"), dns.logs()
    peer = net.peer(PEER[0], starttls=cert)
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    s = peer.sessions[0]
    assert t.tls and s.tls
    # RFC 7672 8.1: SNI with the TLSA base domain, the MX host.
    assert s.sni == "mx.p.test", s.sni
    wait_queue_empty(a)


def assert_never_sent(peer, a, words):
    """The peer was tried, got no MAIL, and the message waits in the queue
    with an error naming one of words."""
    peer.wait_sessions(2, ended=True)
    for s in peer.sessions:
        assert "MAIL" not in s.verbs(), s
    assert peer.delivered() == []
    [entry] = queue_entries(a)
    assert entry["rcpts"] == ["x@p.test"]
    wait_error_listed(a, words)
    assert a.messages(ALICE) == []


def wait_error_listed(a, words):
    """Waits until the one queued message's `queue list` line names one of
    words after its four fixed fields."""
    def error_shown():
        [e] = queue_entries(a)
        rest = e["line"].split(None, 4)[4:] or [""]
        return any(w in rest[0].lower() for w in words) and e
    wait_until(error_shown, 10, interval=0.2,
               what=f"an error with one of {words} in `queue list`: {a.queue()}")


def test_dane_wrong_tlsa_is_not_delivered(net, tmp_path):
    cert = make_certificate(tmp_path / "cert", "mx.p.test")
    wrong = "3 1 1 " + "ab" * 32
    dns = net.make_dns({"p.test": dane_zone(net.port, PEER[0], wrong)}, signed=["p.test"])
    assert dns.dnssec_valid(f"_{net.port}._tcp.mx.p.test", "TLSA")
    peer = net.peer(PEER[0], starttls=cert)
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    assert_never_sent(peer, a, ("tlsa", "dane", "certificate"))


def test_dane_mx_without_starttls_is_not_delivered(net, tmp_path):
    cert = make_certificate(tmp_path / "cert", "mx.p.test")
    net.make_dns({"p.test": dane_zone(net.port, PEER[0], f"3 1 1 {cert.spki_sha256}")},
                 signed=["p.test"])
    peer = net.peer(PEER[0], starttls=None)
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    assert_never_sent(peer, a, ("starttls", "tls", "dane"))


def test_dnssec_bogus_answers_are_not_used(net, tmp_path):
    """A signed zone that does not validate (the trust anchor names
    another key) is bogus: its MX is no address to deliver to."""
    cert = make_certificate(tmp_path / "cert", "mx.p.test")
    dns = net.make_dns({"p.test": dane_zone(net.port, PEER[0], f"3 1 1 {cert.spki_sha256}")},
                       signed=["p.test"])
    [ds] = dns.ds_records("p.test")
    f = ds.split()
    f[-1] = "%064x" % (int(f[-1], 16) ^ 1)  # the same key tag, a wrong digest
    bad_anchor = tmp_path / "wrong-anchor.ds"
    bad_anchor.write_text(" ".join(f) + "\n")
    peer = net.peer(PEER[0], starttls=cert)
    a = net.sender({"dns.trust_anchor": str(bad_anchor)})
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    wait_error_listed(a, ("dnssec", "bogus", "validat", "servfail"))
    stays(lambda: peer.sessions == [], 3, "no connection to a bogus MX")
    assert [e["rcpts"] for e in queue_entries(a)] == [["x@p.test"]]
    assert a.messages(ALICE) == []


def test_tlsa_in_unsigned_zone_is_ignored(net, tmp_path):
    """Without DNSSEC a TLSA record proves nothing (RFC 7672 2.2): a wrong
    one must not stop opportunistic delivery."""
    cert = make_certificate(tmp_path / "cert", "mx.p.test")
    net.make_dns({"p.test": dane_zone(net.port, PEER[0], "3 1 1 " + "ab" * 32)})
    peer = net.peer(PEER[0], starttls=cert)
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    [t] = peer.wait_delivered(1)
    assert t.data.endswith(msg)


# --- the queue over time ------------------------------------------------------

def test_delay_notice_once_then_delivery(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    a = net.sender({"queue.delay_notice": "2"})
    msg, tag = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}  # nothing listens at the MX yet
    [raw] = wait_inbox(a, ALICE, 1, timeout=12)
    dsn = Dsn(raw)
    assert_dsn_basics(dsn)
    assert dsn.delayed() == {"x@p.test"} and dsn.failed() == set(), dsn.recipients
    assert_recipient(dsn, "x@p.test", "delayed", "4")
    assert f"<{tag}@a.test>".encode() in dsn.original
    assert [e["rcpts"] for e in queue_entries(a)] == [["x@p.test"]]
    # Retries go on every second, but the notice is sent once.
    stays(lambda: len(a.messages(ALICE)) == 1, 3, "one delay notice")
    peer = net.peer(PEER[0])
    [t] = peer.wait_delivered(1)
    assert t.data.endswith(msg)
    wait_queue_empty(a)
    assert len(a.messages(ALICE)) == 1


def test_expiry_bounces_and_stops_trying(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    a = net.sender({"queue.lifetime": "3"})
    msg, tag = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    [raw] = wait_inbox(a, ALICE, 1, timeout=15)
    dsn = Dsn(raw)
    assert_dsn_basics(dsn)
    assert dsn.failed() == {"x@p.test"}, dsn.recipients
    assert_recipient(dsn, "x@p.test", "failed", "[45]")
    wait_queue_empty(a)
    peer = net.peer(PEER[0])
    a.cli("queue", "flush")
    stays(lambda: peer.sessions == [], 2.5, "no attempt after expiry")


def test_retries_back_off_by_the_schedule(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0], replies={"MAIL": "451 4.3.0 Not now"})
    a = net.sender({"queue.retry": "1,2,3"})
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    sessions = peer.wait_sessions(5, timeout=20)
    starts = [s.started for s in sessions[:5]]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    # 1, 2, 3, then 3 again; the queue looks for due mail every second.
    for gap, want in zip(gaps, (1, 2, 3, 3)):
        assert want - 0.3 <= gap <= want + 2.0, gaps
    assert peer.delivered() == []
    assert a.messages(ALICE) == []  # no report: the lifetime is far off


def test_last_error_in_queue_list(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    net.peer(PEER[0], replies={"RCPT": "452 4.2.2 Mailbox full, says the peer"})
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    wait_until(lambda: any("Mailbox full, says the peer" in e["line"] for e in queue_entries(a)),
               10, interval=0.2, what=f"the peer's reply in `queue list`: {a.queue()}")
    [e] = queue_entries(a)
    assert e["sender"] == f"<{ALICE}>" and e["rcpts"] == ["x@p.test"]
    assert e["size"] >= len(msg)


def test_queue_delete_removes_without_bounce(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    a = net.sender()
    keep, keep_tag = make_message(ALICE, "keep@p.test")
    drop, drop_tag = make_message(ALICE, "drop@p.test")
    assert submit(a, ["keep@p.test"], keep) == {}
    assert submit(a, ["drop@p.test"], drop) == {}
    entries = queue_entries(a)
    assert len(entries) == 2
    [victim] = [e for e in entries if e["rcpts"] == ["drop@p.test"]]
    a.cli("queue", "delete", victim["id"])
    assert [e["rcpts"] for e in queue_entries(a)] == [["keep@p.test"]]
    r = a.cli("queue", "delete", victim["id"], check=False)
    assert r.returncode != 0
    peer = net.peer(PEER[0])
    a.cli("queue", "flush")
    [t] = peer.wait_delivered(1)
    assert t.rcpts == ["keep@p.test"] and t.data.endswith(keep)
    wait_queue_empty(a)
    stays(lambda: len(peer.delivered()) == 1 and a.messages(ALICE) == [], 2,
          "no copy and no report of the deleted message")


def test_kill9_and_restart_lose_and_repeat_nothing(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    a = net.sender({"queue.retry": "3600"})
    tags = []
    for i in range(4):
        msg, tag = make_message(ALICE, f"r{i}@p.test")
        assert submit(a, [f"r{i}@p.test"], msg) == {}
        tags.append(tag)
    wait_until(lambda: len(queue_entries(a)) == 4, 10, what="four queued messages")
    ids = sorted(e["id"] for e in queue_entries(a))
    kill9_family(a)
    assert sorted(e["id"] for e in queue_entries(a)) == ids
    a.start()
    assert sorted(e["id"] for e in queue_entries(a)) == ids
    peer = net.peer(PEER[0])
    a.cli("queue", "flush")
    peer.wait_delivered(4)
    wait_queue_empty(a)
    stays(lambda: len(peer.delivered()) == 4, 2, "four copies only")
    got = sorted(re.search(rb"Subject: outbound (\w+)", t.data).group(1).decode()
                 for t in peer.delivered())
    assert got == sorted(tags)
    assert a.messages(ALICE) == []


def test_kill9_during_an_attempt_loses_nothing(net):
    """The whole family dies while the peer holds its reply to MAIL; the
    message was never accepted, so after a restart it goes out once."""
    import threading
    release = threading.Event()

    def stall_first(session, argument):
        if session.index == 0:
            release.wait(15)
            return "451 4.3.0 Too late"
        return None
    net.make_dns({"p.test": mx_zone(PEER[0])})
    peer = net.peer(PEER[0], replies={"MAIL": stall_first})
    a = net.sender({"queue.retry": "3600"})
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}
    wait_until(lambda: peer.sessions and "MAIL" in peer.sessions[0].verbs(), 10,
               what="the first attempt to reach MAIL")
    kill9_family(a)
    release.set()
    peer.wait_sessions(1, ended=True)
    assert [e["rcpts"] for e in queue_entries(a)] == [["x@p.test"]]
    a.start()
    a.cli("queue", "flush")
    [t] = peer.wait_delivered(1)
    assert t.data.endswith(msg)
    wait_queue_empty(a)
    stays(lambda: len(peer.delivered()) == 1, 2, "one copy")


def test_restart_during_retries_keeps_queue(net):
    net.make_dns({"p.test": mx_zone(PEER[0])})
    a = net.sender()
    msg, _ = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}  # nothing listens at the MX yet
    [before] = queue_entries(a)
    assert a.stop() == 0
    [after] = queue_entries(a)
    assert (after["id"], after["rcpts"]) == (before["id"], ["x@p.test"])
    a.start()
    peer = net.peer(PEER[0])
    [t] = peer.wait_delivered(1)
    assert t.data.endswith(msg)
    wait_queue_empty(a)
    stays(lambda: len(peer.delivered()) == 1, 2, "one copy")


def test_queue_entry_edited_on_disk_is_quarantined_not_sent(net):
    """The queue is read back as untrusted data (SECURITY.md 8): a message
    whose envelope was edited in meta.db behind dijk's back fails its MAC,
    is logged and kept as quarantined, and never goes out; the message
    queued beside it is delivered as usual."""
    import sqlite3
    net.make_dns({"p.test": mx_zone(PEER[0])})
    a = net.sender()
    kept, _ = make_message(ALICE, "x@p.test")
    edited, _ = make_message(ALICE, "y@p.test")
    assert submit(a, ["x@p.test"], kept) == {}  # nothing listens yet
    assert submit(a, ["y@p.test"], edited) == {}
    entries = {e["rcpts"][0]: e for e in queue_entries(a)}
    assert set(entries) == {"x@p.test", "y@p.test"}
    assert a.stop() == 0
    db = sqlite3.connect(a.data / "meta.db")
    with db:
        db.execute("UPDATE queue_recipient SET address = 'z@p.test'"
                   " WHERE queue_id = ?", (entries["y@p.test"]["id"],))
    db.close()
    a.start()
    peer = net.peer(PEER[0])
    [t] = peer.wait_delivered(1)
    assert t.data.endswith(kept) and t.rcpts == ["x@p.test"]
    wait_until(lambda: "integrity check" in a.logs(), 15, what="the quarantine log")
    [left] = a.queue()
    assert left.startswith(f"{entries['y@p.test']['id']} ") and "quarantined" in left
    assert a.cli("queue", "flush").returncode == 0
    stays(lambda: len(peer.delivered()) == 1, 3, "no copy of the edited message")


# --- bounces to a remote sender ----------------------------------------------------

@pytest.mark.parametrize("sender_mx", ["accepts", "refuses"])
def test_bounce_to_remote_sender_has_null_sender_and_never_bounces(
        dijk_factory, dns_factory, smtp_peer_factory, sender_mx):
    """A message whose sender is no longer local (its domain was removed
    while the message waited) bounces to the sender's MX, from <>. If
    that MX refuses the report too, nothing more is sent: no report about
    a report."""
    port = free_port()
    # a.test's MX is not dijk's own name: the report leaves this host.
    dns = dns_factory({"a.test": mx_zone(PEER[5], "smx"), "p.test": mx_zone(PEER[6])})
    a = dijk_factory("a", extra_config={
        "dns.resolver": dns.address, "dns.trust_anchor": dns.trust_anchor,
        "outbound.port": str(port), "outbound.bind": A_ADDR, "queue.retry": "1",
    }, domain=["a.test", "keep.test"], hostname="mx.a.test",
        users={ALICE: ALICE_PW, "keeper@keep.test": "keeper-pw-123"}, address=A_ADDR,
        ports={"smtp": port})
    msg, tag = make_message(ALICE, "x@p.test")
    assert submit(a, ["x@p.test"], msg) == {}  # p.test's MX is down: queued
    a.cli("user", "del", ALICE)
    a.cli("domain", "del", "a.test")
    refuse = "550 5.1.1 no mailbox for reports here" if sender_mx == "refuses" else None
    smx = smtp_peer_factory(PEER[5], port, hostname="smx.a.test",
                            replies={"RCPT": refuse} if refuse else {})
    p = smtp_peer_factory(PEER[6], port, hostname="mx.p.test",
                          replies={"RCPT": "550 5.1.1 unknown user"})
    a.cli("queue", "flush")
    p.wait_sessions(1, ended=True)
    tries = smx.wait_sessions(1, ended=True)
    wait_queue_empty(a)
    txs = smx.transactions()
    assert len(txs) == 1, tries
    assert txs[0].mail_from == "", txs[0]
    if refuse is None:
        [t] = smx.delivered()
        assert t.rcpts == [ALICE]
        dsn = Dsn(t.data)
        assert_dsn_basics(dsn)
        assert_recipient(dsn, "x@p.test", "failed", "5", diagnostic="550 5.1.1 unknown user")
        assert f"<{tag}@a.test>".encode() in dsn.original
    else:
        assert smx.delivered() == []
    stays(lambda: len(smx.transactions()) == 1 and len(p.transactions()) == 1, 2.5,
          "no further attempts")
    assert a.messages("keeper@keep.test") == []
