/* compress.c: COMPRESS=DEFLATE (RFC 4978) as a libevent filter: raw
 * DEFLATE both ways, each write flushed so that the protocol stays
 * interactive. */
#include "core/common.h"

#include "imap/compress.h"

#include "core/log.h"

#include <zlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

/* A peer may not make us inflate more than this per input chunk before we
 * let the loop run (decompression bombs are bounded by the line and
 * literal limits of the framer above). */
#define COMPRESS_CHUNK 16384

struct deflate_ctx {
	z_stream in, out;
};

static void ctx_free(void *arg)
{
	struct deflate_ctx *c = arg;
	inflateEnd(&c->in);
	deflateEnd(&c->out);
	free(c);
}

static enum bufferevent_filter_result run(z_stream *z, bool inflating,
					  struct evbuffer *src,
					  struct evbuffer *dst, int flush)
{
	for (;;) {
		size_t avail = evbuffer_get_length(src);
		if (avail == 0)
			return BEV_OK;
		uint8_t *p = evbuffer_pullup(
			src,
			(ev_ssize_t)(avail > COMPRESS_CHUNK ? COMPRESS_CHUNK
							    : avail));
		z->next_in = p;
		z->avail_in =
			(uInt)(avail > COMPRESS_CHUNK ? COMPRESS_CHUNK : avail);
		bool more;
		do {
			struct evbuffer_iovec v;
			if (evbuffer_reserve_space(dst, COMPRESS_CHUNK, &v, 1) <
			    1)
				return BEV_ERROR;
			z->next_out = v.iov_base;
			z->avail_out = (uInt)v.iov_len;
			int rc = inflating ? inflate(z, Z_SYNC_FLUSH)
					   : deflate(z, flush);
			if (rc != Z_OK && rc != Z_BUF_ERROR &&
			    rc != Z_STREAM_END)
				return BEV_ERROR;
			v.iov_len -= z->avail_out;
			evbuffer_commit_space(dst, &v, 1);
			more = z->avail_out == 0;
		} while (more);
		size_t used = (size_t)(z->next_in - p);
		evbuffer_drain(src, used);
		if (avail <= COMPRESS_CHUNK)
			return BEV_OK;
	}
}

static enum bufferevent_filter_result
input_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
	     enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit;
	(void)mode;
	struct deflate_ctx *c = arg;
	return run(&c->in, true, src, dst, Z_SYNC_FLUSH);
}

static enum bufferevent_filter_result
output_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
	      enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit;
	(void)mode;
	struct deflate_ctx *c = arg;
	if (evbuffer_get_length(src) == 0)
		return BEV_OK;
	return run(&c->out, false, src, dst, Z_SYNC_FLUSH);
}

struct bufferevent *imap_compress_start(struct event_base *base,
					struct bufferevent *underlying)
{
	(void)base;
	struct deflate_ctx *c = xcalloc(1, sizeof(*c));
	if (inflateInit2(&c->in, -15) != Z_OK ||
	    deflateInit2(&c->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		free(c);
		return NULL;
	}
	struct bufferevent *bev =
		bufferevent_filter_new(underlying, input_filter, output_filter,
				       BEV_OPT_CLOSE_ON_FREE, ctx_free, c);
	if (bev == NULL)
		ctx_free(c);
	return bev;
}
