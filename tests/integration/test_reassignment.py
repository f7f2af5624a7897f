"""Partition reassignment on a four-node cluster of real processes (mTLS), with AlterPartitionReassignments
and ListPartitionReassignments as kafka-reassign-partitions.sh sends them: a partition on brokers 2 and
3 moves to brokers 3 and 4 while an idempotent acks=all producer writes to it. The new broker copies
the log and joins the ISR, the reassignment then completes (broker 2 leaves; its leadership, if it had
it, moves), every acknowledged record is on the new replicas exactly once, and broker 2 deletes its copy.
A cancel takes a reassignment back, and bad targets are refused with Kafka's codes."""
import struct
import threading
import uuid

import kafka_wire
from cluster_harness import Cluster
from harness import wait_for
from kafka_wire import FlexReader, compact_int32s, compact_string, flexible_request, uvarint
from test_replication import FAST, admin_client, consume_all, node_by_id, partition_state, produce_while

INVALID_REPLICA_ASSIGNMENT, NO_REASSIGNMENT_IN_PROGRESS = 39, 85


def flexible_call(cluster, node, api_key, body):
    """A v0 request of a flexible API over mTLS; a reader at the body after the response header v1."""
    import socket
    import ssl
    context = ssl.create_default_context(cafile=cluster.admin["ca"])
    context.load_cert_chain(cluster.admin["cert"], cluster.admin["key"])
    with socket.create_connection((node.host, node.port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(flexible_request(api_key, 0, body))
            reader = FlexReader(kafka_wire.read_frame(sock, timeout=30), 4)  # after the correlation id
    reader.skip_tags()
    return reader


def alter_reassignments(cluster, node, topic, targets):
    """AlterPartitionReassignments v0 for {partition: replicas or None (cancel)}: {partition: error code}."""
    partitions = b"".join(struct.pack(">i", p) + compact_int32s(r) + b"\x00" for p, r in targets.items())
    body = struct.pack(">i", 30000) + uvarint(2) + compact_string(topic) + uvarint(len(targets) + 1) + partitions
    body += b"\x00" + b"\x00"
    r = flexible_call(cluster, node, 45, body)
    r.take(">i")  # throttle
    assert r.take(">h") == 0
    r.string()
    errors = {}
    for _ in range(r.uvarint() - 1):
        r.string()
        for _ in range(r.uvarint() - 1):
            index, error = r.take(">i"), r.take(">h")
            r.string()
            r.skip_tags()
            errors[index] = error
        r.skip_tags()
    return errors


def list_reassignments(cluster, node):
    """ListPartitionReassignments v0 of every topic: {(topic, partition): (replicas, adding, removing)}."""
    r = flexible_call(cluster, node, 46, struct.pack(">i", 30000) + b"\x00" + b"\x00")
    r.take(">i")
    assert r.take(">h") == 0
    r.string()
    out = {}
    for _ in range(r.uvarint() - 1):
        name = r.string()
        for _ in range(r.uvarint() - 1):
            index = r.take(">i")
            out[(name, index)] = (r.int32s(), r.int32s(), r.int32s())
            r.skip_tags()
        r.skip_tags()
    return out


def run_catching(fn, failures):
    try:
        fn()
    except Exception as e:  # reported by the test's thread
        failures.append(e)


def test_a_partition_moves_to_a_new_broker_with_writes_running(tmp_path):
    from confluent_kafka.admin import NewTopic
    cluster = Cluster(tmp_path, props=FAST, size=4)
    cluster.start()
    try:
        first = cluster.nodes[0]
        cluster.wait_until_created(first)
        admin = admin_client(cluster, first)
        topic = f"moving-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 1, replica_assignment=[[2, 3]])])[topic].result(timeout=30)
        wait_for("a leader and a full ISR", lambda: (lambda s: s[0] >= 0 and s[2] == [2, 3])(partition_state(admin, topic)))
        leaving, arriving = node_by_id(cluster, 2), node_by_id(cluster, 4)

        # Bad targets first: nothing changes.
        assert alter_reassignments(cluster, first, topic, {0: [3, 3]}) == {0: INVALID_REPLICA_ASSIGNMENT}
        assert alter_reassignments(cluster, first, topic, {0: [3, 9]}) == {0: INVALID_REPLICA_ASSIGNMENT}
        assert alter_reassignments(cluster, first, topic, {0: None}) == {0: NO_REASSIGNMENT_IN_PROGRESS}
        assert list_reassignments(cluster, first) == {}

        seen_in_progress = []

        def move():
            assert alter_reassignments(cluster, first, topic, {0: [3, 4]}) == {0: 0}
            seen_in_progress.append(list_reassignments(cluster, first).get((topic, 0)))
            wait_for("the reassignment to complete", lambda: partition_state(admin, topic)[1] == [3, 4], timeout=60)

        # The move runs beside the producer: started after a third of the records, the rest keep coming.
        failures = []
        mover = threading.Thread(target=run_catching, args=(move, failures))
        acked = produce_while(cluster, topic, 3000, mover.start)
        mover.join(timeout=90)
        assert not failures, failures
        assert len(acked) == 3000
        # While it ran: the target first, then the leaving replica; 4 adding, 2 removing (unless it had
        # already completed by the time of the list).
        assert seen_in_progress[0] in (([3, 4, 2], [4], [2]), None), seen_in_progress
        leader, replicas, isr = partition_state(admin, topic)
        assert replicas == [3, 4] and sorted(isr) == [3, 4] and leader in (3, 4)
        assert list_reassignments(cluster, first) == {}
        values = consume_all(cluster, [node_by_id(cluster, 3), arriving], topic)
        assert set(acked) <= set(values), sorted(set(acked) - set(values))[:10]
        assert len(values) == len(set(values)), "duplicates"
        wait_for("broker 2 to delete its copy", lambda: not (leaving.log_dir / f"{topic}-0").exists())
        assert f"{topic}-0 moved to brokers 3,4" in leaving.log_text()
        # The new replica has the partition on disk.
        assert any((arriving.log_dir / f"{topic}-0").glob("*.log"))

        # A cancel takes an unfinished reassignment back: broker 1 never catches up while it is stopped.
        node_1 = node_by_id(cluster, 1)
        node_1.kill()
        assert alter_reassignments(cluster, arriving, topic, {0: [1, 3]}) == {0: 0}
        assert list_reassignments(cluster, arriving)[(topic, 0)] == ([1, 3, 4], [1], [4])
        assert alter_reassignments(cluster, arriving, topic, {0: None}) == {0: 0}
        assert list_reassignments(cluster, arriving) == {}
        assert partition_state(admin_client(cluster, arriving), topic)[1] == [3, 4]
    finally:
        cluster.stop()
