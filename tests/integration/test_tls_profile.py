"""The TLS profile of every TLS listener and of STARTTLS (SECURITY.md 12):
Mozilla's "intermediate" configuration. TLS 1.0 and 1.1, RC4, 3DES, NULL,
export and non-forward-secret suites are refused; the allowed TLS 1.2 and
TLS 1.3 suites and groups succeed; a client's renegotiation is refused.

The client is Python's ssl module (OpenSSL) with its security level at 0,
so that it really offers what is old and weak: a refusal must come from
the server. Renegotiation is asked for with openssl s_client's "R"."""
import os
import select
import socket
import ssl
import subprocess
import time

import pytest

# (listener, how TLS starts): implicit TLS, or STARTTLS of a protocol.
ENDPOINTS = [
    ("https", None),
    ("submissions", None),
    ("imaps", None),
    ("submission", "smtp"),
    ("smtp", "smtp"),
    ("imap", "imap"),
]

TLS12_ALLOWED = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
]
TLS12_REFUSED = [
    "ECDHE-ECDSA-RC4-SHA:RC4-SHA:RC4-MD5",
    "DES-CBC3-SHA:ECDHE-ECDSA-DES-CBC3-SHA:ECDHE-RSA-DES-CBC3-SHA",
    "NULL-SHA256:ECDHE-ECDSA-NULL-SHA:NULL-SHA:NULL-MD5",
    "EXP-RC4-MD5:EXP-DES-CBC-SHA:EXP-RC2-CBC-MD5",
    # CBC without forward secrecy or AEAD: not in the intermediate list.
    "AES128-SHA:AES256-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
]
TLS13_SUITES = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Dijk
    d = Dijk(tmp_path_factory.mktemp("tls") / "data").start()
    yield d
    assert d.stop() == 0


def recv_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"closed after {data!r}")
        data += chunk
    return data


def smtp_reply(sock):
    lines = []
    while True:
        line = recv_line(sock)
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)


def plain_until_tls(sock, protocol):
    """Speaks the protocol up to the point where TLS begins."""
    if protocol == "smtp":
        assert smtp_reply(sock).startswith(b"220")
        sock.sendall(b"EHLO client.test\r\n")
        assert b"STARTTLS" in smtp_reply(sock)
        sock.sendall(b"STARTTLS\r\n")
        assert smtp_reply(sock).startswith(b"220")
    elif protocol == "imap":
        assert recv_line(sock).startswith(b"* OK")
        sock.sendall(b"a STARTTLS\r\n")
        assert recv_line(sock).startswith(b"a OK")


def handshake(server, listener, protocol, *, version=None, ciphers=None,
              groups=None):
    """A handshake with what the client offers; returns the TLS socket's
    (version, cipher) or raises ssl.SSLError when the server refuses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    ctx.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
    if groups is not None:
        ctx.set_ecdh_curve(groups)
    port = getattr(server, f"{listener}_port")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        plain_until_tls(raw, protocol)
        tls = ctx.wrap_socket(raw, server_hostname="mail.example.test")
        result = (tls.version(), tls.cipher()[0])
        tls.close()
        return result
    finally:
        raw.close()


def s_client(server, listener, protocol, *args, command=None, after=b"Verify return code"):
    """openssl s_client against the listener; returns what it printed.
    With command, types it once the output holds after (the end of the
    handshake summary, or a greeting that follows it), then waits for the
    end. s_client reads "R" at the start of a line as "renegotiate"."""
    port = getattr(server, f"{listener}_port")
    extra = ["-starttls", protocol] if protocol else []
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    if command is not None:
        deadline = time.monotonic() + 20
        while after not in out and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        p.stdin.write(command)
        p.stdin.flush()
        time.sleep(0.5)
    try:
        rest, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, _ = p.communicate()
    return (out + rest).decode(errors="replace")


@pytest.mark.parametrize("listener,protocol", ENDPOINTS)
@pytest.mark.parametrize("old", ["-tls1", "-tls1_1"])
def test_old_protocol_versions_are_refused(server, listener, protocol, old):
    # SECLEVEL=0 lets this OpenSSL offer TLS 1.0/1.1 at all: the refusal
    # must come from the server (a protocol_version alert).
    out = s_client(server, listener, protocol, old, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "alert protocol version" in out, out
    assert "Cipher is (NONE)" in out, out


@pytest.mark.parametrize("listener,protocol", ENDPOINTS)
@pytest.mark.parametrize("weak", TLS12_REFUSED)
def test_weak_tls12_suites_are_refused(server, listener, protocol, weak):
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(weak + ":@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip(f"this OpenSSL cannot even offer {weak}")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(server, listener, protocol, version=ssl.TLSVersion.TLSv1_2,
                  ciphers=weak)


@pytest.mark.parametrize("listener,protocol", ENDPOINTS)
@pytest.mark.parametrize("cipher", TLS12_ALLOWED)
def test_intermediate_tls12_suites_succeed(server, listener, protocol, cipher):
    version, got = handshake(server, listener, protocol,
                             version=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
    assert (version, got) == ("TLSv1.2", cipher)


@pytest.mark.parametrize("listener,protocol", ENDPOINTS)
@pytest.mark.parametrize("suite", TLS13_SUITES)
def test_tls13_suites_succeed(server, listener, protocol, suite):
    out = s_client(server, listener, protocol, "-tls1_3", "-ciphersuites", suite)
    assert f"Cipher is {suite}" in out, out


@pytest.mark.parametrize("listener,protocol", ENDPOINTS)
@pytest.mark.parametrize("group,allowed", [
    ("X25519", True), ("prime256v1", True), ("secp384r1", True),
    ("secp521r1", False), ("ffdhe3072", False),
])
def test_key_exchange_groups(server, listener, protocol, group, allowed):
    out = s_client(server, listener, protocol, "-tls1_3", "-groups", group)
    if allowed:
        assert "Cipher is TLS_" in out, out
    else:
        assert "Cipher is (NONE)" in out or "handshake failure" in out, out


@pytest.mark.parametrize("listener,protocol", ENDPOINTS)
def test_client_renegotiation_is_refused(server, listener, protocol):
    """s_client's "R" asks for a renegotiation on TLS 1.2; the server
    answers no_renegotiation and the session never renegotiates."""
    # With implicit TLS the greeting follows the handshake: type after it,
    # so that it does not cross the renegotiation.
    greeting = {"imaps": b"dijk ready", "submissions": b"ESMTP"}.get(
        listener, b"Verify return code")
    out = s_client(server, listener, protocol, "-tls1_2", command=b"R\n",
                   after=greeting)
    assert "New, TLSv1.2, Cipher is" in out, out
    assert "RENEGOTIATING" in out, out
    assert "no renegotiation" in out, out
    # Only the first handshake's summary: no second one succeeded.
    assert out.count("New, TLSv1.2, Cipher is") == 1, out


def test_server_still_serves_after_the_matrix(server):
    version, _ = handshake(server, "imaps", None)
    assert version == "TLSv1.3"
