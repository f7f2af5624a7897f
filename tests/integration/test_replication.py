"""Replicated partitions on a three-node cluster of real processes (mTLS everywhere), with real clients:
- acks=all records survive the loss of the leader, and of the next leader after the first one came
  back and was made leader again by a preferred-leader election, with no duplicates from an
  idempotent producer;
- acks=all waits for the ISR and times out with REQUEST_TIMED_OUT when a follower stalls; consumers
  and ListOffsets see only what the ISR has (the high watermark); the ISR shrinks after
  replica.lag.time.max.ms, min.insync.replicas then refuses acks=all with NOT_ENOUGH_REPLICAS, and the
  follower, whose log the leader's DeleteRecords left behind its log start, starts over there and
  rejoins the ISR once it is back;
- with min.insync.replicas=2 and two of three replicas' brokers down (a separate controller keeps the
  quorum, so the ISR can shrink), acks=all is refused with NOT_ENOUGH_REPLICAS and accepted again once
  one broker is back in the ISR."""
import os
import signal
import socket
import ssl
import struct
import time
import uuid

import clients
import kafka_wire
from cluster_harness import Cluster
from harness import BIN, run, wait_for

FAST = {"replica.lag.time.max.ms": "3000", "replica.fetch.wait.max.ms": "200", "replica.fetch.backoff.ms": "200",
        "auto.leader.rebalance.enable": "false"}
NONE, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, ELECTION_NOT_NEEDED = 0, 7, 19, 84
# A node that comes back starts, registers, catches up and rejoins the ISR: on a loaded 2-core CI
# machine running other cluster tests beside this one, that can take longer than wait_for's 40 s.
CATCH_UP_S = 120


def admin_client(cluster, node):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": cluster.bootstrap(node), **clients.librdkafka_conf(cluster.admin)})


def partition_state(admin, topic):
    """(leader, replicas, isr) of partition 0 as the broker's Metadata says ((-1, [], []) while the
    broker asked does not know the topic yet)."""
    partitions = admin.list_topics(topic, timeout=15).topics[topic].partitions
    if 0 not in partitions:
        return -1, [], []
    p = partitions[0]
    return p.leader, sorted(p.replicas), sorted(p.isrs)


def known_partition_state(admin, topic):
    """partition_state once the broker asked knows the topic and its leader (Metadata may come from a
    broker whose image is a moment behind)."""
    return wait_for("the partition's leader in Metadata", lambda: (lambda s: s[0] >= 0 and s)(partition_state(admin, topic)))


def create_replicated_topic(cluster, admin, min_insync):
    from confluent_kafka.admin import NewTopic
    topic = f"replicated-{uuid.uuid4().hex[:8]}"
    # Placement needs the three brokers registered, which the first topic creation does not show.
    wait_for("three registered brokers", lambda: len(admin.list_topics(timeout=15).brokers) >= 3)
    admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": str(min_insync)})])[topic].result(timeout=30)
    wait_for("a leader and a full ISR", lambda: (lambda s: s[0] >= 0 and len(s[2]) == 3 and s)(partition_state(admin, topic)))
    return topic


def active_controller(cluster, node):
    out = run(BIN, "quorum", "describe", "--status", "--bootstrap-server", cluster.bootstrap(node),
              "--ca", cluster.admin["ca"], "--cert", cluster.admin["cert"], "--key", cluster.admin["key"]).stdout
    return int(dict(line.split(":", 1) for line in out.splitlines() if ":" in line)["LeaderId"].strip())


def node_by_id(cluster, node_id):
    return next(n for n in cluster.nodes if n.node_id == node_id)


