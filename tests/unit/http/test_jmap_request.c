/* test_jmap_request.c: unit tests for src/http/jmap_request.c: request
 * parsing and its problems (RFC 8620 3.3, 3.6.1), JSON Pointer with "*"
 * and result references (3.7). */
#include "unit.h"

#include "http/jmap_request.h"

#define CORE "urn:ietf:params:jmap:core"
#define MAIL "urn:ietf:params:jmap:mail"

static const char *const capabilities[] = {CORE, MAIL, NULL};

/* Parses test JSON that must be valid; NULL otherwise (and a failure). */
static json_t *json(const char *text)
{
	json_error_t error;
	json_t *value = json_loads(text, JSON_DECODE_ANY, &error);
	CHECK(value != NULL);
	if (value == NULL)
		fprintf(stderr, "bad test JSON: %s: %s\n", error.text, text);
	return value;
}

/* Compact JSON text of value (with sorted keys), for comparisons. */
static bool json_text_is(const json_t *value, const char *expected)
{
	if (value == NULL)
		return expected == NULL;
	if (expected == NULL)
		return false;
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY |
					       JSON_SORT_KEYS);
	bool same = text != NULL && strcmp(text, expected) == 0;
	if (!same)
		fprintf(stderr, "got %s, expected %s\n", text ? text : "NULL",
			expected);
	free(text);
	return same;
}

static int parse_text(const char *text, const struct jmap_limits *limits,
		      struct jmap_request *request,
		      struct jmap_problem *problem)
{
	return jmap_request_parse((const uint8_t *)text, strlen(text), limits,
				  capabilities, request, problem);
}

static bool description_printable(const struct jmap_problem *problem)
{
	const char *d = problem->description;
	size_t n = strnlen(d, sizeof(problem->description));
	if (n == 0 || n == sizeof(problem->description))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] >= 0x7f)
			return false;
	return true;
}

static void test_parse_valid(void)
{
	struct jmap_request request;
	struct jmap_problem problem;

	CHECK(parse_text("{\"using\":[\"" CORE "\"],\"methodCalls\":[]}", NULL,
			 &request, &problem) == 0);
	CHECK(request.root != NULL && request.call_count == 0 &&
	      request.calls == NULL && request.using_count == 1 &&
	      strcmp(request.using[0], CORE) == 0 &&
	      request.created_ids == NULL);
	CHECK(jmap_request_uses(&request, CORE));
	CHECK(!jmap_request_uses(&request, MAIL));
	jmap_request_free(&request);
	CHECK(request.root == NULL && request.using == NULL &&
	      request.calls == NULL);
	jmap_request_free(&request); /* twice is harmless */

	/* The example of RFC 8620 section 3.3.1, with unknown top-level
	 * keys and whitespace around. */
	static const char example[] =
		" {\n \"using\": [ \"" CORE "\", \"" MAIL "\" ],\n"
		"  \"methodCalls\": [\n"
		"    [ \"method1\", {\n"
		"      \"arg1\": \"arg1data\",\n"
		"      \"arg2\": \"arg2data\"\n"
		"    }, \"c1\" ],\n"
		"    [ \"method2\", {\n"
		"      \"arg1\": \"arg1data\"\n"
		"    }, \"c2\" ],\n"
		"    [ \"method3\", {}, \"c3\" ]\n"
		"  ],\n"
		"  \"unknownKey\": {\"ignored\": [1, 2.5, null, true]}\n"
		"}\r\n";
	CHECK(parse_text(example, NULL, &request, &problem) == 0);
	CHECK(request.call_count == 3 && request.using_count == 2);
	CHECK(jmap_request_uses(&request, CORE));
	CHECK(jmap_request_uses(&request, MAIL));
	CHECK(!jmap_request_uses(&request, "urn:ietf:params:jmap"));
	CHECK(request.calls[0].name != NULL &&
	      strcmp(request.calls[0].name, "method1") == 0 &&
	      strcmp(request.calls[0].id, "c1") == 0 &&
	      json_object_size(request.calls[0].args) == 2);
	CHECK(strcmp(request.calls[1].name, "method2") == 0 &&
	      strcmp(request.calls[1].id, "c2") == 0 &&
	      json_text_is(request.calls[1].args, "{\"arg1\":\"arg1data\"}"));
	CHECK(strcmp(request.calls[2].name, "method3") == 0 &&
	      strcmp(request.calls[2].id, "c3") == 0 &&
	      json_is_object(request.calls[2].args) &&
	      json_object_size(request.calls[2].args) == 0);
	CHECK(request.created_ids == NULL);
	jmap_request_free(&request);

	/* With createdIds; empty names and ids are the methods' business;
	 * names and ids of 255 bytes; a repeated capability. */
	char name[256], id[256], body[1024];
	memset(name, 'n', 255);
	name[255] = '\0';
	memset(id, 'i', 255);
	id[255] = '\0';
	int n = snprintf(body, sizeof(body),
			 "{\"using\":[\"%s\",\"%s\"],\"methodCalls\":"
			 "[[\"%s\",{},\"%s\"],[\"\",{\"a\":{}},\"\"]],"
			 "\"createdIds\":{\"k1\":\"M123\",\"k-2_\":\"x\"}}",
			 MAIL, MAIL, name, id);
	CHECK(n > 0 && (size_t)n < sizeof(body));
	CHECK(parse_text(body, NULL, &request, &problem) == 0);
	CHECK(request.call_count == 2 && request.using_count == 2);
	CHECK(strlen(request.calls[0].name) == 255 &&
	      strlen(request.calls[0].id) == 255);
	CHECK(strcmp(request.calls[1].name, "") == 0 &&
	      strcmp(request.calls[1].id, "") == 0);
	CHECK(json_text_is(request.created_ids,
			   "{\"k-2_\":\"x\",\"k1\":\"M123\"}"));
	jmap_request_free(&request);

	/* UTF-8 and escapes are fine where they are valid. */
	CHECK(parse_text("{\"using\":[],\"methodCalls\":[[\"Gr\xc3\xbc\xc3\x9f/"
			 "get\",{\"s\":\"\\ud83d\\udce7 \xf0\x9f\x93\xa7\"},"
			 "\"\\u00e9\"]]}",
			 NULL, &request, &problem) == 0);
	CHECK(request.call_count == 1 &&
	      strcmp(request.calls[0].name, "Gr\xc3\xbc\xc3\x9f/get") == 0 &&
	      strcmp(request.calls[0].id, "\xc3\xa9") == 0 &&
	      request.using_count == 0);
	CHECK(json_text_is(request.calls[0].args,
			   "{\"s\":\"\xf0\x9f\x93\xa7 \xf0\x9f\x93\xa7\"}"));
	jmap_request_free(&request);
}

