// settings.js: the settings page: the name and signature mail goes out
// with (Identity/set), the password, the brand this account's webmail
// wears, how the list is shown, the keyboard shortcuts, and the Security
// section (security.js).
import {call, apiGet, apiPost, session, JmapError} from "./jmap.js";
import {h, $, iconButton, toast, setView} from "./dom.js";
import {mail, loadIdentities} from "./mail.js";
import {list, setConversations, load as loadList} from "./list.js";
import {securityCard} from "./security.js";

export const SHORTCUTS = [
	["j / k", "Next / previous conversation"],
	["Enter / o", "Open the selected conversation"],
	["r", "Reply"],
	["a", "Reply all"],
	["f", "Forward"],
	["c", "Compose a new message"],
	["# / Delete", "Delete"],
	["v", "Move to a folder"],
	["s", "Flag or unflag"],
	["u", "Mark as read or unread"],
	["/", "Search"],
	["Escape", "Close, back to the list"],
	["Ctrl + Enter", "Send (while writing)"],
	["?", "Show these shortcuts"],
];

export function shortcutTable() {
	return h("table", {class: "shortcuts"},
		h("tbody", {}, SHORTCUTS.map(([keys, what]) => h("tr", {},
			h("th", {scope: "row"}, keys.split(" / ").map((k, i) => [i ? " / " : null, h("kbd", {}, k)])),
			h("td", {}, what)))));
}

function field(label, input, hint) {
	return h("label", {class: "setting"},
		h("span", {class: "setting-label"}, label), input,
		hint ? h("span", {class: "setting-hint"}, hint) : null);
}

function note(form) {
	let p = form.querySelector(".form-note");
	if (!p) {
		p = h("p", {class: "form-note", role: "status"});
		form.append(p);
	}
	return (text, bad) => {
		p.textContent = text;
		p.classList.toggle("error", !!bad);
	};
}

function profileCard() {
	const id = mail.identities[0];
	const name = h("input", {type: "text", id: "settings-name", autocomplete: "name",
		value: id ? id.name || "" : ""});
	const signature = h("textarea", {id: "settings-signature", rows: "4"});
	signature.value = id ? id.textSignature || "" : "";
	const form = h("form", {class: "card", id: "profile-form"},
		h("h3", {}, "Your name and signature"),
		h("p", {class: "muted small"}, "Mail you send comes from ",
			h("strong", {}, id ? id.email : session.username), "."),
		field("Display name", name),
		field("Signature", signature, "Added below the messages you write."),
		h("div", {class: "form-actions"},
			h("button", {type: "submit", class: "primary-button"}, "Save")));
	const say = note(form);
	form.addEventListener("submit", async (event) => {
		event.preventDefault();
		if (!id) {
			say("This account has no identity to change.", true);
			return;
		}
		try {
			const [result] = await call([["Identity/set", {update: {[id.id]:
				{name: name.value.trim(), textSignature: signature.value}}}]]);
			const failed = (result.notUpdated || {})[id.id];
			if (failed)
				throw new JmapError(failed.type, failed.description);
			await loadIdentities();
			say("Saved.");
			toast("Your name and signature are saved.");
		} catch (e) {
			say("Not saved: " + e.message, true);
		}
	});
	return form;
}

function passwordCard() {
	const current = h("input", {type: "password", id: "settings-old-password",
		autocomplete: "current-password", required: true});
	const fresh = h("input", {type: "password", id: "settings-new-password",
		autocomplete: "new-password", required: true, minlength: "10"});
	const again = h("input", {type: "password", id: "settings-new-password-again",
		autocomplete: "new-password", required: true});
	const form = h("form", {class: "card", id: "password-form"},
		h("h3", {}, "Password"),
		field("Current password", current),
		field("New password", fresh, "At least 10 characters; a few unrelated words make a good one."),
		field("New password, again", again),
		h("div", {class: "form-actions"},
			h("button", {type: "submit", class: "primary-button"}, "Change password")));
	const say = note(form);
	form.addEventListener("submit", async (event) => {
		event.preventDefault();
		if (fresh.value !== again.value) {
			say("The two new passwords differ.", true);
			again.focus();
			return;
		}
		try {
			await apiPost("/api/password", {old: current.value, new: fresh.value});
			form.reset();
			say("Your password is changed.");
		} catch (e) {
			say(e.status === 403 ? "The current password is wrong."
				: "Not changed: " + e.message, true);
		}
	});
	return form;
}

async function appearanceCard(brand) {
	const card = h("section", {class: "card", "aria-labelledby": "appearance-title"},
		h("h3", {id: "appearance-title"}, "Appearance"));
	let settings = null;
	try {
		settings = await apiGet("/api/settings");
	} catch (e) {
		settings = null;
	}
	const brands = settings && Array.isArray(settings.brands) ? settings.brands : null;
	if (brands && brands.length > 1) {
		const select = h("select", {id: "settings-brand"},
			brands.map((b) => h("option", {value: b.name, selected: b.name === (settings.brand || brand.name)},
				b.display || b.name)));
		card.append(field("Webmail", select, "The look and name of this webmail, on every device you use."));
		select.addEventListener("change", async () => {
			try {
				await apiPost("/api/settings", {brand: select.value});
				location.assign("/b/" + encodeURIComponent(select.value) + "/");
			} catch (e) {
				toast("The choice is not saved: " + e.message);
			}
		});
	} else if (brand && brand.choice) {
		card.append(h("p", {}, "This is ", h("strong", {}, brand.display), ". ",
			h("a", {href: "/choose"}, "Choose another webmail")));
	}
	const threads = h("input", {type: "checkbox", id: "settings-conversations", checked: list.conversations});
	threads.addEventListener("change", () => {
		setConversations(threads.checked);
		loadList();
	});
	card.append(h("label", {class: "check"}, threads,
		h("span", {}, "Group messages into conversations")));
	return card;
}

export async function openSettings(brand) {
	await loadIdentities().catch(() => {});
	const pane = $("settings");
	const body = h("div", {class: "settings-body"},
		profileCard(), passwordCard(), await appearanceCard(brand),
		await securityCard(),
		h("section", {class: "card", "aria-labelledby": "keys-title"},
			h("h3", {id: "keys-title"}, "Keyboard shortcuts"), shortcutTable()));
	pane.replaceChildren(
		h("header", {class: "settings-head"},
			iconButton("back", "Back to mail", () => closeSettings(), {class: "settings-back"}),
			h("h2", {id: "settings-title", tabindex: "-1"}, "Settings")),
		body);
	setView("settings");
	$("settings-title").focus();
}

export function closeSettings() {
	setView("list");
	$("message-list").focus({preventScroll: true});
}
