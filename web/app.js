// app.js: the webmail in the browser. It talks to the server through its
// JSON API only (the session endpoints and JMAP); no inline script, nothing
// loaded from another host.

const $ = (id) => document.getElementById(id);

const MAIL = "urn:ietf:params:jmap:mail";
const CORE = "urn:ietf:params:jmap:core";

const state = {
	csrf: null,
	username: null,
	account: null,
	brand: null,
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

// A JMAP request with the session's CSRF value.
async function jmap(calls) {
	const response = await fetch("/jmap/api", {
		method: "POST",
		credentials: "same-origin",
		headers: {
			"Content-Type": "application/json",
			"X-Dijk-CSRF": state.csrf,
		},
		body: JSON.stringify({using: [CORE, MAIL], methodCalls: calls}),
	});
	if (response.status === 401) {
		showLogin();
		throw new Error("signed out");
	}
	if (!response.ok)
		throw new Error("the server answered " + response.status);
	return (await response.json()).methodResponses;
}

function folderItem(mailbox, depth) {
	const li = document.createElement("li");
	const a = document.createElement("a");
	a.href = "#" + encodeURIComponent(mailbox.id);
	a.className = "folder" + (mailbox.role ? " role-" + mailbox.role : "");
	a.style.setProperty("--depth", depth);
	const name = document.createElement("span");
	name.className = "folder-name";
	name.textContent = mailbox.name === "INBOX" ? "Inbox" : mailbox.name;
	a.append(name);
	if (mailbox.unreadEmails > 0) {
		const count = document.createElement("span");
		count.className = "unread";
		count.textContent = mailbox.unreadEmails;
		count.setAttribute("aria-label", mailbox.unreadEmails + " unread");
		a.append(count);
	}
	li.append(a);
	return li;
}

async function loadFolders() {
	const [[name, result]] = await jmap([
		["Mailbox/get", {accountId: state.account}, "0"],
	]);
	if (name !== "Mailbox/get")
		throw new Error(result.type);
	const byParent = new Map();
	for (const m of result.list) {
		const key = m.parentId || "";
		if (!byParent.has(key))
			byParent.set(key, []);
		byParent.get(key).push(m);
	}
	for (const list of byParent.values())
		list.sort((a, b) => a.sortOrder - b.sortOrder ||
			a.name.localeCompare(b.name));
	const ul = $("folder-list");
	ul.replaceChildren();
	const add = (parent, depth) => {
		for (const m of byParent.get(parent) || []) {
			ul.append(folderItem(m, depth));
			add(m.id, depth + 1);
		}
	};
	add("", 0);
}

function showLogin() {
	state.csrf = null;
	$("app").hidden = true;
	$("login").hidden = false;
	document.body.className = "login-page";
}

async function showApp(session) {
	state.csrf = session.csrf;
	state.username = session.username;
	const response = await fetch("/jmap/session", {credentials: "same-origin"});
	if (!response.ok) {
		showLogin();
		return;
	}
	const jmapSession = await response.json();
	state.account = jmapSession.primaryAccounts[MAIL];
	$("app-user").textContent = session.username;
	$("login").hidden = true;
	$("app").hidden = false;
	document.body.className = "app-page";
	await loadFolders();
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
			form.password.value = "";
			await showApp(await response.json());
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
	await fetch("/api/logout", {
		method: "POST",
		credentials: "same-origin",
		headers: {"X-Dijk-CSRF": state.csrf},
	});
	showLogin();
}

async function start() {
	$("login-form").addEventListener("submit", signIn);
	$("logout").addEventListener("click", signOut);
	await loadBrand();
	const response = await fetch("/api/session", {credentials: "same-origin"});
	if (response.ok)
		await showApp(await response.json());
}

start();
