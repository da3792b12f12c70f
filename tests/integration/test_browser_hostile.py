"""The hostile-mail corpus (tests/hostile/) delivered by SMTP and opened in
the webmail's reading pane in Chromium: no script runs, no request leaves
for another host, no frame navigates away. The vectors that run script post
a message to the page or fetch the attacker's host, so either would show
(tests/browser/hostile.mjs watches for both)."""
import base64
import json
import os
import smtplib
import subprocess
from pathlib import Path

from conftest import PASSWORDS

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "hostile"
ARTIFACTS = Path(os.environ.get("DIJK_ARTIFACTS", ROOT / "build" / "test-artifacts"))
USERS = ["alice@example.test", "bob@example.test"]


def message(to, subject, html):
    body = base64.encodebytes(html).decode()
    return (f"From: Mallory <mallory@attacker.example>\r\nTo: {to}\r\n"
            f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" +
            body.replace("\n", "\r\n")).encode()


def test_hostile_corpus_runs_nothing_in_the_browser(dijk_factory):
    vectors = sorted(HOSTILE.glob("*.html"))
    assert len(vectors) >= 40
    d = dijk_factory("hostile")
    # Two mailboxes of at most 50, so every message is on the first page.
    share = {u: [] for u in USERS}
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
        for i, path in enumerate(vectors):
            user = USERS[i * len(USERS) // len(vectors)]
            subject = "Hostile " + path.stem
            s.sendmail("mallory@attacker.example", [user],
                       message(user, subject, path.read_bytes()))
            share[user].append(subject)
    opened = []
    for user, subjects in share.items():
        env = dict(os.environ, DIJK_ARTIFACTS=str(ARTIFACTS))
        args = {"base": f"http://127.0.0.1:{d.http_port}", "brandPath": "/b/mail/",
                "user": user, "password": PASSWORDS[user], "subjects": subjects}
        r = subprocess.run(["node", str(ROOT / "tests" / "browser" / "hostile.mjs"),
                            json.dumps(args)], capture_output=True, text=True,
                           timeout=300, env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-4000:]
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["scripts"] == [], out["scripts"]
        assert out["dialogs"] == [], out["dialogs"]
        assert out["foreign"] == [], out["foreign"]
        assert out["frameUrls"] == [], out["frameUrls"]
        # The mail's own CSS and scripts are gone before the browser sees
        # them, so the policy has nothing to refuse either.
        assert out["cspViolations"] == [], out["cspViolations"]
        opened += out["opened"]
    assert sorted(opened) == sorted("Hostile " + p.stem for p in vectors)
