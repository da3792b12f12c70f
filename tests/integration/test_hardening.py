"""The dijk binary is built hardened (DESIGN.md's flags): a position-
independent executable, full RELRO (read-only relocations, bound at
start), stack canaries and FORTIFY_SOURCE checks; its stack is not
executable. Read with readelf (binutils) from the binary under test."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DIJK, ROOT

pytestmark = pytest.mark.skipif(shutil.which("readelf") is None,
                                reason="readelf (binutils) is not installed")
SANITIZED = os.environ.get("DIJK_SANITIZED") == "1"


def readelf(*args):
    return subprocess.run(["readelf", "-W", *args, DIJK], capture_output=True,
                          text=True, check=True).stdout


def test_position_independent_executable():
    header = readelf("-h")
    assert re.search(r"Type:\s+DYN ", header), header
    assert "PIE" in readelf("-d")


def test_full_relro():
    segments = readelf("-l")
    assert re.search(r"^\s*GNU_RELRO\s", segments, re.M), segments
    dynamic = readelf("-d")
    assert re.search(r"\(FLAGS\)\s+.*BIND_NOW", dynamic) or \
        re.search(r"\(FLAGS_1\)\s+Flags:.*\bNOW\b", dynamic), dynamic


def test_stack_not_executable():
    stack = [l for l in readelf("-l").splitlines() if "GNU_STACK" in l]
    assert stack and stack[0].split()[-2] == "RW", stack


def test_stack_protector():
    assert "__stack_chk_fail" in readelf("--dyn-syms")


@pytest.mark.skipif(SANITIZED, reason="the sanitizer build does not fortify "
                                      "(ASan replaces the checked functions)")
def test_fortify_source():
    checked = set(re.findall(r"\b(__\w+_chk)\b", readelf("--dyn-syms")))
    checked.discard("__stack_chk_fail")
    # snprintf and memcpy are everywhere in dijk: fortified, they become
    # their checked forms.
    assert {"__snprintf_chk", "__memcpy_chk"} <= checked, checked


def test_build_flags_are_the_designed_ones():
    """meson.build asks for what DESIGN.md lists, and warnings stay
    errors."""
    text = (ROOT / "meson.build").read_text()
    for flag in ("-D_FORTIFY_SOURCE=3", "-fstack-protector-strong",
                 "-Wl,-z,relro,-z,now", "'b_pie=true'", "'werror=true'",
                 "'warning_level=2'"):
        assert flag in text, flag
