#!/usr/bin/env bash
# Static checks: formatting (clang-format), symbols dijk never uses (no
# shell, no unbounded string functions), and cppcheck over src/.
#   scripts/lint.sh          all checks
#   scripts/lint.sh --fast   formatting and forbidden symbols only (make test)
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'fuzz/*.c')
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files 2>/tmp/dijk-format.$$; then
	echo "lint: formatting differs from .clang-format (run 'make format'):" >&2
	head -20 /tmp/dijk-format.$$ >&2
	status=1
fi
rm -f /tmp/dijk-format.$$

# No shell, ever: no system(), popen(), exec*() or "sh -c" in the sources.
if git grep -nE '\b(system|popen|execl|execlp|execle|execv|execvp|execvpe)[[:space:]]*\(|"sh -c|/bin/sh' -- src ':!src/core/poison.h'; then
	echo "lint: the sources may not run programs or a shell" >&2
	status=1
fi
# Unbounded string functions are poisoned at compile time; catch them in
# comments-free code here too for a clearer message.
if git grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' -- src ':!src/core/poison.h'; then
	echo "lint: unbounded string functions are not used in dijk" >&2
	status=1
fi

if [ "${1:-}" != "--fast" ]; then
	if command -v cppcheck >/dev/null; then
		cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
			--std=c11 -Isrc --suppress=missingIncludeSystem src || status=1
	fi
fi
exit $status
