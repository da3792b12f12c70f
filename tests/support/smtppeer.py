"""A scripted SMTP server for tests: a foreign MTA that dijk delivers to.

    from smtppeer import SmtpPeer, make_certificate, by_attempt, for_rcpt

    cert = make_certificate(tmp_path / "cert", "mx.p.test")
    peer = SmtpPeer("127.0.0.3", port, hostname="mx.p.test",
                    starttls=cert, replies={"RCPT": by_attempt("451 4.3.0 later", None)})
    peer.start()
    ... peer.wait_delivered(1) ...
    peer.stop()

SmtpPeer(host, port=None, hostname="peer.test", pipelining=True,
         starttls=None, size=10485760, eightbitmime=True, extensions=(),
         replies=None, pipeline_wait=0.2, timeout=30)
  Listens on host:port (port None: a free one, see .port) with one thread
  per connection. It advertises PIPELINING, SIZE, 8BITMIME and
  ENHANCEDSTATUSCODES as told, STARTTLS when starttls is a Certificate
  (from make_certificate) and TLS is not active yet, plus any lines in
  extensions. It receives whole transactions (MAIL, RCPT..., DATA) and
  keeps them; it never relays anything.

  replies: {event: spec}, events "CONNECT" (the greeting), "EHLO",
  "HELO", "MAIL", "RCPT", "DATA" (the reply to the DATA command), "DOT"
  (the reply after the message), "RSET", "NOOP", "QUIT", "STARTTLS".
  A spec is
    - a reply string ("451 4.3.0 Try later"; several lines separated by
      "\\n", written with the continuation dashes for you);
    - a list, indexed by the session's number (0 for the first
      connection, 1 for the next...), the last element repeating;
    - a callable(session, argument) -> reply, where argument is the text
      after the verb (for RCPT: the address without <>; for DOT: the
      message bytes);
  and any of them may give None for the default reply. The reply "DROP"
  closes the connection without answering; a 421 reply closes it after
  answering.

  Pipelining is observed, not inferred: before answering MAIL and RCPT
  (and, with pipeline_wait_all=True, every command) the peer waits
  pipeline_wait seconds and takes in whatever the client has sent by
  then; every command that was already complete in the input before
  the reply to the previous command went out is marked early=True.
  A client that waits for each reply never has an early command; one that
  pipelines its MAIL, RCPT and DATA has its RCPTs and DATA marked early.

Recorded (thread-safe once a session has ended; .sessions grows as
clients connect):
  peer.sessions: [Session], in connection order, each with
    .index, .client (ip, port), .helo (the last EHLO/HELO argument),
    .esmtp (EHLO rather than HELO), .tls (STARTTLS completed), .sni (the
    server name the client asked for in TLS, or None), .tls_version,
    .commands: [Command(line, verb, tls, early, reply)] in the order
    received, .transactions: [Transaction], .data_before_354 (message
    bytes arrived before the 354 went out: a protocol error),
    .plaintext_after_starttls (bytes after STARTTLS before the
    handshake), .quit (ended with QUIT), .ended (the connection is over),
    .started and .ended_at (time.monotonic() values), .verbs() (the
    command verbs in order).
  Transaction: .mail_from (address without <>), .mail_params (list),
    .rcpts (accepted addresses), .rejected ({address: reply}),
    .data (the message bytes, dot-unstuffed, CRLF kept; None if DATA was
    never reached), .reply (the reply after the message), .accepted
    (that reply was 2xx), .tls.
  peer.delivered(): the accepted transactions of all sessions, in order.
  peer.wait_delivered(n, timeout), peer.wait_sessions(n, timeout): poll
    until there are at least n, and return them.

start() can be called again after stop(): the same address, a new
listening socket, the session numbers go on. stop() also cuts every
open connection, as a crashed MTA would.

make_certificate(directory, hostname) -> Certificate with .cert and .key
  (PEM paths), .spki_sha256 and .cert_sha256 (hex digests of the public
  key and of the certificate, DER; for TLSA 3 1 1 and 3 0 1 records).
"""

