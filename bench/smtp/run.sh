#!/usr/bin/env bash
# SMTP reception benchmark: dijk against a private Postfix instance.
#
#   bash bench/smtp/run.sh build/dijk        (what `make bench` runs)
#
# Both servers run on this machine, on loopback, with their data in one
# temporary directory (so on the same file system), each with its default
# durability: dijk answers 250 only once a message is on disk and indexed;
# Postfix fsyncs its queue file before the 250 and fsyncs the Maildir file
# when it delivers. Postfix's smtp-source sends the same load to each:
# BENCH_SESSIONS parallel sessions, BENCH_MESSAGES messages of BENCH_SIZE
# bytes, one recipient each. The clock runs from the start of smtp-source
# until every message is stored: for dijk, until smtp-source has its last
# 250; for Postfix, until the recipient's Maildir/new holds every message.
# Each server is measured BENCH_RUNS times (alternating, each run on a fresh
# store/Maildir) and the best run counts.
#
# Needs root (Postfix's master starts as root and drops to the postfix user)
# and the Debian postfix package (postfix, postconf, smtp-source). The
# system's own Postfix instance (/etc/postfix) is never used or started:
# every postfix/postconf call below passes -c with the private directory.
#
# Environment:
#   BENCH_MESSAGES  messages per run (10000)
#   BENCH_SESSIONS  parallel SMTP sessions (20)
#   BENCH_SIZE      message length in bytes, smtp-source -l (4096)
#   BENCH_RUNS      runs per server (2)
#   BENCH_TIMEOUT   seconds one run may take before it counts as failed (150)
#   BENCH_TMPDIR    where the temporary directory goes (/tmp)
#   BENCH_KEEP=1    keep the temporary directory (logs, stores) afterwards
set -euo pipefail

DIJK_ARG=${1:-build/dijk}
N=${BENCH_MESSAGES:-10000}
SESSIONS=${BENCH_SESSIONS:-20}
SIZE=${BENCH_SIZE:-4096}
RUNS=${BENCH_RUNS:-2}
RUN_TIMEOUT=${BENCH_TIMEOUT:-150}
KEEP=${BENCH_KEEP:-0}
DOMAIN=example.test
RCPT=bench@$DOMAIN
SENDER=sender@source.test

die() {
	echo "bench: $*" >&2
	exit 1
}

for v in N SESSIONS SIZE RUNS RUN_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[ -x "$DIJK_ARG" ] || die "no dijk binary at $DIJK_ARG (build with make)"
DIJK=$(realpath "$DIJK_ARG")

if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "must run as root (Postfix's master starts as root)"
	echo "bench: not root; re-running under sudo" >&2
	exec sudo -E bash "$0" "$DIJK"
fi

for tool in postfix postconf smtp-source python3; do
	command -v "$tool" >/dev/null ||
		PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null ||
		die "$tool not found (install the Debian postfix and python3 packages: make deps-test)"
done
PATH=$PATH:/usr/sbin:/sbin
id postfix >/dev/null 2>&1 || die "no postfix user (install the Debian postfix package)"
getent group postdrop >/dev/null || die "no postdrop group (install the Debian postfix package)"
MAIL_UID=$(id -u nobody)
MAIL_GID=$(id -g nobody)

# --- the temporary directory and cleanup ------------------------------------

T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/dijk-bench.XXXXXX")
chmod 755 "$T" # Postfix's daemons and the delivery user walk through it
PF=$T/postfix
PF_CONF=$PF/etc
DIJK_PID=
PF_STARTED=0
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
	stop_dijk
	stop_postfix
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

# Runs smtp-source against 127.0.0.1:$1, output into $2.
smtp_source() {
	timeout "$RUN_TIMEOUT" smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" \
		-f "$SENDER" -t "$RCPT" "127.0.0.1:$1" >"$2" 2>&1
}

# --- the private Postfix instance -------------------------------------------

