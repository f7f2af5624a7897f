#!/usr/bin/python3
"""The KRaft quorum of three real `bulwark broker` processes (combined roles, mTLS on every listener,
the nodes as super users), on loopback:
1. metadata commits per second: CreateTopics requests (BENCH_TOPICS topics of 1 partition, BENCH_BATCH per
   request, BENCH_INFLIGHT requests in flight), counted as topics/s and as metadata records/s from the
   leader's high watermark (`bulwark quorum describe`);
2. replicated produce: BENCH_MESSAGES records of BENCH_SIZE bytes through bulwark_loadgen (librdkafka)
   over mTLS, to a topic with replication factor 1 (acks=1) and to one with replication factor 3
   (acks=1 and acks=all, min.insync.replicas=2): MB/s, p50/p99 latency, and the ratios against the
   unreplicated run of the same process set;
3. election time after kill -9 of the leader, over BENCH_KILLS kills: from the kill until a survivor
   logs that it is the active controller, p50 and p99, and as a ratio of the election timeout and of
   fetch timeout + election timeout (a follower notices a dead leader when its fetch times out).
Kafka's default timeouts unless BENCH_ELECTION_MS / BENCH_FETCH_MS say otherwise. Not a test: it prints
numbers. Run: /usr/bin/python3 bench/cluster_bench.py"""
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
import tempfile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import clients  # noqa: E402
import cluster_harness as faults  # noqa: E402
from harness import BIN, run  # noqa: E402

TOPICS = int(os.environ.get("BENCH_TOPICS", "2000"))
BATCH = int(os.environ.get("BENCH_BATCH", "10"))
INFLIGHT = int(os.environ.get("BENCH_INFLIGHT", "8"))
KILLS = int(os.environ.get("BENCH_KILLS", "20"))
ELECTION_MS = int(os.environ.get("BENCH_ELECTION_MS", "1000"))
FETCH_MS = int(os.environ.get("BENCH_FETCH_MS", "2000"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200000"))
SIZE = int(os.environ.get("BENCH_SIZE", "1024"))
LOADGEN = os.environ.get("BULWARK_LOADGEN") or str(max(HERE.parent.glob("build*/bench/loadgen/bulwark_loadgen"),
                                                        key=lambda p: p.stat().st_mtime, default=""))


def high_watermark(cluster, node):
    out = run(BIN, "quorum", "describe", "--status", "--bootstrap-server", cluster.bootstrap(node),
              "--ca", cluster.admin["ca"], "--cert", cluster.admin["cert"], "--key", cluster.admin["key"]).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(fields["HighWatermark"].strip()), int(fields["LeaderId"].strip())


def commits_per_second(cluster):
    from confluent_kafka.admin import AdminClient, NewTopic
    first = cluster.nodes[0]
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(first), **clients.librdkafka_conf(cluster.admin)})
    cluster.wait_until_created(first)
    hw_before, _ = high_watermark(cluster, first)
    names = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(TOPICS)]
    batches = [names[i:i + BATCH] for i in range(0, len(names), BATCH)]
    started = time.time()
    pending = []
    for batch in batches:
        pending.append(admin.create_topics([NewTopic(n, 1, 1) for n in batch], operation_timeout=30))
        while len(pending) >= INFLIGHT:
            for f in pending.pop(0).values():
                f.result(timeout=60)
    for futures in pending:
        for f in futures.values():
            f.result(timeout=60)
    elapsed = time.time() - started
    hw_after, _ = high_watermark(cluster, first)
    records = hw_after - hw_before
    print(f"metadata commits: {TOPICS} topics in {elapsed:.2f} s = {TOPICS / elapsed:.0f} topics/s, "
          f"{records} records = {records / elapsed:.0f} records/s "
          f"({BATCH} topics per CreateTopics, {INFLIGHT} in flight, 3 voters, mTLS)")


def loadgen_produce(cluster, topic, acks):
    import json
    cmd = [LOADGEN, "produce", "--bootstrap", cluster.bootstrap(cluster.nodes[0]), "--topic", topic,
           "--messages", str(MESSAGES), "--size", str(SIZE), "--acks", acks, "-X", "security.protocol=ssl",
           "-X", f"ssl.ca.location={cluster.admin['ca']}", "-X", f"ssl.certificate.location={cluster.admin['cert']}",
           "-X", f"ssl.key.location={cluster.admin['key']}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"loadgen gave no result: {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def replicated_produce(cluster):
    from confluent_kafka.admin import AdminClient, NewTopic
    if not LOADGEN:
        print("replicated produce: no bulwark_loadgen (ninja -C build bulwark_loadgen); skipped")
        return
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(cluster.nodes[0]), **clients.librdkafka_conf(cluster.admin)})
    runs = [("RF=1 acks=1", 1, "1"), ("RF=3 acks=1", 3, "1"), ("RF=3 acks=all", 3, "all")]
    results = {}
    for name, rf, acks in runs:
        topic = f"bench-rf{rf}-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 1, rf, config={"min.insync.replicas": "2" if rf == 3 else "1"})])[topic].result(60)
        time.sleep(2)  # followers connect and the ISR settles
        r = loadgen_produce(cluster, topic, acks)
        results[name] = r
        print(f"replicated produce {name:14s}: {r['mb_per_s']:7.1f} MB/s, p50 {r['latency_us']['p50'] / 1000:6.1f} ms, "
              f"p99 {r['latency_us']['p99'] / 1000:6.1f} ms, {r['failed']} failed ({MESSAGES} x {SIZE} B, mTLS)")
    base = results["RF=1 acks=1"]["mb_per_s"]
    print(f"replicated produce ratios: RF=3 acks=1 / RF=1 = {results['RF=3 acks=1']['mb_per_s'] / base:.2f}, "
          f"RF=3 acks=all / RF=1 = {results['RF=3 acks=all']['mb_per_s'] / base:.2f}")


def election_times(cluster):
    if KILLS <= 0:
        return
    times = []
    for _ in range(KILLS):
        _, leader = high_watermark(cluster, cluster.nodes[0] if cluster.nodes[0].proc.poll() is None else cluster.nodes[1])
        victim = next(n for n in cluster.nodes if n.node_id == leader)
        survivors = [n for n in cluster.nodes if n is not victim]
        before = sum(n.log_text().count(" active in epoch ") for n in survivors)
        victim.kill()
        killed = time.time()
        while sum(n.log_text().count(" active in epoch ") for n in survivors) == before:
            if time.time() - killed > 60:
                raise SystemExit("no new controller within 60 s")
            time.sleep(0.005)
        times.append(time.time() - killed)
        cluster.start([victim])
        cluster.wait_until_created(victim)
    times.sort()
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    budget = (FETCH_MS + ELECTION_MS) / 1000
    print(f"election after kill -9 of the leader ({KILLS} kills): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
          f"p50 = {p50 / (ELECTION_MS / 1000):.2f}x election timeout, = {p50 / budget:.2f}x (fetch + election timeout)")


def main():
    faults.ELECTION_TIMEOUT_MS = ELECTION_MS
    with tempfile.TemporaryDirectory(prefix="bulwark-cluster-bench-") as root:
        cluster = faults.Cluster(Path(root))
        for node in cluster.nodes:
            node.props["controller.quorum.election.timeout.ms"] = str(ELECTION_MS)
            node.props["controller.quorum.fetch.timeout.ms"] = str(FETCH_MS)
            node.props["broker.session.timeout.ms"] = "9000"
            node.props["broker.heartbeat.interval.ms"] = "2000"
        cluster.start()
        try:
            commits_per_second(cluster)
            replicated_produce(cluster)
            election_times(cluster)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
