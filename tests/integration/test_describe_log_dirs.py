"""DescribeLogDirs (KIP-113) on a real broker with an authorizer, over hand-built requests (neither
confluent_kafka 2.0 nor kafka-python 2.0 has describe_log_dirs): the broker's one log dir with its
partitions, sizes that grow after a produce, offset lag 0 on the leader, volume bytes (v4), and
CLUSTER_AUTHORIZATION_FAILED (v3+) / no dirs (v0-v2) without DESCRIBE on the cluster, as Kafka."""
import socket
import ssl
import struct
import time
import uuid

import pytest

import clients
import kafka_wire as kw
from harness import BIN, Broker, Pki, run

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CLUSTER_AUTHORIZATION_FAILED = 31


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("log-dirs")
    pki = Pki(root, clients=("admin-1", "client-1", "client-2"))
    broker = Broker(root, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    })
    broker.start()
    yield broker, pki
    broker.stop()


def conf(broker, pki, user):
    return {"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(clients.security(pki, "MTLS", user))}


def connect(broker, pki, user):
    if user is None:
        return socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=10)
    cert, key, ca = pki.pem(user)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=10),
                               server_hostname="localhost")


def describe_v4(broker, pki, user, topics=None):
    """(error code, [(error, dir, {topic: {partition: (size, lag)}}, total, usable)]) of DescribeLogDirs v4."""
    if topics is None:
        body = kw.uvarint(0)
    else:
        body = kw.uvarint(len(topics) + 1) + b"".join(
            kw.compact_string(t) + kw.compact_int32s(parts) + b"\0" for t, parts in topics.items())
    with connect(broker, pki, user) as sock:
        sock.sendall(kw.flexible_request(35, 4, body + b"\0"))
        r = kw.FlexReader(kw.read_frame(sock), 4)
    r.skip_tags()  # response header v1
    r.take(">i")  # throttle time
    error = r.take(">h")

    def partition():
        index, size, lag, future = r.take(">i"), r.take(">q"), r.take(">q"), r.take(">?")
        assert not future
        r.skip_tags()
        return index, (size, lag)

    def topic():
        name = r.string()
        parts = dict(r.array(partition))
        r.skip_tags()
        return name, parts

    def result():
        code, path = r.take(">h"), r.string()
        topics_ = dict(r.array(topic))
        total, usable = r.take(">q"), r.take(">q")
        r.skip_tags()
        return code, path, topics_, total, usable

    return error, r.array(result)


def describe_v1_dir_count(broker, pki, user):
    with connect(broker, pki, user) as sock:
        sock.sendall(kw.request(35, 1, 5, struct.pack(">i", -1)))
        payload = kw.read_frame(sock)
    (count,) = struct.unpack_from(">i", payload, 8)  # after correlation id and throttle time
    return count


def new_topic(broker, pki):
    topic = f"dirs-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(conf(broker, pki, "admin-1"))  # kept alive until the result arrives
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    return topic


def test_log_dir_lists_partitions_and_sizes_grow_after_a_produce(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    for _ in range(50):  # the partitions' logs are created once this broker applies the new image
        error, results = describe_v4(broker, pki, "admin-1")
        if error or topic in results[0][2]:
            break
        time.sleep(0.1)
    assert error == 0 and len(results) == 1
    code, path, topics, total, usable = results[0]
    assert code == 0 and path == str(broker.log_dir.absolute())
    assert topics[topic] == {0: (0, 0), 1: (0, 0)}
    assert total > 0 and 0 <= usable <= total

    producer = Producer({**conf(broker, pki, "admin-1"), "acks": "all"})
    for i in range(50):
        producer.produce(topic, value=b"x" * 100, partition=0)
    assert producer.flush(30) == 0
    _, results = describe_v4(broker, pki, "admin-1", {topic: [0, 1, 7]})
    _, _, topics, _, _ = results[0]
    assert list(topics) == [topic]  # only what was asked for; partition 7 does not exist
    size, lag = topics[topic][0]
    assert size > 50 * 100 and lag == 0
    assert topics[topic][1] == (0, 0)


def test_describe_needs_describe_on_the_cluster(cluster):
    broker, pki = cluster
    assert describe_v4(broker, pki, None) == (CLUSTER_AUTHORIZATION_FAILED, [])  # ANONYMOUS on PLAINTEXT
    assert describe_v4(broker, pki, "client-2") == (CLUSTER_AUTHORIZATION_FAILED, [])
    assert describe_v1_dir_count(broker, pki, "client-2") == 0  # v0-v2 have no error code: no dirs
    cert, key, ca = pki.pem("admin-1")
    run(BIN, "acl", "add", "--allow-principal", "User:client-1", "--operation", "Describe", "--cluster",
        "--bootstrap-server", broker.bootstrap("MTLS"), "--ca", ca, "--cert", cert, "--key", key)
    for _ in range(50):  # the ACL reaches the authorizer through the metadata log
        error, results = describe_v4(broker, pki, "client-1")
        if error == 0:
            break
        time.sleep(0.2)
    assert error == 0 and len(results) == 1
    assert describe_v1_dir_count(broker, pki, "client-1") == 1
    assert broker.alive()
