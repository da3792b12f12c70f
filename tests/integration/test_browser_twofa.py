"""Two-step sign-in in a real browser (tests/browser/twofa.mjs): the QR
code the Security section shows decodes (zbarimg) to the otpauth:// URI of
the secret shown beside it, a code from oathtool turns TOTP on and shows
ten recovery codes, and after signing out the password alone no longer
signs in: the page asks for a code, refuses a wrong one, takes a fresh
one. No request leaves for another host and the CSP refuses nothing."""
import json
import os
import re
import subprocess
from pathlib import Path

from conftest import PASSWORDS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DIJK_ARTIFACTS", ROOT / "build" / "test-artifacts"))
ALICE = "alice@example.test"


def test_enroll_from_the_qr_code_then_sign_in_with_a_code(dijk_factory):
    d = dijk_factory("browsertwofa")
    env = dict(os.environ, DIJK_ARTIFACTS=str(ARTIFACTS))
    args = {"base": f"http://127.0.0.1:{d.http_port}", "brandPath": "/b/mail/",
            "user": ALICE, "password": PASSWORDS[ALICE]}
    r = subprocess.run(["node", str(ROOT / "tests" / "browser" / "twofa.mjs"),
                        json.dumps(args)], capture_output=True, text=True,
                       timeout=240, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["foreign"] == [], out["foreign"]
    assert out["cspViolations"] == [], out["cspViolations"]
    assert "Off." in out["totpBefore"]
    assert out["qrUri"].startswith("otpauth://totp/example.test:alice%40example.test?")
    assert re.fullmatch(r"[A-Z2-7]{32}", out["qrSecret"])
    assert out["qrSecret"] == out["shownSecret"]
    assert len(out["recovery"]) == 10
    assert all(re.fullmatch(r"([a-z2-7]{4}-){3}[a-z2-7]{4}", c) for c in out["recovery"])
    assert out["totpAfter"].startswith("On.") and "10 recovery codes" in out["totpAfter"]
    assert out["sessionsListed"] == 1 and out["thisSessionMarked"] == 1
    assert out["passwordFormHiddenAtCode"]
    assert out["wrongCodeError"] == "That code did not work. Sign in again."
    assert out["backAtPassword"]
    assert out["user"] == ALICE
    # The page's first session check (401) and the wrong code's 401 are
    # the only console errors.
    assert all("401" in e for e in out["consoleErrors"]), out["consoleErrors"]
    for path in out["screenshots"]:
        assert Path(path).stat().st_size > 1000
