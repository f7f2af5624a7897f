#!/usr/bin/python3
"""Benchmarks of three broker features (issue 15), each against one real `bulwark broker` on loopback with the
broker on one CPU and the client on the other (bench/broker_bench.py's start-up, pinning and CPU accounting):

  txn      transactional produce at 100 and 1,000 records per transaction against non-transactional (and
           idempotent) produce: bulwark_loadgen (librdkafka's C API), 1 KiB values, acks=all, PLAINTEXT.
           records/s, MB/s, broker CPU-s per GB, the ratios to non-transactional, and the latency of each
           commit: the flush of the transaction's records, then commit_transaction() (EndTxn and markers).
           Also confluent-kafka (Python) flat out with the same records, to show which client can keep up.
  cleaner  the log cleaner on a compacted topic filled with random keys (BENCH_CLEANER_KEYS) and a share of
           tombstones: its MB/s (bytes read per second of cleaning, from the broker's `cleaned log` lines),
           the cleaner thread's CPU (/proc/<pid>/task, thread bw-cleaner-0), and produce latency on another
           topic (2,000 records/s, acks=all, linger.ms=0) with the cleaner idle, then busy, in one run.
           The compacted topic is filled with min.compaction.lag.ms at an hour (nothing due), and cleaning
           starts when AlterConfigs sets it to 0.
  quota    producer_byte_rate and consumer_byte_rate set with `bulwark quotas` (AlterClientQuotas) per
           client id at BENCH_QUOTA_RATES MB/s: the rate a confluent-kafka producer / consumer flat out
           reaches against the quota, error in %, and the throttle_time_ms librdkafka heard.

    /usr/bin/python3 bench/api_bench.py [txn] [cleaner] [quota]     (none named: all three)

Each writes bench/results/<date>-<commit>-<name>.json (BENCH_RESULTS_DIR) and prints the change against the
newest earlier file of the same name. BULWARK_BIN and BULWARK_LOADGEN as for bench/broker_bench.py.
Knobs: BENCH_TXN_MESSAGES (200000 a run), BENCH_TXN_REPS (3, interleaved; best records/s, lowest CPU),
  BENCH_TXN_PY_MESSAGES (100000; 0 skips the Python client), BENCH_CLEANER_MESSAGES (1000000),
  BENCH_CLEANER_KEYS (100000), BENCH_CLEANER_TOMBSTONES (0.05), BENCH_CLEANER_PARTITIONS (4),
  BENCH_PROBE_RATE (2000 records/s), BENCH_PROBE_SECONDS (5), BENCH_QUOTA_RATES (1,5,20),
  BENCH_QUOTA_SECONDS (12 per rate and direction), BENCH_QUOTA_WINDOWS (3: quota.window.num; with Kafka's
  11 a new client bursts 10 s worth first), BENCH_PIN, BENCH_KEEP=1.
MB = 10^6 bytes of record values. Not a test: numbers to look at; exit status 0 unless something broke.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import broker_bench as bench  # noqa: E402  (finds the binaries, imports the test harness)

SIZE = 1024
TXN_MESSAGES = int(os.environ.get("BENCH_TXN_MESSAGES", "200000"))
TXN_REPS = int(os.environ.get("BENCH_TXN_REPS", "3"))
TXN_PY_MESSAGES = int(os.environ.get("BENCH_TXN_PY_MESSAGES", "100000"))
CLEANER_MESSAGES = int(os.environ.get("BENCH_CLEANER_MESSAGES", "1000000"))
CLEANER_KEYS = int(os.environ.get("BENCH_CLEANER_KEYS", "100000"))
CLEANER_TOMBSTONES = float(os.environ.get("BENCH_CLEANER_TOMBSTONES", "0.05"))
CLEANER_PARTITIONS = int(os.environ.get("BENCH_CLEANER_PARTITIONS", "4"))
PROBE_RATE = int(os.environ.get("BENCH_PROBE_RATE", "2000"))
PROBE_SECONDS = float(os.environ.get("BENCH_PROBE_SECONDS", "5"))
QUOTA_RATES = [float(r) for r in os.environ.get("BENCH_QUOTA_RATES", "1,5,20").split(",")]
QUOTA_SECONDS = float(os.environ.get("BENCH_QUOTA_SECONDS", "12"))
QUOTA_WINDOWS = int(os.environ.get("BENCH_QUOTA_WINDOWS", "3"))
ALL_CPUS = os.sched_getaffinity(0)
say = bench.say


def fmt(v, spec=".1f"):
    """bench.fmt, with "-" padded to the spec's width so that table columns stay aligned."""
    width = re.match(r"\d*", spec).group(0)
    return bench.fmt(v, spec).rjust(int(width) if width else 0)


