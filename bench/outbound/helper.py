"""Python parts of the outbound delivery benchmark (bench/outbound/run.sh).

    helper.py dns   --workdir DIR --domain DOMAIN --mx-address IP --ttl SECONDS
                    --ready FILE
    helper.py fill  --port PORT --sender ADDR [--password PW] --messages N
                    --size BYTES --connections C --domain DOMAIN
    helper.py drain --counter FILE --messages N --timeout SECONDS
                    --pid SERVER_PID --pid SINK_PID -- FLUSH COMMAND...
    helper.py check --dump DIR --messages N --size BYTES --domain DOMAIN
                    --sender ADDR

dns: serves DOMAIN's zone with tests/support/dnsserver.py (Debian's nsd on
127.0.0.1): "@ MX 10 mx" and "mx A IP". Writes nsd's address
("127.0.0.1@PORT", dijk's dns.resolver form) to the ready file once nsd
answers, then runs until SIGTERM or SIGINT, when it stops nsd.

fill: submits N messages of exactly BYTES bytes over C parallel SMTP
sessions to 127.0.0.1:PORT, many messages per session (a dijk login costs
an Argon2id hash: once per session, not per message). With --password it
logs in with AUTH PLAIN (dijk's submission port, which allows it without
TLS from loopback); without, it just sends (Postfix's smtpd, which relays
for mynetworks). Message k goes to rcptK@DOMAIN (K zero-padded to 6
digits) and carries its number in Subject, Message-ID and its last line,
so that the sink's copy names the message. Prints the seconds it took;
exits 1 on any refusal.

drain: the timed part. Notes the CPU time used so far by the server's
processes and by smtp-sink (each with its descendants and reaped
children) and by the whole machine; takes t0; runs the flush command;
then polls the counter file smtp-sink -c writes ("sess=S quit=Q mesg=M\r",
updated as each message's final dot arrives) every 20 ms until M reaches
N or the timeout passes, and takes the CPU figures again. Prints
"SECONDS FIRST FLUSH SESSIONS MESSAGES SERVER_CPU SINK_CPU OTHER_CPU":
seconds from t0 to the Nth message, to the first one, and for the flush
command to return; the sink's counters then; CPU seconds over the drain
used by the server, by the sink and by everything else on the machine.
Exits 1 on timeout or if the flush command fails.

check: reads every file smtp-sink -d wrote and checks that each of the N
messages arrived exactly once and whole (its recipient, its own number in
Message-ID, its body byte for byte). Prints one line per kind of problem
(missing, duplicated, damaged, unknown) naming the messages, and exits 1
if there is any.
"""

import argparse
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

# Words for the body; any text would do, this keeps lines readable.
FILLER = ("The quarterly figures are attached as promised; please check the "
          "totals against last month's before Friday and tell me what is off.")


def rcpt(k, domain):
    return f"rcpt{k:06d}@{domain}"


