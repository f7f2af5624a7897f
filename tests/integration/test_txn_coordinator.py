"""The transaction coordinator over hand-built requests on a real broker with an authorizer:
FindCoordinator key_type 1, InitProducerId with a transactional id (epoch bumps, fencing, the timeout
limit), AddPartitionsToTxn, AddOffsetsToTxn and EndTxn moving the state seen through
DescribeTransactions and ListTransactions, KIP-890 verify_only (v4, brokers only), timeout aborts, the
state reloaded from __transaction_state after a restart, and TRANSACTIONAL_ID_AUTHORIZATION_FAILED without ACLs.
Markers need the leader's WriteTxnMarkers handler: where the broker does not serve it the test
accepts a transaction still in PrepareCommit/PrepareAbort, and checks the Complete* states where it does."""
import socket
import ssl
import struct
import time
import uuid

import pytest

import clients
import kafka_wire as kw
from harness import Broker, Pki

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

NONE = 0
NOT_COORDINATOR = 16
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
PRODUCER_FENCED = 90
RETRIABLE = (COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("txn-coordinator")
    pki = Pki(root, clients=("admin-1", "client-1"))
    broker = Broker(root, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1;User:broker-1",  # brokers write transaction markers (CLUSTER_ACTION)
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "transaction.max.timeout.ms": "120000",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    })
    broker.start()
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("MTLS"),
                         **clients.librdkafka_conf(clients.security(pki, "MTLS", "admin-1"))})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    yield broker, pki, topic
    broker.stop()


def connect(broker, pki, user):
    cert, key, ca = pki.pem(user)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=10),
                               server_hostname="localhost")


class Conn:
    def __init__(self, sock):
        self.sock, self.cid = sock, 0

    def call(self, api_key, version, body, flexible=False):
        self.cid += 1
        frame = kw.flexible_request(api_key, version, body, self.cid) if flexible else kw.request(api_key, version, self.cid, body)
        self.sock.sendall(frame)
        payload = kw.read_frame(self.sock)
        assert payload is not None, "the broker closed the connection"
        assert struct.unpack_from(">i", payload)[0] == self.cid
        return payload

    def find_coordinator(self, key, key_type=1):
        p = self.call(10, 1, kw.string(key) + struct.pack(">b", key_type))
        _, error = struct.unpack_from(">ih", p, 4)
        return error

    def init(self, txn_id, timeout_ms=60000, version=1):
        p = self.call(22, version, kw.string(txn_id) + struct.pack(">i", timeout_ms))
        _, error, pid, epoch = struct.unpack_from(">ihqh", p, 4)
        return error, pid, epoch

    def add_partitions(self, txn_id, pid, epoch, topic, partitions, version=1):
        body = kw.string(txn_id) + struct.pack(">qh", pid, epoch) + struct.pack(">i", 1) + kw.string(topic)
        body += struct.pack(">i", len(partitions)) + b"".join(struct.pack(">i", x) for x in partitions)
        p = self.call(24, version, body)
        pos = 8
        (n_topics,) = struct.unpack_from(">i", p, pos); pos += 4
        errors = {}
        for _ in range(n_topics):
            (n,) = struct.unpack_from(">h", p, pos); pos += 2
            name = p[pos:pos + n].decode(); pos += n
            (n_parts,) = struct.unpack_from(">i", p, pos); pos += 4
            for _ in range(n_parts):
                index, error = struct.unpack_from(">ih", p, pos); pos += 6
                errors[(name, index)] = error
        return errors

    def add_offsets(self, txn_id, pid, epoch, group):
        p = self.call(25, 1, kw.string(txn_id) + struct.pack(">qh", pid, epoch) + kw.string(group))
        return struct.unpack_from(">ih", p, 4)[1]

    def end(self, txn_id, pid, epoch, commit, version=1):
        p = self.call(26, version, kw.string(txn_id) + struct.pack(">qh?", pid, epoch, commit))
        return struct.unpack_from(">ih", p, 4)[1]

    def describe(self, txn_id):
        body = kw.uvarint(2) + kw.compact_string(txn_id) + b"\0"
        r = kw.FlexReader(self.call(65, 0, body, flexible=True), 4)
        r.skip_tags()
        r.take(">i")

        def topic():
            name, parts = r.string(), r.int32s()
            r.skip_tags()
            return name, sorted(parts)

        def state():
            s = {"error": r.take(">h"), "id": r.string(), "state": r.string(), "timeout": r.take(">i"),
                 "start": r.take(">q"), "pid": r.take(">q"), "epoch": r.take(">h")}
            s["topics"] = dict(r.array(topic))
            r.skip_tags()
            return s

        (only,) = r.array(state)
        return only

    def list(self, states=(), pids=()):
        body = kw.uvarint(len(states) + 1) + b"".join(kw.compact_string(s) for s in states)
        body += kw.uvarint(len(pids) + 1) + b"".join(struct.pack(">q", p) for p in pids) + b"\0"
        r = kw.FlexReader(self.call(66, 0, body, flexible=True), 4)
        r.skip_tags()
        r.take(">i")
        error = r.take(">h")
        unknown = r.array(r.string)

        def entry():
            e = (r.string(), r.take(">q"), r.string())
            r.skip_tags()
            return e

        return error, unknown, r.array(entry)

    def verify_v4(self, txn_id, pid, epoch, topic, partitions):
        """(top-level error, {(topic, partition): error}) of AddPartitionsToTxn v4 with verify_only."""
        body = kw.uvarint(2) + kw.compact_string(txn_id) + struct.pack(">qh?", pid, epoch, True)
        body += kw.uvarint(2) + kw.compact_string(topic) + kw.compact_int32s(partitions) + b"\0" + b"\0" + b"\0"
        r = kw.FlexReader(self.call(24, 4, body, flexible=True), 4)
        r.skip_tags()
        r.take(">i")
        error = r.take(">h")
        errors = {}

        def partition(name):
            index, e = r.take(">i"), r.take(">h")
            r.skip_tags()
            errors[(name, index)] = e

        def topic_result():
            name = r.string()
            r.array(lambda: partition(name))
            r.skip_tags()

        def txn_result():
            r.string()
            r.array(topic_result)
            r.skip_tags()

        r.array(txn_result)
        return error, errors

    def serves(self, api_key):
        p = self.call(18, 0, b"")
        (error, n) = struct.unpack_from(">hi", p, 4)
        keys = [struct.unpack_from(">hhh", p, 10 + 6 * i)[0] for i in range(n)]
        return api_key in keys


