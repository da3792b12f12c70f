// compose.js: writing mail: new, reply, reply-all, forward, or going on
// with a draft. What is typed is saved as a draft two seconds after the
// last key; emails are immutable in JMAP, so each new version is created
// and the previous one destroyed in the same Email/set. Sending saves the
// last version and submits it in one request; the server then moves it
// from Drafts to Sent.
import {request, upload, session, JmapError} from "./jmap.js";
import {h, $, icon, toast, setView, addressFull, addressList, parseAddresses,
	validAddress, longDate, formatSize, htmlToText} from "./dom.js";
import {mail, getEmails, changed} from "./mail.js";
import {reader} from "./reader.js";

const SAVE_DELAY = 2000;

// The message being written; null when the composer is closed.
let c = null;

export function composeOpen() {
	return c !== null;
}

function identity(id = $("compose-from").value) {
	return mail.identities.find((i) => i.id === id) || mail.identities[0] || null;
}

// What the form holds; frozen into the message once the composer closes
// so that a last save can still happen.
function readFields() {
	return {fromId: $("compose-from").value, to: $("compose-to").value,
		cc: $("compose-cc").value, bcc: $("compose-bcc").value,
		subject: $("compose-subject").value, body: $("compose-body").value};
}

function fieldsOf(mine) {
	return mine.frozen || readFields();
}

function me(address) {
	const mine = new Set(mail.identities.map((i) => i.email.toLowerCase()));
	mine.add((session.username || "").toLowerCase());
	return address && mine.has((address.email || "").toLowerCase());
}

function dedupe(list, seen = new Set()) {
	const out = [];
	for (const a of list || []) {
		const key = (a.email || "").toLowerCase();
		if (!key || seen.has(key) || me(a))
			continue;
		seen.add(key);
		out.push(a);
	}
	return out;
}

function prefixed(prefix, subject) {
	subject = subject || "";
	return new RegExp("^" + prefix + ":", "i").test(subject) ? subject : `${prefix}: ${subject}`;
}

function sourceText(email) {
	const parts = [];
	for (const part of email.textBody || []) {
		const value = (email.bodyValues || {})[part.partId];
		if (!value)
			continue;
		parts.push(part.type === "text/html" ? htmlToText(value.value) : value.value);
	}
	return parts.join("\n").replace(/\r\n/g, "\n").replace(/\s+$/, "") || email.preview || "";
}

function signatureBlock() {
	const id = identity();
	const sig = id && id.textSignature;
	return sig ? "\n\n-- \n" + sig : "";
}

// The fields of a new message in mode ("new", "reply", "replyAll",
// "forward", "draft") from the email it answers.
function start(mode, email) {
	const f = {to: [], cc: [], bcc: [], subject: "", body: "", attachments: [],
		inReplyTo: null, references: null, draftId: null};
	const sig = signatureBlock();
	if (mode === "new" || !email) {
		f.body = sig;
		return f;
	}
	if (mode === "draft") {
		Object.assign(f, {to: email.to || [], cc: email.cc || [], bcc: email.bcc || [],
			subject: email.subject || "", body: sourceText(email),
			attachments: (email.attachments || []).map(copyAttachment),
			inReplyTo: email.inReplyTo, references: email.references, draftId: email.id});
		return f;
	}
	const from = (email.from || [])[0];
	const when = longDate(email.sentAt || email.receivedAt);
	if (mode === "forward") {
		f.subject = prefixed("Fwd", email.subject);
		f.body = "\n" + (sig ? sig + "\n" : "") + "\n---------- Forwarded message ----------\n" +
			`From: ${addressFull(from)}\nDate: ${when}\nSubject: ${email.subject || ""}\n` +
			`To: ${addressList(email.to)}\n` +
			((email.cc || []).length ? `Cc: ${addressList(email.cc)}\n` : "") +
			"\n" + sourceText(email) + "\n";
		f.attachments = (email.attachments || []).map(copyAttachment);
		return f;
	}
	const fromMe = me(from);
	const replyTo = fromMe ? email.to : ((email.replyTo || []).length ? email.replyTo : email.from);
	const seen = new Set();
	f.to = dedupe(replyTo, seen);
	if (fromMe && !f.to.length)
		f.to = email.to || [];
	if (mode === "replyAll") {
		f.to = f.to.concat(dedupe(email.to, seen));
		f.cc = dedupe(email.cc, seen);
	}
	f.subject = prefixed("Re", email.subject);
	f.inReplyTo = email.messageId || null;
	f.references = [...(email.references || []), ...(email.messageId || [])];
	if (!f.references.length)
		f.references = null;
	const quoted = sourceText(email).split("\n").map((l) => (l.startsWith(">") ? ">" : "> ") + l).join("\n");
	f.body = "\n" + (sig ? sig + "\n" : "") + `\nOn ${when}, ${addressFull(from) || "someone"} wrote:\n` + quoted + "\n";
	return f;
}

