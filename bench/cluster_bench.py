#!/usr/bin/python3
"""The KRaft quorum of three real `bulwark broker` processes (combined roles, mTLS on every listener,
the nodes as super users), on loopback:
1. metadata commits per second: CreateTopics requests (BENCH_TOPICS topics of 1 partition, BENCH_BATCH per
   request, BENCH_INFLIGHT requests in flight), counted as topics/s and as metadata records/s from the
   leader's high watermark (`bulwark quorum describe`);
2. replicated produce: BENCH_MESSAGES records of BENCH_SIZE bytes through bulwark_loadgen (librdkafka)
   over PLAINTEXT and over mTLS, to a topic with replication factor 1 (acks=1) and to one with
   replication factor 3 (acks=1 and acks=all, min.insync.replicas=2): MB/s, p50/p99 latency, the CPU
   seconds of all brokers per GB, the ratios against the unreplicated run of the same process set and
   mTLS against PLAINTEXT;
3. follower lag under full load: the bytes the slowest follower is behind the leader while loadgen
   produces flat out, p50/p99/max, and in milliseconds of that load;
4. the fsync-before-ack mode (flush.messages=1, acks=all) in records/s against dd's rate of 1 KiB
   synchronous writes (oflag=dsync) on the same disk, in the same run;
5. the produce stall during a partition leader kill, over BENCH_STALL_KILLS kills: the longest
   acknowledgement wait of an idempotent acks=all producer's records sent around the kill, p50/p99,
   against broker.session.timeout.ms;
6. election time after kill -9 of the leader, over BENCH_KILLS kills: from the kill until a survivor
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
from broker_bench import cpu_seconds  # noqa: E402
from harness import BIN, free_port, run  # noqa: E402

TOPICS = int(os.environ.get("BENCH_TOPICS", "2000"))
BATCH = int(os.environ.get("BENCH_BATCH", "10"))
INFLIGHT = int(os.environ.get("BENCH_INFLIGHT", "8"))
KILLS = int(os.environ.get("BENCH_KILLS", "20"))
ELECTION_MS = int(os.environ.get("BENCH_ELECTION_MS", "1000"))
FETCH_MS = int(os.environ.get("BENCH_FETCH_MS", "2000"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200000"))
SIZE = int(os.environ.get("BENCH_SIZE", "1024"))
STALL_KILLS = int(os.environ.get("BENCH_STALL_KILLS", "10"))
RATE = int(os.environ.get("BENCH_RATE", "500"))
SESSION_MS = int(os.environ.get("BENCH_SESSION_MS", "9000"))
FSYNC_MESSAGES = int(os.environ.get("BENCH_FSYNC_MESSAGES", "5000"))
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


def loadgen_produce(cluster, topic, acks, listener="MTLS"):
    import json
    node = cluster.nodes[0]
    if listener == "PLAINTEXT":
        security = ["--bootstrap", f"{node.host}:{node.plaintext_port}"]
    else:
        security = ["--bootstrap", cluster.bootstrap(node), "-X", "security.protocol=ssl",
                    "-X", f"ssl.ca.location={cluster.admin['ca']}", "-X", f"ssl.certificate.location={cluster.admin['cert']}",
                    "-X", f"ssl.key.location={cluster.admin['key']}"]
    cmd = [LOADGEN, "produce", *security, "--topic", topic, "--messages", str(MESSAGES), "--size", str(SIZE),
           "--acks", acks]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"loadgen gave no result: {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def cluster_cpu_seconds(cluster):
    """The CPU seconds all three broker processes have used."""
    return sum(cpu_seconds(node.proc.pid) for node in cluster.nodes)


def replicated_produce(cluster):
    """RF=1 acks=1, RF=3 acks=1 and RF=3 acks=all (min.insync.replicas=2), each over PLAINTEXT and mTLS:
    MB/s, latency and the CPU seconds of all brokers together per GB produced (leader and followers: a
    replicated GB is written three times and fetched twice), then the ratios of each case."""
    from confluent_kafka.admin import AdminClient, NewTopic
    if not LOADGEN:
        print("replicated produce: no bulwark_loadgen (ninja -C build bulwark_loadgen); skipped")
        return
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(cluster.nodes[0]), **clients.librdkafka_conf(cluster.admin)})
    runs = [("RF=1 acks=1", 1, "1"), ("RF=3 acks=1", 3, "1"), ("RF=3 acks=all", 3, "all")]
    results = {}
    for name, rf, acks in runs:
        for listener in ("PLAINTEXT", "MTLS"):
            topic = f"bench-rf{rf}-{uuid.uuid4().hex[:8]}"
            admin.create_topics([NewTopic(topic, 1, rf, config={"min.insync.replicas": "2" if rf == 3 else "1"})])[topic].result(60)
            time.sleep(2)  # followers connect and the ISR settles
            cpu0 = cluster_cpu_seconds(cluster)
            r = loadgen_produce(cluster, topic, acks, listener)
            time.sleep(1)  # the followers finish fetching what was acknowledged with acks=1
            r["cpu_s_per_gb"] = (cluster_cpu_seconds(cluster) - cpu0) / (MESSAGES * SIZE / 1e9)
            results[(name, listener)] = r
            print(f"replicated produce {name:14s} {listener:9s}: {r['mb_per_s']:7.1f} MB/s, "
                  f"p50 {r['latency_us']['p50'] / 1000:6.1f} ms, p99 {r['latency_us']['p99'] / 1000:6.1f} ms, "
                  f"brokers {r['cpu_s_per_gb']:5.2f} CPU-s/GB, {r['failed']} failed ({MESSAGES} x {SIZE} B)")
    for listener in ("PLAINTEXT", "MTLS"):
        base = results[("RF=1 acks=1", listener)]["mb_per_s"]
        print(f"replicated produce ratios, {listener}: RF=3 acks=1 / RF=1 = "
              f"{results[('RF=3 acks=1', listener)]['mb_per_s'] / base:.2f}, RF=3 acks=all / RF=1 = "
              f"{results[('RF=3 acks=all', listener)]['mb_per_s'] / base:.2f}")
    for name, _, _ in runs:
        tls, plain = results[(name, "MTLS")], results[(name, "PLAINTEXT")]
        print(f"replicated produce {name:14s}: mTLS / PLAINTEXT MB/s = {tls['mb_per_s'] / plain['mb_per_s']:.2f}, "
              f"CPU-s/GB {plain['cpu_s_per_gb']:.2f} -> {tls['cpu_s_per_gb']:.2f}")


def add_plaintext_listeners(cluster):
    """A PLAINTEXT listener on every node for the plaintext columns (ANONYMOUS is made a super user):
    clients only, the brokers still replicate over mTLS."""
    for node in cluster.nodes:
        node.plaintext_port = free_port()
        node.props["listeners"] += f",PLAINTEXT://{node.host}:{node.plaintext_port}"
        node.props["advertised.listeners"] += f",PLAINTEXT://{node.host}:{node.plaintext_port}"
        node.props["listener.security.protocol.map"] += ",PLAINTEXT:PLAINTEXT"
        node.props["super.users"] += ";User:ANONYMOUS"


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


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def topic_admin(cluster, node):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": cluster.bootstrap(node), **clients.librdkafka_conf(cluster.admin)})


def partition_of(admin, topic):
    """(leader, sorted ISR) of partition 0; (-1, []) while the metadata does not list it yet."""
    p = admin.list_topics(topic, timeout=15).topics[topic].partitions.get(0)
    return (p.leader, sorted(p.isrs)) if p else (-1, [])


def new_replicated_topic(cluster, configs=None):
    from confluent_kafka.admin import NewTopic
    admin = topic_admin(cluster, cluster.nodes[0])
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2", **(configs or {})})])[topic].result(60)
    deadline = time.time() + 30
    while partition_of(admin, topic)[1] != [1, 2, 3] and time.time() < deadline:
        time.sleep(0.2)
    return topic


def produce_stall_during_leader_kills(cluster):
    """An idempotent acks=all producer at RATE msg/s while the partition leader is killed STALL_KILLS
    times: per kill, the longest time a record sent around the kill waited for its acknowledgement."""
    import threading
    from confluent_kafka import Producer
    if STALL_KILLS <= 0:
        return
    topic = new_replicated_topic(cluster)
    bootstrap = ",".join(cluster.bootstrap(n) for n in cluster.nodes)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 1,
                         "message.timeout.ms": 120000, **clients.librdkafka_conf(cluster.admin)})
    waits = []  # (sent, acknowledged)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            sent = time.time()
            producer.produce(topic, value=b"x" * 100,
                             on_delivery=lambda err, msg, sent=sent: waits.append((sent, time.time())) if err is None else None)
            producer.poll(0)
            time.sleep(1 / RATE)
        producer.flush(120)

    thread = threading.Thread(target=run)
    thread.start()
    stalls = []
    try:
        for _ in range(STALL_KILLS):
            time.sleep(2)
            live = next(n for n in cluster.nodes if n.proc.poll() is None)
            leader, _ = partition_of(topic_admin(cluster, live), topic)
            victim = next(n for n in cluster.nodes if n.node_id == leader)
            admin = topic_admin(cluster, next(n for n in cluster.nodes if n is not victim))
            killed = time.time()
            victim.kill()
            while partition_of(admin, topic)[0] in (leader, -1) and time.time() - killed < 120:
                time.sleep(0.05)
            time.sleep(1)
            cluster.start([victim])
            while partition_of(admin, topic)[1] != [1, 2, 3] and time.time() - killed < 180:
                time.sleep(0.2)
            window = [done - sent for sent, done in list(waits) if killed - 1 <= sent <= killed + 1]
            stalls.append(max(window) if window else float("nan"))
    finally:
        stop.set()
        thread.join()
    session = SESSION_MS / 1000
    p50, p99 = statistics.median(stalls), percentile(stalls, 0.99)
    print(f"produce stall over {STALL_KILLS} leader kills (acks=all, {RATE} msg/s): p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms; p50 = {p50 / session:.2f}x broker.session.timeout.ms (how long the controller "
          f"waits before it fences the dead leader)")


def follower_lag_under_load(cluster):
    """While bulwark_loadgen produces flat out (acks=1) to a 3-replica partition, the bytes the slowest
    follower's log is behind the leader's, sampled every 50 ms, and that lag in milliseconds of the load."""
    import threading
    if not LOADGEN:
        return
    topic = new_replicated_topic(cluster)
    leader_id, _ = partition_of(topic_admin(cluster, cluster.nodes[0]), topic)
    leader = next(n for n in cluster.nodes if n.node_id == leader_id)
    followers = [n for n in cluster.nodes if n is not leader]

    def size(node):
        return sum(f.stat().st_size for f in (node.log_dir / f"{topic}-0").glob("*.log"))

    samples, result = [], {}
    done = threading.Event()
    thread = threading.Thread(target=lambda: (result.update(loadgen_produce(cluster, topic, "1")), done.set()))
    thread.start()
    while not done.is_set():
        ahead = size(leader)
        samples.append(max(0, ahead - min(size(f) for f in followers)))
        time.sleep(0.05)
    thread.join()
    rate = result["mb_per_s"] * 1e6
    p50, p99, top = statistics.median(samples), percentile(samples, 0.99), max(samples)
    print(f"follower lag under load ({result['mb_per_s']:.1f} MB/s acks=1, {len(samples)} samples): p50 {p50 / 1e3:.0f} kB "
          f"= {p50 / rate * 1000:.1f} ms of load, p99 {p99 / 1e3:.0f} kB = {p99 / rate * 1000:.1f} ms, max {top / 1e3:.0f} kB")


def fsync_mode_against_the_disk(cluster):
    """flush.messages=1 (every append fdatasync'ed on the leader and each follower before the ack) with
    acks=all, against the disk's own rate of 1 KiB synchronous writes (dd oflag=dsync) in the same dir."""
    if not LOADGEN:
        return
    count = FSYNC_MESSAGES
    probe = cluster.nodes[0].log_dir / "dd-probe"
    out = subprocess.run(["dd", "if=/dev/zero", f"of={probe}", "bs=1k", f"count={count}", "oflag=dsync"],
                         capture_output=True, text=True)
    probe.unlink(missing_ok=True)
    line = out.stderr.strip().splitlines()[-1]  # "204800 bytes (205 kB, 200 KiB) copied, 1.23 s, 166 kB/s"
    seconds = float(line.split(",")[-2].split()[0])
    dd_rate = count / seconds
    topic = new_replicated_topic(cluster, {"flush.messages": "1"})
    global MESSAGES, SIZE
    saved = MESSAGES, SIZE
    MESSAGES, SIZE = count, 1024
    try:
        r = loadgen_produce(cluster, topic, "all")
    finally:
        MESSAGES, SIZE = saved
    rate = r["mb_per_s"] * 1e6 / 1024
    print(f"fsync before ack (flush.messages=1, acks=all, 3 replicas): {rate:.0f} records/s, p50 "
          f"{r['latency_us']['p50'] / 1000:.1f} ms, p99 {r['latency_us']['p99'] / 1000:.1f} ms; dd oflag=dsync 1 KiB: "
          f"{dd_rate:.0f} writes/s; ratio {rate / dd_rate:.2f}")


def main():
    faults.ELECTION_TIMEOUT_MS = ELECTION_MS
    with tempfile.TemporaryDirectory(prefix="bulwark-cluster-bench-") as root:
        cluster = faults.Cluster(Path(root))
        add_plaintext_listeners(cluster)
        for node in cluster.nodes:
            node.props["controller.quorum.election.timeout.ms"] = str(ELECTION_MS)
            node.props["controller.quorum.fetch.timeout.ms"] = str(FETCH_MS)
            node.props["broker.session.timeout.ms"] = str(SESSION_MS)
            node.props["broker.heartbeat.interval.ms"] = "2000"
        cluster.start()
        try:
            commits_per_second(cluster)
            replicated_produce(cluster)
            follower_lag_under_load(cluster)
            fsync_mode_against_the_disk(cluster)
            produce_stall_during_leader_kills(cluster)
            election_times(cluster)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
