"""Privilege separation of a root-started `dijk serve` (SECURITY.md
requirements 1, 22 and 25): each child runs as its own unprivileged user
with no capabilities, no-new-privs and a seccomp filter; the worker user
cannot open auth.db or a DKIM key; a forbidden system call kills the
worker, which the master replaces; the admin commands refuse a uid that
does not own the data directory; and the family listens on nothing but
its configured listeners."""

import grp
import os
import pwd
import resource
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import DIJK, wait_until

ROLES = {"smtp": "dijk", "imap": "dijk", "http": "dijk",
         "auth": "dijk-auth", "queue": "dijk-queue"}
GROUP = "dijk"
# The sanitizer build keeps its children dumpable (its leak checker
# attaches to them with ptrace at exit) and sets no core file itself.
SANITIZED = os.environ.get("DIJK_SANITIZED") == "1"
not_sanitized = pytest.mark.skipif(
    SANITIZED, reason="the sanitizer build keeps children dumpable for its "
                      "leak checker and turns core files off itself")


def _users_exist():
    try:
        for user in set(ROLES.values()):
            pwd.getpwnam(user)
        grp.getgrnam(GROUP)
    except KeyError:
        return False
    return True


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="privilege separation needs dijk started as root"),
    pytest.mark.skipif(not _users_exist(),
                       reason="the users dijk, dijk-auth, dijk-queue and group dijk "
                              "do not exist (scripts/deps.sh creates them)"),
]


@pytest.fixture
def dijk(dijk_factory):
    """A server not yet started: tests set config or keys, then start()."""
    return dijk_factory(start=False)


def status(pid, task=None):
    """/proc/PID/status (or one thread's) as {field: value}."""
    path = f"/proc/{pid}/task/{task}/status" if task else f"/proc/{pid}/status"
    fields = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def uid_of(name):
    return pwd.getpwnam(name).pw_uid


def gid():
    return grp.getgrnam(GROUP).gr_gid


