#!/usr/bin/env bash
# Builds every libFuzzer target under fuzz/ with ASan+UBSan and runs it.
#   scripts/fuzz.sh smoke   each target for FUZZ_SECONDS (default 10 s)
#   scripts/fuzz.sh long    each target for FUZZ_SECONDS (default 600 s)
# Seeds live in fuzz/corpus/NAME (in git); what a run finds grows a working
# copy in build-fuzz/corpus/NAME. Crash reproducers go to build-fuzz/artifacts;
# copy them into fuzz/regressions/NAME, which every run replays first.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-smoke}
case $mode in
smoke) seconds=${FUZZ_SECONDS:-10} ;;
long) seconds=${FUZZ_SECONDS:-600} ;;
*) echo "usage: $0 smoke|long" >&2; exit 2 ;;
esac

out=build-fuzz
mkdir -p "$out/artifacts"
# The session target keeps a store in a temporary directory.
export TMPDIR="$PWD/$out/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
CC=${FUZZ_CC:-clang}
flags=(-g -O1 -std=c17 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all -Wall -Wextra -Werror -Wno-unused-parameter)

# Each target with the sources it needs.
declare -A sources=(
	[smtp_command]="src/smtp/parser.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[imap_command]="src/imap/parser.c src/imap/arena.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[smtp_data]="src/smtp/parser.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[mime]="src/mime/address.c src/mime/decode.c src/mime/field.c src/mime/jmap.c src/mime/mime.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[config]="src/core/config.c src/core/util.c src/core/log.c"
	[base64]="src/core/base64.c src/core/util.c src/core/log.c"
	[totp]="src/auth/totp.c src/core/buf.c src/core/util.c src/core/log.c"
	[ipc]="src/core/ipc.c src/auth/audit_wire.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[html_sanitize]="src/http/sanitize.c tests/support/html_oracle.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[jmap_request]="src/http/jmap_request.c src/core/util.c src/core/log.c"
	[dns]="src/smtp/dns.c src/core/buf.c src/core/util.c src/core/log.c"
	[mta_sts]="src/smtp/mtasts.c src/core/buf.c src/core/util.c src/core/log.c"
	[dkim]="src/smtp/dkim.c src/smtp/dns.c src/core/base64.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[spf]="src/smtp/spf.c src/smtp/dns.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[dmarc]="src/smtp/dmarc.c src/smtp/dns.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[authres]="src/smtp/authres.c src/smtp/spf.c src/smtp/dkim.c src/smtp/dns.c src/core/base64.c src/core/buf.c src/core/utf8.c src/core/util.c src/core/log.c"
	[smtp_session]="src/smtp/session.c src/smtp/parser.c src/smtp/deliver.c
		src/smtp/inbound.c src/smtp/spf.c src/smtp/dkim.c src/smtp/dmarc.c
		src/smtp/authres.c src/smtp/dns.c
		src/auth/client.c src/auth/audit_client.c src/auth/audit_wire.c
		src/store/sqlite/store.c src/store/sqlite/twofactor.c src/store/sqlite/mail.c
		src/store/sqlite/mailbox.c src/store/sqlite/meta.c src/store/sqlite/queue.c
		src/mime/address.c src/mime/decode.c src/mime/field.c src/mime/jmap.c src/mime/mime.c
		src/core/base64.c src/core/buf.c src/core/channel.c src/core/config.c src/core/connlimit.c src/core/ipc.c
		src/core/log.c src/core/net.c src/core/pool.c src/core/utf8.c src/core/util.c"
)
sources[imap_session]="src/imap/session.c src/imap/command.c src/imap/fetch.c
		src/imap/search.c src/imap/view.c src/imap/parser.c src/imap/arena.c
		src/auth/client.c src/store/sqlite/store.c src/store/sqlite/twofactor.c src/store/sqlite/mail.c
		src/store/sqlite/mailbox.c src/store/sqlite/meta.c src/store/sqlite/queue.c
		src/mime/address.c src/mime/decode.c src/mime/field.c src/mime/jmap.c src/mime/mime.c
		src/core/base64.c src/core/buf.c src/core/channel.c src/core/config.c src/core/connlimit.c src/core/ipc.c
		src/core/log.c src/core/net.c src/core/pool.c src/core/utf8.c src/core/util.c
		src/imap/server.c src/imap/compress.c src/auth/authd.c src/store/thread.c
		src/auth/password.c src/auth/ratelimit.c src/auth/throttle.c src/auth/totp.c src/auth/twofactor.c src/imap/audit.c src/auth/audit.c src/auth/auditd.c
		src/auth/audit_client.c src/auth/audit_wire.c src/store/sqlite/audit.c
		src/core/privsep.c src/core/sandbox.c"