#define NOT_JSON	   JMAP_ERROR_NOT_JSON
#define NOT_REQUEST	   JMAP_ERROR_NOT_REQUEST
#define LIMIT		   JMAP_ERROR_LIMIT
#define UNKNOWN_CAPABILITY JMAP_ERROR_UNKNOWN_CAPABILITY

/* The start and end of a request around one method call. */
#define PRE  "{\"using\":[\"" CORE "\"],\"methodCalls\":["
#define POST "]}"

static const struct {
	const char *body;
	size_t size; /* 0: strlen(body) */
	const char *type, *limit;
	const char *description_part;
} error_cases[] = {
	{"", 0, NOT_JSON, NULL, "empty"},
	{"{", 0, NOT_JSON, NULL, "line 1"},
	{"not json", 0, NOT_JSON, NULL, "invalid JSON"},
	{"{\"using\":[],\"methodCalls\":[]} x", 0, NOT_JSON, NULL, NULL},
	{"{\"using\":[],\"methodCalls\":[]}{}", 0, NOT_JSON, NULL, NULL},
	{"{'using':[],'methodCalls':[]}", 0, NOT_JSON, NULL, NULL},
	{"{\"using\":[],\"methodCalls\":[],}", 0, NOT_JSON, NULL, NULL},
	/* UTF-8: a stray byte, an overlong form, an encoded surrogate, a
	 * code point over U+10FFFF, a truncated sequence, in values and in
	 * keys; a byte order mark. */
	{PRE "[\"a\xff\",{},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"\xc0\xaf\",{},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"\xed\xa0\x80\",{},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"\xf4\x90\x80\x80\",{},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"a\",{\"\xc3\":1},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{"\xef\xbb\xbf{\"using\":[],\"methodCalls\":[]}", 0, NOT_JSON, NULL,
	 NULL},
	/* Unpaired surrogates as escapes. */
	{PRE "[\"\\ud800\",{},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"a\",{},\"\\udc00x\"]" POST, 0, NOT_JSON, NULL, NULL},
	/* NUL: escaped in a value, in a key, raw in a string, raw after
	 * the request. */
	{PRE "[\"a\\u0000b\",{},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"a\",{\"k\\u0000\":1},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"a\",{\"\\u0000\":1},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{"{\"using\":[\"a\0b\"],\"methodCalls\":[]}", 36, NOT_JSON, NULL, NULL},
	{"{\"using\":[],\"methodCalls\":[]}\0", 31, NOT_JSON, NULL, NULL},
	/* Duplicate keys, at the top and deep inside. */
	{"{\"using\":[],\"using\":[],\"methodCalls\":[]}", 0, NOT_JSON, NULL,
	 "duplicate"},
	{PRE "[\"a\",{\"x\":{\"k\":1,\"k\":1}},\"c\"]" POST, 0, NOT_JSON, NULL,
	 "duplicate"},
	/* Numbers Jansson cannot hold. */
	{PRE "[\"a\",{\"n\":1e400},\"c\"]" POST, 0, NOT_JSON, NULL, NULL},
	{PRE "[\"a\",{\"n\":123456789012345678901234567890},\"c\"]" POST, 0,
	 NOT_JSON, NULL, NULL},
	/* JSON, but not a request. */
	{"[]", 0, NOT_REQUEST, NULL, "not a JSON object"},
	{"42", 0, NOT_REQUEST, NULL, NULL},
	{"\"using\"", 0, NOT_REQUEST, NULL, NULL},
	{"null", 0, NOT_REQUEST, NULL, NULL},
	{"{}", 0, NOT_REQUEST, NULL, "\"using\""},
	{"{\"methodCalls\":[]}", 0, NOT_REQUEST, NULL, "\"using\""},
	{"{\"using\":\"" CORE "\",\"methodCalls\":[]}", 0, NOT_REQUEST, NULL,
	 "\"using\""},
	{"{\"using\":[1],\"methodCalls\":[]}", 0, NOT_REQUEST, NULL,
	 "using[0]"},
	{"{\"using\":[\"" CORE "\",null],\"methodCalls\":[]}", 0, NOT_REQUEST,
	 NULL, "using[1]"},
	{"{\"using\":[]}", 0, NOT_REQUEST, NULL, "\"methodCalls\""},
	{"{\"using\":[],\"methodCalls\":{}}", 0, NOT_REQUEST, NULL,
	 "\"methodCalls\""},
	{"{\"using\":[],\"methodCalls\":null}", 0, NOT_REQUEST, NULL,
	 "\"methodCalls\""},
	{"{\"Using\":[],\"methodCalls\":[]}", 0, NOT_REQUEST, NULL, NULL},
	/* Method calls of the wrong shape. */
	{PRE "1" POST, 0, NOT_REQUEST, NULL, "methodCalls[0]"},
	{PRE "{}" POST, 0, NOT_REQUEST, NULL, "methodCalls[0]"},
	{PRE "[]" POST, 0, NOT_REQUEST, NULL, "methodCalls[0]"},
	{PRE "[\"a\",{}]" POST, 0, NOT_REQUEST, NULL, "3 items"},
	{PRE "[\"a\",{},\"c\",\"d\"]" POST, 0, NOT_REQUEST, NULL, "3 items"},
	{PRE "[\"a\",{},\"c\"],[\"a\",{},\"c\"],[]" POST, 0, NOT_REQUEST, NULL,
	 "methodCalls[2]"},
	{PRE "[1,{},\"c\"]" POST, 0, NOT_REQUEST, NULL, "method name"},
	{PRE "[null,{},\"c\"]" POST, 0, NOT_REQUEST, NULL, "method name"},
	{PRE "[\"a\",[],\"c\"]" POST, 0, NOT_REQUEST, NULL, "arguments"},
	{PRE "[\"a\",null,\"c\"]" POST, 0, NOT_REQUEST, NULL, "arguments"},
	{PRE "[\"a\",\"{}\",\"c\"]" POST, 0, NOT_REQUEST, NULL, "arguments"},
	{PRE "[\"a\",{},1]" POST, 0, NOT_REQUEST, NULL, "call id"},
	{PRE "[\"a\",{},[\"c\"]]" POST, 0, NOT_REQUEST, NULL, "call id"},
	{PRE "[\"a\",{},null]" POST, 0, NOT_REQUEST, NULL, "call id"},
	/* createdIds: an object mapping Ids to Ids. */
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":[]}", 0, NOT_REQUEST,
	 NULL, "createdIds"},
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":null}", 0,
	 NOT_REQUEST, NULL, "createdIds"},
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"k\":1}}", 0,
	 NOT_REQUEST, NULL, "createdIds"},
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"k\":\"\"}}", 0,
	 NOT_REQUEST, NULL, "createdIds"},
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"\":\"M1\"}}", 0,
	 NOT_REQUEST, NULL, "createdIds"},
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"a b\":\"M1\"}}", 0,
	 NOT_REQUEST, NULL, "createdIds"},
	{"{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"k\":\"M/1\"}}", 0,
	 NOT_REQUEST, NULL, "createdIds"},
	/* Capabilities: exact, case-sensitive; the type is checked first. */
	{"{\"using\":[\"urn:example:x\"],\"methodCalls\":[]}", 0,
	 UNKNOWN_CAPABILITY, NULL, "\"urn:example:x\""},
	{"{\"using\":[\"" CORE "\",\"" MAIL "x\"],\"methodCalls\":[]}", 0,
	 UNKNOWN_CAPABILITY, NULL, MAIL "x"},
	{"{\"using\":[\"URN:IETF:PARAMS:JMAP:CORE\"],\"methodCalls\":[]}", 0,
	 UNKNOWN_CAPABILITY, NULL, NULL},
	{"{\"using\":[\"\"],\"methodCalls\":[]}", 0, UNKNOWN_CAPABILITY, NULL,
	 NULL},
	{"{\"using\":[\"urn:x\",1],\"methodCalls\":[]}", 0, NOT_REQUEST, NULL,
	 "using[1]"},
	{"{\"using\":[\"urn:x\"],\"methodCalls\":[1]}", 0, NOT_REQUEST, NULL,
	 "methodCalls[0]"},
	/* Limits, with small ones (see error_limits). */
	{"{\"using\":[],\"methodCalls\":[[\"a\",{},\"1\"],[\"a\",{},\"2\"],"
	 "[\"a\",{},\"3\"]]}",
	 0, LIMIT, JMAP_LIMIT_MAX_CALLS_IN_REQUEST, "3 method calls"},
	/* The count comes before the shape of the calls. */
	{"{\"using\":[],\"methodCalls\":[1,2,3]}", 0, LIMIT,
	 JMAP_LIMIT_MAX_CALLS_IN_REQUEST, NULL},
	{PRE "[\"a\",{\"x\":[[1]]},\"c\"]" POST, 0, LIMIT, JMAP_LIMIT_MAX_DEPTH,
	 "5 deep"},
	/* Depth counts under ignored keys too, and comes before the shape. */
	{"{\"x\":[[[[[[]]]]]]}", 0, LIMIT, JMAP_LIMIT_MAX_DEPTH, NULL},
	{"[[[[[[]]]]]]", 0, LIMIT, JMAP_LIMIT_MAX_DEPTH, NULL},
	{"{\"using\":[],\"methodCalls\":[],\"padding\":\"" /* 100 bytes */
	 "0123456789012345678901234567890123456789012345678901234567\"}",
	 0, LIMIT, JMAP_LIMIT_MAX_SIZE_REQUEST, "100 bytes"},
	/* Size comes before everything. */
	{"not JSON, but longer than one hundred bytes, which is the limit of "
	 "size in this table: 0123456789012345678901234567890123456789",
	 0, LIMIT, JMAP_LIMIT_MAX_SIZE_REQUEST, "more than the 99 allowed"},
};

