// security.js: the Security section of the settings page: two-step
// sign-in (TOTP) with its recovery codes, app passwords for mail apps, and
// the account's web sessions. Everything comes from the /api/security
// endpoints; a secret, a recovery code or an app password is shown once,
// as text (the QR code is an image the server drew), and never stored here.
import {apiGet, apiPost} from "./jmap.js";
import {h, toast} from "./dom.js";

function when(seconds) {
	return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}

function field(label, input, hint) {
	return h("label", {class: "setting"},
		h("span", {class: "setting-label"}, label), input,
		hint ? h("span", {class: "setting-hint"}, hint) : null);
}

function noteIn(form) {
	const p = h("p", {class: "form-note", role: "status"});
	form.append(p);
	return (text, bad) => {
		p.textContent = text;
		p.classList.toggle("error", !!bad);
	};
}

function codeInput(id) {
	return h("input", {type: "text", id, inputmode: "numeric",
		autocomplete: "one-time-code", required: true, maxlength: "24",
		spellcheck: "false"});
}

function failure(e) {
	if (e.status === 403)
		return "The password or the code is wrong.";
	if (e.status === 429)
		return "Too many wrong codes. Wait a quarter of an hour.";
	return e.message;
}

// ---- Two-step sign-in ----

function recoveryList(codes, done) {
	return h("div", {class: "security-step", id: "recovery-step"},
		h("p", {}, h("strong", {}, "Two-step sign-in is on."),
			" Keep these recovery codes somewhere safe: each one signs you in once" +
			" if you lose your phone. They are shown only now."),
		h("ol", {class: "recovery-codes", id: "recovery-codes"},
			codes.map((c) => h("li", {}, h("code", {}, c)))),
		h("div", {class: "form-actions"},
			h("button", {type: "button", class: "primary-button", id: "recovery-done",
				onclick: done}, "I have saved them")));
}

function enrollment(begun, part, refresh) {
	const code = codeInput("totp-confirm-code");
	const form = h("form", {class: "security-step", id: "totp-enroll"},
		h("p", {}, "Scan this code with an authenticator app, then enter the six digits it shows."),
		h("img", {class: "totp-qr", id: "totp-qr", src: begun.qr,
			alt: "QR code of the two-step sign-in secret"}),
		h("p", {class: "muted small"}, "Or type this key into the app: ",
			h("code", {id: "totp-secret", class: "totp-secret"}, begun.secret)),
		field("Code from the app", code),
		h("div", {class: "form-actions"},
			h("button", {type: "submit", class: "primary-button"}, "Turn on")));
	const say = noteIn(form);
	form.addEventListener("submit", async (event) => {
		event.preventDefault();
		try {
			const done = await apiPost("/api/2fa/confirm", {code: code.value.trim()});
			part.replaceChildren(h("h4", {}, "Two-step sign-in"),
				recoveryList(done.recovery, refresh));
		} catch (e) {
			say(failure(e), true);
		}
	});
	return form;
}

function totpPart(st, refresh) {
	const part = h("div", {class: "security-part", id: "security-totp"},
		h("h4", {}, "Two-step sign-in"));
	if (!st.totp) {
		part.append(h("p", {}, "Off. With it on, signing in also needs a code" +
			" from an app on your phone, and mail apps need app passwords."),
		h("button", {type: "button", class: "primary-button", id: "totp-begin",
			onclick: async () => {
				try {
					const begun = await apiPost("/api/2fa/begin", {});
					part.replaceChildren(h("h4", {}, "Two-step sign-in"),
						enrollment(begun, part, refresh));
					part.querySelector("input").focus();
				} catch (e) {
					toast("Not possible now: " + e.message);
				}
			}}, "Turn on two-step sign-in"));
		return part;
	}
	const password = h("input", {type: "password", id: "totp-off-password",
		autocomplete: "current-password", required: true});
	const code = codeInput("totp-off-code");
	const form = h("form", {id: "totp-disable"},
		field("Password", password),
		field("Code or recovery code", code),
		h("div", {class: "form-actions"},
			h("button", {type: "submit", class: "small-button"}, "Turn off")));
	const say = noteIn(form);
	form.addEventListener("submit", async (event) => {
		event.preventDefault();
		try {
			await apiPost("/api/2fa/disable", {password: password.value, code: code.value.trim()});
			toast("Two-step sign-in is off.");
			refresh();
		} catch (e) {
			say(failure(e), true);
		} finally {
			password.value = "";
		}
	});
	part.append(h("p", {id: "totp-status"}, h("strong", {}, "On."), " ",
		`${st.recovery_left} recovery code${st.recovery_left === 1 ? "" : "s"} left.`), form);
	return part;
}

