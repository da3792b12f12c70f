// dom.js: small helpers that build the page from data with DOM calls only.
// Mail data reaches the page as text nodes and attribute values, never as
// markup: there is no innerHTML anywhere in the webmail.

// h("button", {class: "x", type: "button", onclick: f}, "text", node...)
// Properties starting with "on" become listeners; "class" sets className;
// "text" sets textContent; "dataset" and "style" take objects; every other
// property is set with setAttribute (false, null and undefined leave it
// out, true sets it empty).
export function h(tag, props, ...children) {
	const el = document.createElement(tag);
	for (const [key, value] of Object.entries(props || {})) {
		if (value === undefined || value === null || value === false)
			continue;
		if (key === "class")
			el.className = value;
		else if (key === "text")
			el.textContent = value;
		else if (key === "dataset")
			Object.assign(el.dataset, value);
		else if (key === "style")
			for (const [name, v] of Object.entries(value))
				el.style.setProperty(name, v);
		else if (key.startsWith("on") && typeof value === "function")
			el.addEventListener(key.slice(2), value);
		else
			el.setAttribute(key, value === true ? "" : String(value));
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const child of children) {
		if (child === null || child === undefined || child === false)
			continue;
		if (Array.isArray(child))
			append(el, child);
		else if (child instanceof Node)
			el.append(child);
		else
			el.append(document.createTextNode(String(child)));
	}
}

export const $ = (id) => document.getElementById(id);

// ---- Redrawing in place ----
//
// A list that is drawn again (after a change the server told of) keeps its
// nodes: pressing the mouse on a row while the page redraws still makes a
// click on that row, and focus and hover stay where they were. morph makes
// old look like neu; listeners are not carried over, so lists drawn this
// way take their clicks on the container.

export function morph(old, neu) {
	if (old.nodeType !== Node.ELEMENT_NODE) {
		if (old.nodeValue !== neu.nodeValue)
			old.nodeValue = neu.nodeValue;
		return;
	}
	for (const name of old.getAttributeNames())
		if (!neu.hasAttribute(name))
			old.removeAttribute(name);
	for (const name of neu.getAttributeNames())
		if (old.getAttribute(name) !== neu.getAttribute(name))
			old.setAttribute(name, neu.getAttribute(name));
	morphChildren(old, [...neu.childNodes]);
}

// Makes parent's children look like children. With key (a function of a
// child), an old child is kept for the new one with the same key, moved
// to its place; without, children are matched by position.
export function morphChildren(parent, children, key = null) {
	const kept = new Map();
	if (key)
		for (const old of parent.childNodes)
			kept.set(key(old), old);
	children.forEach((child, i) => {
		const here = parent.childNodes[i] || null;
		const old = key ? kept.get(key(child)) : here;
		if (old && old.nodeType === child.nodeType && old.nodeName === child.nodeName) {
			if (key)
				kept.delete(key(child));
			morph(old, child);
			if (old !== here)
				parent.insertBefore(old, here);
		} else if (here && !key) {
			parent.replaceChild(child, here);
		} else {
			parent.insertBefore(child, here);
		}
	});
	while (parent.childNodes.length > children.length)
		parent.lastChild.remove();
}

