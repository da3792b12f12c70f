"""A private Postfix instance as a receiving peer for tests.

    from postfixpeer import PostfixPeer

    pf = PostfixPeer("127.0.0.4", port, domain="p.test", users=["carol"])
    pf.start()
    ... pf.wait_messages("carol", 1) ...
    pf.stop()

PostfixPeer(address, port, domain, users=("user",), hostname=None,
            tls=None, workdir=None)
  Postfix's smtpd listens on address:port (IPv4) and accepts mail for
  USER@domain for each of users, delivered by virtual(8) into a Maildir
  per user; it refuses other recipients of domain (550) and relays
  nothing. hostname (default "mx." + domain) is its myhostname and
  greeting. tls: a Certificate from smtppeer.make_certificate to offer
  STARTTLS (security level "may"), or None for no STARTTLS. The instance
  resolves nothing: no DNS for clients, no outbound delivery.

  The instance needs root (Postfix's master starts as root and its
  daemons run as the postfix user), the Debian postfix package, and a
  directory its daemons can traverse: workdir (default: a new directory
  under /tmp) is made mode 755, so do not put it below a private
  directory such as pytest's tmp_path. The system's own Postfix
  (/etc/postfix) is never used: every call passes -c with the private
  configuration directory.

  start(): `postfix check` (which builds the queue directories), then
  `postfix start`; waits for the 220 banner; raises RuntimeError with the
  log otherwise.
  stop(): `postfix stop`, and SIGKILL of its master if it lingers; then
  removes workdir unless it was given or keep=True; safe to call twice.
  messages(user): the delivered messages of user, as bytes, oldest first
  (Postfix prepends Return-Path and Delivered-To; Maildir files end their
  lines with LF, not CRLF).
  wait_messages(user, n, timeout=20): polls until user has at least n
  messages; returns them.
  queued(): the number of files in Postfix's queue (mail not delivered
  yet or deferred).
  log(): the instance's mail log.
"""

import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    def __init__(self, address, port, domain, users=("user",), hostname=None,
                 tls=None, workdir=None, keep=False):
        self.address, self.port, self.domain = address, int(port), domain
        self.users = list(users)
        self.hostname = hostname or f"mx.{domain}"
        self.tls = tls
        self.keep = keep or workdir is not None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="dijk-postfix-")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.conf = self.dir / "etc"
        self.spool = self.dir / "spool"
        self.mail = self.dir / "mail"
        self.maillog = self.dir / "maillog"
        self.started = False
        self._write_config()

    def _write_config(self):
        for d in (self.conf, self.spool, self.mail):
            d.mkdir(parents=True, exist_ok=True)
        uid = pwd.getpwnam("nobody").pw_uid
        gid = grp.getgrnam("nogroup").gr_gid
        os.chown(self.mail, uid, gid)
        mailboxes = ", ".join(f"{{{u}@{self.domain}={u}/}}" for u in self.users)
        tls = ["smtpd_tls_security_level = none"]
        if self.tls is not None:
            # smtpd reads the key as root, before it drops privileges.
            tls = ["smtpd_tls_security_level = may",
                   f"smtpd_tls_cert_file = {self.tls.cert}",
                   f"smtpd_tls_key_file = {self.tls.key}",
                   "smtpd_tls_received_header = yes",
                   "smtpd_tls_loglevel = 1"]
        main = [
            "# Private test instance, made by tests/support/postfixpeer.py.",
            "compatibility_level = 3.6",
            f"queue_directory = {self.spool}",
            f"data_directory = {self.dir}/lib",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            f"syslog_name = postfix-{self.domain}",
            f"myhostname = {self.hostname}",
            f"mydomain = {self.domain}",
            "myorigin = $myhostname",
            # Postfix refuses an inet_interfaces address no interface has,
            # and 127.0.0.X is only implied by lo's 127.0.0.1/8: master.cf
            # names the one address smtpd listens on instead.
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            # Nothing local, nothing relayed: the virtual mailboxes only.
            "mydestination =",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "relayhost =",
            "relay_domains =",
            "default_transport = error:this test instance relays nothing",
            "relay_transport = error:this test instance relays nothing",
            "smtpd_relay_restrictions = reject_unauth_destination",
            "smtpd_recipient_restrictions =",
            "smtpd_banner = $myhostname ESMTP Postfix",
            "smtpd_peername_lookup = no",
            "smtp_dns_support_level = disabled",
            "biff = no",
            f"virtual_mailbox_domains = {self.domain}",
            f"virtual_mailbox_base = {self.mail}",
            f"virtual_mailbox_maps = inline:{{ {mailboxes} }}",
            f"virtual_uid_maps = static:{uid}",
            f"virtual_gid_maps = static:{gid}",
            "delay_warning_time = 0",
            f"maillog_file = {self.maillog}",
            f"maillog_file_prefixes = {self.dir}",
            *tls,
        ]
        (self.conf / "main.cf").write_text("\n".join(main) + "\n")
        (self.conf / "master.cf").write_text(
            MASTER_CF.format(listen=f"{self.address}:{self.port}"))

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=timeout)

    def start(self, timeout=30.0):
        if self.started:
            return self
        r = self._postfix("check")
        if r.returncode != 0:
            raise RuntimeError(f"postfix check failed: {r.stdout}{r.stderr}")
        self.started = True
        r = self._postfix("start")
        if r.returncode != 0:
            self.stop()
            raise RuntimeError(f"postfix start failed: {r.stdout}{r.stderr}\n{self.log()}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.address, self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"Postfix did not answer on {self.address}:{self.port}\n{log}")
            time.sleep(0.1)

    def _master_pid(self):
        try:
            return int((self.spool / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.started:
            self.started = False
            pid = self._master_pid()
            self._postfix("stop")
            deadline = time.monotonic() + 15
            while pid is not None and time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                if pid is not None:
                    self._postfix("abort")
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if not self.keep and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- what arrived
    def messages(self, user):
        paths = []
        for sub in ("new", "cur"):
            d = self.mail / user / sub
            if d.is_dir():
                paths += [p for p in d.iterdir() if p.is_file()]
        # Maildir names begin with the delivery time in seconds, then a
        # sequence within it: sort by the file's change time, then name.
        paths.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in paths]

    def wait_messages(self, user, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages(user)
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Postfix {self.domain}: {len(got)} messages for {user} after {timeout} s,"
                    f" expected {n}; log:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def queued(self):
        n = 0
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            d = self.spool / sub
            if d.is_dir():
                n += sum(len(files) for _, _, files in os.walk(d))
        return n

    def log(self):
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""