def retry(fn, ok=lambda r: True, retriable=RETRIABLE, deadline=30):
    """fn() until its error (first element or the value itself) is not retriable."""
    end = time.time() + deadline
    while True:
        result = fn()
        error = result[0] if isinstance(result, tuple) else result
        if error not in retriable or time.time() > end:
            return result
        time.sleep(0.2)


@pytest.fixture
def admin(cluster):
    broker, pki, topic = cluster
    with connect(broker, pki, "admin-1") as sock:
        yield Conn(sock), topic


def new_id():
    return f"tx-{uuid.uuid4().hex[:8]}"


def wait_state(conn, txn_id, states, deadline=20):
    end = time.time() + deadline
    while True:
        d = conn.describe(txn_id)
        if d["state"] in states or time.time() > end:
            return d
        time.sleep(0.2)


def test_find_coordinator_for_a_transactional_id(admin):
    conn, _ = admin
    assert retry(lambda: conn.find_coordinator(new_id())) == NONE
    assert conn.find_coordinator("", key_type=1) != NONE
    assert conn.find_coordinator("x", key_type=7) != NONE


def test_init_producer_id_bumps_the_epoch_and_fences(admin):
    conn, topic = admin
    txn_id = new_id()
    error, pid, epoch = retry(lambda: conn.init(txn_id))
    assert (error, epoch) == (NONE, 0) and pid >= 0
    error, pid2, epoch2 = conn.init(txn_id)
    assert (error, pid2, epoch2) == (NONE, pid, 1)
    # The first producer is fenced: INVALID_PRODUCER_EPOCH before AddPartitionsToTxn v2, PRODUCER_FENCED from it (KIP-588).
    assert set(conn.add_partitions(txn_id, pid, 0, topic, [0]).values()) == {INVALID_PRODUCER_EPOCH}
    assert set(conn.add_partitions(txn_id, pid, 0, topic, [0], version=2).values()) == {PRODUCER_FENCED}
    assert conn.end(txn_id, pid, 0, True, version=2) == PRODUCER_FENCED
    assert set(conn.add_partitions(txn_id, pid + 1, 1, topic, [0]).values()) == {INVALID_PRODUCER_ID_MAPPING}
    d = conn.describe(txn_id)
    assert (d["error"], d["state"], d["pid"], d["epoch"], d["timeout"]) == (NONE, "Empty", pid, 1, 60000)


