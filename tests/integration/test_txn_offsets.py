"""TxnOffsetCommit (API 28) over the raw wire, with an authorizer: Kafka's order of checks (WRITE on the
transactional id, READ on the group, READ on each topic, then the partition's existence), then KIP-890's
check with the transaction coordinator: a commit outside the producer's transaction is refused (nothing
stored, the connection keeps serving), one after AddOffsetsToTxn stays pending until EndTxn's markers
complete it. ApiVersions advertises v0-3. admin-1 is the only super user; ACLs are granted with
`bulwark acl` over mTLS."""
import socket
import ssl
import struct
import time
import uuid

import pytest

import clients
import kafka_wire
from harness import BIN, Broker, Pki, run
from test_txn_coordinator import RETRIABLE, Conn, retry

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
GROUP_AUTHORIZATION_FAILED = 30
TOPIC_AUTHORIZATION_FAILED = 29
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TXN_STATE = 48
TRANSACTION_ABORTABLE = 120


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("txn-offsets")
    pki = Pki(root, clients=("admin-1", "client-1"))
    broker = Broker(root, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1;User:broker-1",  # brokers write transaction markers (CLUSTER_ACTION)
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        "auto.create.topics.enable": "false",
        "offsets.topic.num.partitions": "3",
    })
    broker.start()
    yield broker, pki
    broker.stop()


def acl(broker, pki, *args):
    cert, key, ca = pki.pem("admin-1")
    run(BIN, "acl", *args, "--bootstrap-server", broker.bootstrap("MTLS"), "--ca", ca, "--cert", cert, "--key", key)


def new_topic(broker, pki):
    topic = f"txo-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(clients.security(pki, "MTLS"))}
    admin = AdminClient(conf)  # kept alive until the future resolves
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    return topic


def connect(broker, pki, user):
    cert, key, ca = pki.pem(user)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=10),
                               server_hostname="localhost")


def txn_offset_commit_v3(txn_id, group, offsets, producer_id=1000, epoch=0, generation=-1, member=""):
    """offsets: {topic: [(partition, offset)]}; flexible (compact strings, tagged fields)."""
    body = kafka_wire.compact_string(txn_id) + kafka_wire.compact_string(group)
    body += struct.pack(">qhi", producer_id, epoch, generation) + kafka_wire.compact_string(member)
    body += kafka_wire.compact_string(None)  # group instance id
    body += kafka_wire.uvarint(len(offsets) + 1)
    for topic, partitions in offsets.items():
        body += kafka_wire.compact_string(topic) + kafka_wire.uvarint(len(partitions) + 1)
        for partition, offset in partitions:
            body += struct.pack(">iqi", partition, offset, -1) + kafka_wire.compact_string("") + b"\0"
        body += b"\0"
    return kafka_wire.flexible_request(28, 3, body + b"\0")


def parse_txn_offset_commit_v3(payload):
    """{topic: {partition: error}}."""
    r = kafka_wire.FlexReader(payload, 4)  # correlation id
    r.skip_tags()  # response header v1
    r.take(">i")  # throttle time
    out = {}
    for _ in range(r.uvarint() - 1):
        name = r.string()
        out[name] = {}
        for _ in range(r.uvarint() - 1):
            partition, error = r.take(">i"), r.take(">h")
            r.skip_tags()
            out[name][partition] = error
        r.skip_tags()
    return out


def txn_offset_commit_v0(txn_id, group, topic, partition, offset, producer_id=1000, epoch=0):
    body = kafka_wire.string(txn_id) + kafka_wire.string(group) + struct.pack(">qh", producer_id, epoch)
    body += struct.pack(">i", 1) + kafka_wire.string(topic) + struct.pack(">i", 1)
    body += struct.pack(">iq", partition, offset) + kafka_wire.string("")
    return kafka_wire.request(28, 0, 7, body)