# ---------------------------------------------------------------------------------------------- shared
class BrokerRun:
    """One broker for one benchmark: started unpinned from all CPUs, then pinned as broker_bench pins it;
    stopped (and its directory removed unless BENCH_KEEP=1) on exit."""

    def __init__(self, name, extra):
        self.name, self.extra = name, extra
        self.root = Path(tempfile.mkdtemp(prefix=f"bulwark-{name}-bench."))
        self.broker = None

    def __enter__(self):
        os.sched_setaffinity(0, ALL_CPUS)  # a second broker must not inherit the client CPU of the first run
        pki = bench.harness.Pki(self.root, clients=("admin-1",))
        # Its own metrics port: the default :9404 may be another broker's on a shared machine.
        extra = {"metrics.listener": f"http://127.0.0.1:{bench.harness.free_port()}", **self.extra}
        self.broker = bench.harness.Broker(self.root, pki, extra=extra)
        self.broker.props.pop("log.flush.interval.messages", None)  # default: no fsync per message
        self.broker.start()
        bench.pin(self.broker)
        say(f"[{self.name}] broker pid {self.broker.proc.pid}; {bench.PINNING['how']}")
        return self.broker

    def __exit__(self, kind, value, tb):
        if kind is not None and self.broker is not None:
            say("--- broker log (tail) ---\n" + self.broker.log_text()[-3000:])
        if self.broker is not None:
            self.broker.stop()
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        return False


def admin(broker):
    from confluent_kafka.admin import AdminClient
    # log_level 5: not librdkafka's info line about purged events when the client goes.
    return AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "log_level": 5})


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else None


def meta():
    sha, dirty = bench.git_sha()
    return {"commit": sha, "dirty": dirty, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0], "size": SIZE,
            "pinning": dict(bench.PINNING)}


def finish(name, results):
    results["meta"]["load_average_end"] = os.getloadavg()[0]
    results["meta"]["pinning"] = dict(bench.PINNING)
    out = Path(tempfile.mkdtemp(prefix=f"bulwark-{name}-bench-out."))
    bench.save_and_compare(results, out, kind=name)


# ---------------------------------------------------------------------------------------------- txn
TXN_VARIANTS = {  # name: loadgen arguments on top of 1 KiB values and acks=all
    "non-transactional": [],
    "idempotent": ["-X", "enable.idempotence=true"],
    "txn 100/commit": ["--transaction-records", 100],
    "txn 1000/commit": ["--transaction-records", 1000],
}


