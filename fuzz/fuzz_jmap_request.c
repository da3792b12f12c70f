/* fuzz_jmap_request.c: src/http/jmap_request.c over arbitrary bytes: the
 * request parse and its problems, then every call's result references,
 * against fixed responses and against responses that echo the calls so far
 * (as Core/echo does, sharing values), and JSON Pointers taken from the
 * arguments' strings. */
#include "core/common.h"

#include "http/jmap_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const capabilities[] = {
	"urn:ietf:params:jmap:core",
	"urn:ietf:params:jmap:mail",
	"urn:ietf:params:jmap:submission",
	NULL,
};

/* Responses that the seeds refer to: c0 to c3, one call id twice. */
static const char fixed_responses_text[] =
	"[[\"Email/query\",{\"accountId\":\"A1\",\"ids\":[\"M1\",\"M2\",\"M3\"],"
	"\"total\":3,\"position\":0},\"c0\"],"
	"[\"Email/get\",{\"accountId\":\"A1\",\"list\":["
	"{\"id\":\"M1\",\"threadId\":\"T1\",\"keywords\":{\"$seen\":true}},"
	"{\"id\":\"M2\",\"threadId\":\"T2\",\"mailboxIds\":{\"I\":true}},"
	"{\"id\":\"M3\",\"threadId\":\"T1\"}],\"notFound\":[]},\"c1\"],"
	"[\"Thread/get\",{\"list\":[{\"id\":\"T1\",\"emailIds\":[\"M1\",\"M3\"]},"
	"{\"id\":\"T2\",\"emailIds\":[\"M2\"]}],\"a/b\":{\"m~n\":[[1],[2,[3]]]},"
	"\"*\":{\"*\":[[[]]]}},\"c2\"],"
	"[\"Email/set\",{\"created\":{\"k1\":{\"id\":\"M9\"}}},\"c2\"],"
	"[\"Mailbox/get\",{\"list\":[{\"id\":\"I\",\"role\":\"inbox\"}]},\"c3\"],"
	"[\"error\",{\"type\":\"unknownMethod\"},\"c4\"]]";

static const struct jmap_limits tight_limits = {
	.max_size_request = 1024,
	.max_calls_in_request = 4,
	.max_depth = 8,
};

