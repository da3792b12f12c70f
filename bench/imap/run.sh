#!/usr/bin/env bash
# IMAP benchmark: dijk against a private Dovecot instance.
#
#   bash bench/imap/run.sh build/dijk        (what `make bench` runs)
#
# Both servers run on this machine, on loopback, with their data in one
# temporary directory (so on the same file system), each with its default
# durability. Our own load generator (bench/imap/load.c, built here with cc
# -O2) drives both the same way, over plain IMAP with LOGIN:
#
# 1. Loading: BENCH_MESSAGES messages (made up by the generator: 1 to 8
#    KiB, varied headers, a fifth multipart/alternative, a tenth
#    multipart/mixed with a base64 attachment) are APPENDed to the user's
#    empty INBOX over 8 connections; then INBOX must hold exactly those
#    messages, byte for byte by RFC822.SIZE.
# 2. Mixed workload: BENCH_CLIENTS clients, each logged in with INBOX
#    selected before the clock starts, run a weighted mix of commands for
#    BENCH_DURATION seconds per server (SELECT, FETCH of 50 ENVELOPEs, UID
#    FETCH of a header, FETCH of a whole message, STORE +/-\Seen, SEARCH
#    SUBJECT / UNSEEN, APPEND, and UID STORE \Deleted + EXPUNGE of an
#    appended message). Every client draws its commands from its own
#    seeded generator, so both servers get the same sequences. The answers
#    are checked (message sizes, header sizes, FETCH and SEARCH counts);
#    the figure is completed commands per second. A run with wrong answers
#    or broken connections counts as failed.
# 3. Memory of idle connections: BENCH_IDLE_CONNECTIONS connections to each
#    server, each LOGIN, SELECT INBOX, IDLE, all at once; the figure is the
#    growth of the server's total memory (every process of the server: for
#    dijk the master and its children, for Dovecot its master and every
#    service process) from just before the first connection to when all
#    are idle, as the sum of RSS and the sum of PSS (/proc/PID/smaps_rollup;
#    PSS splits shared pages between the processes sharing them, so it is
#    the fairer figure for forked processes; the RESULT line uses PSS).
#    Then every IDLE is ended with DONE and must get its OK.
#
# Needs root (Dovecot's master starts as root and drops privileges) and the
# Debian dovecot-imapd package. The system's own Dovecot (/etc/dovecot) is
# never used or started: every dovecot/doveconf call below passes -c with
# the private configuration, whose base_dir and state_dir are in the
# temporary directory.
#
# Environment:
#   BENCH_MESSAGES          messages loaded into each INBOX (5000)
#   BENCH_CLIENTS           clients of the mixed workload (50)
#   BENCH_DURATION          seconds of mixed workload per server (30)
#   BENCH_IDLE_CONNECTIONS  idle connections per server (10000)
#   BENCH_IDLE_TIMEOUT      seconds the idle connections may take to open (1200)
#   BENCH_WORKERS           dijk's `workers` (0: one per core)
#   BENCH_TMPDIR            where the temporary directory goes (/tmp)
#   BENCH_KEEP=1            keep the temporary directory (logs, stores) afterwards
set -euo pipefail

DIJK_ARG=${1:-build/dijk}
N=${BENCH_MESSAGES:-5000}
CLIENTS=${BENCH_CLIENTS:-50}
DURATION=${BENCH_DURATION:-30}
IDLE=${BENCH_IDLE_CONNECTIONS:-10000}
IDLE_TIMEOUT=${BENCH_IDLE_TIMEOUT:-1200}
WORKERS=${BENCH_WORKERS:-0}
KEEP=${BENCH_KEEP:-0}
LOADERS=8
IDLE_CPU_WINDOW=10
DOMAIN=example.test
USER_NAME=bench@$DOMAIN
PASSWORD=bench-password-1

die() {
	echo "bench: $*" >&2
	exit 1
}

