// list.js: the message list: one mailbox or the results of a search, 50
// to a page, as conversations (one row per thread, its newest message) or
// as single messages. The list is a listbox: the keyboard moves a
// selection through it and Enter opens the selected conversation.
import {request, ref} from "./jmap.js";
import {h, $, icon, avatar, addressName, shortDate, longDate, snippetNodes, morph,
	morphChildren} from "./dom.js";
import {mailboxTitle, roleOf, listFetchStarted, applyKeywordChanges} from "./mail.js";

export const PAGE_SIZE = 50;

const LIST_PROPERTIES = ["id", "threadId", "mailboxIds", "keywords", "from", "to",
	"subject", "receivedAt", "preview", "hasAttachment", "size"];

export const list = {
	mailboxId: null,
	search: null,          // {text, scope: "all" | "here"}
	position: 0,
	total: 0,
	rows: [],              // emails, each with .threadSize and .snippet
	selectedId: null,
	openId: null,          // the row shown in the reader
	conversations: localStorage.getItem("dijk.conversations") !== "off",
	onOpen: () => {},
	generation: 0,
};

export function setConversations(on) {
	list.conversations = on;
	localStorage.setItem("dijk.conversations", on ? "on" : "off");
}

function filter() {
	if (list.search) {
		const f = {text: list.search.text};
		if (list.search.scope === "here" && list.mailboxId)
			f.inMailbox = list.mailboxId;
		return f;
	}
	return {inMailbox: list.mailboxId};
}

export function showMailbox(id) {
	list.mailboxId = id;
	list.search = null;
	list.position = 0;
	list.selectedId = null;
	return load();
}

export function showSearch(text, scope) {
	list.search = {text, scope};
	list.position = 0;
	list.selectedId = null;
	return load();
}

export function page(delta) {
	const position = list.position + delta * PAGE_SIZE;
	if (position < 0 || position >= list.total)
		return Promise.resolve();
	list.position = position;
	list.selectedId = null;
	return load();
}

// Fetches the page again; the selection stays on the same message, or on
// the row that took its place when it went away.
export async function load() {
	const generation = ++list.generation;
	const fetch = listFetchStarted();
	const threads = list.conversations && !list.search;
	const query = {filter: filter(), sort: [{property: "receivedAt", isAscending: false}],
		collapseThreads: threads, position: list.position, limit: PAGE_SIZE,
		calculateTotal: true};
	const calls = [
		["Email/query", query],
		["Email/get", {"#ids": ref(0, "Email/query", "/ids"), properties: LIST_PROPERTIES}],
	];
	if (threads)
		calls.push(["Thread/get", {"#ids": ref(1, "Email/get", "/list/*/threadId")}]);
	if (list.search)
		calls.push(["SearchSnippet/get", {filter: query.filter,
			"#emailIds": ref(0, "Email/query", "/ids")}]);
	const out = await request(calls);
	if (generation !== list.generation)
		return;
	const [[qName, q], [gName, got]] = out;
	if (qName === "error" || gName === "error") {
		renderError(qName === "error" ? q : got);
		return;
	}
	if (q.total !== undefined && list.position > 0 && list.position >= q.total) {
		list.position = Math.max(0, Math.floor((q.total - 1) / PAGE_SIZE) * PAGE_SIZE);
		return load();
	}
	const byId = new Map(got.list.map((e) => [e.id, e]));
	const rows = q.ids.map((id) => byId.get(id)).filter(Boolean);
	for (const [name, result] of out.slice(2)) {
		if (name === "Thread/get") {
			const sizes = new Map(result.list.map((t) => [t.id, t.emailIds.length]));
			for (const e of rows)
				e.threadSize = sizes.get(e.threadId) || 1;
		} else if (name === "SearchSnippet/get") {
			const snippets = new Map(result.list.map((s) => [s.emailId, s]));
			for (const e of rows)
				e.snippet = snippets.get(e.id);
		}
	}
	applyKeywordChanges(rows, fetch);
	const oldIndex = list.rows.findIndex((e) => e.id === list.selectedId);
	list.rows = rows;
	list.total = q.total ?? rows.length;
	if (list.selectedId && !byId.has(list.selectedId))
		list.selectedId = rows.length && oldIndex >= 0
			? rows[Math.min(oldIndex, rows.length - 1)].id : null;
	render();
}

function renderError(error) {
	list.rows = [];
	list.total = 0;
	render();
	$("list-empty").textContent = "The messages cannot be shown: " + (error.type || "error");
}

function title() {
	if (list.search) {
		const where = list.search.scope === "here" && list.mailboxId
			? " in " + mailboxTitle(list.mailboxId) : "";
		return `“${list.search.text}”${where}`;
	}
	return mailboxTitle(list.mailboxId);
}

// Whom a row names: the sender, or the recipients in Sent and Drafts.
function rowPeople(email) {
	const role = roleOf(Object.keys(email.mailboxIds || {})[0]);
	if (role === "sent" || role === "drafts") {
		const to = (email.to || []).map(addressName).join(", ");
		return {text: to ? "To: " + to : "(no recipient)", address: (email.to || [])[0]};
	}
	const from = (email.from || [])[0];
	return {text: addressName(from) || "(unknown sender)", address: from};
}