def python_producer_rate(broker, topic, n):
    """Records/s of confluent-kafka (Python) producing n 1 KiB values flat out, acks=all, to the last delivery."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "acks": "all"})
    value = b"x" * SIZE
    p.produce(topic, value)
    p.flush(30)
    t0 = time.time()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.001)
        p.poll(0)
    p.flush(60)
    return n / (time.time() - t0)


def run_txn():
    results = {"meta": {}, "runs": {v: [] for v in TXN_VARIANTS}}
    extra = {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3"}
    with BrokerRun("txn", extra) as broker:
        results["meta"] = meta()
        # The first transactional producer creates __transaction_state: outside the measured runs.
        bench.create_topics(broker, ["txn-warmup"])
        bench.loadgen("produce", broker, "PLAINTEXT", "txn-warmup", "--messages", 2000, "--size", SIZE, "--acks", "all",
                      "--transaction-records", 100)
        for rep in range(TXN_REPS):  # interleaved, so background load hits every variant alike
            for i, (variant, args) in enumerate(TXN_VARIANTS.items()):
                topic = f"txn-bench-{rep}-{i}"
                bench.create_topics(broker, [topic])
                r = bench.loadgen("produce", broker, "PLAINTEXT", topic, "--messages", TXN_MESSAGES, "--size", SIZE,
                                  "--acks", "all", *args)
                r["cpu_s_per_gb"] = r["broker_cpu_s"] / (r["bytes"] / 1e9) if r["bytes"] else None
                results["runs"][variant].append(r)
                commit = (f"  flush p50 {r['flush_us']['p50'] / 1000:.2f} ms  commit p50 {r['commit_us']['p50'] / 1000:.2f}"
                          f" p99 {r['commit_us']['p99'] / 1000:.2f} ms" if "commit_us" in r else "")
                say(f"  rep {rep + 1} {variant:18s} {r['msgs_per_s']:9.0f} rec/s {r['mb_per_s']:7.1f} MB/s  broker "
                    f"{fmt(r['cpu_s_per_gb'], '.2f')} CPU-s/GB{commit}")
                bench.delete_topic(broker, topic)
        if TXN_PY_MESSAGES > 0:
            bench.create_topics(broker, ["txn-python"])
            results["python_records_per_s"] = python_producer_rate(broker, "txn-python", TXN_PY_MESSAGES)
    results["summary"] = report_txn(results)
    finish("txn", results)


def report_txn(results):
    summary = {}
    best = {v: bench.best(runs, "msgs_per_s") for v, runs in results["runs"].items()}
    cpu = {v: min((r["cpu_s_per_gb"] for r in runs if r["cpu_s_per_gb"] is not None), default=None)
           for v, runs in results["runs"].items()}
    base = best["non-transactional"]
    say(f"\n== Transactional produce ({TXN_MESSAGES} x {SIZE} B, acks=all, bulwark_loadgen/librdkafka, best of "
        f"{TXN_REPS}; {bench.PINNING['how']}) ==")
    say(f"{'variant':18s} {'rec/s':>9s} {'MB/s':>7s} {'x non-txn':>9s} {'CPU-s/GB':>8s} {'x non-txn':>9s} "
        f"{'flush p50':>9s} {'p99':>7s} {'commit p50':>10s} {'p99':>7s} {'f+c p50':>8s} {'p99':>7s}")
    for v, r in best.items():
        key = v.split("/")[0].replace(" ", "_").replace("-", "_")
        ratio, cpu_ratio = r["msgs_per_s"] / base["msgs_per_s"], cpu[v] / cpu["non-transactional"] if cpu[v] else None
        fl, cm, fc = r.get("flush_us"), r.get("commit_us"), r.get("flush_and_commit_us")
        say(f"{v:18s} {r['msgs_per_s']:9.0f} {r['mb_per_s']:7.1f} {ratio:9.2f} {fmt(cpu[v], '8.2f')} "
            f"{fmt(cpu_ratio, '9.2f')} {fmt(fl and fl['p50'] / 1000, '9.2f')} {fmt(fl and fl['p99'] / 1000, '7.2f')} "
            f"{fmt(cm and cm['p50'] / 1000, '10.2f')} {fmt(cm and cm['p99'] / 1000, '7.2f')} "
            f"{fmt(fc and fc['p50'] / 1000, '8.2f')} {fmt(fc and fc['p99'] / 1000, '7.2f')}")
        summary.update({f"{key}.records_per_s": r["msgs_per_s"], f"{key}.mb_per_s": r["mb_per_s"],
                        f"{key}.cpu_s_per_gb": cpu[v], f"{key}.vs_non_txn": ratio, f"{key}.cpu_vs_non_txn": cpu_ratio})
        if cm:
            summary.update({f"{key}.commit_p50_ms": cm["p50"] / 1000, f"{key}.commit_p99_ms": cm["p99"] / 1000,
                            f"{key}.flush_p50_ms": fl["p50"] / 1000, f"{key}.flush_p99_ms": fl["p99"] / 1000,
                            f"{key}.flush_and_commit_p50_ms": fc["p50"] / 1000,
                            f"{key}.flush_and_commit_p99_ms": fc["p99"] / 1000})
    say("  (rec/s and MB/s: the best rep, first produce() to last delivery, commits included; CPU-s/GB: broker "
        "utime+stime per GB of values, lowest rep; flush: rd_kafka_flush() of the transaction's records before "
        "the commit; commit: commit_transaction() after it (EndTxn, markers); f+c: both, per transaction, what "
        "commit_transaction() without the flush before it would take; ms)")
    py = results.get("python_records_per_s")
    if py:
        say(f"client: confluent-kafka (Python) flat out, same records, non-transactional: {py:.0f} rec/s = "
            f"{py / base['msgs_per_s']:.2f} x bulwark_loadgen's {base['msgs_per_s']:.0f}")
        summary["python_records_per_s"] = py
    return summary


# ---------------------------------------------------------------------------------------------- cleaner
LOG_LINE = re.compile(r"^(\S+)Z \S+\s+(cleaning|cleaned) log (\S+): (.*)$")
CLEANED = re.compile(r"(\d+) records -> (\d+) in (\d+) segments -> (\d+) \((\d+) -> (\d+) bytes.*, (\d+) ms\)")
RATIO = re.compile(r"dirty ratio ([\d.]+)")


def wall(stamp):
    """The broker log's UTC timestamp (2026-12-04T21:21:09.123) as unix seconds."""
    import calendar
    base, millis = stamp.split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def cleanings(broker, topic):
    """[(start s, end s or None, partition, details)] of the cleaner's passes over `topic`'s partitions."""
    passes, open_ = [], {}
    for line in broker.log_text().splitlines():
        m = LOG_LINE.match(line)
        if not m or not m.group(3).startswith(topic + "-"):
            continue
        t, what, part, rest = wall(m.group(1)), m.group(2), m.group(3), m.group(4)
        if what == "cleaning":
            r = RATIO.search(rest)
            open_[part] = {"start": t, "partition": part, "dirty_ratio": float(r.group(1)) if r else None}
        elif part in open_:
            c = CLEANED.search(rest)
            p = open_.pop(part)
            if c:
                p.update(end=t, records_in=int(c.group(1)), records_out=int(c.group(2)), segments_in=int(c.group(3)),
                         segments_out=int(c.group(4)), bytes_in=int(c.group(5)), bytes_out=int(c.group(6)),
                         ms=int(c.group(7)))
            passes.append(p)
    return passes + [dict(p, end=None) for p in open_.values()]