for v in N CLIENTS DURATION IDLE IDLE_TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ $WORKERS =~ ^[0-9]+$ ]] || die "BENCH_WORKERS must be a number, got '$WORKERS'"
[ "$N" -ge 50 ] || die "BENCH_MESSAGES must be at least 50"
[ -x "$DIJK_ARG" ] || die "no dijk binary at $DIJK_ARG (build with make)"
DIJK=$(realpath "$DIJK_ARG")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "must run as root (Dovecot's master starts as root)"
	echo "bench: not root; re-running under sudo" >&2
	exec sudo -E bash "$0" "$DIJK"
fi

PATH=$PATH:/usr/sbin:/sbin
for tool in dovecot doveconf cc python3; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (install the Debian dovecot-imapd, build-essential and python3 packages: make deps-test)"
done
[ -x /usr/lib/dovecot/imap ] || die "no /usr/lib/dovecot/imap (install the Debian dovecot-imapd package)"
id dovenull >/dev/null 2>&1 || die "no dovenull user (install the Debian dovecot-core package)"
id dovecot >/dev/null 2>&1 || die "no dovecot user (install the Debian dovecot-core package)"
MAIL_UID=$(id -u nobody)
MAIL_GID=$(id -g nobody)

# Every idle connection is a descriptor in the load generator, and one in
# dijk's workers or Dovecot's log, anvil and imap processes.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
FDS=$(ulimit -n)
[ "$FDS" -ge $((IDLE + 1000)) ] ||
	die "ulimit -n is $FDS (hard limit $(ulimit -Hn)); $IDLE idle connections need at least $((IDLE + 1000))"

# --- the temporary directory and cleanup ------------------------------------

T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/dijk-imap-bench.XXXXXX")
chmod 755 "$T" # Dovecot's processes (dovenull, dovecot, nobody) walk through it
DV=$T/dovecot
DIJK_DATA=$T/dijk
DIJK_LOG=$T/dijk.log
DIJK_PID=
DV_PID=
LOAD_PID=
INOTIFY_SAVED=
T_START=$EPOCHREALTIME

stop_load() {
	[ -n "$LOAD_PID" ] || return 0
	kill -TERM "$LOAD_PID" 2>/dev/null || true
	wait "$LOAD_PID" 2>/dev/null || true
	LOAD_PID=
}

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

# Dovecot's master (run in the foreground, -F, as our child) stops all its
# service processes on SIGTERM.
stop_dovecot() {
	[ -n "$DV_PID" ] || return 0
	local pid=$DV_PID
	DV_PID=
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: private Dovecot master (pid $pid) still running 30 s after SIGTERM; killing it and its processes" >&2
		local kids
		kids=$(tree_pids "$pid" || true)
		kill -KILL $kids 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	stop_load
	stop_dijk
	stop_dovecot
	restore_inotify
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

# Waits until 127.0.0.1:$1 greets with "* OK".
wait_greeting() {
	local port=$1 line
	for _ in $(seq 300); do
		# (Braces: a bare `exec 2>/dev/null` would silence the script.)
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
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

elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }

# The PIDs of $1 and all its descendants.
tree_pids() {
	python3 - "$1" <<'PY'
import os, sys
kids = {}
for d in os.listdir('/proc'):
    if not d.isdigit():
        continue
    try:
        stat = open(f'/proc/{d}/stat').read()
    except OSError:
        continue
    kids.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(d))
out, todo = [], [int(sys.argv[1])]
while todo:
    p = todo.pop()
    out.append(p)
    todo += kids.get(p, [])
print(' '.join(map(str, out)))
PY
}

# Memory of $1 and all its descendants: "PROCESSES RSS_KIB PSS_KIB", then
# the machine's MemTotal - MemAvailable in KiB (kernel memory included),
# then the CPU seconds the processes (and their reaped children) have used.
tree_mem() {
	python3 - "$1" <<'PY'
import os, sys
kids = {}
for d in os.listdir('/proc'):
    if not d.isdigit():
        continue
    try:
        stat = open(f'/proc/{d}/stat').read()
    except OSError:
        continue
    kids.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(d))