function copyAttachment(a) {
	return {blobId: a.blobId, type: a.type, name: a.name, size: a.size, done: true};
}

export async function openCompose(mode, email) {
	if (c)
		await closeCompose();
	if (mode === "draft" && email && !email.bodyValues) {
		const [got] = await getEmails({ids: [email.id], fetchTextBodyValues: true,
			properties: ["id", "threadId", "mailboxIds", "keywords", "to", "cc", "bcc",
				"subject", "inReplyTo", "references", "textBody", "attachments", "bodyValues", "preview"]});
		email = got.list[0] || email;
	}
	if (!mail.identities.length)
		await import("./mail.js").then((m) => m.loadIdentities()).catch(() => {});
	const from = $("compose-from");
	from.replaceChildren(...mail.identities.map((i) =>
		h("option", {value: i.id}, addressFull({name: i.name, email: i.email}))));
	if (!mail.identities.length)
		from.append(h("option", {value: ""}, session.username));
	from.disabled = mail.identities.length < 2;
	const f = start(mode, email);
	c = {mode, draftId: f.draftId, inReplyTo: f.inReplyTo, references: f.references,
		attachments: f.attachments, timer: null, saving: null, again: false, dirty: false,
		returnTo: reader.row ? "reader" : "list", sending: false};
	$("compose-title").textContent = {new: "New message", reply: "Reply", replyAll: "Reply all",
		forward: "Forward", draft: "Draft"}[mode] || "New message";
	$("compose-to").value = addressList(f.to);
	$("compose-cc").value = addressList(f.cc);
	$("compose-bcc").value = addressList(f.bcc);
	$("compose-subject").value = f.subject;
	$("compose-body").value = f.body;
	$("compose-error").hidden = true;
	showCopies(f.cc.length > 0 || f.bcc.length > 0);
	status("");
	renderAttachments();
	setView("compose");
	const focus = f.to.length ? $("compose-body") : $("compose-to");
	focus.focus();
	if (focus === $("compose-body"))
		focus.setSelectionRange(0, 0);
	if (mode === "forward" && f.attachments.length)
		scheduleSave();
}

function showCopies(on) {
	$("compose-cc-row").hidden = !on;
	$("compose-bcc-row").hidden = !on;
	$("compose-copies").hidden = on;
}

function status(text) {
	$("draft-status").textContent = text;
}

function isEmpty(mine) {
	const f = fieldsOf(mine);
	const body = f.body.replace(signatureBlock(), "").trim();
	return !f.to.trim() && !f.cc.trim() && !f.bcc.trim() && !f.subject.trim() &&
		!body && !mine.attachments.length;
}

function emailObject(mine) {
	const f = fieldsOf(mine);
	const id = identity(f.fromId);
	const o = {
		mailboxIds: {[mail.byRole.drafts]: true},
		keywords: {$draft: true, $seen: true},
		from: [{name: (id && id.name) || null, email: id ? id.email : session.username}],
		subject: f.subject,
		bodyValues: {body: {value: f.body}},
		textBody: [{partId: "body", type: "text/plain"}],
	};
	for (const field of ["to", "cc", "bcc"]) {
		const list = parseAddresses(f[field]);
		if (list.length)
			o[field] = list;
	}
	if (mine.inReplyTo)
		o.inReplyTo = mine.inReplyTo;
	if (mine.references)
		o.references = mine.references;
	const files = mine.attachments.filter((a) => a.blobId);
	if (files.length)
		o.attachments = files.map((a) => ({blobId: a.blobId, type: a.type, name: a.name,
			disposition: "attachment"}));
	return o;
}

