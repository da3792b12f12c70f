#!/usr/bin/env bash
# Outbound delivery benchmark: dijk against a private Postfix instance.
#
#   bash bench/outbound/run.sh build/dijk
#
# How fast each server drains a queue of BENCH_MESSAGES messages (BENCH_SIZE
# bytes, one recipient each, all for one remote domain, sink.test) to the
# same receiving MTA: Postfix's smtp-sink on 127.0.0.1, which counts each
# message as its final dot arrives and dumps it to a file. For each server:
# fill its queue while the sink is down (every first attempt fails, so every
# message is deferred), start the sink, flush the queue (`dijk queue flush`,
# `postqueue -f`) and time until the sink has received all the messages.
# Then check that each arrived exactly once and whole, and that the
# server's queue is empty.
#
# dijk (submission on loopback, filled with AUTH PLAIN) finds sink.test's
# MX through a private nsd (tests/support/dnsserver.py); Postfix (smtpd on
# loopback, relaying for mynetworks) does no DNS at all: a transport map
# sends sink.test to [127.0.0.1]:PORT. Both deliver BENCH_CONCURRENCY
# messages at once at most (dijk's queue.deliveries, Postfix's
# default_destination_concurrency_limit), in the clear (smtp-sink offers
# no STARTTLS), unsigned (no DKIM key in dijk), with the other settings at
# their defaults. Each server is measured BENCH_RUNS times (alternating,
# dijk on a fresh data directory each run) and the best run counts.
#
# Needs root (Postfix's master starts as root and drops to the postfix
# user) and the Debian postfix, nsd and python3 packages. The system's own
# Postfix instance (/etc/postfix) is never used or started: every
# postfix/postconf/postqueue call below passes -c with the private
# directory.
#
# Environment:
#   BENCH_MESSAGES     messages per run (5000)
#   BENCH_CONCURRENCY  deliveries at once, both servers (20; 1 to 64)
#   BENCH_SIZE         message length in bytes (4096)
#   BENCH_RUNS         runs per server (2)
#   BENCH_TIMEOUT      seconds a drain may take before the run fails (300)
#   BENCH_FILL_SESSIONS  SMTP sessions filling a queue (4)
#   BENCH_DNS_TTL      TTL of sink.test's records, seconds (3600)
#   BENCH_TMPDIR       where the temporary directory goes (/tmp)
#   BENCH_KEEP=1       keep the temporary directory (logs, dumps) afterwards
set -euo pipefail

DIJK_ARG=${1:-build/dijk}
N=${BENCH_MESSAGES:-5000}
CONC=${BENCH_CONCURRENCY:-20}
SIZE=${BENCH_SIZE:-4096}
RUNS=${BENCH_RUNS:-2}
RUN_TIMEOUT=${BENCH_TIMEOUT:-300}
FILL_SESSIONS=${BENCH_FILL_SESSIONS:-4}
DNS_TTL=${BENCH_DNS_TTL:-3600}
KEEP=${BENCH_KEEP:-0}
DOMAIN=sink.test
SINK_ADDR=127.0.0.1
SENDER=sender@bench.test
PASSWORD=bench-outbound-pw-1
# Both servers retry on their own only after this: every attempt after the
# failed first one is the flush's.
RETRY=3600

die() {
	echo "bench: $*" >&2
	exit 1
}

for v in N CONC SIZE RUNS RUN_TIMEOUT FILL_SESSIONS DNS_TTL; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[ "$CONC" -le 64 ] || die "BENCH_CONCURRENCY is at most 64 (dijk's queue.deliveries), got $CONC"
[ "$N" -le 999999 ] || die "BENCH_MESSAGES is at most 999999, got $N"
[ "$SIZE" -ge 1024 ] || die "BENCH_SIZE is at least 1024, got $SIZE"
[ -x "$DIJK_ARG" ] || die "no dijk binary at $DIJK_ARG (build with make)"
DIJK=$(realpath "$DIJK_ARG")
HERE=$(cd "$(dirname "$0")" && pwd)
HELPER=$HERE/helper.py

if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "must run as root (Postfix's master starts as root)"
	echo "bench: not root; re-running under sudo" >&2
	exec sudo -E bash "$0" "$DIJK"
fi