def mtls_call(cluster, node, api_key, version, body, timeout=30):
    context = ssl.create_default_context(cafile=cluster.admin["ca"])
    context.load_cert_chain(cluster.admin["cert"], cluster.admin["key"])
    with socket.create_connection((node.host, node.port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(kafka_wire.request(api_key, version, 7, body))
            return kafka_wire.read_frame(sock, timeout=timeout)


def produce(cluster, node, topic, values, acks, timeout_ms=10000):
    """(error code, base offset, seconds) of one Produce v3 of `values` to partition 0."""
    records = kafka_wire.record_batch(values)
    body = kafka_wire.string(None) + struct.pack(">hi", acks, timeout_ms)
    body += struct.pack(">i", 1) + kafka_wire.string(topic) + struct.pack(">i", 1)
    body += struct.pack(">i", 0) + struct.pack(">i", len(records)) + records
    started = time.time()
    payload = mtls_call(cluster, node, 0, 3, body, timeout=timeout_ms / 1000 + 30)
    error, base = kafka_wire.parse_produce_v3_response(payload)
    return error, base, time.time() - started


def latest_offset(cluster, node, topic):
    """ListOffsets v1 latest for partition 0: the high watermark (what consumers can read)."""
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + kafka_wire.string(topic) + struct.pack(">iiq", 1, 0, -1)
    payload = mtls_call(cluster, node, 2, 1, body)
    (name_len,) = struct.unpack_from(">h", payload, 8)
    _, error, _, offset = struct.unpack_from(">ihqq", payload, 8 + 2 + name_len + 4)
    assert error == NONE, error
    return offset


def elect_preferred_leader(cluster, node, topic):
    """ElectLeaders v1 (PREFERRED) for partition 0, as kafka-leader-election.sh sends it: the error code."""
    body = struct.pack(">b", 0) + struct.pack(">i", 1) + kafka_wire.string(topic) + struct.pack(">ii", 1, 0)
    body += struct.pack(">i", 30000)
    payload = mtls_call(cluster, node, 43, 1, body)
    _, top_error, _ = struct.unpack_from(">ihi", payload, 4)
    (name_len,) = struct.unpack_from(">h", payload, 14)
    _, _, error = struct.unpack_from(">iih", payload, 14 + 2 + name_len)
    assert top_error == NONE, top_error
    return error


def delete_records_before(cluster, node, topic, offset):
    """DeleteRecords v0 for partition 0: (error code, low watermark)."""
    body = struct.pack(">i", 1) + kafka_wire.string(topic) + struct.pack(">iiq", 1, 0, offset) + struct.pack(">i", 10000)
    payload = mtls_call(cluster, node, 21, 0, body)
    (name_len,) = struct.unpack_from(">h", payload, 12)
    _, low, error = struct.unpack_from(">iqh", payload, 12 + 2 + name_len + 4)
    return error, low


def consume_all(cluster, nodes, topic, timeout=60):
    """Every record value of partition 0 up to the high watermark, read through `nodes`."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    bootstrap = ",".join(cluster.bootstrap(n) for n in nodes)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                         **clients.librdkafka_conf(cluster.admin)})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values, last = [], -1
        deadline = time.time() + timeout
        while last < high - 1 and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value().decode())
            last = msg.offset()
        assert last >= high - 1, f"read up to {last}, high watermark {high}"
        return values
    finally:
        consumer.close()


def produce_while(cluster, topic, count, during):
    """Produces `count` records (acks=all, idempotent) through every node, calling during() after a
    third of them; returns the values the brokers acknowledged."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": ",".join(cluster.bootstrap(n) for n in cluster.nodes), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 90000,
                         "retry.backoff.ms": 100, **clients.librdkafka_conf(cluster.admin)})
    acked = []
    for i in range(count):
        producer.produce(topic, value=f"v{i}", on_delivery=lambda err, msg: acked.append(msg.value().decode())
                         if err is None else None)
        producer.poll(0)
        if i == count // 3:
            producer.flush(30)
            during()
        time.sleep(0.002)
    assert producer.flush(120) == 0
    return acked


def test_acknowledged_records_survive_two_leader_failures(tmp_path):
    cluster = Cluster(tmp_path, props=FAST)
    cluster.start()
    try:
        first = cluster.nodes[0]
        cluster.wait_until_created(first)
        admin = admin_client(cluster, first)
        topic = create_replicated_topic(cluster, admin, min_insync=2)
        old_leader = node_by_id(cluster, known_partition_state(admin, topic)[0])

        acked = produce_while(cluster, topic, 3000, old_leader.kill)
        assert len(acked) == 3000, len(acked)  # two of three replicas stay: min.insync.replicas=2 holds
        survivors = [n for n in cluster.nodes if n is not old_leader]
        values = consume_all(cluster, survivors, topic)
        assert set(acked) <= set(values), sorted(set(acked) - set(values))[:10]
        assert len(values) == len(set(values)), "duplicates after failover with enable.idempotence"

        # The old leader comes back, truncates what it alone had, catches up and rejoins the ISR; a
        # preferred-leader election (kafka-leader-election.sh) gives it the leadership back.
        cluster.start([old_leader])
        survivor_admin = admin_client(cluster, survivors[0])
        wait_for("the restarted node back in the ISR", lambda: len(partition_state(survivor_admin, topic)[2]) == 3,
                 timeout=CATCH_UP_S)
        assert elect_preferred_leader(cluster, survivors[0], topic) == NONE
        wait_for("the preferred leader back", lambda: partition_state(survivor_admin, topic)[0] == old_leader.node_id)
        assert elect_preferred_leader(cluster, survivors[0], topic) == ELECTION_NOT_NEEDED
        second_leader = old_leader
        second_leader.kill()
        remaining = [n for n in cluster.nodes if n is not second_leader]
        remaining_admin = admin_client(cluster, remaining[0])
        wait_for("a new leader after the second failover",
                 lambda: partition_state(remaining_admin, topic)[0] not in (second_leader.node_id, -1))
        values = consume_all(cluster, remaining, topic)
        assert set(acked) <= set(values), sorted(set(acked) - set(values))[:10]
        assert len(values) == len(set(values))
        for node in cluster.nodes:
            assert "Fatal" not in node.log_text()
    finally:
        cluster.stop()


