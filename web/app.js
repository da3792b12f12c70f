// app.js: the webmail's entry point: signing in and out, the folder list,
// the page's layout (one pane at a time on a phone), push of changes from
// the server, search and the keyboard. It talks to the server through its
// JSON API only (the session endpoints and JMAP); no inline script,
// nothing loaded from another host, no markup built from mail.
import {apiPost, loadSession, onSignedOut, session, watchChanges,
	SignedOut} from "./jmap.js";
import {h, $, icon, setView, currentView, isPhone, toast, morphChildren} from "./dom.js";
import {mail, events, loadMailboxes, loadIdentities, orderedMailboxes,
	mailboxName, roleOf} from "./mail.js";
import {list, initList, showMailbox, showSearch, load as loadList, moveSelection,
	selected, selectId} from "./list.js";
import {reader, initReader, openConversation, closeReader, replyTarget, deleteRow,
	toggleFlag, toggleRead, openMoveMenu, menuOpen, closeMenus, backToList,
	renderEmpty} from "./reader.js";
import {initCompose, openCompose, closeCompose, composeOpen} from "./compose.js";
import {openSettings, closeSettings, shortcutTable} from "./settings.js";
import {sendLoginCode} from "./security.js";
import {openActivity} from "./activity.js";

const state = {
	brand: null,
	stopPush: null,
	refreshing: null,
	refreshAgain: false,
	ticket: null, // of a password that held, waiting for its second factor
};

async function loadBrand() {
	const response = await fetch("brand.json", {credentials: "same-origin"});
	if (!response.ok)
		return;
	const brand = await response.json();
	state.brand = brand;
	document.title = brand.display;
	$("brand-name").textContent = brand.display;
	$("app-brand").textContent = brand.display;
	if (brand.logo) {
		$("brand-logo").src = "logo";
		$("brand-logo").hidden = false;
		$("brand-mark").hidden = true;
	}
	$("brand-switch").hidden = !brand.choice;
}

function showError(text) {
	const p = $("login-error");
	p.textContent = text;
	p.hidden = !text;
}

// ---- Folders ----

function folderItem(mailbox, depth) {
	const current = mailbox.id === list.mailboxId && !list.search;
	const a = h("a", {href: "#" + encodeURIComponent(mailbox.id),
		class: "folder" + (mailbox.role ? " role-" + mailbox.role : ""),
		"aria-current": current ? "true" : null,
		style: {"--depth": String(depth)},
		dataset: {id: mailbox.id}},
	icon(mailbox.role || "folder"),
	h("span", {class: "folder-name"}, mailboxName(mailbox)));
	if (mailbox.unreadEmails > 0) {
		const quiet = mailbox.role === "trash" || mailbox.role === "junk";
		a.append(h("span", {class: "unread" + (quiet ? " quiet" : ""),
			"aria-label": mailbox.unreadEmails + " unread"}, String(mailbox.unreadEmails)));
	}
	return h("li", {}, a);
}

function renderFolders() {
	morphChildren($("folder-list"), orderedMailboxes().map(({mailbox, depth}) =>
		folderItem(mailbox, depth)), (li) => li.firstChild.dataset.id);
	const inbox = mail.byId.get(mail.byRole.inbox);
	const unread = inbox ? inbox.unreadEmails : 0;
	document.title = (unread ? `(${unread}) ` : "") + (state.brand ? state.brand.display : "Webmail");
}

async function openMailbox(id) {
	setDrawer(false);
	closeReader();
	if (composeOpen() && isPhone())
		await closeCompose();
	if (currentView() !== "compose")
		setView("list");
	$("search").value = "";
	const loading = showMailbox(id);
	renderFolders();
	await loading;
	renderEmpty();
}

function setDrawer(open) {
	$("app").classList.toggle("drawer-open", open);
	$("menu-button").setAttribute("aria-expanded", open ? "true" : "false");
	$("drawer-scrim").hidden = !open;
	if (open)
		($("folder-list").querySelector("[aria-current]") || $("compose-button")).focus();
}

// ---- Keeping up with the server ----

// Reloads folders and the list; one refresh at a time, and one more if
// something changed meanwhile.
async function refresh() {
	if (!session.csrf)
		return;
	if (state.refreshing) {
		state.refreshAgain = true;
		return state.refreshing;
	}
	state.refreshing = (async () => {
		try {
			await loadMailboxes();
			renderFolders();
			await loadList();
		} catch (e) {
			if (!(e instanceof SignedOut))
				console.warn("refresh:", e.message);
		}
	})();
	await state.refreshing;
	state.refreshing = null;
	if (state.refreshAgain) {
		state.refreshAgain = false;
		return refresh();
	}
}