static const struct jmap_limits error_limits = {
	.max_size_request = 99,
	.max_calls_in_request = 2,
	.max_depth = 5,
};

static void test_parse_errors(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		const char *body = error_cases[i].body;
		size_t size = error_cases[i].size ? error_cases[i].size
						  : strlen(body);
		/* The cases of limits use small ones. */
		const struct jmap_limits *limits =
			error_cases[i].limit != NULL ? &error_limits
						     : &jmap_default_limits;
		struct jmap_request request;
		struct jmap_problem problem;
		memset(&request, 0xa5, sizeof(request));
		int r = jmap_request_parse((const uint8_t *)body, size, limits,
					   capabilities, &request, &problem);
		CHECK_CASE(r == -1, i, body);
		CHECK_CASE(problem.type != NULL &&
				   strcmp(problem.type, error_cases[i].type) ==
					   0,
			   i, body);
		if (error_cases[i].limit == NULL)
			CHECK_CASE(problem.limit == NULL, i, body);
		else
			CHECK_CASE(problem.limit != NULL &&
					   strcmp(problem.limit,
						  error_cases[i].limit) == 0,
				   i, body);
		CHECK_CASE(description_printable(&problem), i, body);
		if (error_cases[i].description_part != NULL)
			CHECK_CASE(strstr(problem.description,
					  error_cases[i].description_part) !=
					   NULL,
				   i, body);
		if (r == -1 && problem.type != NULL &&
		    strcmp(problem.type, error_cases[i].type) != 0)
			fprintf(stderr, "  got %s: %s\n", problem.type,
				problem.description);
		/* A failed parse leaves the request empty. */
		CHECK_CASE(request.root == NULL && request.using == NULL &&
				   request.calls == NULL &&
				   request.call_count == 0 &&
				   request.using_count == 0 &&
				   request.created_ids == NULL,
			   i, body);
		jmap_request_free(&request);
	}
}

