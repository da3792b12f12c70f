#!/usr/bin/env bash
# Webmail benchmark: how long dijk takes to answer the webmail's two
# heaviest everyday requests on a 100,000-message mailbox.
#
#   bash bench/webmail/run.sh build/dijk        (what `make bench` runs)
#
# 1. Setup: a fresh data directory in a temporary directory, one domain,
#    one user, a dijk.conf with only listen.imap and listen.http on free
#    loopback ports, `dijk serve`.
# 2. Filling: our generator (bench/webmail/fill.c, built here with cc -O2)
#    APPENDs BENCH_MESSAGES made-up messages (1 to 8 KiB; a few hundred
#    correspondents; Zipf-distributed words, so that some are in most
#    messages and some in a few dozen; 30 % replies threaded by
#    In-Reply-To and References; a fifth multipart/alternative, a tenth
#    with an attachment) to the user's INBOX over 4 IMAP connections with
#    4 APPENDs in flight on each (LITERAL+), and writes a manifest: each
#    message's conversation and which of the searched words it holds. Message k's internal date is fixed (k times
#    five minutes after 2024-11-22), so the JMAP receivedAt of an answer
#    names the message.
# 3. Measuring (bench/webmail/measure.py): logs in like the webmail
#    (POST /api/login with Origin, then the session cookie and the
#    X-Dijk-CSRF header) and sends, over one keep-alive HTTP/1.1
#    connection, each case BENCH_RUNS times after BENCH_WARMUP untimed
#    runs; reports median and p99 of the client-observed time (send to
#    last byte read: server time plus loopback and Python, whose floor is
#    the Core/echo case). Every answer is checked against the manifest
#    (the exact 50 messages in order, totals, thread sizes), and a wrong
#    one fails the benchmark.
#    All cases run twice: first as a browser's kernel would receive the
#    answers (ACKs delayed as usual), then with the client acknowledging
#    at once (TCP_QUICKACK before every read), which leaves out stalls
#    between a server that writes an answer in pieces with Nagle's
#    algorithm and a receiver that delays its ACK (up to 40 ms on Linux):
#    the second pass is the server's own time. RESULT lines of the second
#    pass end in _quickack.
#    Cases (Email/query + Email/get of its ids, by back-reference, with
#    the webmail's list properties, in one request):
#      inbox                 inMailbox INBOX, newest first, 50
#      inbox_threads         ... with collapseThreads
#      inbox_threads_total   ... and calculateTotal (what the webmail asks)
#      inbox_webmail         ... plus Thread/get (the webmail's whole request)
#      search_WORD           text filter, all mailboxes, 50
#      search_WORD_webmail   ... with calculateTotal and SearchSnippet/get
#                            (the webmail's whole search request)
#    for a very common, a medium, a rare and a two-letter word.
#
# Targets: median below 20 ms for inbox_threads_total, below 50 ms for
# every search_WORD.
#
# Environment:
#   BENCH_MESSAGES    messages in the INBOX (100000)
#   BENCH_RUNS        timed runs per case (200)
#   BENCH_WARMUP      untimed runs per case first (10)
#   BENCH_BUDGET      seconds after which a case stops early, with at
#                     least 10 runs (60)
#   BENCH_CONNECTIONS IMAP connections filling the mailbox (4)
#   BENCH_DEPTH       APPENDs in flight on each of them (4)
#   BENCH_QUICKACK=0  skip the second (TCP_QUICKACK) pass
#   BENCH_WORKERS     dijk's `workers` (0: one per core)
#   BENCH_TMPDIR      where the temporary directory goes (/tmp)
#   BENCH_KEEP=1      keep the temporary directory (data, logs, manifest)
#   BENCH_REUSE=DIR   measure again on the filled mailbox of a directory
#                     kept by BENCH_KEEP=1 (no setup, no filling; the
#                     directory is kept; BENCH_MESSAGES is its count)
set -euo pipefail