def test_init_during_an_open_transaction_aborts_it_first(admin):
    conn, topic = admin
    txn_id = new_id()
    error, pid, epoch = retry(lambda: conn.init(txn_id))
    assert error == NONE
    assert set(conn.add_partitions(txn_id, pid, epoch, topic, [1]).values()) == {NONE}
    assert conn.init(txn_id)[0] == CONCURRENT_TRANSACTIONS
    d = wait_state(conn, txn_id, ("CompleteAbort",), deadline=5)
    assert d["state"] in ("PrepareAbort", "CompleteAbort") and d["epoch"] == epoch + 1
    if conn.serves(27):  # markers are written: the retry then gets a second bump
        d = wait_state(conn, txn_id, ("CompleteAbort",))
        assert d["state"] == "CompleteAbort"
        error, pid2, epoch2 = retry(lambda: conn.init(txn_id), retriable=RETRIABLE + (CONCURRENT_TRANSACTIONS,))
        assert (error, pid2, epoch2) == (NONE, pid, epoch + 2)
    else:
        assert conn.init(txn_id)[0] == CONCURRENT_TRANSACTIONS


def test_transaction_timeout_above_the_maximum_is_refused(admin):
    conn, _ = admin
    assert retry(lambda: conn.init(new_id(), timeout_ms=200000))[0] == INVALID_TRANSACTION_TIMEOUT


def test_commit_moves_through_prepare_commit(admin):
    conn, topic = admin
    txn_id = new_id()
    error, pid, epoch = retry(lambda: conn.init(txn_id))
    assert error == NONE
    assert conn.end(txn_id, pid, epoch, True) == INVALID_TXN_STATE  # nothing open
    assert set(conn.add_partitions(txn_id, pid, epoch, topic, [0, 1]).values()) == {NONE}
    assert retry(lambda: conn.add_offsets(txn_id, pid, epoch, "txn-group")) == NONE
    d = conn.describe(txn_id)
    assert d["state"] == "Ongoing" and d["start"] > 0
    assert d["topics"][topic] == [0, 1] and "__consumer_offsets" in d["topics"]
    error, unknown, listed = conn.list(states=["Ongoing", "Sleeping"])
    assert error == NONE and unknown == ["Sleeping"] and (txn_id, pid, "Ongoing") in listed
    assert conn.end(txn_id, pid, epoch, True) == NONE
    d = conn.describe(txn_id)
    assert d["state"] in ("PrepareCommit", "CompleteCommit")
    assert conn.end(txn_id, pid, epoch, False) == INVALID_TXN_STATE
    if conn.serves(27):
        assert wait_state(conn, txn_id, ("CompleteCommit",))["state"] == "CompleteCommit"
        assert conn.end(txn_id, pid, epoch, True) == NONE  # a retry of a completed commit
        assert conn.describe(txn_id)["topics"] == {}
    else:
        assert conn.end(txn_id, pid, epoch, True) == CONCURRENT_TRANSACTIONS  # still completing
    error, _, listed = conn.list(pids=[pid])
    assert error == NONE and [e[0] for e in listed] == [txn_id]


def test_abort_moves_through_prepare_abort(admin):
    conn, topic = admin
    txn_id = new_id()
    error, pid, epoch = retry(lambda: conn.init(txn_id))
    assert set(conn.add_partitions(txn_id, pid, epoch, topic, [0]).values()) == {NONE}
    assert conn.end(txn_id, pid, epoch, False) == NONE
    assert conn.describe(txn_id)["state"] in ("PrepareAbort", "CompleteAbort")
    assert conn.end(txn_id, pid, epoch, True) == INVALID_TXN_STATE