import hashlib
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from pathlib import Path

MAX_LINE = 1 << 20


class Certificate:
    def __init__(self, cert, key):
        self.cert = str(cert)
        self.key = str(key)
        der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text())
        self.cert_sha256 = hashlib.sha256(der).hexdigest()
        spki = subprocess.run(
            ["openssl", "pkey", "-in", self.key, "-pubout", "-outform", "DER"],
            capture_output=True, check=True, timeout=30).stdout
        self.spki_sha256 = hashlib.sha256(spki).hexdigest()


def make_certificate(directory, hostname):
    """A self-signed EC certificate for hostname (CN and subjectAltName)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{hostname}.crt", directory / f"{hostname}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "30", "-subj", f"/CN={hostname}",
         "-addext", f"subjectAltName=DNS:{hostname}",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True, timeout=60)
    return Certificate(cert, key)


def by_attempt(*replies):
    """A spec that answers replies[i] in session i (the last repeats)."""
    return list(replies)


def for_rcpt(mapping, default=None):
    """A RCPT spec: mapping of address (case-insensitive) to reply."""
    lowered = {k.lower(): v for k, v in mapping.items()}

    def spec(session, address):
        return lowered.get(address.lower(), default)
    return spec


class Command:
    def __init__(self, line, verb, tls, early):
        self.line, self.verb, self.tls, self.early = line, verb, tls, early
        self.reply = None

    def __repr__(self):
        flags = ("early " if self.early else "") + ("tls " if self.tls else "")
        return f"<{flags}{self.line!r} -> {self.reply!r}>"


class Transaction:
    def __init__(self, mail_from, params, tls):
        self.mail_from, self.mail_params, self.tls = mail_from, params, tls
        self.rcpts, self.rejected = [], {}
        self.data, self.reply, self.accepted = None, None, False

    def __repr__(self):
        return (f"<Transaction {self.mail_from!r} -> {self.rcpts} rejected={self.rejected} "
                f"reply={self.reply!r} {len(self.data or b'')} bytes>")


class Session:
    def __init__(self, index, client):
        self.index, self.client = index, client
        self.helo, self.esmtp = None, False
        self.tls, self.sni, self.tls_version = False, None, None
        self.commands, self.transactions = [], []
        self.data_before_354 = False
        self.plaintext_after_starttls = b""
        self.quit, self.ended = False, False
        self.started, self.ended_at = time.monotonic(), None

    def verbs(self):
        return [c.verb for c in self.commands]

    def __repr__(self):
        return (f"<Session {self.index} from {self.client} tls={self.tls} "
                f"commands={self.commands} transactions={self.transactions}>")


class _Closed(Exception):
    pass


def _address(arg):
    """The address inside <...> at the start of arg, and the rest's words."""
    arg = arg.strip()
    if arg.startswith("<") and ">" in arg:
        end = arg.index(">")
        return arg[1:end], arg[end + 1:].split()
    words = arg.split()
    return (words[0] if words else ""), words[1:]


def _format(reply):
    lines = reply.split("\n")
    out = [line[:3] + ("-" if i < len(lines) - 1 else " ") + line[4:]
           for i, line in enumerate(lines)]
    return ("\r\n".join(out) + "\r\n").encode()