/* Problem descriptions quote the input: they stay printable ASCII. */
static void test_descriptions(void)
{
	struct jmap_request request;
	struct jmap_problem problem;
	CHECK(parse_text("{\"using\":[\"urn:\xc3\xa9t\xc3\xa9\"],"
			 "\"methodCalls\":[]}",
			 NULL, &request, &problem) == -1);
	CHECK(strcmp(problem.type, UNKNOWN_CAPABILITY) == 0);
	CHECK(strstr(problem.description, "\"urn:??t??\"") != NULL);
	CHECK(description_printable(&problem));

	CHECK(parse_text("{\"using\":[],\"methodCalls\":[]}\x01\xff\xfe\n",
			 NULL, &request, &problem) == -1);
	CHECK(strcmp(problem.type, NOT_JSON) == 0);
	CHECK(description_printable(&problem));

	/* A capability longer than the description is cut. */
	char body[1200];
	char capability[1001];
	memset(capability, 'x', 1000);
	capability[1000] = '\0';
	int n = snprintf(body, sizeof(body),
			 "{\"using\":[\"%s\"],\"methodCalls\":[]}", capability);
	CHECK(n > 0 && (size_t)n < sizeof(body));
	CHECK(parse_text(body, NULL, &request, &problem) == -1);
	CHECK(strcmp(problem.type, UNKNOWN_CAPABILITY) == 0);
	CHECK(strlen(problem.description) == sizeof(problem.description) - 1);
	CHECK(description_printable(&problem));

	/* No capabilities known at all. */
	CHECK(jmap_request_parse(
		      (const uint8_t *)"{\"using\":[\"" CORE
				       "\"],\"methodCalls\":[]}",
		      strlen("{\"using\":[\"" CORE "\"],\"methodCalls\":[]}"),
		      NULL, NULL, &request, &problem) == -1);
	CHECK(strcmp(problem.type, UNKNOWN_CAPABILITY) == 0);
}

/* A request with calls method calls, in a new string. */
static char *request_with_calls(size_t calls)
{
	size_t size = 64 + calls * 32;
	char *text = xmalloc(size);
	size_t n = 0;
	int r = snprintf(text, size, "{\"using\":[\"%s\"],\"methodCalls\":[",
			 CORE);
	DIJK_ASSERT(r > 0 && (size_t)r < size);
	n = (size_t)r;
	for (size_t i = 0; i < calls; i++) {
		r = snprintf(text + n, size - n,
			     "%s[\"Core/echo\",{},\"c%zu\"]", i ? "," : "", i);
		DIJK_ASSERT(r > 0 && (size_t)r < size - n);
		n += (size_t)r;
	}
	r = snprintf(text + n, size - n, "]}");
	DIJK_ASSERT(r > 0 && (size_t)r < size - n);
	return text;
}

/* A request whose one call's arguments hold depth - 4 nested arrays, so
 * that the deepest container is at depth (the root being at 1). */
static char *request_with_depth(size_t depth)
{
	DIJK_ASSERT(depth >= 4);
	size_t arrays = depth - 4, size = 128 + 2 * arrays;
	char *text = xmalloc(size);
	int r = snprintf(text, size,
			 "{\"using\":[],\"methodCalls\":[[\"a\",{\"x\":");
	DIJK_ASSERT(r > 0);
	size_t n = (size_t)r;
	memset(text + n, '[', arrays);
	n += arrays;
	text[n++] = '0';
	memset(text + n, ']', arrays);
	n += arrays;
	r = snprintf(text + n, size - n, "},\"c\"]]}");
	DIJK_ASSERT(r > 0 && (size_t)r < size - n);
	return text;
}

static void test_limits(void)
{
	struct jmap_request request;
	struct jmap_problem problem;

	CHECK(jmap_default_limits.max_size_request == 10000000);
	CHECK(jmap_default_limits.max_calls_in_request == 64);
	CHECK(jmap_default_limits.max_depth == 64);

	/* 64 calls are fine, 65 are a limit. */
	char *text = request_with_calls(64);
	CHECK(parse_text(text, NULL, &request, &problem) == 0);
	CHECK(request.call_count == 64 &&
	      strcmp(request.calls[63].id, "c63") == 0 &&
	      strcmp(request.calls[63].name, "Core/echo") == 0);
	jmap_request_free(&request);
	free(text);
	text = request_with_calls(65);
	CHECK(parse_text(text, NULL, &request, &problem) == -1);
	CHECK(strcmp(problem.type, LIMIT) == 0 && problem.limit != NULL &&
	      strcmp(problem.limit, JMAP_LIMIT_MAX_CALLS_IN_REQUEST) == 0);
	CHECK(strstr(problem.description, "65 method calls") != NULL);
	CHECK(request.root == NULL && request.calls == NULL);
	free(text);

	/* Depth 64 is fine, 65 is a limit; so is a depth beyond Jansson's
	 * own limit (2048), rather than notJSON. */
	text = request_with_depth(64);
	CHECK(parse_text(text, NULL, &request, &problem) == 0);
	jmap_request_free(&request);
	free(text);
	static const size_t deep[] = {65, 66, 2048, 2049, 100000};
	for (size_t i = 0; i < ARRAY_SIZE(deep); i++) {
		text = request_with_depth(deep[i]);
		CHECK_CASE(parse_text(text, NULL, &request, &problem) == -1, i,
			   "depth");
		CHECK_CASE(strcmp(problem.type, LIMIT) == 0 &&
				   problem.limit != NULL &&
				   strcmp(problem.limit,
					  JMAP_LIMIT_MAX_DEPTH) == 0,
			   i, "depth");
		free(text);
	}
	/* A tolerant limit lets Jansson's own be the bound. */
	struct jmap_limits tolerant = jmap_default_limits;
	tolerant.max_depth = SIZE_MAX;
	text = request_with_depth(2000);
	CHECK(parse_text(text, &tolerant, &request, &problem) == 0);
	jmap_request_free(&request);
	free(text);
	text = request_with_depth(3000);
	CHECK(parse_text(text, &tolerant, &request, &problem) == -1);
	CHECK(strcmp(problem.type, LIMIT) == 0 &&
	      strcmp(problem.limit, JMAP_LIMIT_MAX_DEPTH) == 0 &&
	      strstr(problem.description, "more than 2048 deep") != NULL);
	free(text);
	/* Depth 0 allows no request at all, depth 3 no arguments. */
	struct jmap_limits strict = jmap_default_limits;
	strict.max_depth = 0;
	CHECK(parse_text("{}", &strict, &request, &problem) == -1 &&
	      strcmp(problem.limit, JMAP_LIMIT_MAX_DEPTH) == 0);
	CHECK(parse_text("\"x\"", &strict, &request, &problem) == -1 &&
	      strcmp(problem.type, NOT_REQUEST) == 0);
	strict.max_depth = 3;
	CHECK(parse_text("{\"using\":[],\"methodCalls\":[]}", &strict, &request,
			 &problem) == 0);
	jmap_request_free(&request);
	CHECK(parse_text("{\"using\":[],\"methodCalls\":[[\"a\",{},\"c\"]]}",
			 &strict, &request, &problem) == -1 &&
	      strcmp(problem.limit, JMAP_LIMIT_MAX_DEPTH) == 0);

	/* Exactly the size limit is fine, a byte more is not. */
	size_t size = jmap_default_limits.max_size_request;
	char *big = xmalloc(size + 1);
	static const char small[] = "{\"using\":[],\"methodCalls\":[]}";
	memcpy(big, small, strlen(small));
	memset(big + strlen(small), ' ', size + 1 - strlen(small));
	CHECK(jmap_request_parse((const uint8_t *)big, size, NULL, capabilities,
				 &request, &problem) == 0);
	jmap_request_free(&request);
	CHECK(jmap_request_parse((const uint8_t *)big, size + 1, NULL,
				 capabilities, &request, &problem) == -1);
	CHECK(strcmp(problem.type, LIMIT) == 0 &&
	      strcmp(problem.limit, JMAP_LIMIT_MAX_SIZE_REQUEST) == 0);
	CHECK(strstr(problem.description, "10000001 bytes") != NULL);
	free(big);
}

