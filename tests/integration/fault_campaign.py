"""Seeded fault runs against a three-node cluster whose nodes are hosts of their own (netns.py), with a
checker for Jepsen's Kafka anomalies. One run (run_seed) on a fresh topic and consumer group:

- workload: an idempotent acks=all producer (values "<seed>:<n>", round robin over 3 partitions,
  replication factor 3, min.insync.replicas=2) and a consumer in a group that commits every 40
  records, both in the test's namespace, talking to the nodes' addresses;
- one fault, picked by the seed: kill -9 of a node (restarted later), SIGSTOP/SIGCONT of a node,
  cutting a partition leader's links, or cutting the active controller's links (a minority of one);
  which node, when and for how long come from the seed as well;
- then the faults heal, the producer flushes, the consumer reads to the end and commits, and the
  checker reads every partition to its end twice and reports, each with its evidence:
  lost writes (acknowledged, not in the log), duplicates (one value at two offsets), inconsistent
  offsets (one offset, two values, between reads, acknowledgements and what the consumer saw),
  unseen writes (acknowledged, never consumed), non-monotonic polls (a consumer's offsets going
  backwards without a rebalance), positions behind an acknowledged commit, committed offsets lost,
  and replicas that are not byte-identical once they caught up.

scripts/fault-campaign runs many seeds; tests/integration/test_fault_campaign.py runs a fixed slice."""
import os
import random
import signal
import threading
import time
import uuid

import clients
from harness import wait_for

PARTITIONS = 3
KINDS = ("kill", "pause", "cut_leader", "cut_controller")


class History:
    """What the clients saw, from their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []          # (partition, offset, value)
        self.polled = []         # (session, partition, offset, value)
        self.commits = {}        # partition -> highest acknowledged committed offset
        self.session = 0         # +1 at every assignment: offsets may restart there
        self.session_start_commit = {}  # session -> {partition: acknowledged commit when it began}
        self.errors = []


def produce(conf, topic, seed, stop, history):
    from confluent_kafka import Producer
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 120000, "retry.backoff.ms": 100})

    def delivered(err, msg):
        with history.lock:
            if err is None:
                history.acked.append((msg.partition(), msg.offset(), msg.value().decode()))
            elif not err.retriable():
                history.errors.append(f"produce: {err}")

    n = 0
    while not stop.is_set():
        producer.produce(topic, value=f"{seed}:{n}", partition=n % PARTITIONS, on_delivery=delivered)
        producer.poll(0)
        n += 1
        time.sleep(0.004)
    if producer.flush(120) != 0:
        history.errors.append("produce: records still unacknowledged 120 s after the faults healed")
    return n


def consume(conf, topic, group, stop_when_done, history):
    from confluent_kafka import Consumer, KafkaException
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})

    def on_assign(_consumer, partitions):
        with history.lock:
            history.session += 1
            history.session_start_commit[history.session] = dict(history.commits)

    consumer.subscribe([topic], on_assign=on_assign)
    since_commit = 0

    def commit():
        try:
            for tp in consumer.commit(asynchronous=False) or []:
                if tp.error is None and tp.offset >= 0:
                    with history.lock:
                        history.commits[tp.partition] = max(history.commits.get(tp.partition, -1), tp.offset)
        except KafkaException:
            pass  # not acknowledged: nothing to hold the cluster to

    while not stop_when_done():
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        with history.lock:
            history.polled.append((history.session, msg.partition(), msg.offset(), msg.value().decode()))
        since_commit += 1
        if since_commit >= 40:
            commit()
            since_commit = 0
    commit()
    consumer.close()


def read_partition(conf, topic, partition, timeout=60):
    """[(offset, value)] of the partition from its start to its high watermark."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    consumer = Consumer({**conf, "group.id": "checker", "enable.auto.commit": False})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        out = []
        deadline = time.time() + timeout
        while (not out or out[-1][0] < high - 1) and high > 0 and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append((msg.offset(), msg.value().decode()))
        return out
    finally:
        consumer.close()


