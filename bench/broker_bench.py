#!/usr/bin/python3
"""Broker benchmark: one real `bulwark broker` with PLAINTEXT, SSL and MTLS listeners on loopback, driven
by bulwark_loadgen (librdkafka). In the same run, for each listener: produce MB/s with per-message latency,
consume MB/s, end-to-end latency at a moderate rate, and broker CPU-seconds per GB; then the TLS/PLAINTEXT
ratios, memory per idle TLS connection, and TLS consume MB/s as a fraction of one core's AES-GCM speed.

Builds nothing. Finds:
  BULWARK_BIN        the bulwark binary   (default: newest build*/src/cli/bulwark)
  BULWARK_LOADGEN    the load generator   (default: newest build*/bench/loadgen/bulwark_loadgen)
Knobs (environment): BENCH_MESSAGES (200000), BENCH_SIZE (1024), BENCH_REPS (2, best rep is reported),
  BENCH_E2E_RATE (2000 msg/s), BENCH_E2E_SECONDS (4), BENCH_CONNECTIONS (2000), BENCH_LISTENERS
  (PLAINTEXT,SSL,MTLS), BENCH_KEEP=1 keeps the temp dir.

The broker runs with log.flush.interval.messages at its default: no fsync per message (the page cache
holds the log; Kafka's own default). Not a test: numbers to look at. Exit status 0 unless something broke.
"""
import concurrent.futures
import json
import os
import re
import resource
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def newest(pattern):
    found = [p for p in REPO.glob(pattern) if p.is_file() and os.access(p, os.X_OK)]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


if "BULWARK_BIN" not in os.environ:
    b = newest("build*/src/cli/bulwark")
    if b:
        os.environ["BULWARK_BIN"] = b
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402  (reads BULWARK_BIN at import)

LOADGEN = os.environ.get("BULWARK_LOADGEN") or newest("build*/bench/loadgen/bulwark_loadgen")
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200000"))
SIZE = int(os.environ.get("BENCH_SIZE", "1024"))
REPS = int(os.environ.get("BENCH_REPS", "2"))
E2E_RATE = int(os.environ.get("BENCH_E2E_RATE", "2000"))
E2E_SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "4"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "2000"))
LISTENERS = os.environ.get("BENCH_LISTENERS", "PLAINTEXT,SSL,MTLS").split(",")
TICKS = os.sysconf("SC_CLK_TCK")

TARGET_PRODUCE = 0.85
TARGET_CONSUME = 0.75
TARGET_KIB_PER_CONN = 64


def say(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------- /proc
def cpu_seconds(pid):
    """utime + stime of a process in seconds (fields 14 and 15 of /proc/pid/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


# ---------------------------------------------------------------------------------------------- loadgen
def loadgen(mode, broker, listener, topic, *args, timeout=300):
    cmd = [LOADGEN, mode, "--bootstrap", broker.bootstrap(listener), "--topic", topic, *map(str, args)]
    if listener != "PLAINTEXT":
        cert, key, ca = broker.pki.pem("admin-1")
        cmd += ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={ca}"]
        if listener == "MTLS":
            cmd += ["-X", f"ssl.certificate.location={cert}", "-X", f"ssl.key.location={key}"]
    pid = broker.proc.pid
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = cpu_seconds(pid), time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    cpu1, t1 = cpu_seconds(pid), time.time()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen {mode} on {listener} gave no JSON (exit {result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr[-3000:]}")
    out = json.loads(lines[-1])
    out["exit"] = result.returncode
    out["broker_cpu_s"] = cpu1 - cpu0
    out["client_cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    out["wall_s"] = t1 - t0
    if result.returncode != 0:
        say(f"  ! loadgen {mode} on {listener} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return out


def create_topics(broker, names):
    """CreateTopics through confluent-kafka's AdminClient; falls back on auto-creation by the producer."""
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        say("  (confluent_kafka not importable: topics are auto-created on first produce)")
        return
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
    futures = admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names],
                                  operation_timeout=10)
    for name, f in futures.items():
        try:
            f.result(timeout=30)
        except Exception as e:  # noqa: BLE001 (already exists or auto-created: fine for a benchmark)
            say(f"  create topic {name}: {e}")