static void test_id_valid(void)
{
	static const struct {
		const char *id;
		bool valid;
	} cases[] = {
		{"a", true},   {"M123", true},	    {"-_aZ09", true},
		{"", false},   {"a b", false},	    {"a/b", false},
		{"a=", false}, {"\xc3\xa9", false}, {"a.b", false},
		{"+", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK_CASE(jmap_id_valid(cases[i].id, strlen(cases[i].id)) ==
				   cases[i].valid,
			   i, cases[i].id);
	char id[257];
	memset(id, 'a', sizeof(id));
	CHECK(jmap_id_valid(id, 255));
	CHECK(!jmap_id_valid(id, 256));
	CHECK(!jmap_id_valid("a\0b", 3));
}

static void test_pointer(void)
{
	/* The example document of RFC 6901 section 5, and more. */
	json_t *doc = json(
		"{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,"
		"\"e^f\":3,\"g|h\":4,\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,"
		"\"m~n\":8,\"~1\":9,\"~\":{\"/\":10},"
		"\"list\":[{\"id\":\"1\",\"ids\":[\"a\",\"b\"],\"n\":{\"x\":1}},"
		"{\"id\":\"2\",\"ids\":[\"c\"],\"n\":{\"x\":[2,[3]]}}],"
		"\"nested\":[[1,2],[3],4,[]],\"deep\":[[[1],[2]],[[3]]],"
		"\"empty\":[],\"obj\":{\"*\":\"star\"},\"num\":5,"
		"\"big\":[0,1,2,3,4,5,6,7,8,9,10,11]}");
	static const struct {
		const char *pointer;
		const char *expected; /* NULL: does not resolve */
	} cases[] = {
		{"/foo", "[\"bar\",\"baz\"]"},
		{"/foo/0", "\"bar\""},
		{"/foo/1", "\"baz\""},
		{"/", "0"},
		{"/a~1b", "1"},
		{"/c%d", "2"},
		{"/e^f", "3"},
		{"/g|h", "4"},
		{"/i\\j", "5"},
		{"/k\"l", "6"},
		{"/ ", "7"},
		{"/m~0n", "8"},
		/* "~01" is "~1", not "~/" */
		{"/~01", "9"},
		{"/~0/~1", "10"},
		{"/big/11", "11"},
		{"/big/10", "10"},
		/* Malformed pointers and missing values. */
		{"foo", NULL},
		{"#/foo", NULL},
		{"/m~2n", NULL},
		{"/m~", NULL},
		{"/m~n", NULL},
		{"/foo/2", NULL},
		{"/foo/-", NULL},
		{"/foo/01", NULL},
		{"/foo/00", NULL},
		{"/foo/+1", NULL},
		{"/foo/-1", NULL},
		{"/foo/ 1", NULL},
		{"/foo/1 ", NULL},
		{"/foo/", NULL},
		{"/foo/x", NULL},
		{"/foo/99999999999999999999999999", NULL},
		{"/missing", NULL},
		{"/num/0", NULL},
		{"/num/x", NULL},
		{"/foo/0/0", NULL},
		{"//", NULL},
		/* "*" maps over arrays and flattens one level. */
		{"/list/*/id", "[\"1\",\"2\"]"},
		{"/list/*/ids", "[\"a\",\"b\",\"c\"]"},
		{"/list/*/ids/0", "[\"a\",\"c\"]"},
		{"/list/*/n/x", "[1,2,[3]]"},
		{"/list/*/ids/*", "[\"a\",\"b\",\"c\"]"},
		{"/nested/*", "[1,2,3,4]"},
		{"/deep/*", "[[1],[2],[3]]"},
		{"/deep/*/*", "[1,2,3]"},
		{"/deep/*/0", "[1,3]"},
		{"/empty/*", "[]"},
		{"/empty/*/x/y", "[]"},
		{"/foo/*", "[\"bar\",\"baz\"]"},
		/* "*" on anything else: a key of an object, else nothing. */
		{"/obj/*", "\"star\""},
		{"/list/0/*", NULL},
		{"/num/*", NULL},
		{"/foo/0/*", NULL},
		{"/foo/*/*", NULL},
		{"/list/*/missing", NULL},
		{"/list/*/ids/1", NULL},
		{"/nested/*/0", NULL},
		{"/list/*/id/*", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *result = jmap_pointer(doc, cases[i].pointer);
		CHECK_CASE(json_text_is(result, cases[i].expected), i,
			   cases[i].pointer);
		json_decref(result);
	}
	/* "" is the document itself, the same value. */
	json_t *self = jmap_pointer(doc, "");
	CHECK(self == doc);
	json_decref(self);
	/* Without "*" the result is the value inside, shared. */
	json_t *foo = jmap_pointer(doc, "/foo");
	CHECK(foo == json_object_get(doc, "foo"));
	json_decref(foo);
	CHECK(jmap_pointer(NULL, "") == NULL);
	CHECK(jmap_pointer(doc, NULL) == NULL);

	/* Any depth: a pointer much deeper than the value. */
	size_t n = 100000;
	char *pointer = xmalloc(2 * n + 1);
	for (size_t i = 0; i < n; i++) {
		pointer[2 * i] = '/';
		pointer[2 * i + 1] = '*';
	}
	pointer[2 * n] = '\0';
	json_t *result = jmap_pointer(doc, pointer);
	CHECK(result == NULL);
	json_t *scalar = json_integer(1);
	CHECK(jmap_pointer(scalar, pointer) == NULL);
	json_t *empty = json_array();
	result = jmap_pointer(empty, pointer);
	CHECK(json_text_is(result, "[]"));
	json_decref(result);
	json_decref(empty);
	json_decref(scalar);
	free(pointer);

	/* Values shared over and over cannot make "*" collect without
	 * end: 2^30 paths through 30 shared arrays. */
	json_t *shared = json_integer(7);
	for (size_t i = 0; i < 30; i++) {
		json_t *pair = json_array();
		json_array_append(pair, shared);
		json_array_append_new(pair, shared);
		shared = pair;
	}
	char star_path[64 * 2 + 1];
	for (size_t i = 0; i < 30; i++)
		memcpy(star_path + 2 * i, "/*", 2);
	star_path[60] = '\0';
	CHECK(jmap_pointer(shared, star_path) == NULL);
	/* 18 steps reach 2^18 pairs, flattened to 2^19 values: under
	 * JMAP_POINTER_MAX_VALUES. */
	star_path[36] = '\0';
	result = jmap_pointer(shared, star_path);
	CHECK(json_is_array(result) && json_array_size(result) == 1u << 19);
	json_decref(result);
	json_decref(shared);
	json_decref(doc);
}

/* The example of RFC 8620 section 3.7: the first 10 emails of the inbox
 * by date, their threads, and the emails of those threads. */
static const char rfc_request[] =
	"{\"using\":[\"" CORE "\",\"" MAIL "\"],\"methodCalls\":["
	"[\"Email/query\",{\"accountId\":\"A1\","
	"\"filter\":{\"inMailbox\":\"id_of_inbox\"},"
	"\"sort\":[{\"property\":\"receivedAt\",\"isAscending\":false}],"
	"\"collapseThreads\":true,\"position\":0,\"limit\":10,"
	"\"calculateTotal\":true},\"t0\"],"
	"[\"Email/get\",{\"accountId\":\"A1\",\"#ids\":{\"resultOf\":\"t0\","
	"\"name\":\"Email/query\",\"path\":\"/ids\"},"
	"\"properties\":[\"threadId\"]},\"t1\"],"
	"[\"Thread/get\",{\"accountId\":\"A1\",\"#ids\":{\"resultOf\":\"t1\","
	"\"name\":\"Email/get\",\"path\":\"/list/*/threadId\"}},\"t2\"],"
	"[\"Email/get\",{\"accountId\":\"A1\",\"#ids\":{\"resultOf\":\"t2\","
	"\"name\":\"Thread/get\",\"path\":\"/list/*/emailIds\"},"
	"\"properties\":[\"from\",\"receivedAt\",\"subject\"]},\"t3\"]]}";

/* The arguments of the responses to the first three calls. */
static const char *const rfc_responses[] = {
	"{\"accountId\":\"A1\",\"queryState\":\"abcdefg\","
	"\"canCalculateChanges\":true,\"position\":0,\"total\":101,"
	"\"ids\":[\"msg1023\",\"msg223\",\"msg110\",\"msg93\",\"msg91\","
	"\"msg38\",\"msg36\",\"msg33\",\"msg11\",\"msg1\"]}",
	"{\"accountId\":\"A1\",\"state\":\"123456\",\"list\":["
	"{\"id\":\"msg1023\",\"threadId\":\"trd194\"},"
	"{\"id\":\"msg223\",\"threadId\":\"trd114\"}],\"notFound\":[]}",
	"{\"accountId\":\"A1\",\"state\":\"123456\",\"list\":["
	"{\"id\":\"trd194\",\"emailIds\":[\"msg1020\",\"msg1021\","
	"\"msg1023\"]},"
	"{\"id\":\"trd114\",\"emailIds\":[\"msg201\",\"msg223\"]}],"
	"\"notFound\":[]}",
};

/* What each call's arguments resolve to. */
static const char *const rfc_resolved[] = {
	"{\"accountId\":\"A1\",\"calculateTotal\":true,"
	"\"collapseThreads\":true,\"filter\":{\"inMailbox\":\"id_of_inbox\"},"
	"\"limit\":10,\"position\":0,"
	"\"sort\":[{\"isAscending\":false,\"property\":\"receivedAt\"}]}",
	"{\"accountId\":\"A1\",\"ids\":[\"msg1023\",\"msg223\",\"msg110\","
	"\"msg93\",\"msg91\",\"msg38\",\"msg36\",\"msg33\",\"msg11\",\"msg1\"],"
	"\"properties\":[\"threadId\"]}",
	"{\"accountId\":\"A1\",\"ids\":[\"trd194\",\"trd114\"]}",
	"{\"accountId\":\"A1\",\"ids\":[\"msg1020\",\"msg1021\",\"msg1023\","
	"\"msg201\",\"msg223\"],\"properties\":[\"from\",\"receivedAt\","
	"\"subject\"]}",
};

static void test_rfc_example(void)
{
	struct jmap_request request;
	struct jmap_problem problem;
	CHECK(parse_text(rfc_request, NULL, &request, &problem) == 0);
	CHECK(request.call_count == 4);
	if (request.call_count != 4) {
		jmap_request_free(&request);
		return;
	}
	json_t *responses = json_array();
	for (size_t i = 0; i < 4; i++) {
		json_t *args = request.calls[i].args;
		json_t *before = json_deep_copy(args);
		const char *type = NULL, *error = NULL;
		json_t *resolved =
			jmap_resolve_references(args, responses, &type, &error);
		CHECK_CASE(resolved != NULL && resolved != args, i,
			   request.calls[i].name);
		CHECK_CASE(json_text_is(resolved, rfc_resolved[i]), i,
			   request.calls[i].name);
		/* The input is untouched: "#ids" is still there. */
		CHECK_CASE(json_equal(before, args), i, request.calls[i].name);
		CHECK_CASE(i == 0 || (json_object_get(args, "#ids") != NULL &&
				      json_object_get(args, "ids") == NULL),
			   i, request.calls[i].name);
		/* Keys keep their order: "ids" where "#ids" was. */
		if (i > 0 && resolved != NULL) {
			void *iter = json_object_iter(resolved);
			iter = json_object_iter_next(resolved, iter);
			CHECK_CASE(iter != NULL &&
					   strcmp(json_object_iter_key(iter),
						  "ids") == 0,
				   i, request.calls[i].name);
		}
		/* The resolved object is the caller's to change. */
		if (resolved != NULL)
			json_object_set_new(resolved, "added", json_true());
		CHECK_CASE(json_object_get(args, "added") == NULL, i,
			   request.calls[i].name);
		json_decref(before);
		json_decref(resolved);
		if (i < 3)
			json_array_append_new(responses,
					      json_pack("[s,o,s]",
							request.calls[i].name,
							json(rfc_responses[i]),
							request.calls[i].id));
	}
	json_decref(responses);
	jmap_request_free(&request);
}

/* Responses for the error cases: t0 answered twice (as Email/copy may
 * be), malformed items that are skipped, escapes in keys. */
static const char reference_responses[] =
	"[[\"Email/query\",{\"ids\":[\"m1\",\"m2\"],\"total\":2},\"t0\"],"
	"[\"Email/set\",{\"created\":{}},\"t0\"],"
	"[\"Bad/item\",{},\"t1\",\"extra\"],"
	"[1,{},\"t1\"],"
	"\"junk\","
	"[\"Email/get\",{\"list\":[{\"id\":\"m1\",\"threadId\":\"T1\"},"
	"{\"id\":\"m2\",\"threadId\":\"T2\"}],\"a/b\":{\"m~n\":[1,2]},"
	"\"ids\":\"not an array\"},\"t1\"],"
	"[\"Core/echo\",[\"not\",\"an\",\"object\"],\"t2\"]]";

#define INVALID_REF  JMAP_METHOD_ERROR_INVALID_RESULT_REFERENCE
#define INVALID_ARGS JMAP_METHOD_ERROR_INVALID_ARGUMENTS
#define REF(of, name, path) \
	"{\"resultOf\":\"" of "\",\"name\":\"" name "\",\"path\":\"" path "\"}"

static const struct {
	const char *args;
	const char *expected;	/* resolved, sorted keys; NULL: error */
	const char *error_type; /* when expected is NULL */
} reference_cases[] = {
	{"{}", "{}", NULL},
	{"{\"a\":1,\"b\":{\"#c\":1}}", "{\"a\":1,\"b\":{\"#c\":1}}", NULL},
	{"{\"#ids\":" REF("t0", "Email/query", "/ids") "}",
	 "{\"ids\":[\"m1\",\"m2\"]}", NULL},
	{"{\"#ids\":" REF("t1", "Email/get", "/list/*/threadId") ",\"x\":1}",
	 "{\"ids\":[\"T1\",\"T2\"],\"x\":1}", NULL},
	{"{\"#a\":" REF("t0", "Email/query", "/total") ",\"#b\":" REF(
		 "t1", "Email/get", "/list/1/id") "}",
	 "{\"a\":2,\"b\":\"m2\"}", NULL},
	/* Escapes ~0 and ~1. */
	{"{\"#v\":" REF("t1", "Email/get", "/a~1b/m~0n") "}", "{\"v\":[1,2]}",
	 NULL},
	{"{\"#v\":" REF("t1", "Email/get", "/a~1b/m~0n/1") "}", "{\"v\":2}",
	 NULL},
	/* The whole arguments. */
	{"{\"#v\":" REF("t0", "Email/query", "") "}",
	 "{\"v\":{\"ids\":[\"m1\",\"m2\"],\"total\":2}}", NULL},
	/* "##a" is a reference for "#a". */
	{"{\"##a\":" REF("t0", "Email/query", "/total") "}", "{\"#a\":2}",
	 NULL},
	/* The first response with the call id counts, and must have the
	 * name: t0 is Email/query, not Email/set. */
	{"{\"#ids\":" REF("t0", "Email/set", "/created") "}", NULL,
	 INVALID_REF},
	/* A missing call id, a wrong name. */
	{"{\"#ids\":" REF("t9", "Email/query", "/ids") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("T0", "Email/query", "/ids") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t0", "Email/Query", "/ids") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t1", "Bad/item", "") "}", NULL, INVALID_REF},
	/* Pointers that are malformed or do not resolve. */
	{"{\"#ids\":" REF("t0", "Email/query", "ids") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t0", "Email/query", "/nope") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t0", "Email/query", "/ids/2") "}", NULL,
	 INVALID_REF},
	{"{\"#ids\":" REF("t1", "Email/get", "/a~2b") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t1", "Email/get", "/a/b/m~n") "}", NULL,
	 INVALID_REF},
	/* "*" on what is not an array. */
	{"{\"#ids\":" REF("t0", "Email/query", "/total/*") "}", NULL,
	 INVALID_REF},
	{"{\"#ids\":" REF("t1", "Email/get", "/ids/*") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t1", "Email/get", "/*") "}", NULL, INVALID_REF},
	{"{\"#ids\":" REF("t1", "Email/get", "/list/*/id/*") "}", NULL,
	 INVALID_REF},
	/* Arguments that are not an object. */
	{"{\"#ids\":" REF("t2", "Core/echo", "/0") "}", "{\"ids\":\"not\"}",
	 NULL},
	{"{\"#ids\":" REF("t2", "Core/echo", "/*") "}",
	 "{\"ids\":[\"not\",\"an\",\"object\"]}", NULL},
	/* Both "ids" and "#ids", in either order. */
	{"{\"ids\":[],\"#ids\":" REF("t0", "Email/query", "/ids") "}", NULL,
	 INVALID_ARGS},
	{"{\"#ids\":" REF("t0", "Email/query", "/ids") ",\"ids\":null}", NULL,
	 INVALID_ARGS},
	{"{\"#a\":" REF("t0", "Email/query", "/ids") ",\"##a\":" REF(
		 "t0", "Email/query", "/ids") "}",
	 NULL, INVALID_ARGS},
	/* Malformed ResultReferences. */
	{"{\"#ids\":null}", NULL, INVALID_REF},
	{"{\"#ids\":\"t0\"}", NULL, INVALID_REF},
	{"{\"#ids\":[\"t0\",\"Email/query\",\"/ids\"]}", NULL, INVALID_REF},
	{"{\"#ids\":{}}", NULL, INVALID_REF},
	{"{\"#ids\":{\"resultOf\":\"t0\",\"name\":\"Email/query\"}}", NULL,
	 INVALID_REF},
	{"{\"#ids\":{\"resultOf\":\"t0\",\"path\":\"/ids\"}}", NULL,
	 INVALID_REF},
	{"{\"#ids\":{\"name\":\"Email/query\",\"path\":\"/ids\"}}", NULL,
	 INVALID_REF},
	{"{\"#ids\":{\"resultOf\":\"t0\",\"name\":\"Email/query\","
	 "\"path\":\"/ids\",\"x\":1}}",
	 NULL, INVALID_REF},
	{"{\"#ids\":{\"resultOf\":0,\"name\":\"Email/query\","
	 "\"path\":\"/ids\"}}",
	 NULL, INVALID_REF},
	{"{\"#ids\":{\"resultOf\":\"t0\",\"name\":null,\"path\":\"/ids\"}}",
	 NULL, INVALID_REF},
	{"{\"#ids\":{\"resultOf\":\"t0\",\"name\":\"Email/query\","
	 "\"path\":[\"ids\"]}}",
	 NULL, INVALID_REF},
	{"{\"#\":" REF("t0", "Email/query", "/ids") "}", NULL, INVALID_REF},
	/* One bad reference among good ones fails the call. */
	{"{\"#a\":" REF("t0", "Email/query", "/ids") ",\"#b\":" REF(
		 "t0", "Email/query", "/nope") "}",
	 NULL, INVALID_REF},
};

static void test_references(void)
{
	json_t *responses = json(reference_responses);
	for (size_t i = 0; i < ARRAY_SIZE(reference_cases); i++) {
		json_t *args = json(reference_cases[i].args);
		if (args == NULL)
			continue;
		json_t *before = json_deep_copy(args);
		const char *type = NULL, *error = NULL;
		json_t *resolved =
			jmap_resolve_references(args, responses, &type, &error);
		CHECK_CASE(json_text_is(resolved, reference_cases[i].expected),
			   i, reference_cases[i].args);
		if (reference_cases[i].expected == NULL)
			CHECK_CASE(
				type != NULL && error != NULL &&
					strcmp(type,
					       reference_cases[i].error_type) ==
						0,
				i, reference_cases[i].args);
		CHECK_CASE(json_equal(before, args), i,
			   reference_cases[i].args);
		json_decref(resolved);
		json_decref(before);
		json_decref(args);
	}

	/* No responses yet: every reference fails, plain arguments pass. */
	json_t *args = json("{\"#ids\":" REF("t0", "Email/query", "/ids") "}");
	const char *type = NULL, *error = NULL;
	CHECK(jmap_resolve_references(args, NULL, &type, &error) == NULL);
	CHECK(type != NULL && strcmp(type, INVALID_REF) == 0);
	json_t *empty = json_array();
	type = NULL;
	CHECK(jmap_resolve_references(args, empty, &type, &error) == NULL);
	CHECK(type != NULL && strcmp(type, INVALID_REF) == 0);
	json_decref(args);
	args = json("{\"a\":[1]}");
	json_t *resolved = jmap_resolve_references(args, NULL, &type, &error);
	CHECK(resolved != NULL && resolved != args &&
	      json_equal(resolved, args));
	json_decref(resolved);
	json_decref(args);
	json_decref(empty);
	json_decref(responses);
}

/* Responses that echo resolved arguments (Core/echo) may share values;
 * references through them still work and free cleanly. */
static void test_echo_chain(void)
{
	json_t *responses = json_array();
	json_t *args = json("{\"v\":[[1],[2]]}");
	for (size_t i = 0; i < 20; i++) {
		const char *type, *error;
		json_t *resolved =
			jmap_resolve_references(args, responses, &type, &error);
		CHECK_CASE(resolved != NULL, i, "echo");
		if (resolved == NULL)
			break;
		char id[16];
		int n = snprintf(id, sizeof(id), "e%zu", i);
		DIJK_ASSERT(n > 0 && (size_t)n < sizeof(id));
		json_array_append_new(
			responses,
			json_pack("[s,o,s]", "Core/echo", resolved, id));
		json_decref(args);
		args = json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "#v",
				 "resultOf", id, "name", "Core/echo", "path",
				 "/v", "#w", "resultOf", id, "name",
				 "Core/echo", "path", "/v/*");
	}
	json_t *last = json_array_get(json_array_get(responses, 19), 1);
	CHECK(json_text_is(last, "{\"v\":[[1],[2]],\"w\":[1,2]}"));
	json_decref(args);
	json_decref(responses);
}

int main(void)
{
	test_parse_valid();
	test_parse_errors();
	test_descriptions();
	test_limits();
	test_id_valid();
	test_pointer();
	test_rfc_example();
	test_references();
	test_echo_chain();
	return unit_result("http_jmap_request");
}