def parse_txn_offset_commit_v0(payload):
    pos = 4 + 4  # correlation id, throttle time
    (n_topics,) = struct.unpack_from(">i", payload, pos); pos += 4
    assert n_topics == 1
    (n,) = struct.unpack_from(">h", payload, pos); pos += 2 + n
    (n_parts,) = struct.unpack_from(">i", payload, pos); pos += 4
    assert n_parts == 1
    return struct.unpack_from(">ih", payload, pos)


def commit_v3(broker, pki, user, *args, **kw):
    with connect(broker, pki, user) as sock:
        sock.sendall(txn_offset_commit_v3(*args, **kw))
        payload = kafka_wire.read_frame(sock)
        assert payload is not None, "the broker closed the connection"
        return parse_txn_offset_commit_v3(payload)


def find_coordinator(sock, group):
    """FindCoordinator v1 for a group: the error code (0 once __consumer_offsets is up)."""
    sock.sendall(kafka_wire.request(10, 1, 5, kafka_wire.string(group) + b"\0"))
    payload = kafka_wire.read_frame(sock)
    (error,) = struct.unpack_from(">h", payload, 4 + 4)
    return error


def committed_offset_v1(sock, group, topic, partition):
    """OffsetFetch v1: (offset, error) of one partition."""
    body = kafka_wire.string(group) + struct.pack(">i", 1) + kafka_wire.string(topic) + struct.pack(">ii", 1, partition)
    sock.sendall(kafka_wire.request(9, 1, 6, body))
    payload = kafka_wire.read_frame(sock)
    pos = 4 + 4  # correlation id, one topic
    (n,) = struct.unpack_from(">h", payload, pos); pos += 2 + n
    pos += 4 + 4  # one partition, its index
    (offset,) = struct.unpack_from(">q", payload, pos); pos += 8
    (n,) = struct.unpack_from(">h", payload, pos); pos += 2 + max(n, 0)
    (error,) = struct.unpack_from(">h", payload, pos)
    return offset, error


def test_api_versions_advertises_txn_offset_commit(cluster):
    broker, pki = cluster
    with connect(broker, pki, "client-1") as sock:
        sock.sendall(kafka_wire.request(18, 0, 1, b""))
        payload = kafka_wire.read_frame(sock)
    (error, count) = struct.unpack_from(">hi", payload, 4)
    assert error == 0
    ranges = {struct.unpack_from(">hhh", payload, 10 + 6 * i)[0]: struct.unpack_from(">hhh", payload, 10 + 6 * i)[1:]
              for i in range(count)}
    assert ranges[28] == (0, 3)


def start_transaction(broker, pki, user, txn_id):
    """InitProducerId for `txn_id` (retried while the transaction coordinator comes up): (pid, epoch)."""
    with connect(broker, pki, user) as sock:
        conn = Conn(sock)
        # As clients do: FindCoordinator first (it creates __transaction_state on first use).
        assert retry(lambda: conn.find_coordinator(txn_id), deadline=60) == 0
        error, pid, epoch = retry(lambda: conn.init(txn_id), deadline=60)
    assert error == 0, f"InitProducerId answered {error}"
    return pid, epoch


def commit_until_settled(broker, pki, user, *args, **kw):
    """TxnOffsetCommit v3, again while a coordinator is loading or not yet there."""
    deadline = time.time() + 60
    while True:
        result = commit_v3(broker, pki, user, *args, **kw)
        codes = {e for parts in result.values() for e in parts.values()}
        if not codes & set(RETRIABLE) or time.time() > deadline:
            return result
        time.sleep(0.3)