function scheduleSave() {
	if (!c || c.sending)
		return;
	const mine = c;
	mine.dirty = true;
	clearTimeout(mine.timer);
	mine.timer = setTimeout(() => saveDraft(mine).catch(() => {}), SAVE_DELAY);
}

// Saves the draft now if anything changed; one save at a time.
async function saveDraft(mine = c) {
	if (!mine)
		return;
	clearTimeout(mine.timer);
	if (mine.saving) {
		mine.again = true;
		return mine.saving;
	}
	if (!mine.dirty || !mail.byRole.drafts)
		return;
	if (isEmpty(mine) && !mine.draftId) {
		mine.dirty = false;
		return;
	}
	mine.dirty = false;
	status("Saving…");
	mine.saving = (async () => {
		const args = {create: {draft: emailObject(mine)}};
		if (mine.draftId)
			args.destroy = [mine.draftId];
		const [[name, result]] = await request([["Email/set", args]]);
		if (name === "error" || !(result.created && result.created.draft)) {
			mine.dirty = true;
			const why = name === "error" ? result.type
				: ((result.notCreated || {}).draft || {}).description || "refused";
			if (c === mine)
				status("Not saved (" + why + ")");
			return;
		}
		mine.draftId = result.created.draft.id;
		if (c === mine)
			status("Saved " + new Date().toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"}));
		changed({draft: true});
	})().finally(() => { mine.saving = null; });
	await mine.saving;
	if (mine.again) {
		mine.again = false;
		if (mine.dirty)
			return saveDraft(mine);
	}
}

function showError(text) {
	const p = $("compose-error");
	p.textContent = text;
	p.hidden = !text;
}

async function send(event) {
	event.preventDefault();
	if (!c || c.sending)
		return;
	showError("");
	const all = ["to", "cc", "bcc"].flatMap((f) => parseAddresses($("compose-" + f).value));
	if (!all.length) {
		showError("Add at least one recipient.");
		$("compose-to").focus();
		return;
	}
	const bad = all.filter((a) => !validAddress(a.email));
	if (bad.length) {
		showError("This address does not look right: " + bad[0].email);
		return;
	}
	if (c.attachments.some((a) => !a.blobId)) {
		showError("Wait until the attachments are uploaded.");
		return;
	}
	const id = identity();
	if (!id) {
		showError("Sending is not possible: this account has no identity.");
		return;
	}
	const mine = c;
	mine.sending = true;
	clearTimeout(mine.timer);
	$("compose-send").disabled = true;
	status("Sending…");
	try {
		if (mine.saving)
			await mine.saving.catch(() => {});
		const drafts = mail.byRole.drafts, sent = mail.byRole.sent;
		const emailArgs = {create: {draft: emailObject(mine)}};
		if (mine.draftId)
			emailArgs.destroy = [mine.draftId];
		const onSent = {"keywords/$draft": null};
		if (sent && drafts) {
			onSent["mailboxIds/" + drafts] = null;
			onSent["mailboxIds/" + sent] = true;
		}
		const [[setName, set], [subName, sub]] = await request([
			["Email/set", emailArgs],
			["EmailSubmission/set", {create: {send: {identityId: id.id, emailId: "#draft"}},
				onSuccessUpdateEmail: {"#send": onSent}}],
		]);
		if (setName === "error")
			throw new JmapError(set.type, set.description);
		if (!(set.created && set.created.draft)) {
			const e = (set.notCreated || {}).draft || {};
			throw new JmapError(e.type || "notCreated", e.description);
		}
		mine.draftId = set.created.draft.id;
		if (subName === "error")
			throw new JmapError(sub.type, sub.description);
		if (!(sub.created && sub.created.send)) {
			const e = (sub.notCreated || {}).send || {};
			throw new JmapError(e.type || "notCreated", e.description);
		}
		finish();
		toast("Message sent.");
		changed({sent: true});
	} catch (e) {
		mine.sending = false;
		$("compose-send").disabled = false;
		status(mine.draftId ? "Saved as a draft" : "");
		showError("The message was not sent: " + (e.message || e));
	}
}

// Closes the composer without saving.
function finish() {
	if (!c)
		return;
	clearTimeout(c.timer);
	const back = c.returnTo;
	c = null;
	$("compose-send").disabled = false;
	setView(back === "reader" && reader.row ? "reader" : "list");
	const focus = back === "reader" && reader.row ? $("reader-subject") : $("message-list");
	if (focus)
		focus.focus({preventScroll: true});
}

// Closes the composer, keeping what was written as a draft.
export async function closeCompose() {
	if (!c)
		return;
	const mine = c;
	clearTimeout(mine.timer);
	mine.frozen = readFields();
	finish();
	if (mine.dirty || mine.saving) {
		await saveDraft(mine);
		if (mine.draftId)
			toast("Draft saved.");
	}
}

async function discard() {
	if (!c)
		return;
	const mine = c;
	clearTimeout(mine.timer);
	mine.frozen = readFields();
	finish();
	if (mine.saving)
		await mine.saving.catch(() => {});
	if (mine.draftId) {
		const [[name]] = await request([["Email/set", {destroy: [mine.draftId]}]]);
		if (name !== "error")
			changed({draft: true});
	}
	toast("Draft discarded.");
}

function renderAttachments() {
	const ul = $("compose-attachments");
	ul.replaceChildren(...(c ? c.attachments : []).map((a) => h("li", {class: "attachment" + (a.blobId ? "" : " uploading")},
		icon("clip"),
		h("span", {class: "att-name"}, a.name || "attachment"),
		h("span", {class: "att-size"}, a.blobId ? formatSize(a.size || 0) : "Uploading…"),
		h("button", {type: "button", class: "icon-button small", "aria-label": "Remove " + (a.name || "attachment"),
			title: "Remove", onclick: () => {
				c.attachments = c.attachments.filter((x) => x !== a);
				renderAttachments();
				scheduleSave();
			}}, icon("close")))));
	ul.hidden = !ul.childElementCount;
}

function addFiles(files) {
	const mine = c;
	for (const file of files) {
		if (file.size > session.maxSizeUpload) {
			toast(`${file.name} is too large to attach (${formatSize(file.size)}).`);
			continue;
		}
		const a = {name: file.name, type: file.type || "application/octet-stream", size: file.size, blobId: null};
		mine.attachments.push(a);
		upload(file).then((r) => {
			a.blobId = r.blobId;
			a.size = r.size ?? a.size;
			if (c === mine) {
				renderAttachments();
				scheduleSave();
			}
		}).catch((e) => {
			mine.attachments = mine.attachments.filter((x) => x !== a);
			if (c === mine)
				renderAttachments();
			toast(`${file.name} could not be attached: ${e.message}`);
		});
	}
	renderAttachments();
}

export function initCompose() {
	const form = $("compose-form");
	form.addEventListener("submit", send);
	form.addEventListener("input", (event) => {
		if (event.target.id !== "compose-file")
			scheduleSave();
	});
	$("compose-from").addEventListener("change", scheduleSave);
	$("compose-close").addEventListener("click", () => closeCompose());
	$("compose-discard").addEventListener("click", () => discard());
	$("compose-copies").addEventListener("click", () => {
		showCopies(true);
		$("compose-cc").focus();
	});
	$("compose-attach").addEventListener("click", () => $("compose-file").click());
	$("compose-file").addEventListener("change", (event) => {
		addFiles([...event.target.files]);
		event.target.value = "";
	});
	form.addEventListener("keydown", (event) => {
		if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
			event.preventDefault();
			form.requestSubmit();
		} else if (event.key === "Escape") {
			event.preventDefault();
			event.stopPropagation();
			closeCompose();
		}
	});
	form.addEventListener("dragover", (event) => {
		if ([...event.dataTransfer.types].includes("Files")) {
			event.preventDefault();
			form.classList.add("dropping");
		}
	});
	form.addEventListener("dragleave", () => form.classList.remove("dropping"));
	form.addEventListener("drop", (event) => {
		form.classList.remove("dropping");
		if (event.dataTransfer.files.length) {
			event.preventDefault();
			addFiles([...event.dataTransfer.files]);
		}
	});
	window.addEventListener("beforeunload", (event) => {
		if (c && (c.dirty || c.saving)) {
			saveDraft().catch(() => {});
			event.preventDefault();
		}
	});
}