// ---- Icons: inline SVG built with DOM calls (24x24, stroked) ----

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
	inbox: "M3 13h5l2 3h4l2-3h5M5 5h14l2 8v6H3v-6z",
	drafts: "M4 20h4L19 9l-4-4L4 16zM13 7l4 4",
	sent: "M3 11l18-8-8 18-2-8z",
	archive: "M3 4h18v4H3zM5 8v12h14V8M10 12h4",
	junk: "M12 3l9 16H3zM12 10v4M12 17v.5",
	trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
	folder: "M3 6h6l2 2h10v11H3z",
	compose: "M4 20h4L19 9l-4-4L4 16zM13 7l4 4",
	reply: "M10 8L4 13l6 5M4 13h10a6 6 0 0 1 6 6",
	replyAll: "M12 8l-6 5 6 5M7 8l-5 5 5 5M6 13h8a6 6 0 0 1 6 6",
	forward: "M14 8l6 5-6 5M20 13H10a6 6 0 0 0-6 6",
	star: "M12 3l2.8 5.8 6.2.9-4.5 4.4 1 6.2L12 17.4 6.5 20.3l1-6.2L3 9.7l6.2-.9z",
	move: "M3 6h6l2 2h10v11H3zM12 13h6M15 10l3 3-3 3",
	mail: "M3 6h18v12H3zM3 7l9 6 9-6",
	mailOpen: "M3 10l9-6 9 6v10H3zM3 10l9 6 9-6",
	back: "M15 5l-7 7 7 7",
	close: "M6 6l12 12M18 6L6 18",
	search: "M11 4a7 7 0 1 0 0 14 7 7 0 0 0 0-14zM21 21l-5-5",
	clip: "M20 11l-8.5 8.5a5 5 0 0 1-7-7L13 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L14 7",
	settings: "M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM19 12l2-1-1-3-2 .3-1.5-1.5.3-2-3-1-1 2h-1.6l-1-2-3 1 .3 2L6 7.5 4 7.2l-1 3 2 1v1.6l-2 1 1 3 2-.3 1.5 1.5-.3 2 3 1 1-2h1.6l1 2 3-1-.3-2 1.5-1.5 2 .3 1-3-2-1z",
	menu: "M4 6h16M4 12h16M4 18h16",
	left: "M15 5l-7 7 7 7",
	right: "M9 5l7 7-7 7",
	image: "M4 5h16v14H4zM4 16l5-5 4 4 2-2 5 5M15 9h.5",
	download: "M12 4v11M7 10l5 5 5-5M5 20h14",
	logout: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10",
	refresh: "M20 12a8 8 0 1 1-2.3-5.7M20 4v5h-5",
	keyboard: "M3 6h18v12H3zM7 10h.5M11 10h.5M15 10h.5M7 14h10",
	send: "M3 11l18-8-8 18-2-8z",
};

export function icon(name, label) {
	const svg = document.createElementNS(SVG, "svg");
	svg.setAttribute("viewBox", "0 0 24 24");
	svg.setAttribute("class", "icon");
	svg.setAttribute("fill", "none");
	svg.setAttribute("stroke", "currentColor");
	svg.setAttribute("stroke-width", "1.8");
	svg.setAttribute("stroke-linecap", "round");
	svg.setAttribute("stroke-linejoin", "round");
	if (label) {
		svg.setAttribute("role", "img");
		svg.setAttribute("aria-label", label);
	} else {
		svg.setAttribute("aria-hidden", "true");
	}
	const path = document.createElementNS(SVG, "path");
	path.setAttribute("d", ICONS[name] || ICONS.folder);
	svg.append(path);
	return svg;
}

// An icon button with a visible tooltip-like title and an accessible name.
export function iconButton(name, label, onclick, extra = {}) {
	return h("button", {type: "button", class: "icon-button " + (extra.class || ""),
		title: extra.title || label, "aria-label": label, onclick,
		"aria-keyshortcuts": extra.keys, id: extra.id},
	icon(name));
}

// ---- Text ----

const ENTITIES = {amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: "\u00a0"};

// Decodes the few HTML character references a server-escaped string holds.
export function decodeEntities(text) {
	return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (all, name) => {
		if (name[0] === "#") {
			const code = name[1] === "x" || name[1] === "X"
				? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
			return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : all;
		}
		return ENTITIES[name.toLowerCase()] ?? all;
	});
}

// A search snippet ("escaped text with <mark>matches</mark>") as nodes:
// the string is split on the two mark tags and every piece becomes text.
export function snippetNodes(snippet) {
	const frag = document.createDocumentFragment();
	const parts = snippet.split(/(<mark>|<\/mark>)/);
	let marked = false;
	for (const part of parts) {
		if (part === "<mark>") {
			marked = true;
		} else if (part === "</mark>") {
			marked = false;
		} else if (part) {
			const text = decodeEntities(part);
			frag.append(marked ? h("mark", {}, text) : document.createTextNode(text));
		}
	}
	return frag;
}

const LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"']+/gi;

// Plain text with its http, https and mailto addresses made into links.
export function linkify(text) {
	const frag = document.createDocumentFragment();
	let last = 0;
	for (const match of text.matchAll(LINK)) {
		let url = match[0];
		// Punctuation that ends a sentence is not part of the address.
		const trail = /[.,;:!?)\]}]+$/.exec(url);
		if (trail)
			url = url.slice(0, -trail[0].length);
		if (match.index > last)
			frag.append(text.slice(last, match.index));
		frag.append(h("a", {href: url, rel: "noopener noreferrer", target: "_blank"}, url));
		last = match.index + url.length;
	}
	if (last < text.length)
		frag.append(text.slice(last));
	return frag;
}

