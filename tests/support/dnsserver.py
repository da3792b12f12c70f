"""A private authoritative DNS server for tests: Debian's nsd on loopback.

    from dnsserver import DnsServer

    dns = DnsServer(tmp_path / "dns", {
        "a.test": ["@ MX 10 mx", "mx A 127.0.0.2"],
        "b.test": "@ MX 10 mx.b.test.\nmx A 127.0.0.3\n",
    }, signed=["b.test"])
    dns.start()
    ...  dns.resolver = dns.address, dns.trust_anchor = dns.trust_anchor
    dns.set_zone("a.test", ["@ MX 10 mx", "mx A 127.0.0.4"])  # reloads
    dns.stop()

Interface
- DnsServer(workdir, zones, signed=(), port=None, ttl=1)
  workdir: a directory for the configuration, zone files, keys and the
  log (created if missing). zones: {zone name: records}, or a list of
  (zone name, records) pairs, where records is a list of zone-file lines
  or one string of lines; names may be relative to the zone ("@", "mx",
  "_25._tcp.mx") or absolute ("mx.b.test."). Each zone gets a generated
  SOA and NS record; do not give them. signed: names of zones to sign with DNSSEC (a KSK and a
  ZSK, ECDSA P-256, NSEC), whose DS records go into .trust_anchor.
  port: the UDP+TCP port to serve on (default: a free one picked now).
  ttl: the default TTL and the negative-caching TTL, in seconds; short,
  so that a resolver sees a changed zone soon.
- .port: the port; .address: "127.0.0.1@PORT" (dijk's dns.resolver
  form); .trust_anchor: the path of a file holding the DS records of the
  signed zones, one per line (empty when none is signed), usable as
  dijk's dns.trust_anchor, unbound's trust-anchor-file and drill -k.
- start(): runs `nsd -d` in the foreground as a child process and waits
  until it answers; raises RuntimeError (with nsd's log) if it does not.
- stop(): ends nsd (SIGTERM, then SIGKILL) and waits for it; safe to
  call twice or before start().
- set_zone(name, records, signed=None): replaces (or adds) one zone and,
  if the server runs, restarts it on the same port; signed=True/False
  changes whether the zone is signed (its keys, and so its DS record,
  stay the same across changes).
- query(name, rrtype): a plain UDP query from Python; returns (rcode,
  number of answer records). For readiness checks and sanity tests.
- ds_records(zone): the DS lines of a signed zone.
- dnssec_valid(name, rrtype): True if `drill -S` chases the answer's
  signatures up to .trust_anchor (a check of the test zone itself).
- Usable as a context manager (start on enter, stop on exit).

nsd runs as the calling user (no privilege drop, no chroot), with no
database, no remote control and its log in workdir/nsd.log.
"""

import random
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

NSD = "/usr/sbin/nsd"
LDNS_KEYGEN = "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = "/usr/bin/ldns-signzone"

_RRTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
            "AAAA": 28, "DS": 43, "RRSIG": 46, "DNSKEY": 48, "TLSA": 52}


def _free_udp_tcp_port():
    """A port free for both TCP and UDP on 127.0.0.1 at this moment."""
    while True:
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def _lines(records):
    if isinstance(records, str):
        records = records.splitlines()
    return [r.strip() for r in records if r.strip()]


