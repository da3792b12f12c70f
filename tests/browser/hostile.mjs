// hostile.mjs: opens every message of the hostile-mail corpus in the
// webmail's reading pane, in Debian's Chromium, and reports whatever the
// mail managed to do: script that ran (the vectors post a message to the
// parent or open dialogs when they run), requests to any host but ours,
// frames that navigated away, and Content-Security-Policy reports.
//
//   node hostile.mjs '{"base": "http://127.0.0.1:PORT", "brandPath": "/b/mail/",
//                      "user": ..., "password": ..., "subjects": [...]}'
//
// Prints one JSON object; exits 1 with the error on stderr when a step
// fails. Driven by tests/integration/test_browser_hostile.py.
import {chromium} from "playwright-core";
import {mkdirSync} from "node:fs";
import {join} from "node:path";

const args = JSON.parse(process.argv[2] || "{}");
const artifacts = process.env.DIJK_ARTIFACTS || "build/test-artifacts";
mkdirSync(artifacts, {recursive: true});
const origin = new URL(args.base).origin;

const out = {
	opened: [],       // subjects whose HTML frame loaded
	foreign: [],      // requests to anyone but us
	scripts: [],      // messages posted to the page by script in a frame
	dialogs: [],      // alert() and friends
	frameUrls: [],    // frames that ended up anywhere but our view URLs
	cspViolations: [],
	consoleErrors: [],
	screenshots: [],
};

const browser = await chromium.launch({
	executablePath: process.env.DIJK_CHROMIUM || "/usr/bin/chromium",
	headless: true,
	args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
});
try {
	const context = await browser.newContext({viewport: {width: 1280, height: 900}});
	context.on("request", (request) => {
		const url = request.url();
		if (!url.startsWith(origin + "/") && !url.startsWith("data:") &&
		    !url.startsWith("about:") && !url.startsWith("blob:"))
			out.foreign.push(url);
	});
	const page = await context.newPage();
	page.on("dialog", async (d) => {
		out.dialogs.push(d.type() + ": " + d.message());
		await d.dismiss();
	});
	page.on("console", (m) => {
		if (m.type() !== "error")
			return;
		const text = m.text();
		if (/Content.Security.Policy/i.test(text))
			out.cspViolations.push(text);
		else
			out.consoleErrors.push(text);
	});
	page.on("pageerror", (e) => out.consoleErrors.push("pageerror: " + e.message));
	await page.goto(args.base + args.brandPath);
	// Anything a frame's script posts to the page is a script that ran.
	await page.evaluate(() => {
		window.__posted = [];
		window.addEventListener("message", (e) => window.__posted.push(String(e.data)));
	});
	await page.fill("#username", args.user);
	await page.fill("#password", args.password);
	await page.click("button[type=submit]");
	await page.waitForSelector("#message-list .row");

	for (const subject of args.subjects) {
		const row = `#message-list .row:has(.row-subject:text-is(${JSON.stringify(subject)}))`;
		await page.click(row);
		await page.waitForFunction((want) =>
			document.querySelector("#reader-subject")?.textContent === want,
		subject, {timeout: 10000}).catch(async () => {
			await page.screenshot({path: join(artifacts, "hostile-failed.png")});
			throw new Error("the reader did not show " + subject + " (errors: " +
				JSON.stringify(out.consoleErrors) + "); it shows " +
				await page.evaluate(() => document.querySelector("#reader-subject")?.textContent));
		});
		const frame = await page.waitForSelector(".message.expanded iframe.html-body",
			{state: "attached", timeout: 10000}).catch(() => {
			throw new Error("no HTML frame for " + subject);
		});
		// The frame's document has loaded when its content frame has a body.
		const content = await frame.contentFrame();
		await content.waitForLoadState("load");
		out.opened.push(subject);
		if (out.screenshots.length < 3)
			out.screenshots.push(await (async () => {
				const path = join(artifacts, `hostile-${out.screenshots.length + 1}.png`);
				await page.screenshot({path});
				return path;
			})());
	}
	// Give timers, delayed handlers and refreshes their chance.
	await page.waitForTimeout(1500);
	out.scripts = await page.evaluate(() => window.__posted);
	for (const f of page.frames()) {
		const url = f.url();
		if (f !== page.mainFrame() && !url.startsWith(origin + "/jmap/view/") &&
		    url !== "about:blank" && url !== "about:srcdoc")
			out.frameUrls.push(url);
	}
} finally {
	await browser.close();
}
console.log(JSON.stringify(out));
