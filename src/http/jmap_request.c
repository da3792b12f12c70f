/* jmap_request.c: parsing and validation of a JMAP API request (RFC 8620
 * sections 3.3 and 3.6.1), result references and JSON Pointer with the
 * JMAP "*" (section 3.7). The contract is in jmap_request.h.
 *
 * Jansson parses (with recursion it bounds at 2048 levels); everything
 * here that walks JSON does so with explicit lists and stacks. */
#include "core/common.h"

#include "http/jmap_request.h"

const struct jmap_limits jmap_default_limits = {
	.max_size_request = JMAP_DEFAULT_MAX_SIZE_REQUEST,
	.max_calls_in_request = JMAP_DEFAULT_MAX_CALLS_IN_REQUEST,
	.max_depth = JMAP_DEFAULT_MAX_DEPTH,
};

static void problem_set(struct jmap_problem *problem, const char *type,
			const char *limit, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void problem_set(struct jmap_problem *problem, const char *type,
			const char *limit, const char *fmt, ...)
{
	problem->type = type;
	problem->limit = limit;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(problem->description, sizeof(problem->description),
			  fmt, ap);
	va_end(ap);
	if (n < 0)
		problem->description[0] = '\0';
	/* The description quotes the input (a capability, Jansson's "near
	 * '...'"), which may be any bytes, and may have been cut inside a
	 * UTF-8 sequence: keep it printable ASCII so that it is always a
	 * valid JSON string. */
	for (char *p = problem->description; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			*p = '?';
	}
}

bool jmap_id_valid(const char *id, size_t size)
{
	if (size < 1 || size > JMAP_MAX_ID_SIZE)
		return false;
	for (size_t i = 0; i < size; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static bool is_container(const json_t *value)
{
	return json_is_object(value) || json_is_array(value);
}

/* Whether no array or object of the tree lies deeper than max_depth (the
 * root at depth 1). Walks with an explicit stack of at most max_depth
 * frames, since the tree may be as deep as Jansson's parser allows. */
struct depth_frame {
	json_t *container;
	void *iter;   /* objects: the next key */
	size_t index; /* arrays: the next item */
};

static bool depth_within(json_t *root, size_t max_depth)
{
	if (!is_container(root))
		return true;
	if (max_depth < 1)
		return false;
	size_t capacity = 16, count = 0;
	struct depth_frame *stack = xmalloc(capacity * sizeof(*stack));
	bool within = true;
	stack[count++] = (struct depth_frame){root, json_object_iter(root), 0};
	while (count > 0) {
		struct depth_frame *top = &stack[count - 1];
		json_t *child = NULL;
		if (json_is_object(top->container)) {
			if (top->iter != NULL) {
				child = json_object_iter_value(top->iter);
				top->iter = json_object_iter_next(
					top->container, top->iter);
			}
		} else if (top->index < json_array_size(top->container)) {
			child = json_array_get(top->container, top->index++);
		}
		if (child == NULL) {
			count--;
			continue;
		}
		if (!is_container(child))
			continue;
		if (count >= max_depth) {
			within = false;
			break;
		}
		if (count == capacity) {
			capacity *= 2;
			stack = xrealloc(stack, capacity * sizeof(*stack));
		}
		stack[count++] =
			(struct depth_frame){child, json_object_iter(child), 0};
	}
	free(stack);
	return within;
}

static int validate_created_ids(json_t *created_ids,
				struct jmap_problem *problem)
{
	if (!json_is_object(created_ids)) {
		problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
			    "\"createdIds\" is not an object");
		return -1;
	}
	const char *key;
	size_t key_len;
	json_t *value;
	json_object_keylen_foreach(created_ids, key, key_len, value)
	{
		if (!jmap_id_valid(key, key_len) || !json_is_string(value) ||
		    !jmap_id_valid(json_string_value(value),
				   json_string_length(value))) {
			problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
				    "\"createdIds\" does not map Ids to Ids");
			return -1;
		}
	}
	return 0;
}

static int validate_call(json_t *invocation, size_t index,
			 struct jmap_call *call, struct jmap_problem *problem)
{
	if (!json_is_array(invocation) || json_array_size(invocation) != 3) {
		problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
			    "methodCalls[%zu] is not an array of 3 items",
			    index);
		return -1;
	}
	json_t *name = json_array_get(invocation, 0);
	json_t *args = json_array_get(invocation, 1);
	json_t *id = json_array_get(invocation, 2);
	if (!json_is_string(name) ||
	    json_string_length(name) > JMAP_MAX_METHOD_NAME_SIZE) {
		problem_set(
			problem, JMAP_ERROR_NOT_REQUEST, NULL,
			"methodCalls[%zu]: the method name is not a string of at most %d bytes",
			index, JMAP_MAX_METHOD_NAME_SIZE);
		return -1;
	}
	if (!json_is_object(args)) {
		problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
			    "methodCalls[%zu]: the arguments are not an object",
			    index);
		return -1;
	}
	if (!json_is_string(id) ||
	    json_string_length(id) > JMAP_MAX_CALL_ID_SIZE) {
		problem_set(
			problem, JMAP_ERROR_NOT_REQUEST, NULL,
			"methodCalls[%zu]: the call id is not a string of at most %d bytes",
			index, JMAP_MAX_CALL_ID_SIZE);
		return -1;
	}
	call->name = json_string_value(name);
	call->args = args;
	call->id = json_string_value(id);
	return 0;
}

