"""Fixtures for the integration tests: a real `dijk serve` started on free
loopback ports in a temporary data directory, and helpers to look inside
its store through the admin CLI."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIJK = os.environ.get("DIJK_BIN", str(ROOT / "build" / "dijk"))
DOMAIN = "example.test"
PASSWORDS = {
    "alice@example.test": "alice-password-1",
    "bob@example.test": "bob-password-22",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                banner = s.recv(512)
                if banner.startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not answer with a 220 banner")


class Dijk:
    """One dijk data directory and, once started, its running server."""

    def __init__(self, data, extra_config=None):
        self.data = Path(data)
        self.proc = None
        self.log_path = self.data.parent / (self.data.name + ".log")
        self.cli("init", "--hostname", "mail.example.test")
        self.cli("domain", "add", DOMAIN)
        for user, password in PASSWORDS.items():
            self.cli("user", "add", user, "--password-stdin", input=password + "\n")
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.submissions_port = free_port()
        self.config = {
            "hostname": "mail.example.test",
            "listen.smtp": f"127.0.0.1:{self.smtp_port}",
            "listen.submission": f"127.0.0.1:{self.submission_port}",
            "listen.submissions": f"127.0.0.1:{self.submissions_port}",
        }
        self.config.update(extra_config or {})
        self.write_config()

    def write_config(self):
        text = "".join(f"{k} = {v}\n" for k, v in self.config.items())
        (self.data / "dijk.conf").write_text(text)

    def cli(self, *args, input=None, check=True):
        r = subprocess.run(
            [DIJK, *args, "--data", str(self.data)],
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True,
            timeout=60,
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"dijk {' '.join(args)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
            )
        return r

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [DIJK, "serve", "--data", str(self.data)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for port in (self.smtp_port, self.submission_port):
            wait_port(port)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.log.close()
        self.proc = None
        return code

    def logs(self):
        return self.log_path.read_text(errors="replace")

    def children(self, name):
        """PIDs of the master's children named dijk-NAME (auth, smtp)."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        pids = []
        for pid in out:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm == f"dijk-{name}":
                pids.append(int(pid))
        return pids

    # The store, seen through the admin CLI.
    def messages(self, user, mailbox="INBOX"):
        r = self.cli("mail", "list", user, "--mailbox", mailbox)
        rows = []
        for line in r.stdout.decode().splitlines():
            uid, size, date = line.split()
            rows.append((int(uid), int(size), int(date)))
        return rows

    def message(self, user, uid, mailbox="INBOX"):
        return self.cli("mail", "get", user, str(uid), "--mailbox", mailbox).stdout

    def all_messages(self, user, mailbox="INBOX"):
        return [self.message(user, uid, mailbox) for uid, _, _ in self.messages(user, mailbox)]

    def queue(self):
        return self.cli("queue", "list").stdout.decode().splitlines()


@pytest.fixture
def dijk_factory(tmp_path):
    servers = []

    def make(name="data", extra_config=None, start=True):
        d = Dijk(tmp_path / name, extra_config)
        servers.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in servers:
        code = d.stop()
        assert code in (None, 0), f"dijk serve exited with {code}:\n{d.logs()[-4000:]}"
        assert "panic" not in d.logs(), d.logs()[-4000:]
        assert "ERROR: AddressSanitizer" not in d.logs(), d.logs()[-8000:]
        assert "runtime error:" not in d.logs(), d.logs()[-8000:]


@pytest.fixture
def dijk(dijk_factory):
    return dijk_factory()
