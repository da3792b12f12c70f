#!/usr/bin/env python3
"""compare_dovecot.py: src/mime/ side by side with Dovecot's IMAP server.

Run by hand (not part of `make test`), after building build/test_mime and
installing dovecot-imapd (scripts/deps.sh --test):

    python3 tests/unit/mime/compare_dovecot.py [FILE.eml ...]

Starts a private Dovecot on 127.0.0.1 (a free port, everything in a
temporary directory, one Maildir folder per message so that the bytes reach
Dovecot untouched), fetches ENVELOPE, BODYSTRUCTURE, BODY and every
section of every part (BODY.PEEK[n], [n.MIME], [n.HEADER], [n.TEXT],
HEADER.FIELDS, BINARY.PEEK[n]) and compares them with what
`build/test_mime --dump` prints for the same file. Without arguments it
runs the whole corpus (tests/unit/mime/corpus/*.eml).

Differences are printed per message; a difference only in the case of
strings, or in line ends of a bare-LF message (Dovecot sends CRLF), is
reported as such. Exits 0 when nothing differs at all, 1 otherwise.
"""

import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
TEST_BIN = os.environ.get("TEST_MIME", os.path.join(ROOT, "build", "test_mime"))


# ---- IMAP data: tokenizing and parsing -----------------------------------

class Literal(bytes):
    """A string that was sent as a literal."""


def tokenize(data, pos=0):
    """Parses one IMAP value (list, string, NIL, atom, number) at pos;
    returns (value, new_pos). Lists become Python lists, NIL None,
    strings bytes."""
    while data[pos:pos + 1] == b" ":
        pos += 1
    c = data[pos:pos + 1]
    if c == b"(":
        pos += 1
        items = []
        while True:
            while data[pos:pos + 1] == b" ":
                pos += 1
            if data[pos:pos + 1] == b")":
                return items, pos + 1
            if pos >= len(data):
                raise ValueError("unbalanced list")
            item, pos = tokenize(data, pos)
            items.append(item)
    if c == b'"':
        out = bytearray()
        pos += 1
        while data[pos:pos + 1] != b'"':
            if pos >= len(data):
                raise ValueError("unterminated string")
            if data[pos:pos + 1] == b"\\":
                pos += 1
            out += data[pos:pos + 1]
            pos += 1
        return bytes(out), pos + 1
    if c in (b"{", b"~"):
        if c == b"~":
            pos += 1
        m = re.match(rb"\{(\d+)\+?\}\r\n", data[pos:])
        if not m:
            raise ValueError("bad literal at %d" % pos)
        n = int(m.group(1))
        start = pos + m.end()
        return Literal(data[start:start + n]), start + n
    m = re.match(rb"[^ ()\[\]\r\n]+", data[pos:])
    if not m:
        raise ValueError("unexpected %r at %d" % (data[pos:pos + 20], pos))
    atom = m.group(0)
    pos += m.end()
    if atom.upper() == b"NIL":
        return None, pos
    return atom, pos


def parse(data):
    value, pos = tokenize(data, 0)
    if data[pos:].strip():
        raise ValueError("trailing data %r" % data[pos:pos + 40])
    return value


def show(v):
    if v is None:
        return "NIL"
    if isinstance(v, list):
        return "(" + " ".join(show(x) for x in v) + ")"
    if isinstance(v, Literal):
        return "{%d}%r" % (len(v), bytes(v))
    return repr(bytes(v))[1:]


def fold(v):
    """v with strings lower-cased and the quoted/literal form forgotten."""
    if isinstance(v, list):
        return [fold(x) for x in v]
    if v is None:
        return None
    return bytes(v).lower()


def plain(v):
    if isinstance(v, list):
        return [plain(x) for x in v]
    if v is None:
        return None
    return bytes(v)