n = rss = pss = ticks = 0
todo = [int(sys.argv[1])]
while todo:
    p = todo.pop()
    todo += kids.get(p, [])
    try:
        r = next(int(l.split()[1]) for l in open(f'/proc/{p}/status') if l.startswith('VmRSS:'))
        s = next(int(l.split()[1]) for l in open(f'/proc/{p}/smaps_rollup') if l.startswith('Pss:'))
        t = sum(map(int, open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[11:15]))
    except (OSError, StopIteration):
        continue  # gone, or a zombie
    n, rss, pss, ticks = n + 1, rss + r, pss + s, ticks + t
info = {l.split(':')[0]: int(l.split()[1]) for l in open('/proc/meminfo')}
print(n, rss, pss, info['MemTotal'] - info['MemAvailable'], f"{ticks / os.sysconf('SC_CLK_TCK'):.2f}")
PY
}

# Each of Dovecot's IDLE processes takes an inotify instance of the mail
# user's (nobody's); past the kernel's per-user limit (128 by default)
# Dovecot falls back to waking every process every 30 s to poll its
# Maildir, which is not how one would run 10,000 IDLE clients. The limit
# is raised for the benchmark and restored afterwards.
INOTIFY=/proc/sys/fs/inotify/max_user_instances
raise_inotify() {
	local old
	old=$(cat "$INOTIFY")
	if [ "$old" -lt $((IDLE + 1000)) ]; then
		echo $((IDLE + 1000)) >"$INOTIFY" ||
			die "cannot raise $INOTIFY to $((IDLE + 1000)) for Dovecot's IDLE"
		INOTIFY_SAVED=$old
	fi
}
restore_inotify() {
	[ -n "$INOTIFY_SAVED" ] || return 0
	echo "$INOTIFY_SAVED" >"$INOTIFY"
	INOTIFY_SAVED=
}

# --- the load generator ---------------------------------------------------------

LOAD=$T/load
cc -O2 -std=gnu11 -pthread -o "$LOAD" "$HERE/load.c" 2>"$T/load-build.log" ||
	{ cat "$T/load-build.log" >&2; die "building the load generator failed"; }

# --- the private Dovecot instance ---------------------------------------------

setup_dovecot() {
	DV_PORT=$(free_port)
	mkdir -p "$DV/run" "$DV/state" "$DV/mail"
	chown "$MAIL_UID:$MAIL_GID" "$DV/mail"
	printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$USER_NAME" "$PASSWORD" "$MAIL_UID" "$MAIL_GID" \
		"$DV/mail/$USER_NAME" >"$DV/passwd"
	chmod 644 "$DV/passwd"
	local cores
	cores=$(nproc)
	cat >"$DV/dovecot.conf" <<EOF
# Private benchmark instance, made by bench/imap/run.sh; throwaway.
instance_name = dijk-bench-$(basename "$T")
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
login_trusted_networks = 127.0.0.0/8
# One user, its mail in a Maildir (Dovecot's default durability: mail_fsync
# = optimized, i.e. a saved message is fsynced before its OK).
mail_location = maildir:$DV/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $DV/passwd
}
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
# Room for $IDLE connections of the same user from the same addresses:
# one imap process each (Dovecot's design), two imap-login processes in
# high-performance mode (service_count = 0) holding the clients until they
# are handed over, and log, anvil and stats taking a connection from each.
mail_max_userip_connections = $((IDLE + 1000))
default_process_limit = $((IDLE + 100))
default_client_limit = $((IDLE + 2000))
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DV_PORT
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = $cores
  process_limit = $cores
  client_limit = $((IDLE + 1000))
  vsz_limit = 1G
}
service imap {
  process_limit = $((IDLE + 100))
}
EOF
	doveconf -c "$DV/dovecot.conf" -n >"$DV/doveconf-n.txt" 2>"$DV/doveconf.err" ||
		{ cat "$DV/doveconf.err" >&2; die "doveconf -c $DV/dovecot.conf failed"; }
	local bd
	bd=$(doveconf -c "$DV/dovecot.conf" -h base_dir)
	[ "$bd" = "$DV/run" ] || die "doveconf -c $DV/dovecot.conf reports base_dir=$bd"
	dovecot -F -c "$DV/dovecot.conf" >"$DV/master.out" 2>&1 &
	DV_PID=$!
	wait_greeting "$DV_PORT" ||
		{ cat "$DV/master.out" >&2; tail -n 20 "$DV/dovecot.log" >&2 2>/dev/null; die "private Dovecot did not answer on 127.0.0.1:$DV_PORT"; }
}

