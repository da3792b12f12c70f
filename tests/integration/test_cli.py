"""The admin command line: init, domain, user, mail, queue, the --data
default, configuration errors, stored password hashes, and the owner check."""

import ctypes
import ctypes.util
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import ssl
import stat
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest

from conftest import DIJK, PASSWORDS, Dijk

ALICE = "alice@example.test"
BOB = "bob@example.test"
CURRENT_PHC = re.compile(r"^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{32,}$")


def run(*args, data=None, input=None, cwd=None, env=None, timeout=60, prefix=()):
    """Runs dijk without a controlling terminal (its own session), so that
    nothing can prompt."""
    cmd = [*prefix, DIJK, *args]
    if data is not None:
        cmd += ["--data", str(data)]
    full_env = dict(os.environ)
    full_env.pop("DIJK_DATA", None)
    full_env.update(env or {})
    return subprocess.run(
        cmd,
        input=input.encode() if isinstance(input, str) else input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        start_new_session=True,
    )


def out(r):
    return r.stdout.decode(errors="replace")


def err(r):
    return r.stderr.decode(errors="replace")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def login(server, user, password):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=30) as s:
        s.starttls(context=tls_context())
        try:
            return s.login(user, password)[0]
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code


# --- init ---------------------------------------------------------------------

def test_init_creates_data_directory(tmp_path):
    data = tmp_path / "d"
    r = run("init", "--hostname", "mx.init.test", data=data)
    assert r.returncode == 0, err(r)
    for name in ("dijk.conf", "cert.pem", "key.pem", "meta.db", "auth.db"):
        assert (data / name).is_file(), name
    assert mode(data) == 0o700
    assert mode(data / "key.pem") == 0o600
    assert mode(data / "auth.db") == 0o600
    assert re.search(r"^hostname = mx\.init\.test$", (data / "dijk.conf").read_text(), re.M)
    x = subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer", "-in",
                        str(data / "cert.pem")], capture_output=True, text=True, timeout=30)
    assert x.returncode == 0, x.stderr
    subject, issuer = x.stdout.splitlines()
    assert "mx.init.test" in subject
    assert subject.split("=", 1)[1] == issuer.split("=", 1)[1], "not self-signed"
    # Not expired, and the key is the certificate's.
    assert subprocess.run(["openssl", "x509", "-noout", "-checkend", "86400", "-in",
                           str(data / "cert.pem")], capture_output=True, timeout=30).returncode == 0
    cert_pub = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", str(data / "cert.pem")],
                              capture_output=True, timeout=30).stdout
    key_pub = subprocess.run(["openssl", "pkey", "-pubout", "-in", str(data / "key.pem")],
                             capture_output=True, timeout=30).stdout
    assert cert_pub and cert_pub == key_pub
    # A freshly initialised directory is empty but usable.
    assert out(run("domain", "list", data=data)) == ""
    assert out(run("user", "list", data=data)) == ""


def test_init_twice_fails_and_changes_nothing(tmp_path):
    data = tmp_path / "d"
    assert run("init", data=data).returncode == 0
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    r = run("init", "--hostname", "other.test", data=data)
    assert r.returncode != 0
    assert "dijk.conf" in err(r) and "exists" in err(r), err(r)
    after = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    assert after == before


def test_init_bad_hostname_refused(tmp_path):
    r = run("init", "--hostname", "bad host!", data=tmp_path / "d")
    assert r.returncode != 0
    assert "hostname" in err(r)
    assert not (tmp_path / "d" / "dijk.conf").exists()


# --- --data default -----------------------------------------------------------

def test_data_defaults_to_dijk_data_dir_in_cwd(tmp_path):
    r = run("init", cwd=tmp_path)
    assert r.returncode == 0, err(r)
    assert (tmp_path / "dijk-data" / "dijk.conf").is_file()
    assert run("domain", "add", "cwd.test", cwd=tmp_path).returncode == 0
    assert out(run("domain", "list", data=tmp_path / "dijk-data")) == "cwd.test\n"
    # An empty DIJK_DATA counts as unset.
    r = run("domain", "list", cwd=tmp_path, env={"DIJK_DATA": ""})
    assert out(r) == "cwd.test\n", err(r)