def test_unknown_transactional_id_is_not_found(admin):
    conn, _ = admin
    retry(lambda: conn.find_coordinator(new_id()))
    d = retry(lambda: (conn.describe(new_id())["error"],))
    assert d == (105,)  # TRANSACTIONAL_ID_NOT_FOUND


def test_without_acls_transactional_ids_are_refused(cluster):
    broker, pki, topic = cluster
    with connect(broker, pki, "client-1") as sock:
        conn = Conn(sock)
        txn_id = new_id()
        assert conn.find_coordinator(txn_id) == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert conn.init(txn_id)[0] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert set(conn.add_partitions(txn_id, 1, 0, topic, [0]).values()) == {TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
        assert conn.end(txn_id, 1, 0, True) == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert conn.describe(txn_id)["error"] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        error, _, listed = conn.list()
        assert error == NONE and listed == []  # nothing it may describe


def test_kip890_verify_only_answers_membership(admin):
    conn, topic = admin
    txn_id = new_id()
    error, pid, epoch = retry(lambda: conn.init(txn_id))
    assert set(conn.add_partitions(txn_id, pid, epoch, topic, [1]).values()) == {NONE}
    error, errors = conn.verify_v4(txn_id, pid, epoch, topic, [0, 1])
    assert error == NONE and errors == {(topic, 0): 120, (topic, 1): NONE}  # 120 TRANSACTION_ABORTABLE
    assert conn.verify_v4(txn_id, pid, epoch + 1, topic, [1])[1] == {(topic, 1): PRODUCER_FENCED}
    assert conn.verify_v4(txn_id, pid + 100, epoch, topic, [1])[1] == {(topic, 1): INVALID_PRODUCER_ID_MAPPING}
    # Verification adds nothing.
    assert conn.describe(txn_id)["topics"] == {topic: [1]}


def test_v4_is_for_brokers_only(cluster):
    broker, pki, topic = cluster
    with connect(broker, pki, "client-1") as sock:
        assert Conn(sock).verify_v4(new_id(), 1, 0, topic, [0])[0] == 31  # CLUSTER_AUTHORIZATION_FAILED


def test_timed_out_transaction_is_aborted_with_an_epoch_bump(admin):
    conn, topic = admin
    txn_id = new_id()
    error, pid, epoch = retry(lambda: conn.init(txn_id, timeout_ms=1000))
    assert error == NONE
    assert set(conn.add_partitions(txn_id, pid, epoch, topic, [0]).values()) == {NONE}
    d = wait_state(conn, txn_id, ("PrepareAbort", "CompleteAbort"), deadline=10)
    assert d["state"] in ("PrepareAbort", "CompleteAbort") and d["epoch"] == epoch + 1
    # The producer that let it time out is fenced.
    assert conn.end(txn_id, pid, epoch, True, version=2) == PRODUCER_FENCED


def test_state_is_loaded_from_the_log_after_a_restart(cluster):
    """Runs last: restarts the broker, whose coordinator replays __transaction_state."""
    broker, pki, topic = cluster
    with connect(broker, pki, "admin-1") as sock:
        conn = Conn(sock)
        open_id, bumped_id = new_id(), new_id()
        _, pid, epoch = retry(lambda: conn.init(open_id))
        assert set(conn.add_partitions(open_id, pid, epoch, topic, [0, 1]).values()) == {NONE}
        _, pid2, _ = retry(lambda: conn.init(bumped_id))
        assert conn.init(bumped_id)[2] == 1
        before = conn.describe(open_id)
    broker.stop()
    broker.start()
    with connect(broker, pki, "admin-1") as sock:
        conn = Conn(sock)
        after = retry(lambda: (conn.describe(open_id)["error"],))
        assert after == (NONE,)
        d = conn.describe(open_id)
        assert {k: d[k] for k in ("state", "pid", "epoch", "topics", "start", "timeout")} == \
            {k: before[k] for k in ("state", "pid", "epoch", "topics", "start", "timeout")}
        assert conn.describe(bumped_id)["epoch"] == 1
        # The loaded state still decides: the next bump of each id continues from the log.
        error, pid3, epoch3 = conn.init(bumped_id)
        assert (error, pid3, epoch3) == (NONE, pid2, 2)