# --- dijk ---------------------------------------------------------------------

setup_dijk() {
	DIJK_PORT=$(free_port)
	"$DIJK" init --data "$DIJK_DATA" --hostname dijk.bench.test >/dev/null &&
		"$DIJK" domain add "$DOMAIN" --data "$DIJK_DATA" >/dev/null &&
		printf '%s\n' "$PASSWORD" |
		"$DIJK" user add "$USER_NAME" --password-stdin --data "$DIJK_DATA" >/dev/null ||
		die "setting up dijk's data directory $DIJK_DATA failed"
	cat >"$DIJK_DATA/dijk.conf" <<EOF
# dijk benchmark instance, made by bench/imap/run.sh; throwaway.
hostname = dijk.bench.test
listen.smtp =
listen.submission =
listen.submissions =
listen.imap = 127.0.0.1:$DIJK_PORT
listen.imaps =
listen.http =
listen.https =
# Every benchmark client comes from 127.0.0.1: no limit per address.
limits.connections_per_ip = 0
workers = $WORKERS
EOF
	"$DIJK" serve --data "$DIJK_DATA" >"$DIJK_LOG" 2>&1 &
	DIJK_PID=$!
	wait_greeting "$DIJK_PORT" ||
		{ tail -n 20 "$DIJK_LOG" >&2; die "dijk did not answer on 127.0.0.1:$DIJK_PORT"; }
}

# A field "key=value" from a line of the load generator's output.
field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1" | head -n 1; }

# --- the runs -----------------------------------------------------------------

echo "IMAP benchmark: $N messages loaded; mixed workload of $CLIENTS clients for ${DURATION}s per server;"
echo "$IDLE idle connections (LOGIN, SELECT INBOX, IDLE) per server."
echo "dijk: $DIJK (built $(date -r "$DIJK" '+%F %T'), repository HEAD $(git -C "$(dirname "$DIJK")" rev-parse --short HEAD 2>/dev/null || echo '?')), workers = $WORKERS"
echo "Dovecot: $(dovecot --version | cut -d' ' -f1) (private instance in $DV)"
echo "Data: $T ($(df -PT "$T" | awk 'NR==2 {print $2}'), $(nproc) CPUs, ulimit -n $FDS)"
load=$(cut -d' ' -f1 /proc/loadavg)
if python3 -c "import sys; sys.exit(0 if $load > 0.5 else 1)"; then
	echo "Warning: load average is $load before starting; other work on this machine lowers the figures unevenly."
fi
echo

raise_inotify
setup_dovecot
setup_dijk
failed=0
declare -A APPEND_RATE MIXED OPS ERRS IDLE_OUT MEM0 MEM1 MEM2

# 1. Loading.
for server in dijk dovecot; do
	port=$DIJK_PORT
	[ "$server" = dovecot ] && port=$DV_PORT
	out=$T/append-$server.out
	rc=0
	"$LOAD" append -p "$port" -u "$USER_NAME" -w "$PASSWORD" -n "$N" -c "$LOADERS" \
		>"$out" 2>"$T/append-$server.err" || rc=$?
	line=$(grep '^append ' "$out" || true)
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		echo "loading $server failed (exit $rc):" >&2
		cat "$out" >&2
		head -n 20 "$T/append-$server.err" >&2
		die "cannot go on without the messages in $server"
	fi
	APPEND_RATE[$server]=$(field "$line" msg_per_s)
	printf '  load     %-8s %5d messages (%s bytes) in %6.1f s: %5s APPEND/s\n' "$server" "$N" \
		"$(field "$line" bytes)" "$(field "$line" seconds)" "${APPEND_RATE[$server]}"