def cleaner_cpu_s(pid):
    """CPU seconds of the broker's cleaner threads (named bw-cleaner-N)."""
    total = 0.0
    for tid in bench.broker_tids(pid):
        try:
            if Path(f"/proc/{pid}/task/{tid}/comm").read_text().startswith("bw-cleaner"):
                total += bench.cpu_seconds(f"{pid}/task/{tid}")  # reads /proc/<pid>/task/<tid>/stat
        except OSError:
            pass
    return total


def probe(broker, topic, path):
    """PROBE_SECONDS of produce at PROBE_RATE, 1 KiB, acks=all, linger.ms=0: [(send unix s, latency ms)]."""
    bench.loadgen("produce", broker, "PLAINTEXT", topic, "--messages", int(PROBE_RATE * PROBE_SECONDS), "--size", SIZE,
                  "--rate", PROBE_RATE, "--acks", "all", "--linger-ms", 0, "-X", "socket.nagle.disable=true",
                  "--latency-file", path)
    with open(path) as f:
        return [(int(a) / 1e6, float(b) / 1000) for a, b in (line.split() for line in f)]


def compacted_config(lag_ms):
    return {"cleanup.policy": "compact", "segment.bytes": str(8 << 20), "min.compaction.lag.ms": str(lag_ms),
            "min.cleanable.dirty.ratio": "0.5"}