// ---- Opening things ----

function openRow(email) {
	if (!email)
		return;
	selectId(email.id);
	const kw = email.keywords || {};
	if (kw.$draft && roleOf(Object.keys(email.mailboxIds || {})[0]) === "drafts")
		return openCompose("draft", email);
	return openConversation(email).catch(report);
}

// The conversation an action is about: the open one, or the selected row.
function target() {
	if (currentView() === "reader" || (!isPhone() && reader.row))
		return reader.row || selected();
	return selected();
}

async function compose(mode) {
	if (mode === "new")
		return openCompose("new");
	let email = reader.row && (!selected() || selected().id === reader.row.id) ? replyTarget() : null;
	if (!email && selected()) {
		await openConversation(selected());
		email = replyTarget();
	}
	if (email)
		return openCompose(mode, email);
}

function report(e) {
	if (e instanceof SignedOut)
		return;
	console.warn(e);
	toast(e.message || String(e));
}

// ---- Keyboard ----

function onKey(event) {
	if ($("app").hidden || event.ctrlKey || event.metaKey || event.altKey)
		return;
	if ($("shortcuts-dialog").open)
		return;
	const t = event.target;
	const typing = t instanceof Element && !!t.closest("input, textarea, select, [contenteditable]");
	const view = currentView();
	if (event.key === "Escape") {
		if (menuOpen()) {
			closeMenus();
		} else if ($("app").classList.contains("drawer-open")) {
			setDrawer(false);
			$("menu-button").focus();
		} else if (t.id === "search") {
			t.blur();
			$("message-list").focus();
		} else if (view === "compose") {
			closeCompose().catch(report);
		} else if (view === "settings") {
			closeSettings();
		} else if (reader.row) {
			closeReader();
			backToList();
		} else {
			return;
		}
		event.preventDefault();
		return;
	}
	if (typing || view === "compose" || menuOpen())
		return;
	if (view === "settings" && event.key !== "?")
		return;
	const onControl = t instanceof Element && !!t.closest("button, a, summary");
	let handled = true;
	switch (event.key) {
	case "j":
	case "k":
		moveSelection(event.key === "j" ? 1 : -1).then((email) => {
			// With a conversation open beside the list, follow along.
			if (email && reader.row && !isPhone())
				openRow(email);
		}).catch(report);
		if (document.activeElement === document.body)
			$("message-list").focus({preventScroll: true});
		break;
	case "Enter":
	case "o":
		if (event.key === "Enter" && onControl) {
			handled = false;
			break;
		}
		openRow(selected());
		break;
	case "r":
		compose("reply").catch(report);
		break;
	case "a":
		compose("replyAll").catch(report);
		break;
	case "f":
		compose("forward").catch(report);
		break;
	case "c":
		openCompose("new").catch(report);
		break;
	case "#":
	case "Delete":
		deleteRow(target()).catch(report);
		break;
	case "s":
		toggleFlag(target()).catch(report);
		break;
	case "u":
		toggleRead(target()).catch(report);
		break;
	case "v": {
		const row = target();
		openMoveMenu($("act-move") || (row && $("row-" + row.id)), row);
		break;
	}
	case "/":
		$("search").focus();
		$("search").select();
		break;
	case "?":
		$("shortcuts-dialog").showModal();
		break;
	default:
		handled = false;
	}
	if (handled)
		event.preventDefault();
}

// ---- Signing in and out ----

function resetApp() {
	if (state.stopPush)
		state.stopPush();
	state.stopPush = null;
	closeMenus();
	closeReader();
	list.rows = [];
	list.mailboxId = null;
	list.search = null;
	mail.mailboxes = [];
	mail.identities = [];
	$("folder-list").replaceChildren();
	$("message-list").replaceChildren();
	$("reader").replaceChildren();
	$("settings").replaceChildren();
	$("search").value = "";
	setView("list");
}

// The second step of signing in, for accounts with two-step sign-in.
function showCodeStep(show) {
	$("login-form").hidden = show;
	$("login-code-form").hidden = !show;
	$("login-code").value = "";
	$("login-code-error").hidden = true;
	if (show)
		$("login-code").focus();
	else
		state.ticket = null;
}

