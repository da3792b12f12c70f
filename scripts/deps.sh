#!/usr/bin/env bash
# Installs the Debian 12 packages dijk needs to build, run and test.
# Idempotent: only missing packages are installed; uses sudo when not root.
set -euo pipefail

# Packages for building and serving.
build_packages=(
	build-essential meson ninja-build pkg-config
	libevent-dev libssl-dev libsodium-dev libsqlite3-dev zlib1g-dev
	libgumbo-dev libjansson-dev libunbound-dev libpsl-dev dns-root-data
	libseccomp-dev liboath-dev libqrencode-dev
	openssl
)
# Packages for the test suite and the benchmarks.
test_packages=(
	clang libclang-rt-14-dev llvm clang-format cppcheck
	python3 python3-pytest python3-pytest-xdist
	swaks libnet-ssleay-perl postfix
	nsd ldnsutils opendkim opendkim-tools oathtool zbar-tools binutils
	isync mutt tmux
	dovecot-imapd
	chromium
)

want=("${build_packages[@]}")
if [ "${1:-}" = "--test" ]; then
	want+=("${test_packages[@]}")
	# The browser tests use Playwright's core library from npm with the
	# machine's Node.js (Debian's when there is none).
	command -v npm >/dev/null || want+=(nodejs npm)
fi

missing=()
for pkg in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
browser_modules() {
	[ "${1:-}" = "--test" ] || return 0
	[ -d tests/browser/node_modules/playwright-core ] && return 0
	echo "deps: installing tests/browser's npm packages" >&2
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# The system users 'dijk serve' runs its processes as when started as root
# (docs/admin.md): protocol workers as dijk, the auth process as
# dijk-auth, the queue as dijk-queue, all in group dijk. No home, no shell.
system_users() {
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	if ! getent group dijk >/dev/null; then
		echo "deps: creating group dijk" >&2
		"${sudo[@]}" groupadd --system dijk
	fi
	local user
	for user in dijk dijk-auth dijk-queue; do
		if ! getent passwd "$user" >/dev/null; then
			echo "deps: creating user $user" >&2
			"${sudo[@]}" useradd --system --no-create-home \
				--shell /usr/sbin/nologin --gid dijk \
				--home-dir /nonexistent "$user"
		fi
	done
}

cd "$(dirname "$0")/.."
system_users
if [ ${#missing[@]} -eq 0 ]; then
	browser_modules "${1:-}"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	sudo=(sudo -E)
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it is used; the benchmark configures its own instance.
echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
browser_modules "${1:-}"
