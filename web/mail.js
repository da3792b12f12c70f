// mail.js: what the webmail knows about the account (mailboxes, identities)
// and the changes it makes to messages. A change tells the rest of the page
// through the "changed" event, which reloads what is shown.
import {call, JmapError} from "./jmap.js";

export const mail = {
	mailboxes: [],
	byId: new Map(),
	byRole: {},
	identities: [],
};

export const events = new EventTarget();

export function changed(what) {
	events.dispatchEvent(new CustomEvent("changed", {detail: what || {}}));
}

const ROLE_NAMES = {inbox: "Inbox", drafts: "Drafts", sent: "Sent", archive: "Archive",
	junk: "Junk", trash: "Trash"};

export function mailboxName(m) {
	if (!m)
		return "";
	if (m.name === "INBOX")
		return "Inbox";
	return m.name;
}

export function mailboxTitle(id) {
	const m = mail.byId.get(id);
	return m ? mailboxName(m) : "";
}

export function roleName(role) {
	return ROLE_NAMES[role];
}

// The mailboxes in display order: by parent, then sortOrder, then name;
// each with its depth.
export function orderedMailboxes() {
	const byParent = new Map();
	for (const m of mail.mailboxes) {
		const key = m.parentId || "";
		if (!byParent.has(key))
			byParent.set(key, []);
		byParent.get(key).push(m);
	}
	for (const list of byParent.values())
		list.sort((a, b) => (a.sortOrder || 0) - (b.sortOrder || 0) ||
			a.name.localeCompare(b.name));
	const out = [];
	const add = (parent, depth) => {
		for (const m of byParent.get(parent) || []) {
			out.push({mailbox: m, depth});
			add(m.id, depth + 1);
		}
	};
	add("", 0);
	return out;
}

export async function loadMailboxes() {
	const [result] = await call([["Mailbox/get", {}]]);
	mail.mailboxes = result.list;
	mail.byId = new Map(result.list.map((m) => [m.id, m]));
	mail.byRole = {};
	for (const m of result.list)
		if (m.role && !mail.byRole[m.role])
			mail.byRole[m.role] = m.id;
	return mail.mailboxes;
}

export async function loadIdentities() {
	try {
		const [result] = await call([["Identity/get", {}]]);
		mail.identities = result.list || [];
	} catch (e) {
		if (!(e instanceof JmapError))
			throw e;
		mail.identities = [];
	}
	return mail.identities;
}

export function roleOf(mailboxId) {
	const m = mail.byId.get(mailboxId);
	return m ? m.role : null;
}

// The one mailbox of an email (in dijk an email is in exactly one).
export function mailboxOf(email) {
	return Object.keys(email.mailboxIds || {})[0] || null;
}

function checkSet(result, what) {
	const failed = {...(result.notUpdated || {}), ...(result.notDestroyed || {}),
		...(result.notCreated || {})};
	const first = Object.values(failed)[0];
	if (first)
		throw new JmapError(first.type, first.description || `${what} failed`);
	return result;
}

async function emailSet(args, what) {
	const [result] = await call([["Email/set", args]]);
	return checkSet(result, what);
}

// Keyword changes the server may not show yet. A list fetch that left
// before the server applied one answers with the old keywords, which
// must not undo what the reader just saw change; each change is applied
// to the rows of every fetch that started before it was confirmed.
const keywordChanges = [];
let listFetches = 0;

// Numbers a list fetch as it starts (for applyKeywordChanges).
export function listFetchStarted() {
	return ++listFetches;
}

// Puts the changes not yet confirmed when fetch started onto its rows.
export function applyKeywordChanges(rows, fetch) {
	for (let i = keywordChanges.length - 1; i >= 0; i--)
		if (keywordChanges[i].settled !== null && keywordChanges[i].settled < fetch)
			keywordChanges.splice(i, 1);
	for (const c of keywordChanges)
		for (const e of rows) {
			if (!c.ids.includes(e.id))
				continue;
			e.keywords = {...e.keywords, [c.keyword]: true};
			if (!c.on)
				delete e.keywords[c.keyword];
		}
}

export async function setKeyword(ids, keyword, on) {
	if (!ids.length)
		return;
	const update = {};
	for (const id of ids)
		update[id] = {["keywords/" + keyword]: on ? true : null};
	const change = {ids, keyword, on, settled: null};
	keywordChanges.push(change);
	try {
		await emailSet({update}, "Changing the message");
	} catch (e) {
		keywordChanges.splice(keywordChanges.indexOf(change), 1);
		throw e;
	}
	change.settled = listFetches;
	changed({keywords: ids});
}

// Moves emails to one mailbox; resolves to their mailboxes before, for an
// undo.
export async function moveEmails(emails, targetId) {
	const update = {};
	const before = new Map();
	for (const e of emails) {
		before.set(e.id, mailboxOf(e));
		update[e.id] = {mailboxIds: {[targetId]: true}};
	}
	if (!emails.length)
		return before;
	await emailSet({update}, "Moving");
	changed({moved: [...before.keys()]});
	return before;
}

export async function restoreMailboxes(before) {
	const update = {};
	for (const [id, mailboxId] of before)
		if (mailboxId)
			update[id] = {mailboxIds: {[mailboxId]: true}};
	await emailSet({update}, "Undoing");
	changed({moved: [...before.keys()]});
}

export async function destroyEmails(ids) {
	if (!ids.length)
		return;
	await emailSet({destroy: ids}, "Deleting");
	changed({destroyed: ids});
}

// Email/get after extraCalls (which its arguments may refer to with
// ref()); resolves to every call's result, or throws the first error.
export async function getEmails(args, extraCalls = []) {
	return call([...extraCalls, ["Email/get", args]]);
}
