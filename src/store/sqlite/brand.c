/* brand.c: webmail brands in meta.db. */
#include "core/common.h"

#include "store/sqlite/internal.h"

#include "core/utf8.h"

#include <ctype.h>

static bool valid_brand_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > STORE_MAX_BRAND_NAME || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return false;
	return true;
}

static bool valid_display(const char *display)
{
	size_t n = strlen(display);
	if (n == 0 || n > STORE_MAX_BRAND_DISPLAY ||
	    !utf8_valid(slice_make(display, n)))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)display[i] < 0x20 || display[i] == 0x7f)
			return false;
	return true;
}

/* "#rgb" or "#rrggbb" into lower-case "#rrggbb". */
static bool normalize_color(const char *color, char out[8])
{
	size_t n = strlen(color);
	if ((n != 4 && n != 7) || color[0] != '#')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isxdigit((unsigned char)color[i]))
			return false;
	out[0] = '#';
	for (size_t i = 0; i < 6; i++) {
		char c = n == 7 ? color[1 + i] : color[1 + i / 2];
		out[1 + i] = (char)tolower((unsigned char)c);
	}
	out[7] = '\0';
	return true;
}

/* The image type from the first bytes; NULL when not one we serve. */
static const char *logo_type(const uint8_t *p, size_t n)
{
	if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
		return "image/png";
	if (n >= 3 && memcmp(p, "\xff\xd8\xff", 3) == 0)
		return "image/jpeg";
	if (n >= 6 &&
	    (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
		return "image/gif";
	if (n >= 12 && memcmp(p, "RIFF", 4) == 0 &&
	    memcmp(p + 8, "WEBP", 4) == 0)
		return "image/webp";
	return NULL;
}

static int fail(struct store *s, const char **error_r, const char *fmt,
		const char *arg)
{
	snprintf(s->error, sizeof(s->error), fmt, arg);
	*error_r = s->error;
	return -1;
}

int store_brand_add(struct store *s, const struct store_brand *b,
		    const char **error_r)
{
	char color[8];
	if (!valid_brand_name(b->name))
		return fail(s, error_r,
			    "'%s' is not a brand name (a to z, 0 to 9 and '-',"
			    " at most 32)",
			    b->name);
	if (!valid_display(b->display))
		return fail(s, error_r,
			    "the display name of %s must be 1 to 128 bytes of"
			    " UTF-8 text",
			    b->name);
	if (!normalize_color(b->color, color))
		return fail(s, error_r, "'%s' is not a colour like #1a6b3c",
			    b->color);
	const char *type = NULL;
	if (b->logo != NULL) {
		if (b->logo_size > STORE_MAX_LOGO_SIZE)
			return fail(s, error_r,
				    "the logo of %s is over 256 KiB", b->name);
		type = logo_type(b->logo, b->logo_size);
		if (type == NULL)
			return fail(s, error_r,
				    "the logo of %s is not a PNG, JPEG, GIF"
				    " or WebP image",
				    b->name);
	}
	if (b->domain_count == 0 || b->domain_count > STORE_MAX_BRAND_DOMAINS)
		return fail(s, error_r, "brand %s needs 1 to 64 domains",
			    b->name);
	if (store_exec(s, s->meta, "BEGIN IMMEDIATE") != 0) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->meta,
			       "INSERT INTO brand (name, display, color, logo,"
			       " logo_type, created) VALUES (?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto db_error;
	sqlite3_bind_text(st, 1, b->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, b->display, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, color, -1, SQLITE_STATIC);
	if (b->logo != NULL) {
		sqlite3_bind_blob(st, 4, b->logo, (int)b->logo_size,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 5, type, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_CONSTRAINT) {
		sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
		return fail(s, error_r, "brand %s exists already", b->name);
	}
	if (rc != SQLITE_DONE)
		goto db_error;
	for (size_t i = 0; i < b->domain_count; i++) {
		char domain[256];
		if (store_normalize(slice_cstr(b->domains[i]), domain,
				    sizeof(domain)) != 0) {
			sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
			return fail(s, error_r, "'%s' is not a domain name",
				    b->domains[i]);
		}
		if (sqlite3_prepare_v2(
			    s->meta,
			    "INSERT INTO brand_domain (domain, brand)"
			    " SELECT name, ? FROM domain WHERE"
			    " name = ?",
			    -1, &st, NULL) != SQLITE_OK)
			goto db_error;
		sqlite3_bind_text(st, 1, b->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, domain, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (rc == SQLITE_CONSTRAINT) {
			sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
			return fail(s, error_r,
				    "domain %s belongs to another brand",
				    b->domains[i]);
		}
		if (rc != SQLITE_DONE)
			goto db_error;
		if (sqlite3_changes(s->meta) == 0) {
			sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
			return fail(s, error_r,
				    "no such domain: %s (add it with dijk"
				    " domain add)",
				    b->domains[i]);
		}
	}
	if (store_exec(s, s->meta, "COMMIT") != 0) {
		sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
		*error_r = s->error;
		return -1;
	}
	return 0;
db_error:
	*error_r = store_db_error(s, s->meta, "brand add");
	sqlite3_finalize(st);
	sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int store_brand_del(struct store *s, const char *name, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta, "DELETE FROM brand WHERE name = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "brand del");
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "brand del");
		return -1;
	}
	if (sqlite3_changes(s->meta) == 0)
		return fail(s, error_r, "no such brand: %s", name);
	return 0;
}

int store_brand_each(struct store *s,
		     void (*fn)(const struct store_brand *b, void *context),
		     void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    s->meta,
		    "SELECT b.name, b.display, b.color, b.logo, b.logo_type,"
		    " (SELECT group_concat(d.domain, ' ') FROM (SELECT domain"
		    " FROM brand_domain WHERE brand = b.name ORDER BY domain)"
		    " d) FROM brand b ORDER BY b.name",
		    -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "brand list");
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* The domains come as one space-separated string. */
		const char *text = (const char *)sqlite3_column_text(st, 5);
		char *copy = xstrdup(text ? text : "");
		const char *domains[STORE_MAX_BRAND_DOMAINS];
		size_t count = 0;
		for (char *p = copy; *p && count < STORE_MAX_BRAND_DOMAINS;) {
			domains[count++] = p;
			char *space = strchr(p, ' ');
			if (space == NULL)
				break;
			*space = '\0';
			p = space + 1;
		}
		struct store_brand b = {
			.name = (const char *)sqlite3_column_text(st, 0),
			.display = (const char *)sqlite3_column_text(st, 1),
			.color = (const char *)sqlite3_column_text(st, 2),
			.logo = sqlite3_column_blob(st, 3),
			.logo_size = (size_t)sqlite3_column_bytes(st, 3),
			.logo_type = (const char *)sqlite3_column_text(st, 4),
			.domains = domains,
			.domain_count = count,
		};
		fn(&b, context);
		free(copy);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "brand list");
		return -1;
	}
	return 0;
}
