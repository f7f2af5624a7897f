"""Fetch sessions (KIP-227) on the wire, with Fetch v12 as a Java consumer sends it: a full fetch opens a
session, incremental fetches send only what changed and hear only about partitions with news, and the
session errors are Kafka's (FETCH_SESSION_ID_NOT_FOUND 70, INVALID_FETCH_SESSION_EPOCH 71)."""
import socket
import ssl
import struct
import uuid

import clients
import kafka_wire as kw
from harness import Broker, Pki


def fetch_v12(session_id, epoch, partitions, forgotten=(), topic="t", max_wait_ms=200):
    """partitions: [(partition, fetch_offset)], all of `topic`."""
    parts = b"".join(struct.pack(">iiqiqi", p, -1, offset, -1, -1, 1 << 20) + b"\0" for p, offset in partitions)
    topics = (kw.uvarint(2) + kw.compact_string(topic) + kw.uvarint(len(partitions) + 1) + parts + b"\0") \
        if partitions else kw.uvarint(1)
    forgot = (kw.uvarint(2) + kw.compact_string(topic) + kw.compact_int32s(list(forgotten)) + b"\0") \
        if forgotten else kw.uvarint(1)
    body = struct.pack(">iiiibii", -1, max_wait_ms, 1, 1 << 24, 0, session_id, epoch) + topics + forgot
    body += kw.compact_string("") + b"\0"
    return kw.flexible_request(1, 12, body)


def parse_fetch_v12(frame):
    """(error_code, session_id, {(topic, partition): (error, high_watermark, record_bytes)})."""
    r = kw.FlexReader(frame, 4)
    r.skip_tags()  # response header v1
    r.take(">i")  # throttle
    error, session_id = r.take(">h"), r.take(">i")
    listed = {}
    for _ in range(r.uvarint() - 1):
        topic = r.string()
        for _ in range(r.uvarint() - 1):
            partition, perror, hw = r.take(">i"), r.take(">h"), r.take(">q")
            r.take(">q"), r.take(">q")  # last stable offset, log start offset
            r.array(lambda: (r.take(">q"), r.take(">q"), r.skip_tags()))  # aborted transactions
            r.take(">i")  # preferred read replica
            n = r.uvarint()
            size = max(n - 1, 0)
            r.pos += size
            r.skip_tags()
            listed[(topic, partition)] = (perror, hw, size)
        r.skip_tags()
    r.skip_tags()
    return error, session_id, listed


def call(sock, frame):
    sock.sendall(frame)
    return parse_fetch_v12(kw.read_frame(sock))


def test_incremental_fetches_list_only_partitions_with_news(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra={"num.partitions": "2"}).start()
    topic = f"sessions-{uuid.uuid4().hex[:8]}"
    try:
        bootstrap, sec = broker.bootstrap("PLAINTEXT"), clients.security(pki, "PLAINTEXT")
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(3):
            producer.produce(topic, value=f"v{i}".encode(), partition=0)
        assert producer.flush(30) == 0
        sock = socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]))

        error, session, listed = call(sock, fetch_v12(0, 0, [(0, 0), (1, 0)], topic=topic))
        assert error == 0 and session != 0, "a full fetch at epoch 0 opened no session"
        assert set(listed) == {(topic, 0), (topic, 1)}
        assert listed[(topic, 0)][1] == 3 and listed[(topic, 0)][2] > 0

        # Partition 0 moved on to offset 3; nothing else changed: an incremental answer without news.
        error, same, listed = call(sock, fetch_v12(session, 1, [(0, 3)], topic=topic))
        assert (error, same, listed) == (0, session, {})

        # Records arrive on partition 1, which the incremental fetch does not name: it is listed, alone.
        producer.produce(topic, value=b"late", partition=1)
        assert producer.flush(30) == 0
        error, _, listed = call(sock, fetch_v12(session, 2, [], topic=topic))
        assert error == 0 and set(listed) == {(topic, 1)}, listed
        assert listed[(topic, 1)][1] == 1 and listed[(topic, 1)][2] > 0

        # Partition 1 is forgotten: new records there are no longer news for this session.
        producer.produce(topic, value=b"later", partition=1)
        assert producer.flush(30) == 0
        error, _, listed = call(sock, fetch_v12(session, 3, [], forgotten=[1], topic=topic))
        assert (error, listed) == (0, {})

        # Kafka's session errors: a wrong epoch, an unknown id, and another principal's session.
        assert call(sock, fetch_v12(session, 9, [], topic=topic))[:2] == (71, 0)
        assert call(sock, fetch_v12(session ^ 0x5555, 1, [], topic=topic))[:2] == (70, 0)
        cert, key, ca = pki.pem("admin-1")
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        other = context.wrap_socket(socket.create_connection(("127.0.0.1", broker.ports["MTLS"])),
                                    server_hostname="localhost")
        assert call(other, fetch_v12(session, 4, [], topic=topic))[:2] == (70, 0), \
            "another principal continued this session"
        # The owner carries on at the next epoch; epoch -1 closes the session.
        assert call(sock, fetch_v12(session, 4, [], topic=topic))[0] == 0
        error, closed, listed = call(sock, fetch_v12(session, -1, [(0, 0)], topic=topic))
        assert (error, closed) == (0, 0) and set(listed) == {(topic, 0)}
        assert call(sock, fetch_v12(session, 5, [], topic=topic))[:2] == (70, 0)
    finally:
        broker.stop()
