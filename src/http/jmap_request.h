/* jmap_request.h: the JMAP (RFC 8620) API request, as the webmail POSTs it
 * to the API URL: parsing and validation (sections 3.3 and 3.6.1) and the
 * result references between method calls (section 3.7).
 *
 * A pure module: no sockets, no store, no static state. It turns the bytes
 * of a request body into a validated struct jmap_request, or into the
 * request-level problem to answer with (an RFC 7807 problem details object
 * whose type and limit are given here), and resolves the "#name" arguments
 * of a method call against the responses so far.
 *
 * Jansson allocates the JSON values; allocation failure panics. Nothing here
 * recurses more deeply than Jansson's own parser allows (2048 levels). */
#ifndef DIJK_HTTP_JMAP_REQUEST_H
#define DIJK_HTTP_JMAP_REQUEST_H

#include "core/common.h"

#include <jansson.h>

/* The request-level error types of RFC 8620 section 3.6.1. */
#define JMAP_ERROR_NOT_JSON    "urn:ietf:params:jmap:error:notJSON"
#define JMAP_ERROR_NOT_REQUEST "urn:ietf:params:jmap:error:notRequest"
#define JMAP_ERROR_LIMIT       "urn:ietf:params:jmap:error:limit"
#define JMAP_ERROR_UNKNOWN_CAPABILITY \
	"urn:ietf:params:jmap:error:unknownCapability"

/* The names of the limits a JMAP_ERROR_LIMIT problem can name. The first
 * two are core capabilities of RFC 8620 section 2; maxDepth is dijk's own. */
#define JMAP_LIMIT_MAX_SIZE_REQUEST	"maxSizeRequest"
#define JMAP_LIMIT_MAX_CALLS_IN_REQUEST "maxCallsInRequest"
#define JMAP_LIMIT_MAX_DEPTH		"maxDepth"

/* The method-level errors of a failed result reference (section 3.7). */
#define JMAP_METHOD_ERROR_INVALID_ARGUMENTS	   "invalidArguments"
#define JMAP_METHOD_ERROR_INVALID_RESULT_REFERENCE "invalidResultReference"

/* Longest method name and method call id, in bytes. */
#define JMAP_MAX_METHOD_NAME_SIZE 255
#define JMAP_MAX_CALL_ID_SIZE	  255
/* Longest Id (section 1.2), in bytes; the shortest is 1. */
#define JMAP_MAX_ID_SIZE 255
/* Most values one path with "*" may collect (see jmap_pointer). */
#define JMAP_POINTER_MAX_VALUES 1000000

#define JMAP_DEFAULT_MAX_SIZE_REQUEST	  10000000
#define JMAP_DEFAULT_MAX_CALLS_IN_REQUEST 64
#define JMAP_DEFAULT_MAX_DEPTH		  64

struct jmap_limits {
	/* Largest request body, in bytes. */
	size_t max_size_request;
	/* Most method calls in one request. */
	size_t max_calls_in_request;
	/* Deepest nesting of arrays and objects in the whole request: the
	 * root object is at depth 1, "methodCalls" at 2, a call at 3, its
	 * arguments at 4. Scalars add nothing. */
	size_t max_depth;
};

/* 10,000,000 bytes, 64 calls, depth 64. Mind that Jansson's tree costs far
 * more than the text: 10 MB of "{}," parse into some 750 MB in about 3 s,
 * so a server may well advertise a smaller maxSizeRequest. */
extern const struct jmap_limits jmap_default_limits;

/* One method call ("Invocation") of the request. Every pointer is borrowed
 * from the request's root and lives as long as the request. */
struct jmap_call {
	const char *name; /* 0 to 255 bytes, NUL-free, valid UTF-8 */
	json_t *args;	  /* always an object */
	const char *id;	  /* 0 to 255 bytes, NUL-free, valid UTF-8 */
};

struct jmap_request {
	json_t *root; /* owned: the parsed request object */
	/* The capability URNs of "using", in order, borrowed from root; each
	 * one is in the known_capabilities given to jmap_request_parse.
	 * Owned array (free'd by jmap_request_free). */
	const char **using;
	size_t using_count;
	/* The method calls in order, owned array; NULL when call_count is 0. */
	struct jmap_call *calls;
	size_t call_count;
	/* The optional "createdIds" object (borrowed from root), or NULL.
	 * Its keys and values are all valid Ids (see jmap_id_valid). */
	json_t *created_ids;
};

