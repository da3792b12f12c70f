// reader.js: the reading pane: a conversation's messages, oldest first,
// the newest and the unread ones open. Plain text is shown as text with
// its links made clickable; HTML only ever inside a sandboxed iframe whose
// document the server sanitized (no scripts, no same-origin). Also the
// actions on a conversation: move, delete, flag, read or unread.
import {call, ref, downloadUrl, viewUrl, JmapError} from "./jmap.js";
import {h, $, icon, iconButton, avatar, addressName, addressList, longDate,
	shortDate, linkify, formatSize, toast, setView} from "./dom.js";
import {mail, getEmails, mailboxOf, roleOf, mailboxTitle, orderedMailboxes,
	mailboxName, setKeyword, moveEmails, restoreMailboxes, destroyEmails} from "./mail.js";
import {list, markOpen, patchRow, selectId} from "./list.js";

const BODY_PROPERTIES = ["id", "blobId", "threadId", "mailboxIds", "keywords", "size",
	"receivedAt", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "messageId",
	"inReplyTo", "references", "preview", "hasAttachment", "textBody", "htmlBody",
	"attachments", "bodyValues"];

// Whether the server knows its own properties: "dijk:hasRemoteImages"
// (true once the sanitizer held back remote images) and
// "dijk:authentication" (what its SPF, DKIM and DMARC checks said when the
// message arrived); asked for until the server says it does not.
let remoteImagesKnown = true;

async function fetchEmails(args, extraCalls) {
	const properties = remoteImagesKnown
		? [...BODY_PROPERTIES, "dijk:hasRemoteImages", "dijk:authentication"]
		: BODY_PROPERTIES;
	try {
		return await getEmails({...args, properties}, extraCalls);
	} catch (e) {
		if (!remoteImagesKnown || !(e instanceof JmapError) || e.type !== "invalidArguments")
			throw e;
		remoteImagesKnown = false;
		return fetchEmails(args, extraCalls);
	}
}

export const reader = {
	row: null,        // the list's email that was opened
	emails: [],       // the conversation's messages shown, oldest first
	onCompose: () => {},
	generation: 0,
};

// The mailbox a conversation is seen from: the list's, or in a search the
// mailbox of the message found.
function homeMailbox(row) {
	if (list.search && list.search.scope !== "here")
		return mailboxOf(row);
	return list.mailboxId || mailboxOf(row);
}

// Which of a thread's messages to show from mailbox home: in Trash and
// Junk only theirs; elsewhere everything but what is in Trash and Junk.
function visible(emails, home, row) {
	const homeRole = roleOf(home);
	const away = (e) => {
		const r = roleOf(mailboxOf(e));
		return r === "trash" || r === "junk";
	};
	return emails.filter((e) => e.id === row.id ||
		(homeRole === "trash" || homeRole === "junk"
			? mailboxOf(e) === home : !away(e)));
}

// The messages of row's conversation that are in its home mailbox: what
// a move or a delete takes.
async function conversationInHome(row) {
	const home = homeMailbox(row);
	if (!list.conversations || list.search)
		return [row];
	if (reader.row && reader.row.threadId === row.threadId && reader.emails.length)
		return reader.emails.filter((e) => mailboxOf(e) === home);
	const [, got] = await call([
		["Thread/get", {ids: [row.threadId]}],
		["Email/get", {"#ids": ref(0, "Thread/get", "/list/*/emailIds"),
			properties: ["id", "threadId", "mailboxIds", "keywords"]}],
	]).catch((e) => {
		if (e instanceof JmapError)
			return [null, {list: [row]}];
		throw e;
	});
	const inHome = got.list.filter((e) => mailboxOf(e) === home);
	return inHome.length ? inHome : [row];
}