PATH=$PATH:/usr/sbin:/sbin
for tool in postfix postconf postqueue smtp-sink nsd ss python3; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (install the Debian postfix, nsd, iproute2 and python3 packages: make deps-test)"
done
id postfix >/dev/null 2>&1 || die "no postfix user (install the Debian postfix package)"
getent group postdrop >/dev/null || die "no postdrop group (install the Debian postfix package)"
SINK_USER=nobody

# --- the temporary directory and cleanup ------------------------------------

T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/dijk-outbound-bench.XXXXXX")
chmod 755 "$T" # Postfix's daemons and the sink's user walk through it
PF=$T/postfix
PF_CONF=$PF/etc
DIJK_PID=
DIJK_DATA=
SINK_PID=
DNS_PID=
STEP_PID=
PF_STARTED=0
T_START=$EPOCHREALTIME

# Ends process $1 (SIGTERM, after $2 tenths of a second SIGKILL) and reaps
# it; returns its exit status.
stop_pid() {
	local pid=$1 tenths=$2 rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq "$tenths"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) still running after SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

stop_dijk() {
	[ -n "$DIJK_PID" ] || return 0
	local pid=$DIJK_PID
	DIJK_PID=
	stop_pid "$pid" 300
}

stop_sink() {
	[ -n "$SINK_PID" ] || return 0
	local pid=$SINK_PID
	SINK_PID=
	stop_pid "$pid" 50 || true
}

stop_dns() {
	[ -n "$DNS_PID" ] || return 0
	local pid=$DNS_PID nsd_pid=
	DNS_PID=
	stop_pid "$pid" 150 || true
	# The helper stops nsd itself; this is for a helper that was killed.
	[ -f "$T/dns/nsd.pid" ] && nsd_pid=$(tr -dc 0-9 <"$T/dns/nsd.pid")
	if [ -n "$nsd_pid" ] && kill -0 "$nsd_pid" 2>/dev/null &&
		[ "$(cat "/proc/$nsd_pid/comm" 2>/dev/null)" = nsd ]; then
		kill -TERM "$nsd_pid" 2>/dev/null || true
	fi
}

