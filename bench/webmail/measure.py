"""The webmail benchmark's client (bench/webmail/run.sh): logs in as the
webmail does, then times JMAP requests over one keep-alive loopback HTTP
connection and checks every answer against the manifest that fill.c
wrote (which message each receivedAt names, its conversation, and which
of the searched words it holds).

A request's time runs from just before its bytes are sent to just after
the last byte of the answer has been read: the server's time plus the
loopback and this small client (the Core/echo case shows that floor).
JSON is encoded before the clock starts and decoded after it stops. The
client speaks HTTP/1.1 itself, over a plain socket, so that it can set
TCP_QUICKACK before every read (--quickack).

Prints a line per case and, last, "RESULT ..." lines; exits 1 when any
request failed or any answer was wrong."""
import argparse
import calendar
import gzip
import json
import math
import os
import socket
import sys
import time

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
# What the webmail's message list asks for (web/list.js, LIST_PROPERTIES).
LIST_PROPERTIES = ["id", "threadId", "mailboxIds", "keywords", "from", "to",
                   "subject", "receivedAt", "preview", "hasAttachment", "size"]
PAGE = 50
# fill.c: message k was APPENDed with internal date BASE + k * STEP.
BASE_TIME = 1732233600
STEP_SECONDS = 300


class Failure(Exception):
    pass