static bool printable_ascii(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (n == max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void check_problem(const struct jmap_request *request,
			  const struct jmap_problem *problem)
{
	DIJK_ASSERT(request->root == NULL && request->using == NULL &&
		    request->calls == NULL && request->call_count == 0 &&
		    request->using_count == 0 && request->created_ids == NULL);
	DIJK_ASSERT(problem->type != NULL);
	if (strcmp(problem->type, JMAP_ERROR_LIMIT) == 0) {
		DIJK_ASSERT(problem->limit != NULL);
		DIJK_ASSERT(strcmp(problem->limit,
				   JMAP_LIMIT_MAX_SIZE_REQUEST) == 0 ||
			    strcmp(problem->limit,
				   JMAP_LIMIT_MAX_CALLS_IN_REQUEST) == 0 ||
			    strcmp(problem->limit, JMAP_LIMIT_MAX_DEPTH) == 0);
	} else {
		DIJK_ASSERT(
			strcmp(problem->type, JMAP_ERROR_NOT_JSON) == 0 ||
			strcmp(problem->type, JMAP_ERROR_NOT_REQUEST) == 0 ||
			strcmp(problem->type, JMAP_ERROR_UNKNOWN_CAPABILITY) ==
				0);
		DIJK_ASSERT(problem->limit == NULL);
	}
	DIJK_ASSERT(printable_ascii(problem->description,
				    sizeof(problem->description)));
	DIJK_ASSERT(problem->description[0] != '\0');
	/* It goes into a JSON reply as is. */
	json_t *s = json_string(problem->description);
	DIJK_ASSERT(s != NULL);
	json_decref(s);
}

static void check_request(const struct jmap_request *request)
{
	DIJK_ASSERT(json_is_object(request->root));
	DIJK_ASSERT(request->call_count <=
		    jmap_default_limits.max_calls_in_request);
	DIJK_ASSERT((request->call_count == 0) == (request->calls == NULL));
	for (size_t i = 0; i < request->call_count; i++) {
		const struct jmap_call *call = &request->calls[i];
		DIJK_ASSERT(call->name != NULL && call->id != NULL);
		DIJK_ASSERT(strlen(call->name) <= JMAP_MAX_METHOD_NAME_SIZE);
		DIJK_ASSERT(strlen(call->id) <= JMAP_MAX_CALL_ID_SIZE);
		DIJK_ASSERT(json_is_object(call->args));
	}
	for (size_t i = 0; i < request->using_count; i++) {
		DIJK_ASSERT(request->using[i] != NULL);
		DIJK_ASSERT(jmap_request_uses(request, request->using[i]));
		bool known = false;
		for (size_t k = 0; capabilities[k] != NULL; k++)
			known |=
				strcmp(capabilities[k], request->using[i]) == 0;
		DIJK_ASSERT(known);
	}
	DIJK_ASSERT(!jmap_request_uses(request, "urn:example:unknown"));
	if (request->created_ids != NULL) {
		DIJK_ASSERT(json_is_object(request->created_ids));
		const char *key;
		size_t key_len;
		json_t *value;
		json_object_keylen_foreach(request->created_ids, key, key_len,
					   value)
		{
			DIJK_ASSERT(jmap_id_valid(key, key_len));
			DIJK_ASSERT(json_is_string(value));
		}
	}
}

/* Resolves args against responses and checks the contract. */
static json_t *resolve(json_t *args, json_t *responses)
{
	/* args comes from the parse: a tree no deeper than the limit, so
	 * Jansson's recursive copy and comparison are bounded. */
	json_t *before = json_deep_copy(args);
	DIJK_ASSERT(before != NULL);
	const char *type = NULL, *error = NULL;
	json_t *resolved =
		jmap_resolve_references(args, responses, &type, &error);
	DIJK_ASSERT(json_equal(before, args));
	json_decref(before);
	if (resolved == NULL) {
		DIJK_ASSERT(type != NULL && error != NULL);
		DIJK_ASSERT(
			strcmp(type, JMAP_METHOD_ERROR_INVALID_ARGUMENTS) ==
				0 ||
			strcmp(type,
			       JMAP_METHOD_ERROR_INVALID_RESULT_REFERENCE) ==
				0);
		return NULL;
	}
	DIJK_ASSERT(json_is_object(resolved) && resolved != args);
	DIJK_ASSERT(json_object_size(resolved) == json_object_size(args));
	const char *key;
	size_t key_len;
	json_t *value;
	json_object_keylen_foreach(args, key, key_len, value)
	{
		if (key_len > 0 && key[0] == '#') {
			DIJK_ASSERT(json_object_getn(resolved, key + 1,
						     key_len - 1) != NULL);
		} else {
			DIJK_ASSERT(json_object_getn(resolved, key, key_len) ==
				    value);
		}
	}
	return resolved;
}

/* JSON Pointers from the strings among the arguments, on the fixed
 * responses' arguments. */
static void pointers(json_t *args, json_t *fixed)
{
	const char *key;
	json_t *value;
	json_object_foreach(args, key, value)
	{
		if (!json_is_string(value))
			continue;
		for (size_t i = 0; i < json_array_size(fixed); i++) {
			json_t *target =
				json_array_get(json_array_get(fixed, i), 1);
			json_t *r =
				jmap_pointer(target, json_string_value(value));
			json_decref(r);
		}
		json_t *r = jmap_pointer(args, json_string_value(value));
		json_decref(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *fixed;
	if (fixed == NULL) {
		fixed = json_loads(fixed_responses_text, 0, NULL);
		DIJK_ASSERT(fixed != NULL);
	}

	/* Tight limits first: the checks come in a fixed order, so a
	 * request that passes them passes the defaults, and one that fails
	 * them on something else than a limit fails the defaults alike. */
	struct jmap_request request;
	struct jmap_problem tight_problem, problem;
	int tight = jmap_request_parse(data, size, &tight_limits, capabilities,
				       &request, &tight_problem);
	size_t tight_calls = request.call_count;
	if (tight < 0)
		check_problem(&request, &tight_problem);
	jmap_request_free(&request);

	if (jmap_request_parse(data, size, NULL, capabilities, &request,
			       &problem) < 0) {
		check_problem(&request, &problem);
		DIJK_ASSERT(tight < 0);
		if (strcmp(tight_problem.type, JMAP_ERROR_LIMIT) != 0)
			DIJK_ASSERT(strcmp(tight_problem.type, problem.type) ==
					    0 &&
				    strcmp(tight_problem.description,
					   problem.description) == 0);
		if (strcmp(problem.type, JMAP_ERROR_LIMIT) == 0)
			DIJK_ASSERT(strcmp(tight_problem.type,
					   JMAP_ERROR_LIMIT) == 0);
		jmap_request_free(&request);
		return 0;
	}
	DIJK_ASSERT(tight < 0 || tight_calls == request.call_count);
	DIJK_ASSERT(tight == 0 ||
		    strcmp(tight_problem.type, JMAP_ERROR_LIMIT) == 0);
	check_request(&request);

	json_t *echoes = json_array();
	for (size_t i = 0; i < request.call_count; i++) {
		json_t *args = request.calls[i].args;
		json_decref(resolve(args, fixed));
		json_t *resolved = resolve(args, echoes);
		json_t *response = json_array();
		json_array_append_new(response,
				      json_string(request.calls[i].name));
		json_array_append_new(response, resolved != NULL
							? resolved
							: json_incref(args));
		json_array_append_new(response,
				      json_string(request.calls[i].id));
		json_array_append_new(echoes, response);
		pointers(args, fixed);
	}
	json_decref(echoes);
	jmap_request_free(&request);
	DIJK_ASSERT(request.root == NULL && request.calls == NULL);
	return 0;
}