class DnsServer:
    def __init__(self, workdir, zones, signed=(), port=None, ttl=1):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else _free_udp_tcp_port()
        self.address = f"127.0.0.1@{self.port}"
        self.ttl = int(ttl)
        pairs = zones.items() if isinstance(zones, dict) else zones
        self.zones = {self._canon(z): _lines(r) for z, r in pairs}
        self.signed = {self._canon(z) for z in signed}
        unknown = self.signed - set(self.zones)
        if unknown:
            raise ValueError(f"signed zones not in zones: {sorted(unknown)}")
        self.trust_anchor = str(self.workdir / "trust-anchor.ds")
        self.log_path = self.workdir / "nsd.log"
        self.proc = None
        self._serial = int(time.time())
        self._keys = {}  # zone -> (ksk base path, zsk base path)
        self._write_all()

    @staticmethod
    def _canon(name):
        return name.rstrip(".").lower()

    # --- files -------------------------------------------------------------

    def _zone_text(self, zone):
        head = [
            f"$ORIGIN {zone}.",
            f"$TTL {self.ttl}",
            f"@ IN SOA ns.dnsserver.invalid. hostmaster.{zone}. "
            f"({self._serial} 3600 600 86400 {self.ttl})",
            "@ IN NS ns.dnsserver.invalid.",
        ]
        return "\n".join(head + self.zones[zone]) + "\n"

    def _key_bases(self, zone):
        """Generates the zone's KSK and ZSK once; returns their base paths."""
        if zone not in self._keys:
            keydir = self.workdir / "keys"
            keydir.mkdir(exist_ok=True)
            bases = []
            for extra in (["-k"], []):
                r = subprocess.run(
                    [LDNS_KEYGEN, "-a", "ECDSAP256SHA256", "-r", "/dev/urandom",
                     *extra, zone],
                    cwd=keydir, capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    raise RuntimeError(f"ldns-keygen for {zone} failed: {r.stderr}")
                bases.append(keydir / r.stdout.strip())
            self._keys[zone] = tuple(bases)
        return self._keys[zone]

    def ds_records(self, zone):
        zone = self._canon(zone)
        ksk, _ = self._key_bases(zone)
        return _lines(Path(str(ksk) + ".ds").read_text())

    def _zone_file(self, zone):
        return self.workdir / f"{zone}.zone"

    def _served_file(self, zone):
        plain = self._zone_file(zone)
        return Path(str(plain) + ".signed") if zone in self.signed else plain

    def _write_zone(self, zone):
        plain = self._zone_file(zone)
        plain.write_text(self._zone_text(zone))
        if zone in self.signed:
            ksk, zsk = self._key_bases(zone)
            # Valid from an hour ago, so that a resolver's clock a little
            # behind ours still accepts the signatures.
            inception = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 3600))
            expiration = time.strftime("%Y%m%d%H%M%S",
                                       time.gmtime(time.time() + 30 * 86400))
            r = subprocess.run(
                [LDNS_SIGNZONE, "-i", inception, "-e", expiration, "-o", zone,
                 "-f", str(self._served_file(zone)), str(plain), str(zsk), str(ksk)],
                capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"ldns-signzone for {zone} failed: {r.stderr}\n"
                                   f"zone:\n{plain.read_text()}")

    def _write_all(self):
        for zone in self.zones:
            self._write_zone(zone)
        anchors = []
        for zone in sorted(self.signed):
            anchors += self.ds_records(zone)
        Path(self.trust_anchor).write_text("".join(a + "\n" for a in anchors))
        w = self.workdir
        conf = [
            "server:",
            f"    ip-address: 127.0.0.1@{self.port}",
            f"    port: {self.port}",
            "    do-ip4: yes",
            "    do-ip6: no",
            "    server-count: 1",
            '    username: ""',
            '    chroot: ""',
            f'    zonesdir: "{w}"',
            '    database: ""',
            f'    zonelistfile: "{w}/zone.list"',
            f'    xfrdfile: "{w}/xfrd.state"',
            f'    xfrdir: "{w}"',
            f'    pidfile: "{w}/nsd.pid"',
            f'    logfile: "{self.log_path}"',
            "    verbosity: 1",
            "    hide-version: yes",
            "    refuse-any: yes",
            "remote-control:",
            "    control-enable: no",
        ]
        for zone in sorted(self.zones):
            conf += ["zone:", f"    name: {zone}",
                     f'    zonefile: "{self._served_file(zone)}"']
        self.conf_path = w / "nsd.conf"
        self.conf_path.write_text("\n".join(conf) + "\n")

    # --- the process -------------------------------------------------------

    def start(self, timeout=15.0):
        if self.proc is not None:
            return self
        (self.workdir / "zone.list").unlink(missing_ok=True)
        (self.workdir / "xfrd.state").unlink(missing_ok=True)
        self._log = open(self.workdir / "nsd.stderr", "ab")
        self.proc = subprocess.Popen([NSD, "-d", "-c", str(self.conf_path)],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        first = sorted(self.zones)[0] if self.zones else None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._reap()
                raise RuntimeError(f"nsd exited at start:\n{self.logs()}")
            if self._answers(first):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nsd did not answer on {self.address}:\n{self.logs()}")
            time.sleep(0.05)

    def _answers(self, zone):
        """True once nsd serves zone (or, with no zone, holds the port)."""
        if zone is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    return True
            return False
        try:
            return self.query(zone, "SOA", timeout=0.5)[0] == 0
        except OSError:
            return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reap()

    def _reap(self):
        self.proc = None
        self._log.close()
        # nsd's server child may hold the sockets a moment longer than the
        # main process lives; a restart must find the port free.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", self.port))
                with socket.socket() as t:
                    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    t.bind(("127.0.0.1", self.port))
                return
            except OSError:
                time.sleep(0.05)

    def set_zone(self, name, records, signed=None):
        zone = self._canon(name)
        self.zones[zone] = _lines(records)
        if signed is True:
            self.signed.add(zone)
        elif signed is False:
            self.signed.discard(zone)
        self._serial += 1
        running = self.proc is not None
        if running:
            self.stop()
        self._write_all()
        if running:
            self.start()

    def logs(self):
        out = ""
        for p in (self.workdir / "nsd.stderr", self.log_path):
            if p.exists():
                out += p.read_text(errors="replace")
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- checks ----------------------------------------------------------------

    def dnssec_valid(self, name, rrtype):
        """True if drill can chase name/rrtype's signatures from this
        server up to .trust_anchor."""
        r = subprocess.run(["drill", "-S", "-k", self.trust_anchor, "-p", str(self.port),
                            "@127.0.0.1", name, rrtype.upper()],
                           capture_output=True, text=True, timeout=30)
        return r.returncode == 0 and "Chase successful" in r.stdout


    def query(self, name, rrtype, timeout=2.0):
        """One UDP query with the DO bit clear and RD set; returns (rcode,
        answer count). Raises OSError on no answer."""
        qid = random.randrange(65536)
        packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        for label in self._canon(name).split("."):
            packet += bytes([len(label)]) + label.encode()
        packet += b"\0" + struct.pack(">HH", _RRTYPES[rrtype.upper()], 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(packet, ("127.0.0.1", self.port))
            while True:
                data, _ = s.recvfrom(65535)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    break
        flags, _, ancount = struct.unpack(">HHH", data[2:8])
        return flags & 0xF, ancount