# The http session target runs the whole worker but its process glue: every
# library source, and the webmail's files embedded as the build does.
mkdir -p "$out/gen"
python3 scripts/embed.py "$out/gen/web_assets.c" web $(git ls-files 'web/*' 2>/dev/null || ls web/*.*)
sources[http_session]="$(ls src/core/*.c src/store/*.c src/store/sqlite/*.c src/auth/*.c \
	src/mime/*.c src/imap/*.c src/smtp/*.c src/http/*.c | tr '\n' ' ') $out/gen/web_assets.c"
# Libraries of the targets that need them.
declare -A libs=(
	[smtp_session]="$(pkg-config --libs libevent_core libevent_openssl openssl libsodium sqlite3 libunbound libpsl) -lpthread"
)
libs[imap_session]="${libs[smtp_session]} -lz $(pkg-config --libs liboath jansson libseccomp)"
libs[ipc]="$(pkg-config --libs libsodium)"
libs[totp]="$(pkg-config --libs liboath libsodium)"
libs[html_sanitize]="$(pkg-config --libs gumbo)"
libs[jmap_request]="$(pkg-config --libs jansson)"
libs[dns]="$(pkg-config --libs libunbound)"
libs[dkim]="$(pkg-config --libs libunbound openssl libsodium)"
libs[spf]="$(pkg-config --libs libunbound)"
libs[dmarc]="$(pkg-config --libs libunbound libpsl)"
libs[http_session]="$(pkg-config --libs libevent_core libevent_extra libevent_openssl openssl libsodium sqlite3 libunbound libpsl gumbo jansson zlib liboath libqrencode libseccomp) -lpthread"
libs[authres]="$(pkg-config --libs libunbound openssl libsodium)"

failed=0
for name in $(printf '%s\n' "${!sources[@]}" | sort); do
	bin="$out/fuzz_$name"
	# shellcheck disable=SC2086
	if ! $CC "${flags[@]}" -o "$bin" "fuzz/fuzz_$name.c" ${sources[$name]} ${libs[$name]:-}; then
		echo "fuzz: cannot build $name" >&2
		failed=$((failed + 1))
		continue
	fi
	if [ -d "fuzz/regressions/$name" ] &&
		! "$bin" -runs=0 "fuzz/regressions/$name" >/dev/null 2>&1; then
		echo "fuzz: $name fails on a committed regression input" >&2
		failed=$((failed + 1))
		continue
	fi
	work="$out/corpus/$name"
	mkdir -p "$work"
	dict=()
	[ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
	log="$out/$name.log"
	if "$bin" "${dict[@]}" -max_total_time="$seconds" -max_len=4096 \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$name-" \
		"$work" "fuzz/corpus/$name" >"$log" 2>&1; then
		runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
		echo "fuzz: $name ok, $runs executions in ${seconds}s"
	else
		echo "fuzz: $name FAILED; see $log" >&2
		tail -30 "$log" >&2
		failed=$((failed + 1))
	fi
done
rm -rf "$TMPDIR"
[ "$failed" -eq 0 ]