class _Connection:
    """One SMTP session on the peer's side."""

    def __init__(self, peer, sock, session):
        self.peer, self.sock, self.session = peer, sock, session
        self.buf = b""
        self.complete_before_reply = 0
        self.transaction = None

    # --- input
    def _recv(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError, OSError, socket.timeout):
            raise _Closed()
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def _drain(self):
        """Takes in everything that has arrived, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return
                except (OSError, ssl.SSLError):
                    return
                if not chunk:
                    return
                self.buf += chunk
        finally:
            try:
                self.sock.settimeout(self.peer.timeout)
            except OSError:
                pass

    def _line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise _Closed()
            self._recv()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    # --- output
    def _send(self, reply):
        if reply == "DROP":
            raise _Closed()
        # The lines complete now arrived before this reply: pipelined.
        self.complete_before_reply = self.buf.count(b"\n")
        try:
            self.sock.sendall(_format(reply))
        except (OSError, ssl.SSLError):
            raise _Closed()
        if reply.startswith("421"):
            raise _Closed()

    def _reply(self, event, argument, default, command=None, wait=False):
        reply = self.peer._scripted(event, self.session, argument)
        if reply is None:
            reply = default
        if wait and self.peer.pipeline_wait:
            time.sleep(self.peer.pipeline_wait)
            self._drain()
        if command is not None:
            command.reply = reply
        self._send(reply)
        return reply

    # --- the session
    def run(self):
        s = self.session
        try:
            self._reply("CONNECT", "", f"220 {self.peer.hostname} ESMTP peer")
            while True:
                self._command()
        except _Closed:
            pass
        finally:
            s.ended_at = time.monotonic()
            s.ended = True
            try:
                self.sock.close()
            except OSError:
                pass

    def _ehlo_lines(self):
        p = self.peer
        lines = [p.hostname]
        if p.pipelining:
            lines.append("PIPELINING")
        if p.size:
            lines.append(f"SIZE {p.size}")
        if p.eightbitmime:
            lines.append("8BITMIME")
        if p.starttls is not None and not self.session.tls:
            lines.append("STARTTLS")
        lines.append("ENHANCEDSTATUSCODES")
        lines += list(p.extensions)
        return "\n".join("250 " + x for x in lines)

    def _command(self):
        s, p = self.session, self.peer
        early = self.complete_before_reply > 0
        raw = self._line()
        if early:
            self.complete_before_reply -= 1
        line = raw.decode("utf-8", "replace")
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        c = Command(line, verb, s.tls, early)
        with p.lock:
            s.commands.append(c)
        wait = p.pipeline_wait_all or verb in ("MAIL", "RCPT")
        if verb in ("EHLO", "HELO"):
            s.helo, s.esmtp = arg.strip(), verb == "EHLO"
            self.transaction = None
            default = self._ehlo_lines() if verb == "EHLO" else f"250 {p.hostname}"
            self._reply(verb, arg, default, c, wait)
        elif verb == "STARTTLS" and p.starttls is not None and not s.tls:
            r = self._reply("STARTTLS", arg, "220 2.0.0 Ready to start TLS", c)
            if r.startswith("220"):
                self._starttls()
        elif verb == "MAIL":
            address, params = _address(arg.split(":", 1)[1] if ":" in arg else "")
            r = self._reply("MAIL", address, "250 2.1.0 Ok", c, wait)
            if r.startswith("2"):
                self.transaction = Transaction(address, params, s.tls)
                with p.lock:
                    s.transactions.append(self.transaction)
        elif verb == "RCPT":
            address, _ = _address(arg.split(":", 1)[1] if ":" in arg else "")
            if self.transaction is None:
                self._reply("RCPT", address, "503 5.5.1 Error: need MAIL command", c, wait)
                return
            r = self._reply("RCPT", address, "250 2.1.5 Ok", c, wait)
            if r.startswith("2"):
                self.transaction.rcpts.append(address)
            else:
                self.transaction.rejected[address] = r
        elif verb == "DATA":
            t = self.transaction
            if t is None or not t.rcpts:
                default = "554 5.5.1 Error: no valid recipients"
            else:
                default = "354 End data with <CR><LF>.<CR><LF>"
            r = self._reply("DATA", "", default, c, p.pipeline_wait_all)
            if r.startswith("354"):
                if self.buf:
                    s.data_before_354 = True
                self._message(t)
        elif verb == "RSET":
            self.transaction = None
            self._reply("RSET", arg, "250 2.0.0 Ok", c, wait)
        elif verb == "NOOP":
            self._reply("NOOP", arg, "250 2.0.0 Ok", c, wait)
        elif verb == "QUIT":
            s.quit = True
            self._reply("QUIT", arg, "221 2.0.0 Bye", c)
            raise _Closed()
        else:
            c.reply = "502 5.5.2 Error: command not recognized"
            self._send(c.reply)

    def _message(self, t):
        lines = []
        while True:
            while b"\n" not in self.buf:
                self._recv()
            line, self.buf = self.buf.split(b"\n", 1)
            if line in (b".\r", b"."):
                break
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line + b"\n")
        t.data = b"".join(lines)
        counter = self.peer._next_queue_id()
        reply = self.peer._scripted("DOT", self.session, t.data)
        if reply is None:
            reply = f"250 2.0.0 Ok: queued as PEER{counter}"
        t.reply = reply
        t.accepted = reply.startswith("2")
        self.transaction = None
        self._send(reply)

    def _starttls(self):
        s = self.session
        if self.buf:
            s.plaintext_after_starttls = self.buf
            self.buf = b""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.peer.starttls.cert, self.peer.starttls.key)

        def remember_sni(sslsock, name, context):
            s.sni = name
        ctx.sni_callback = remember_sni
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError):
            raise _Closed()
        s.tls = True
        s.tls_version = self.sock.version()
        self.transaction = None
        self.complete_before_reply = 0


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        peer = self.server.peer
        sock = self.request
        sock.settimeout(peer.timeout)
        with peer.lock:
            session = Session(peer._session_counter, self.client_address)
            peer._session_counter += 1
            peer.sessions.append(session)
            connection = _Connection(peer, sock, session)
            peer._open.add(connection)
        try:
            connection.run()
        finally:
            with peer.lock:
                peer._open.discard(connection)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpPeer:
    def __init__(self, host, port=None, hostname="peer.test", pipelining=True,
                 starttls=None, size=10485760, eightbitmime=True, extensions=(),
                 replies=None, pipeline_wait=0.2, pipeline_wait_all=False, timeout=30):
        self.host = host
        if port is None:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.port = port
        self.hostname = hostname
        self.pipelining = pipelining
        self.starttls = starttls
        self.size = size
        self.eightbitmime = eightbitmime
        self.extensions = tuple(extensions)
        self.replies = dict(replies or {})
        self.pipeline_wait = pipeline_wait
        self.pipeline_wait_all = pipeline_wait_all
        self.timeout = timeout
        self.sessions = []
        self.lock = threading.Lock()
        self._session_counter = 0
        self._queue_counter = 0
        self._open = set()
        self._server = None
        self._thread = None

    def _scripted(self, event, session, argument):
        spec = self.replies.get(event)
        if isinstance(spec, list):
            spec = spec[min(session.index, len(spec) - 1)] if spec else None
        if callable(spec):
            spec = spec(session, argument)
        return spec

    def _next_queue_id(self):
        with self.lock:
            self._queue_counter += 1
            return self._queue_counter

    def start(self):
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), _Handler)
        self._server.peer = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._server = self._thread = None
        with self.lock:
            connections = list(self._open)
        for c in connections:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def running(self):
        return self._server is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- what was received
    def transactions(self):
        with self.lock:
            return [t for s in self.sessions for t in s.transactions]

    def delivered(self):
        with self.lock:
            return [t for s in self.sessions for t in s.transactions if t.accepted]

    def wait_delivered(self, n, timeout=20.0):
        return self._wait(lambda: self.delivered(), n, timeout, "delivered messages")

    def wait_sessions(self, n, timeout=20.0, ended=False):
        def done():
            with self.lock:
                return [s for s in self.sessions if s.ended or not ended]
        return self._wait(done, n, timeout, "ended sessions" if ended else "sessions")

    def _wait(self, get, n, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            got = get()
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"peer {self.host}:{self.port}: {len(got)} {what} after {timeout} s, "
                    f"expected {n}; sessions: {self.sessions}")
            time.sleep(0.05)
