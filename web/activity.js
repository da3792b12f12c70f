// activity.js: the Activity page: every access to this mailbox the server
// logged (sign-ins over IMAP, SMTP and the webmail, mailbox opens, reads,
// moves, deletions, sends, settings changes), newest first, from
// /api/activity. This browser's own session is marked, so that anything
// else stands out.
import {apiGet} from "./jmap.js";
import {h, $, iconButton, setView} from "./dom.js";

const PAGE = 50;

const ACTIONS = {
	"login": "Signed in",
	"login failed": "Failed sign-in",
	"logout": "Signed out",
	"session expired": "Session ended (unused too long)",
	"client": "Mail program identified itself",
	"select": "Opened folder",
	"examine": "Looked into folder",
	"view mailbox": "Opened folder",
	"fetch": "Read messages",
	"read": "Read messages",
	"download": "Downloaded attachment",
	"copy": "Copied messages",
	"move": "Moved messages",
	"expunge": "Deleted messages",
	"delete": "Deleted messages",
	"send": "Sent mail",
	"password change": "Changed the password",
	"password change failed": "Failed password change",
	"settings change": "Changed settings",
	"identity change": "Changed sender identity",
	"mailbox change": "Changed folders",
	"delete mailbox": "Deleted a folder",
	"rename mailbox": "Renamed a folder",
	"user add": "Account created by the administrator",
	"user passwd": "Password set by the administrator",
	"retention": "Older entries removed",
};

const PROTOCOLS = {imap: "IMAP", smtp: "SMTP", web: "Webmail", admin: "Administrator", auth: "Server"};

function when(seconds) {
	const d = new Date(seconds * 1000);
	return h("time", {datetime: d.toISOString(), title: d.toISOString()},
		d.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "medium"}));
}

function row(e) {
	const what = ACTIONS[e.action] || e.action;
	return h("tr", {class: e.current ? "activity-row current" : "activity-row",
		"data-action": e.action, "data-protocol": e.protocol},
	h("td", {class: "activity-when"}, when(e.time)),
	h("td", {class: "activity-what"}, h("span", {class: "activity-action"}, what),
		e.detail ? h("span", {class: "activity-detail"}, e.detail) : null),
	h("td", {}, PROTOCOLS[e.protocol] || e.protocol || "—"),
	h("td", {class: "activity-from"}, e.remote || "—"),
	h("td", {class: "activity-session"},
		e.session ? h("code", {}, e.session) : "—",
		e.current ? h("span", {class: "activity-mark"}, "this session") : null));
}

async function loadPage(tbody, more, before) {
	more.disabled = true;
	const page = await apiGet("/api/activity?limit=" + PAGE + (before ? "&before=" + before : ""));
	tbody.append(...page.entries.map(row));
	more.hidden = !page.next;
	more.disabled = false;
	more.onclick = () => loadPage(tbody, more, page.next);
	return page;
}

export async function openActivity(onClose) {
	const tbody = h("tbody", {});
	const more = h("button", {type: "button", class: "primary-button", id: "activity-more", hidden: true},
		"Show older");
	const table = h("table", {class: "activity-table", id: "activity-table"},
		h("thead", {}, h("tr", {},
			h("th", {scope: "col"}, "When"), h("th", {scope: "col"}, "What"),
			h("th", {scope: "col"}, "How"), h("th", {scope: "col"}, "From"),
			h("th", {scope: "col"}, "Session"))),
		tbody);
	const page = await loadPage(tbody, more, 0);
	const pane = $("settings");
	pane.replaceChildren(
		h("header", {class: "settings-head"},
			iconButton("back", "Back to mail", onClose, {class: "settings-back"}),
			h("h2", {id: "activity-title", tabindex: "-1"}, "Activity")),
		h("div", {class: "activity-body"},
			h("section", {class: "card"},
				h("p", {class: "muted activity-intro"},
					"Every access to your mailbox, newest first. Your current session is ",
					h("code", {}, page.session), ". If you see a sign-in you do not recognize, change your password."),
				h("div", {class: "activity-scroll"}, table),
				h("div", {class: "form-actions"}, more))));
	setView("settings");
	$("activity-title").focus();
}
