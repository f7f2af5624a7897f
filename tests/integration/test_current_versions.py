"""The newest versions of the data APIs, on the wire as Kafka 3.7's Java clients send them (no Debian or npm
client speaks them yet): Fetch v13-v15 name topics by id (KIP-516) and answer UNKNOWN_TOPIC_ID for an id
the broker does not know, in and out of fetch sessions; ListOffsets v7 finds the record with the largest
timestamp (KIP-734) and v8 the local log start (KIP-405); and, on a three-node cluster, Produce v10 and
Fetch v16 sent to a broker that does not lead the partition name the leader and its endpoint (KIP-951)."""
import os
import socket
import ssl
import struct
import time
import uuid

import clients
import kafka_wire as kw
from cluster_harness import Cluster
from harness import Broker, Pki

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

UNKNOWN_TOPIC_ID, NOT_LEADER_OR_FOLLOWER = 100, 6


def read_tags(r):
    """A flexible structure's tagged fields as {tag: bytes}."""
    tags = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        tags[tag] = r.data[r.pos:r.pos + size]
        r.pos += size
    return tags


def metadata_v12_topic_id(sock, topic):
    body = kw.uvarint(2) + bytes(16) + kw.compact_string(topic) + b"\0" + struct.pack(">bb", 0, 0) + b"\0"
    sock.sendall(kw.flexible_request(3, 12, body))
    r = kw.FlexReader(kw.read_frame(sock), 4)
    r.skip_tags()
    r.take(">i")  # throttle
    r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string(), r.skip_tags()))  # brokers
    r.string(), r.take(">i")  # cluster id, controller id
    for _ in range(r.uvarint() - 1):
        error, name = r.take(">h"), r.string()
        topic_id = r.data[r.pos:r.pos + 16]
        r.pos += 16
        assert error == 0 and name == topic, (error, name)
        return bytes(topic_id)
    raise AssertionError(f"Metadata did not list {topic}")


def fetch_by_id(version, session_id, epoch, topics, forgotten=(), max_wait_ms=100):
    """Fetch v13-v16 (consumer). topics: [(topic_id, [(partition, fetch_offset, current_leader_epoch)])];
    forgotten: [(topic_id, [partitions])]."""
    def topic_entry(topic_id, partitions):
        parts = b"".join(struct.pack(">iiqiqi", p, epoch_, offset, -1, -1, 1 << 20) + b"\0"
                         for p, offset, epoch_ in partitions)
        return topic_id + kw.uvarint(len(partitions) + 1) + parts + b"\0"
    body = b"" if version >= 15 else struct.pack(">i", -1)  # v15 moved the replica id into ReplicaState
    body += struct.pack(">iiibii", max_wait_ms, 1, 1 << 24, 0, session_id, epoch)
    body += kw.uvarint(len(topics) + 1) + b"".join(topic_entry(t, ps) for t, ps in topics)
    body += kw.uvarint(len(forgotten) + 1) + b"".join(t + kw.compact_int32s(ps) + b"\0" for t, ps in forgotten)
    body += kw.compact_string("") + b"\0"
    return kw.flexible_request(1, version, body)


def parse_fetch(frame):
    """(error, session_id, {(topic_id, partition): {error, hw, records, tags}}, top-level tags)."""
    r = kw.FlexReader(frame, 4)
    r.skip_tags()
    r.take(">i")
    error, session_id = r.take(">h"), r.take(">i")
    listed = {}
    for _ in range(r.uvarint() - 1):
        topic_id = bytes(r.data[r.pos:r.pos + 16])
        r.pos += 16
        for _ in range(r.uvarint() - 1):
            partition, perror, hw = r.take(">i"), r.take(">h"), r.take(">q")
            r.take(">q"), r.take(">q")
            r.array(lambda: (r.take(">q"), r.take(">q"), r.skip_tags()))
            r.take(">i")
            size = max(r.uvarint() - 1, 0)
            r.pos += size
            listed[(topic_id, partition)] = {"error": perror, "hw": hw, "records": size, "tags": read_tags(r)}
        r.skip_tags()
    return error, session_id, listed, read_tags(r)


def call_fetch(sock, frame):
    sock.sendall(frame)
    return parse_fetch(kw.read_frame(sock))


def list_offsets(version, topic, timestamp):
    """ListOffsets v6+ (flexible): one partition (0) of `topic` at `timestamp`; returns (error, ts, offset)."""
    body = struct.pack(">ib", -1, 0) + kw.uvarint(2) + kw.compact_string(topic)
    body += kw.uvarint(2) + struct.pack(">iiq", 0, -1, timestamp) + b"\0" + b"\0" + b"\0"
    return kw.flexible_request(2, version, body)