def test_data_defaults_to_env_then_flag_wins(tmp_path):
    env_dir = tmp_path / "from-env"
    r = run("init", cwd=tmp_path, env={"DIJK_DATA": str(env_dir)})
    assert r.returncode == 0, err(r)
    assert (env_dir / "dijk.conf").is_file()
    assert not (tmp_path / "dijk-data").exists()
    assert run("domain", "add", "env.test", cwd=tmp_path,
               env={"DIJK_DATA": str(env_dir)}).returncode == 0
    assert out(run("domain", "list", data=env_dir)) == "env.test\n"
    # --data beats DIJK_DATA.
    flag_dir = tmp_path / "from-flag"
    assert run("init", data=flag_dir, env={"DIJK_DATA": str(env_dir)}).returncode == 0
    assert out(run("domain", "list", data=flag_dir, env={"DIJK_DATA": str(env_dir)})) == ""


def test_missing_data_directory_is_an_error(tmp_path):
    r = run("domain", "list", data=tmp_path / "nowhere")
    assert r.returncode != 0
    assert "nowhere" in err(r)
    assert not (tmp_path / "nowhere").exists()


# --- domains ------------------------------------------------------------------

@pytest.fixture
def data(tmp_path):
    d = tmp_path / "d"
    assert run("init", data=d).returncode == 0
    return d


def add_user(data, user, password="a-good-password", **kw):
    return run("user", "add", user, "--password-stdin", data=data, input=password + "\n", **kw)


def test_domain_add_list_del(data):
    for name in ("b.test", "a.test", "Mixed.Case.TEST"):
        r = run("domain", "add", name, data=data)
        assert r.returncode == 0, err(r)
    assert out(run("domain", "list", data=data)).splitlines() == [
        "a.test", "b.test", "mixed.case.test"]
    r = run("domain", "add", "A.test", data=data)
    assert r.returncode != 0 and "exists" in err(r)
    assert run("domain", "del", "b.test", data=data).returncode == 0
    assert out(run("domain", "list", data=data)).splitlines() == ["a.test", "mixed.case.test"]
    r = run("domain", "del", "b.test", data=data)
    assert r.returncode != 0 and "b.test" in err(r)


@pytest.mark.parametrize("name", ["", "-lead.test", "dot..dot.test", "trailing.test.",
                                  ".lead.test", "under_score.test", "sp ace.test",
                                  "semi;colon.test", "a@b.test", "x" * 300])
def test_domain_bad_names_refused(data, name):
    r = run("domain", "add", name, data=data)
    assert r.returncode != 0
    assert err(r).strip()
    assert out(run("domain", "list", data=data)) == ""


def test_domain_del_refused_while_it_has_users(data):
    assert run("domain", "add", "busy.test", data=data).returncode == 0
    assert add_user(data, "u@busy.test").returncode == 0
    r = run("domain", "del", "busy.test", data=data)
    assert r.returncode != 0
    assert "user" in err(r), err(r)
    assert out(run("domain", "list", data=data)) == "busy.test\n"
    assert run("user", "del", "u@busy.test", data=data).returncode == 0
    assert run("domain", "del", "busy.test", data=data).returncode == 0
    assert out(run("domain", "list", data=data)) == ""


# --- users --------------------------------------------------------------------

def test_user_add_list_del(data):
    assert run("domain", "add", "one.test", data=data).returncode == 0
    assert run("domain", "add", "two.test", data=data).returncode == 0
    for u in ("b@one.test", "a@one.test", "c@two.test"):
        r = add_user(data, u)
        assert r.returncode == 0, err(r)
    assert out(run("user", "list", data=data)).splitlines() == ["a@one.test", "b@one.test", "c@two.test"]
    assert out(run("user", "list", "two.test", data=data)).splitlines() == ["c@two.test"]
    assert run("user", "del", "b@one.test", data=data).returncode == 0
    assert out(run("user", "list", data=data)).splitlines() == ["a@one.test", "c@two.test"]
    r = run("user", "del", "b@one.test", data=data)
    assert r.returncode != 0 and "b@one.test" in err(r)


def test_user_add_refusals(data):
    assert run("domain", "add", "ok.test", data=data).returncode == 0
    # Unknown domain.
    r = add_user(data, "x@unknown.test")
    assert r.returncode != 0 and "unknown.test" in err(r), err(r)
    # Not an address.
    for bad in ("no-at-sign", "@ok.test", "a b@ok.test", "a..b@ok.test"):
        r = add_user(data, bad)
        assert r.returncode != 0, bad
    # Too short a password (7 characters), then exactly 8.
    r = add_user(data, "short@ok.test", "1234567")
    assert r.returncode != 0 and "8" in err(r), err(r)
    assert add_user(data, "short@ok.test", "12345678").returncode == 0
    # Duplicate, in any case.
    r = add_user(data, "Short@OK.test")
    assert r.returncode != 0 and "exists" in err(r), err(r)
    assert out(run("user", "list", data=data)).splitlines() == ["short@ok.test"]