done

# 2. Mixed workload.
for server in dijk dovecot; do
	port=$DIJK_PORT
	[ "$server" = dovecot ] && port=$DV_PORT
	out=$T/mixed-$server.out
	rc=0
	"$LOAD" mixed -p "$port" -u "$USER_NAME" -w "$PASSWORD" -n "$N" -c "$CLIENTS" -d "$DURATION" \
		>"$out" 2>"$T/mixed-$server.err" || rc=$?
	line=$(grep '^mixed ' "$out" || true)
	OPS[$server]=$(field "$line" ops_per_s)
	ERRS[$server]=$(field "$line" errors)
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		echo "mixed workload against $server: wrong answers or broken connections (exit $rc):" >&2
		head -n 12 "$T/mixed-$server.err" >&2
		MIXED[$server]=FAIL
		failed=1
		printf '  mixed    %-8s FAILED: %s ops/s with %s errors (see above)\n' "$server" \
			"${OPS[$server]:-?}" "${ERRS[$server]:-?}"
	else
		MIXED[$server]=${OPS[$server]}
		printf '  mixed    %-8s %8s ops/s over %s s, %s commands, no errors\n' "$server" \
			"${OPS[$server]}" "$(field "$line" seconds)" "$(field "$line" ops)"
	fi
done

# 3. Idle connections.
idle_run() {
	local server=$1 port=$2 root=$3
	local out=$T/idle-$server.out
	sync
	sleep 2
	MEM0[$server]=$(tree_mem "$root")
	"$LOAD" idle -p "$port" -u "$USER_NAME" -w "$PASSWORD" -c "$IDLE" -t "$IDLE_TIMEOUT" \
		>"$out" 2>"$T/idle-$server.err" &
	LOAD_PID=$!
	local ready=
	while kill -0 "$LOAD_PID" 2>/dev/null; do
		ready=$(grep '^READY ' "$out" || true)
		[ -n "$ready" ] && break
		sleep 0.5
	done
	[ -n "$ready" ] || ready=$(grep '^READY ' "$out" || true)
	if [ -n "$ready" ]; then
		sleep 3 # let the last sessions settle
		MEM1[$server]=$(tree_mem "$root")
		# What the server spends on idle connections doing nothing.
		sleep "$IDLE_CPU_WINDOW"
		MEM2[$server]=$(tree_mem "$root")
	fi
	kill -USR1 "$LOAD_PID" 2>/dev/null || true
	local rc=0
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=
	local fin
	fin=$(grep '^finished ' "$out" || true)
	IDLE_OUT[$server]="$ready"
	if [ "$rc" != 0 ] || [ -z "$ready" ] || [ -z "${MEM1[$server]:-}" ] ||
		[ "$(field "$ready" idling)" != "$IDLE" ]; then
		echo "idle connections to $server: not all opened, kept or answered (exit $rc):" >&2
		echo "  $ready" >&2
		echo "  $fin" >&2
		head -n 12 "$T/idle-$server.err" >&2
		return 1
	fi
	return 0
}

declare -A IDLE_OK
for server in dijk dovecot; do
	if [ "$server" = dijk ]; then
		idle_run dijk "$DIJK_PORT" "$DIJK_PID" && IDLE_OK[dijk]=1 || { IDLE_OK[dijk]=0; failed=1; }
	else
		idle_run dovecot "$DV_PORT" "$DV_PID" && IDLE_OK[dovecot]=1 || { IDLE_OK[dovecot]=0; failed=1; }
	fi
	r=${IDLE_OUT[$server]}
	printf '  idle     %-8s %s of %s connections idle after %s s (%s set up/s)\n' "$server" \
		"$(field "$r" idling)" "$IDLE" "$(field "$r" seconds)" "$(field "$r" setups_per_s)"
	# Dovecot's imap processes linger a moment after LOGOUT.
	[ "$server" = dovecot ] || continue
	for _ in $(seq 100); do
		[ "$(tree_pids "$DV_PID" | wc -w)" -lt 20 ] && break
		sleep 0.2
	done