DIJK_ARG=${1:-build/dijk}
N=${BENCH_MESSAGES:-100000}
RUNS=${BENCH_RUNS:-200}
WARMUP=${BENCH_WARMUP:-10}
BUDGET=${BENCH_BUDGET:-60}
CONNECTIONS=${BENCH_CONNECTIONS:-4}
DEPTH=${BENCH_DEPTH:-4}
QUICKACK=${BENCH_QUICKACK:-1}
WORKERS=${BENCH_WORKERS:-0}
KEEP=${BENCH_KEEP:-0}
REUSE=${BENCH_REUSE:-}
DOMAIN=example.test
USER_NAME=bench@$DOMAIN
PASSWORD=bench-password-1
# The searched words, by how many of the messages hold them (at 100,000
# messages: about 80 %, 2.4 %, 28 messages, and "ok", which as a
# substring is in about 65 %): see fill.c's vocabulary.
WORDS=common=please,medium=invoice,rare=walrus,two_letters=ok

die() {
	echo "bench: $*" >&2
	exit 1
}

for v in N RUNS BUDGET CONNECTIONS DEPTH; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number, got '$WARMUP'"
[[ $WORKERS =~ ^[0-9]+$ ]] || die "BENCH_WORKERS must be a number, got '$WORKERS'"
[ "$N" -ge 100 ] || die "BENCH_MESSAGES must be at least 100"
[ -x "$DIJK_ARG" ] || die "no dijk binary at $DIJK_ARG (build with make)"
DIJK=$(realpath "$DIJK_ARG")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in cc python3; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (install build-essential and python3: make deps-test)"
done

if [ -n "$REUSE" ]; then
	[ -d "$REUSE/data" ] && [ -s "$REUSE/manifest" ] ||
		die "BENCH_REUSE=$REUSE is not a directory kept by BENCH_KEEP=1 after filling"
	T=$(realpath "$REUSE")
	KEEP=1
	N=$(wc -l <"$T/manifest")
else
	T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/dijk-webmail-bench.XXXXXX")
fi
DATA=$T/data
LOG=$T/dijk.log
DIJK_PID=
T_START=$EPOCHREALTIME