def run_cleaner():
    from confluent_kafka.admin import ConfigResource
    results = {"meta": {}}
    with BrokerRun("cleaner", {"log.cleaner.backoff.ms": "200"}) as broker:
        results["meta"] = meta()
        results["meta"].update(keys=CLEANER_KEYS, tombstones=CLEANER_TOMBSTONES, messages=CLEANER_MESSAGES,
                               partitions=CLEANER_PARTITIONS, probe_rate=PROBE_RATE, probe_seconds=PROBE_SECONDS)
        bench.create_topics(broker, ["compacted"], CLEANER_PARTITIONS, compacted_config(3600 * 1000))
        bench.create_topics(broker, ["probe"])
        fill = bench.loadgen("produce", broker, "PLAINTEXT", "compacted", "--messages", CLEANER_MESSAGES, "--size", SIZE,
                             "--acks", "1", "--keys", CLEANER_KEYS, "--tombstones", CLEANER_TOMBSTONES)
        say(f"  filled: {fill['delivered']} records ({fill['tombstones']} tombstones) of {CLEANER_KEYS} keys, "
            f"{fill['mb_per_s']:.0f} MB/s")
        time.sleep(1)
        work = broker.root
        idle = probe(broker, "probe", work / "idle.lat")
        pid = broker.proc.pid
        cpu0, broker_cpu0 = cleaner_cpu_s(pid), bench.cpu_seconds(pid)
        busy_samples = []
        prober = threading.Thread(target=lambda: busy_samples.extend(probe(broker, "probe", work / "busy.lat")))
        prober.start()
        time.sleep(0.5)  # the probe is connected and sending when the cleaning starts
        resource = ConfigResource("topic", "compacted", set_config=compacted_config(0))
        client = admin(broker)
        client.alter_configs([resource])[resource].result(timeout=30)
        deadline = time.time() + 180
        while time.time() < deadline:
            passes = cleanings(broker, "compacted")
            if len({p["partition"] for p in passes if p.get("end")}) >= CLEANER_PARTITIONS and \
                    all(p.get("end") for p in passes):
                break
            time.sleep(0.2)
        prober.join()
        results["cleaner_cpu_s"] = cleaner_cpu_s(pid) - cpu0
        results["broker_cpu_s"] = bench.cpu_seconds(pid) - broker_cpu0
        results["passes"] = cleanings(broker, "compacted")
    results["fill"] = {k: fill.get(k) for k in ("delivered", "tombstones", "bytes", "mb_per_s")}
    results["summary"] = report_cleaner(results, idle, busy_samples)
    finish("cleaner", results)