static bool capability_known(const char *capability,
			     const char *const *known_capabilities)
{
	if (known_capabilities == NULL)
		return false;
	for (size_t i = 0; known_capabilities[i] != NULL; i++)
		if (strcmp(capability, known_capabilities[i]) == 0)
			return true;
	return false;
}

/* The checks after parsing; request->root is set, the rest is filled. */
static int validate(struct jmap_request *request,
		    const struct jmap_limits *limits,
		    const char *const *known_capabilities,
		    struct jmap_problem *problem)
{
	json_t *root = request->root;
	if (!json_is_object(root)) {
		problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
			    "the request is not a JSON object");
		return -1;
	}
	json_t *using = json_object_get(root, "using");
	if (!json_is_array(using)) {
		problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
			    "\"using\" is missing or not an array");
		return -1;
	}
	json_t *calls = json_object_get(root, "methodCalls");
	if (!json_is_array(calls)) {
		problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
			    "\"methodCalls\" is missing or not an array");
		return -1;
	}
	json_t *created_ids = json_object_get(root, "createdIds");
	if (created_ids != NULL &&
	    validate_created_ids(created_ids, problem) < 0)
		return -1;
	size_t using_count = json_array_size(using);
	for (size_t i = 0; i < using_count; i++) {
		if (!json_is_string(json_array_get(using, i))) {
			problem_set(problem, JMAP_ERROR_NOT_REQUEST, NULL,
				    "using[%zu] is not a string", i);
			return -1;
		}
	}

	/* Counted before the calls are looked at: a request over the limit
	 * costs no more than its parse. */
	size_t call_count = json_array_size(calls);
	if (call_count > limits->max_calls_in_request) {
		problem_set(
			problem, JMAP_ERROR_LIMIT,
			JMAP_LIMIT_MAX_CALLS_IN_REQUEST,
			"the request has %zu method calls, more than the %zu allowed",
			call_count, limits->max_calls_in_request);
		return -1;
	}
	if (call_count > 0)
		request->calls = xcalloc(call_count, sizeof(*request->calls));
	for (size_t i = 0; i < call_count; i++) {
		if (validate_call(json_array_get(calls, i), i,
				  &request->calls[i], problem) < 0)
			return -1;
		request->call_count++;
	}

	request->using = xcalloc(using_count, sizeof(*request->using));
	for (size_t i = 0; i < using_count; i++) {
		const char *capability =
			json_string_value(json_array_get(using, i));
		if (!capability_known(capability, known_capabilities)) {
			problem_set(problem, JMAP_ERROR_UNKNOWN_CAPABILITY,
				    NULL, "unknown capability \"%s\"",
				    capability);
			return -1;
		}
		request->using[request->using_count++] = capability;
	}
	request->created_ids = created_ids;
	return 0;
}

int jmap_request_parse(const uint8_t *body, size_t size,
		       const struct jmap_limits *limits,
		       const char *const *known_capabilities,
		       struct jmap_request *request,
		       struct jmap_problem *problem)
{
	DIJK_ASSERT(body != NULL || size == 0);
	memset(request, 0, sizeof(*request));
	problem->type = NULL;
	problem->limit = NULL;
	problem->description[0] = '\0';
	if (limits == NULL)
		limits = &jmap_default_limits;

