#!/usr/bin/env bash
# `make run`: a demo server on unprivileged loopback ports, with the domains
# example.test (users alice and bob) and example.org (user carol), each with
# a webmail brand of its own. The data directory is ./demo-data; it is made
# once and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
DIJK=${1:-build/dijk}
DATA=${DIJK_DEMO_DATA:-demo-data}

if [ ! -f "$DATA/dijk.conf" ]; then
	"$DIJK" init --data "$DATA" --hostname localhost >/dev/null
	"$DIJK" domain add example.test --data "$DATA"
	"$DIJK" domain add example.org --data "$DATA"
	for address in alice@example.test bob@example.test carol@example.org; do
		password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
		printf '%s\n' "$password" |
			"$DIJK" user add "$address" --password-stdin --data "$DATA"
		printf '%s %s\n' "$address" "$password" >>"$DATA/demo-passwords"
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
listen.https = 127.0.0.1:8443
# The demo keeps its mail to itself: no DNS, so nothing waits on a lookup,
# and mail for other domains stays in the queue (dijk queue list).
dns.resolver = none
CONF
fi
# Two brands, so that the portal asks which webmail a visitor wants (a
# data directory from an older demo gets them too).
if [ -z "$("$DIJK" brand list --data "$DATA")" ]; then
	"$DIJK" domain add example.org --data "$DATA" 2>/dev/null || true
	"$DIJK" brand add north --display "North Net Mail" --color "#1a6b3c" \
		--domain example.test --data "$DATA"
	"$DIJK" brand add south --display "Southbay Webmail" --color "#b4441c" \
		--domain example.org --data "$DATA"
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
  Webmail portal:             http://localhost:8080/ (or https://localhost:8443/)
                              asks once: North Net Mail or Southbay Webmail;
                              http://localhost:8080/choose changes the choice;
                              sign in with a user and password above.

Try it:
  swaks --server localhost:2525 --to bob@example.test --from someone@example.org
  $DIJK mail list bob@example.test --data $DATA

Stop with Ctrl-C.

TEXT
exec "$DIJK" serve --data "$DATA"