def committed_offsets(conf, topic, group):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in answer}
    finally:
        consumer.close()


def replica_bytes(node, topic, partition):
    directory = node.log_dir / f"{topic}-{partition}"
    return b"".join(f.read_bytes() for f in sorted(directory.glob("*.log"))) if directory.exists() else None


def check(history, reads, committed, replicas_equal):
    """Every anomaly found, as a line with its evidence (empty when none)."""
    anomalies = []
    final = {}
    for p in range(PARTITIONS):
        first, second = dict(reads[0][p]), dict(reads[1][p])
        for offset in first.keys() & second.keys():
            if first[offset] != second[offset]:
                anomalies.append(f"inconsistent offset {p}@{offset}: {first[offset]!r} then {second[offset]!r}")
        final[p] = {**second, **first}
    where = {}
    for p, log in final.items():
        for offset, value in log.items():
            where.setdefault(value, []).append((p, offset))
    for value, places in where.items():
        if len(places) > 1:
            anomalies.append(f"duplicate {value!r} at {places}")
    for p, offset, value in history.acked:
        # offset None: librdkafka acknowledged it implicitly (its own response was lost, a later batch of
        # the idempotent producer succeeded, so this one was written), without knowing where it went.
        if value not in where:
            anomalies.append(f"lost write {value!r} (acknowledged at {p}@{offset})")
        elif offset is not None and final[p].get(offset) != value:
            anomalies.append(f"inconsistent offset {p}@{offset}: acknowledged {value!r}, the log has {final[p].get(offset)!r}")
    seen = {value for _, _, _, value in history.polled}
    unseen = [v for _, _, v in history.acked if v not in seen]
    if unseen:
        anomalies.append(f"unseen writes: {len(unseen)} acknowledged values never consumed, e.g. {unseen[:3]}")
    last = {}
    for session, p, offset, value in history.polled:
        if final[p].get(offset, value) != value:
            anomalies.append(f"inconsistent offset {p}@{offset}: consumed {value!r}, the log has {final[p][offset]!r}")
        if (session, p) in last and offset <= last[(session, p)]:
            anomalies.append(f"non-monotonic poll on partition {p}: {offset} after {last[(session, p)]}")
        elif (session, p) not in last:
            floor = history.session_start_commit.get(session, {}).get(p, -1)
            if offset < floor:
                anomalies.append(f"position behind a commit on partition {p}: read {offset} after {floor} was committed")
        last[(session, p)] = offset
    for p, offset in history.commits.items():
        if committed.get(p, -1) < offset:
            anomalies.append(f"committed offset lost on partition {p}: {offset} was acknowledged, {committed.get(p)} is stored")
    for p, equal in replicas_equal.items():
        if not equal:
            anomalies.append(f"replicas of partition {p} differ after catching up")
    return anomalies + history.errors


def leader_of(admin, topic, partition):
    return admin.list_topics(topic, timeout=15).topics[topic].partitions[partition].leader


def active_controller(cluster, nodes):
    from harness import BIN, run
    for node in nodes:
        out = run(BIN, "quorum", "describe", "--status", "--bootstrap-server", cluster.bootstrap(node), "--ca",
                  cluster.admin["ca"], "--cert", cluster.admin["cert"], "--key", cluster.admin["key"], check=False).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        if "LeaderId" in fields:
            return int(fields["LeaderId"].strip())
    raise AssertionError("no node describes the quorum")


def inject(cluster, network, admin, topic, rng, kind):
    """Starts the fault; returns (what, heal)."""
    nodes = {n.node_id: n for n in cluster.nodes}
    if kind == "cut_leader":
        target = nodes[leader_of(admin, topic, rng.randrange(PARTITIONS))]
    elif kind == "cut_controller":
        target = nodes[active_controller(cluster, cluster.nodes)]
    else:
        target = rng.choice(cluster.nodes)
    if kind == "kill":
        target.kill()
        return f"kill -9 node {target.node_id}", lambda: cluster.start([target])
    if kind == "pause":
        os.kill(target.proc.pid, signal.SIGSTOP)
        return f"SIGSTOP node {target.node_id}", lambda: os.kill(target.proc.pid, signal.SIGCONT)
    network.cut(target.node_id)
    return f"cut node {target.node_id}'s links ({kind})", lambda: network.heal(target.node_id)