// ---- App passwords ----

function appPart(st, refresh) {
	const rows = st.app_passwords.map((a) => h("tr", {},
		h("td", {}, a.name),
		h("td", {}, when(a.created)),
		h("td", {}, when(a.last_used)),
		h("td", {}, h("button", {type: "button", class: "small-button",
			"aria-label": "Revoke " + a.name,
			onclick: async () => {
				try {
					await apiPost("/api/app-passwords/revoke", {id: a.id});
					refresh();
				} catch (e) {
					toast("Not revoked: " + e.message);
				}
			}}, "Revoke"))));
	const name = h("input", {type: "text", id: "app-name", maxlength: "64",
		required: true, placeholder: "e.g. Thunderbird on the laptop"});
	const password = h("input", {type: "password", id: "app-account-password",
		autocomplete: "current-password", required: true});
	const shown = h("div", {id: "app-created"});
	const form = h("form", {id: "app-form"},
		field("Name", name),
		field("Your password", password),
		h("div", {class: "form-actions"},
			h("button", {type: "submit", class: "small-button"}, "Create app password")));
	const say = noteIn(form);
	form.addEventListener("submit", async (event) => {
		event.preventDefault();
		try {
			const made = await apiPost("/api/app-passwords",
				{name: name.value.trim(), password: password.value});
			password.value = "";
			await refresh();
			const created = document.getElementById("app-created");
			created.replaceChildren(h("p", {}, "The password for ", h("strong", {}, made.name),
				" (shown only now): ", h("code", {id: "app-password-new"}, made.password)));
		} catch (e) {
			say("Not created: " + e.message, true);
		}
	});
	return h("div", {class: "security-part", id: "security-apps"},
		h("h4", {}, "App passwords"),
		h("p", {class: "muted small"}, "Mail apps (IMAP and SMTP) sign in with one of these;" +
			" with two-step sign-in on, your password no longer works there."),
		rows.length ? h("table", {class: "security-table", id: "app-list"},
			h("thead", {}, h("tr", {}, ["Name", "Created", "Last used", ""].map((t) =>
				h("th", {scope: "col"}, t)))),
			h("tbody", {}, rows)) : h("p", {class: "muted small"}, "None yet."),
		shown, form);
}

// ---- Sessions ----

function sessionPart(st, refresh) {
	const rows = st.sessions.map((s) => h("tr", {class: s.current ? "current" : null,
		dataset: {id: s.id}},
		h("td", {}, s.user_agent || "unknown browser",
			s.current ? h("span", {class: "chip"}, "this session") : null),
		h("td", {}, s.remote),
		h("td", {}, when(s.created)),
		h("td", {}, when(s.last_used)),
		h("td", {}, s.current ? null : h("button", {type: "button", class: "small-button",
			"aria-label": "Sign out session " + s.id,
			onclick: async () => {
				try {
					await apiPost("/api/sessions/revoke", {id: s.id});
					refresh();
				} catch (e) {
					toast("Not signed out: " + e.message);
				}
			}}, "Sign out"))));
	return h("div", {class: "security-part", id: "security-sessions"},
		h("h4", {}, "Where you are signed in"),
		h("table", {class: "security-table", id: "session-list"},
			h("thead", {}, h("tr", {}, ["Browser", "Address", "Signed in", "Last used", ""].map((t) =>
				h("th", {scope: "col"}, t)))),
			h("tbody", {}, rows)));
}

export async function securityCard() {
	const body = h("div", {class: "security-body"});
	const card = h("section", {class: "card security-card", id: "security",
		"aria-labelledby": "security-title"},
	h("h3", {id: "security-title"}, "Security"), body);
	async function refresh() {
		try {
			const st = await apiGet("/api/security");
			body.replaceChildren(totpPart(st, refresh), appPart(st, refresh),
				sessionPart(st, refresh));
		} catch (e) {
			body.replaceChildren(h("p", {class: "error"}, "Not available: " + e.message));
		}
	}
	await refresh();
	return card;
}

// The second step of signing in: the ticket from /api/login and a code.
// Resolves with the session (as /api/login gives it); throws with .status.
export async function sendLoginCode(ticket, code) {
	const response = await fetch("/api/login/code", {
		method: "POST",
		credentials: "same-origin",
		headers: {"Content-Type": "application/json"},
		body: JSON.stringify({ticket, code}),
	});
	if (!response.ok) {
		const e = new Error("refused");
		e.status = response.status;
		throw e;
	}
	return response.json();
}
