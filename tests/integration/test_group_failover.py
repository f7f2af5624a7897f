"""Consumer groups on a three-node cluster of real processes (mTLS), with librdkafka's consumer:
__consumer_offsets is created with offsets.topic.replication.factor copies of each partition, a group's
coordinator is the leader of partition abs(javaHashCode(group)) % partitions (Kafka's rule, so Kafka's
tools find the same broker), and when that broker is killed the group carries on with the partition's
new leader: every commit the old coordinator acknowledged is still there, and consumption goes on
from it."""
import time
import uuid

import clients
from cluster_harness import Cluster
from harness import wait_for
from test_replication import FAST, admin_client, node_by_id

OFFSETS_PARTITIONS = 5


def java_partition(group, partitions):
    """Kafka's partitionFor: Utils.abs(group.hashCode()) % partitions (Java's String.hashCode)."""
    h = 0
    for unit in group.encode("utf-16-be").hex(" ", 2).split():
        h = (h * 31 + int(unit, 16)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def test_java_partition_matches_known_hash_codes():
    # Known String.hashCode values from the JDK: "hello" = 99162322, "" = 0, "polygenelubricants" =
    # Integer.MIN_VALUE (which Kafka's Utils.abs maps to 0).
    assert java_partition("hello", 50) == 99162322 % 50
    assert java_partition("polygenelubricants", 7) == 0


def consume(consumer, count, timeout=90):
    """(value, partition, offset) of the next `count` records."""
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        out.append((msg.value().decode(), msg.partition(), msg.offset()))
    assert len(out) == count, f"consumed {len(out)} of {count}"
    return out


def committed(consumer, topic, timeout=60):
    """{partition: committed offset} as the group's coordinator answers, retried through a failover."""
    from confluent_kafka import TopicPartition
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            answer = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
            if all(tp.error is None for tp in answer):
                return {tp.partition: tp.offset for tp in answer}
            last = [tp.error for tp in answer]
        except Exception as e:  # KafkaException while the coordinator moves
            last = e
        time.sleep(0.5)
    raise AssertionError(f"no committed offsets from the coordinator: {last}")


def test_a_group_carries_on_across_a_coordinator_failover(tmp_path):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import NewTopic
    cluster = Cluster(tmp_path, props={**FAST, "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
                                       "group.initial.rebalance.delay.ms": "0"})
    cluster.start()
    try:
        first = cluster.nodes[0]
        cluster.wait_until_created(first)
        admin = admin_client(cluster, first)
        topic = f"orders-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=30)
        wait_for("leaders with full ISRs", lambda: all(
            p.leader >= 0 and len(p.isrs) == 3 for p in admin.list_topics(topic, timeout=15).topics[topic].partitions.values()))
        bootstrap = ",".join(cluster.bootstrap(n) for n in cluster.nodes)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             **clients.librdkafka_conf(cluster.admin)})
        values = [f"v{i}" for i in range(300)]
        for i, v in enumerate(values):
            producer.produce(topic, value=v, partition=i % 3)
        assert producer.flush(60) == 0

        group = f"billing-{uuid.uuid4().hex[:6]}"
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                             "heartbeat.interval.ms": 500, **clients.librdkafka_conf(cluster.admin)})
        consumer.subscribe([topic])
        seen = consume(consumer, 120)
        consumer.commit(asynchronous=False)
        before = committed(consumer, topic)
        positions = {}
        for _, p, offset in seen:
            positions[p] = max(positions.get(p, 0), offset + 1)
        NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: a partition nothing was read from yet
        assert before == {p: positions.get(p, NO_OFFSET) for p in range(3)}, (before, positions)

        # The topic the coordinators created: the configured partitions, three copies of each.
        offsets_topic = admin.list_topics("__consumer_offsets", timeout=15).topics["__consumer_offsets"]
        assert len(offsets_topic.partitions) == OFFSETS_PARTITIONS
        assert all(len(p.replicas) == 3 for p in offsets_topic.partitions.values())
        partition = java_partition(group, OFFSETS_PARTITIONS)
        coordinator = node_by_id(cluster, offsets_topic.partitions[partition].leader)
        assert f"__consumer_offsets-{partition}: coordinating its groups" in coordinator.log_text()

        coordinator.kill()
        survivors = [n for n in cluster.nodes if n is not coordinator]
        survivor_admin = admin_client(cluster, survivors[0])
        wait_for("a new leader of the group's partition", lambda: admin_leader(survivor_admin, partition) not in
                 (-1, coordinator.node_id), timeout=60)
        # Every acknowledged commit is there on the new coordinator.
        after = committed(consumer, topic)
        assert after == before, (before, after)

        # The group goes on from its commits: the rest of the records, and a commit the new
        # coordinator acknowledges.
        seen += consume(consumer, 180, timeout=120)
        assert set(values) <= {v for v, _, _ in seen}
        consumer.commit(asynchronous=False)
        assert committed(consumer, topic) == {0: 100, 1: 100, 2: 100}
        consumer.close()
        new_coordinator = node_by_id(cluster, admin_leader(survivor_admin, partition))
        assert f"__consumer_offsets-{partition}: coordinating its groups" in new_coordinator.log_text()
    finally:
        cluster.stop()


def admin_leader(admin, partition):
    return admin.list_topics("__consumer_offsets", timeout=15).topics["__consumer_offsets"].partitions[partition].leader