def test_authorization_in_kafkas_order(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    txn_id, group = f"txn-{uuid.uuid4().hex[:6]}", f"group-{uuid.uuid4().hex[:6]}"
    request = (txn_id, group, {topic: [(0, 5), (1, 6)]})
    every = lambda result, error: result == {topic: {0: error, 1: error}}  # noqa: E731

    assert every(commit_v3(broker, pki, "client-1", *request), TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    assert "Principal = User:client-1 is Denied operation = WRITE" in broker.log_text()
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Write", "--transactional-id", txn_id)
    assert every(commit_v3(broker, pki, "client-1", *request), GROUP_AUTHORIZATION_FAILED)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Read", "--group", group)
    assert every(commit_v3(broker, pki, "client-1", *request), TOPIC_AUTHORIZATION_FAILED)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Read", "--topic", topic)
    # Authorized now: partition 1 does not exist; partition 0 reaches the coordinator, and KIP-890's check
    # refuses it: the producer's transaction never added the group's offsets partition (AddOffsetsToTxn).
    pid, epoch = start_transaction(broker, pki, "client-1", txn_id)
    with connect(broker, pki, "client-1") as sock:
        deadline = time.time() + 60
        while find_coordinator(sock, group) != 0:  # as clients do; it creates __consumer_offsets
            assert time.time() < deadline, "the group coordinator never came up"
            time.sleep(0.5)
    result = commit_until_settled(broker, pki, "client-1", *request, producer_id=pid, epoch=epoch)
    assert result[topic][1] == UNKNOWN_TOPIC_OR_PARTITION
    assert result[topic][0] in (INVALID_TXN_STATE, TRANSACTION_ABORTABLE), result


def test_pending_until_the_transaction_ends(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    txn_id, group = f"txn-{uuid.uuid4().hex[:6]}", f"group-{uuid.uuid4().hex[:6]}"
    pid, epoch = start_transaction(broker, pki, "admin-1", txn_id)
    with connect(broker, pki, "admin-1") as sock:
        conn = Conn(sock)
        assert retry(lambda: conn.add_offsets(txn_id, pid, epoch, group)) == 0
        result = commit_until_settled(broker, pki, "admin-1", txn_id, group, {topic: [(0, 42)]},
                                      producer_id=pid, epoch=epoch)
        assert result == {topic: {0: 0}}
        # Pending: invisible until the transaction commits.
        assert committed_offset_v1(sock, group, topic, 0) == (-1, 0)
        assert conn.end(txn_id, pid, epoch, True) == 0
        if not conn.serves(27):
            return  # no WriteTxnMarkers on this build: the commit cannot complete
        deadline = time.time() + 30
        while committed_offset_v1(sock, group, topic, 0) != (42, 0):
            assert time.time() < deadline, "the committed transaction's offset never became visible"
            time.sleep(0.3)


def test_refused_cleanly_outside_a_transaction(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    group = f"group-{uuid.uuid4().hex[:6]}"
    with connect(broker, pki, "admin-1") as sock:
        deadline = time.time() + 60
        while find_coordinator(sock, group) != 0:
            assert time.time() < deadline, "the group coordinator never came up"
            time.sleep(0.5)
        # A producer id no coordinator issued, in v0 (no generation) and v3 (KIP-447 fields) on one
        # connection: refused, never disconnected.
        for _ in range(100):
            sock.sendall(txn_offset_commit_v0("txn-a", group, topic, 0, 42))
            payload = kafka_wire.read_frame(sock)
            assert payload is not None, "the broker closed the connection"
            partition, error = parse_txn_offset_commit_v0(payload)
            if error not in RETRIABLE:
                break
            time.sleep(0.3)
        assert partition == 0 and error not in (0, *RETRIABLE), error
        sock.sendall(txn_offset_commit_v3("txn-a", group, {topic: [(0, 43)]}, generation=3, member="m-1"))
        v3 = parse_txn_offset_commit_v3(kafka_wire.read_frame(sock))[topic][0]
        assert v3 not in (0, *RETRIABLE), v3
        # Nothing was stored, and the connection still serves other requests.
        assert committed_offset_v1(sock, group, topic, 0) == (-1, 0)
    assert broker.alive()
