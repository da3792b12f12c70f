#!/usr/bin/env bash
# Runs every test: C unit tests, fuzz targets (briefly, under ASan+UBSan),
# the integration suite and the bad-input security suite (tests/security)
# against build/dijk, then both once more against an ASan+UBSan build.
# Ends with one line "N passed, N failed".
#
#   scripts/test.sh            everything
#   scripts/test.sh --asan     only the sanitizer build and its suite
#   scripts/test.sh --quick    unit + integration, no fuzzing, no sanitizers
#
# DIJK_TEST_JOBS (default 3) is how many pytest processes share a suite.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
PYTHON=/usr/bin/python3
passed=0
failed=0
results=$(mktemp)

record() { # name status
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS $1" >>"$results"
	else
		failed=$((failed + 1))
		echo "FAIL $1" >>"$results"
	fi
}

# Adds the counts of a pytest run from its junit XML.
record_pytest() { # name xml status
	local name=$1 xml=$2 status=$3
	if [ ! -s "$xml" ]; then
		record "$name (no report)" 1
		return
	fi
	read -r t f e s < <($PYTHON - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(x.get("tests", 0)) for x in suites)
f = sum(int(x.get("failures", 0)) for x in suites)
e = sum(int(x.get("errors", 0)) for x in suites)
s = sum(int(x.get("skipped", 0)) for x in suites)
print(t, f, e, s)
PY
)
	local bad=$((f + e))
	local good=$((t - bad - s))
	passed=$((passed + good))
	failed=$((failed + bad))
	if [ "$t" -eq 0 ]; then
		failed=$((failed + 1))
		echo "FAIL $name: no tests ran" >>"$results"
	fi
	if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then
		failed=$((failed + 1))
		echo "FAIL $name: pytest exited $status" >>"$results"
	fi
	echo "$name: $good passed, $bad failed, $s skipped" >>"$results"
}

build_normal() {
	[ -f build/build.ninja ] || meson setup build >/dev/null || return 1
	ninja -C build >/dev/null
}

run_lint() {
	echo "== lint (formatting, forbidden symbols)"
	bash scripts/lint.sh --fast
	record "lint" $?
}

run_unit() {
	echo "== unit tests"
	for t in build/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		"$t"
		local status=$?
		record "unit ${t##*/}" $status
	done
}

# A pytest directory against one binary. tests/integration and
# tests/security each have a conftest.py of their own, so they run as
# separate pytest sessions. Most of a test's time is spent waiting (for a
# server to start, a retry, a TOTP step, a browser), so the files run in
# DIJK_TEST_JOBS processes at once (pytest-xdist; 0 runs them in this
# one). A file stays in one process: its module-wide servers start once.
run_pytest_dir() { # name label dijk-binary directory
	local name=$1 label=$2 bin=$3 dir=$4 xml
	local jobs=${DIJK_TEST_JOBS:-3} parallel=()
	[ "$jobs" -gt 0 ] && parallel=(-n "$jobs" --dist loadfile)
	xml=$(mktemp --suffix=.xml)
	echo "== $name tests ($label)"
	# The ten slowest tests are listed after the results: where the
	# suite's time goes.
	DIJK_BIN=$bin $PYTHON -m pytest -q -p no:cacheprovider "${parallel[@]}" \
		--durations=10 --junitxml="$xml" "$dir"
	record_pytest "$name ($label)" "$xml" $?
	rm -f "$xml"
}

run_integration() { # label dijk-binary
	run_pytest_dir integration "$1" "$2" tests/integration
}

run_security() { # label dijk-binary
	run_pytest_dir security "$1" "$2" tests/security
}

run_fuzz() {
	echo "== fuzz targets (smoke)"
	bash scripts/fuzz.sh smoke
	record "fuzz smoke" $?
}

build_asan() {
	if [ ! -f build-asan/build.ninja ]; then
		CC=clang meson setup build-asan -Db_sanitize=address,undefined \
			-Db_lundef=false -Dbuildtype=debug >/dev/null || return 1
	fi
	ninja -C build-asan >/dev/null
}

test_asan() {
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	for t in build-asan/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		"$t"
		local status=$?
		record "unit (asan) ${t##*/}" $status
	done
	DIJK_SANITIZED=1 run_integration "asan" "$PWD/build-asan/dijk"
	DIJK_SANITIZED=1 run_security "asan" "$PWD/build-asan/dijk"
	unset ASAN_OPTIONS UBSAN_OPTIONS
}

run_asan() {
	echo "== ASan+UBSan build"
	build_asan || return 1
	test_asan
}

case $mode in
all | --all)
	build_normal || record "build" 1
	run_lint
	run_unit
	run_integration "release" "$PWD/build/dijk"
	run_security "release" "$PWD/build/dijk"
	# The sanitizer build compiles on one core while the fuzzers run on
	# the other: neither is timed, and the suite ends sooner.
	echo "== ASan+UBSan build (in the background)"
	asan_log=$(mktemp)
	build_asan >"$asan_log" 2>&1 &
	asan_pid=$!
	run_fuzz
	if wait $asan_pid; then
		test_asan
	else
		cat "$asan_log"
		record "asan build" 1
	fi
	rm -f "$asan_log"
	;;
--asan)
	run_asan || record "asan build" 1
	;;
--quick)
	build_normal || record "build" 1
	run_unit
	run_integration "release" "$PWD/build/dijk"
	run_security "release" "$PWD/build/dijk"
	;;
*)
	echo "usage: $0 [--asan|--quick]" >&2
	exit 2
	;;
esac

echo
grep -v '^PASS' "$results" || true
rm -f "$results"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
