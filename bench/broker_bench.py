#!/usr/bin/python3
"""Broker benchmark: one real `bulwark broker` with PLAINTEXT, SSL and MTLS listeners on loopback, driven
by bulwark_loadgen (librdkafka). In the same run, for each listener: produce MB/s with per-message latency,
consume MB/s, end-to-end latency at a moderate rate, and broker CPU-seconds per GB; then the TLS/PLAINTEXT
ratios, memory per idle TLS connection, and TLS consume MB/s as a fraction of one core's AES-GCM speed.
It explains itself against floors measured in the same run: the broker on one core and the load generator on
another (taskset-style affinity when there are >= 2 CPUs), broker-only CPU-s/GB per direction and listener,
`openssl speed` AES-GCM (the cipher floor) and bench/floors.c (memcpy, socketpair and loopback TCP copies),
the issue's goal table with met / not met, time series of throughput (the broker's /metrics counters) and
e2e latency (1 s slices) drawn as PNGs by bench/plots.py, and a results file compared with the previous one.

Builds nothing. Finds:
  BULWARK_BIN        the bulwark binary   (default: newest build*/src/cli/bulwark)
  BULWARK_LOADGEN    the load generator   (default: newest build*/bench/loadgen/bulwark_loadgen)
Knobs (environment): BENCH_MESSAGES (200000), BENCH_SIZE (1024), BENCH_REPS (2, best rep is reported),
  BENCH_E2E_RATE (2000 msg/s), BENCH_E2E_SECONDS (4), BENCH_CONNECTIONS (2000), BENCH_LISTENERS
  (PLAINTEXT,SSL,MTLS), BENCH_KEEP=1 keeps the temp dir,
  BENCH_PIN (auto: broker on the first allowed CPU, client on the second when there are two; off),
  BENCH_SAMPLE_MS (200: /metrics + /proc sampling period), BENCH_E2E_SLICES (6 one-second e2e runs per listener
  for the latency-over-time plot; 0 skips), BENCH_FLOOR_MB (1024), BENCH_TLS_BENCH (1: also run tls_bench's
  ECDSA full handshake), BENCH_OUT_DIR (plots go to BENCH_OUT_DIR/plots; default a new /tmp/bulwark-bench-*),
  BENCH_RESULTS_DIR (bench/results: one JSON per run, compared with the newest one already there; "" = none),
  BENCH_JSON=file (raw results as well).

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
import threading
import time
import urllib.request
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
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "10000"))
LISTENERS = os.environ.get("BENCH_LISTENERS", "PLAINTEXT,SSL,MTLS").split(",")
TICKS = os.sysconf("SC_CLK_TCK")
PIN = os.environ.get("BENCH_PIN", "auto")
SAMPLE_S = float(os.environ.get("BENCH_SAMPLE_MS", "200")) / 1000.0
E2E_SLICES = int(os.environ.get("BENCH_E2E_SLICES", "6"))
FLOOR_MB = int(os.environ.get("BENCH_FLOOR_MB", "1024"))
RUN_TLS_BENCH = os.environ.get("BENCH_TLS_BENCH", "1") == "1"

# The performance issue's goals.
TARGET_PRODUCE = 0.9           # TLS / PLAINTEXT MB/s, produce
TARGET_CONSUME = 0.85          # TLS / PLAINTEXT MB/s, consume
TARGET_KIB_PER_CONN = 24       # idle mTLS connection, with 10,000 open
TARGET_PT_PRODUCE_CPU = 0.5    # broker CPU-s per GB, PLAINTEXT produce
TARGET_TLS_EXTRA_FLOORS = 1.5  # TLS consume CPU-s/GB <= PLAINTEXT consume + 1.5 x cipher floor
TARGET_E2E_P99_MS = 2.0        # e2e p99 at 2,000 msg/s over mTLS, Nagle off
TARGET_HANDSHAKES = 2000       # full mTLS handshakes (ECDSA P-256) per second per core

# Set by main(): the CPUs the broker and the client run on (None: not pinned), and the sampler.
PINNING = {"broker": None, "client": None, "how": "not pinned"}
TIMELINE = None


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
    timeline = TIMELINE if TIMELINE is not None and TIMELINE.broker is broker else None
    scrapes0 = timeline.scrapes if timeline else 0
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = cpu_seconds(pid), time.time()
    # The client inherits this process's affinity (the client CPU once main() pinned it).
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    cpu1, t1 = cpu_seconds(pid), time.time()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if timeline:
        timeline.phase(f"{listener} {mode}" + (" group" if "--group" in args else ""), t0, t1)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen {mode} on {listener} gave no JSON (exit {result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr[-3000:]}")
    out = json.loads(lines[-1])
    out["exit"] = result.returncode
    out["broker_cpu_s_raw"] = cpu1 - cpu0
    # Less what the sampler's scrapes of /metrics cost the broker meanwhile (measured on the idle broker).
    out["scrapes"] = (timeline.scrapes - scrapes0) if timeline else 0
    out["broker_cpu_s"] = max(0.0, out["broker_cpu_s_raw"] - out["scrapes"] * (timeline.scrape_cpu_s if timeline else 0))
    out["client_cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    out["wall_s"] = t1 - t0
    if result.returncode != 0:
        say(f"  ! loadgen {mode} on {listener} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return out


def create_topics(broker, names, partitions=1, config=None):
    """CreateTopics through confluent-kafka's AdminClient; falls back on auto-creation by the producer."""
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        say("  (confluent_kafka not importable: topics are auto-created on first produce)")
        return
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1, config=config or {})
                                   for n in names], operation_timeout=10)
    for name, f in futures.items():
        try:
            f.result(timeout=30)
        except Exception as e:  # noqa: BLE001 (already exists or auto-created: fine for a benchmark)
            say(f"  create topic {name}: {e}")