// Crude HTML to text, for quoting an HTML-only message in a reply. The
// markup is only ever read as a string here.
export function htmlToText(html) {
	return decodeEntities(html
		.replace(/<(style|script|head)[\s\S]*?<\/\1\s*>/gi, "")
		.replace(/<br\s*\/?>/gi, "\n")
		.replace(/<\/(p|div|li|tr|h[1-6]|blockquote)\s*>/gi, "\n")
		.replace(/<[^>]*>/g, ""))
		.replace(/\n{3,}/g, "\n\n")
		.trim();
}

export function formatSize(bytes) {
	if (bytes < 1024)
		return bytes + " B";
	if (bytes < 1024 * 1024)
		return Math.round(bytes / 1024) + " KB";
	return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

// "14:05" today, "Mar 3" this year, "3/3/2021" before.
export function shortDate(iso) {
	if (!iso)
		return "";
	const d = new Date(iso);
	const now = new Date();
	if (d.toDateString() === now.toDateString())
		return d.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});
	if (d.getFullYear() === now.getFullYear())
		return d.toLocaleDateString(undefined, {month: "short", day: "numeric"});
	return d.toLocaleDateString();
}

export function longDate(iso) {
	if (!iso)
		return "";
	return new Date(iso).toLocaleString(undefined, {
		weekday: "short", year: "numeric", month: "short", day: "numeric",
		hour: "2-digit", minute: "2-digit",
	});
}

// ---- Addresses ----

export function addressName(a) {
	return (a && (a.name || a.email)) || "";
}

export function addressFull(a) {
	if (!a)
		return "";
	return a.name ? `${a.name} <${a.email}>` : a.email || "";
}

export function addressList(list) {
	return (list || []).map(addressFull).join(", ");
}

// "Ann <ann@x>, bob@y" as [{name, email}]: commas inside quotes or angle
// brackets do not split.
export function parseAddresses(text) {
	const out = [];
	let current = "", quoted = false, angle = false;
	const flush = () => {
		const s = current.trim();
		current = "";
		if (!s)
			return;
		const m = /^(.*?)\s*<([^<>]+)>$/.exec(s);
		if (m) {
			const name = m[1].trim().replace(/^"(.*)"$/, "$1");
			out.push({name: name || null, email: m[2].trim()});
		} else {
			out.push({name: null, email: s.replace(/^<|>$/g, "")});
		}
	};
	for (const ch of text) {
		if (ch === "\"")
			quoted = !quoted;
		else if (ch === "<" && !quoted)
			angle = true;
		else if (ch === ">" && !quoted)
			angle = false;
		if ((ch === "," || ch === ";") && !quoted && !angle)
			flush();
		else
			current += ch;
	}
	flush();
	return out;
}

export function validAddress(email) {
	return /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/.test(email) ||
		/^[^\s@<>(),;:"]+@[^\s@<>(),;:".]+$/.test(email);
}

// A stable hue for an address, for its avatar.
export function hueOf(text) {
	let hash = 0;
	for (const ch of text || "")
		hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
	return hash % 360;
}

export function avatar(address) {
	const name = addressName(address) || "?";
	const initial = (name.match(/[\p{L}\p{N}]/u) || ["?"])[0].toUpperCase();
	return h("span", {class: "avatar", "aria-hidden": "true",
		style: {"--hue": String(hueOf(address && address.email))}}, initial);
}

// ---- Views ----

// Which pane has the stage: "list", "reader", "compose" or "settings". On a
// wide screen the list and the reader sit side by side; on a phone only
// the one named is shown.
export function setView(view) {
	$("app").dataset.view = view;
}

export function currentView() {
	return $("app").dataset.view || "list";
}

export function isPhone() {
	return window.matchMedia("(max-width: 760px)").matches;
}

// ---- Announcements ----

let toastTimer = null;

// A short message at the bottom of the screen, with an optional action
// ("Undo"). Screen readers hear it through the live region.
export function toast(text, action) {
	const box = $("toast");
	box.replaceChildren(h("span", {}, text));
	if (action)
		box.append(h("button", {type: "button", class: "link-button",
			onclick: () => { box.hidden = true; action.run(); }}, action.label));
	box.hidden = false;
	clearTimeout(toastTimer);
	toastTimer = setTimeout(() => { box.hidden = true; }, action ? 8000 : 4000);
}
