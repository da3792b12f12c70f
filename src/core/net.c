/* net.c: peer addresses as text, and whether they are local. */
#include "core/common.h"

#include "core/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

void net_peer(const struct sockaddr *sa, char *text_r, size_t size,
	      bool *loopback_r)
{
	*loopback_r = false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, text_r, (socklen_t)size);
		*loopback_r = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, text_r, (socklen_t)size);
		*loopback_r = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
			      (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
			       in6->sin6_addr.s6_addr[12] == 127);
	} else {
		snprintf(text_r, size, "unknown");
	}
}