def report_cleaner(results, idle, busy_samples):
    passes = [p for p in results["passes"] if p.get("end")]
    if not passes:
        raise RuntimeError("the cleaner did not clean the compacted topic (no `cleaned log` lines)")
    windows = [(p["start"], p["end"]) for p in passes]
    busy = [lat for t, lat in busy_samples if any(a <= t <= b for a, b in windows)]
    after = [lat for t, lat in busy_samples if not any(a <= t <= b for a, b in windows)]
    bytes_in, ms = sum(p["bytes_in"] for p in passes), sum(p["ms"] for p in passes)
    span = max(b for _, b in windows) - min(a for a, _ in windows)
    mb_s = bytes_in / 1e6 / (ms / 1000) if ms else None
    cpu_gb = results["cleaner_cpu_s"] / (bytes_in / 1e9) if bytes_in else None
    idle_lat = [lat for _, lat in idle]
    s = {"cleaner_mb_per_s": mb_s, "cleaner_cpu_s_per_gb": cpu_gb, "cleaned_mb": bytes_in / 1e6,
         "kept_fraction": sum(p["bytes_out"] for p in passes) / bytes_in,
         "dirty_ratio": max(p["dirty_ratio"] or 0 for p in passes),
         "idle_p50_ms": percentile(idle_lat, 0.5), "idle_p99_ms": percentile(idle_lat, 0.99),
         "busy_p50_ms": percentile(busy, 0.5), "busy_p99_ms": percentile(busy, 0.99), "busy_samples": len(busy),
         "idle_max_ms": max(idle_lat, default=None), "busy_max_ms": max(busy, default=None)}
    m = results["meta"]
    say(f"\n== Log cleaner ({m['partitions']} partitions, {m['messages']} x {SIZE} B records over {m['keys']} random "
        f"keys, {m['tombstones'] * 100:.0f} % tombstones; {bench.PINNING['how']}) ==")
    for p in passes:
        say(f"  {p['partition']}: dirty ratio {p['dirty_ratio']:.3f}, {p['records_in']} -> {p['records_out']} records, "
            f"{p['bytes_in'] / 1e6:.1f} -> {p['bytes_out'] / 1e6:.1f} MB, {p['segments_in']} -> {p['segments_out']} "
            f"segments in {p['ms']} ms = {p['bytes_in'] / 1e3 / max(p['ms'], 1):.0f} MB/s")
    say(f"cleaner: {bytes_in / 1e6:.0f} MB read in {ms} ms of cleaning ({span:.1f} s first start to last end) = "
        f"{fmt(mb_s, '.0f')} MB/s; cleaner thread {results['cleaner_cpu_s']:.2f} CPU-s = {fmt(cpu_gb, '.2f')} CPU-s/GB "
        f"read; kept {s['kept_fraction'] * 100:.1f} % of the bytes")
    say(f"produce latency on another topic ({PROBE_RATE} rec/s, 1 KiB, acks=all, linger.ms=0), ms:")
    say(f"  cleaner idle            p50 {fmt(s['idle_p50_ms'], '6.2f')}  p99 {fmt(s['idle_p99_ms'], '6.2f')}  "
        f"max {fmt(s['idle_max_ms'], '7.2f')}  ({len(idle_lat)} records)")
    say(f"  cleaner busy            p50 {fmt(s['busy_p50_ms'], '6.2f')}  p99 {fmt(s['busy_p99_ms'], '6.2f')}  "
        f"max {fmt(s['busy_max_ms'], '7.2f')}  ({len(busy)} records sent while a pass ran)")
    if after:
        say(f"  same probe, after it    p50 {percentile(after, 0.5):6.2f}  p99 {percentile(after, 0.99):6.2f}  "
            f"max {max(after):7.2f}  ({len(after)} records sent before the first or after the last pass)")
    if len(busy) < PROBE_RATE:
        say(f"  ! under a second of the probe overlapped the cleaning: raise BENCH_CLEANER_MESSAGES for a steadier p99")
    return s


# ---------------------------------------------------------------------------------------------- quota
class ThrottleLog:
    """throttle_time_ms as librdkafka hears it: throttle_cb events and the stats' brokers.*.throttle window."""

    def __init__(self):
        self.events, self.stats_max = [], 0

    def on_throttle(self, event):
        self.events.append(event.throttle_time * 1000)  # confluent-kafka gives seconds

    def on_stats(self, text):
        for b in json.loads(text).get("brokers", {}).values():
            self.stats_max = max(self.stats_max, (b.get("throttle") or {}).get("max", 0))

    def conf(self):
        return {"throttle_cb": self.on_throttle, "stats_cb": self.on_stats, "statistics.interval.ms": 1000}


