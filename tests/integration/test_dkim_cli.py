"""The DKIM and DNS admin commands: dijk dkim generate|rotate|list|sign|
verify and dijk dns, the key files they leave, and interoperability with
OpenDKIM in both directions.

DNS comes from a private nsd (tests/support/dnsserver.py) serving what
`dijk dns` prints. OpenDKIM's code is reached two ways:
- the `opendkim` milter's test mode (`opendkim -x CONF -t FILE`, Debian
  package opendkim), whose ResolverConfiguration names an unbound
  configuration that forwards every query to the test nsd; it also signs
  messages for dijk to verify;
- `opendkim-testmsg` (package opendkim-tools), which only knows
  /etc/resolv.conf and port 53: it runs, with nsd on 127.0.0.1:53, inside a
  private network and mount namespace (unshare, root only) whose
  /etc/resolv.conf is bind-mounted over."""

import base64
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DOMAIN, NO_DNS_RESOLVER

OPENDKIM = "/usr/sbin/opendkim"
OPENDKIM_TESTMSG = "/usr/sbin/opendkim-testmsg"
OPENDKIM_GENKEY = "/usr/sbin/opendkim-genkey"

MESSAGE = (
    "From: Alice <alice@example.test>\n"
    "To: Bob <bob@example.org>\n"
    "Subject: Interop\n"
    "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
    "Message-ID: <interop-1@example.test>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Hello Bob,\n"
    "\n"
    "  a line   with  odd spacing  \n"
    "\n"
    "\n"
)


def month_prefix():
    return "d" + time.strftime("%Y%m", time.gmtime())


def text(r):
    return r.stdout.decode(errors="replace")


def error(r):
    return r.stderr.decode(errors="replace")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def keys(d):
    """dijk dkim list as (domain, selector, algorithm, state) tuples."""
    return [tuple(line.split("\t")) for line in text(d.cli("dkim", "list")).splitlines()]


def zone_records(output):
    """The records of `dijk dns` output: (name, type, data) without comments."""
    rows = []
    for line in output.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        name, ttl, cls, rtype, data = line.split("\t", 4)
        assert ttl == "3600" and cls == "IN", line
        rows.append((name, rtype, data))
    return rows


def txt_strings(data):
    strings = re.findall(r'"([^"]*)"', data)
    assert data == " ".join(f'"{s}"' for s in strings), data
    return strings


@pytest.fixture
def d(dijk_factory):
    return dijk_factory(start=False)


@pytest.fixture
def signing(d, dns_factory):
    """A data directory with keys for example.test, and a DNS server
    publishing everything `dijk dns` prints; dijk's resolver points at it."""
    d.cli("dkim", "generate", DOMAIN)
    zone = text(d.cli("dns", DOMAIN))
    dns = dns_factory({DOMAIN: zone})
    d.config["dns.resolver"] = dns.address
    d.config["dns.trust_anchor"] = ""
    d.write_config()
    d.dns = dns
    return d


def sign(d, message=MESSAGE, domain=DOMAIN):
    r = d.cli("dkim", "sign", domain, input=message)
    return r.stdout


def verify(d, message):
    r = d.cli("dkim", "verify", input=message, check=False)
    assert r.returncode in (0, 1), error(r)
    return r.returncode, text(r).splitlines()


# --- Key management ---------------------------------------------------------