def test_password_never_from_argv(data):
    assert run("domain", "add", "ok.test", data=data).returncode == 0
    r = run("user", "add", "u@ok.test", "secret-password", data=data)
    assert r.returncode != 0
    r = run("user", "add", "u@ok.test", "--password", "secret-password", data=data)
    assert r.returncode != 0
    r = run("user", "add", "u@ok.test", "--password=secret-password", data=data)
    assert r.returncode != 0
    assert out(run("user", "list", data=data)) == ""


def test_no_tty_without_password_stdin_fails_clearly(data):
    assert run("domain", "add", "ok.test", data=data).returncode == 0
    r = run("user", "add", "u@ok.test", data=data)  # stdin /dev/null, no tty
    assert r.returncode != 0
    assert "--password-stdin" in err(r), err(r)
    assert out(run("user", "list", data=data)) == ""
    assert add_user(data, "u@ok.test").returncode == 0
    r = run("user", "passwd", "u@ok.test", data=data, input="new-password-1\n")
    assert r.returncode != 0 and "--password-stdin" in err(r), err(r)


def test_passwd_changes_what_smtp_auth_accepts(dijk):
    old = PASSWORDS[ALICE]
    new = "a-brand-new-password"
    assert login(dijk, ALICE, old) == 235
    r = dijk.cli("user", "passwd", ALICE, "--password-stdin", input="short\n", check=False)
    assert r.returncode != 0
    assert login(dijk, ALICE, old) == 235
    dijk.cli("user", "passwd", ALICE, "--password-stdin", input=new + "\n")
    assert login(dijk, ALICE, new) == 235
    assert login(dijk, ALICE, old) == 535
    assert login(dijk, BOB, PASSWORDS[BOB]) == 235
    r = dijk.cli("user", "passwd", "nobody@example.test", "--password-stdin",
                 input=new + "\n", check=False)
    assert r.returncode != 0 and "nobody@example.test" in r.stderr.decode()


def test_user_del_on_running_server(dijk):
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=30) as s:
        assert s.sendmail("x@remote.test", [BOB], b"Subject: before\r\n\r\nx\r\n") == {}
    dijk.cli("user", "del", BOB)
    assert BOB not in dijk.cli("user", "list").stdout.decode()
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=30) as s:
        s.ehlo("client.remote.test")
        assert s.mail("x@remote.test")[0] == 250
        code, text = s.rcpt(BOB)
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    assert login(dijk, BOB, PASSWORDS[BOB]) == 535
    r = dijk.cli("mail", "list", BOB, check=False)
    assert r.returncode != 0
    # alice is untouched.
    assert login(dijk, ALICE, PASSWORDS[ALICE]) == 235
    # Re-adding the address starts with an empty mailbox.
    dijk.cli("user", "add", BOB, "--password-stdin", input="bob-is-back-again\n")
    assert dijk.messages(BOB) == []
    assert login(dijk, BOB, "bob-is-back-again") == 235


# --- mail and queue -----------------------------------------------------------

def test_mail_list_get_and_queue_list(dijk):
    assert dijk.queue() == []
    bodies = [b"Subject: one\r\n\r\nfirst\r\n", b"Subject: two\r\n\r\nsecond, longer\r\n"]
    t0 = int(time.time())
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=30) as s:
        for b in bodies:
            assert s.sendmail("x@remote.test", [ALICE], b) == {}
    r = dijk.cli("mail", "list", ALICE)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2
    for i, line in enumerate(lines):
        uid, size, date = map(int, line.split())
        assert uid == i + 1
        assert t0 - 5 <= date <= time.time() + 5
        msg = dijk.cli("mail", "get", ALICE, str(uid)).stdout
        assert len(msg) == size and msg.endswith(bodies[i])
    assert dijk.cli("mail", "list", ALICE, "--mailbox", "Sent").stdout == b""
    for bad in ("3", "0", "-1", "abc", "1x"):
        r = dijk.cli("mail", "get", ALICE, bad, check=False)
        assert r.returncode != 0 and r.stdout == b"", bad
        assert r.stderr.strip(), bad
    r = dijk.cli("mail", "list", "ghost@example.test", check=False)
    assert r.returncode != 0 and "ghost@example.test" in r.stderr.decode()
    # Submission to a remote address lands in the queue.
    with smtplib.SMTP("127.0.0.1", dijk.submission_port, timeout=30) as s:
        s.starttls(context=tls_context())
        s.login(ALICE, PASSWORDS[ALICE])
        s.sendmail(ALICE, ["carol@remote.test", "dave@remote.test"],
                   b"Subject: out\r\n\r\nto the world\r\n")
    q = dijk.queue()
    assert len(q) == 1
    fields = q[0].split()
    assert fields[1] == f"<{ALICE}>"
    assert "carol@remote.test" in q[0] and "dave@remote.test" in q[0]
    assert int(fields[3]) > len(b"Subject: out\r\n\r\nto the world\r\n")


