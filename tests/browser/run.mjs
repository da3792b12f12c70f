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
import {mkdirSync, mkdtempSync, rmSync} from "node:fs";
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

function watch(context) {
	const origin = new URL(args.base).origin;
	context.on("request", (request) => {
		const url = request.url();
		if (!url.startsWith(origin) && !url.startsWith("data:") &&
		    !url.startsWith("about:"))
			seen.foreign.push(url);
	});
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