/* A request-level problem (RFC 8620 section 3.6.1). type is one of the
 * JMAP_ERROR_* URNs (static); limit is one of the JMAP_LIMIT_* names when
 * type is JMAP_ERROR_LIMIT, NULL otherwise. description says what was
 * wrong, NUL-terminated, and holds printable ASCII only (bytes of the
 * input that are not become '?'), so that it can go into a JSON reply
 * as is. */
struct jmap_problem {
	const char *type;
	const char *limit;
	char description[256];
};

/* Parses and validates the body of an API request: size bytes at body,
 * checked against limits (NULL: jmap_default_limits).
 *
 * Checks, in this order: the size (limit maxSizeRequest, before parsing);
 * that the body is one JSON value in UTF-8 (notJSON: invalid UTF-8, a NUL
 * byte, "\u0000" in a string or key, an unpaired surrogate, a duplicate key
 * in an object, a number Jansson cannot hold, nesting deeper than Jansson's
 * parser allows is limit maxDepth); the nesting depth (limit maxDepth); the
 * shape (notRequest: the root is an object with "using", an array of
 * strings, and "methodCalls", an array, and optionally "createdIds", an
 * object mapping Ids to Ids; each call is an array of exactly 3 items: a
 * name string, an arguments object, a call id string, the strings at most
 * 255 bytes); the number of calls (limit maxCallsInRequest, before the
 * calls are looked at); the capabilities (unknownCapability: a string of
 * "using" not in known_capabilities, a NULL-terminated list, NULL meaning
 * none). Other top-level keys are ignored.
 *
 * Returns 0 with *request filled (free it with jmap_request_free), or -1
 * with *problem filled and *request emptied (jmap_request_free on it is
 * harmless). body need not outlive the call. */
int jmap_request_parse(const uint8_t *body, size_t size,
		       const struct jmap_limits *limits,
		       const char *const *known_capabilities,
		       struct jmap_request *request,
		       struct jmap_problem *problem);

/* Frees what the request owns and empties it; may be called again. */
void jmap_request_free(struct jmap_request *request);

/* Whether "using" names the capability (compared byte for byte). */
bool jmap_request_uses(const struct jmap_request *request,
		       const char *capability);

/* Whether the size bytes at id form an Id (RFC 8620 section 1.2): 1 to 255
 * bytes of the URL-safe base64 alphabet (A-Z a-z 0-9 - _). */
bool jmap_id_valid(const char *id, size_t size);

/* Resolves the result references of a method call (RFC 8620 section 3.7).
 *
 * args is the call's arguments object; responses the method responses of
 * the request so far, a JSON array of [name, arguments, call id] arrays
 * (NULL: none yet; items of another shape are skipped). For each key of
 * args that starts with '#', its value must be a ResultReference object,
 * exactly the three strings "resultOf", "name" and "path". The first
 * response whose call id is resultOf must be named name; path is evaluated
 * on its arguments with jmap_pointer, and the result is put under the key
 * without its '#' ("##a" gives "#a"; "#" alone is malformed).
 *
 * Returns a new object (a new reference: json_decref it) holding the keys
 * of args in their order, references resolved. args is not changed; the
 * new object shares its values with args and the resolved values (or their
 * items) with responses, so callers must not modify those values in place.
 *
 * On failure returns NULL with *error_type_r the method-level error to
 * answer the call with, and *error_r a description (both static strings):
 * JMAP_METHOD_ERROR_INVALID_ARGUMENTS when args has a key both with and
 * without '#' (the RFC's rule for "foo" and "#foo"),
 * JMAP_METHOD_ERROR_INVALID_RESULT_REFERENCE for a malformed
 * ResultReference, no response with that call id, another name, or a path
 * that does not resolve. */
json_t *jmap_resolve_references(json_t *args, json_t *responses,
				const char **error_type_r,
				const char **error_r);

/* Evaluates pointer on value: a JSON Pointer (RFC 6901: "" is the value
 * itself, otherwise '/'-separated tokens with "~0" for '~' and "~1" for
 * '/'; array indexes are "0" or digits without a leading zero; "-" never
 * resolves) with the JMAP extension of RFC 8620 section 3.7: on an array,
 * the token "*" applies the rest of the pointer to every item and gives an
 * array of the results, in order, a result that is itself an array giving
 * its items instead (flattened). On an object, "*" is an ordinary key; on
 * anything else it fails. A pointer whose "*" steps would collect more than
 * JMAP_POINTER_MAX_VALUES values fails.
 *
 * Returns a new reference (json_decref it) to the value inside value, or to
 * a new array when a "*" was applied, or NULL when the pointer is
 * malformed or does not resolve. Iterative: any depth is safe. */
json_t *jmap_pointer(json_t *value, const char *pointer);

#endif
