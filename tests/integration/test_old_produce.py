"""Produce v0-v2 with message formats v0/v1 (KIP-32), as Kafka 3.7 serves them: kafka-python speaking
0.8.2 (Produce v0, magic 0), 0.9 (Produce v1, magic 0) and 0.10.0 (Produce v2, magic 1), plain and gzip,
over PLAINTEXT and SSL; the broker converts them to v2 batches, which a modern consumer (confluent_kafka)
reads back with their keys, values and timestamps. Plus hand-built v0 requests: a bad CRC answers CORRUPT_MESSAGE."""
import socket
import struct
import uuid
import zlib

import pytest

import clients
import kafka_wire as kw
from harness import Broker, Pki

kafka = pytest.importorskip("kafka")
confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CORRUPT_MESSAGE = 2
BASE_TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("old-produce")
    broker = Broker(root, Pki(root)).start()
    yield broker
    broker.stop()


def new_topic(broker):
    topic = f"old-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    return topic


def consume(broker, topic, count):
    """(key, value, timestamp or None) of the first `count` records, read with librdkafka (Fetch v4+)."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "group.id": "unused",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    for _ in range(60):
        if len(out) >= count:
            break
        for msg in consumer.consume(count - len(out), timeout=1.0):
            assert msg.error() is None, msg.error()
            kind, ts = msg.timestamp()
            out.append((msg.key(), msg.value(), None if kind == TIMESTAMP_NOT_AVAILABLE or ts < 0 else ts))
    consumer.close()
    return out


@pytest.mark.parametrize("listener", ["PLAINTEXT", "SSL"])
@pytest.mark.parametrize("api_version", [(0, 8, 2), (0, 9), (0, 10, 0)])
@pytest.mark.parametrize("codec", [None, "gzip"])
def test_old_kafka_python_produces_and_a_modern_consumer_reads(cluster, listener, api_version, codec):
    from kafka import KafkaProducer
    topic = new_topic(cluster)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap(listener), api_version=api_version, acks="all",
                             compression_type=codec, linger_ms=20,
                             **clients.kafka_python_kwargs(clients.security(cluster.pki, listener)))
    sent = [(f"k{i}".encode() if i % 3 else None, f"value-{i}".encode() * (i + 1), BASE_TS + i) for i in range(30)]
    futures = [producer.send(topic, key=k, value=v, timestamp_ms=ts) for k, v, ts in sent]
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    assert sorted(offsets) == list(range(len(sent)))
    got = consume(cluster, topic, len(sent))
    magic1 = api_version >= (0, 10)
    # Message format v0 has no timestamp: the converted records carry none (-1), as in Kafka.
    assert got == [(k, v, ts if magic1 else None) for k, v, ts in sent]
    assert cluster.alive()


def message_v0(key, value):
    body = struct.pack(">bb", 0, 0) + struct.pack(">i", len(key)) + key + struct.pack(">i", len(value)) + value
    return struct.pack(">qiI", 0, len(body) + 4, zlib.crc32(body)) + body


def produce_v0(topic, message_set):
    body = struct.pack(">hi", 1, 10000) + struct.pack(">i", 1) + kw.string(topic) + struct.pack(">i", 1)
    return body + struct.pack(">i", 0) + struct.pack(">i", len(message_set)) + message_set


def produce_v0_result(payload):
    """(error_code, base_offset) of the single partition of a Produce v0 response."""
    pos = 4 + 4  # correlation id, one topic
    (name_len,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + name_len + 4
    _, error, base = struct.unpack_from(">ihq", payload, pos)
    return error, base


def test_hand_built_v0_messages_and_a_bad_crc(cluster):
    topic = new_topic(cluster)
    good = message_v0(b"key", b"value")
    bad = bytearray(good)
    bad[-1] ^= 1
    with socket.create_connection(("127.0.0.1", cluster.ports["PLAINTEXT"]), timeout=10) as s:
        s.sendall(kw.request(0, 0, 1, produce_v0(topic, good)))
        assert produce_v0_result(kw.read_frame(s)) == (0, 0)
        s.sendall(kw.request(0, 0, 2, produce_v0(topic, bytes(bad))))
        assert produce_v0_result(kw.read_frame(s))[0] == CORRUPT_MESSAGE
        s.sendall(kw.request(0, 0, 3, produce_v0(topic, good[:-3])))  # truncated
        assert produce_v0_result(kw.read_frame(s))[0] == CORRUPT_MESSAGE
        s.sendall(kw.request(0, 0, 4, produce_v0(topic, good)))  # the connection still serves
        assert produce_v0_result(kw.read_frame(s)) == (0, 1)
    assert consume(cluster, topic, 2) == [(b"key", b"value", None)] * 2


def test_api_versions_advertises_produce_v0_but_not_fetch_below_v4(cluster):
    """Old Fetch versions would need down-conversion to v0/v1, which Bulwark does not do: not advertised."""
    with socket.create_connection(("127.0.0.1", cluster.ports["PLAINTEXT"]), timeout=10) as s:
        s.sendall(kw.request(18, 0, 1, b""))
        payload = kw.read_frame(s)
    error, count = struct.unpack_from(">hi", payload, 4)
    assert error == 0
    ranges = {key: (lo, hi) for key, lo, hi in struct.iter_unpack(">hhh", payload[10:10 + 6 * count])}
    assert ranges[0] == (0, 10)  # to v10 (KIP-951), as Kafka 3.7
    assert ranges[1][0] == 4
    assert ranges[35] == (0, 4)