function row(email) {
	const kw = email.keywords || {};
	const unread = !kw.$seen;
	const flagged = !!kw.$flagged;
	const people = rowPeople(email);
	const selected = email.id === list.selectedId;
	const subject = email.snippet && email.snippet.subject
		? snippetNodes(email.snippet.subject) : (email.subject || "(no subject)");
	const preview = email.snippet && email.snippet.preview
		? snippetNodes(email.snippet.preview) : (email.preview || "");
	const labels = [];
	if (unread)
		labels.push("unread");
	if (flagged)
		labels.push("flagged");
	if (email.hasAttachment)
		labels.push("has attachment");
	const inOther = list.search && list.search.scope !== "here"
		? mailboxTitle(Object.keys(email.mailboxIds || {})[0]) : "";
	const el = h("div", {
		id: "row-" + email.id, role: "option", class: "row" + (unread ? " is-unread" : "") +
			(flagged ? " flagged" : "") + (selected ? " selected" : "") +
			(email.id === list.openId ? " open" : ""),
		"aria-selected": selected ? "true" : "false",
		dataset: {id: email.id},
	},
	avatar(people.address),
	h("div", {class: "row-main"},
		h("div", {class: "row-top"},
			h("span", {class: "row-from"}, people.text),
			email.threadSize > 1 ? h("span", {class: "row-count",
				"aria-label": email.threadSize + " messages"}, String(email.threadSize)) : null,
			h("span", {class: "row-icons"},
				email.hasAttachment ? icon("clip") : null,
				flagged ? h("span", {class: "star"}, icon("star")) : null),
			h("time", {class: "row-date", datetime: email.receivedAt,
				title: longDate(email.receivedAt)}, shortDate(email.receivedAt))),
		h("div", {class: "row-subject"}, subject),
		h("div", {class: "row-preview"},
			inOther ? h("span", {class: "chip"}, inOther) : null, preview)),
	labels.length ? h("span", {class: "visually-hidden"}, ", " + labels.join(", ")) : null);
	return el;
}

export function render() {
	$("list-title").textContent = title();
	const box = $("message-list");
	morphChildren(box, list.rows.map(row), (el) => el.dataset.id);
	box.setAttribute("aria-label", title());
	const empty = $("list-empty");
	empty.hidden = list.rows.length > 0;
	empty.textContent = list.search ? "No messages match your search." : "No messages here.";
	const first = list.total ? list.position + 1 : 0;
	const last = list.position + list.rows.length;
	$("list-range").textContent = list.total ? `${first}–${last} of ${list.total}` : "";
	$("page-prev").disabled = list.position === 0;
	$("page-next").disabled = last >= list.total;
	$("search-clear").hidden = !list.search;
	syncActive();
}

function syncActive() {
	const box = $("message-list");
	if (list.selectedId && $("row-" + list.selectedId))
		box.setAttribute("aria-activedescendant", "row-" + list.selectedId);
	else
		box.removeAttribute("aria-activedescendant");
}

export function selectId(id, {scroll = true} = {}) {
	list.selectedId = id;
	for (const el of $("message-list").children) {
		const on = el.dataset.id === id;
		el.classList.toggle("selected", on);
		el.setAttribute("aria-selected", on ? "true" : "false");
		if (on && scroll)
			el.scrollIntoView({block: "nearest"});
	}
	syncActive();
}

export function markOpen(id) {
	list.openId = id;
	for (const el of $("message-list").children)
		el.classList.toggle("open", el.dataset.id === id);
}

export function selected() {
	return list.rows.find((e) => e.id === list.selectedId) || null;
}

// Moves the selection by delta rows (j and k); at the end of a page it
// goes on to the next one. Returns the newly selected email.
export async function moveSelection(delta) {
	if (!list.rows.length)
		return null;
	let index = list.rows.findIndex((e) => e.id === list.selectedId);
	if (index < 0)
		index = delta > 0 ? -1 : list.rows.length;
	index += delta;
	if (index >= list.rows.length) {
		if (list.position + PAGE_SIZE < list.total) {
			await page(1);
			index = 0;
		} else {
			index = list.rows.length - 1;
		}
	} else if (index < 0) {
		if (list.position > 0) {
			await page(-1);
			index = list.rows.length - 1;
		} else {
			index = 0;
		}
	}
	const email = list.rows[index];
	selectId(email.id);
	return email;
}

// A row's email after a change the page made itself (read, flag), so
// that it looks right before the reload arrives.
export function patchRow(id, keywords) {
	const email = list.rows.find((e) => e.id === id);
	if (!email)
		return;
	email.keywords = {...email.keywords, ...keywords};
	for (const [k, v] of Object.entries(keywords))
		if (!v)
			delete email.keywords[k];
	const old = $("row-" + id);
	if (old)
		morph(old, row(email));
	syncActive();
}

export function initList(onOpen) {
	list.onOpen = onOpen;
	$("page-prev").addEventListener("click", () => page(-1));
	$("page-next").addEventListener("click", () => page(1));
	const box = $("message-list");
	box.addEventListener("click", (event) => {
		const el = event.target.closest(".row");
		const email = el && list.rows.find((e) => e.id === el.dataset.id);
		if (!email)
			return;
		selectId(email.id);
		list.onOpen(email);
	});
	// Focus from the keyboard selects the first row; focus from a click
	// must not (selecting scrolls, and the click would land elsewhere).
	box.addEventListener("focus", () => {
		if (!list.selectedId && list.rows.length && box.matches(":focus-visible"))
			selectId(list.rows[0].id, {scroll: false});
	});
	box.addEventListener("keydown", (event) => {
		if (event.key === "ArrowDown" || event.key === "ArrowUp") {
			event.preventDefault();
			event.stopPropagation();
			moveSelection(event.key === "ArrowDown" ? 1 : -1);
		} else if (event.key === "Home" || event.key === "End") {
			event.preventDefault();
			event.stopPropagation();
			if (list.rows.length)
				selectId(list.rows[event.key === "Home" ? 0 : list.rows.length - 1].id);
		}
	});
}