# ---------------------------------------------------------------------------------------------- idle TLS
def api_versions_v0(correlation_id):
    payload = struct.pack(">hhi", 18, 0, correlation_id) + struct.pack(">h", 5) + b"bench"
    return struct.pack(">i", len(payload)) + payload


def recv_frame(sock):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by broker")
            data += chunk
        return data
    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def tls_context(broker):
    cert, key, ca = broker.pki.pem("admin-1")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def negotiated_cipher(broker):
    ctx = tls_context(broker)
    with socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(api_versions_v0(1))
            recv_frame(s)
            return s.cipher(), s.version()


def idle_tls_memory(broker, count):
    """Opens `count` mTLS connections, each with a full handshake and one ApiVersions round trip, keeps them
    open, and returns (opened, rss_before_kib, rss_after_kib, seconds, error)."""
    ctx = tls_context(broker)
    pid = broker.proc.pid
    time.sleep(0.5)
    before = rss_kib(pid)
    socks, errors = [], []

    def open_one(i):
        raw = socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=30)
        try:
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(api_versions_v0(i + 1))
            recv_frame(s)
            return s
        except BaseException:
            raw.close()
            raise

    t0 = time.time()
    # 16 at a time: on a busy 2-core machine one-by-one handshakes spend most of their time waiting.
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for f in [pool.submit(open_one, i) for i in range(count)]:
            try:
                socks.append(f.result())
            except (OSError, ssl.SSLError, ConnectionError) as e:
                errors.append(e)
    error = f"{len(errors)} of {count} failed, first: {errors[0]}" if errors else None
    seconds = time.time() - t0
    time.sleep(1.0)
    after = rss_kib(pid)
    # Check that the broker still holds them: one more round trip on the first and the last.
    alive = 0
    for s in (socks[:1] + socks[-1:]) if socks else []:
        try:
            s.sendall(api_versions_v0(99999))
            recv_frame(s)
            alive += 1
        except (OSError, ssl.SSLError, ConnectionError):
            pass
    opened = len(socks)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    return opened, before, after, seconds, error, alive


