#!/usr/bin/python3
"""What metrics cost on the produce path: one real broker, PLAINTEXT produce with bulwark_loadgen
(librdkafka, acks=1, 1 KiB records), alternating runs with nobody scraping, with /metrics scraped once
a second (Prometheus' usual interval is 15-60 s, so this is 15x or more), and scraped 20 times a second.
Every produce request already counts into the registry either way (there is no switch that turns
the counting off), so what differs is the scrape: rendering the exposition, taking the counters'
locks, and the per-topic and per-partition collectors. Reported: the broker CPU one scrape costs
(200 scrapes of an idle broker), then produce MB/s and broker CPU-seconds per GB for each variant,
best of BENCH_REPS (3), and the ratios against the unscraped run.

Builds nothing; BULWARK_BIN and BULWARK_LOADGEN as for bench/broker_bench.py, whose helpers this uses.
BENCH_METRICS_MESSAGES (1500000 a run, a few seconds, so that a run sees scrapes), BENCH_SIZE (1024),
BENCH_TOPICS (20: more series for each scrape to render).
Not a test: numbers to look at."""
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import broker_bench as bench  # noqa: E402  (finds the binaries, imports the test harness)

REPS = int(os.environ.get("BENCH_REPS", "3"))
TOPICS = int(os.environ.get("BENCH_TOPICS", "20"))
MESSAGES = int(os.environ.get("BENCH_METRICS_MESSAGES", "1500000"))
SCRAPES_PER_SECOND = {"not scraped": 0, "scraped 1/s": 1, "scraped 20/s": 20}


class Scraper(threading.Thread):
    def __init__(self, port, per_second):
        super().__init__(daemon=True)
        self.url, self.interval = f"http://127.0.0.1:{port}/metrics", 1.0 / per_second
        self.stop, self.scrapes, self.bytes = threading.Event(), 0, 0

    def run(self):
        while not self.stop.wait(self.interval):
            with urllib.request.urlopen(self.url, timeout=10) as answer:
                self.bytes += len(answer.read())
                self.scrapes += 1


def produce(broker, topic, per_second, port):
    scraper = Scraper(port, per_second) if per_second else None
    if scraper:
        scraper.start()
    try:
        result = bench.loadgen("produce", broker, "PLAINTEXT", topic, "--messages", MESSAGES, "--size",
                               bench.SIZE, "--acks", "1", "--compression", "none")
    finally:
        if scraper:
            scraper.stop.set()
            scraper.join()
    result["scrapes"] = scraper.scrapes if scraper else 0
    result["exposition_bytes"] = scraper.bytes // max(scraper.scrapes, 1) if scraper else 0
    result["cpu_s_per_gb"] = result["broker_cpu_s"] / (MESSAGES * bench.SIZE / 1e9)
    bench.delete_topic(broker, topic)  # each run writes GBs: give the disk back
    return result


def scrape_cost(broker, port, count=200):
    """(broker CPU ms per scrape, exposition bytes) on an idle broker."""
    cpu0 = bench.cpu_seconds(broker.proc.pid)
    size = 0
    for _ in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            size = len(answer.read())
    return (bench.cpu_seconds(broker.proc.pid) - cpu0) * 1000 / count, size


def main():
    if not bench.LOADGEN:
        bench.say("no bulwark_loadgen: build it (ninja -C build bulwark_loadgen) or set BULWARK_LOADGEN")
        return 2
    root = Path(tempfile.mkdtemp(prefix="bulwark-metrics-bench."))
    port = bench.harness.free_port_block(range(1))
    broker = None
    try:
        pki = bench.harness.Pki(root, clients=("admin-1",))
        broker = bench.harness.Broker(root, pki, extra={"metrics.listener": f"http://127.0.0.1:{port}"})
        broker.props.pop("log.flush.interval.messages", None)
        broker.start()
        # Other topics with data give each scrape series to render, as on a real broker.
        others = [f"filler-{i}" for i in range(TOPICS)]
        bench.create_topics(broker, others)
        for name in others:
            bench.loadgen("produce", broker, "PLAINTEXT", name, "--messages", 10, "--size", 100, "--acks", "1")
        per_scrape_ms, size = scrape_cost(broker, port)
        bench.say(f"one scrape of an idle broker ({TOPICS + 1} topics, {size} B of exposition): {per_scrape_ms:.2f} "
                  f"broker CPU-ms; at one scrape a second, {per_scrape_ms / 10:.3f} % of a core")
        runs = {variant: [] for variant in SCRAPES_PER_SECOND}
        for rep in range(REPS):  # interleaved, so background load hits every variant alike
            for i, (variant, per_second) in enumerate(SCRAPES_PER_SECOND.items()):
                topic = f"metrics-bench-{rep}-{i}"
                bench.create_topics(broker, [topic])
                r = produce(broker, topic, per_second, port)
                runs[variant].append(r)
                bench.say(f"  rep {rep + 1} {variant:13s} {r['mb_per_s']:7.1f} MB/s  broker {r['cpu_s_per_gb']:.2f} "
                          f"CPU-s/GB  {r['scrapes']} scrapes of {r['exposition_bytes']} B")
        baseline = bench.best(runs["not scraped"])
        bench.say("\n== metrics cost on produce (best of each; ratio against not scraped) ==")
        for variant in SCRAPES_PER_SECOND:
            b = bench.best(runs[variant])
            cpu = min(r["cpu_s_per_gb"] for r in runs[variant])
            base_cpu = min(r["cpu_s_per_gb"] for r in runs["not scraped"])
            bench.say(f"{variant:13s} {b['mb_per_s']:7.1f} MB/s ({b['mb_per_s'] / baseline['mb_per_s']:.3f})  "
                      f"{cpu:.2f} broker CPU-s/GB ({cpu / base_cpu:.3f})")
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
