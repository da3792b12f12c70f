// run.mjs: one browser scenario against a running dijk, driven by the
// pytest tests in tests/integration/test_browser.py:
//
//   node run.mjs SCENARIO '{"base": "http://127.0.0.1:PORT", ...}'
//
// Playwright's core library drives Debian's Chromium (/usr/bin/chromium);
// nothing is downloaded. Prints one JSON object with what the scenario saw;
// exits 1 with the error on stderr when a step fails. Screenshots go to
// $DIJK_ARTIFACTS (default: build/test-artifacts). Every scenario also
// reports each request that went to a host other than the server, console
// errors, and Content-Security-Policy violations.
import {chromium} from "playwright-core";
import {mkdirSync, mkdtempSync, readFileSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";

const [name, argText] = process.argv.slice(2);
const args = JSON.parse(argText || "{}");
const artifacts = process.env.DIJK_ARTIFACTS || "build/test-artifacts";
mkdirSync(artifacts, {recursive: true});

const launchOptions = {
	executablePath: process.env.DIJK_CHROMIUM || "/usr/bin/chromium",
	headless: true,
	args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
};

const seen = {foreign: [], consoleErrors: [], cspViolations: []};
// The last requests to the server with their outcome; printed only when a
// step fails, to show what the page was waiting for.
const recent = [];

function note(line) {
	recent.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
	if (recent.length > 40)
		recent.shift();
}

function watch(context) {
	const origin = new URL(args.base).origin;
	context.on("request", (request) => {
		const url = request.url();
		if (!url.startsWith(origin) && !url.startsWith("data:") &&
		    !url.startsWith("about:"))
			seen.foreign.push(url);
		note(`-> ${request.method()} ${url.slice(origin.length)}`);
	});
	context.on("requestfinished", async (request) => {
		const response = await request.response().catch(() => null);
		note(`<- ${response ? response.status() : "?"} ${request.url().slice(origin.length)}`);
	});
	context.on("requestfailed", (request) =>
		note(`<- failed (${request.failure() && request.failure().errorText}) ${request.url().slice(origin.length)}`));
	context.on("page", (page) => watchPage(page));
	for (const page of context.pages())
		watchPage(page);
}

function watchPage(page) {
	page.on("console", (message) => {
		if (message.type() !== "error")
			return;
		const text = message.text();
		if (/Content.Security.Policy/i.test(text))
			seen.cspViolations.push(text);
		else
			seen.consoleErrors.push(text);
	});
}

async function shot(page, file) {
	const path = join(artifacts, file);
	await page.screenshot({path, fullPage: true});
	return path;
}

// A browser with a profile that outlives it: closing and launching again
// with the same directory is a browser restart, cookies kept.
async function browserWithProfile(profile) {
	const context = await chromium.launchPersistentContext(profile, {
		...launchOptions,
		viewport: {width: 1200, height: 800},
	});
	watch(context);
	const page = context.pages()[0] || await context.newPage();
	return {context, page};
}


// A new browser context signed in as user; resolves to its page with the
// inbox shown.
async function signedIn(browser, user, password, viewport = {width: 1280, height: 800}) {
	const context = await browser.newContext({viewport, acceptDownloads: true});
	watch(context);
	const page = await context.newPage();
	page.on("pageerror", (e) => seen.consoleErrors.push("pageerror: " + e.message));
	await page.goto(args.base + args.brandPath);
	await page.fill("#username", user);
	await page.fill("#password", password);
	await page.click("button[type=submit]");
	await page.waitForSelector("#folder-list li");
	await page.waitForSelector("#message-list .row, #list-empty:not([hidden])");
	return page;
}

const rowWith = (text) => `#message-list .row:has(.row-subject:text-is("${text}"))`;

async function subjects(page) {
	return page.$$eval("#message-list .row .row-subject", (els) => els.map((e) => e.textContent));
}

async function openFolder(page, name) {
	await page.click(`#folder-list a:has(.folder-name:text-is("${name}"))`);
	await page.waitForFunction((want) =>
		document.querySelector("#list-title").textContent === want, name)
		.catch((e) => explain(page, e));
}

// Rethrows e with what the page showed and what it last asked the server.
async function explain(page, e) {
	const state = await page.evaluate(() => ({
		title: document.querySelector("#list-title")?.textContent,
		current: document.querySelector("#folder-list [aria-current]")?.textContent,
		view: document.querySelector("#app")?.dataset.view,
		toast: document.querySelector("#toast")?.textContent,
		rows: document.querySelectorAll("#message-list .row").length,
	})).catch((err) => ({unreadable: String(err)}));
	e.stack = (e.stack || String(e)) + `\npage: ${JSON.stringify(state)}\nconsole: ${JSON.stringify(seen.consoleErrors)}` +
		`\nrequests:\n${recent.join("\n")}`;
	throw e;
}

// Sends what the composer holds and waits for the page to say so.
async function send(page) {
	await page.click("#compose-send");
	await page.waitForFunction(() =>
		document.querySelector("#toast").textContent.includes("Message sent"), null, {timeout: 15000});
	await page.waitForSelector("#compose", {state: "hidden"});
}

const scenarios = {
	// The portal asks once, remembers the choice across browser restarts,
	// and /choose changes it.
	async "brand-choice"() {
		const profile = mkdtempSync(join(tmpdir(), "dijk-profile-"));
		const out = {};
		try {
			let {context, page} = await browserWithProfile(profile);
			await page.goto(args.base + "/");
			out.firstTitle = await page.textContent("h1");
			out.choices = await page.$$eval(".brand-name",
				(els) => els.map((e) => e.textContent));
			out.screenshots = [await shot(page, "portal-choose.png")];
			await page.click(`text=${args.pick}`);
			await page.waitForSelector("#login-form");
			out.afterPick = new URL(page.url()).pathname;
			await page.waitForFunction(
				(want) => document.querySelector("#brand-name").textContent === want,
				args.pick);
			out.screenshots.push(await shot(page, "portal-login-after-choice.png"));
			await context.close();

			({context, page} = await browserWithProfile(profile));
			await page.goto(args.base + "/");
			await page.waitForSelector("#login-form");
			out.afterRestart = new URL(page.url()).pathname;
			out.brandAfterRestart = await page.textContent("#brand-name");
			out.screenshots.push(await shot(page, "portal-after-restart.png"));
			await page.click("text=Choose another");
			await page.click(`text=${args.other}`);
			await page.waitForSelector("#login-form");
			await context.close();

			({context, page} = await browserWithProfile(profile));
			await page.goto(args.base + "/");
			await page.waitForSelector("#login-form");
			out.afterChange = new URL(page.url()).pathname;
			await context.close();
		} finally {
			rmSync(profile, {recursive: true, force: true});
		}
		return out;
	},

	// The day of a webmail user: read a message delivered by SMTP, reply to
	// it, write to another local user with an attachment and see it arrive
	// in their open inbox (push, no reload), download the attachment,
	// search, move, delete, sign out.
	async "mail-flow"() {
		const browser = await chromium.launch(launchOptions);
		const out = {screenshots: []};
		try {
			const bob = await signedIn(browser, args.bob, args.bobPassword);
			const alice = await signedIn(browser, args.alice, args.alicePassword);
			out.aliceInbox = await subjects(alice);
			out.screenshots.push(await shot(alice, "inbox.png"));

			// Read.
			await alice.click(rowWith(args.subject));
			await alice.waitForSelector(".message .text-body");
			out.readText = await alice.textContent(".message.expanded .text-body");
			out.links = await alice.$$eval(".message .text-body a", (as) =>
				as.map((a) => ({href: a.href, rel: a.rel, target: a.target})));
			out.subjectShown = await alice.textContent("#reader-subject");
			out.screenshots.push(await shot(alice, "reading.png"));

			// Reply; the draft is saved while typing.
			await alice.click("#act-reply");
			await alice.waitForSelector("#compose-body:focus");
			out.replyTo = await alice.inputValue("#compose-to");
			out.replySubject = await alice.inputValue("#compose-subject");
			await alice.keyboard.type("Noon works for me. " + args.replyMark);
			await alice.waitForFunction(() =>
				document.querySelector("#draft-status").textContent.startsWith("Saved"), null, {timeout: 10000});
			out.draftSaved = true;
			await send(alice);
			// Bob's inbox shows the reply without a reload.
			await bob.waitForSelector(rowWith("Re: " + args.subject), {timeout: 15000});
			out.bobGotReply = true;

			// A new message with an attachment.
			await alice.click("#compose-button");
			await alice.waitForSelector("#compose-to:focus");
			await alice.fill("#compose-to", args.bob);
			await alice.fill("#compose-subject", "Quarterly report");
			await alice.fill("#compose-body", "Here is the report.\n");
			await alice.setInputFiles("#compose-file", {name: "report.txt", mimeType: "text/plain",
				buffer: Buffer.from(args.attachment)});
			await alice.waitForSelector("#compose-attachments li:not(.uploading)");
			out.screenshots.push(await shot(alice, "compose.png"));
			await send(alice);
			await bob.waitForSelector(rowWith("Quarterly report"), {timeout: 15000});
			out.bobInbox = await subjects(bob);
			out.screenshots.push(await shot(bob, "arrived.png"));

			// Bob downloads it.
			await bob.click(rowWith("Quarterly report"));
			await bob.waitForSelector(".message a.attachment");
			out.attachmentName = await bob.textContent(".message a.attachment .att-name");
			const [download] = await Promise.all([
				bob.waitForEvent("download"),
				bob.click(".message a.attachment"),
			]);
			out.downloadName = download.suggestedFilename();
			out.downloaded = readFileSync(await download.path(), "utf8");
			const href = await bob.getAttribute(".message a.attachment", "href");
			out.downloadHeaders = await bob.evaluate(async (url) => {
				const r = await fetch(url, {credentials: "same-origin"});
				return {status: r.status, disposition: r.headers.get("Content-Disposition"),
					nosniff: r.headers.get("X-Content-Type-Options")};
			}, href);
			out.screenshots.push(await shot(bob, "attachment.png"));

			// Search in every folder; the matches are marked.
			await alice.fill("#search", args.searchWord);
			await alice.press("#search", "Enter");
			await alice.waitForFunction(() =>
				document.querySelector("#list-title").textContent.startsWith("“"));
			await alice.waitForSelector("#message-list .row");
			out.searchResults = await subjects(alice);
			out.searchMarks = await alice.$$eval("#message-list mark", (ms) => ms.map((m) => m.textContent));
			out.screenshots.push(await shot(alice, "search.png"));

			// Move the first message to Archive with the folder menu.
			await alice.click("#search-clear");
			await alice.waitForSelector(rowWith(args.subject));
			await alice.click(rowWith(args.subject));
			await alice.waitForSelector("#act-move");
			await alice.click("#act-move");
			await alice.click('#move-menu [role=menuitem]:has-text("Archive")');
			await alice.waitForSelector(rowWith(args.subject), {state: "detached"});
			await openFolder(alice, "Archive");
			await alice.waitForSelector(rowWith(args.subject));
			out.archive = await subjects(alice);

			// Delete: to Trash, then forever.
			await alice.click(rowWith(args.subject));
			await alice.click("#act-delete");
			await alice.waitForSelector(rowWith(args.subject), {state: "detached"});
			await openFolder(alice, "Trash");
			await alice.waitForSelector(rowWith(args.subject));
			out.trash = await subjects(alice);
			await alice.click(rowWith(args.subject));
			await alice.click("#act-delete");
			await alice.waitForSelector(rowWith(args.subject), {state: "detached"});
			out.trashAfter = await subjects(alice);

			await alice.click("#logout");
			await alice.waitForSelector("#login-form");
			await alice.reload();
			await alice.waitForSelector("#login-form");
			out.signedOut = await alice.isHidden("#app");
		} finally {
			await browser.close();
		}
		return out;
	},

	// A conversation opened while the list is still loading stays open
	// when the list arrives. The server's answers to the list's queries
	// are held back for a while to make the order certain.
	async "open-while-loading"() {
		const browser = await chromium.launch(launchOptions);
		const out = {};
		try {
			const page = await signedIn(browser, args.alice, args.alicePassword);
			await page.fill("#search", args.searchWord);
			await page.press("#search", "Enter");
			await page.waitForFunction(() =>
				document.querySelector("#list-title").textContent.startsWith("“"));
			await page.waitForSelector(rowWith(args.subject));
			let held = 0;
			await page.route("**/jmap/api", async (route) => {
				if (!(route.request().postData() || "").includes("Email/query"))
					return route.continue();
				held++;
				await new Promise((resolve) => setTimeout(resolve, 1500));
				await route.continue();
			});
			// Back to the inbox: its list is on its way while the search's
			// rows still show, and one of them is opened.
			await page.click("#search-clear");
			await page.click(rowWith(args.subject));
			await page.waitForSelector("#reader-subject");
			out.titleWhileHeld = await page.textContent("#list-title");
			await page.waitForFunction(() =>
				!document.querySelector("#list-title").textContent.startsWith("“"));
			out.held = held;
			out.title = await page.textContent("#list-title");
			out.readerAfterList = await page.$eval("#reader", (el) => {
				const subject = el.querySelector("#reader-subject");
				return subject ? subject.textContent : null;
			});
			out.moveShown = await page.isVisible("#act-move");
		} finally {
			await browser.close();
		}
		return out;
	},

	// A click counts even when the page redraws under the pressed mouse
	// button: another session of the same user changes something, this
	// page hears of it and draws its list and folders again between the
	// button going down and coming up.
	async "click-during-redraw"() {
		const browser = await chromium.launch(launchOptions);
		const out = {};
		try {
			const page = await signedIn(browser, args.alice, args.alicePassword);
			const other = await signedIn(browser, args.alice, args.alicePassword);

			// A row: the other session reads another message, which this
			// page then shows as read.
			await page.hover(rowWith(args.other));
			await page.mouse.down();
			await other.click(rowWith(args.subject));
			await other.waitForSelector(".message");
			await page.waitForSelector(`${rowWith(args.subject)}:not(.is-unread)`);
			await page.mouse.up();
			out.rowOpened = await page.waitForSelector("#reader-subject", {timeout: 10000})
				.then((el) => el.textContent(), () => null);

			// A folder: the other session flags the message it reads.
			await page.hover('#folder-list a:has(.folder-name:text-is("Trash"))');
			await page.mouse.down();
			await other.click("#act-flag");
			await page.waitForSelector(`${rowWith(args.subject)}.flagged`);
			await page.mouse.up();
			out.folderOpened = await page.waitForFunction(() =>
				document.querySelector("#list-title").textContent === "Trash", null, {timeout: 10000})
				.then(() => true, () => false);
		} finally {
			await browser.close();
		}
		return out;
	},

	// The keyboard does everything, focus stays visible, and a phone gets
	// one pane at a time.
	async "keyboard-phone"() {
		const browser = await chromium.launch(launchOptions);
		const out = {screenshots: []};
		try {
			const page = await signedIn(browser, args.alice, args.alicePassword);
			const selectedSubject = () => page.evaluate(() => {
				const box = document.querySelector("#message-list");
				const id = box.getAttribute("aria-activedescendant");
				const row = id && document.getElementById(id);
				return row && row.getAttribute("aria-selected") === "true"
					? row.querySelector(".row-subject").textContent : null;
			});
			out.roles = await page.evaluate(() => ({
				list: document.querySelector("#message-list").getAttribute("role"),
				option: document.querySelector("#message-list .row").getAttribute("role"),
			}));
			await page.keyboard.press("j");
			out.afterJ = await selectedSubject();
			await page.keyboard.press("j");
			out.afterJJ = await selectedSubject();
			await page.keyboard.press("k");
			out.afterJJK = await selectedSubject();
			out.focusOnList = await page.evaluate(() => document.activeElement.id);
			await page.keyboard.press("Enter");
			await page.waitForSelector(".message");
			out.opened = await page.textContent("#reader-subject");
			await page.keyboard.press("s");
			await page.waitForSelector("#act-flag[aria-pressed=true]");
			// The row shows the star once the server has answered.
			out.flagged = await page.waitForSelector("#message-list .row.selected .star",
				{timeout: 10000}).then(() => true, () => false);
			await page.keyboard.press("u");
			await page.waitForSelector("#message-list .row.selected.is-unread");
			out.markedUnread = true;
			await page.keyboard.press("Escape");
			await page.waitForSelector(".reader-empty");
			await page.keyboard.press("/");
			out.searchFocused = await page.evaluate(() => document.activeElement.id);
			await page.keyboard.press("Escape");
			await page.keyboard.press("c");
			await page.waitForSelector("#compose-to:focus");
			out.composeOpen = true;
			await page.keyboard.press("Escape");
			await page.waitForSelector("#compose", {state: "hidden"});
			await page.keyboard.press("?");
			await page.waitForSelector("#shortcuts-dialog[open]");
			out.screenshots.push(await shot(page, "shortcuts.png"));
			await page.keyboard.press("Escape");
			// Tab reaches the controls with a visible focus ring.
			await page.focus("#compose-button");
			out.focusRing = await page.evaluate(() =>
				getComputedStyle(document.activeElement).outlineStyle);

			// A phone: the list alone, then the message alone, then back.
			await page.setViewportSize({width: 390, height: 844});
			await page.waitForTimeout(100);
			out.phoneListVisible = await page.isVisible("#list-pane");
			out.phoneReaderVisible = await page.isVisible("#reader");
			out.screenshots.push(await shot(page, "phone.png"));
			await page.click(rowWith(args.subject));
			await page.waitForSelector(".message");
			out.phoneOpenListVisible = await page.isVisible("#list-pane");
			out.screenshots.push(await shot(page, "phone-reading.png"));
			await page.click(".back-button");
			await page.waitForSelector("#list-pane", {state: "visible"});
			await page.click("#menu-button");
			await page.waitForSelector("#sidebar .folder", {state: "visible"});
			out.screenshots.push(await shot(page, "phone-folders.png"));
			await page.keyboard.press("Escape");
			await page.click("#compose-fab");
			await page.waitForSelector("#compose-to:focus");
			out.phoneComposeAlone = !(await page.isVisible("#list-pane"));
			out.screenshots.push(await shot(page, "phone-compose.png"));
		} finally {
			await browser.close();
		}
		return out;
	},

	// Settings: the name and signature go out with new mail.
	async "settings"() {
		const browser = await chromium.launch(launchOptions);
		const out = {screenshots: []};
		try {
			const page = await signedIn(browser, args.alice, args.alicePassword);
			await page.click("#settings-button");
			await page.waitForSelector("#profile-form");
			await page.fill("#settings-name", "Alice Liddell");
			await page.fill("#settings-signature", "Alice, from the webmail");
			await page.click("#profile-form button[type=submit]");
			await page.waitForFunction(() =>
				document.querySelector("#profile-form .form-note")?.textContent === "Saved.");
			out.screenshots.push(await shot(page, "settings.png"));
			await page.fill("#settings-old-password", "wrong password");
			await page.fill("#settings-new-password", "a new long password");
			await page.fill("#settings-new-password-again", "a new long password");
			await page.click("#password-form button[type=submit]");
			await page.waitForSelector("#password-form .form-note.error");
			out.wrongOldPassword = await page.textContent("#password-form .form-note");
			await page.keyboard.press("Escape");
			await page.keyboard.press("c");
			await page.waitForSelector("#compose-to:focus");
			out.from = await page.$eval("#compose-from", (s) => s.options[s.selectedIndex].text);
			out.body = await page.inputValue("#compose-body");
		} finally {
			await browser.close();
		}
		return out;
	},

	// Sign in, see the folders with their unread counts, sign out; the
	// session is over on the server too.
	async "login-folders"() {
		const browser = await chromium.launch(launchOptions);
		const context = await browser.newContext({viewport: {width: 1200, height: 800}});
		watch(context);
		const page = await context.newPage();
		const out = {};
		try {
			await page.goto(args.base + args.brandPath);
			await page.fill("#username", args.user);
			await page.fill("#password", "not the password");
			await page.click("button[type=submit]");
			await page.waitForSelector("#login-error:not([hidden])");
			out.wrongPassword = await page.textContent("#login-error");
			await page.fill("#password", args.password);
			await page.click("button[type=submit]");
			await page.waitForSelector("#folder-list li");
			out.user = await page.textContent("#app-user");
			out.folders = await page.$$eval("#folder-list a", (els) =>
				els.map((a) => ({
					name: a.querySelector(".folder-name").textContent,
					unread: a.querySelector(".unread")?.textContent || "",
				})));
			out.cookies = (await context.cookies()).map((c) => ({
				name: c.name, httpOnly: c.httpOnly, secure: c.secure,
				sameSite: c.sameSite,
			}));
			out.screenshots = [await shot(page, "webmail-folders.png")];
			await page.setViewportSize({width: 390, height: 800});
			out.screenshots.push(await shot(page, "webmail-folders-phone.png"));
			// A reload keeps the session.
			await page.reload();
			await page.waitForSelector("#folder-list li");
			out.reloadKeptSession = true;
			await page.click("#logout");
			await page.waitForSelector("#login-form");
			await page.reload();
			await page.waitForSelector("#login-form");
			out.afterLogoutAppHidden = await page.isHidden("#app");
		} finally {
			await browser.close();
		}
		return out;
	},
};

// What the server's SPF, DKIM and DMARC checks said of each sender, as the
// reading pane shows it.
scenarios["sender-checks"] = async function () {
	const browser = await chromium.launch(launchOptions);
	const out = {marks: {}, screenshots: []};
	try {
		const page = await signedIn(browser, args.user, args.password);
		for (const subject of args.subjects) {
			await page.click(rowWith(subject));
			await page.waitForFunction((want) =>
				[...document.querySelectorAll("#reader .message.expanded .msg-head")]
					.length > 0 && document.querySelector("#reader")?.textContent.includes(want),
			subject);
			const article = "#reader .message.expanded";
			out.marks[subject] = await page.$$eval(`${article} .msg-who .chip`,
				(els) => els.filter((e) => !e.classList.contains("draft"))
					.map((e) => ({text: e.textContent, kind: e.className, title: e.title})));
			out.screenshots.push(await shot(page,
				"sender-" + subject.replace(/[^a-z]+/gi, "-").toLowerCase() + ".png"));
		}
	} finally {
		await browser.close();
	}
	return out;
};

// The Activity page lists this account's accesses, its own session
// marked.
scenarios["activity"] = async function () {
	const browser = await chromium.launch(launchOptions);
	const out = {screenshots: []};
	try {
		const page = await signedIn(browser, args.user, args.password);
		await page.click("#activity-button");
		await page.waitForSelector("#activity-table tbody tr");
		out.title = await page.textContent("#activity-title");
		out.rows = await page.$$eval("#activity-table tbody tr", (rows) => rows.map((r) => ({
			action: r.dataset.action,
			protocol: r.dataset.protocol,
			what: r.querySelector(".activity-action").textContent,
			from: r.querySelector(".activity-from").textContent,
			current: r.classList.contains("current"),
			mark: r.querySelector(".activity-mark")?.textContent || null,
		})));
		out.more = await page.isVisible("#activity-more");
		out.screenshots.push(await shot(page, "activity.png"));
		await page.click(".settings-back");
		await page.waitForSelector("#message-list");
		out.backView = await page.$eval("#app", (el) => el.dataset.view);
	} finally {
		await browser.close();
	}
	return out;
};

const scenario = scenarios[name];
if (!scenario) {
	console.error(`no scenario ${name}`);
	process.exit(2);
}
try {
	const result = await scenario();
	console.log(JSON.stringify({...result, ...seen}));
} catch (e) {
	console.error(e.stack || String(e));
	process.exit(1);
}