def set_quota(broker, client_id, key, rate):
    bench.harness.run(bench.harness.BIN, "quotas", "--bootstrap-server", broker.bootstrap("PLAINTEXT"), "--alter",
                      "--add-config", f"{key}={int(rate)}", "--entity-type", "clients", "--entity-name", client_id)


def produce_under_quota(broker, topic, client_id, throttles, extra):
    """[(time, value bytes)] acknowledged while a producer goes flat out for QUOTA_SECONDS."""
    from confluent_kafka import Producer
    acked = []
    p = Producer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "client.id": client_id, "acks": "all",
                  "queue.buffering.max.kbytes": 1024, **throttles.conf(), **extra})
    value = b"x" * SIZE

    def delivered(err, msg):
        if err is None:
            acked.append((time.monotonic(), len(msg.value())))
    start = time.monotonic()
    while time.monotonic() - start < QUOTA_SECONDS:
        try:
            p.produce(topic, value, on_delivery=delivered)
        except BufferError:
            p.poll(0.01)
        p.poll(0)
    p.flush(60)
    return start, acked


def consume_under_quota(broker, topic, client_id, throttles, extra):
    from confluent_kafka import Consumer, TopicPartition
    got = []
    c = Consumer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "client.id": client_id, "group.id": client_id,
                  "enable.auto.commit": False, **throttles.conf(), **extra})
    c.assign([TopicPartition(topic, 0, 0)])
    start = time.monotonic()
    while time.monotonic() - start < QUOTA_SECONDS:
        for m in c.consume(num_messages=1000, timeout=0.2):
            if m.error() is None:
                got.append((time.monotonic(), len(m.value())))
    c.close()
    return start, got


def rate_over(events, start, end):
    return sum(n for t, n in events if start <= t < end) / (end - start)


def quota_cases():
    """(direction, MB/s, client config): each rate both ways with librdkafka's defaults, then the lowest rate's
    consumer again with 64 KiB fetches (a fetch is answered whole or empty, so its size is the quota's grain)."""
    cases = [(d, rate, {}) for d in ("produce", "consume") for rate in QUOTA_RATES]
    return cases + [("consume", min(QUOTA_RATES), {"max.partition.fetch.bytes": 65536})]


def quota_run(broker, direction, rate, extra, warmup):
    label = direction + (" 64K" if extra else "")
    client_id = f"quota-{label.replace(' ', '-')}-{rate:g}"
    set_quota(broker, client_id, "producer_byte_rate" if direction == "produce" else "consumer_byte_rate", rate * 1e6)
    topic = "quota-fill"
    if direction == "produce":
        topic = client_id
        bench.create_topics(broker, [topic])
    throttles = ThrottleLog()
    run = produce_under_quota if direction == "produce" else consume_under_quota
    start, events = run(broker, topic, client_id, throttles, extra)
    end = start + QUOTA_SECONDS
    r = {"direction": label, "quota_mb_s": rate, "client_config": extra,
         "steady_mb_s": rate_over(events, start + warmup, end) / 1e6, "whole_mb_s": rate_over(events, start, end) / 1e6,
         "throttled_responses": len(throttles.events), "throttle_p50_ms": percentile(throttles.events, 0.5),
         "throttle_max_ms": max(throttles.events, default=0), "stats_throttle_max_ms": throttles.stats_max}
    r["error_pct"] = (r["steady_mb_s"] - rate) / rate * 100
    say(f"  {label} quota {rate:g} MB/s: {r['steady_mb_s']:.2f} MB/s steady ({r['error_pct']:+.1f} %), "
        f"{r['whole_mb_s']:.2f} MB/s whole run, {r['throttled_responses']} throttled responses")
    return r