def parse_list_offsets(frame):
    r = kw.FlexReader(frame, 4)
    r.skip_tags()
    r.take(">i")
    assert r.uvarint() == 2
    r.string()
    assert r.uvarint() == 2
    _, error, ts, offset = r.take(">i"), r.take(">h"), r.take(">q"), r.take(">q")
    return error, ts, offset


def test_fetch_by_topic_id_in_and_out_of_sessions(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra={"num.partitions": "2"}).start()
    topic = f"ids-{uuid.uuid4().hex[:8]}"
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "acks": "all"})
        for i in range(3):
            producer.produce(topic, value=f"v{i}".encode(), partition=0)
        assert producer.flush(30) == 0
        sock = socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]))
        topic_id = metadata_v12_topic_id(sock, topic)
        assert topic_id != bytes(16)
        stranger = os.urandom(16)

        for version in (13, 15):
            error, session, listed, _ = call_fetch(sock, fetch_by_id(version, 0, -1, [(topic_id, [(0, 0, -1), (1, 0, -1)]),
                                                                                    (stranger, [(0, 0, -1)])]))
            assert error == 0 and session == 0
            assert listed[(topic_id, 0)]["error"] == 0 and listed[(topic_id, 0)]["hw"] == 3
            assert listed[(topic_id, 0)]["records"] > 0, f"v{version} by topic id returned no records"
            assert listed[(topic_id, 1)]["error"] == 0 and listed[(topic_id, 1)]["records"] == 0
            assert listed[(stranger, 0)]["error"] == UNKNOWN_TOPIC_ID, listed

        # A session opened by id: an incremental fetch hears only news, forgetting by id drops a partition.
        error, session, listed, _ = call_fetch(sock, fetch_by_id(13, 0, 0, [(topic_id, [(0, 3, -1), (1, 0, -1)])]))
        assert error == 0 and session != 0 and set(listed) == {(topic_id, 0), (topic_id, 1)}
        error, _, listed, _ = call_fetch(sock, fetch_by_id(13, session, 1, []))
        assert (error, listed) == (0, {}), "an incremental fetch without news listed partitions"
        producer.produce(topic, value=b"late", partition=1)
        assert producer.flush(30) == 0
        error, _, listed, _ = call_fetch(sock, fetch_by_id(13, session, 2, [], forgotten=[(topic_id, [0])]))
        assert error == 0 and set(listed) == {(topic_id, 1)} and listed[(topic_id, 1)]["records"] > 0
        producer.produce(topic, value=b"forgotten", partition=0)
        assert producer.flush(30) == 0
        error, _, listed, _ = call_fetch(sock, fetch_by_id(13, session, 3, [(topic_id, [(1, 1, -1)])]))
        assert (error, listed) == (0, {}), "partition 0 was forgotten by id, yet the session still watches it"

        # A topic deleted under an open session: its partitions answer UNKNOWN_TOPIC_ID until forgotten.
        del producer
        admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
        admin.delete_topics([topic])[topic].result(30)
        error, _, listed, _ = call_fetch(sock, fetch_by_id(13, session, 4, []))
        assert error == 0 and listed[(topic_id, 1)]["error"] == UNKNOWN_TOPIC_ID, listed
        error, _, listed, _ = call_fetch(sock, fetch_by_id(13, session, 5, [], forgotten=[(topic_id, [1])]))
        assert (error, listed) == (0, {}), "a deleted topic's partition could not be forgotten by its id"
        sock.close()
    finally:
        broker.stop()


def test_list_offsets_max_timestamp_and_local_start(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra={"num.partitions": "1"}).start()
    topic = f"times-{uuid.uuid4().hex[:8]}"
    base = int(time.time() * 1000) - 60_000
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "acks": "all", "linger.ms": 0})
        for shift in (1000, 5000, 3000, 5000, 2000):  # the largest timestamp first at offset 1
            producer.produce(topic, value=b"x", partition=0, timestamp=base + shift)
            assert producer.flush(30) == 0  # one batch each, so the answer is the record, not its batch
        sock = socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]))

        def ask(version, timestamp):
            sock.sendall(list_offsets(version, topic, timestamp))
            return parse_list_offsets(kw.read_frame(sock))

        assert ask(7, -3) == (0, base + 5000, 1)
        assert ask(8, -4) == (0, -1, 0)
        assert ask(8, -1) == (0, -1, 5)
        assert ask(8, base + 2500) == (0, base + 5000, 1), "not the first record at or after the timestamp"
        assert ask(8, base + 5500) == (0, -1, -1)
        sock.close()
    finally:
        broker.stop()