export async function openConversation(row) {
	const generation = ++reader.generation;
	reader.row = row;
	markOpen(row.id);
	setView("reader");
	const pane = $("reader");
	pane.setAttribute("aria-busy", "true");
	let emails;
	const args = {fetchTextBodyValues: true, fetchHTMLBodyValues: false,
		maxBodyValueBytes: 262144};
	try {
		if (list.conversations && row.threadId) {
			const out = await fetchEmails({...args, "#ids": ref(0, "Thread/get", "/list/*/emailIds")},
				[["Thread/get", {ids: [row.threadId]}]]);
			emails = out[1].list;
		} else {
			emails = (await fetchEmails({...args, ids: [row.id]}))[0].list;
		}
	} catch (e) {
		if (!(e instanceof JmapError) || !list.conversations)
			throw e;
		// Without Thread/get, the one message.
		emails = (await fetchEmails({...args, ids: [row.id]}))[0].list;
	}
	if (generation !== reader.generation)
		return;
	pane.removeAttribute("aria-busy");
	emails.sort((a, b) => (a.receivedAt || "").localeCompare(b.receivedAt || ""));
	reader.emails = visible(emails, homeMailbox(row), row);
	if (!reader.emails.length)
		reader.emails = emails.filter((e) => e.id === row.id);
	render();
	const unread = reader.emails.filter((e) => !(e.keywords || {}).$seen &&
		!(e.keywords || {}).$draft);
	if (unread.length) {
		for (const e of unread) {
			e.keywords = {...e.keywords, $seen: true};
			patchRow(e.id, {$seen: true});
		}
		setKeyword(unread.map((e) => e.id), "$seen", true).catch(() => {});
	}
}

export function closeReader() {
	reader.generation++;
	reader.row = null;
	reader.emails = [];
	markOpen(null);
	renderEmpty();
}

// The pane when nothing is open. Callers redraw it once a list has loaded
// (its text depends on the list); a conversation opened while the list was
// loading stays.
export function renderEmpty() {
	if (reader.row)
		return;
	const count = list.total;
	$("reader").replaceChildren(h("div", {class: "reader-empty"},
		icon("mailOpen"),
		h("p", {}, list.rows.length ? "Select a conversation to read it." :
			"Nothing to read here."),
		count ? h("p", {class: "muted small"}, "Tip: press j and k to move, Enter to open, ? for all shortcuts.") : null));
}

// The message a reply goes to: the newest that is not a draft.
export function replyTarget() {
	const real = reader.emails.filter((e) => !(e.keywords || {}).$draft);
	return real[real.length - 1] || reader.emails[reader.emails.length - 1] || null;
}

function toolbar() {
	const row = reader.row;
	const flagged = !!(row.keywords || {}).$flagged;
	const unread = !(row.keywords || {}).$seen;
	const home = homeMailbox(row);
	const inTrash = roleOf(home) === "trash";
	return h("div", {class: "reader-bar", role: "toolbar", "aria-label": "Conversation"},
		iconButton("back", "Back to the list", () => backToList(), {class: "back-button", keys: "Escape"}),
		iconButton("reply", "Reply", () => reader.onCompose("reply", replyTarget()), {keys: "r", id: "act-reply"}),
		iconButton("replyAll", "Reply all", () => reader.onCompose("replyAll", replyTarget()), {keys: "a", id: "act-reply-all"}),
		iconButton("forward", "Forward", () => reader.onCompose("forward", replyTarget()), {keys: "f", id: "act-forward"}),
		h("span", {class: "bar-gap"}),
		iconButton("move", "Move to…", (event) => openMoveMenu(event.currentTarget, row), {keys: "v", id: "act-move"}),
		iconButton("trash", inTrash ? "Delete forever" : "Delete", () => deleteRow(row), {keys: "#", id: "act-delete"}),
		h("button", {type: "button", class: "icon-button" + (flagged ? " on" : ""), id: "act-flag",
			title: flagged ? "Unflag" : "Flag", "aria-label": "Flag", "aria-pressed": flagged ? "true" : "false",
			"aria-keyshortcuts": "s", onclick: () => toggleFlag(row)}, icon("star")),
		iconButton(unread ? "mailOpen" : "mail", unread ? "Mark as read" : "Mark as unread",
			() => toggleRead(row), {keys: "u", id: "act-read"}));
}