def run_seed(cluster, network, seed, duration=5.0):
    """One seeded run; returns (anomalies, summary line)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    conf = {"bootstrap.servers": ",".join(cluster.bootstrap(n) for n in cluster.nodes),
            **clients.librdkafka_conf(cluster.admin)}
    admin = AdminClient(conf)
    topic, group = f"campaign-{seed}-{uuid.uuid4().hex[:6]}", f"group-{seed}-{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[topic].result(timeout=60)
    wait_for("full ISRs", lambda: all(len(p.isrs) == 3 and p.leader >= 0 for p in
                                      admin.list_topics(topic, timeout=15).topics[topic].partitions.values()), timeout=60)
    history = History()
    stop_producing = threading.Event()
    produced = []
    producer = threading.Thread(target=lambda: produced.append(produce(conf, topic, seed, stop_producing, history)))
    consumed_all = threading.Event()
    consumer = threading.Thread(target=consume, args=(conf, topic, group, consumed_all.is_set, history))
    producer.start()
    consumer.start()
    started = time.time()
    try:
        time.sleep(rng.uniform(0.5, 1.5))
        what, heal = inject(cluster, network, admin, topic, rng, kind)
        held = rng.uniform(2.0, 4.0)
        time.sleep(held)
        heal()
        time.sleep(max(0.0, duration - (time.time() - started)))
    finally:
        stop_producing.set()
        producer.join(timeout=180)
        network.heal()
        for node in cluster.nodes:  # whatever happened, every node runs at the end
            if node.proc.poll() is not None:
                cluster.start([node])
            else:
                os.kill(node.proc.pid, signal.SIGCONT)
    # The consumer reads everything acknowledged, then commits and leaves.
    acked_values = {v for _, _, v in history.acked}
    deadline = time.time() + 90
    while time.time() < deadline and not acked_values <= {v for _, _, _, v in history.polled}:
        time.sleep(0.2)
    consumed_all.set()
    consumer.join(timeout=60)
    wait_for("full ISRs after healing", lambda: all(len(p.isrs) == 3 for p in
                                                    admin.list_topics(topic, timeout=15).topics[topic].partitions.values()),
             timeout=90)
    reads = [{p: read_partition(conf, topic, p) for p in range(PARTITIONS)} for _ in range(2)]
    committed = committed_offsets(conf, topic, group)

    def identical(p):
        copies = [replica_bytes(n, topic, p) for n in cluster.nodes]
        return copies[0] is not None and all(c == copies[0] for c in copies)
    replicas_equal = {}
    for p in range(PARTITIONS):
        deadline = time.time() + 30
        while not identical(p) and time.time() < deadline:
            time.sleep(0.5)
        replicas_equal[p] = identical(p)
    anomalies = check(history, reads, committed, replicas_equal)
    summary = (f"seed {seed}: {what} for {held:.1f}s; {len(history.acked)} of {produced[0] if produced else '?'} "
               f"records acknowledged, {len(history.polled)} consumed in {history.session} assignment(s), "
               f"{len(history.commits)} partition(s) committed; {len(anomalies)} anomaly(ies)")
    return anomalies, summary


def campaign_cluster(root, network):
    """A three-node cluster on the network's hosts with Kafka's failure detection shortened for tests."""
    from cluster_harness import Cluster
    props = {"replica.lag.time.max.ms": "3000", "replica.fetch.wait.max.ms": "200", "replica.fetch.backoff.ms": "200",
             "auto.leader.rebalance.enable": "false", "offsets.topic.num.partitions": "3",
             "group.initial.rebalance.delay.ms": "0"}
    cluster = Cluster(root, props=props, hosts=network.hosts())
    cluster.start()
    for node in cluster.nodes:  # every broker registered and serving
        cluster.wait_until_created(node)
    return cluster