stop_dijk() {
	[ -n "$DIJK_PID" ] || return 0
	local pid=$DIJK_PID rc=0
	DIJK_PID=
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: dijk (pid $pid) still running 30 s after SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

cleanup() {
	local rc=$?
	set +e
	stop_dijk
	if [ "$KEEP" = 1 ]; then
		echo "bench: kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 greets with "* OK" (IMAP).
wait_imap() {
	local line
	for _ in $(seq 300); do
		# (Braces: a bare `exec 2>/dev/null` would silence the script.)
		if { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
			line=
			IFS= read -r -t 2 line <&3 || true
			printf 'x LOGOUT\r\n' >&3 2>/dev/null || true
			exec 3<&- 3>&-
			[[ $line == "* OK"* ]] && return 0
		fi
		sleep 0.1
	done
	return 1
}

# Waits until 127.0.0.1:$1 answers HTTP.
wait_http() {
	python3 - "$1" <<'PY'
import http.client, sys, time
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2)
        c.request("HEAD", "/static/style.css")
        c.getresponse()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- the generator -------------------------------------------------------------

FILL=$T/fill
[ -n "$REUSE" ] || cc -O2 -std=gnu11 -pthread -o "$FILL" "$HERE/fill.c" -lm 2>"$T/fill-build.log" ||
	{ cat "$T/fill-build.log" >&2; die "building the generator failed"; }

# --- dijk ----------------------------------------------------------------------

IMAP_PORT=$(free_port)
HTTP_PORT=$(free_port)
while [ "$HTTP_PORT" = "$IMAP_PORT" ]; do HTTP_PORT=$(free_port); done
if [ -z "$REUSE" ]; then
	"$DIJK" init --data "$DATA" --hostname dijk.bench.test >/dev/null &&
		"$DIJK" domain add "$DOMAIN" --data "$DATA" >/dev/null &&
		printf '%s\n' "$PASSWORD" |
		"$DIJK" user add "$USER_NAME" --password-stdin --data "$DATA" >/dev/null ||
		die "setting up dijk's data directory $DATA failed"
fi
cat >"$DATA/dijk.conf" <<EOF
# dijk benchmark instance, made by bench/webmail/run.sh; throwaway.
hostname = dijk.bench.test
listen.smtp =
listen.submission =
listen.submissions =
listen.imap = 127.0.0.1:$IMAP_PORT
listen.imaps =
listen.http = 127.0.0.1:$HTTP_PORT
listen.https =
# Every benchmark client comes from 127.0.0.1: no limit per address.
limits.connections_per_ip = 0
workers = $WORKERS
EOF
"$DIJK" serve --data "$DATA" >"$LOG" 2>&1 &
DIJK_PID=$!
wait_imap "$IMAP_PORT" || { tail -n 20 "$LOG" >&2; die "dijk did not answer IMAP on 127.0.0.1:$IMAP_PORT"; }
wait_http "$HTTP_PORT" || { tail -n 20 "$LOG" >&2; die "dijk did not answer HTTP on 127.0.0.1:$HTTP_PORT"; }

echo "Webmail benchmark: $N messages in the INBOX; $RUNS timed runs per case after $WARMUP untimed."
echo "dijk: $DIJK (built $(date -r "$DIJK" '+%F %T'), repository HEAD $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')), workers = $WORKERS"
echo "Data: $T ($(df -PT "$T" | awk 'NR==2 {print $2}'), $(nproc) CPUs); load average $(loadavg)"
echo

# --- filling -------------------------------------------------------------------

word_list=$(sed 's/[a-z_]*=//g' <<<"$WORDS")
FILL_SECONDS=
if [ -n "$REUSE" ]; then
	echo "Reusing the filled mailbox in $T ($N messages)."
	echo
else
	echo "Filling INBOX with $N messages over $CONNECTIONS IMAP connections, $DEPTH APPENDs in flight on each..."
	t0=$EPOCHREALTIME
	"$FILL" append -p "$IMAP_PORT" -u "$USER_NAME" -w "$PASSWORD" -n "$N" -c "$CONNECTIONS" -d "$DEPTH" \
		-q "$word_list" -m "$T/manifest" >"$T/fill.out" 2>"$T/fill.err" ||
		{ cat "$T/fill.out" "$T/fill.err" >&2; tail -n 20 "$LOG" >&2; die "filling the mailbox failed"; }
	t1=$EPOCHREALTIME
	cat "$T/fill.out"
	FILL_SECONDS=$(elapsed "$t0" "$t1")
	echo "Filled in $FILL_SECONDS s; store: $(du -sh "$DATA" | cut -f1); load average $(loadavg)"
	echo
fi

# --- measuring -----------------------------------------------------------------

rc=0
: >"$T/results"
passes=(plain)
[ "$QUICKACK" = 0 ] || passes+=(quickack)
for pass in "${passes[@]}"; do
	if [ "$pass" = plain ]; then
		echo "Pass 1: as a browser receives the answers (client-observed time)"
		flag=
	else
		echo
		echo "Pass 2: the client acknowledges at once (TCP_QUICKACK): the server's own time"
		flag=--quickack
	fi
	# (pipefail: a failing measure.py fails the pipeline.)
	BENCH_PASSWORD=$PASSWORD python3 -u "$HERE/measure.py" --port "$HTTP_PORT" \
		--user "$USER_NAME" --manifest "$T/manifest" --words "$WORDS" --runs "$RUNS" \
		--warmup "$WARMUP" --budget "$BUDGET" $flag |
		tee "$T/measure-$pass.out" | grep -v '^RESULT' || rc=1
	grep '^RESULT' "$T/measure-$pass.out" >>"$T/results" || true
done
echo
cat "$T/results" 2>/dev/null || true
[ -n "$REUSE" ] ||
	echo "RESULT webmail_fill messages=$N seconds=$FILL_SECONDS connections=$CONNECTIONS depth=$DEPTH"

# Errors and warnings while serving fail the benchmark; what the
# processes say while shutting down does not (the exit status counts).
served_lines=$(wc -l <"$LOG")
stop_dijk || { echo "bench: dijk exited with status $?" >&2; rc=1; }
PROBLEMS=' error: | panic|warning: |sanitizer|killed by signal'
if head -n "$served_lines" "$LOG" | grep -qiE "$PROBLEMS"; then
	echo "bench: dijk's log has errors or warnings:" >&2
	head -n "$served_lines" "$LOG" | grep -iE "$PROBLEMS" | head -n 10 >&2
	rc=1
fi
echo "Benchmark took $(elapsed "$T_START" "$EPOCHREALTIME") s."
[ "$rc" = 0 ] || die "failed (see above)"