	if (size > limits->max_size_request) {
		problem_set(
			problem, JMAP_ERROR_LIMIT, JMAP_LIMIT_MAX_SIZE_REQUEST,
			"the request is %zu bytes, more than the %zu allowed",
			size, limits->max_size_request);
		return -1;
	}
	if (size == 0) {
		problem_set(problem, JMAP_ERROR_NOT_JSON, NULL,
			    "the request is empty");
		return -1;
	}
	/* Without JSON_ALLOW_NUL Jansson refuses "\u0000" in strings; it
	 * always refuses it in keys, and refuses invalid UTF-8 (including
	 * escaped unpaired surrogates). JSON_DECODE_ANY: a scalar is JSON,
	 * only not a request. */
	json_error_t error;
	json_t *root =
		json_loadb((const char *)body, size,
			   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (root == NULL) {
		enum json_error_code code = json_error_code(&error);
		if (code == json_error_out_of_memory)
			dijk_panic("out of memory parsing a JMAP request");
		if (code == json_error_stack_overflow) {
			/* Jansson's own limit, when it is the tighter. */
			size_t depth = limits->max_depth < JSON_PARSER_MAX_DEPTH
					       ? limits->max_depth
					       : JSON_PARSER_MAX_DEPTH;
			problem_set(
				problem, JMAP_ERROR_LIMIT, JMAP_LIMIT_MAX_DEPTH,
				"the request nests arrays and objects more than %zu deep",
				depth);
			return -1;
		}
		problem_set(problem, JMAP_ERROR_NOT_JSON, NULL,
			    "invalid JSON at line %d, column %d: %s",
			    error.line, error.column, error.text);
		return -1;
	}
	if (!depth_within(root, limits->max_depth)) {
		json_decref(root);
		problem_set(
			problem, JMAP_ERROR_LIMIT, JMAP_LIMIT_MAX_DEPTH,
			"the request nests arrays and objects more than %zu deep",
			limits->max_depth);
		return -1;
	}
	request->root = root;
	if (validate(request, limits, known_capabilities, problem) < 0) {
		jmap_request_free(request);
		return -1;
	}
	return 0;
}

void jmap_request_free(struct jmap_request *request)
{
	json_decref(request->root);
	free(request->using);
	free(request->calls);
	memset(request, 0, sizeof(*request));
}

bool jmap_request_uses(const struct jmap_request *request,
		       const char *capability)
{
	for (size_t i = 0; i < request->using_count; i++)
		if (strcmp(request->using[i], capability) == 0)
			return true;
	return false;
}

/* JSON Pointer evaluation works on a list of current values (borrowed):
 * one, until a "*" maps over an array. Applying the rest of the pointer to
 * each item and flattening each result, as RFC 8620 describes it
 * recursively, gives the same as carrying all items on and flattening the
 * final list once: every inner result is an array, which the outer "*"
 * only concatenates. */
struct value_list {
	json_t **values;
	size_t count, capacity;
};

static bool value_list_push(struct value_list *list, json_t *value)
{
	if (list->count >= JMAP_POINTER_MAX_VALUES)
		return false;
	if (list->count == list->capacity) {
		list->capacity = list->capacity == 0 ? 8 : list->capacity * 2;
		list->values = xrealloc(list->values,
					list->capacity * sizeof(*list->values));
	}
	list->values[list->count++] = value;
	return true;
}

/* Reads the array index of RFC 6901: "0", or digits without a leading 0. */
static bool parse_index(const char *token, size_t len, size_t *index_r)
{
	if (len == 0 || (len > 1 && token[0] == '0'))
		return false;
	size_t index = 0;
	for (size_t i = 0; i < len; i++) {
		if (token[i] < '0' || token[i] > '9')
			return false;
		size_t digit = (size_t)(token[i] - '0');
		if (index > (SIZE_MAX - digit) / 10)
			return false;
		index = index * 10 + digit;
	}
	*index_r = index;
	return true;
}

/* Applies one decoded token to every value of from, into to. */
static bool apply_token(const struct value_list *from, const char *token,
			size_t len, struct value_list *to, bool *mapped)
{
	bool star = len == 1 && token[0] == '*';
	for (size_t i = 0; i < from->count; i++) {
		json_t *value = from->values[i], *next;
		if (json_is_array(value) && star) {
			*mapped = true;
			for (size_t k = 0; k < json_array_size(value); k++)
				if (!value_list_push(to,
						     json_array_get(value, k)))
					return false;
			continue;
		}
		if (json_is_array(value)) {
			size_t index;
			if (!parse_index(token, len, &index))
				return false;
			next = json_array_get(value, index);
		} else if (json_is_object(value)) {
			next = json_object_getn(value, token, len);
		} else {
			return false;
		}
		if (next == NULL || !value_list_push(to, next))
			return false;
	}
	return true;
}

json_t *jmap_pointer(json_t *value, const char *pointer)
{
	if (value == NULL || pointer == NULL)
		return NULL;
	if (pointer[0] == '\0')
		return json_incref(value);
	if (pointer[0] != '/')
		return NULL;

	size_t pointer_len = strlen(pointer);
	char *token = xmalloc(pointer_len);
	struct value_list lists[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
	struct value_list *current = &lists[0], *next = &lists[1];
	bool mapped = false, ok = true;
	json_t *result = NULL;
	(void)value_list_push(current, value);

	const char *p = pointer;
	while (ok && *p == '/') {
		size_t len = 0;
		for (p++; *p != '\0' && *p != '/'; p++) {
			if (*p != '~') {
				token[len++] = *p;
			} else if (p[1] == '0' || p[1] == '1') {
				token[len++] = p[1] == '0' ? '~' : '/';
				p++;
			} else {
				ok = false;
				break;
			}
		}
		if (!ok)
			break;
		next->count = 0;
		ok = apply_token(current, token, len, next, &mapped);
		struct value_list *swap = current;
		current = next;
		next = swap;
	}

	if (ok && !mapped) {
		DIJK_ASSERT(current->count == 1);
		result = json_incref(current->values[0]);
	} else if (ok) {
		/* Flattening may multiply the values when arrays are shared:
		 * count before building. */
		size_t total = 0;
		for (size_t i = 0; ok && i < current->count; i++) {
			json_t *v = current->values[i];
			total += json_is_array(v) ? json_array_size(v) : 1;
			ok = total <= JMAP_POINTER_MAX_VALUES;
		}
		if (ok) {
			result = json_array();
			DIJK_ASSERT(result != NULL);
			for (size_t i = 0; i < current->count; i++) {
				json_t *v = current->values[i];
				int r = json_is_array(v)
						? json_array_extend(result, v)
						: json_array_append(result, v);
				DIJK_ASSERT(r == 0);
			}
		}
	}
	free(lists[0].values);
	free(lists[1].values);
	free(token);
	return result;
}

static bool string_equal(const json_t *a, const json_t *b)
{
	size_t n = json_string_length(a);
	return json_is_string(a) && json_is_string(b) &&
	       n == json_string_length(b) &&
	       memcmp(json_string_value(a), json_string_value(b), n) == 0;
}

/* The value of one ResultReference, or NULL with *error_r set. */
static json_t *resolve_one(json_t *reference, json_t *responses,
			   const char **error_r)
{
	json_t *result_of = json_object_get(reference, "resultOf");
	json_t *name = json_object_get(reference, "name");
	json_t *path = json_object_get(reference, "path");
	if (!json_is_object(reference) || json_object_size(reference) != 3 ||
	    !json_is_string(result_of) || !json_is_string(name) ||
	    !json_is_string(path) ||
	    strlen(json_string_value(path)) != json_string_length(path)) {
		*error_r =
			"a ResultReference is not an object of exactly the strings resultOf, name and path";
		return NULL;
	}
	json_t *response = NULL;
	for (size_t i = 0; i < json_array_size(responses); i++) {
		json_t *item = json_array_get(responses, i);
		if (json_is_array(item) && json_array_size(item) == 3 &&
		    json_is_string(json_array_get(item, 0)) &&
		    string_equal(json_array_get(item, 2), result_of)) {
			response = item;
			break;
		}
	}
	if (response == NULL) {
		*error_r =
			"no earlier method response has the call id of resultOf";
		return NULL;
	}
	if (!string_equal(json_array_get(response, 0), name)) {
		*error_r =
			"the response to resultOf is not named as the ResultReference says";
		return NULL;
	}
	json_t *value = jmap_pointer(json_array_get(response, 1),
				     json_string_value(path));
	if (value == NULL)
		*error_r = "the path of a ResultReference does not resolve";
	return value;
}

json_t *jmap_resolve_references(json_t *args, json_t *responses,
				const char **error_type_r, const char **error_r)
{
	DIJK_ASSERT(json_is_object(args));
	DIJK_ASSERT(responses == NULL || json_is_array(responses));
	const char *key;
	size_t key_len;
	json_t *value;

	json_object_keylen_foreach(args, key, key_len, value)
	{
		if (key_len > 1 && key[0] == '#' &&
		    json_object_getn(args, key + 1, key_len - 1) != NULL) {
			*error_type_r = JMAP_METHOD_ERROR_INVALID_ARGUMENTS;
			*error_r =
				"an argument is given both as is and as a result reference";
			return NULL;
		}
	}

	json_t *resolved = json_object();
	DIJK_ASSERT(resolved != NULL);
	json_object_keylen_foreach(args, key, key_len, value)
	{
		int r;
		if (key_len == 0 || key[0] != '#') {
			r = json_object_setn(resolved, key, key_len, value);
		} else {
			json_t *v = NULL;
			if (key_len == 1)
				*error_r =
					"a result reference names no argument";
			else
				v = resolve_one(value, responses, error_r);
			if (v == NULL) {
				json_decref(resolved);
				*error_type_r =
					JMAP_METHOD_ERROR_INVALID_RESULT_REFERENCE;
				return NULL;
			}
			r = json_object_setn_new(resolved, key + 1, key_len - 1,
						 v);
		}
		DIJK_ASSERT(r == 0);
	}
	return resolved;
}