class Client:
    """One logged-in browser tab: a session cookie, its CSRF value, and one
    keep-alive HTTP/1.1 connection.

    With quickack, the client asks its kernel (TCP_QUICKACK, before every
    read) to acknowledge what arrives at once instead of delaying the ACK
    up to 40 ms as usual: that takes the stall of a server that writes a
    response in pieces with Nagle's algorithm on out of the figures,
    leaving the server's own time (a browser would see the stall)."""

    def __init__(self, port, user, password, quickack=False):
        self.port = port
        self.quickack = quickack
        self.origin = f"http://127.0.0.1:{port}"
        self.sock = None
        self.connections = 0
        self.cookie = self.csrf = None
        status, headers, body = self.send("POST", "/api/login",
                                          json.dumps({"username": user, "password": password}).encode())
        if status != 200:
            raise Failure(f"login: HTTP {status}: {body[:200]!r}")
        self.cookie = headers["set-cookie"].split(";")[0]
        self.csrf = json.loads(body)["csrf"]
        status, _, body = self.send("GET", "/jmap/session", None)
        if status != 200:
            raise Failure(f"session: HTTP {status}")
        session = json.loads(body)
        self.account = session["primaryAccounts"][MAIL]

    def connect(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1

    def recv(self):
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        return data

    def exchange(self, request):
        """Sends one request, reads its response: (status, headers, body)."""
        self.sock.sendall(request)
        buf = b""
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self.recv()
        lines = buf[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise Failure(f"response without Content-Length: {lines}")
        size = end + 4 + int(headers["content-length"])
        while len(buf) < size:
            buf += self.recv()
        if len(buf) > size:
            raise Failure("bytes after the response")
        return status, headers, buf[end + 4:]

    def send(self, method, path, body):
        """(status, headers, body bytes); reconnects once if the server
        closed the kept-alive connection."""
        h = {"Host": f"127.0.0.1:{self.port}", "Origin": self.origin,
             "Accept-Encoding": "gzip, deflate", "Content-Type": "application/json"}
        if self.cookie:
            h["Cookie"] = self.cookie
            h["X-Dijk-CSRF"] = self.csrf
        if body is not None:
            h["Content-Length"] = str(len(body))
        request = (f"{method} {path} HTTP/1.1\r\n" +
                   "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + (body or b"")
        for attempt in (0, 1):
            if self.sock is None:
                self.connect()
            try:
                status, headers, data = self.exchange(request)
            except (ConnectionError, BrokenPipeError):
                if attempt:
                    raise
                self.sock.close()
                self.sock = None
                continue
            if headers.get("connection", "").lower() == "close":
                self.sock.close()
                self.sock = None
            return status, headers, data
        raise AssertionError("unreachable")

    def timed_api(self, body):
        """(seconds, parsed response) of one POST /jmap/api of body bytes."""
        if self.sock is None:
            self.connect()  # not timed
        t0 = time.perf_counter()
        status, headers, data = self.send("POST", "/jmap/api", body)
        seconds = time.perf_counter() - t0
        if headers.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        if status != 200:
            raise Failure(f"HTTP {status}: {data[:300]!r}")
        return seconds, json.loads(data)

    def api(self, calls):
        return self.timed_api(request_body(calls))[1]["methodResponses"]


def request_body(calls):
    return json.dumps({"using": [CORE, MAIL], "methodCalls": calls}).encode()


def received_to_k(text):
    t = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    k, rest = divmod(t - BASE_TIME, STEP_SECONDS)
    if rest:
        raise Failure(f"receivedAt {text} names no message of the benchmark")
    return k


class Manifest:
    def __init__(self, path, words):
        self.roots = {}
        self.masks = {}
        with open(path) as f:
            for line in f:
                k, root, mask = map(int, line.split())
                self.roots[k] = root
                self.masks[k] = mask
        self.words = words
        self.newest_first = sorted(self.roots, reverse=True)
        self.thread_sizes = {}
        for k, root in self.roots.items():
            self.thread_sizes[root] = self.thread_sizes.get(root, 0) + 1

    def inbox(self, collapse):
        """(first page, total) of the INBOX, newest first."""
        if not collapse:
            return self.newest_first[:PAGE], len(self.newest_first)
        seen, page = set(), []
        for k in self.newest_first:
            if self.roots[k] not in seen:
                seen.add(self.roots[k])
                if len(page) < PAGE:
                    page.append(k)
        return page, len(seen)

    def search(self, word):
        bit = 1 << self.words.index(word)
        hits = [k for k in self.newest_first if self.masks[k] & bit]
        return hits[:PAGE], len(hits)


def check(case, responses, expect_page, expect_total, inbox_id, manifest):
    """Raises Failure unless the answer is exactly what the manifest says."""
    names = [r[0] for r in responses]
    if names[:2] != ["Email/query", "Email/get"]:
        raise Failure(f"{case['name']}: method responses {names}: {json.dumps(responses)[:400]}")
    q, g = responses[0][1], responses[1][1]
    ids = q["ids"]
    if len(ids) != len(expect_page):
        raise Failure(f"{case['name']}: {len(ids)} ids, expected {len(expect_page)}")
    if case["total"]:
        if q.get("total") != expect_total:
            raise Failure(f"{case['name']}: total {q.get('total')}, expected {expect_total}")
    emails = {e["id"]: e for e in g["list"]}
    if len(g["list"]) != len(ids) or set(emails) != set(ids) or g["notFound"]:
        raise Failure(f"{case['name']}: Email/get returned {len(g['list'])} of {len(ids)} emails"
                      f" (notFound {g['notFound'][:5]})")
    got = []
    for i in ids:
        e = emails[i]
        missing = [p for p in LIST_PROPERTIES if p not in e]
        if missing:
            raise Failure(f"{case['name']}: Email {i} lacks {missing}")
        if inbox_id not in e["mailboxIds"] or not e["from"] or not isinstance(e["preview"], str):
            raise Failure(f"{case['name']}: Email {i} is odd: {json.dumps(e)[:300]}")
        got.append(received_to_k(e["receivedAt"]))
    # The exact messages, in order: for a search, the newest 50 of those
    # the generator put the word in (so each holds it).
    if got != expect_page:
        raise Failure(f"{case['name']}: got messages {got[:8]}..., expected {expect_page[:8]}...")
    if case["collapse"]:
        threads = [emails[i]["threadId"] for i in ids]
        if len(set(threads)) != len(threads):
            raise Failure(f"{case['name']}: collapseThreads returned two Emails of a thread")
    for name, result, _ in responses[2:]:
        if name == "Thread/get":
            sizes = {t["id"]: len(t["emailIds"]) for t in result["list"]}
            for i in ids:
                e = emails[i]
                k = received_to_k(e["receivedAt"])
                want = manifest.thread_sizes[manifest.roots[k]]
                if sizes.get(e["threadId"]) != want:
                    raise Failure(f"{case['name']}: thread of message {k} has"
                                  f" {sizes.get(e['threadId'])} emails, expected {want}")
        elif name == "SearchSnippet/get":
            if len(result["list"]) != len(ids):
                raise Failure(f"{case['name']}: {len(result['list'])} snippets for {len(ids)} emails")
        else:
            raise Failure(f"{case['name']}: {name}: {json.dumps(result)[:300]}")


def percentile(sorted_values, p):
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_case(client, case, body, runs, warmup, budget, verify):
    for _ in range(warmup):
        _, resp = client.timed_api(body)
        verify(resp)
    times = []
    start = time.monotonic()
    while len(times) < runs:
        seconds, resp = client.timed_api(body)
        verify(resp)
        times.append(seconds)
        if time.monotonic() - start > budget and len(times) >= 10:
            break
    times.sort()
    return times


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", default="BENCH_PASSWORD")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--words", required=True, help="label=word,...")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--quickack", action="store_true",
                    help="acknowledge at once (TCP_QUICKACK): the server's time without delayed-ACK stalls")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds per case after which it stops early (at least 10 runs)")
    args = ap.parse_args()
    labelled = [w.split("=", 1) for w in args.words.split(",")]
    words = [w for _, w in labelled]
    manifest = Manifest(args.manifest, words)
    client = Client(args.port, args.user, os.environ[args.password_env], args.quickack)
    boxes = client.api([["Mailbox/get", {"accountId": client.account,
                                          "properties": ["name", "role", "totalEmails"]}, "m"]])
    inbox = next(m for m in boxes[0][1]["list"] if m["role"] == "inbox")
    if inbox["totalEmails"] != len(manifest.roots):
        raise Failure(f"INBOX has {inbox['totalEmails']} emails, expected {len(manifest.roots)}")
    account, inbox_id = client.account, inbox["id"]

    def page_calls(filt, collapse, total, extra=()):
        calls = [
            ["Email/query", {"accountId": account, "filter": filt,
                             "sort": [{"property": "receivedAt", "isAscending": False}],
                             "collapseThreads": collapse, "position": 0, "limit": PAGE,
                             "calculateTotal": total}, "0"],
            ["Email/get", {"accountId": account,
                           "#ids": {"resultOf": "0", "name": "Email/query", "path": "/ids"},
                           "properties": LIST_PROPERTIES}, "1"],
        ]
        for name in extra:
            if name == "Thread/get":
                calls.append(["Thread/get", {"accountId": account, "#ids": {
                    "resultOf": "1", "name": "Email/get", "path": "/list/*/threadId"}}, "2"])
            else:
                calls.append(["SearchSnippet/get", {"accountId": account, "filter": filt, "#emailIds": {
                    "resultOf": "0", "name": "Email/query", "path": "/ids"}}, "3"])
        return calls

    cases = []
    for collapse, total, extra, name in [
            (False, False, (), "inbox"),
            (True, False, (), "inbox_threads"),
            (True, True, (), "inbox_threads_total"),
            (True, True, ("Thread/get",), "inbox_webmail")]:
        page, count = manifest.inbox(collapse)
        cases.append({"name": name, "collapse": collapse, "total": total, "page": page,
                      "count": count, "calls": page_calls({"inMailbox": inbox_id}, collapse, total, extra)})
    for label, word in labelled:
        page, count = manifest.search(word)
        for total, extra, suffix in [(False, (), ""), (True, ("SearchSnippet/get",), "_webmail")]:
            cases.append({"name": f"search_{label}{suffix}", "word": word, "collapse": False,
                          "total": total, "page": page, "count": count,
                          "calls": page_calls({"text": word}, False, total, extra)})

    failed = False
    results = {}
    print(f"load average before measuring: {load_average()}")

    # The floor: the smallest request through the same path (session,
    # CSRF and Origin checks, JSON in and out).
    echo_body = json.dumps({"using": [CORE], "methodCalls": [["Core/echo", {"ping": 1}, "e"]]}).encode()

    def verify_echo(resp):
        if resp["methodResponses"] != [["Core/echo", {"ping": 1}, "e"]]:
            raise Failure(f"Core/echo: {resp}")
    times = run_case(client, None, echo_body, args.runs, args.warmup, args.budget, verify_echo)
    results["echo"] = times
    print(f"case echo runs={len(times)} median_ms={percentile(times, 50) * 1e3:.2f} "
          f"p99_ms={percentile(times, 99) * 1e3:.2f} min_ms={times[0] * 1e3:.2f}")

    for case in cases:
        body = request_body(case["calls"])

        def verify(resp, case=case):
            check(case, resp["methodResponses"], case["page"], case["count"], inbox_id, manifest)
        try:
            times = run_case(client, case, body, args.runs, args.warmup, args.budget, verify)
        except (Failure, KeyError, TypeError, ValueError) as e:
            print(f"case {case['name']} FAILED: {e}", file=sys.stderr)
            failed = True
            continue
        results[case["name"]] = times
        print(f"case {case['name']} matches={case['count']} runs={len(times)}"
              f" median_ms={percentile(times, 50) * 1e3:.2f} p99_ms={percentile(times, 99) * 1e3:.2f}"
              f" min_ms={times[0] * 1e3:.2f} max_ms={times[-1] * 1e3:.2f}"
              f"{' word=' + case['word'] if case.get('word') else ''}", flush=True)
    print(f"load average after measuring: {load_average()}")
    print(f"connections opened: {client.connections}")

    # The targets: the inbox page as the webmail asks for it (Email/query
    # with collapseThreads and calculateTotal, Email/get) under 20 ms,
    # every search (Email/query, Email/get) under 50 ms, by the median.
    def ms(name, p):
        return percentile(results[name], p) * 1e3 if name in results else float("nan")
    target_inbox = "inbox_threads_total"
    inbox_ok = ms(target_inbox, 50) < 20
    search_names = [f"search_{label}" for label, _ in labelled]
    search_ok = all(ms(n, 50) < 50 for n in search_names)
    tag = "_quickack" if args.quickack else ""
    print(f"RESULT webmail_floor{tag} echo_median_ms={ms('echo', 50):.2f} echo_p99_ms={ms('echo', 99):.2f}")
    print(f"RESULT webmail_inbox{tag} " + " ".join(
        f"{c['name']}_median_ms={ms(c['name'], 50):.2f} {c['name']}_p99_ms={ms(c['name'], 99):.2f}"
        for c in cases if c["name"].startswith("inbox")) +
        f" messages={len(manifest.roots)} target_ms=20 target={'met' if inbox_ok else 'missed'}")
    print(f"RESULT webmail_search{tag} " + " ".join(
        f"{c['name']}_median_ms={ms(c['name'], 50):.2f} {c['name']}_p99_ms={ms(c['name'], 99):.2f}"
        for c in cases if c["name"].startswith("search")) +
        f" messages={len(manifest.roots)} target_ms=50 target={'met' if search_ok else 'missed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"measure: {e}", file=sys.stderr)
        sys.exit(1)