async function sendCode(event) {
	event.preventDefault();
	const button = event.target.querySelector("button");
	button.disabled = true;
	try {
		const who = await sendLoginCode(state.ticket, $("login-code").value.trim());
		showCodeStep(false);
		$("password").value = "";
		await showApp(who);
	} catch (e) {
		// The ticket is used up by any answer: back to the password.
		showCodeStep(false);
		showError(e.status === 401
			? "That code did not work. Sign in again."
			: "Signing in is not possible right now. Try again later.");
	} finally {
		button.disabled = false;
	}
}

function showLogin() {
	session.csrf = null;
	showCodeStep(false);
	resetApp();
	$("app").hidden = true;
	$("login").hidden = false;
	document.body.className = "login-page";
	document.title = state.brand ? state.brand.display : "Webmail";
}

async function showApp(who) {
	try {
		await loadSession(who.csrf, who.username);
	} catch (e) {
		showLogin();
		return;
	}
	$("app-user").textContent = who.username;
	$("login").hidden = true;
	$("app").hidden = false;
	document.body.className = "app-page";
	setView("list");
	await loadMailboxes();
	renderFolders();
	loadIdentities().catch(() => {});
	const first = mail.byRole.inbox || (mail.mailboxes[0] && mail.mailboxes[0].id);
	if (first) {
		await showMailbox(first).catch(report);
		renderFolders();
	}
	renderEmpty();
	state.stopPush = watchChanges(() => refresh());
}

async function signIn(event) {
	event.preventDefault();
	showError("");
	const form = event.target;
	const button = form.querySelector("button");
	button.disabled = true;
	try {
		const response = await fetch("/api/login", {
			method: "POST",
			credentials: "same-origin",
			headers: {"Content-Type": "application/json"},
			body: JSON.stringify({
				username: form.username.value,
				password: form.password.value,
			}),
		});
		if (response.ok) {
			const who = await response.json();
			form.password.value = "";
			if (who.ticket) {
				state.ticket = who.ticket;
				showCodeStep(true);
				return;
			}
			await showApp(who);
		} else {
			showError(response.status === 401
				? "The email address or the password is wrong."
				: "Signing in is not possible right now. Try again later.");
		}
	} catch (e) {
		showError("The server cannot be reached.");
	} finally {
		button.disabled = false;
	}
}

async function signOut() {
	if (composeOpen())
		await closeCompose().catch(() => {});
	try {
		await apiPost("/api/logout", {});
	} catch (e) {
		// Signed out already, or the server is away: the page forgets anyway.
	}
	showLogin();
	$("username").focus();
}

// ---- Start ----

function bind() {
	$("login-form").addEventListener("submit", signIn);
	$("login-code-form").addEventListener("submit", sendCode);
	$("logout").addEventListener("click", signOut);
	$("compose-button").addEventListener("click", () => {
		setDrawer(false);
		openCompose("new").catch(report);
	});
	$("compose-fab").addEventListener("click", () => openCompose("new").catch(report));
	$("settings-button").addEventListener("click", () => openSettings(state.brand).catch(report));
	$("activity-button").addEventListener("click", () => openActivity(closeSettings).catch(report));
	$("menu-button").addEventListener("click", () =>
		setDrawer(!$("app").classList.contains("drawer-open")));
	$("drawer-scrim").addEventListener("click", () => setDrawer(false));
	$("search-form").addEventListener("submit", (event) => {
		event.preventDefault();
		const text = $("search").value.trim();
		closeReader();
		setView("list");
		if (!text) {
			showMailbox(list.mailboxId).catch(report);
			renderFolders();
			return;
		}
		showSearch(text, $("search-scope").value).then(() => {
			renderFolders();
			renderEmpty();
			$("message-list").focus();
		}).catch(report);
	});
	$("search-clear").addEventListener("click", () => openMailbox(list.mailboxId));
	$("folder-list").addEventListener("click", (event) => {
		const folder = event.target.closest("a[data-id]");
		if (!folder)
			return;
		event.preventDefault();
		openMailbox(folder.dataset.id);
	});
	$("shortcuts-body").append(shortcutTable());
	$("shortcuts-close").addEventListener("click", () => $("shortcuts-dialog").close());
	document.addEventListener("keydown", onKey);
	events.addEventListener("changed", () => refresh());
	window.addEventListener("unhandledrejection", (event) => {
		if (event.reason instanceof SignedOut)
			event.preventDefault();
	});
	onSignedOut(() => {
		showLogin();
		showError("Your session has ended. Please sign in again.");
	});
	initList(openRow);
	initReader((mode, email) => openCompose(mode, email).catch(report));
	initCompose();
}

async function start() {
	bind();
	await loadBrand();
	const response = await fetch("/api/session", {credentials: "same-origin"});
	if (response.ok)
		await showApp(await response.json());
}

start();