# --- configuration errors -----------------------------------------------------

BAD_CONFIGS = [
    ("unknown key", "no.such.key = 1", "no.such.key"),
    ("listen nonsense", "listen.smtp = nonsense", "listen.smtp"),
    ("listen port 0", "listen.smtp = 127.0.0.1:0", "listen.smtp"),
    ("listen port too big", "listen.smtp = 127.0.0.1:99999", "listen.smtp"),
    ("max_recipients 0", "smtp.max_recipients = 0", "smtp.max_recipients"),
    ("max_recipients word", "smtp.max_recipients = many", "smtp.max_recipients"),
    ("max_message_size tiny", "smtp.max_message_size = 10", "smtp.max_message_size"),
    ("timeout negative", "smtp.timeout = -5", "smtp.timeout"),
    ("workers too many", "workers = 65", "workers"),
    ("bad hostname", "hostname = not a host", "hostname"),
    ("duplicate key", "smtp.max_recipients = 10\nsmtp.max_recipients = 20", "smtp.max_recipients"),
    ("no equals", "smtp.timeout 30", "smtp.timeout"),
]


@pytest.mark.parametrize("what,lines,key", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_config_error_stops_serve(tmp_path, what, lines, key):
    d = Dijk(tmp_path / "cfg")  # set up, never started
    # The bad line sits after the good ones (a key it sets is left out of
    # them, but for the duplicate case); duplicates are reported at the
    # second occurrence.
    good = "".join(f"{k} = {v}\n" for k, v in d.config.items()
                   if k != key or what == "duplicate key")
    text = "# a comment\n\n" + good + lines + "\n"
    bad_line = text.count("\n")  # the last line
    path = d.data / "dijk.conf"
    path.write_text(text)
    began = time.monotonic()
    r = run("serve", data=d.data, timeout=20)
    took = time.monotonic() - began
    assert r.returncode != 0
    assert took < 5, f"serve took {took:.1f} s to give up"
    e = err(r)
    assert f"{path}:{bad_line}" in e, e
    assert key in e, e
    for port in (d.smtp_port, d.submission_port, d.submissions_port):
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} answers"
    assert not (d.data / "run" / "auth.sock").exists()


def test_listen_port_in_use_fails(tmp_path):
    """A listener that cannot bind is an error too, and leaves no family."""
    d = Dijk(tmp_path / "busy")  # set up, never started
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", d.smtp_port))
        taken.listen()
        r = run("serve", data=d.data, timeout=20)
    assert r.returncode != 0
    assert "listen.smtp" in err(r), err(r)
    assert not (d.data / "run" / "auth.sock").exists()


# --- SECURITY req 9: stored password hashes -----------------------------------

def account_id(data, user):
    with closing(sqlite3.connect(f"file:{data}/meta.db?mode=ro", uri=True)) as db:
        (i,) = db.execute("SELECT id FROM user WHERE address = ?", (user,)).fetchone()
    return i


def stored_phc(data, user):
    with closing(sqlite3.connect(str(data / "auth.db"), timeout=10)) as db:
        rows = db.execute("SELECT phc, changed FROM password WHERE account_id = ?",
                          (account_id(data, user),)).fetchall()
    assert len(rows) == 1
    return rows[0]


def sodium_hash(password, opslimit, memlimit, alg):
    """A PHC string from libsodium's own crypto_pwhash_str_alg, with the
    given parameters: a genuine, weaker hash."""
    path = ctypes.util.find_library("sodium")
    if path is None:
        pytest.skip("libsodium not found for ctypes (Debian package libsodium23)")
    lib = ctypes.CDLL(path)
    assert lib.sodium_init() >= 0
    out = ctypes.create_string_buffer(128)
    pw = password.encode()
    lib.crypto_pwhash_str_alg.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong,
                                          ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
    assert lib.crypto_pwhash_str_alg(out, pw, len(pw), opslimit, memlimit, alg) == 0
    return out.value.decode()