function render() {
	const row = reader.row;
	const subject = row.subject || "(no subject)";
	const articles = reader.emails.map((e, i) => message(e,
		i === reader.emails.length - 1 || !(e.keywords || {}).$seen || reader.emails.length <= 2));
	$("reader").replaceChildren(
		toolbar(),
		h("div", {class: "reader-scroll"},
			h("header", {class: "reader-head"},
				h("h2", {class: "reader-subject", id: "reader-subject", tabindex: "-1"}, subject),
				h("span", {class: "chip"}, mailboxTitle(mailboxOf(row))),
				reader.emails.length > 1 ? h("span", {class: "muted small"},
					reader.emails.length + " messages") : null),
			h("div", {class: "thread"}, articles)));
}

function message(email, open) {
	const from = (email.from || [])[0];
	const kw = email.keywords || {};
	const draft = !!kw.$draft;
	const recipients = [];
	if ((email.to || []).length)
		recipients.push("to " + email.to.map(addressName).join(", "));
	if ((email.cc || []).length)
		recipients.push("cc " + email.cc.map(addressName).join(", "));
	const body = h("div", {class: "msg-body"});
	const article = h("article", {class: "message" + (open ? " expanded" : " collapsed"),
		"aria-label": "Message from " + (addressName(from) || "unknown sender"),
		dataset: {id: email.id}},
	h("header", {class: "msg-head",
		onclick: (event) => {
			if (event.target.closest("button, a"))
				return;
			if (article.classList.contains("collapsed")) {
				article.classList.replace("collapsed", "expanded");
				fill(body, email);
			} else if (reader.emails.length > 1) {
				article.classList.replace("expanded", "collapsed");
			}
		}},
	avatar(from),
	h("div", {class: "msg-who"},
		h("div", {},
			h("span", {class: "msg-from"}, addressName(from) || "(unknown sender)"),
			from && from.name ? h("span", {class: "msg-addr"}, " <" + from.email + ">") : null,
			senderCheck(email["dijk:authentication"]),
			draft ? h("span", {class: "chip draft"}, "Draft") : null),
		h("div", {class: "msg-to", title: [addressList(email.to), addressList(email.cc)].filter(Boolean).join("; ")},
			recipients.join(", ")),
		h("div", {class: "msg-preview"}, email.preview || "")),
	h("time", {class: "msg-date", datetime: email.receivedAt, title: longDate(email.receivedAt)},
		shortDate(email.receivedAt)),
	h("div", {class: "msg-actions"},
		draft
			? h("button", {type: "button", class: "small-button",
				onclick: () => reader.onCompose("draft", email)}, "Edit draft")
			: iconButton("reply", "Reply to this message", () => reader.onCompose("reply", email)))),
	body);
	if (open)
		fill(body, email);
	return article;
}

// A mark for what the server's checks said of the sender when the message
// arrived: verified when the From domain's DMARC check passed, a warning
// when it failed or when nothing vouches for a sender SPF refused.
function senderCheck(auth) {
	if (!auth)
		return null;
	const domain = auth.fromDomain || "the sender's domain";
	if (auth.dmarc === "pass")
		return h("span", {class: "chip verified", role: "note",
			title: "Checked: this message was sent by " + domain +
				" (DMARC pass, DKIM " + auth.dkim + ", SPF " + auth.spf + ")"},
		"Verified");
	if (auth.dmarc === "fail" ||
		(auth.dkim !== "pass" && (auth.spf === "fail" || auth.spf === "softfail")))
		return h("span", {class: "chip unverified", role: "note",
			title: "Could not confirm that this message came from " + domain +
				"; it may be forged (DMARC " + auth.dmarc + ", DKIM " + auth.dkim +
				", SPF " + auth.spf + ")"},
		"Unverified sender");
	return null;
}

