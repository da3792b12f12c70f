/* assets.h: the webmail's static files (web/), embedded in the binary at
 * build time by scripts/embed.py, each with its gzip form and ETag. */
#ifndef DIJK_HTTP_ASSETS_H
#define DIJK_HTTP_ASSETS_H

#include <stddef.h>

struct http_asset {
	const char *path; /* "/app.js": the path under web/ */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t size;
	const unsigned char *gzip;
	size_t gzip_size;
	const char *etag; /* quoted */
};

extern const struct http_asset http_assets[];
extern const size_t http_asset_count;

/* The asset at path, or NULL. */
const struct http_asset *http_asset_find(const char *path);

#endif