def test_generate_makes_two_active_keys_with_private_modes(d):
    r = d.cli("dkim", "generate", DOMAIN)
    prefix = month_prefix()
    assert f"{prefix}e (ed25519)" in text(r) and f"{prefix}r (rsa)" in text(r)
    assert keys(d) == [
        (DOMAIN, prefix + "e", "ed25519", "active"),
        (DOMAIN, prefix + "r", "rsa", "active"),
    ]
    root = d.data / "dkim"
    assert mode(root) == 0o700
    assert mode(root / DOMAIN) == 0o700
    files = sorted(p.name for p in (root / DOMAIN).iterdir())
    assert files == ["active", f"{prefix}e.ed25519.pem", f"{prefix}r.rsa.pem"]
    for name in files:
        assert mode(root / DOMAIN / name) == 0o600, name
    assert (root / DOMAIN / "active").read_text() == f"{prefix}e\n{prefix}r\n"
    ed = (root / DOMAIN / f"{prefix}e.ed25519.pem").read_text()
    rsa = (root / DOMAIN / f"{prefix}r.rsa.pem").read_text()
    # PKCS#8, as OpenSSL reads it: an Ed25519 key and a 2048-bit RSA key.
    assert ed.startswith("-----BEGIN PRIVATE KEY-----") and rsa.startswith("-----BEGIN PRIVATE KEY-----")
    info = subprocess.run(["openssl", "pkey", "-noout", "-text"], input=rsa.encode(),
                          capture_output=True, check=True).stdout.decode()
    assert "Private-Key: (2048 bit" in info
    info = subprocess.run(["openssl", "pkey", "-noout", "-text"], input=ed.encode(),
                          capture_output=True, check=True).stdout.decode()
    assert "ED25519 Private-Key" in info


def test_generate_refusals(d):
    # Not a local domain; not a domain name at all.
    r = d.cli("dkim", "generate", "example.org", check=False)
    assert r.returncode == 1 and "not a local domain" in error(r)
    r = d.cli("dkim", "generate", "../../etc", check=False)
    assert r.returncode == 1
    assert not (d.data / "dkim").exists()
    # A bad selector.
    for bad in ("Upper", "under_score", "-dash", "a" * 63, "dot.ted"):
        r = d.cli("dkim", "generate", DOMAIN, bad, check=False)
        assert r.returncode == 1, bad
        assert "selector" in error(r), bad
    # A domain given in capitals is the same domain.
    d.cli("dkim", "generate", "EXAMPLE.TEST", "mail")
    assert [k[1] for k in keys(d)] == ["maile", "mailr"]
    # A domain that signs already: rotate is the way.
    r = d.cli("dkim", "generate", DOMAIN, check=False)
    assert r.returncode == 1 and "dijk dkim rotate" in error(r)
    # An existing selector is never overwritten, by rotate either.
    before = (d.data / "dkim" / DOMAIN / "maile.ed25519.pem").read_bytes()
    r = d.cli("dkim", "rotate", DOMAIN, "mail", check=False)
    assert r.returncode == 1 and "exists already" in error(r)
    assert (d.data / "dkim" / DOMAIN / "maile.ed25519.pem").read_bytes() == before
    assert [k[3] for k in keys(d)] == ["active", "active"]
    # Another local domain gets keys of its own, under the same selector.
    d.cli("domain", "add", "other.test")
    d.cli("dkim", "generate", "other.test", "mail")
    assert [k[:2] for k in keys(d)] == [
        (DOMAIN, "maile"), (DOMAIN, "mailr"), ("other.test", "maile"), ("other.test", "mailr")]


@pytest.mark.parametrize("args", [
    ["dkim"], ["dkim", "generate"], ["dkim", "generate", "a", "b", "c"],
    ["dkim", "bogus"], ["dkim", "list", "x"], ["dkim", "sign"], ["dkim", "verify", "x"],
    ["dkim", "rotate"], ["dns"], ["dns", "a", "b"],
])
def test_usage_errors(d, args):
    r = d.cli(*args, check=False, input="")
    assert r.returncode == 2, args
    assert "usage:" in error(r)


def test_rotate_switches_signing_and_keeps_old_keys(d):
    prefix = month_prefix()
    # rotate on a domain without keys makes its first ones.
    d.cli("dkim", "rotate", DOMAIN)
    r = d.cli("dkim", "rotate", DOMAIN)
    assert f"{prefix}e no longer signs" in text(r)
    d.cli("dkim", "rotate", DOMAIN, "next")
    assert keys(d) == [
        (DOMAIN, prefix + "-2e", "ed25519", "inactive"),
        (DOMAIN, prefix + "-2r", "rsa", "inactive"),
        (DOMAIN, prefix + "e", "ed25519", "inactive"),
        (DOMAIN, prefix + "r", "rsa", "inactive"),
        (DOMAIN, "nexte", "ed25519", "active"),
        (DOMAIN, "nextr", "rsa", "active"),
    ]
    signed = sign(d).decode()
    assert re.findall(r"\bs=([\w-]+);", signed) == ["nexte", "nextr"]
    # Every kept key stays published.
    dkim = [n for n, t, _ in zone_records(text(d.cli("dns", DOMAIN))) if "._domainkey." in n]
    assert dkim == [f"{k[1]}._domainkey.{DOMAIN}." for k in keys(d)]