// Fills a message's body the first time it is opened.
function fill(body, email) {
	if (body.childElementCount)
		return;
	const html = (email.htmlBody || []).find((p) => p.type === "text/html");
	if (html) {
		// The server tells whether the sanitizer held back remote images;
		// when it does not say, the bar shows for every HTML message.
		const remote = email["dijk:hasRemoteImages"];
		const frame = h("iframe", {sandbox: "", class: "html-body",
			title: "Message content", src: viewUrl(email.id, html.partId, false)});
		frame.setAttribute("sandbox", "");
		if (remote !== false) {
			const bar = h("div", {class: "images-bar", role: "note"},
				icon("image"),
				h("span", {}, "Pictures from the internet are blocked to protect your privacy."),
				h("button", {type: "button", class: "small-button show-images",
					onclick: () => {
						frame.src = viewUrl(email.id, html.partId, true);
						bar.remove();
					}}, "Show images"));
			body.append(bar);
		}
		body.append(frame);
	} else {
		const text = h("div", {class: "text-body"});
		let truncated = false;
		for (const part of email.textBody || []) {
			const value = (email.bodyValues || {})[part.partId];
			if (!value)
				continue;
			truncated ||= value.isTruncated;
			appendText(text, value.value);
		}
		if (!text.childNodes.length)
			text.append(h("span", {class: "muted"}, email.preview || "(this message has no text)"));
		body.append(text);
		if (truncated)
			body.append(h("p", {class: "muted small"},
				"This message is long; only its beginning is shown. ",
				h("a", {href: downloadUrl(email.blobId, "message.eml", "message/rfc822"),
					download: "message.eml"}, "Download the whole message")));
	}
	const files = (email.attachments || []).filter((a) =>
		!(a.disposition === "inline" && a.cid && html));
	if (files.length)
		body.append(h("ul", {class: "attachments", "aria-label": "Attachments"},
			files.map((a) => h("li", {},
				h("a", {class: "attachment", href: downloadUrl(a.blobId, a.name, a.type),
					download: a.name || "attachment", title: "Download " + (a.name || "attachment")},
				icon("clip"),
				h("span", {class: "att-name"}, a.name || "attachment"),
				h("span", {class: "att-size"}, formatSize(a.size || 0)),
				icon("download"))))));
}

// Text with its quoted lines ("> ...") grouped into blockquotes.
function appendText(into, text) {
	const lines = text.replace(/\r\n/g, "\n").split("\n");
	let plain = [], quoted = [];
	const flushPlain = () => {
		if (plain.length)
			into.append(linkify(plain.join("\n") + "\n"));
		plain = [];
	};
	const flushQuoted = () => {
		if (quoted.length) {
			const q = h("blockquote", {});
			appendText(q, quoted.join("\n"));
			into.append(q);
		}
		quoted = [];
	};
	for (const line of lines) {
		if (/^>/.test(line)) {
			flushPlain();
			quoted.push(line.replace(/^> ?/, ""));
		} else {
			flushQuoted();
			plain.push(line);
		}
	}
	flushPlain();
	flushQuoted();
}

export function backToList() {
	setView("list");
	const row = list.selectedId && $("row-" + list.selectedId);
	(row ? $("message-list") : $("message-list")).focus({preventScroll: true});
}

function afterRemoval(row) {
	if (reader.row && reader.row.id === row.id) {
		closeReader();
		setView("list");
	}
	// Keep the selection where the row was: the next one takes its place.
	const index = list.rows.findIndex((e) => e.id === row.id);
	const next = list.rows[index + 1] || list.rows[index - 1];
	if (next)
		selectId(next.id, {scroll: false});
}

// Delete: to Trash, or forever when already in Trash (or when there is no
// Trash).
export async function deleteRow(row) {
	if (!row)
		return;
	const emails = await conversationInHome(row);
	const trash = mail.byRole.trash;
	const home = homeMailbox(row);
	afterRemoval(row);
	if (!trash || home === trash) {
		await destroyEmails(emails.map((e) => e.id));
		toast(emails.length > 1 ? `${emails.length} messages deleted forever.` : "Message deleted forever.");
	} else {
		const before = await moveEmails(emails, trash);
		toast(emails.length > 1 ? "Conversation moved to Trash." : "Message moved to Trash.",
			{label: "Undo", run: () => restoreMailboxes(before)});
	}
}

