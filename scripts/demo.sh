#!/usr/bin/env bash
# `make run`: a demo server on unprivileged loopback ports, with the domain
# example.test and the users alice and bob. The data directory is
# ./demo-data; it is made once and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
DIJK=${1:-build/dijk}
DATA=${DIJK_DEMO_DATA:-demo-data}

if [ ! -f "$DATA/dijk.conf" ]; then
	"$DIJK" init --data "$DATA" --hostname localhost >/dev/null
	"$DIJK" domain add example.test --data "$DATA"
	for user in alice bob; do
		password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
		printf '%s\n' "$password" |
			"$DIJK" user add "$user@example.test" --password-stdin --data "$DATA"
		printf '%s@example.test %s\n' "$user" "$password" >>"$DATA/demo-passwords"
	done
	cat >"$DATA/dijk.conf" <<CONF
# The demo: loopback only, unprivileged ports.
hostname = localhost
listen.smtp = 127.0.0.1:2525
listen.submission = 127.0.0.1:2587
listen.submissions = 127.0.0.1:2465
listen.imap = 127.0.0.1:2143
listen.imaps = 127.0.0.1:2993
listen.http = 127.0.0.1:8080
CONF
fi

cat <<TEXT

dijk demo, data in $DATA

Users and passwords:
$(sed 's/^/  /' "$DATA/demo-passwords")

Mail client settings (the certificate is self-signed: accept it once):
  Outgoing (SMTP submission): localhost port 2587, STARTTLS, or port 2465, SSL/TLS;
                              user name = the whole address, normal password
  Incoming (IMAP):            localhost port 2993, SSL/TLS, or port 2143, STARTTLS
  Incoming MX for tests:      localhost port 2525, no authentication
  The webmail (http://localhost:8080) comes with a later version.

Try it:
  swaks --server localhost:2525 --to bob@example.test --from someone@example.org
  $DIJK mail list bob@example.test --data $DATA

Stop with Ctrl-C.

TEXT
exec "$DIJK" serve --data "$DATA"