def tls_socket(cluster, node):
    context = ssl.create_default_context(cafile=cluster.admin["ca"])
    context.load_cert_chain(cluster.admin["cert"], cluster.admin["key"])
    context.check_hostname = False
    return context.wrap_socket(socket.create_connection((node.host, node.port)))


def produce_v10(topic, value):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    builder.append(0, timestamp=int(time.time() * 1000), key=None, value=value, headers=[])
    records = bytes(builder.build())
    body = kw.compact_string(None) + struct.pack(">hi", -1, 10000) + kw.uvarint(2) + kw.compact_string(topic)
    body += kw.uvarint(2) + struct.pack(">i", 0) + kw.uvarint(len(records) + 1) + records + b"\0" + b"\0" + b"\0"
    return kw.flexible_request(0, 10, body)


def parse_produce_v10(frame):
    """(error, partition tags, top-level tags) of the one partition."""
    r = kw.FlexReader(frame, 4)
    r.skip_tags()
    assert r.uvarint() == 2
    r.string()
    assert r.uvarint() == 2
    _, error = r.take(">i"), r.take(">h")
    r.take(">q"), r.take(">q"), r.take(">q")
    r.array(lambda: (r.take(">i"), r.string(), r.skip_tags()))
    r.string()
    partition_tags = read_tags(r)
    r.skip_tags()
    r.take(">i")  # throttle
    return error, partition_tags, read_tags(r)


def leader_and_endpoints(current_leader, top_tags):
    """KIP-951: (leader id, leader epoch) from the partition's CurrentLeader tag, {node id: (host, port)}
    from the response's NodeEndpoints (tag 0)."""
    leader, epoch = struct.unpack(">ii", current_leader[:8])
    r = kw.FlexReader(top_tags[0])
    endpoints = {}
    for _ in range(r.uvarint() - 1):
        node, host, port = r.take(">i"), r.string(), r.take(">i")
        r.string()
        r.skip_tags()
        endpoints[node] = (host, port)
    return leader, epoch, endpoints


def test_a_broker_that_does_not_lead_names_the_leader(tmp_path):
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        cluster.wait_until_created(cluster.nodes[0])
        topic = f"hints-{uuid.uuid4().hex[:8]}"
        assert cluster.create_topic(cluster.nodes[0], topic)[0] is None
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap(cluster.nodes[0]), **clients.librdkafka_conf(cluster.admin)})
        leader = None
        for _ in range(100):
            partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
            if partitions and partitions[0].leader >= 0:
                leader = partitions[0].leader
                break
            time.sleep(0.2)
        assert leader is not None, "the topic got no leader"
        leader_node = next(n for n in cluster.nodes if n.node_id == leader)
        other = next(n for n in cluster.nodes if n.node_id != leader)
        sock = tls_socket(cluster, other)

        sock.sendall(produce_v10(topic, b"to the wrong broker"))
        error, partition_tags, top_tags = parse_produce_v10(kw.read_frame(sock))
        assert error == NOT_LEADER_OR_FOLLOWER
        hinted, epoch, endpoints = leader_and_endpoints(partition_tags[0], top_tags)  # Produce: tag 0
        assert hinted == leader and epoch >= 0
        assert endpoints[leader] == (leader_node.host, leader_node.port), endpoints

        topic_id = metadata_v12_topic_id(sock, topic)
        _, _, listed, top_tags = call_fetch(sock, fetch_by_id(16, 0, -1, [(topic_id, [(0, 0, -1)])]))
        out = listed[(topic_id, 0)]
        assert out["error"] == NOT_LEADER_OR_FOLLOWER
        hinted, epoch, endpoints = leader_and_endpoints(out["tags"][1], top_tags)  # Fetch: tag 1
        assert (hinted, endpoints[leader]) == (leader, (leader_node.host, leader_node.port))

        # Below v16 (and v10) the answer carries no hint, as in Kafka.
        _, _, listed, top_tags = call_fetch(sock, fetch_by_id(15, 0, -1, [(topic_id, [(0, 0, -1)])]))
        assert listed[(topic_id, 0)]["error"] == NOT_LEADER_OR_FOLLOWER
        assert listed[(topic_id, 0)]["tags"] == {} and top_tags == {}
        sock.close()
    finally:
        cluster.stop()
