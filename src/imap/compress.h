/* compress.h: COMPRESS=DEFLATE (RFC 4978) for an IMAP connection. */
#ifndef DIJK_IMAP_COMPRESS_H
#define DIJK_IMAP_COMPRESS_H

struct event_base;
struct bufferevent;

/* Wraps underlying in a DEFLATE filter; the filter owns it and frees it.
 * Returns NULL on failure (underlying is then untouched). */
struct bufferevent *imap_compress_start(struct event_base *base,
					struct bufferevent *underlying);

#endif
