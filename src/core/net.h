/* net.h: small helpers about peers of a connection. */
#ifndef DIJK_NET_H
#define DIJK_NET_H

#include "core/common.h"

#include <sys/socket.h>

/* Writes the peer's address as text (IPv4, IPv6, or "unknown") and tells
 * whether it is a loopback address (127/8, ::1, or ::ffff:127/104). */
void net_peer(const struct sockaddr *sa, char *text_r, size_t size,
	      bool *loopback_r);

#endif