done

# Memory figures: growth from before the connections to all idle; CPU
# used to set the connections up, and while they idle.
declare -A D_RSS D_PSS D_SYS PROCS NIDLE PER_CONN SETUP_MS IDLE_CPU
for server in dijk dovecot; do
	if [ -n "${MEM1[$server]:-}" ]; then
		read -r _ r0 p0 s0 c0 <<<"${MEM0[$server]}"
		read -r n1 r1 p1 s1 c1 <<<"${MEM1[$server]}"
		read -r _ _ _ _ c2 <<<"${MEM2[$server]}"
		D_RSS[$server]=$((r1 - r0))
		D_PSS[$server]=$((p1 - p0))
		D_SYS[$server]=$((s1 - s0))
		PROCS[$server]=$n1
		NIDLE[$server]=$(field "${IDLE_OUT[$server]}" idling)
		PER_CONN[$server]=$(python3 -c "print(f'{${D_PSS[$server]} / max(1, ${NIDLE[$server]}):.1f}')")
		SETUP_MS[$server]=$(python3 -c "print(f'{($c1 - $c0) * 1000 / max(1, ${NIDLE[$server]}):.1f}')")
		IDLE_CPU[$server]=$(python3 -c "print(f'{($c2 - $c1) * 100 / $IDLE_CPU_WINDOW:.1f}')")
	fi
done

# The servers' logs.
stop_rc=0
stop_dijk || stop_rc=$?
if [ "$stop_rc" != 0 ]; then
	echo "dijk serve exited with status $stop_rc on SIGTERM" >&2
	failed=1
fi
if grep -qiE 'error|panic|warn|sanitizer|runtime error|invalid pointer|killed by signal' "$DIJK_LOG"; then
	echo "dijk's log has errors or warnings ($(grep -ciE 'error|panic|warn|sanitizer|runtime error|invalid pointer|killed by signal' "$DIJK_LOG") lines):" >&2
	grep -iE 'error|panic|warn|sanitizer|runtime error|invalid pointer|killed by signal' "$DIJK_LOG" | head -n 10 >&2
	failed=1
fi
stop_dovecot
inotify=$(grep -c 'Inotify instance limit' "$DV/dovecot.log" || true)
if grep -E 'Error|Fatal|Panic' "$DV/dovecot.log" | grep -v 'setrlimit(RLIMIT_NPROC' | grep -q .; then
	echo "Dovecot's log has errors:" >&2
	grep -E 'Error|Fatal|Panic' "$DV/dovecot.log" | grep -v 'setrlimit(RLIMIT_NPROC' | head -n 10 >&2
	failed=1
fi

# --- the table ----------------------------------------------------------------