def test_acks_all_waits_for_the_isr_and_min_insync_replicas_holds(tmp_path):
    cluster = Cluster(tmp_path, props=FAST)
    cluster.start()
    try:
        first = cluster.nodes[0]
        cluster.wait_until_created(first)
        admin = admin_client(cluster, first)
        topic = create_replicated_topic(cluster, admin, min_insync=3)
        leader_id, replicas, _ = known_partition_state(admin, topic)
        leader = node_by_id(cluster, leader_id)
        controller = active_controller(cluster, first)
        stalled = node_by_id(cluster, next(i for i in replicas if i not in (leader_id, controller)))
        admin = admin_client(cluster, leader)  # never the stalled node, which answers nothing while stopped

        assert produce(cluster, leader, topic, [b"a", b"b"], acks=-1)[0] == NONE
        assert latest_offset(cluster, leader, topic) == 2

        os.kill(stalled.proc.pid, signal.SIGSTOP)
        try:
            # Written on the leader, but not on every ISR member: invisible to consumers.
            error, base, _ = produce(cluster, leader, topic, [b"c"], acks=1)
            assert (error, base) == (NONE, 2)
            assert latest_offset(cluster, leader, topic) == 2
            error, _, took = produce(cluster, leader, topic, [b"d"], acks=-1, timeout_ms=500)
            assert error == REQUEST_TIMED_OUT and took < 5, (error, took)
            # After replica.lag.time.max.ms the ISR shrinks, and min.insync.replicas=3 refuses acks=all.
            wait_for("the ISR without the stalled follower",
                     lambda: stalled.node_id not in partition_state(admin, topic)[2])
            assert produce(cluster, leader, topic, [b"e"], acks=-1)[0] == NOT_ENOUGH_REPLICAS
            assert produce(cluster, leader, topic, [b"f"], acks=1)[0] == NONE
            # a, b, c, d (timed out, but written) and f are on the ISR now: all readable.
            wait_for("the high watermark at the log end", lambda: latest_offset(cluster, leader, topic) == 5)
            # The leader's log then starts past what the stalled follower has.
            assert delete_records_before(cluster, leader, topic, 5) == (NONE, 5)
        finally:
            os.kill(stalled.proc.pid, signal.SIGCONT)
        # It starts its replica over at the leader's log start, catches up and rejoins the ISR.
        wait_for("the follower back in the ISR", lambda: len(partition_state(admin, topic)[2]) == 3, timeout=CATCH_UP_S)
        assert "restarting the replica there" in stalled.log_text()
        assert produce(cluster, leader, topic, [b"g"], acks=-1)[0] == NONE
        assert latest_offset(cluster, leader, topic) == 6
        assert consume_all(cluster, [leader], topic) == ["g"]
    finally:
        cluster.stop()


def test_min_insync_replicas_refuses_writes_with_two_brokers_down(tmp_path):
    cluster = Cluster(tmp_path, props=FAST, size=4)
    _, brokers = cluster.separate_roles(controllers=1)
    cluster.start()
    try:
        cluster.wait_until_created(brokers[0])
        admin = admin_client(cluster, brokers[0])
        topic = create_replicated_topic(cluster, admin, min_insync=2)
        leader = node_by_id(cluster, known_partition_state(admin, topic)[0])
        down = [n for n in brokers if n is not leader]
        admin = admin_client(cluster, leader)
        assert produce(cluster, leader, topic, [b"a"], acks=-1)[0] == NONE

        for node in down:
            node.kill()
        # The controller fences both (broker.session.timeout.ms) and takes them out of the ISR.
        wait_for("an ISR of the leader alone", lambda: partition_state(admin, topic)[2] == [leader.node_id])
        assert produce(cluster, leader, topic, [b"refused"], acks=-1)[0] == NOT_ENOUGH_REPLICAS
        assert produce(cluster, leader, topic, [b"refused again"], acks=-1)[0] == NOT_ENOUGH_REPLICAS

        cluster.start([down[0]])
        wait_for("the restarted broker back in the ISR", lambda: len(partition_state(admin, topic)[2]) == 2,
                 timeout=CATCH_UP_S)
        assert produce(cluster, leader, topic, [b"b"], acks=-1)[0] == NONE
        assert consume_all(cluster, [leader], topic) == ["a", "b"]
    finally:
        cluster.stop()
