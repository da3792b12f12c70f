// twofa.mjs: two-step sign-in in Debian's Chromium: turn it on from the
// Security section of the settings page, read the secret back out of the
// QR code's screenshot with zbarimg, confirm with a code from oathtool,
// sign out, and sign in again with the password and a fresh code.
//
//   node twofa.mjs '{"base": "http://127.0.0.1:PORT", "brandPath": "/b/mail/",
//                    "user": ..., "password": ...}'
//
// Prints one JSON object; exits 1 with the error on stderr when a step
// fails. Driven by tests/integration/test_browser_twofa.py.
import {chromium} from "playwright-core";
import {execFileSync} from "node:child_process";
import {mkdirSync} from "node:fs";
import {join} from "node:path";

const args = JSON.parse(process.argv[2] || "{}");
const artifacts = process.env.DIJK_ARTIFACTS || "build/test-artifacts";
mkdirSync(artifacts, {recursive: true});
const origin = new URL(args.base).origin;

const out = {foreign: [], cspViolations: [], consoleErrors: [], screenshots: []};

function totp(secret) {
	return execFileSync("oathtool", ["--totp", "-b", secret], {encoding: "utf8"}).trim();
}

// Into the next 30-second step, so that the next code is a new one.
function nextStep() {
	const ms = 30000 - Date.now() % 30000 + 500;
	return new Promise((resolve) => setTimeout(resolve, ms));
}

async function shot(page, file, selector) {
	const path = join(artifacts, file);
	if (selector)
		await page.locator(selector).screenshot({path});
	else
		await page.screenshot({path, fullPage: true});
	out.screenshots.push(path);
	return path;
}

async function signIn(page) {
	await page.fill("#username", args.user);
	await page.fill("#password", args.password);
	await page.click("#login-form button[type=submit]");
}

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
		    !url.startsWith("about:"))
			out.foreign.push(url);
	});
	const page = await context.newPage();
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
	await signIn(page);
	await page.waitForSelector("#folder-list li");

	// Turn it on.
	await page.click("#settings-button");
	await page.waitForSelector("#security #totp-begin");
	out.totpBefore = await page.textContent("#security-totp");
	await page.click("#totp-begin");
	await page.waitForSelector("#totp-qr");
	await page.waitForFunction(() => {
		const img = document.querySelector("#totp-qr");
		return img.complete && img.naturalWidth > 0;
	});
	out.shownSecret = await page.textContent("#totp-secret");
	const qr = await shot(page, "twofa-qr.png", "#totp-qr");
	out.qrUri = execFileSync("zbarimg", ["--raw", "-q", qr], {encoding: "utf8"}).trim();
	const secret = new URL(out.qrUri).searchParams.get("secret");
	out.qrSecret = secret;
	await page.fill("#totp-confirm-code", totp(secret));
	await page.click("#totp-enroll button[type=submit]");
	await page.waitForSelector("#recovery-codes li");
	out.recovery = await page.$$eval("#recovery-codes code", (els) => els.map((e) => e.textContent));
	await shot(page, "twofa-recovery.png");
	await page.click("#recovery-done");
	await page.waitForSelector("#totp-status");
	out.totpAfter = await page.textContent("#totp-status");
	out.sessionsListed = await page.$$eval("#session-list tbody tr", (rows) => rows.length);
	out.thisSessionMarked = await page.$$eval("#session-list tbody tr.current", (rows) => rows.length);
	await shot(page, "twofa-security.png");

	// Sign out, and in: a wrong code sends the user back to the password.
	await page.click("#logout");
	await page.waitForSelector("#login-form:not([hidden])");
	await signIn(page);
	await page.waitForSelector("#login-code-form:not([hidden])");
	out.passwordFormHiddenAtCode = await page.isHidden("#login-form");
	await shot(page, "twofa-code-step.png");
	const now = totp(secret);
	await page.fill("#login-code", now === "000000" ? "111111" : "000000");
	await page.click("#login-code-form button[type=submit]");
	await page.waitForSelector("#login-error:not([hidden])");
	out.wrongCodeError = await page.textContent("#login-error");
	out.backAtPassword = await page.isVisible("#login-form");

	// The code used to turn it on is spent: take the next step's.
	await nextStep();
	await signIn(page);
	await page.waitForSelector("#login-code-form:not([hidden])");
	await page.fill("#login-code", totp(secret));
	await page.click("#login-code-form button[type=submit]");
	await page.waitForSelector("#folder-list li");
	out.user = await page.textContent("#app-user");
	await shot(page, "twofa-signed-in.png");
	await context.close();
} catch (e) {
	console.error(e.stack || String(e));
	await browser.close();
	process.exit(1);
}
await browser.close();
console.log(JSON.stringify(out));