def as_user(user, fn):
    """Runs fn() in a forked child that became user (group dijk, no other
    group) from inside its current directory; returns what fn returned
    (a short string) or the name of the exception it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(gid())
            os.setuid(uid_of(user))
            try:
                out = fn()
            except OSError as e:
                out = type(e).__name__
            os.write(w, str(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode()


def locked_down(dijk):
    """Waits until every child has finished its setup and entered its
    filter (the ports answer a little before auth and queue are done)."""
    def done():
        pids = [p for role in ROLES for p in dijk.children(role)]
        return len(pids) >= len(ROLES) and all(
            status(p)["Seccomp"] == "2" for p in pids)
    wait_until(done, 20, what="every child locked down")


def test_every_child_runs_as_its_user_without_privileges(dijk):
    dijk.start()
    locked_down(dijk)
    seen = set()
    for role, user in ROLES.items():
        pids = dijk.children(role)
        assert pids, f"no dijk-{role} process"
        for pid in pids:
            s = status(pid)
            uid = str(uid_of(user))
            assert s["Uid"].split() == [uid] * 4, (role, s["Uid"])
            assert s["Gid"].split() == [str(gid())] * 4, (role, s["Gid"])
            assert s["Groups"] == "", (role, s["Groups"])
            for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert int(s[cap], 16) == 0, (role, cap, s[cap])
            assert s["NoNewPrivs"] == "1", role
            assert s["Seccomp"] == "2", role  # filter mode
            # Every thread (the pools' too) has the filter and nothing
            # in its bounding set, not only the main one.
            for task in os.listdir(f"/proc/{pid}/task"):
                try:
                    t = status(pid, task)
                except FileNotFoundError:
                    continue  # a thread that just ended
                assert t["Seccomp"] == "2", (role, task)
                assert int(t["CapBnd"], 16) == 0, (role, task)
                assert int(t["CapEff"], 16) == 0, (role, task)
            # Not dumpable: the kernel then gives the files of /proc/PID
            # to root, although the process runs as another uid (proc(5)).
            if not SANITIZED:
                assert os.stat(f"/proc/{pid}/environ").st_uid == 0, role
            seen.add(role)
    assert seen == set(ROLES)


def test_data_directory_ownership(dijk):
    assert dijk.cli("dkim", "generate", dijk.domain).returncode == 0
    dijk.start()
    data = dijk.data
    st = os.stat(data)
    assert (st.st_uid, st.st_gid) == (0, gid())
    assert st.st_mode & 0o7777 == 0o3770  # setgid + sticky
    auth = os.stat(data / "auth.db")
    assert (auth.st_uid, auth.st_mode & 0o777) == (uid_of("dijk-auth"), 0o600)
    dkim = data / "dkim"
    assert (os.stat(dkim).st_uid, os.stat(dkim).st_mode & 0o777) == (
        uid_of("dijk-queue"), 0o700)
    keys = list((dkim / dijk.domain).glob("*.pem"))
    assert keys
    for key in keys:
        k = os.stat(key)
        assert (k.st_uid, k.st_mode & 0o777) == (uid_of("dijk-queue"), 0o600)
    meta = os.stat(data / "meta.db")
    assert (meta.st_gid, meta.st_mode & 0o777) == (gid(), 0o660)
    for d in ("accounts", "blobs"):
        s = os.stat(data / d)
        assert (s.st_gid, s.st_mode & 0o7777) == (gid(), 0o2770), d


def test_worker_user_cannot_open_credentials_or_dkim_keys(dijk):
    assert dijk.cli("dkim", "generate", dijk.domain).returncode == 0
    dijk.start()
    key = next((dijk.data / "dkim" / dijk.domain).glob("*.pem"))
    relative_key = str(key.relative_to(dijk.data))
    here = os.getcwd()
    os.chdir(dijk.data)  # as the workers do: no right needed above it
    try:
        def try_open(path, flags=os.O_RDONLY):
            def go():
                os.close(os.open(path, flags))
                return "opened"
            return go
        for user in ("dijk", "dijk-queue"):
            assert as_user(user, try_open("auth.db")) == "PermissionError", user
            assert as_user(user, try_open("auth.db", os.O_RDWR)) == "PermissionError"
        assert as_user("dijk", try_open(relative_key)) == "PermissionError"
        assert as_user("dijk-auth", try_open(relative_key)) == "PermissionError"
        # The same user opens what it needs: the refusals above are the
        # files' own modes, not a closed directory on the way.
        assert as_user("dijk", try_open("meta.db", os.O_RDWR)) == "opened"
        assert as_user("dijk-auth", try_open("auth.db", os.O_RDWR)) == "opened"
        assert as_user("dijk-queue", try_open(relative_key)) == "opened"
        # Nor can the worker remove or replace auth.db (sticky directory).
        def replace():
            os.rename("meta.db", "auth.db")
            return "replaced"
        assert as_user("dijk", replace) == "PermissionError"
        assert as_user("dijk", lambda: os.unlink("auth.db") or "gone") == "PermissionError"
    finally:
        os.chdir(here)


def deliver(dijk, tag):
    body = f"Subject: {tag}\r\n\r\nbody {tag}\r\n".encode()
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port, timeout=15) as s:
        assert s.sendmail("x@remote.test", ["alice@example.test"], body) == {}


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
def test_forbidden_system_call_kills_worker_and_master_restarts_it(dijk, tmp_path):
    """gdb (as root, which may trace a non-dumpable process) makes one
    smtp worker call fork(2) directly: the filter kills it with SIGSYS, the
    master logs that and starts another, and mail still flows."""
    dijk.config["workers"] = "1"
    dijk.write_config()
    dijk.start()
    deliver(dijk, "before")
    (victim,) = dijk.children("smtp")
    # gdb's own account of the death varies (the kernel ends every
    # thread at once); the master's log and the kernel are the record.
    subprocess.run(
        ["gdb", "-p", str(victim), "-batch", "-nx",
         "-ex", "call (long)syscall(57)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    wait_until(lambda: not Path(f"/proc/{victim}").exists(), 10, what="worker gone")
    new = wait_until(lambda: [p for p in dijk.children("smtp") if p != victim],
                     15, what="a new smtp worker")
    assert new
    log = dijk.log_path.read_text()
    assert f"smtp process {victim} was killed by signal 31 (SIGSYS" in log
    time.sleep(0.5)
    deliver(dijk, "after")
    assert len(dijk.messages("alice@example.test")) == 2
    # The replacement is locked down like the first.
    s = status(new[0])
    assert s["Seccomp"] == "2" and s["Uid"].split()[0] == str(uid_of("dijk"))


@pytest.fixture
def reachable_data():
    """A root-initialised data directory under a parent others may
    traverse, so that the owner check itself is what refuses them."""
    top = Path(tempfile.mkdtemp(prefix="dijk-privsep-", dir="/tmp"))
    try:
        os.chmod(top, 0o711)
        data = top / "d"
        for args in (["init"], ["domain", "add", "own.test"]):
            assert subprocess.run([DIJK, *args, "--data", str(data)],
                                  capture_output=True).returncode == 0
        yield data
    finally:
        shutil.rmtree(top)


@pytest.mark.parametrize("user", ["dijk", "dijk-auth", "dijk-queue", "nobody"])
def test_admin_command_as_non_owner_is_refused(reachable_data, user):
    group = GROUP if user != "nobody" else "nogroup"
    r = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups",
         DIJK, "user", "add", "mallory@own.test", "--password-stdin",
         "--data", str(reachable_data)],
        input=b"a-good-password\n", capture_output=True, timeout=60)
    assert r.returncode == 1
    assert b"belongs to another user" in r.stderr, r.stderr
    listed = subprocess.run([DIJK, "user", "list", "--data", str(reachable_data)],
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "mallory" not in listed.stdout


def test_root_admin_command_writes_as_the_owning_user(reachable_data):
    r = subprocess.run([DIJK, "user", "add", "anna@own.test", "--password-stdin",
                        "--data", str(reachable_data)],
                       input=b"a-good-password\n", capture_output=True)
    assert r.returncode == 0, r.stderr
    auth = os.stat(reachable_data / "auth.db")
    assert (auth.st_uid, auth.st_mode & 0o777) == (uid_of("dijk-auth"), 0o600)
    # The account's index was made by dijk-auth, in the shared group.
    for path in (reachable_data / "accounts").rglob("*"):
        s = os.stat(path)
        assert s.st_gid == gid(), path
        assert s.st_mode & 0o060 == 0o060, path


def test_serve_refuses_a_missing_user(dijk):
    dijk.config["queue_user"] = "dijk-no-such-user"
    dijk.write_config()
    r = subprocess.run([DIJK, "serve", "--data", str(dijk.data)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "dijk-no-such-user" in r.stderr and "does not exist" in r.stderr


def _family_socket_inodes(pids):
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def _listening(table, inodes):
    """(address, port) of the LISTEN sockets of /proc/net/TABLE whose
    inode is in inodes."""
    out = set()
    lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
    for line in lines:
        f = line.split()
        local, state, inode = f[1], f[3], f[9]
        if state != "0A" or inode not in inodes:
            continue
        addr, port = local.split(":")
        if len(addr) == 8:
            ip = ".".join(str(b) for b in reversed(bytes.fromhex(addr)))
        else:
            ip = addr
        out.add((ip, int(port, 16)))
    return out


def test_listens_only_on_configured_listeners(dijk):
    """Requirement 25's port scan: the family's listening TCP sockets are
    exactly the configured listeners; no admin or other port."""
    dijk.start()
    locked_down(dijk)
    pids = [dijk.proc.pid] + [p for role in ROLES for p in dijk.children(role)]
    inodes = _family_socket_inodes(pids)
    found = _listening("tcp", inodes) | _listening("tcp6", inodes)
    wanted = {("127.0.0.1", getattr(dijk, f"{name}_port"))
              for name in ("smtp", "submission", "submissions", "imap", "imaps",
                           "http", "https")}
    assert found == wanted


def _key_numbers(pem):
    """{field: bytes} of a private key as `openssl pkey -text` prints it
    (RSA: modulus, privateExponent, prime1...; Ed25519: priv, pub)."""
    text = subprocess.run(["openssl", "pkey", "-in", str(pem), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    fields, current = {}, None
    for line in text.splitlines():
        if not line.startswith(" ") and line.rstrip().endswith(":"):
            current = line.strip().rstrip(":")
            fields[current] = ""
        elif not line.startswith(" ") and ":" in line:
            current = None
        elif current is not None:
            fields[current] += line.strip().replace(":", "")
    out = {}
    for name, digits in fields.items():
        digits = digits.lstrip("0")
        if len(digits) % 2:
            digits = "0" + digits
        out[name] = bytes.fromhex(digits)
    return out


def _found(core, number):
    """Whether 24 bytes from the middle of number are in core, in either
    byte order (OpenSSL keeps big numbers as little-endian words)."""
    chunk = number[len(number) // 2 - 12:len(number) // 2 + 12]
    return chunk in core or chunk[::-1] in core


@not_sanitized
@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
def test_queue_core_holds_no_private_key_bytes(dijk, tmp_path):
    """Requirement 22. The queue holds the DKIM keys: it is not dumpable,
    so a crash leaves no core at all (next test); and even a core taken
    from outside (gdb's gcore, as root) after the keys have signed holds
    neither the Ed25519 key nor the RSA private exponents nor any PEM
    text, while the public modulus, kept in ordinary memory, is found: the
    search works."""
    dijk.cli("dkim", "generate", dijk.domain)
    dijk.config["workers"] = "1"
    dijk.write_config()
    dijk.start()
    # A message to another domain makes the queue sign (then fail to
    # find the MX: there is no DNS here), so its keys have been used.
    with smtplib.SMTP("127.0.0.1", dijk.submission_port, timeout=15) as s:
        s.login("alice@example.test", "alice-password-1")
        s.sendmail("alice@example.test", ["x@remote.test"],
                   b"Subject: signed\r\n\r\nbody\r\n")
    wait_until(lambda: any("attempts=0" not in line for line in dijk.queue()),
               20, what="a delivery attempt")
    locked_down(dijk)
    (queue,) = dijk.children("queue")
    assert os.stat(f"/proc/{queue}/environ").st_uid == 0  # not dumpable
    smaps = Path(f"/proc/{queue}/smaps").read_text()
    assert " dd" in smaps  # the secure heap is left out of dumps
    core_path = tmp_path / "queue.core"
    subprocess.run(["gdb", "-p", str(queue), "-batch", "-nx",
                    "-ex", f"gcore {core_path}"],
                   capture_output=True, timeout=120, check=True)
    core = core_path.read_bytes()
    core_path.unlink()
    keys = sorted((dijk.data / "dkim" / dijk.domain).glob("*.pem"))
    rsa = _key_numbers(next(k for k in keys if ".rsa." in k.name))
    ed = _key_numbers(next(k for k in keys if ".ed25519." in k.name))
    assert _found(core, rsa["modulus"]), "the search itself does not work"
    # Not the RSA key's CRT numbers: once a key has signed, OpenSSL keeps
    # Montgomery forms of p and q, and at times a CRT exponent, in ordinary
    # memory out of our reach (seen in some runs only: a limit
    # docs/security.md states; a crash of the process itself writes no
    # core, test_forced_crash_of_queue_leaves_no_core). The private exponent,
    # which CRT signing never touches, stays in the secure heap, and the PEM and
    # DER copies of decoding were wiped when freed (keymem.h).
    assert not _found(core, rsa["privateExponent"]), "privateExponent"
    assert len(ed["priv"]) == 32
    assert not _found(core, ed["priv"]), "Ed25519 private key"
    for pem in keys:
        body = "".join(pem.read_text().splitlines()[1:-1])
        assert body[20:60].encode() not in core, pem.name


@not_sanitized
def test_forced_crash_of_queue_leaves_no_core(dijk, tmp_path):
    """SIGABRT to the queue with core files allowed: the kernel writes
    none, because the process is not dumpable; the master restarts it. A
    dumpable process aborted the same way does leave one (the control),
    when the machine writes cores as files in the working directory."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        pytest.skip("the hard limit forbids core files")
    if pattern != "core":
        pytest.skip(f"core_pattern is {pattern!r}, not 'core' (files in the"
                    " working directory); not changed by a test")
    control = subprocess.run(
        [sys.executable, "-c",
         "import os, resource; h = resource.getrlimit(resource.RLIMIT_CORE)[1]; "
         "resource.setrlimit(resource.RLIMIT_CORE, (h, h)); os.abort()"],
        cwd=tmp_path)
    assert control.returncode == -signal.SIGABRT
    assert list(tmp_path.glob("core*")), "the control left no core"
    dijk.cli("dkim", "generate", dijk.domain)
    # The family inherits a core size limit that allows core files.
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        dijk.start()
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    locked_down(dijk)
    (queue,) = dijk.children("queue")
    assert "Max core file size" in Path(f"/proc/{queue}/limits").read_text()
    limits = Path(f"/proc/{queue}/limits").read_text()
    core_line = next(l for l in limits.splitlines() if l.startswith("Max core"))
    assert core_line.split()[4] != "0", core_line
    os.kill(queue, signal.SIGABRT)
    wait_until(lambda: [p for p in dijk.children("queue") if p != queue], 15,
               what="a new queue process")
    assert not list(dijk.data.glob("core*"))
    assert f"queue process {queue} was killed by signal 6" in dijk.logs()
