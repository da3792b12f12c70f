// jmap.js: the webmail's only way to the server: the session endpoints
// (/api/...) and JMAP (RFC 8620, RFC 8621) with its blobs and push. Every
// request that changes something carries the session's CSRF value.

export const CORE = "urn:ietf:params:jmap:core";
export const MAIL = "urn:ietf:params:jmap:mail";
export const SUBMISSION = "urn:ietf:params:jmap:submission";

export class JmapError extends Error {
	constructor(type, description) {
		super(description ? `${type}: ${description}` : type);
		this.type = type;
	}
}

// Raised when the server no longer knows the session.
export class SignedOut extends Error {}

export const session = {
	csrf: null,
	username: null,
	accountId: null,
	apiUrl: "/jmap/api",
	downloadUrl: "/jmap/download/{accountId}/{blobId}/{name}?type={type}",
	uploadUrl: "/jmap/upload/{accountId}/",
	eventSourceUrl: "/jmap/eventsource?types={types}&closeafter={closeafter}&ping={ping}",
	maxSizeUpload: 50 * 1024 * 1024,
};

let signedOutHandler = () => {};

export function onSignedOut(handler) {
	signedOutHandler = handler;
}

function fail401() {
	session.csrf = null;
	signedOutHandler();
	return new SignedOut("signed out");
}

async function answer(response) {
	if (response.status === 401)
		throw fail401();
	let body = null;
	const type = response.headers.get("Content-Type") || "";
	if (type.startsWith("application/json") && response.status !== 204)
		body = await response.json().catch(() => null);
	if (!response.ok) {
		const e = new Error((body && (body.error || body.detail)) ||
			`the server answered ${response.status}`);
		e.status = response.status;
		e.body = body;
		throw e;
	}
	return body;
}

// POST to one of the session endpoints (/api/...) with a JSON body.
export async function apiPost(path, body) {
	const response = await fetch(path, {
		method: "POST",
		credentials: "same-origin",
		headers: {"Content-Type": "application/json", "X-Dijk-CSRF": session.csrf || ""},
		body: JSON.stringify(body ?? {}),
	});
	return answer(response);
}

export async function apiGet(path) {
	return answer(await fetch(path, {credentials: "same-origin"}));
}

// Fills the session from /jmap/session once signed in.
export async function loadSession(csrf, username) {
	session.csrf = csrf;
	session.username = username;
	const s = await apiGet("/jmap/session");
	session.accountId = s.primaryAccounts[MAIL];
	for (const key of ["apiUrl", "downloadUrl", "uploadUrl", "eventSourceUrl"])
		if (s[key])
			session[key] = s[key];
	const core = (s.capabilities || {})[CORE] || {};
	if (core.maxSizeUpload)
		session.maxSizeUpload = core.maxSizeUpload;
	return s;
}

// Runs method calls in one request: calls is [[name, args], ...] (the call
// ids are made here: "c0", "c1"...; the accountId is filled in). Returns
// the responses in order as [name, args]; a method error stays in the list
// as ["error", {type, ...}] for the caller to look at.
export async function request(calls) {
	const methodCalls = calls.map(([name, args], i) =>
		[name, {accountId: session.accountId, ...args}, "c" + i]);
	const response = await fetch(session.apiUrl, {
		method: "POST",
		credentials: "same-origin",
		headers: {"Content-Type": "application/json", "X-Dijk-CSRF": session.csrf || ""},
		body: JSON.stringify({using: [CORE, MAIL, SUBMISSION], methodCalls}),
	});
	const body = await answer(response);
	const byId = new Map();
	for (const [name, args, id] of body.methodResponses || [])
		if (!byId.has(id))
			byId.set(id, [name, args]);
	return methodCalls.map(([, , id]) => byId.get(id) || ["error", {type: "serverFail"}]);
}

// Like request(), but throws the first method error.
export async function call(calls) {
	const out = await request(calls);
	for (const [name, args] of out)
		if (name === "error")
			throw new JmapError(args.type, args.description);
	return out.map(([, args]) => args);
}

// A back-reference to the result of call number index of the same request.
export function ref(index, name, path) {
	return {resultOf: "c" + index, name, path};
}

// Sends a file's bytes; resolves to {blobId, type, size}.
export async function upload(file) {
	const url = session.uploadUrl.replace("{accountId}", encodeURIComponent(session.accountId));
	const response = await fetch(url, {
		method: "POST",
		credentials: "same-origin",
		headers: {
			"Content-Type": file.type || "application/octet-stream",
			"X-Dijk-CSRF": session.csrf || "",
		},
		body: file,
	});
	return answer(response);
}

export function downloadUrl(blobId, name, type) {
	return session.downloadUrl
		.replace("{accountId}", encodeURIComponent(session.accountId))
		.replace("{blobId}", encodeURIComponent(blobId))
		.replace("{name}", encodeURIComponent(name || "attachment"))
		.replace("{type}", encodeURIComponent(type || "application/octet-stream"));
}

// The sanitized HTML of one body part, for a sandboxed iframe.
export function viewUrl(emailId, partId, images) {
	return "/jmap/view/" + [session.accountId, emailId, partId].map(encodeURIComponent).join("/") +
		(images ? "?images=1" : "");
}

// Push: calls onChange (at most once per burst) whenever the server says
// that something in the account changed. Returns a function that stops it.
export function watchChanges(onChange) {
	if (typeof EventSource === "undefined")
		return () => {};
	const url = session.eventSourceUrl
		.replace("{types}", "*")
		.replace("{closeafter}", "no")
		.replace("{ping}", "60");
	let source = null, timer = null, stopped = false, retry = 1000;
	const open = () => {
		source = new EventSource(url, {withCredentials: true});
		source.addEventListener("state", () => {
			retry = 1000;
			clearTimeout(timer);
			timer = setTimeout(onChange, 250);
		});
		source.addEventListener("open", () => { retry = 1000; });
		source.addEventListener("error", () => {
			// The browser reconnects by itself unless the server refused;
			// then try again later, a little slower each time.
			if (source.readyState === EventSource.CLOSED && !stopped) {
				setTimeout(() => { if (!stopped) open(); }, retry);
				retry = Math.min(retry * 2, 60000);
			}
		});
	};
	open();
	return () => {
		stopped = true;
		clearTimeout(timer);
		if (source)
			source.close();
	};
}