stop_postfix() {
	[ "$PF_STARTED" = 1 ] || return 0
	PF_STARTED=0
	local pidfile=$PF/spool/pid/master.pid pid=
	[ -f "$pidfile" ] && pid=$(tr -dc 0-9 <"$pidfile")
	postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
	[ -n "$pid" ] || return 0
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "bench: private Postfix master (pid $pid) did not stop; killing it" >&2
	postfix -c "$PF_CONF" abort >/dev/null 2>&1 || true
	sleep 1
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$STEP_PID" ]; then
		kill -TERM "$STEP_PID" 2>/dev/null
		wait "$STEP_PID" 2>/dev/null
	fi
	stop_sink
	stop_dijk
	stop_postfix
	stop_dns
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

# Runs a long step ($2...) with its output into $1 and returns its status.
# In the background, so that a signal's trap runs at once (bash runs traps
# only between foreground commands) and cleanup can end the step.
step() {
	local out=$1 rc=0
	shift
	"$@" >"$out" 2>&1 &
	STEP_PID=$!
	wait "$STEP_PID" || rc=$?
	STEP_PID=
	return "$rc"
}

# A port below the kernel's ephemeral range that is free now: the sink's
# port is chosen once, for Postfix's transport map, and must stay free
# between runs, which a port of the ephemeral range does not (any outgoing
# connection, such as the servers' own, may take it meanwhile).
fixed_port() {
	python3 -c 'import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
while True:
    port = random.randrange(10000, max(10001, low))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break'
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 answers with a 220 banner.
wait_banner() {
	local port=$1 line
	for _ in $(seq 300); do
		# (Braces: a bare `exec 2>/dev/null` would silence the script.)
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			line=
			IFS= read -r -t 2 line <&3 || true
			printf 'QUIT\r\n' >&3 2>/dev/null || true
			exec 3<&- 3>&-
			[[ $line == 220* ]] && return 0
		fi
		sleep 0.1
	done
	return 1
}

# Elapsed seconds between two $EPOCHREALTIME values.
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
rate() { python3 -c "print(f'{$1 / $2:.0f}')"; }

# --- the private DNS server --------------------------------------------------

start_dns() {
	mkdir -p "$T/dns"
	python3 "$HELPER" dns --workdir "$T/dns" --domain "$DOMAIN" --mx-address "$SINK_ADDR" \
		--ttl "$DNS_TTL" --ready "$T/dns/ready" >"$T/dns/helper.log" 2>&1 &
	DNS_PID=$!
	for _ in $(seq 300); do
		[ -s "$T/dns/ready" ] && break
		kill -0 "$DNS_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$T/dns/ready" ] || { cat "$T/dns/helper.log" >&2; die "the private nsd did not start"; }
	DNS_ADDRESS=$(cat "$T/dns/ready")
}

# --- the sink ---------------------------------------------------------------------

SINK_PORT=
SINK_DIR=
# Starts smtp-sink on SINK_ADDR:SINK_PORT, dumping into $1/dump and writing
# its counters to $1/counter. (Readiness is checked on the listening socket,
# not with a session, which smtp-sink would count.)
start_sink() {
	SINK_DIR=$1
	mkdir -p "$SINK_DIR/dump"
	chown "$SINK_USER" "$SINK_DIR/dump"
	# -a -C -F: no AUTH, XCLIENT or XFORWARD announced, as an ordinary MX;
	# it does announce PIPELINING, 8BITMIME, DSN and ENHANCEDSTATUSCODES.
	smtp-sink -4 -a -C -F -h "$DOMAIN" -u "$SINK_USER" -c -m 256 \
		-d "$SINK_DIR/dump/m." "$SINK_ADDR:$SINK_PORT" 256 \
		>"$SINK_DIR/counter" 2>"$SINK_DIR/sink.log" &
	SINK_PID=$!
	for _ in $(seq 100); do
		if ss -Hltn "sport = :$SINK_PORT" | grep -q .; then
			return 0
		fi
		kill -0 "$SINK_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$SINK_DIR/sink.log" >&2
	return 1
}

# The sink's last counters: "SESSIONS MESSAGES".
sink_counters() {
	tr '\r' '\n' <"$SINK_DIR/counter" | awk -F'[= ]' '/^sess=/ { s = $2; m = $6 } END { print s + 0, m + 0 }'
}

# --- the private Postfix instance -------------------------------------------

setup_postfix() {
	PF_PORT=$(free_port)
	mkdir -p "$PF_CONF" "$PF/spool"
	cat >"$PF_CONF/main.cf" <<EOF
# Private benchmark instance, made by bench/outbound/run.sh; throwaway.
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/lib
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is local; clients on loopback may relay, to sink.test only.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_banner = \$myhostname ESMTP
biff = no
# sink.test goes straight to the sink's address and port: no DNS.
transport_maps = inline:{ $DOMAIN=smtp:[$SINK_ADDR]:$SINK_PORT }
default_transport = error:only $DOMAIN is routed in the benchmark instance
# As many deliveries at once as dijk's queue.deliveries.
default_destination_concurrency_limit = $CONC
# No retry of its own before the flush (postqueue -f ignores these).
queue_run_delay = ${RETRY}s
minimal_backoff_time = ${RETRY}s
maximal_backoff_time = ${RETRY}s
# Logs to a file in the instance (via postlogd), not to syslog.
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
EOF
	# Postfix's stock master.cf (Debian's, minus the pipe(8) examples), with
	# chroot off everywhere and smtpd only on the benchmark's port.
	cat >"$PF_CONF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$PF_PORT inet n - n - - smtpd
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
EOF
	# Sanity: postconf reads the private configuration and routes the
	# sink's domain as intended...
	local qd route
	qd=$(postconf -c "$PF_CONF" -h queue_directory)
	[ "$qd" = "$PF/spool" ] || die "postconf -c $PF_CONF reports queue_directory=$qd"
	route=$(postmap -c "$PF_CONF" -q "$DOMAIN" "inline:{ $DOMAIN=smtp:[$SINK_ADDR]:$SINK_PORT }")
	[ "$route" = "smtp:[$SINK_ADDR]:$SINK_PORT" ] || die "the transport map gives '$route' for $DOMAIN"
	postconf -c "$PF_CONF" -n >"$PF/postconf-n.txt" || die "postconf -c $PF_CONF -n failed"
	postconf -c "$PF_CONF" -M >/dev/null 2>"$PF/postconf-M.err" ||
		{ cat "$PF/postconf-M.err" >&2; die "postconf -c $PF_CONF -M failed"; }
	if [ -s "$PF/postconf-M.err" ]; then cat "$PF/postconf-M.err" >&2; fi
	# ...and `postfix check` creates the queue and data directories with
	# their owners (post-install create-missing) and checks the rest.
	postfix -c "$PF_CONF" check >"$PF/check.log" 2>&1 ||
		{ cat "$PF/check.log" >&2; die "postfix -c $PF_CONF check failed"; }
	if grep -v 'starting the Postfix\|^$' "$PF/check.log" | grep -q .; then
		echo "bench: postfix check said:" >&2
		sed 's/^/  /' "$PF/check.log" >&2
	fi
	[ "$(stat -c %U "$PF/spool/incoming")" = postfix ] ||
		die "queue directory $PF/spool/incoming not owned by postfix"
	PF_STARTED=1
	postfix -c "$PF_CONF" start >"$PF/start.log" 2>&1 ||
		{ cat "$PF/start.log" "$PF/maillog" >&2 2>/dev/null; die "postfix -c $PF_CONF start failed"; }
	wait_banner "$PF_PORT" ||
		{ tail -n 30 "$PF/maillog" >&2 2>/dev/null; die "private Postfix did not answer on 127.0.0.1:$PF_PORT"; }
}

# Files in one of Postfix's queues.
postfix_queue_count() {
	find "$PF/spool/$1" -type f 2>/dev/null | wc -l
}

# Files in every queue mail waits in.
postfix_queued() {
	find "$PF/spool/maildrop" "$PF/spool/incoming" "$PF/spool/active" \
		"$PF/spool/deferred" "$PF/spool/hold" -type f 2>/dev/null | wc -l
}

# --- one run, either server ---------------------------------------------------

# Set by a run: the drain's seconds, and what goes into its report line.
RUN_SECONDS=
RUN_NOTE=

# Fills the queue of the server on port $1 (password $2, or none) and
# writes the fill's seconds to $3.
fill_queue() {
	local port=$1 password=$2 out=$3
	local auth=()
	[ -n "$password" ] && auth=(--password "$password")
	step "$out" python3 "$HELPER" fill --port "$port" --sender "$SENDER" "${auth[@]}" \
		--messages "$N" --size "$SIZE" --connections "$FILL_SESSIONS" \
		--domain "$DOMAIN"
}

# The timed part. With the queue deferred and the sink up, runs the flush
# command given after the first three arguments (SERVER_PID, a command that
# prints how many messages the server still holds, a name for messages)
# under the drain helper, which takes the time from just before the flush
# until the sink has counted N messages. Then waits for the server's queue
# to empty and checks the sink's copies. Sets RUN_SECONDS and RUN_NOTE;
# returns 1 on any problem.
drain_and_check() {
	local server_pid=$1 held_cmd=$2 name=$3
	shift 3
	local out rc=0 seconds first flush sessions messages server_cpu sink_cpu other_cpu
	step "$SINK_DIR/drain.out" python3 "$HELPER" drain --counter "$SINK_DIR/counter" \
		--messages "$N" --timeout "$RUN_TIMEOUT" --pid "$server_pid" --pid "$SINK_PID" \
		-- "$@" || rc=$?
	out=$(tail -n 1 "$SINK_DIR/drain.out")
	read -r seconds first flush sessions messages server_cpu sink_cpu other_cpu <<<"$out"
	if [ "$rc" != 0 ]; then
		grep -v '^[0-9.-]* ' "$SINK_DIR/drain.out" >&2
		echo "$name: the sink has ${messages:-?} of $N messages after ${seconds:-?}s" >&2
		echo "  still queued: $($held_cmd)" >&2
		return 1
	fi
	# The sink counts a message at its final dot, before its 250 goes
	# out; the server then marks it delivered.
	local held=
	for _ in $(seq 300); do
		held=$($held_cmd)
		[ "$held" = 0 ] && break
		sleep 0.1
	done
	local problems=0
	if [ "$held" != 0 ]; then
		echo "$name: $held messages still queued 30 s after the sink had all $N" >&2
		problems=1
	fi
	# smtp-sink counts a session when it ends; Postfix keeps an idle
	# connection open for smtp_connection_cache_time_limit (2 s).
	sleep 3
	read -r sessions messages <<<"$(sink_counters)"
	stop_sink
	local check
	if ! check=$(python3 "$HELPER" check --dump "$SINK_DIR/dump" --messages "$N" \
		--size "$SIZE" --domain "$DOMAIN" --sender "$SENDER"); then
		echo "$name: the sink's copies are wrong:" >&2
		echo "$check" | sed 's/^/  /' >&2
		problems=1
	fi
	if [ "$messages" != "$N" ]; then
		echo "$name: the sink counted $messages messages, expected $N" >&2
		problems=1
	fi
	RUN_SECONDS=$seconds
	RUN_NOTE="flush command ${flush}s, first message after ${first}s, $sessions sessions;"
	RUN_NOTE+=" CPU seconds: server $server_cpu, sink $sink_cpu, everything else $other_cpu"
	return "$problems"
}

dijk_held() {
	local lines
	lines=$("$DIJK" queue list --data "$DIJK_DATA" 2>/dev/null | wc -l) || lines=-1
	echo "$lines"
}

# Messages in dijk's queue that were tried once and wait for their retry.
dijk_deferred() {
	"$DIJK" queue list --data "$DIJK_DATA" 2>/dev/null |
		awk '/ attempts=[1-9][0-9]* / && !/ next=now/ { n++ } END { print n + 0 }'
}

run_dijk() {
	local run=$1 dir=$T/dijk-run$1
	DIJK_DATA=$dir/data
	local log=$dir/dijk.log port
	mkdir -p "$dir"
	port=$(free_port)
	"$DIJK" init --data "$DIJK_DATA" --hostname dijk.bench.test >/dev/null &&
		"$DIJK" domain add bench.test --data "$DIJK_DATA" >/dev/null &&
		printf '%s\n' "$PASSWORD" |
		"$DIJK" user add "$SENDER" --password-stdin --data "$DIJK_DATA" >/dev/null ||
		{ echo "dijk run $run: setting up $DIJK_DATA failed" >&2; return 1; }
	cat >"$DIJK_DATA/dijk.conf" <<EOF
# dijk benchmark instance, made by bench/outbound/run.sh; throwaway.
hostname = dijk.bench.test
listen.smtp =
listen.submission = 127.0.0.1:$port
listen.submissions =
listen.imap =
listen.imaps =
listen.http =
listen.https =
# Every benchmark client comes from 127.0.0.1: no limit per address.
limits.connections_per_ip = 0
dns.resolver = $DNS_ADDRESS
dns.trust_anchor =
outbound.port = $SINK_PORT
outbound.bind = 127.0.0.1
queue.retry = $RETRY
queue.deliveries = $CONC
EOF
	"$DIJK" serve --data "$DIJK_DATA" >"$log" 2>&1 &
	DIJK_PID=$!
	if ! wait_banner "$port"; then
		echo "dijk run $run: no 220 banner on 127.0.0.1:$port" >&2
		tail -n 20 "$log" >&2
		stop_dijk || true
		return 1
	fi
	if ! fill_queue "$port" "$PASSWORD" "$dir/fill.out"; then
		echo "dijk run $run: filling the queue failed:" >&2
		tail -n 5 "$dir/fill.out" >&2
		stop_dijk || true
		return 1
	fi
	local fill_seconds deferred=0
	fill_seconds=$(tail -n 1 "$dir/fill.out")
	for _ in $(seq 1200); do
		deferred=$(dijk_deferred)
		[ "$deferred" = "$N" ] && break
		sleep 0.25
	done
	if [ "$deferred" != "$N" ]; then
		echo "dijk run $run: only $deferred of $N messages deferred after 300 s; queue holds $(dijk_held)" >&2
		stop_dijk || true
		return 1
	fi
	if ! start_sink "$dir/sink"; then
		echo "dijk run $run: smtp-sink did not start" >&2
		stop_dijk || true
		return 1
	fi
	sync
	local problems=0
	drain_and_check "$DIJK_PID" dijk_held "dijk run $run" \
		"$DIJK" queue flush --data "$DIJK_DATA" || problems=1
	RUN_NOTE="filled in ${fill_seconds}s; ${RUN_NOTE:-}"
	stop_sink
	local stop_rc=0
	stop_dijk || stop_rc=$?
	if [ "$stop_rc" != 0 ]; then
		echo "dijk run $run: dijk serve exited with status $stop_rc on SIGTERM" >&2
		problems=1
	fi
	# Warnings and errors while it served, and any sign of a crash, fail
	# the run (the first attempts, refused while the sink is down, are info
	# lines). Warnings once the master is stopping are only shown: they say
	# nothing of the delivery measured.
	local serving=$dir/serving.log stopping=$dir/stopping.log
	awk -v s="$serving" -v t="$stopping" '
		/ master\[[0-9]+\] info: stopping$/ { stop = 1 }
		{ print > (stop ? t : s) }' "$log"
	touch "$serving" "$stopping"
	local bad='\] (warning|error): |panic|sanitizer|runtime error'
	if grep -qiE "$bad" "$serving" || grep -qiE 'panic|sanitizer|runtime error' "$stopping"; then
		echo "dijk run $run: its log has errors or warnings ($(cat "$serving" "$stopping" | grep -ciE "$bad") lines), e.g.:" >&2
		cat "$serving" "$stopping" | grep -iE "$bad" | sort -k2 | uniq -c -f1 | head -n 10 >&2
		problems=1
	elif grep -qiE "$bad" "$stopping"; then
		echo "dijk run $run: while stopping, its log says (the run still counts):" >&2
		grep -iE "$bad" "$stopping" | head -n 5 | sed 's/^/  /' >&2
	fi
	# Each message: one refused attempt while the sink was down, then one
	# delivery; anything more is a retry during the drain.
	local sent deferred_lines
	sent=$(grep -c '> sent by ' "$log" || true)
	deferred_lines=$(grep -c '> deferred: ' "$log" || true)
	if [ "$sent" != "$N" ] || [ "$deferred_lines" != "$N" ]; then
		echo "dijk run $run: its log shows $sent deliveries and $deferred_lines deferrals, expected $N of each" >&2
		grep '> deferred: ' "$log" | sed -E 's/^[^ ]+ //; s/queue [0-9]+: to=<[^>]*>/queue ID: to=<...>/' |
			sort | uniq -c | sort -rn | head -n 5 >&2
		problems=1
	fi
	return "$problems"
}

postfix_run_steps() {
	local run=$1 dir=$T/postfix-run$1
	mkdir -p "$dir"
	[ "$(postfix_queued)" = 0 ] || { echo "Postfix run $run: its queue is not empty" >&2; return 1; }
	if ! fill_queue "$PF_PORT" "" "$dir/fill.out"; then
		echo "Postfix run $run: filling the queue failed:" >&2
		tail -n 5 "$dir/fill.out" >&2
		return 1
	fi
	local fill_seconds deferred=0 busy=1
	fill_seconds=$(tail -n 1 "$dir/fill.out")
	for _ in $(seq 1200); do
		deferred=$(postfix_queue_count deferred)
		busy=$(($(postfix_queue_count maildrop) + $(postfix_queue_count incoming) + $(postfix_queue_count active)))
		[ "$deferred" = "$N" ] && [ "$busy" = 0 ] && break
		sleep 0.25
	done
	if [ "$deferred" != "$N" ] || [ "$busy" != 0 ]; then
		echo "Postfix run $run: $deferred of $N messages deferred after 300 s, $busy elsewhere" >&2
		tail -n 10 "$PF/maillog" >&2 2>/dev/null
		return 1
	fi
	if ! start_sink "$dir/sink"; then
		echo "Postfix run $run: smtp-sink did not start" >&2
		return 1
	fi
	sync
	local problems=0
	if ! drain_and_check "$(tr -dc 0-9 <"$PF/spool/pid/master.pid")" postfix_queued \
		"Postfix run $run" postqueue -c "$PF_CONF" -f; then
		tail -n 10 "$PF/maillog" >&2 2>/dev/null
		problems=1
	fi
	RUN_NOTE="filled in ${fill_seconds}s; ${RUN_NOTE:-}"
	return "$problems"
}

run_postfix() {
	local rc=0
	postfix_run_steps "$1" || rc=$?
	stop_sink
	# Whatever a failed run left must not reach the next run's sink.
	if [ "$(postfix_queued)" != 0 ]; then
		postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1 || true
		for _ in $(seq 100); do
			[ "$(postfix_queued)" = 0 ] && break
			sleep 0.1
		done
	fi
	return "$rc"
}

# --- the runs -----------------------------------------------------------------

SINK_PORT=$(fixed_port)
echo "Outbound delivery benchmark: $N queued messages of $SIZE bytes, 1 recipient each, all for"
echo "$DOMAIN, drained to smtp-sink on $SINK_ADDR:$SINK_PORT, $CONC deliveries at once;"
echo "$RUNS runs per server, alternating; the best run counts."
echo "dijk: $DIJK (built $(date -r "$DIJK" '+%F %T'), repository HEAD $(git -C "$(dirname "$DIJK")" rev-parse --short HEAD 2>/dev/null || echo '?')); MX lookup through a private nsd"
echo "Postfix: $(postconf -d -h mail_version) (private instance in $PF); transport map to [$SINK_ADDR]:$SINK_PORT, no DNS"
echo "Data: $T ($(df -PT "$T" | awk 'NR==2 {print $2}'), $(nproc) CPUs)"
echo "Load average before starting: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

start_dns
setup_postfix

declare -a DIJK_S=() PF_S=()
failed=0
for run in $(seq "$RUNS"); do
	RUN_NOTE=
	load=$(cut -d' ' -f1 /proc/loadavg)
	if run_dijk "$run"; then
		DIJK_S+=("$RUN_SECONDS")
		printf '  run %d  dijk     %8.3f s  %6s msg/s  (%s; load %s)\n' \
			"$run" "$RUN_SECONDS" "$(rate "$N" "$RUN_SECONDS")" "$RUN_NOTE" "$load"
	else
		DIJK_S+=(FAIL)
		failed=1
		printf '  run %d  dijk     FAILED (see above)\n' "$run"
	fi
	RUN_NOTE=
	load=$(cut -d' ' -f1 /proc/loadavg)
	if run_postfix "$run"; then
		PF_S+=("$RUN_SECONDS")
		printf '  run %d  postfix  %8.3f s  %6s msg/s  (%s; load %s)\n' \
			"$run" "$RUN_SECONDS" "$(rate "$N" "$RUN_SECONDS")" "$RUN_NOTE" "$load"
	else
		PF_S+=(FAIL)
		failed=1
		printf '  run %d  postfix  FAILED (see above)\n' "$run"
	fi
done

# The best (fastest) successful run of each.
best() {
	local b=
	for s in "$@"; do
		[ "$s" = FAIL ] && continue
		if [ -z "$b" ] || python3 -c "import sys; sys.exit(0 if $s < $b else 1)"; then
			b=$s
		fi
	done
	echo "$b"
}
dijk_best=$(best "${DIJK_S[@]}")
pf_best=$(best "${PF_S[@]}")
dijk_mps=NA
pf_mps=NA
ratio=NA
[ -n "$dijk_best" ] && dijk_mps=$(rate "$N" "$dijk_best")
[ -n "$pf_best" ] && pf_mps=$(rate "$N" "$pf_best")
if [ -n "$dijk_best" ] && [ -n "$pf_best" ]; then
	ratio=$(python3 -c "print(f'{$pf_best / $dijk_best:.2f}')")
fi

echo
echo "Best of $RUNS runs, $N messages x $SIZE bytes, $CONC at once, from the flush until the sink has all:"
printf '  %-32s %10s %10s\n' server seconds 'msg/s'
printf '  %-32s %10s %10s\n' -------------------------------- ---------- ----------
printf '  %-32s %10s %10s\n' 'dijk (MX via nsd)' "${dijk_best:-FAIL}" "$dijk_mps"
printf '  %-32s %10s %10s\n' 'Postfix (transport map, no DNS)' "${pf_best:-FAIL}" "$pf_mps"
printf '  %-32s %10s %10s\n' 'ratio dijk/Postfix' '' "$ratio"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Benchmark time (setup and runs, without the final cleanup): $(elapsed "$T_START" "$EPOCHREALTIME") s"
echo "RESULT outbound dijk_mps=$dijk_mps postfix_mps=$pf_mps ratio=$ratio messages=$N size=$SIZE concurrency=$CONC runs=$RUNS pick=best"
exit "$failed"