def make_message(k, sender, domain, size):
    """Message k, exactly size bytes, CRLF line ends, no line over 78."""
    head = (f"From: Benchmark <{sender}>\r\n"
            f"To: <{rcpt(k, domain)}>\r\n"
            f"Subject: outbound benchmark message {k:06d}\r\n"
            f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <bench-{k:06d}@{sender.split('@')[1]}>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=us-ascii\r\n"
            f"\r\n").encode()
    tail = f"end of message {k:06d}\r\n".encode()
    room = size - len(head) - len(tail)
    if room < 0:
        raise SystemExit(f"helper: --size {size} is too small for the headers")
    line = (FILLER[:70] + "\r\n").encode()
    body = line * (room // len(line))
    rest = room - len(body)
    if rest >= 3:
        body += b"x" * (rest - 2) + b"\r\n"
    elif rest > 0:
        # One or two bytes left: lengthen the last full line instead.
        body = body[:-2] + b"x" * rest + b"\r\n" if body else b"x" * rest
    data = head + body + tail
    assert len(data) == size, (len(data), size)
    return data


# --- dns --------------------------------------------------------------------------


def cmd_dns(a):
    from dnsserver import DnsServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    dns = DnsServer(a.workdir, {a.domain: ["@ MX 10 mx", f"mx A {a.mx_address}"]},
                    ttl=a.ttl)
    try:
        dns.start()
        if dns.query(a.domain, "MX")[1] != 1:
            raise SystemExit(f"helper: nsd does not answer the MX of {a.domain}")
        tmp = a.ready + ".tmp"
        Path(tmp).write_text(dns.address + "\n")
        os.rename(tmp, a.ready)
        while not stop.wait(1):
            pass
    finally:
        dns.stop()
    return 0


# --- fill -------------------------------------------------------------------------


def cmd_fill(a):
    errors = []
    lock = threading.Lock()
    next_k = [1]

    def take():
        with lock:
            if errors or next_k[0] > a.messages:
                return None
            k = next_k[0]
            next_k[0] += 1
            return k

    def session():
        try:
            with smtplib.SMTP("127.0.0.1", a.port, local_hostname="fill.bench.test",
                              timeout=120) as s:
                s.ehlo()
                if a.password is not None:
                    s.login(a.sender, a.password)
                while True:
                    k = take()
                    if k is None:
                        return
                    to = rcpt(k, a.domain)
                    refused = s.sendmail(a.sender, [to],
                                         make_message(k, a.sender, a.domain, a.size))
                    if refused:
                        raise RuntimeError(f"message {k}: refused {refused}")
        except Exception as e:  # noqa: BLE001 (any failure fails the fill)
            with lock:
                errors.append(f"{type(e).__name__}: {e}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=session) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"helper: filling failed: {errors[0]}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    print(f"{seconds:.3f}")
    return 0


# --- wait -------------------------------------------------------------------------

COUNTER = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


def read_counter(path):
    """The last (sess, mesg) smtp-sink wrote; (0, 0) before the first."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256))
            tail = f.read()
    except FileNotFoundError:
        return 0, 0
    last = None
    for m in COUNTER.finditer(tail):
        last = m
    if last is None:
        return 0, 0
    return int(last.group(1)), int(last.group(3))


def cmd_drain(a):
    # Everything before t0 is outside the measurement: this process is
    # already running and polling when the flush starts, so its own
    # start-up on a busy machine cannot delay the clock's stop.
    server0, sink0 = (tree_cpu(pid) or 0 for pid in a.pid)
    machine0 = machine_cpu()
    t0 = time.time()
    flush = subprocess.run(a.flush, stdin=subprocess.DEVNULL)
    flush_seconds = time.time() - t0
    if flush.returncode != 0:
        print(f"helper: {' '.join(a.flush)} exited with status {flush.returncode}",
              file=sys.stderr)
        return 1
    first = None
    while True:
        now = time.time()
        sessions, messages = read_counter(a.counter)
        if messages > 0 and first is None:
            first = now - t0
        if messages >= a.messages or now - t0 > a.timeout:
            break
        time.sleep(0.02)
    # The CPU counters at once, before anything else runs.
    server1, sink1 = (tree_cpu(pid) or 0 for pid in a.pid)
    machine1 = machine_cpu()
    server, sink = server1 - server0, sink1 - sink0
    print(f"{now - t0:.3f} {first if first is not None else -1:.3f} {flush_seconds:.3f} "
          f"{sessions} {messages} {server:.2f} {sink:.2f} "
          f"{machine1 - machine0 - server - sink:.2f}")
    return 0 if messages >= a.messages else 1


# --- CPU time ---------------------------------------------------------------------


def tree_cpu(root):
    """CPU seconds (user and system) used so far by process root, its
    descendants and the children it has reaped (whose time the kernel adds
    to its cutime and cstime); None if root is gone."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold anything.
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry)] = (int(fields[1]), [int(x) for x in fields[11:15]])
    if root not in stats:
        return None
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    ticks = sum(stats[root][1][2:4])
    todo = [root]
    while todo:
        pid = todo.pop()
        ticks += sum(stats[pid][1][0:2])
        todo += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """CPU seconds the whole machine has been busy (not idle, not waiting
    for I/O) since it booted."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    return 0.0


# --- check ------------------------------------------------------------------------


def ranges(numbers, limit=20):
    """'3, 7-9, 12' for sorted numbers, at most limit pieces."""
    pieces = []
    start = prev = None
    for n in numbers:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            pieces.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = n
    if start is not None:
        pieces.append(f"{start}" if start == prev else f"{start}-{prev}")
    more = f" and {len(pieces) - limit} more ranges" if len(pieces) > limit else ""
    return ", ".join(pieces[:limit]) + more


def cmd_check(a):
    rcpt_re = re.compile(rb"^X-Rcpt-Args: <rcpt(\d{6})@" + re.escape(a.domain.encode()) +
                         rb">", re.M | re.I)
    seen = {}
    damaged = []
    unknown = []
    files = sorted(os.listdir(a.dump))
    for name in files:
        data = Path(a.dump, name).read_bytes()
        found = rcpt_re.findall(data)
        if len(found) != 1:
            unknown.append(name)
            continue
        k = int(found[0])
        seen.setdefault(k, []).append(name)
        # The body as sent, byte for byte (smtp-sink stores LF line ends
        # and ends the file with an empty line); the servers add header
        # fields, never body lines.
        sent = make_message(k, a.sender, a.domain, a.size)
        body = sent.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
        if (f"Message-ID: <bench-{k:06d}@".encode() not in data or
                not data.endswith(b"\n\n" + body + b"\n")):
            damaged.append(k)
    missing = [k for k in range(1, a.messages + 1) if k not in seen]
    duplicated = sorted(k for k, names in seen.items() if len(names) > 1)
    outside = sorted(k for k in seen if not 1 <= k <= a.messages)
    problems = 0
    if missing:
        problems += 1
        print(f"missing: {len(missing)} messages never reached the sink: {ranges(missing)}")
    if duplicated:
        problems += 1
        extra = sum(len(seen[k]) - 1 for k in duplicated)
        print(f"duplicated: {len(duplicated)} messages arrived more than once "
              f"({extra} extra copies): {ranges(duplicated)}")
    if damaged:
        problems += 1
        print(f"damaged: {len(damaged)} copies incomplete or altered: "
              f"{ranges(sorted(set(damaged)))}")
    if outside or unknown:
        problems += 1
        print(f"unknown: {len(unknown)} files without one known recipient "
              f"(e.g. {unknown[:3]}), {len(outside)} numbers out of range")
    if not problems:
        print(f"ok: {a.messages} messages, each exactly once and whole ({len(files)} files)")
    return 1 if problems else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("dns")
    d.add_argument("--workdir", required=True)
    d.add_argument("--domain", required=True)
    d.add_argument("--mx-address", required=True)
    d.add_argument("--ttl", type=int, default=3600)
    d.add_argument("--ready", required=True)
    f = sub.add_parser("fill")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--sender", required=True)
    f.add_argument("--password")
    f.add_argument("--messages", type=int, required=True)
    f.add_argument("--size", type=int, required=True)
    f.add_argument("--connections", type=int, default=4)
    f.add_argument("--domain", required=True)
    w = sub.add_parser("drain")
    w.add_argument("--counter", required=True)
    w.add_argument("--messages", type=int, required=True)
    w.add_argument("--timeout", type=float, required=True)
    w.add_argument("--pid", type=int, action="append", required=True,
                   help="twice: the server under test, then smtp-sink")
    w.add_argument("flush", nargs="+", help="the flush command (after --)")
    c = sub.add_parser("check")
    c.add_argument("--dump", required=True)
    c.add_argument("--messages", type=int, required=True)
    c.add_argument("--size", type=int, required=True)
    c.add_argument("--domain", required=True)
    c.add_argument("--sender", required=True)
    a = p.parse_args()
    return {"dns": cmd_dns, "fill": cmd_fill, "drain": cmd_drain,
            "check": cmd_check}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