ratio() { python3 -c "import sys
a, b = sys.argv[1], sys.argv[2]
try:
    print(f'{float(a) / float(b):.3f}' if float(b) else 'NA')
except ValueError:
    print('NA')" "$1" "$2"; }

echo
echo "Mixed workload: $CLIENTS clients, ${DURATION} s per server, completed commands per second:"
printf '  %-32s %18s %18s\n' command 'dijk /s (ms)' 'Dovecot /s (ms)'
printf '  %-32s %18s %18s\n' -------------------------------- ------------------ ------------------
for i in 0 1 2 3 4 5 6 7 8 9; do
	d=$(grep "^op $i " "$T/mixed-dijk.out" 2>/dev/null || true)
	v=$(grep "^op $i " "$T/mixed-dovecot.out" 2>/dev/null || true)
	name=$(sed -n 's/.* name=//p' <<<"${d:-$v}")
	printf '  %-32s %10s (%5s) %10s (%5s)\n' "$name" "$(field "$d" per_s)" "$(field "$d" mean_ms)" \
		"$(field "$v" per_s)" "$(field "$v" mean_ms)"
done
ops_ratio=NA
[ "${MIXED[dijk]}" != FAIL ] && [ "${MIXED[dovecot]}" != FAIL ] && ops_ratio=$(ratio "${MIXED[dijk]}" "${MIXED[dovecot]}")
printf '  %-32s %18s %18s\n' 'all commands' "${MIXED[dijk]}" "${MIXED[dovecot]}"
printf '  %-32s %18s\n' 'ratio dijk/Dovecot' "$ops_ratio"

echo
echo "Memory for $IDLE idle connections (growth from before the first connection), KiB:"
printf '  %-20s %7s %9s %11s %11s %9s %11s\n' server conns processes 'RSS sum' 'PSS sum' 'PSS/conn' 'machine*'
printf '  %-20s %7s %9s %11s %11s %9s %11s\n' -------------------- ------- --------- ----------- ----------- --------- -----------
for server in dijk dovecot; do
	printf '  %-20s %7s %9s %11s %11s %9s %11s\n' "$server" "${NIDLE[$server]:-FAIL}" \
		"${PROCS[$server]:-FAIL}" "${D_RSS[$server]:-FAIL}" "${D_PSS[$server]:-FAIL}" \
		"${PER_CONN[$server]:-FAIL}" "${D_SYS[$server]:-FAIL}"
done
rss_ratio=NA
pss_ratio=NA
if [ "${IDLE_OK[dijk]}" = 1 ] && [ "${IDLE_OK[dovecot]}" = 1 ]; then
	rss_ratio=$(ratio "${D_RSS[dijk]}" "${D_RSS[dovecot]}")
	pss_ratio=$(ratio "${D_PSS[dijk]}" "${D_PSS[dovecot]}")
fi
printf '  %-20s %7s %9s %11s %11s\n' 'ratio dijk/Dovecot' '' '' "$rss_ratio" "$pss_ratio"
echo "  * machine: growth of MemTotal - MemAvailable, kernel memory (sockets, page tables,"
echo "    process structures) included; other work on the machine moves it too."
echo "  CPU per connection set up (LOGIN, SELECT, IDLE; all the server's processes):"
echo "    dijk ${SETUP_MS[dijk]:-NA} ms, Dovecot ${SETUP_MS[dovecot]:-NA} ms;"
echo "  CPU while all idle, over ${IDLE_CPU_WINDOW} s, in % of one core: dijk ${IDLE_CPU[dijk]:-NA}, Dovecot ${IDLE_CPU[dovecot]:-NA}."
[ "$inotify" = 0 ] || echo "  Dovecot logged $inotify 'Inotify instance limit' warnings: its IDLE fell back to polling (every 30 s)."
echo
echo "Benchmark time (setup and runs, without the final cleanup): $(elapsed "$T_START" "$EPOCHREALTIME") s"
dijk_ops=${MIXED[dijk]}
dv_ops=${MIXED[dovecot]}
echo "RESULT imap_ops dijk=$dijk_ops dovecot=$dv_ops ratio=$ops_ratio clients=$CLIENTS seconds=$DURATION messages=$N dijk_errors=${ERRS[dijk]:-NA} dovecot_errors=${ERRS[dovecot]:-NA}"
dk=${D_PSS[dijk]:-NA}
vk=${D_PSS[dovecot]:-NA}
[ "${IDLE_OK[dijk]}" = 1 ] || dk=FAIL
[ "${IDLE_OK[dovecot]}" = 1 ] || vk=FAIL
echo "RESULT imap_idle_mem dijk_kib=$dk dovecot_kib=$vk ratio=$pss_ratio metric=pss connections=$IDLE dijk_rss_kib=${D_RSS[dijk]:-NA} dovecot_rss_kib=${D_RSS[dovecot]:-NA} rss_ratio=$rss_ratio"
exit "$failed"