def run_quota():
    results = {"meta": {}, "runs": []}
    warmup = QUOTA_WINDOWS - 1 + 1.0  # the burst a new client may take, plus the first throttled second
    with BrokerRun("quota", {"quota.window.num": str(QUOTA_WINDOWS), "quota.window.size.seconds": "1"}) as broker:
        results["meta"] = meta()
        results["meta"].update(rates_mb_s=QUOTA_RATES, seconds=QUOTA_SECONDS, windows=QUOTA_WINDOWS, warmup_s=warmup)
        bench.create_topics(broker, ["quota-fill"])
        need = int(max(QUOTA_RATES) * 1e6 * (QUOTA_SECONDS + QUOTA_WINDOWS) * 1.3 / SIZE)
        # In 64 KiB batches: a fetch returns at least one whole batch, so the stored batch is the finest grain.
        bench.loadgen("produce", broker, "PLAINTEXT", "quota-fill", "--messages", need, "--size", SIZE, "--acks", "1",
                      "--batch-size", 65536)
        for direction, rate, extra in quota_cases():
            results["runs"].append(quota_run(broker, direction, rate, extra, warmup))
    results["summary"] = report_quota(results)
    finish("quota", results)


def report_quota(results):
    m = results["meta"]
    say(f"\n== Quota accuracy (confluent-kafka flat out, 1 KiB values, {m['seconds']:.0f} s a run; quota.window.num="
        f"{m['windows']} x 1 s; steady = after the first {m['warmup_s']:.0f} s; MB = 10^6 B of values) ==")
    say(f"{'direction':11s} {'quota MB/s':>10s} {'steady':>8s} {'error':>8s} {'whole run':>9s} {'throttled':>9s} "
        f"{'thr p50 ms':>10s} {'thr max':>8s} {'stats max':>9s}")
    summary = {}
    for r in results["runs"]:
        say(f"{r['direction']:11s} {r['quota_mb_s']:10g} {r['steady_mb_s']:8.2f} {r['error_pct']:+7.1f}% "
            f"{r['whole_mb_s']:9.2f} {r['throttled_responses']:9d} {fmt(r['throttle_p50_ms'], '10.0f')} "
            f"{r['throttle_max_ms']:8.0f} {r['stats_throttle_max_ms']:9.0f}")
        key = f"{r['direction'].replace(' ', '_')}_{r['quota_mb_s']:g}mb"
        summary.update({f"{key}.steady_mb_s": r["steady_mb_s"], f"{key}.error_pct": r["error_pct"],
                        f"{key}.throttle_p50_ms": r["throttle_p50_ms"]})
    say("  (steady: value bytes acknowledged / received per second after the warm-up, against the quota; the broker "
        "counts whole requests (produce) and record batches (fetch), so value bytes are ~1-2 % under what it counts; "
        "throttled: responses with throttle_time_ms > 0 (throttle_cb); stats max: brokers.*.throttle.max of the "
        "statistics callback; consume 64K: max.partition.fetch.bytes=65536 instead of librdkafka's 1 MiB)")
    return summary


BENCHMARKS = {"txn": run_txn, "cleaner": run_cleaner, "quota": run_quota}


def main(argv):
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        say(f"unknown benchmark {' '.join(unknown)}; choose from {' '.join(BENCHMARKS)}")
        return 2
    if not bench.LOADGEN or not os.access(bench.LOADGEN, os.X_OK):
        say("no bulwark_loadgen: build it (ninja -C build bulwark_loadgen) or set BULWARK_LOADGEN")
        return 2
    say(f"bulwark: {bench.harness.BIN}\nloadgen: {bench.LOADGEN}\n{os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at start (shared machine: numbers are noisy)")
    status = 0
    for name in names:
        say(f"\n########## {name}")
        try:
            BENCHMARKS[name]()
        except Exception as e:  # noqa: BLE001 (one broken benchmark must not hide the others' numbers)
            say(f"\n{name} FAILED: {type(e).__name__}: {e}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