def delete_topic(broker, topic):
    """DeleteTopics, waited for: a run that wrote GBs gives the disk back."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
    admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=60)


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

    t0, cpu0 = time.time(), cpu_seconds(pid)
    # 16 at a time: on a busy 2-core machine one-by-one handshakes spend most of their time waiting.
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for f in [pool.submit(open_one, i) for i in range(count)]:
            try:
                socks.append(f.result())
            except (OSError, ssl.SSLError, ConnectionError) as e:
                errors.append(e)
    error = f"{len(errors)} of {count} failed, first: {errors[0]}" if errors else None
    seconds, handshake_cpu = time.time() - t0, cpu_seconds(pid) - cpu0
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
    return opened, before, after, seconds, error, alive, handshake_cpu


# ---------------------------------------------------------------------------------------------- openssl
def openssl_gcm_mb_s(cipher_name):
    """One core's AES-GCM speed on 16 KiB blocks from `openssl speed` in MB/s (10^6 bytes)."""
    algo = "aes-128-gcm" if "128" in cipher_name else "aes-256-gcm"
    if "CHACHA" in cipher_name.upper():
        algo = "chacha20-poly1305"
    try:
        r = subprocess.run(taskset_prefix("broker") + ["openssl", "speed", "-evp", algo, "-bytes", "16384", "-seconds", "2"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return algo, None, str(e)
    for line in r.stdout.splitlines():
        # e.g. "AES-128-GCM    3953385.47k" (1000s of bytes per second)
        m = re.match(r"^\s*(\S+)\s+([\d.]+)k\s*$", line)
        if m:
            return algo, float(m.group(2)) / 1000.0, None
    return algo, None, r.stdout[-500:] + r.stderr[-500:]


# ---------------------------------------------------------------------------------------------- pinning
def broker_tids(pid):
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def pin(broker):
    """Broker threads on the first allowed CPU, this process (hence the load generator, the idle-connection
    client and the sampler) on the second, when there are at least two; PINNING says what was done."""
    cpus = sorted(os.sched_getaffinity(0))
    if PIN == "off":
        PINNING.update(how=f"not pinned (BENCH_PIN=off; {len(cpus)} CPUs shared by broker and client)")
        return
    if len(cpus) < 2:
        PINNING.update(how=f"not pinned (only {len(cpus)} CPU allowed: broker and client share it)")
        return
    b, c = cpus[0], cpus[1]
    for _ in range(3):  # threads started meanwhile inherit from their creator; go round until none is left
        for tid in broker_tids(broker.proc.pid):
            try:
                os.sched_setaffinity(tid, {b})
            except OSError:
                pass
        time.sleep(0.05)
    os.sched_setaffinity(0, {c})
    stray = [t for t in broker_tids(broker.proc.pid) if os.sched_getaffinity(t) != {b}]
    PINNING.update(broker=b, client=c, how=f"broker on cpu {b} (all {len(broker_tids(broker.proc.pid))} threads"
                   + (f", {len(stray)} NOT pinned" if stray else "") + f"), client (bulwark_loadgen, Python) on cpu {c}"
                   f" (sched_setaffinity, as taskset -c)")


def taskset_prefix(which):
    cpu = PINNING.get(which)
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


# ---------------------------------------------------------------------------------------------- sampling
METRIC_RE = re.compile(r"^(kafka_server_brokertopicmetrics_bytes(?:in|out)_total)(\{[^}]*\})?\s+([0-9.eE+-]+)")


class Timeline(threading.Thread):
    """Samples, every SAMPLE_S: the broker's CPU seconds (/proc/pid/stat) and its bytes-in / bytes-out
    counters (/metrics, all topics). Phases name the loadgen runs by start and end time."""

    def __init__(self, broker, metrics_port):
        super().__init__(daemon=True)
        self.broker, self.url = broker, f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None
        self.samples, self.phases, self.scrapes, self.scrape_cpu_s = [], [], 0, 0.0
        self.stop_event, self.t0, self.error = threading.Event(), time.time(), None

    def counters(self):
        if not self.url:
            return None, None
        try:
            with urllib.request.urlopen(self.url, timeout=5) as answer:
                text = answer.read().decode(errors="replace")
        except OSError as e:
            self.error = str(e)
            return None, None
        self.scrapes += 1
        total, by_topic = {}, {}
        for line in text.splitlines():
            m = METRIC_RE.match(line)
            if m:
                key = "in" if m.group(1).endswith("in_total") else "out"
                (by_topic if m.group(2) and "topic=" in m.group(2) else total)[key] = \
                    (by_topic if m.group(2) and "topic=" in m.group(2) else total).get(key, 0.0) + float(m.group(3))
        src = total or by_topic
        return src.get("in"), src.get("out")

    def measure_scrape_cost(self, n=20):
        """Broker CPU of one scrape of the (nearly idle) broker, subtracted from each run's figure."""
        if not self.url:
            return
        pid = self.broker.proc.pid
        c0 = cpu_seconds(pid)
        for _ in range(n):
            self.counters()
        self.scrape_cpu_s = max(0.0, cpu_seconds(pid) - c0) / n
        self.scrapes = 0

    def run(self):
        pid = self.broker.proc.pid
        while not self.stop_event.is_set():
            t = time.time()
            try:
                cpu = cpu_seconds(pid)
            except OSError:
                return
            b_in, b_out = self.counters()
            self.samples.append({"t": t - self.t0, "cpu_s": cpu, "bytes_in": b_in, "bytes_out": b_out})
            self.stop_event.wait(max(0.0, SAMPLE_S - (time.time() - t)))

    def phase(self, name, t0, t1):
        self.phases.append({"name": name, "start": t0 - self.t0, "end": t1 - self.t0})

    def stop(self):
        self.stop_event.set()
        self.join(timeout=10)
        return {"sample_s": SAMPLE_S, "scrape_cpu_ms": self.scrape_cpu_s * 1000, "samples": self.samples,
                "phases": self.phases, "metrics_error": self.error}


# ---------------------------------------------------------------------------------------------- floors
def copy_floors(work):
    """bench/floors.c compiled here and run on the broker's CPU: memcpy and socket copy CPU-s per GB."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    src = Path(__file__).resolve().parent / "floors.c"
    if cc and src.exists():
        exe = work / "floors"
        r = subprocess.run([cc, "-O2", "-o", str(exe), str(src), "-lpthread"], capture_output=True, text=True)
        if r.returncode == 0:
            r = subprocess.run(taskset_prefix("broker") + [str(exe), str(FLOOR_MB)], capture_output=True,
                               text=True, timeout=300)
            if r.returncode == 0 and r.stdout.strip().startswith("{"):
                out = json.loads(r.stdout.strip().splitlines()[-1])
                out["how"] = "bench/floors.c" + (f" on cpu {PINNING['broker']}" if PINNING["broker"] is not None else "")
                # The page-cache write twice in a row: as the memory was found, then once it is warm.
                out["file_write"] = [file_floor(exe, work) for _ in range(2)]
                return out
            return {"error": f"floors exited {r.returncode}: {r.stderr[-300:]}"}
        return {"error": f"cannot compile bench/floors.c: {r.stderr[-300:]}"}
    # No compiler: dd's copy through a 1 MiB buffer (/dev/zero to /dev/null) as a rough memcpy floor.
    r = subprocess.run(taskset_prefix("broker") + ["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", f"count={FLOOR_MB}"],
                       capture_output=True, text=True)
    m = re.search(r"([\d.]+) s,", r.stderr)
    if m:
        secs = float(m.group(1))
        return {"memcpy": {"1048576": secs / (FLOOR_MB * 1048576 / 1e9)}, "how": "dd bs=1M (no C compiler)"}
    return {"error": "no C compiler and dd gave nothing: " + r.stderr[-200:]}


def file_floor(exe, directory):
    """CPU-s per GB of write() into the page cache (bench/floors.c --file), or None."""
    r = subprocess.run(taskset_prefix("broker") + [str(exe), "--file", str(directory), str(FLOOR_MB)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not r.stdout.strip().startswith("{"):
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])["file_write_cpu_s_per_gb"]


def tls_bench_handshakes():
    """OpenSSL's own floors from build*/bench/tls_bench (in memory, no sockets, ECDSA P-256, TLS 1.3):
    BM_FullMtlsHandshake/0 (client and server on one thread), BM_FullMtlsServerSide (the server's calls
    only: OpenSSL's cost per new mTLS client) and BM_IdleServerConnectionHeap (OpenSSL's heap per idle
    server connection after its handshake)."""
    exe = os.environ.get("TLS_BENCH") or newest("build*/bench/tls_bench")
    if not exe:
        return {"error": "no build*/bench/tls_bench"}
    want = "^(BM_FullMtlsHandshake/0|BM_FullMtlsServerSide|BM_IdleServerConnectionHeap)"
    r = None
    for min_time in ("0.5", "0.5s"):
        try:
            r = subprocess.run(taskset_prefix("broker") + [exe, f"--benchmark_filter={want}",
                               f"--benchmark_min_time={min_time}", "--benchmark_format=json"],
                               capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return {"error": "tls_bench timed out"}
        if r.returncode != 0:
            continue
        try:
            # The /1 variants send root + intermediate + leaf, the chain bulwark pki (and so the harness) writes.
            found = {}
            for b in json.loads(r.stdout)["benchmarks"]:
                parts = b["name"].split("/")
                if parts[0] == "BM_FullMtlsHandshake" or (len(parts) > 1 and parts[1] == "1"):
                    found[parts[0]] = b
        except (ValueError, KeyError):
            continue
        out = {"binary": exe}
        for name, key in (("BM_FullMtlsHandshake", "per_s"), ("BM_FullMtlsServerSide", "server_side_per_s")):
            b = found.get(name)
            if b:
                unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
                # The server-side figure is manual time (the server's thread CPU); the other is CPU time.
                seconds = b["real_time" if name.endswith("ServerSide") else "cpu_time"] * unit
                out[key] = 1.0 / seconds
        heap = found.get("BM_IdleServerConnectionHeap")
        if heap and "kib_per_connection" in heap:
            out["openssl_idle_kib"] = heap["kib_per_connection"]
        return out
    return {"error": f"tls_bench exited {r.returncode if r else '?'}: {(r.stderr if r else '')[-300:]}"}


def git_sha():
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), "diff-index", "--quiet", "HEAD", "--"],
                               capture_output=True, timeout=30).returncode != 0
        return sha or "unknown", dirty
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", False


# ---------------------------------------------------------------------------------------------- main
def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def out_dir():
    d = os.environ.get("BENCH_OUT_DIR")
    if d:
        Path(d).mkdir(parents=True, exist_ok=True)
        return Path(d)
    return Path(tempfile.mkdtemp(prefix=time.strftime("bulwark-bench-%Y%m%dT%H%M%S-", time.gmtime()), dir="/tmp"))


def main():
    global TIMELINE
    if not LOADGEN or not os.access(LOADGEN, os.X_OK):
        say("no bulwark_loadgen: build it (ninja -C build bulwark_loadgen) or set BULWARK_LOADGEN")
        return 2
    if not os.access(harness.BIN, os.X_OK):
        say(f"no bulwark binary at {harness.BIN}: build it or set BULWARK_BIN")
        return 2
    # The broker inherits this limit (it is spawned after): one fd per idle connection on each side.
    want = CONNECTIONS + 512
    nofile = raise_nofile(want)
    connections = CONNECTIONS
    if nofile < want:
        connections = max(0, nofile - 512)
        say(f"! RLIMIT_NOFILE cannot go above {nofile} (hard limit; raise it with `ulimit -Hn` as root or in "
            f"limits.conf): the idle-connection test opens {connections} instead of {CONNECTIONS}")
    out = out_dir()
    sha, dirty = git_sha()
    say(f"bulwark: {harness.BIN}\nloadgen: {LOADGEN}\ncommit {sha}{' (+ uncommitted changes)' if dirty else ''}, "
        f"output in {out}")
    say(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (shared machine: numbers are noisy); "
        f"RLIMIT_NOFILE {nofile}")
    say(f"{MESSAGES} x {SIZE} B messages, acks=1, compression none, best of {REPS} reps; "
        f"e2e at {E2E_RATE} msg/s for {E2E_SECONDS:.0f} s (linger.ms=0); MB = 10^6 bytes of message values")

    root = Path(tempfile.mkdtemp(prefix="bulwark-bench."))
    broker = None
    results = {"meta": {"commit": sha, "dirty": dirty, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0], "messages": MESSAGES,
                        "size": SIZE, "reps": REPS, "e2e_rate": E2E_RATE, "listeners": LISTENERS,
                        "connections_wanted": CONNECTIONS, "nofile": nofile}}
    status = 0
    try:
        pki = harness.Pki(root)
        metrics_port = harness.free_port()
        broker = harness.Broker(root, pki, extra={"metrics.listener": f"http://127.0.0.1:{metrics_port}"})
        # Default flush policy: no fsync per message (the harness sets 1 for its durability tests).
        broker.props.pop("log.flush.interval.messages", None)
        broker.start()
        pid = broker.proc.pid
        pin(broker)
        results["meta"]["pinning"] = dict(PINNING)
        say(f"broker pid {pid}, listeners {broker.ports}, metrics :{metrics_port}; log.flush.interval.messages left "
            f"at default (no fsync per message)")
        say(f"pinning: {PINNING['how']}")
        create_topics(broker, [f"bench-{ln.lower()}" for ln in LISTENERS] +
                      [f"{v}-{ln.lower()}" for ln in LISTENERS for v in ("e2e", "e2e_nagle", "e2e_slices")])
        cipher, version = negotiated_cipher(broker)
        results["meta"]["tls"] = {"version": version, "cipher": cipher[0]}
        say(f"TLS: {version} {cipher[0]} (as negotiated with a Python/OpenSSL client; librdkafka uses the same "
            f"OpenSSL defaults)")
        TIMELINE = Timeline(broker, metrics_port)
        TIMELINE.measure_scrape_cost()
        TIMELINE.start()
        say(f"sampling broker CPU and /metrics bytes in/out every {SAMPLE_S * 1000:.0f} ms; one scrape costs the "
            f"broker {TIMELINE.scrape_cpu_s * 1000:.2f} CPU-ms, subtracted from each run's broker CPU")

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
        # Latency over time: the loadgen reports percentiles only at its end, so one-second slices (Nagle off).
        for ln in LISTENERS:
            slices = []
            for i in range(E2E_SLICES):
                t0 = time.time() - TIMELINE.t0
                e = loadgen("e2e", broker, ln, f"e2e_slices-{ln.lower()}", "--messages", E2E_RATE, "--size", SIZE,
                            "--rate", E2E_RATE, "--acks", "1", "--linger-ms", "0", "-X", "socket.nagle.disable=true")
                slices.append({"start": t0, "end": time.time() - TIMELINE.t0, "p50_ms": e["e2e_us"]["p50"] / 1000,
                               "p99_ms": e["e2e_us"]["p99"] / 1000, "max_ms": e["e2e_us"]["max"] / 1000,
                               "received": e["received"], "messages": e["messages"]})
            results[ln]["e2e_slices"] = slices
            if slices:
                say(f"  {ln:9s} e2e in {len(slices)} one-second slices, p99 ms: "
                    + " ".join(f"{s['p99_ms']:.2f}" for s in slices))
        results["timeline"] = TIMELINE.stop()

        # ---- idle TLS connections (the sampler is stopped: the broker CPU here is the handshakes')
        opened, before, after, secs, err, alive, hs_cpu = idle_tls_memory(broker, connections)
        per_conn = (after - before) / opened if opened else None
        results["idle_tls"] = {"opened": opened, "wanted": CONNECTIONS, "rss_before_kib": before, "rss_after_kib": after,
                               "kib_per_connection": per_conn, "seconds": secs, "error": err,
                               "still_answering_of_2": alive, "broker_threads": threads(pid),
                               "broker_cpu_s": hs_cpu, "handshakes_per_cpu_s": opened / hs_cpu if hs_cpu > 0 else None}
        time.sleep(0.5)
        if not broker.alive():
            raise RuntimeError("broker died during the connection test")
    except Exception as e:  # noqa: BLE001
        say(f"\nFAILED: {type(e).__name__}: {e}")
        if broker is not None:
            say("--- broker log (tail) ---\n" + broker.log_text()[-3000:])
        status = 1
    finally:
        if TIMELINE is not None and "timeline" not in results:
            results["timeline"] = TIMELINE.stop()
        if broker is not None:
            broker.stop()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"kept {root}")

    # ---- floors, with the broker gone (they run on the broker's CPU)
    cipher_name = results["meta"].get("tls", {}).get("cipher", "AES128-GCM")
    algo, gcm, gcm_err = openssl_gcm_mb_s(cipher_name)
    results["openssl"] = {"algo": algo, "mb_per_s_16k": gcm, "error": gcm_err}
    with tempfile.TemporaryDirectory() as work:
        results["floors"] = copy_floors(Path(work))
    results["tls_bench"] = tls_bench_handshakes() if RUN_TLS_BENCH else {"error": "skipped (BENCH_TLS_BENCH=0)"}

    summary = report(results)
    results["summary"] = summary
    save_and_compare(results, out)
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import plots  # noqa: E402
        paths = plots.draw(results, out / "plots")
        say(f"\nplots ({len(paths)}): {out / 'plots'}\n" + "\n".join(f"  {p}" for p in paths))
    except ImportError as e:
        say(f"\nno plots: {e} (apt-get install -y python3-matplotlib, and run with /usr/bin/python3)")
    except Exception as e:  # noqa: BLE001 (a plot must not lose the numbers)
        say(f"\nplots failed: {type(e).__name__}: {e}")
    out_json = os.environ.get("BENCH_JSON")
    if out_json:
        Path(out_json).write_text(json.dumps(results, indent=1))
        say(f"raw results: {out_json}")
    return status


def best(runs, key="mb_per_s"):
    ok = [r for r in runs if r.get("exit") == 0] or runs
    return max(ok, key=lambda r: r.get(key, 0)) if ok else None


def per_gb(run, cpu_key="broker_cpu_s"):
    if not run:
        return None
    gb = (run["delivered"] * run["size"] if "delivered" in run else run.get("bytes", 0)) / 1e9
    return run[cpu_key] / gb if gb else None


def verdict(ok):
    return "-" if ok is None else ("met" if ok else "NOT met")


def report(results):
    """Prints the tables and returns the flat summary that results files keep and compare."""
    listeners = [ln for ln in LISTENERS if ln in results and results[ln]["produce"]]
    summary = {}
    if not listeners:
        return summary
    say(f"\n== Broker benchmark (best of {REPS} reps; {PINNING['how']}) ==")
    say(f"{'listener':10s} {'prod MB/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s} {'max ms':>7s} {'cpu s/GB':>8s} "
        f"{'cons MB/s':>9s} {'cpu s/GB':>8s} {'e2e p50':>8s} {'e2e p99':>8s} {'Nagle p50':>9s} {'Nagle p99':>9s}")
    m = {}
    for ln in listeners:
        p = best(results[ln]["produce"])
        c = best(results[ln]["consume"]) if results[ln]["consume"] else None
        e = results[ln].get("e2e")
        en = results[ln].get("e2e_nagle")
        # CPU per GB: the lowest over the reps (the steadier figure on a shared machine), not the fastest rep's.
        p_cpu = min((v for v in map(per_gb, results[ln]["produce"]) if v is not None), default=None)
        c_cpu = min((v for v in map(per_gb, results[ln]["consume"]) if v is not None), default=None)
        m[ln] = {"produce": p["mb_per_s"], "consume": c["mb_per_s"] if c else None, "p_cpu": p_cpu, "c_cpu": c_cpu,
                 "e2e_p99": e and e["e2e_us"]["p99"] / 1000}
        summary.update({f"{ln}.produce_mb_s": p["mb_per_s"], f"{ln}.consume_mb_s": m[ln]["consume"],
                        f"{ln}.produce_cpu_s_per_gb": p_cpu, f"{ln}.consume_cpu_s_per_gb": c_cpu,
                        f"{ln}.e2e_p99_ms": m[ln]["e2e_p99"], f"{ln}.e2e_nagle_p99_ms": en and en["e2e_us"]["p99"] / 1000})
        say(f"{ln:10s} {p['mb_per_s']:9.1f} {p['latency_us']['p50'] / 1000:7.1f} {p['latency_us']['p99'] / 1000:7.1f} "
            f"{p['latency_us']['max'] / 1000:7.1f} {fmt(p_cpu, '8.2f')} {fmt(c and c['mb_per_s'], '9.1f')} "
            f"{fmt(c_cpu, '8.2f')} {fmt(e and e['e2e_us']['p50'] / 1000, '8.2f')} "
            f"{fmt(e and e['e2e_us']['p99'] / 1000, '8.2f')} {fmt(en and en['e2e_us']['p50'] / 1000, '9.2f')} "
            f"{fmt(en and en['e2e_us']['p99'] / 1000, '9.2f')}")
    say("  (MB/s: the fastest rep; cpu s/GB: broker-only CPU (utime+stime of the broker process, less the sampler's "
        "/metrics scrapes) per GB of message values, the lowest rep; produce latency: produce() to delivery report "
        "flat out, so it includes time queued in librdkafka; e2e in ms at the moderate rate with TCP_NODELAY on the "
        "client, 'Nagle' with librdkafka's default)")
    say("client (bulwark_loadgen) CPU-s per GB, same runs: " + ", ".join(
        f"{ln} produce {fmt(per_gb(best(results[ln]['produce']), 'client_cpu_s'), '.2f')}"
        f" consume {fmt(per_gb(best(results[ln]['consume']), 'client_cpu_s'), '.2f')}" for ln in listeners))

    # ---- floors
    o, fl = results.get("openssl") or {}, results.get("floors") or {}
    cipher_floor = 1000.0 / o["mb_per_s_16k"] if o.get("mb_per_s_16k") else None   # s/GB = 1 / (GB/s)
    memcpy_floor = (fl.get("memcpy") or {}).get("16384") or (fl.get("memcpy") or {}).get("1048576")
    tcp = fl.get("tcp") or {}
    tcp_floor = (tcp["send_cpu_s_per_gb"] + tcp["recv_cpu_s_per_gb"]) if tcp else None
    say("\n== Floors (same run, on the broker's CPU, broker stopped) ==")
    if cipher_floor:
        say(f"cipher:  openssl speed -evp {o['algo']}, 16 KiB blocks: {o['mb_per_s_16k']:.0f} MB/s = "
            f"{cipher_floor:.3f} CPU-s/GB (the negotiated cipher)")
    else:
        say(f"cipher:  openssl speed failed: {o.get('error')}")
    if fl.get("error"):
        say(f"copies:  {fl['error']}")
    else:
        say(f"memcpy:  " + ", ".join(f"{int(k) // 1024} KiB {v:.3f}" for k, v in (fl.get("memcpy") or {}).items())
            + f" CPU-s/GB ({fl.get('how')})")
        fw = [v for v in (fl.get("file_write") or []) if v is not None]
        if fw:
            say(f"page cache: write() of 1 MiB blocks into a new file {fw[0]:.3f} CPU-s/GB as found"
                + (f", {fw[1]:.3f} at once again" if len(fw) > 1 else "")
                + " (on a VM, memory the guest has not touched lately also costs the host's page faults)")
        for kind, label in (("unix", "socketpair"), ("tcp", "loopback TCP")):
            f = fl.get(kind)
            if f:
                say(f"{label + ':':13s} send {f['send_cpu_s_per_gb']:.3f} + receive {f['recv_cpu_s_per_gb']:.3f} CPU-s/GB "
                    f"({f['gb_per_s']:.2f} GB/s, 64 KiB writes; on loopback the sender's CPU also runs the receive path)")
    fw = [v for v in (fl.get("file_write") or []) if v is not None]
    summary.update({"floor.page_cache_write_s_per_gb": fw[0] if fw else None,
                    "floor.page_cache_write_warm_s_per_gb": fw[1] if len(fw) > 1 else None})
    summary.update({"floor.cipher_s_per_gb": cipher_floor, "floor.memcpy_16k_s_per_gb": memcpy_floor,
                    "floor.tcp_loopback_s_per_gb": tcp_floor})

    # ---- ratios
    say("\n== Broker CPU-s/GB against the floors ==")
    say(f"{'listener':10s} {'direction':9s} {'cpu s/GB':>8s} {'x memcpy':>9s} {'x TCP lo':>9s} {'TLS extra':>9s} "
        f"{'x cipher':>9s} {'MB/s vs PT':>10s}")
    base = m.get("PLAINTEXT")
    for ln in listeners:
        for d, key, cpu_key in (("produce", "produce", "p_cpu"), ("consume", "consume", "c_cpu")):
            cpu = m[ln][cpu_key]
            extra = (cpu - base[cpu_key]) if ln != "PLAINTEXT" and base and cpu is not None and base[cpu_key] is not None else None
            ratio = (m[ln][key] / base[key]) if ln != "PLAINTEXT" and base and base[key] and m[ln][key] else None
            say(f"{ln:10s} {d:9s} {fmt(cpu, '8.2f')} {fmt(cpu and memcpy_floor and cpu / memcpy_floor, '9.1f')} "
                f"{fmt(cpu and tcp_floor and cpu / tcp_floor, '9.1f')} {fmt(extra, '9.2f')} "
                f"{fmt(extra is not None and cipher_floor and extra / cipher_floor or None, '9.1f')} {fmt(ratio, '10.2f')}")
            if extra is not None:
                summary[f"{ln}.{d}_tls_extra_cpu_s_per_gb"] = extra
            if ratio is not None:
                summary[f"{ln}.{d}_vs_plaintext"] = ratio
    say("  (x memcpy: broker CPU-s/GB / memcpy of 16 KiB blocks; x TCP lo: / loopback TCP send+receive; TLS extra: "
        "CPU-s/GB over PLAINTEXT's; x cipher: that extra / the cipher floor, 1.0 = nothing but AES-GCM)")

    # ---- the rest
    idle = results.get("idle_tls")
    if idle:
        k = idle["kib_per_connection"]
        say("\n== Idle mTLS connections ==")
        say(f"{idle['opened']} of {idle['wanted']} connections (full handshake + ApiVersions each) in {idle['seconds']:.1f} s; "
            f"broker RSS {idle['rss_before_kib']} -> {idle['rss_after_kib']} KiB = {fmt(k, '.1f')} KiB per connection; "
            f"{idle['still_answering_of_2']}/2 probes answered afterwards; broker CPU {idle['broker_cpu_s']:.2f} s = "
            f"{fmt(idle['handshakes_per_cpu_s'], '.0f')} server-side handshakes per CPU-second")
        if idle["error"]:
            say(f"  stopped early: {idle['error']}")
        summary.update({"idle_mtls_kib_per_connection": k, "idle_mtls_connections": idle["opened"],
                        "handshakes_per_broker_cpu_s": idle["handshakes_per_cpu_s"]})
    tb = results.get("tls_bench") or {}
    for key, name in (("per_s", "tls_bench_full_mtls_ecdsa_per_s"), ("server_side_per_s", "floor.openssl_server_handshakes_per_s"),
                      ("openssl_idle_kib", "floor.openssl_idle_mtls_kib")):
        if tb.get(key):
            summary[name] = tb[key]
    if any(results[ln]["consume_group"] for ln in listeners):
        say("\n== Consume in a group (best of reps) ==")
        gb_ = best(results["PLAINTEXT"]["consume_group"]) if results.get("PLAINTEXT", {}).get("consume_group") else None
        for ln in listeners:
            if results[ln]["consume_group"]:
                g = best(results[ln]["consume_group"])
                ratio = g["mb_per_s"] / gb_["mb_per_s"] if gb_ and gb_["mb_per_s"] else None
                say(f"{ln:10s} {g['mb_per_s']:8.1f} MB/s" + (f"  ({ratio:.2f} of PLAINTEXT)" if ratio and ln != "PLAINTEXT" else ""))
    if cipher_floor:
        say("\n== TLS consume vs one core's cipher speed ==")
        for ln in ("SSL", "MTLS"):
            if ln in m and m[ln]["consume"]:
                say(f"{ln:10s} consume {m[ln]['consume']:.1f} MB/s = {m[ln]['consume'] / o['mb_per_s_16k'] * 100:.1f} % "
                    f"of openssl speed's {o['mb_per_s_16k']:.0f} MB/s")

    # ---- the issue's goals
    goals = []
    pt = m.get("PLAINTEXT")
    if pt:
        goals.append(("broker CPU per GB, PLAINTEXT produce (1 KiB, acks=1, none)", f"<= {TARGET_PT_PRODUCE_CPU} s",
                      fmt(pt["p_cpu"], ".2f") + " s", pt["p_cpu"] is not None and pt["p_cpu"] <= TARGET_PT_PRODUCE_CPU))
    if pt and fw:
        goals.append(("  floor: write() into the page cache, as found / warm", "(bench/floors.c --file)",
                      " / ".join(f"{v:.2f}" for v in fw) + " s", None))
    for ln in ("SSL", "MTLS"):
        if ln not in m or not pt:
            continue
        if cipher_floor and pt["c_cpu"] is not None and m[ln]["c_cpu"] is not None:
            limit = pt["c_cpu"] + TARGET_TLS_EXTRA_FLOORS * cipher_floor
            goals.append((f"broker CPU per GB, {ln} consume", f"<= PT + 1.5 x floor = {limit:.2f} s",
                          f"{m[ln]['c_cpu']:.2f} s", m[ln]["c_cpu"] <= limit))
        else:
            goals.append((f"broker CPU per GB, {ln} consume", "<= PT + 1.5 x cipher floor", "-", None))
    for ln in ("SSL", "MTLS"):
        for d, target in (("produce", TARGET_PRODUCE), ("consume", TARGET_CONSUME)):
            r = summary.get(f"{ln}.{d}_vs_plaintext")
            goals.append((f"{ln} / PLAINTEXT MB/s, {d}", f">= {target}", fmt(r, ".2f"), None if r is None else r >= target))
    mt = m.get("MTLS")
    if mt:
        goals.append((f"e2e p99 at {E2E_RATE} msg/s over mTLS (Nagle off)", f"<= {TARGET_E2E_P99_MS} ms",
                      fmt(mt["e2e_p99"], ".2f") + " ms", None if mt["e2e_p99"] is None else mt["e2e_p99"] <= TARGET_E2E_P99_MS))
    if idle:
        k = idle["kib_per_connection"]
        goals.append((f"idle mTLS connection, {idle['opened']} open (goal: with 10,000)", f"<= {TARGET_KIB_PER_CONN} KiB",
                      fmt(k, ".1f") + " KiB", None if k is None else (k <= TARGET_KIB_PER_CONN and idle["opened"] >= 10000)))
        h = idle["handshakes_per_cpu_s"]
        goals.append(("full mTLS handshakes (ECDSA P-256), broker side, per core", f">= {TARGET_HANDSHAKES}/s",
                      fmt(h, ".0f") + "/s", None if h is None else h >= TARGET_HANDSHAKES))
    if tb.get("server_side_per_s"):
        goals.append(("  floor: OpenSSL alone, server side of a full mTLS handshake", "(tls_bench, in memory)",
                      f"{tb['server_side_per_s']:.0f}/s", None))
    if tb.get("per_s"):
        goals.append(("  tls_bench BM_FullMtlsHandshake/0 (client AND server on one core)", "", f"{tb['per_s']:.0f}/s", None))
    if tb.get("openssl_idle_kib"):
        goals.append(("  floor: OpenSSL alone, heap per idle mTLS server connection", "(tls_bench, mallinfo2)",
                      f"{tb['openssl_idle_kib']:.1f} KiB", None))
    if tb.get("error"):
        goals.append(("  tls_bench", "", tb["error"][:60], None))
    say("\n== Goals (the performance issue) ==")
    w = max(len(g[0]) for g in goals)
    for what, goal, value, ok in goals:
        say(f"{what:{w}s}  {goal:32s} {value:>10s}  {verdict(ok)}")
    summary["goals_met"] = sum(1 for g in goals if g[3] is True)
    summary["goals_not_met"] = sum(1 for g in goals if g[3] is False)
    results["goals"] = [{"what": g[0], "goal": g[1], "measured": g[2], "met": g[3]} for g in goals]
    say(f"goals: {summary['goals_met']} met, {summary['goals_not_met']} not met (each machine-noise-sensitive figure is "
        f"from one run on a shared machine)")
    return summary


def results_kind(path):
    """The benchmark a results file is from (meta.bench; files without it are this script's)."""
    try:
        return json.loads(path.read_text()).get("meta", {}).get("bench", "broker")
    except (OSError, ValueError):
        return None


def save_and_compare(results, out, kind="broker"):
    """Writes BENCH_RESULTS_DIR/<date>-<sha>[-<kind>].json (and out/results.json) and prints the change of each
    summary figure against the newest earlier file of the same kind (meta.bench) in BENCH_RESULTS_DIR."""
    results["meta"]["bench"] = kind
    (out / "results.json").write_text(json.dumps(results, indent=1))
    rdir = os.environ.get("BENCH_RESULTS_DIR", str(REPO / "bench" / "results"))
    if not rdir:
        return
    rdir = Path(rdir)
    rdir.mkdir(parents=True, exist_ok=True)
    previous = [p for p in sorted(rdir.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
                if results_kind(p) == kind]
    meta = results["meta"]
    name = (time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime()) + f"-{meta['commit']}{'-dirty' if meta['dirty'] else ''}"
            + ("" if kind == "broker" else f"-{kind}") + ".json")
    # Results files keep the figures, not the time series (those are in out/results.json).
    kept = {k: v for k, v in results.items() if k != "timeline"}
    for ln in LISTENERS:
        if isinstance(kept.get(ln), dict):
            kept[ln] = {k: v for k, v in kept[ln].items() if k != "e2e_slices"}
    (rdir / name).write_text(json.dumps(kept, indent=1))
    say(f"\nresults: {rdir / name}")
    if not previous:
        say("  (no earlier results file in that directory to compare with)")
        return
    last = previous[-1]
    try:
        old = json.loads(last.read_text())
    except ValueError as e:
        say(f"  cannot read {last}: {e}")
        return
    old_s, new_s = old.get("summary", {}), results.get("summary", {})
    om = old.get("meta", {})
    say(f"== Change against {last.name} (commit {om.get('commit')}, {om.get('date')}, load average "
        f"{fmt(om.get('load_average_start'))} then, {fmt(meta.get('load_average_start'))} now) ==")
    for key in new_s:
        a, b = old_s.get(key), new_s.get(key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            change = f"{(b - a) / a * 100:+.1f} %" if a else ""
            say(f"  {key:42s} {a:10.3f} -> {b:10.3f}  {change}")
        elif b is not None and a is None:
            say(f"  {key:42s} {'-':>10s} -> {b:10.3f}" if isinstance(b, (int, float)) else f"  {key}: new")


if __name__ == "__main__":
    sys.exit(main())
