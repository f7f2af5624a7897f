#!/usr/bin/python3
"""How long a renewed keystore file takes to reach a new handshake on a running broker: `pki renew` and
`pki export --force` rewrite the PKCS12 keystore (rename over the file, as most tools do), and the clock
runs from the rename to the first TLS handshake that shows the new serial. Python's ssl module makes the
handshakes (no client certificate) back to back, so the figure includes at most one handshake's time.
Reported for each of BENCH_RELOADS (5) renewals: the latency, and the median against the watcher's
quiet time (250 ms, tls_reloader.h) plus the reload itself (bench/tls_bench BM_ReloadFromFiles).

Builds nothing. BULWARK_BIN: the bulwark binary (default: newest build*/src/cli/bulwark). Not a test."""
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests/integration"))
if "BULWARK_BIN" not in os.environ:
    found = [p for p in REPO.glob("build*/src/cli/bulwark") if os.access(p, os.X_OK)]
    if not found:
        sys.exit("no bulwark binary: build first, or set BULWARK_BIN")
    os.environ["BULWARK_BIN"] = str(max(found, key=lambda p: p.stat().st_mtime))

from harness import BIN, PASSWORD, Broker, Pki, run  # noqa: E402


def served_serial(port, ca):
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return format(int.from_bytes(_serial_der(tls.getpeercert(binary_form=True)), "big"), "X")


def _serial_der(der):
    """The serialNumber of a DER certificate (TBSCertificate's second field, after an optional [0] version)."""
    def header(at):
        tag, length = der[at], der[at + 1]
        at += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(der[at:at + n], "big")
            at += n
        return tag, at, length
    _, at, _ = header(0)          # Certificate
    _, at, _ = header(at)         # TBSCertificate
    tag, inner, length = header(at)
    if tag == 0xA0:               # [0] version
        at = inner + length
    _, inner, length = header(at)
    return der[inner:inner + length]


def main():
    reloads = int(os.environ.get("BENCH_RELOADS", "5"))
    root = Path(tempfile.mkdtemp(prefix="bulwark-reload-bench-"))
    try:
        pki = Pki(root, clients=())
        broker = Broker(root, pki).start()
        port = broker.ports["SSL"]
        latencies = []
        try:
            for _ in range(reloads):
                run(BIN, "pki", "renew", "broker-1", "--dir", pki.dir)
                staging = root / "staging"
                run(BIN, "pki", "export", "broker-1", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir,
                    "--out", staging, "--force")
                wanted = run("openssl", "x509", "-in", pki.dir / "issued/broker-1/cert.pem", "-noout",
                             "-serial").stdout.strip().removeprefix("serial=").lstrip("0")
                keystore, _ = pki.pkcs12("broker-1")
                started = time.monotonic()
                os.replace(staging / "broker-1.keystore.p12", keystore)
                while served_serial(port, pki.ca).lstrip("0") != wanted:
                    if time.monotonic() - started > 10:
                        sys.exit("the renewed keystore was not served within 10 s")
                latencies.append((time.monotonic() - started) * 1000)
                time.sleep(0.5)
        finally:
            broker.stop()
        print("renewed keystore file -> first handshake with the new serial, ms:",
              ", ".join(f"{ms:.0f}" for ms in latencies))
        median = statistics.median(latencies)
        print(f"median {median:.0f} ms; the watcher waits 250 ms of quiet before it reads the files, so "
              f"{median - 250:.0f} ms is the reload and the first handshake after it")
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