# ---------------------------------------------------------------------------------------------- openssl
def openssl_gcm_mb_s(cipher_name):
    """One core's AES-GCM speed on 16 KiB blocks from `openssl speed` in MB/s (10^6 bytes)."""
    algo = "aes-128-gcm" if "128" in cipher_name else "aes-256-gcm"
    if "CHACHA" in cipher_name.upper():
        algo = "chacha20-poly1305"
    try:
        r = subprocess.run(["openssl", "speed", "-evp", algo, "-bytes", "16384", "-seconds", "2"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return algo, None, str(e)
    for line in r.stdout.splitlines():
        # e.g. "AES-128-GCM    3953385.47k" (1000s of bytes per second)
        m = re.match(r"^\s*(\S+)\s+([\d.]+)k\s*$", line)
        if m:
            return algo, float(m.group(2)) / 1000.0, None
    return algo, None, r.stdout[-500:] + r.stderr[-500:]


# ---------------------------------------------------------------------------------------------- main
def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main():
    if not LOADGEN or not os.access(LOADGEN, os.X_OK):
        say("no bulwark_loadgen: build it (ninja -C build bulwark_loadgen) or set BULWARK_LOADGEN")
        return 2
    if not os.access(harness.BIN, os.X_OK):
        say(f"no bulwark binary at {harness.BIN}: build it or set BULWARK_BIN")
        return 2
    # The broker inherits this limit: it needs one fd per idle connection too.
    nofile = raise_nofile(CONNECTIONS * 2 + 256)
    say(f"bulwark: {harness.BIN}\nloadgen: {LOADGEN}")
    say(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (shared machine: numbers are noisy); "
        f"RLIMIT_NOFILE {nofile}")
    say(f"{MESSAGES} x {SIZE} B messages, acks=1, compression none, best of {REPS} reps; "
        f"e2e at {E2E_RATE} msg/s for {E2E_SECONDS:.0f} s (linger.ms=0); MB = 10^6 bytes of message values")

    root = Path(tempfile.mkdtemp(prefix="bulwark-bench."))
    broker = None
    results = {}
    status = 0
    try:
        pki = harness.Pki(root)
        broker = harness.Broker(root, pki)
        # Default flush policy: no fsync per message (the harness sets 1 for its durability tests).
        broker.props.pop("log.flush.interval.messages", None)
        broker.start()
        pid = broker.proc.pid
        say(f"broker pid {pid}, listeners {broker.ports}; log.flush.interval.messages left at default "
            f"(no fsync per message)")
        create_topics(broker, [f"bench-{ln.lower()}" for ln in LISTENERS] + [f"{v}-{ln.lower()}" for ln in LISTENERS for v in ("e2e", "e2e_nagle")])
        cipher, version = negotiated_cipher(broker)
        say(f"TLS: {version} {cipher[0]} (as negotiated with a Python/OpenSSL client; librdkafka uses the same "
            f"OpenSSL defaults)")

        for ln in LISTENERS:
            results[ln] = {"produce": [], "consume": [], "consume_group": []}
        # Interleave listeners so that the machine's background load hits them alike.
        for rep in range(REPS):
            for ln in LISTENERS:
                topic = f"bench-{ln.lower()}"
                p = loadgen("produce", broker, ln, topic, "--messages", MESSAGES, "--size", SIZE, "--acks", "1",
                            "--compression", "none")
                results[ln]["produce"].append(p)
                say(f"  rep {rep + 1} {ln:9s} produce {p['mb_per_s']:8.1f} MB/s  p50 {p['latency_us']['p50'] / 1000:7.1f} ms"
                    f"  p99 {p['latency_us']['p99'] / 1000:7.1f} ms  broker cpu {p['broker_cpu_s']:.2f} s  client cpu {p['client_cpu_s']:.2f} s")
            for ln in LISTENERS:
                topic = f"bench-{ln.lower()}"
                c = loadgen("consume", broker, ln, topic, "--messages", MESSAGES)
                results[ln]["consume"].append(c)
                say(f"  rep {rep + 1} {ln:9s} consume {c['mb_per_s']:8.1f} MB/s  broker cpu {c['broker_cpu_s']:.2f} s  client cpu {c['client_cpu_s']:.2f} s")
                # The same read as a consumer-group member: FindCoordinator, JoinGroup, SyncGroup, then fetches.
                g = loadgen("consume", broker, ln, topic, "--messages", MESSAGES, "--group", f"bench-{ln.lower()}-{rep}")
                results[ln]["consume_group"].append(g)
                say(f"  rep {rep + 1} {ln:9s} consume in a group {g['mb_per_s']:8.1f} MB/s  broker cpu {g['broker_cpu_s']:.2f} s"
                    f"  (join to last record {g['seconds_with_start']:.2f} s)")
        # End-to-end latency twice: librdkafka's defaults (Nagle on: over TLS a request leaves as several
        # TLS records, and the later ones wait for the broker's delayed ACK of the first) and with
        # socket.nagle.disable=true (what Kafka's Java clients do: TCP_NODELAY).
        for ln in LISTENERS:
            n = max(1, int(E2E_RATE * E2E_SECONDS))
            for variant, extra in (("e2e", ["-X", "socket.nagle.disable=true"]), ("e2e_nagle", [])):
                e = loadgen("e2e", broker, ln, f"{variant}-{ln.lower()}", "--messages", n, "--size", SIZE,
                            "--rate", E2E_RATE, "--acks", "1", "--linger-ms", "0", *extra)
                results[ln][variant] = e
                say(f"  {ln:9s} e2e at {E2E_RATE} msg/s, Nagle {'off' if extra else 'on (default)'}: "
                    f"p50 {e['e2e_us']['p50'] / 1000:.2f} ms  p99 {e['e2e_us']['p99'] / 1000:.2f} ms  "
                    f"({e['received']}/{e['messages']} received)")

        # ---- idle TLS connections
        opened, before, after, secs, err, alive = idle_tls_memory(broker, CONNECTIONS)
        per_conn = (after - before) / opened if opened else None
        results["idle_tls"] = {"opened": opened, "rss_before_kib": before, "rss_after_kib": after,
                               "kib_per_connection": per_conn, "seconds": secs, "error": err,
                               "still_answering_of_2": alive, "broker_threads": threads(pid)}
        time.sleep(0.5)
        if not broker.alive():
            raise RuntimeError("broker died during the connection test")

        # ---- openssl speed
        algo, gcm, gcm_err = openssl_gcm_mb_s(cipher[0])
        results["openssl"] = {"algo": algo, "mb_per_s_16k": gcm, "error": gcm_err}
    except Exception as e:  # noqa: BLE001
        say(f"\nFAILED: {type(e).__name__}: {e}")
        if broker is not None:
            say("--- broker log (tail) ---\n" + broker.log_text()[-3000:])
        status = 1
    finally:
        if broker is not None:
            broker.stop()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"kept {root}")

    report(results)
    return status


def best(runs, key="mb_per_s"):
    ok = [r for r in runs if r.get("exit") == 0] or runs
    return max(ok, key=lambda r: r.get(key, 0)) if ok else None


def report(results):
    listeners = [ln for ln in LISTENERS if ln in results and results[ln]["produce"]]
    if not listeners:
        return
    say("\n== Broker benchmark (best of %d reps; broker CPU-s per GB of message values) ==" % REPS)
    say(f"{'listener':10s} {'prod MB/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s} {'max ms':>7s} {'cpu s/GB':>8s} "
        f"{'cons MB/s':>9s} {'cpu s/GB':>8s} {'e2e p50':>8s} {'e2e p99':>8s} {'Nagle p50':>9s} {'Nagle p99':>9s}")
    summary = {}
    for ln in listeners:
        p = best(results[ln]["produce"])
        c = best(results[ln]["consume"]) if results[ln]["consume"] else None
        e = results[ln].get("e2e")
        en = results[ln].get("e2e_nagle")
        p_gb = p["delivered"] * p["size"] / 1e9
        p_cpu = p["broker_cpu_s"] / p_gb if p_gb else None
        c_cpu = c["broker_cpu_s"] / (c["bytes"] / 1e9) if c and c["bytes"] else None
        summary[ln] = {"produce": p["mb_per_s"], "consume": c["mb_per_s"] if c else None}
        say(f"{ln:10s} {p['mb_per_s']:9.1f} {p['latency_us']['p50'] / 1000:7.1f} {p['latency_us']['p99'] / 1000:7.1f} "
            f"{p['latency_us']['max'] / 1000:7.1f} {fmt(p_cpu, '8.2f')} {fmt(c and c['mb_per_s'], '9.1f')} "
            f"{fmt(c_cpu, '8.2f')} {fmt(e and e['e2e_us']['p50'] / 1000, '8.2f')} "
            f"{fmt(e and e['e2e_us']['p99'] / 1000, '8.2f')} {fmt(en and en['e2e_us']['p50'] / 1000, '9.2f')} "
            f"{fmt(en and en['e2e_us']['p99'] / 1000, '9.2f')}")
    say("  (produce latency: produce() to delivery report with the producer running flat out, so it includes "
        "time queued in librdkafka; e2e in ms at the moderate rate with TCP_NODELAY on the client, 'Nagle' with "
        "librdkafka's default socket.nagle.disable=false)")
    say("\nclient (bulwark_loadgen) CPU-s per GB, same runs: " + ", ".join(
        f"{ln} produce {best(results[ln]['produce'])['client_cpu_s'] / (best(results[ln]['produce'])['delivered'] * SIZE / 1e9):.2f}"
        + (f" consume {best(results[ln]['consume'])['client_cpu_s'] / (best(results[ln]['consume'])['bytes'] / 1e9):.2f}"
           if results[ln]["consume"] and best(results[ln]["consume"])["bytes"] else "")
        for ln in listeners))
    say("  (client and broker share the same 2 cores: the client's TLS work slows the broker's numbers too)")
    base = summary.get("PLAINTEXT")
    if base:
        say("\n== TLS / PLAINTEXT ==")
        for ln in listeners:
            if ln == "PLAINTEXT":
                continue
            rp = summary[ln]["produce"] / base["produce"] if base["produce"] else None
            rc = (summary[ln]["consume"] / base["consume"]) if base["consume"] and summary[ln]["consume"] else None
            say(f"{ln:10s} produce {fmt(rp, '.2f')} (target >= {TARGET_PRODUCE}: "
                f"{'met' if rp is not None and rp >= TARGET_PRODUCE else 'NOT met'})   "
                f"consume {fmt(rc, '.2f')} (target >= {TARGET_CONSUME}: "
                f"{'met' if rc is not None and rc >= TARGET_CONSUME else 'NOT met'})")
    idle = results.get("idle_tls")
    if idle:
        k = idle["kib_per_connection"]
        say("\n== Idle mTLS connections ==")
        say(f"{idle['opened']} connections (handshake + ApiVersions each) in {idle['seconds']:.1f} s; broker RSS "
            f"{idle['rss_before_kib']} -> {idle['rss_after_kib']} KiB = {fmt(k, '.1f')} KiB per connection "
            f"(target <= {TARGET_KIB_PER_CONN}: {'met' if k is not None and k <= TARGET_KIB_PER_CONN else 'NOT met'}); "
            f"{idle['still_answering_of_2']}/2 probes answered afterwards")
        if idle["error"]:
            say(f"  stopped early: {idle['error']}")
    o = results.get("openssl")
    if o:
        say("\n== Consume in a group (best of reps) ==")
        group_base = best(results["PLAINTEXT"]["consume_group"]) if results.get("PLAINTEXT", {}).get("consume_group") else None
        for ln in LISTENERS:
            if results[ln]["consume_group"]:
                g = best(results[ln]["consume_group"])
                ratio = g["mb_per_s"] / group_base["mb_per_s"] if group_base and group_base["mb_per_s"] else None
                say(f"{ln:10s} {g['mb_per_s']:8.1f} MB/s" + (f"  ({ratio:.2f} of PLAINTEXT)" if ratio and ln != "PLAINTEXT" else ""))
        say("\n== TLS consume vs one core's cipher speed ==")
        if o["mb_per_s_16k"]:
            tls = [ln for ln in ("MTLS", "SSL") if ln in summary and summary[ln]["consume"]]
            say(f"openssl speed -evp {o['algo']} (16 KiB blocks): {o['mb_per_s_16k']:.0f} MB/s on one core")
            for ln in tls:
                say(f"{ln:10s} consume {summary[ln]['consume']:.1f} MB/s = "
                    f"{summary[ln]['consume'] / o['mb_per_s_16k'] * 100:.1f} % of that")
        else:
            say(f"openssl speed failed: {o['error']}")
    out = os.environ.get("BENCH_JSON")
    if out:
        Path(out).write_text(json.dumps(results, indent=1))
        say(f"\nraw results: {out}")


if __name__ == "__main__":
    sys.exit(main())