# --- dijk dns ------------------------------------------------------------------


def test_dns_prints_every_record(d):
    d.cli("dkim", "generate", DOMAIN)
    out = text(d.cli("dns", DOMAIN))
    rows = zone_records(out)
    host = "mail.example.test."
    by = {}
    for name, rtype, data in rows:
        by.setdefault((name, rtype), []).append(data)
    apex = DOMAIN + "."
    assert by[(apex, "MX")] == ["10 " + host]
    assert [txt_strings(t) for t in by[(apex, "TXT")]] == [["v=spf1 mx -all"]]
    assert [txt_strings(t) for t in by[(f"_dmarc.{apex}", "TXT")]] == [
        ["v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test"]]
    assert [txt_strings(t) for t in by[(f"_smtp._tls.{apex}", "TXT")]] == [
        ["v=TLSRPTv1; rua=mailto:postmaster@example.test"]]
    (sts,) = by[(f"_mta-sts.{apex}", "TXT")]
    assert re.fullmatch(r"v=STSv1; id=[0-9a-f]{20}", "".join(txt_strings(sts)))
    assert "https://mta-sts.example.test/.well-known/mta-sts.txt" in out
    for line in ("version: STSv1", "mode: enforce", "mx: mail.example.test", "max_age: 604800"):
        assert f";   {line}\n" in out
    # Client settings from the configured listeners.
    srv = {name: data for (name, rtype), (data,) in by.items() if rtype == "SRV"}
    assert srv[f"_submissions._tcp.{apex}"] == f"0 1 {d.submissions_port} {host}"
    assert srv[f"_submission._tcp.{apex}"] == f"10 1 {d.submission_port} {host}"
    assert srv[f"_imaps._tcp.{apex}"] == f"0 1 {d.imaps_port} {host}"
    assert srv[f"_imap._tcp.{apex}"] == f"10 1 {d.imap_port} {host}"
    assert srv[f"_autodiscover._tcp.{apex}"] == f"0 1 {d.https_port} {host}"
    assert by[(f"autoconfig.{apex}", "CNAME")] == [host]
    # DKIM: each key's record, the RSA one cut into 255-octet strings.
    prefix = month_prefix()
    (ed,) = by[(f"{prefix}e._domainkey.{apex}", "TXT")]
    (rsa,) = by[(f"{prefix}r._domainkey.{apex}", "TXT")]
    ed_text = "".join(txt_strings(ed))
    rsa_strings = txt_strings(rsa)
    assert len(rsa_strings) == 2 and len(rsa_strings[0]) == 255
    assert all(len(s) <= 255 for s in rsa_strings)
    rsa_text = "".join(rsa_strings)
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", ed_text)
    assert rsa_text.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    # The published keys are the public halves of the key files.
    key_dir = d.data / "dkim" / DOMAIN
    for path, record in ((key_dir / f"{prefix}e.ed25519.pem", ed_text),
                         (key_dir / f"{prefix}r.rsa.pem", rsa_text)):
        der = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
                             capture_output=True, check=True).stdout
        if "ed25519" in path.name:
            der = der[-32:]
        assert record.endswith("p=" + base64.b64encode(der).decode())
    # nsd accepts the whole output as a zone.
    zone = d.data.parent / "zone"
    zone.write_text(f"$ORIGIN {apex}\n$TTL 3600\n@ IN SOA ns.invalid. h.invalid. 1 3600 600 86400 60\n"
                    f"@ IN NS ns.invalid.\n{out}")
    r = subprocess.run(["nsd-checkzone", DOMAIN, str(zone)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dns_without_keys_and_with_listeners_off(d):
    d.config["listen.imap"] = ""
    d.config["listen.submission"] = ""
    d.write_config()
    out = text(d.cli("dns", "Example.Test."))
    assert "dijk dkim generate example.test" in out
    assert "._domainkey." not in out
    srv = {name: data for name, rtype, data in zone_records(out) if rtype == "SRV"}
    assert srv["_imap._tcp.example.test."] == "0 0 0 ."
    assert srv["_submission._tcp.example.test."] == "0 0 0 ."
    assert srv["_imaps._tcp.example.test."] == f"0 1 {d.imaps_port} mail.example.test."
    r = d.cli("dns", "example.org", check=False)
    assert r.returncode == 1 and "not a local domain" in error(r)


# --- dijk dkim sign / verify ---------------------------------------------------


def test_sign_then_verify_through_dns(signing):
    d = signing
    prefix = month_prefix()
    signed = sign(d)
    head = signed.split(b"\r\nFrom: ")[0]
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;")
    assert all(len(line) <= 78 for line in lines)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert signed.endswith(MESSAGE.replace("\n", "\r\n").encode())
    assert re.search(rb"h=from:from:to:to:subject:subject:date:date:\s*message-id:"
                     rb"\s*mime-version:\s*content-type;", head.replace(b"\r\n\t", b"")), head
    code, out = verify(d, signed)
    assert code == 0
    assert out == [f"pass d={DOMAIN} s={prefix}e a=ed25519-sha256",
                   f"pass d={DOMAIN} s={prefix}r a=rsa-sha256"]
    # Bare LF line ends are read as CRLF.
    code, out = verify(d, signed.replace(b"\r\n", b"\n"))
    assert code == 0 and len(out) == 2

    # Tampering fails both signatures; the exit status says so.
    for old, new, reason in (
        (b"Hello Bob", b"Hello Eve", "body hash mismatch"),
        (b"Subject: Interop", b"Subject: Interop!", "signature did not verify"),
        (b"\r\nFrom: Alice", b"\r\nFrom: Mallory <m@evil.example>\r\nFrom: Alice",
         "signature did not verify"),
    ):
        code, out = verify(d, signed.replace(old, new, 1))
        assert code == 1, old
        assert out == [f"fail d={DOMAIN} s={prefix}e a=ed25519-sha256 {reason}",
                       f"fail d={DOMAIN} s={prefix}r a=rsa-sha256 {reason}"]
    # No signature at all.
    code, out = verify(d, MESSAGE)
    assert code == 1 and out == ["none: the message has no DKIM signature"]
    # A signature whose key is not published.
    d.cli("dkim", "rotate", DOMAIN, "unpublished")
    code, out = verify(d, sign(d))
    assert code == 1
    assert out == [f"permerror d={DOMAIN} s=unpublishede a=ed25519-sha256 no key record",
                   f"permerror d={DOMAIN} s=unpublishedr a=rsa-sha256 no key record"]
    # No answer from DNS: a temporary error.
    d.config["dns.resolver"] = NO_DNS_RESOLVER
    d.write_config()
    code, out = verify(d, signed)
    assert code == 1 and all(line.startswith("temperror ") for line in out), out


def test_sign_refusals(d):
    r = d.cli("dkim", "sign", DOMAIN, input=MESSAGE, check=False)
    assert r.returncode == 1 and "no active DKIM key" in error(r) and r.stdout == b""
    d.cli("dkim", "generate", DOMAIN)
    r = d.cli("dkim", "sign", DOMAIN, input=" folded first line\n\nbody\n", check=False)
    assert r.returncode == 1 and r.stdout == b""


# --- Interoperability with OpenDKIM -------------------------------------------


def opendkim_conf(tmp, name, lines):
    path = Path(tmp) / name
    path.write_text("Syslog no\nRequireSafeKeys no\nLogWhy yes\n" + "".join(l + "\n" for l in lines))
    return path


def unbound_conf(tmp, dns):
    """An unbound configuration sending every query to the test nsd."""
    path = Path(tmp) / "unbound.conf"
    path.write_text(
        "server:\n"
        "  do-not-query-localhost: no\n"
        '  local-zone: "test." nodefault\n'
        '  module-config: "iterator"\n'
        "forward-zone:\n"
        '  name: "."\n'
        f"  forward-addr: 127.0.0.1@{dns.port}\n")
    return path


def opendkim_test(conf, message_path):
    assert os.path.exists(OPENDKIM), "needs Debian's opendkim package (scripts/deps.sh)"
    r = subprocess.run([OPENDKIM, "-x", str(conf), "-t", str(message_path), "-vvvv"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def opendkim_results(output):
    """(result, algorithm, selector) of each dkim= in OpenDKIM's
    Authentication-Results."""
    m = re.search(r"hname='Authentication-Results' hvalue='([^']*)'", output)
    assert m, output
    return [(r.group(1), r.group(2), r.group(3)) for r in re.finditer(
        r"dkim=(\w+)\b.*?header\.a=([\w-]+)\s+header\.s=([\w-]+)", m.group(1), re.S)]


def test_opendkim_verifies_dijk_signatures(signing, tmp_path):
    d = signing
    prefix = month_prefix()
    conf = opendkim_conf(tmp_path, "verify.conf", [
        "Mode v", f"ResolverConfiguration {unbound_conf(tmp_path, d.dns)}"])
    signed = sign(d)
    cases = {
        "good.eml": (signed, "pass"),
        "good-lf.eml": (signed.replace(b"\r\n", b"\n"), "pass"),
        "bad-body.eml": (signed.replace(b"odd spacing", b"odd  spacing!"), "fail"),
        "bad-header.eml": (signed.replace(b"Subject: Interop", b"Subject: Interop?"), "fail"),
    }
    for name, (message, expect) in cases.items():
        (tmp_path / name).write_bytes(message)
        out = opendkim_test(conf, tmp_path / name)
        assert opendkim_results(out) == [
            (expect, "ed25519-sha256", prefix + "e"),
            (expect, "rsa-sha256", prefix + "r"),
        ], name + "\n" + out
    # Relaxed canonicalization: refolded headers and changed spacing pass.
    refolded = signed.replace(b"Subject: Interop", b"SUBJECT:\r\n  Interop").replace(
        b"  a line   with", b" a line with")
    (tmp_path / "refolded.eml").write_bytes(refolded)
    out = opendkim_test(conf, tmp_path / "refolded.eml")
    assert [r[0] for r in opendkim_results(out)] == ["pass", "pass"], out


def without_field(message, index):
    """message without its index-th DKIM-Signature field."""
    text_ = message.decode()
    fields = [m.start() for m in re.finditer(r"^DKIM-Signature:", text_, re.M)]
    start = fields[index]
    end = re.search(r"\r\n(?![ \t])", text_[start:]).end() + start
    return (text_[:start] + text_[end:]).encode()


def test_opendkim_testmsg_verifies_dijk_signatures(signing, tmp_path):
    """opendkim-testmsg reads only /etc/resolv.conf (port 53), so it runs
    with nsd in a private network and mount namespace."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private network namespace")
    assert os.path.exists(OPENDKIM_TESTMSG), "needs opendkim-tools"
    from dnsserver import DnsServer
    d = signing
    zone = text(d.cli("dns", DOMAIN))
    ns = DnsServer(tmp_path / "dns53", {DOMAIN: zone}, port=53)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
    signed = sign(d)
    messages = {
        # opendkim-testmsg reports on the first signature: one at a time.
        "ed25519.eml": without_field(signed, 1),
        "rsa.eml": without_field(signed, 0),
        "bad-ed25519.eml": without_field(signed, 1).replace(b"Hello", b"Hallo"),
        "bad-rsa.eml": without_field(signed, 0).replace(b"Subject: I", b"Subject: i"),
    }
    for name, message in messages.items():
        (tmp_path / name).write_bytes(message)
    script = f"""
ip link set lo up || exit 90
mount --bind {resolv} /etc/resolv.conf || exit 91
/usr/sbin/nsd -d -c {ns.conf_path} >{tmp_path}/nsd53.out 2>&1 </dev/null &
nsd=$!
ok=0
for i in $(seq 100); do
  if drill @127.0.0.1 {DOMAIN} SOA 2>/dev/null | grep -q NOERROR; then ok=1; break; fi
  sleep 0.1
done
[ $ok = 1 ] || {{ kill $nsd; exit 92; }}
for f in {' '.join(messages)}; do
  timeout 30 {OPENDKIM_TESTMSG} < {tmp_path}/$f >/dev/null 2>{tmp_path}/$f.err
  echo "$f $?"
done
kill $nsd
wait $nsd
exit 0
"""
    r = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", script],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode in (90, 91) or "unshare failed" in r.stderr:
        pytest.fail(f"no private namespace here: {r.stderr}")
    assert r.returncode == 0, r.stdout + r.stderr
    status = dict(line.split() for line in r.stdout.splitlines())
    assert status == {"ed25519.eml": "0", "rsa.eml": "0",
                      "bad-ed25519.eml": "70", "bad-rsa.eml": "70"}, (
        r.stdout + "".join((tmp_path / (f + ".err")).read_text() for f in messages))


def opendkim_sign(tmp_path, name, key, selector, algorithm, canon, message):
    conf = opendkim_conf(tmp_path, name + ".conf", [
        "Mode s", f"Domain {DOMAIN}", f"Selector {selector}", f"KeyFile {key}",
        f"SignatureAlgorithm {algorithm}", f"Canonicalization {canon}",
        "OversignHeaders From"])
    path = tmp_path / (name + ".eml")
    path.write_text(message)
    out = opendkim_test(conf, path)
    m = re.search(r"hname='DKIM-Signature' hvalue='([^']*)'", out)
    assert m, out
    return ("DKIM-Signature: " + m.group(1) + "\n" + message).encode()


def test_dijk_verifies_opendkim_signatures(d, dns_factory, tmp_path):
    # An RSA key from opendkim-genkey, with the record file it writes.
    assert os.path.exists(OPENDKIM_GENKEY), "needs opendkim-tools"
    keydir = tmp_path / "keys"
    keydir.mkdir()
    subprocess.run([OPENDKIM_GENKEY, "-D", str(keydir), "-d", DOMAIN, "-s", "odkr"],
                   check=True, capture_output=True, timeout=60)
    rsa_key = keydir / "odkr.private"
    rsa_zone = (keydir / "odkr.txt").read_text()
    # An Ed25519 key; its record made by hand (RFC 8463: the raw key).
    ed_key = keydir / "ed.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(ed_key)],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(ed_key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    ed_zone = f'odke._domainkey IN TXT "v=DKIM1; k=ed25519; p={base64.b64encode(der[-32:]).decode()}"'
    dns = dns_factory({DOMAIN: rsa_zone + "\n" + ed_zone})
    d.config["dns.resolver"] = dns.address
    d.config["dns.trust_anchor"] = ""
    d.write_config()

    cases = [
        (rsa_key, "odkr", "rsa-sha256", "relaxed/simple"),
        (rsa_key, "odkr", "rsa-sha256", "simple/simple"),
        (rsa_key, "odkr", "rsa-sha256", "relaxed/relaxed"),
        # Not ed25519 with simple header canonicalization: OpenDKIM
        # 2.11.0~beta2 cannot verify its own such signatures of MESSAGE.
        (ed_key, "odke", "ed25519-sha256", "relaxed/relaxed"),
        (ed_key, "odke", "ed25519-sha256", "relaxed/simple"),
    ]
    for i, (key, selector, algorithm, canon) in enumerate(cases):
        signed = opendkim_sign(tmp_path, f"sign{i}", key, selector, algorithm, canon, MESSAGE)
        assert f"a={algorithm};".encode() in signed and f"c={canon};".encode() in signed
        code, out = verify(d, signed)
        assert (code, out) == (0, [f"pass d={DOMAIN} s={selector} a={algorithm}"]), (canon, signed)
        code, out = verify(d, signed.replace(b"Hello Bob", b"Hello Bo"))
        assert code == 1 and out == [
            f"fail d={DOMAIN} s={selector} a={algorithm} body hash mismatch"], (canon, out)
        # OpenDKIM over-signs From: an added From breaks the signature.
        code, out = verify(d, signed.replace(b"\nFrom: Alice", b"\nFrom: Eve <e@evil.example>\nFrom: Alice"))
        assert code == 1 and out == [
            f"fail d={DOMAIN} s={selector} a={algorithm} signature did not verify"], (canon, out)
