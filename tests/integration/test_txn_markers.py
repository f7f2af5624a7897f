"""Transactions, the data path, over the raw wire: WriteTxnMarkers (API 27) from a cluster-action
principal appends COMMIT/ABORT control batches that a read_uncommitted fetch shows, read_committed
fetches list the aborted transactions, ListOffsets read_committed answers the last stable offset, an
older coordinator epoch is fenced, a principal without CLUSTER_ACTION hears CLUSTER_AUTHORIZATION_FAILED,
and a transactional produce outside any transaction the coordinator knows is refused (KIP-890)."""
import socket
import ssl
import struct
import uuid

import clients
import kafka_wire as kw
from harness import Broker, Pki

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def write_txn_markers_v1(markers):
    """markers: [(producer_id, producer_epoch, commit, coordinator_epoch, topic, [partitions])]."""
    body = kw.uvarint(len(markers) + 1)
    for pid, epoch, commit, coordinator_epoch, topic, partitions in markers:
        body += struct.pack(">qhb", pid, epoch, 1 if commit else 0)
        body += kw.uvarint(2) + kw.compact_string(topic) + kw.compact_int32s(partitions) + b"\0"
        body += struct.pack(">i", coordinator_epoch) + b"\0"
    body += b"\0"
    return kw.flexible_request(27, 1, body)


def parse_write_txn_markers_v1(frame):
    """{(producer_id, topic, partition): error_code}."""
    r = kw.FlexReader(frame, 4)
    r.skip_tags()
    out = {}
    for _ in range(r.uvarint() - 1):
        pid = r.take(">q")
        for _ in range(r.uvarint() - 1):
            topic = r.string()
            for _ in range(r.uvarint() - 1):
                partition, error = r.take(">i"), r.take(">h")
                r.skip_tags()
                out[(pid, topic, partition)] = error
            r.skip_tags()
        r.skip_tags()
    return out


def fetch_v12(topic, partition, offset, isolation_level):
    parts = struct.pack(">iiqiqi", partition, -1, offset, -1, -1, 1 << 20) + b"\0"
    topics = kw.uvarint(2) + kw.compact_string(topic) + kw.uvarint(2) + parts + b"\0"
    body = struct.pack(">iiiibii", -1, 100, 1, 1 << 24, isolation_level, 0, -1) + topics + kw.uvarint(1)
    body += kw.compact_string("") + b"\0"
    return kw.flexible_request(1, 12, body)


def parse_fetch_v12(frame):
    """(error, high_watermark, last_stable_offset, aborted [(pid, first)], records bytes) of the one partition."""
    r = kw.FlexReader(frame, 4)
    r.skip_tags()
    r.take(">i"), r.take(">h"), r.take(">i")  # throttle, error, session id
    assert r.uvarint() == 2
    r.string()
    assert r.uvarint() == 2
    r.take(">i")
    error, hw, lso = r.take(">h"), r.take(">q"), r.take(">q")
    r.take(">q")  # log start offset
    n = r.uvarint()
    aborted = []
    for _ in range(max(n - 1, 0)):
        aborted.append((r.take(">q"), r.take(">q")))
        r.skip_tags()
    r.take(">i")  # preferred read replica
    size = max(r.uvarint() - 1, 0)
    records = frame[r.pos:r.pos + size]
    return error, hw, lso, aborted, records


def control_batches(records):
    """[(base_offset, producer_id, marker type)] of the control batches in a records blob."""
    out, pos = [], 0
    while pos + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        attributes = struct.unpack_from(">h", records, pos + 21)[0]
        producer_id = struct.unpack_from(">q", records, pos + 43)[0]
        if attributes & 0x20:
            # One record: length varint, attributes, timestamp/offset deltas, key length varint, key.
            # The marker key is 4 bytes (version, type); its type is the key's last two bytes.
            batch = records[pos:pos + 12 + length]
            key_at = batch.find(b"\x08\x00\x00", 61)  # key length 4 (zigzag 8), version 0
            out.append((base, producer_id, struct.unpack_from(">h", batch, key_at + 3)[0]))
        pos += 12 + length
    return out


def list_offsets_v2(topic, partition, isolation_level):
    body = struct.pack(">ib", -1, isolation_level) + struct.pack(">i", 1) + kw.string(topic)
    body += struct.pack(">i", 1) + struct.pack(">iq", partition, -1)
    return kw.request(2, 2, 7, body)


def parse_list_offsets_v2(frame):
    pos = 4 + 4  # correlation id, throttle
    pos += 4
    (name_len,) = struct.unpack_from(">h", frame, pos)
    pos += 2 + name_len + 4
    _, error, _, offset = struct.unpack_from(">ihqq", frame, pos)
    return error, offset


def produce_transactional_v3(topic, transactional_id):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True, producer_id=77,
                                        producer_epoch=0, base_sequence=0, batch_size=1 << 20)
    builder.append(0, timestamp=1_700_000_000_000, key=None, value=b"in a transaction", headers=[])
    records = bytes(builder.build())
    body = kw.string(transactional_id) + struct.pack(">hi", -1, 10000)
    body += struct.pack(">i", 1) + kw.string(topic) + struct.pack(">i", 1)
    body += struct.pack(">i", 0) + struct.pack(">i", len(records)) + records
    return kw.request(0, 3, 5, body)


def describe_producers_v0(topic, partitions):
    body = kw.uvarint(2) + kw.compact_string(topic) + kw.compact_int32s(partitions) + b"\0" + b"\0"
    return kw.flexible_request(61, 0, body)