def diff_paths(a, b, path="", out=None):
    """Where two parsed values differ, as readable lines."""
    if out is None:
        out = []
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            if i >= len(a) or i >= len(b):
                out.append("  %s[%d]: dijk %s | dovecot %s" % (
                    path, i, show(a[i]) if i < len(a) else "-",
                    show(b[i]) if i < len(b) else "-"))
            else:
                diff_paths(a[i], b[i], "%s[%d]" % (path, i), out)
    elif plain(a) != plain(b) and fold(a) != fold(b):
        out.append("  %s: dijk %s | dovecot %s" % (path or "value", show(a),
                                                  show(b)))
    return out


# ---- our side --------------------------------------------------------------

def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[n]
            i += 2
            continue
        out += c.encode("latin-1")
        i += 1
    return bytes(out)


def ours(path, sections):
    res = subprocess.run([TEST_BIN, "--dump", path] + sections,
                         capture_output=True, check=True)
    result = {}
    for line in res.stdout.decode("latin-1").splitlines():
        key, _, rest = line.partition(" ")
        if key == "SECTION":
            for s in sections:
                if rest.startswith(s + " "):
                    val = rest[len(s) + 1:]
                    result[s] = None if val in ("-1", "-2", "BAD") else unescape(val)
                    if val == "-2":
                        result[s] = "UNKNOWN-CTE"
                    break
        else:
            result[key] = unescape(rest)
    return result


def part_sections(body, prefix=""):
    """Section names of every part of a parsed BODYSTRUCTURE."""
    out = []
    if body and isinstance(body[0], list):
        n = 0
        for child in body:
            if not isinstance(child, list):
                break
            n += 1
            name = prefix + str(n)
            out.append((name, child))
            out += part_sections_inner(child, name)
        return out
    name = prefix + "1"
    out.append((name, body))
    out += part_sections_inner(body, name)
    return out


def part_sections_inner(body, name):
    if body and isinstance(body[0], list):
        return part_sections(body, name + ".")
    if (len(body) > 8 and isinstance(body[0], bytes)
            and body[0].lower() == b"message" and body[1].lower() == b"rfc822"):
        inner = body[8]
        return part_sections(inner, name + ".")
    return []


def sections_for(structure):
    secs = ["HEADER", "TEXT", "HEADER.FIELDS (FROM SUBJECT CONTENT-TYPE)",
            "HEADER.FIELDS.NOT (RECEIVED SUBJECT)"]
    for name, body in part_sections(structure):
        secs.append(name)
        secs.append(name + ".MIME")
        is_msg = (isinstance(body[0], bytes) and body[0].lower() == b"message"
                  and isinstance(body[1], bytes)
                  and body[1].lower() == b"rfc822")
        if is_msg:
            secs += [name + ".HEADER", name + ".TEXT",
                     name + ".HEADER.FIELDS (SUBJECT)"]
        if not (body and isinstance(body[0], list)):
            secs.append("BINARY " + name)
    secs.append("99")
    return secs[:80]