export async function moveRow(row, target) {
	const emails = await conversationInHome(row);
	afterRemoval(row);
	const before = await moveEmails(emails, target);
	toast(`Moved to ${mailboxTitle(target)}.`, {label: "Undo", run: () => restoreMailboxes(before)});
}

// The list's current object for a row: a reload replaces them, and the
// reader's may be older than the list's.
function fresh(row) {
	const now = row && list.rows.find((e) => e.id === row.id);
	if (now && reader.row && reader.row.id === now.id)
		reader.row = now;
	return now || row;
}

export async function toggleFlag(row) {
	row = fresh(row);
	if (!row)
		return;
	const on = !(row.keywords || {}).$flagged;
	patchRow(row.id, {$flagged: on});
	row.keywords = {...row.keywords, $flagged: on};
	if (!on)
		delete row.keywords.$flagged;
	if (reader.row && reader.row.id === row.id)
		render();
	await setKeyword([row.id], "$flagged", on);
}

export async function toggleRead(row) {
	row = fresh(row);
	if (!row)
		return;
	const read = !(row.keywords || {}).$seen;
	const emails = read ? await conversationInHome(row) : [row];
	for (const e of emails) {
		patchRow(e.id, {$seen: read});
		e.keywords = {...e.keywords, $seen: read};
		if (!read)
			delete e.keywords.$seen;
	}
	row.keywords = {...row.keywords, $seen: read};
	if (!read)
		delete row.keywords.$seen;
	if (reader.row && reader.row.id === row.id)
		render();
	await setKeyword(emails.map((e) => e.id), "$seen", read);
	if (!read)
		toast("Marked as unread.");
}

// A menu of mailboxes to move a conversation to; arrows move, Enter
// picks, Escape closes and gives the focus back.
let closeMenu = null;

export function openMoveMenu(anchor, row) {
	if (!row)
		return;
	closeMenus();
	const home = homeMailbox(row);
	const items = orderedMailboxes().filter(({mailbox}) => mailbox.id !== home)
		.map(({mailbox, depth}) => h("button", {type: "button", role: "menuitem", class: "menu-item",
			style: {"--depth": String(depth)}, dataset: {id: mailbox.id},
			onclick: () => { close(); moveRow(row, mailbox.id); }},
		icon(mailbox.role || "folder"), mailboxName(mailbox)));
	const menu = h("div", {class: "menu", role: "menu", id: "move-menu", "aria-label": "Move to"},
		h("div", {class: "menu-title", "aria-hidden": "true"}, "Move to"), items);
	const close = () => {
		menu.remove();
		document.removeEventListener("mousedown", outside, true);
		closeMenu = null;
		const back = anchor && anchor.isConnected && anchor.matches("button")
			? anchor : $("message-list");
		back.focus({preventScroll: true});
	};
	closeMenu = close;
	const outside = (event) => {
		if (!menu.contains(event.target))
			close();
	};
	menu.addEventListener("keydown", (event) => {
		const index = items.indexOf(document.activeElement);
		if (event.key === "ArrowDown" || event.key === "j") {
			items[(index + 1) % items.length].focus();
		} else if (event.key === "ArrowUp" || event.key === "k") {
			items[(index - 1 + items.length) % items.length].focus();
		} else if (event.key === "Escape") {
			close();
		} else if (event.key === "Tab") {
			close();
		} else {
			return;
		}
		event.preventDefault();
		event.stopPropagation();
	});
	document.body.append(menu);
	const box = (anchor || $("reader")).getBoundingClientRect();
	const width = 240;
	menu.style.left = Math.max(8, Math.min(window.innerWidth - width - 8, box.right - width)) + "px";
	menu.style.top = Math.min(window.innerHeight - 120, box.bottom + 6) + "px";
	menu.style.maxHeight = Math.max(120, window.innerHeight - box.bottom - 24) + "px";
	document.addEventListener("mousedown", outside, true);
	if (items.length)
		items[0].focus();
}

export function closeMenus() {
	if (closeMenu)
		closeMenu();
}

export function menuOpen() {
	return !!$("move-menu");
}

export function initReader(onCompose) {
	reader.onCompose = onCompose;
	renderEmpty();
}
