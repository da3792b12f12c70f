// app.js: the webmail in the browser. It talks to the server through the
// JSON API only; no inline script, nothing loaded from another host.

const $ = (id) => document.getElementById(id);

async function loadBrand() {
	const response = await fetch("brand.json", {credentials: "same-origin"});
	if (!response.ok)
		return;
	const brand = await response.json();
	document.title = brand.display;
	$("brand-name").textContent = brand.display;
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
		if (!response.ok)
			showError(response.status === 401
				? "The email address or the password is wrong."
				: "Signing in is not possible right now. Try again later.");
	} catch (e) {
		showError("The server cannot be reached.");
	} finally {
		button.disabled = false;
	}
}

$("login-form").addEventListener("submit", signIn);
loadBrand();