ARGON2I13, ARGON2ID13 = 1, 2


def set_phc(data, user, phc):
    with closing(sqlite3.connect(str(data / "auth.db"), timeout=10)) as db:
        with db:
            db.execute("UPDATE password SET phc = ? WHERE account_id = ?",
                       (phc, account_id(data, user)))


def test_stored_hash_is_argon2id_with_current_parameters(dijk):
    phcs = {}
    for user in PASSWORDS:
        phc, changed = stored_phc(dijk.data, user)
        assert CURRENT_PHC.match(phc), phc
        assert abs(changed - time.time()) < 600
        for secret in PASSWORDS.values():
            assert secret not in phc
        phcs[user] = phc
    # Salted: the same password gives different strings.
    dijk.cli("user", "add", "carol@example.test", "--password-stdin",
             input=PASSWORDS[ALICE] + "\n")
    carol = stored_phc(dijk.data, "carol@example.test")[0]
    assert CURRENT_PHC.match(carol) and carol != phcs[ALICE]
    # The files holding them are the owner's alone.
    assert mode(dijk.data / "auth.db") == 0o600
    # No password hash lives in meta.db.
    assert b"$argon2" not in (dijk.data / "meta.db").read_bytes()


def test_weaker_argon2id_hash_is_upgraded_at_login(dijk):
    weak = sodium_hash(PASSWORDS[ALICE], 1, 64 * 1024, ARGON2ID13)
    assert weak.startswith("$argon2id$v=19$m=64,t=1,p=1$"), weak
    set_phc(dijk.data, ALICE, weak)
    assert stored_phc(dijk.data, ALICE)[0] == weak
    assert login(dijk, ALICE, "wrong-password-x") == 535
    assert stored_phc(dijk.data, ALICE)[0] == weak, "a failed login must not rehash"
    assert login(dijk, ALICE, PASSWORDS[ALICE]) == 235
    deadline = time.monotonic() + 10
    while stored_phc(dijk.data, ALICE)[0] == weak and time.monotonic() < deadline:
        time.sleep(0.05)
    upgraded = stored_phc(dijk.data, ALICE)[0]
    assert CURRENT_PHC.match(upgraded), upgraded
    assert login(dijk, ALICE, PASSWORDS[ALICE]) == 235
    assert login(dijk, ALICE, "wrong-password-x") == 535


def test_argon2i_hash_is_not_accepted(dijk):
    """Only argon2id verifies: an argon2i string of the right password is
    refused, and left alone."""
    weak = sodium_hash(PASSWORDS[BOB], 3, 64 * 1024, ARGON2I13)
    assert weak.startswith("$argon2i$"), weak
    set_phc(dijk.data, BOB, weak)
    assert login(dijk, BOB, PASSWORDS[BOB]) == 535
    assert stored_phc(dijk.data, BOB)[0] == weak


# --- owner check --------------------------------------------------------------

AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


@pytest.fixture
def reachable_data():
    """A root-owned data directory whose parent others can traverse (but
    not list), so that the owner check itself is what refuses."""
    top = Path(tempfile.mkdtemp(prefix="dijk-owner-", dir="/tmp"))
    try:
        os.chmod(top, 0o711)
        data = top / "d"
        assert run("init", data=data).returncode == 0
        assert run("domain", "add", "own.test", data=data).returncode == 0
        yield data
    finally:
        shutil.rmtree(top)


def test_non_owner_is_refused(reachable_data):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    data = reachable_data
    assert os.stat(data).st_uid == 0
    r = run("user", "add", "x@own.test", "--password-stdin", data=data,
            input="a-good-password\n", prefix=AS_NOBODY)
    assert r.returncode != 0
    assert "owner" in err(r) or "another user" in err(r), err(r)
    for args in (("domain", "list"), ("domain", "add", "evil.test"), ("user", "list"),
                 ("queue", "list"), ("serve",)):
        r = run(*args, data=data, prefix=AS_NOBODY)
        assert r.returncode != 0, args
        assert "another user" in err(r) or "owner" in err(r), (args, err(r))
    # Nothing changed, and the owner still can.
    assert out(run("user", "list", data=data)) == ""
    assert out(run("domain", "list", data=data)) == "own.test\n"
    assert run("user", "add", "x@own.test", "--password-stdin", data=data,
               input="a-good-password\n").returncode == 0