setup_postfix() {
	PF_PORT=$(free_port)
	mkdir -p "$PF_CONF" "$PF/spool" "$PF/mail" # the rest: made by postfix check
	chown "$MAIL_UID:$MAIL_GID" "$PF/mail"
	cat >"$PF_CONF/main.cf" <<EOF
# Private benchmark instance, made by bench/smtp/run.sh; throwaway.
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
# Nothing is local, nothing is relayed: the only destination is the
# virtual mailbox below; anything else is refused or bounced locally.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
relay_domains =
default_transport = error:relaying is disabled in the benchmark instance
relay_transport = error:relaying is disabled in the benchmark instance
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP
biff = no
# The recipient's mail goes to a Maildir (trailing slash) delivered by
# virtual(8), which fsyncs each file before reporting it delivered.
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = inline:{ $RCPT=bench/ }
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
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
	# Sanity: postconf reads the private configuration...
	local qd
	qd=$(postconf -c "$PF_CONF" -h queue_directory)
	[ "$qd" = "$PF/spool" ] || die "postconf -c $PF_CONF reports queue_directory=$qd"
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

# Files in Postfix's queue (incoming, active, deferred, hold).
postfix_queued() {
	find "$PF/spool/incoming" "$PF/spool/active" "$PF/spool/deferred" \
		"$PF/spool/hold" -type f 2>/dev/null | wc -l
}

# One Postfix run: prints "SECONDS ACCEPT_SECONDS" or fails.
run_postfix() {
	local run=$1 out=$T/postfix-run$run.out
	local maildir=$PF/mail/bench
	# A fresh Maildir per run; the queue must be empty between runs.
	[ "$(postfix_queued)" = 0 ] || { echo "postfix queue not empty before run $run" >&2; return 1; }
	rm -rf "$maildir"
	sync
	local t0 t1 t2 rc=0
	t0=$EPOCHREALTIME
	smtp_source "$PF_PORT" "$out" || rc=$?
	t1=$EPOCHREALTIME
	if [ "$rc" != 0 ]; then
		echo "smtp-source against Postfix failed (exit $rc):" >&2
		tail -n 20 "$out" >&2
		return 1
	fi
	# A 250 from Postfix means queued; wait until all are in the Maildir.
	local left
	left=$(python3 - "$maildir/new" "$N" "$RUN_TIMEOUT" "$t0" <<'PY'
import os, sys, time
path, n, limit, t0 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
count = 0
while True:
    try:
        count = sum(1 for _ in os.scandir(path))
    except FileNotFoundError:
        count = 0
    if count >= n or time.time() - t0 > limit:
        break
    # Poll coarsely while far off, finely near the end (resolution 20 ms).
    time.sleep(0.02 if count >= n * 0.97 else 0.25)
print(n - count)
PY
	)
	t2=$EPOCHREALTIME
	if [ "$left" != 0 ]; then
		echo "Postfix run $run: $left of $N messages not in the Maildir after ${RUN_TIMEOUT}s" >&2
		echo "  still in its queue: $(postfix_queued)" >&2
		tail -n 20 "$PF/maillog" >&2 2>/dev/null
		return 1
	fi
	local stored extra
	stored=$(find "$maildir/new" -type f | wc -l)
	extra=$(find "$maildir/cur" "$maildir/tmp" -type f 2>/dev/null | wc -l)
	if [ "$stored" != "$N" ] || [ "$extra" != 0 ]; then
		echo "Postfix run $run: Maildir holds $stored in new/ and $extra elsewhere, expected $N" >&2
		return 1
	fi
	local small
	small=$(find "$maildir/new" -type f -size -"$SIZE"c | wc -l)
	[ "$small" = 0 ] || { echo "Postfix run $run: $small messages shorter than $SIZE bytes" >&2; return 1; }
	# Let any trailing queue-file removals finish before the next run.
	for _ in $(seq 100); do
		[ "$(postfix_queued)" = 0 ] && break
		sleep 0.1
	done
	echo "$(elapsed "$t0" "$t2") $(elapsed "$t0" "$t1")"
}

# --- dijk ---------------------------------------------------------------------

# One dijk run on a fresh data directory: prints "SECONDS" or fails.
run_dijk() {
	local run=$1 data=$T/dijk-run$1 log=$T/dijk-run$1.log out=$T/dijk-run$1.out
	local port
	port=$(free_port)
	# (Callers test this function's status, which turns off set -e in it.)
	"$DIJK" init --data "$data" --hostname dijk.bench.test >/dev/null &&
		"$DIJK" domain add "$DOMAIN" --data "$data" >/dev/null &&
		printf 'bench-password-1\n' |
		"$DIJK" user add "$RCPT" --password-stdin --data "$data" >/dev/null ||
		{ echo "dijk run $run: setting up $data failed" >&2; return 1; }
	cat >"$data/dijk.conf" <<EOF
# dijk benchmark instance, made by bench/smtp/run.sh; throwaway.
hostname = dijk.bench.test
listen.smtp = 127.0.0.1:$port
listen.submission =
listen.submissions =
listen.imap =
listen.imaps =
listen.http =
listen.https =
# Every benchmark client comes from 127.0.0.1: no limit per address.
limits.connections_per_ip = 0
EOF
	"$DIJK" serve --data "$data" >"$log" 2>&1 &
	DIJK_PID=$!
	if ! wait_banner "$port"; then
		echo "dijk run $run: no 220 banner on 127.0.0.1:$port" >&2
		tail -n 20 "$log" >&2
		stop_dijk || true
		return 1
	fi
	sync
	local t0 t1 rc=0
	t0=$EPOCHREALTIME
	smtp_source "$port" "$out" || rc=$?
	t1=$EPOCHREALTIME
	# dijk sent each 250 after the message was durable and indexed, so the
	# store must list every message now, while the server still runs.
	local listed=-1 short=0
	if "$DIJK" mail list "$RCPT" --data "$data" >"$T/dijk-run$run.list" 2>"$T/dijk-run$run.list.err"; then
		listed=$(wc -l <"$T/dijk-run$run.list")
		short=$(awk -v s="$SIZE" '$2 < s' "$T/dijk-run$run.list" | wc -l)
	fi
	local stop_rc=0
	stop_dijk || stop_rc=$?
	local problems=0
	if [ "$rc" != 0 ]; then
		echo "dijk run $run: smtp-source failed (exit $rc$([ "$rc" = 124 ] && echo ", timed out after ${RUN_TIMEOUT}s")):" >&2
		tail -n 20 "$out" >&2
		problems=1
	elif [ -s "$out" ]; then
		echo "dijk run $run: smtp-source said:" >&2
		sort "$out" | uniq -c | sort -rn | head -n 10 >&2
	fi
	if [ "$listed" != "$N" ]; then
		echo "dijk run $run: dijk mail list shows $listed messages, expected $N" >&2
		[ -s "$T/dijk-run$run.list.err" ] && head -n 5 "$T/dijk-run$run.list.err" >&2
		problems=1
	fi
	if [ "$short" != 0 ]; then
		echo "dijk run $run: $short stored messages shorter than $SIZE bytes" >&2
		problems=1
	fi
	if [ "$stop_rc" != 0 ]; then
		echo "dijk run $run: dijk serve exited with status $stop_rc on SIGTERM" >&2
		problems=1
	fi
	if grep -qiE 'error|panic|warn|sanitizer|runtime error' "$log"; then
		echo "dijk run $run: its log has errors or warnings:" >&2
		grep -iE 'error|panic|warn|sanitizer|runtime error' "$log" | head -n 10 >&2
		problems=1
	fi
	[ "$problems" = 0 ] || return 1
	echo "$(elapsed "$t0" "$t1")"
}

# --- the runs -----------------------------------------------------------------

echo "SMTP reception benchmark: $N messages of $SIZE bytes, $SESSIONS sessions, 1 recipient;"
echo "$RUNS runs per server, alternating; the best run counts."
echo "dijk: $DIJK (built $(date -r "$DIJK" '+%F %T'), repository HEAD $(git -C "$(dirname "$DIJK")" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "Postfix: $(postconf -d -h mail_version) (private instance in $PF)"
echo "Data: $T ($(df -PT "$T" | awk 'NR==2 {print $2}'), $(nproc) CPUs)"
# Both servers and smtp-source share the CPUs: other work skews the figures.
load=$(cut -d' ' -f1 /proc/loadavg)
if python3 -c "import sys; sys.exit(0 if $load > 0.5 else 1)"; then
	echo "Warning: load average is $load before starting; other work on this machine lowers both figures unevenly."
fi
echo

setup_postfix

declare -a DIJK_S=() PF_S=() PF_ACCEPT=()
failed=0
for run in $(seq "$RUNS"); do
	if r=$(run_dijk "$run"); then
		DIJK_S+=("$r")
		printf '  run %d  dijk     %8.3f s  %6s msg/s\n' "$run" "$r" "$(rate "$N" "$r")"
	else
		DIJK_S+=(FAIL)
		failed=1
		printf '  run %d  dijk     FAILED (see above)\n' "$run"
	fi
	if r=$(run_postfix "$run"); then
		read -r total accept <<<"$r"
		PF_S+=("$total")
		PF_ACCEPT+=("$accept")
		printf '  run %d  postfix  %8.3f s  %6s msg/s  (all queued after %.3f s: %s msg/s)\n' \
			"$run" "$total" "$(rate "$N" "$total")" "$accept" "$(rate "$N" "$accept")"
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
echo "Best of $RUNS runs, $N messages x $SIZE bytes, $SESSIONS sessions, until all stored:"
printf '  %-24s %10s %10s\n' server seconds 'msg/s'
printf '  %-24s %10s %10s\n' ------------------------ ---------- ----------
printf '  %-24s %10s %10s\n' 'dijk (250 = stored)' "${dijk_best:-FAIL}" "$dijk_mps"
printf '  %-24s %10s %10s\n' 'Postfix (in Maildir)' "${pf_best:-FAIL}" "$pf_mps"
printf '  %-24s %10s %10s\n' 'ratio dijk/Postfix' '' "$ratio"
echo
echo "Benchmark time (setup and runs, without the final cleanup): $(elapsed "$T_START" "$EPOCHREALTIME") s"
echo "RESULT dijk_mps=$dijk_mps postfix_mps=$pf_mps ratio=$ratio messages=$N size=$SIZE sessions=$SESSIONS runs=$RUNS pick=best"
exit "$failed"