# ---- Dovecot ---------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dovecot:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dijk-dovecot-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        user = pwd.getpwnam("dovecot")
        self.uid, self.gid = user.pw_uid, user.pw_gid
        for d in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(self.dir, d), mode=0o755)
        os.chown(os.path.join(self.dir, "mail"), self.uid, self.gid)
        os.chown(os.path.join(self.dir, "home"), self.uid, self.gid)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("test:{PLAIN}test::::::\n")
        os.chmod(os.path.join(self.dir, "passwd"), 0o644)
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.dir}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.dir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
        self.conf = conf
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit("dovecot did not start; see the log in " + self.dir)

    def add_message(self, folder, data):
        base = os.path.join(self.dir, "mail", "test", "." + folder)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        name = "%d.M1P1.dijk:2,S" % int(time.time())
        with open(os.path.join(base, "cur", name), "wb") as f:
            f.write(data)
        for root, dirs, files in os.walk(os.path.join(self.dir, "mail")):
            os.chown(root, self.uid, self.gid)
            for x in files:
                os.chown(os.path.join(root, x), self.uid, self.gid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def raw_response(data):
    """imaplib's pieces of one FETCH response put back together."""
    out = b""
    for piece in data:
        if isinstance(piece, tuple):
            out += piece[0] + b"\r\n" + piece[1]
        elif piece is not None:
            out += piece
    return out


def fetch_item(imap, item):
    """Fetches one item of message 1; returns the value after the name."""
    # imaplib keeps untagged data of a failed command for the next one.
    imap.untagged_responses.clear()
    typ, data = imap.fetch("1", "(" + item + ")")
    if typ != "OK":
        return ("NO", data)
    raw = raw_response(data)
    # "1 (NAME value)"
    m = re.match(rb"\d+ \(", raw)
    if not m:
        return ("BAD", raw)
    pos = m.end()
    # skip the name (which may hold a bracketed section with spaces)
    depth = 0
    while pos < len(raw):
        c = raw[pos:pos + 1]
        if c == b"[":
            depth += 1
        elif c == b"]":
            depth -= 1
        elif c == b" " and depth == 0:
            break
        pos += 1
    value, _ = tokenize(raw, pos + 1)
    return value


def main():
    files = sys.argv[1:] or sorted(
        os.path.join(HERE, "corpus", f)
        for f in os.listdir(os.path.join(HERE, "corpus")) if f.endswith(".eml"))
    if not os.access(TEST_BIN, os.X_OK):
        raise SystemExit("build %s first" % TEST_BIN)
    dovecot = Dovecot()
    total_diffs = 0
    try:
        for i, path in enumerate(files):
            with open(path, "rb") as f:
                data = f.read()
            dovecot.add_message("m%d" % i, data)
        imap = imaplib.IMAP4("127.0.0.1", dovecot.port)
        imap.login("test", "test")
        for i, path in enumerate(files):
            name = os.path.basename(path)
            with open(path, "rb") as f:
                bare_lf = re.search(rb"(?<!\r)\n", f.read()) is not None
            imap.select("m%d" % i, readonly=True)
            mine = ours(path, [])
            structure = parse(mine["BODYSTRUCTURE"])
            secs = sections_for(structure)
            mine = ours(path, secs)
            lines = []
            case_only = []
            for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
                theirs = fetch_item(imap, item)
                m = parse(mine[item])
                if plain(m) == plain(theirs):
                    continue
                if fold(m) == fold(theirs):
                    case_only.append(item)
                    continue
                lines.append(" %s DIFFERS:" % item)
                lines += diff_paths(m, theirs)
            for s in secs:
                if s.startswith("BINARY "):
                    theirs = fetch_item(imap, "BINARY.PEEK[%s]" % s[7:])
                    if isinstance(theirs, tuple):
                        theirs = ("UNKNOWN-CTE" if b"UNKNOWN-CTE" in
                                  repr(theirs).encode() else None)
                else:
                    theirs = fetch_item(imap, "BODY.PEEK[%s]" % s)
                    if isinstance(theirs, tuple):
                        theirs = None
                m = mine.get(s)
                tv = None if theirs is None or theirs == b"" else theirs
                mv = None if m is None or m == b"" else m
                if isinstance(tv, bytes):
                    tv = bytes(tv)
                if mv == tv:
                    continue
                if (bare_lf and isinstance(mv, bytes) and isinstance(tv, bytes)
                        and re.sub(rb"\r?\n", b"\n", mv) ==
                        re.sub(rb"\r?\n", b"\n", tv)):
                    continue  # only the line ends: Dovecot sends CRLF
                lines.append(" [%s] DIFFERS:\n   dijk    %r\n   dovecot %r" % (
                    s, mv if not isinstance(mv, bytes) else mv[:300],
                    tv if not isinstance(tv, bytes) else tv[:300]))
            note = (" (%s: same but for the case of strings)" %
                    ", ".join(case_only) if case_only else "")
            if lines:
                total_diffs += 1
                print("%s%s%s" % (name, " (bare LF)" if bare_lf else "", note))
                print("\n".join(lines))
            else:
                print("%s: same%s" % (name, note))
        imap.logout()
    finally:
        dovecot.stop()
    print("%d of %d messages differ" % (total_diffs, len(files)))
    return 1 if total_diffs else 0


if __name__ == "__main__":
    sys.exit(main())