def parse_describe_producers_v0(frame):
    """{partition: (error, {producer_id: (epoch, last_sequence, coordinator_epoch, txn_start)})}."""
    r = kw.FlexReader(frame, 4)
    r.skip_tags()
    r.take(">i")
    out = {}
    for _ in range(r.uvarint() - 1):
        r.string()
        for _ in range(r.uvarint() - 1):
            partition, error = r.take(">i"), r.take(">h")
            r.string()
            producers = {}
            for _ in range(r.uvarint() - 1):
                pid, epoch, last_sequence = r.take(">q"), r.take(">i"), r.take(">i")
                r.take(">q")
                coordinator_epoch, txn_start = r.take(">i"), r.take(">q")
                r.skip_tags()
                producers[pid] = (epoch, last_sequence, coordinator_epoch, txn_start)
            r.skip_tags()
            out[partition] = (error, producers)
        r.skip_tags()
    return out


def mtls_socket(broker, pki, user):
    cert, key, ca = pki.pem(user)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", broker.ports["MTLS"])),
                               server_hostname="localhost")


def call(sock, frame):
    sock.sendall(frame)
    reply = kw.read_frame(sock)
    assert reply is not None, "the broker closed the connection"
    return reply


def test_markers_reach_the_log_and_read_committed_sees_them(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1", "client-1"))
    broker = Broker(tmp_path, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1;User:broker-1",  # brokers write transaction markers (CLUSTER_ACTION)
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    }).start()
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    try:
        conf = {"bootstrap.servers": broker.bootstrap("MTLS"),
                **clients.librdkafka_conf(clients.security(pki, "MTLS", "admin-1"))}
        admin_client = AdminClient(conf)
        admin_client.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        producer = Producer({**conf, "acks": "all"})
        for i in range(2):
            producer.produce(topic, value=f"v{i}".encode(), partition=0)
        assert producer.flush(30) == 0

        admin = mtls_socket(broker, pki, "admin-1")
        # COMMIT for producer 4242 (coordinator epoch 5), ABORT for producer 4343.
        results = parse_write_txn_markers_v1(call(admin, write_txn_markers_v1([
            (4242, 0, True, 5, topic, [0]),
            (4343, 0, False, 5, topic, [0]),
        ])))
        assert results == {(4242, topic, 0): 0, (4343, topic, 0): 0}, results

        # read_uncommitted sees both control batches at offsets 2 and 3.
        error, hw, lso, aborted, records = parse_fetch_v12(call(admin, fetch_v12(topic, 0, 0, 0)))
        assert error == 0 and hw == 4 and lso == 4, (error, hw, lso)
        assert control_batches(records) == [(2, 4242, 1), (3, 4343, 0)]
        assert aborted == []

        # read_committed: everything is decided (LSO = HW); the abort is listed for the consumer.
        error, hw, lso, aborted, records = parse_fetch_v12(call(admin, fetch_v12(topic, 0, 0, 1)))
        assert (error, hw, lso) == (0, 4, 4)
        assert aborted == [(4343, 3)], aborted
        assert len(control_batches(records)) == 2

        # ListOffsets LATEST: read_committed answers the last stable offset.
        assert parse_list_offsets_v2(call(admin, list_offsets_v2(topic, 0, 1))) == (0, lso)
        assert parse_list_offsets_v2(call(admin, list_offsets_v2(topic, 0, 0))) == (0, hw)

        # A marker from an older coordinator epoch is fenced (TRANSACTION_COORDINATOR_FENCED).
        results = parse_write_txn_markers_v1(call(admin, write_txn_markers_v1([(4242, 0, False, 4, topic, [0])])))
        assert results == {(4242, topic, 0): 52}, results
        # A partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION.
        results = parse_write_txn_markers_v1(call(admin, write_txn_markers_v1([(4242, 0, True, 5, topic, [7])])))
        assert results == {(4242, topic, 7): 3}, results

        # DescribeProducers: the producer table, with the coordinator epoch each marker left.
        described = parse_describe_producers_v0(call(admin, describe_producers_v0(topic, [0])))
        assert described == {0: (0, {4242: (0, -1, 5, -1), 4343: (0, -1, 5, -1)})}, described

        # A transactional produce outside any transaction the coordinator knows is refused by KIP-890's
        # check (the partition was never added), and nothing is appended (the high watermark below).
        reply = call(admin, produce_transactional_v3(topic, "tx-1"))
        assert kw.parse_produce_v3_response(reply)[0] not in (0, 42)
        # Without WRITE on the transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
        other = mtls_socket(broker, pki, "client-1")
        assert kw.parse_produce_v3_response(call(other, produce_transactional_v3(topic, "tx-1")))[0] == 53

        # Without CLUSTER_ACTION: CLUSTER_AUTHORIZATION_FAILED, and no marker is written.
        results = parse_write_txn_markers_v1(call(other, write_txn_markers_v1([(4545, 0, True, 5, topic, [0])])))
        assert results == {(4545, topic, 0): 31}, results
        # DescribeProducers needs READ on the topic: TOPIC_AUTHORIZATION_FAILED.
        assert parse_describe_producers_v0(call(other, describe_producers_v0(topic, [0])))[0][0] == 29
        error, hw, _, _, _ = parse_fetch_v12(call(admin, fetch_v12(topic, 0, 0, 0)))
        assert (error, hw) == (0, 4)
    finally:
        broker.stop()
