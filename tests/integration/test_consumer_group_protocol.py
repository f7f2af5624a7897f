"""KIP-848's consumer protocol against a real `bulwark broker`. No client in Debian speaks it; one test
runs librdkafka 2.8 (bundled by npm's node-rdkafka 3.3.1, built from source by scripts/install-deps)
with group.protocol=consumer. The others use a small wire-level KIP-848 consumer that the test steers
step by step: it heartbeats (ConsumerGroupHeartbeat v0), drops the partitions it is no longer assigned
and reports what it owns, fetches its partitions (kafka-python with manual assignment) and commits with
OffsetCommit v9 under its member epoch.

Checked: three members join and end with two partitions each; no partition is ever owned by two
members; a member killed (socket closed, heartbeats stopped) loses its partitions to the others after
the session timeout; committed offsets stay; stale epochs are refused; ConsumerGroupDescribe and
ListGroups show the group; and with the protocol disabled the heartbeat answers UNSUPPORTED_VERSION."""
import json
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid

from pathlib import Path

import pytest

import clients
from harness import Broker, Pki
from kafka_wire import FlexReader, compact_string, flexible_request, read_frame, request, string, uvarint

HERE = Path(__file__).resolve().parent
SESSION_MS = 3000
CONSUMER_PROPS = {
    "group.coordinator.rebalance.protocols": "classic,consumer",
    "group.consumer.session.timeout.ms": str(SESSION_MS),
    "group.consumer.heartbeat.interval.ms": "500",
}
UNSUPPORTED_VERSION, UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND, STALE_MEMBER_EPOCH = 35, 25, 69, 113


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"), clients=())


@pytest.fixture(scope="module")
def broker(pki, tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker"), pki, extra=CONSUMER_PROPS).start()
    yield b
    b.stop()


def compact_array(items):
    return uvarint(0) if items is None else uvarint(len(items) + 1) + b"".join(items)


class Connection:
    def __init__(self, broker):
        self.sock = socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=10)
        self.correlation = 0

    def call(self, api_key, version, body):
        """Sends a flexible request, returns a reader past the response header v1."""
        self.correlation += 1
        self.sock.sendall(flexible_request(api_key, version, body, correlation_id=self.correlation))
        frame = read_frame(self.sock)
        assert frame is not None, "the broker closed the connection"
        r = FlexReader(frame)
        assert r.take(">i") == self.correlation
        r.skip_tags()
        return r

    def close(self):
        self.sock.close()


def uuid16(r):
    value = bytes(r.data[r.pos:r.pos + 16])
    r.pos += 16
    return value


def topic_ids(conn):
    """name -> topic id, from Metadata v12 (all topics)."""
    r = conn.call(3, 12, uvarint(0) + b"\x00\x00" + b"\x00")
    r.take(">i")  # throttle
    r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string(), r.skip_tags()))
    r.string()
    r.take(">i")

    def topic():
        r.take(">h")
        name = r.string()
        tid = uuid16(r)
        r.take(">b")
        r.array(lambda: (r.take(">h"), r.take(">i"), r.take(">i"), r.take(">i"), r.int32s(), r.int32s(), r.int32s(), r.skip_tags()))
        r.take(">i")
        r.skip_tags()
        return name, tid
    return dict(r.array(topic))


class Member:
    """A KIP-848 consumer over the wire. `owned` is {(topic, partition)}."""

    def __init__(self, broker, group, topics, ids):
        self.broker, self.group, self.topics, self.ids = broker, group, topics, ids
        self.names = {v: k for k, v in ids.items()}
        self.conn = Connection(broker)
        self.member_id, self.epoch, self.owned = "", 0, set()

    def heartbeat(self, epoch=None, full=False):
        epoch = self.epoch if epoch is None else epoch
        joining = epoch == 0
        by_topic = {}
        for t, p in sorted(self.owned):
            by_topic.setdefault(t, []).append(p)
        owned = [self.ids[t] + compact_array([struct.pack(">i", p) for p in ps]) + b"\0" for t, ps in by_topic.items()]
        body = compact_string(self.group) + compact_string(self.member_id) + struct.pack(">i", epoch)
        body += compact_string(None) + compact_string(None)                       # instance id, rack
        body += struct.pack(">i", 30000 if joining or full else -1)               # rebalance timeout
        body += compact_array([compact_string(t) for t in self.topics]) if joining or full else uvarint(0)
        body += compact_string(None)                                              # server assignor
        body += compact_array(owned) + b"\0"
        r = self.conn.call(68, 0, body)
        r.take(">i")
        error = r.take(">h")
        message = r.string()
        member_id = r.string()
        new_epoch = r.take(">i")
        interval = r.take(">i")
        assignment = None
        if r.take(">b") == 1:
            assignment = set()

            def topic_partitions():
                tid = uuid16(r)
                parts = r.int32s()
                r.skip_tags()
                return tid, parts
            for tid, parts in r.array(topic_partitions):
                assignment |= {(self.names[tid], p) for p in parts}
            r.skip_tags()
        if error == 0 and epoch >= 0:
            self.member_id, self.epoch = member_id, new_epoch
            if assignment is not None:
                self.owned = assignment  # revoke what is gone, take what is new
        return {"error": error, "message": message, "epoch": new_epoch, "interval": interval, "assignment": assignment}

    def join(self, timeout=30):
        """FindCoordinator (which also creates __consumer_offsets), then the first heartbeat, retried while
        the coordinator is not ready, as a consumer does."""
        deadline = time.time() + timeout
        while True:
            r = self.conn.call(10, 3, compact_string(self.group) + b"\x00" + b"\0")
            r.take(">i")
            found = r.take(">h") == 0
            result = self.heartbeat(epoch=0) if found else {"error": 15}
            if result["error"] not in (14, 15, 16) or time.time() > deadline:
                return result
            time.sleep(0.2)

    def commit(self, offsets, epoch=None):
        """OffsetCommit v9: {(topic, partition): offset} -> {(topic, partition): error}."""
        by_topic = {}
        for (t, p), o in sorted(offsets.items()):
            by_topic.setdefault(t, []).append(struct.pack(">iqi", p, o, -1) + compact_string(None) + b"\0")
        body = compact_string(self.group) + struct.pack(">i", self.epoch if epoch is None else epoch)
        body += compact_string(self.member_id) + compact_string(None)
        body += compact_array([compact_string(t) + compact_array(ps) + b"\0" for t, ps in by_topic.items()]) + b"\0"
        r = self.conn.call(8, 9, body)
        r.take(">i")
        out = {}
        for name, parts in r.array(lambda: (r.string(), r.array(lambda: (r.take(">i"), r.take(">h"), r.skip_tags())[:2]),
                                            r.skip_tags())[:2]):
            out.update({(name, p): e for p, e in parts})
        return out

    def fetch_offsets(self, epoch=None, member_id=None):
        """OffsetFetch v9 for every partition of the group: (group error, {(topic, partition): offset})."""
        body = compact_array([compact_string(self.group) + compact_string(member_id if member_id is not None else self.member_id)
                              + struct.pack(">i", self.epoch if epoch is None else epoch) + uvarint(0) + b"\0"])
        body += b"\x00" + b"\0"
        r = self.conn.call(9, 9, body)
        r.take(">i")
        (group,) = r.array(lambda: (r.string(), r.array(lambda: (r.string(), r.array(
            lambda: (r.take(">i"), r.take(">q"), r.take(">i"), r.string(), r.take(">h"), r.skip_tags())), r.skip_tags())),
            r.take(">h"), r.skip_tags()))
        _, topics, error, _ = group
        return error, {(name, p[0]): p[1] for name, parts, _ in topics for p in parts}

    def close(self):
        self.conn.close()


def new_topic(broker, partitions):
    name = f"t-{uuid.uuid4().hex[:10]}"
    result = clients.kafkajs("create", broker.bootstrap("PLAINTEXT"), None, topic=name, partitions=partitions)
    assert result["ok"], result
    return name


def produce(broker, topic, count, partitions, tag="v"):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap("PLAINTEXT"), acks="all")
    for i in range(count):
        producer.send(topic, value=f"{tag}-{i}".encode(), partition=i % partitions)
    producer.flush(30)
    producer.close()


def fetch_owned(broker, owned):
    """Reads every record of the member's partitions (kafka-python, manual assignment): {tp: count}."""
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap("PLAINTEXT"), enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(t, p) for t, p in owned])
    counts = {}
    for record in consumer:
        counts[(record.topic, record.partition)] = counts.get((record.topic, record.partition), 0) + 1
    consumer.close()
    return counts


def assert_disjoint(members):
    seen = {}
    for m in members:
        for tp in m.owned:
            assert tp not in seen, f"{tp} owned by {seen[tp]} and {m.member_id} at once"
            seen[tp] = m.member_id


def run_until(members, done, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            result = m.heartbeat()
            assert result["error"] == 0, result
            assert_disjoint(members)
        if done():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached in {timeout}s: " + ", ".join(f"{m.member_id}@{m.epoch}: {sorted(m.owned)}" for m in members))


class Heartbeating:
    """Keeps members heartbeating from a thread while the test reads records, as a consumer's
    background thread does; the members' sockets are the test's again once it exits."""

    def __init__(self, members):
        self.members, self.stop, self.errors = members, threading.Event(), []

    def __enter__(self):
        def loop():
            while not self.stop.wait(0.3):
                for m in self.members:
                    result = m.heartbeat()
                    if result["error"]:
                        self.errors.append(result)
        self.thread = threading.Thread(target=loop)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        assert not self.errors, self.errors


def consumer_group_describe(conn, group):
    r = conn.call(69, 0, compact_array([compact_string(group)]) + b"\x00" + b"\0")
    r.take(">i")
    r.uvarint()  # one group
    error = r.take(">h")
    r.string()
    r.string()
    state = r.string()
    group_epoch, assignment_epoch = r.take(">i"), r.take(">i")
    return error, state, group_epoch, assignment_epoch


def describe_members(conn, group):
    """ConsumerGroupDescribe v0: (state, {member id: {partition}}) of a one-topic group."""
    r = conn.call(69, 0, compact_array([compact_string(group)]) + b"\x00" + b"\0")
    r.take(">i")
    r.uvarint()
    assert r.take(">h") == 0
    r.string()
    r.string()
    state = r.string()
    r.take(">i"), r.take(">i")
    r.string()

    def assignment():
        def tp():
            uuid16(r)
            r.string()
            parts = r.int32s()
            r.skip_tags()
            return parts
        parts = [p for ps in r.array(tp) for p in ps]
        r.take(">b"), r.take(">i")
        size = r.uvarint() - 1  # metadata bytes
        r.pos += size
        r.skip_tags()
        return set(parts)

    def member():
        member_id = r.string()
        r.string(), r.string(), r.take(">i"), r.string(), r.string()
        r.array(r.string)
        r.string()
        assigned = assignment()
        assignment()
        r.skip_tags()
        return member_id, assigned
    return state, dict(r.array(member))


class RdkafkaMember:
    """rdkafka_kip848_consumer.js: a real KIP-848 consumer (librdkafka with group.protocol=consumer)."""

    def __init__(self, broker, topic, group):
        args = {"bootstrap": broker.bootstrap("PLAINTEXT"), "topic": topic, "group": group}
        self.proc = subprocess.Popen(["node", str(HERE / "rdkafka_kip848_consumer.js"), json.dumps(args)],
                                     stdout=subprocess.PIPE, text=True, cwd=HERE)
        self.events = []
        self.reader = threading.Thread(target=lambda: [self.events.append(json.loads(line)) for line in self.proc.stdout])
        self.reader.start()

    def values(self):
        return [e["value"] for e in self.events if e["ev"] == "record"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.reader.join()
        assert any(e["ev"] == "closed" for e in self.events), self.events


def wait_until(what, predicate, timeout=40):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.skipif(not (HERE / "node_modules" / "node-rdkafka").exists(),
                    reason="node-rdkafka is not installed (scripts/install-deps installs it)")
def test_librdkafka_consumers_share_a_group_over_the_consumer_protocol(broker):
    topic = new_topic(broker, 4)
    produce(broker, topic, 40, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    conn = Connection(broker)
    a = RdkafkaMember(broker, topic, group)
    try:
        wait_until("a to read the first 40 records", lambda: len(a.values()) == 40)
        b = RdkafkaMember(broker, topic, group)
        try:
            def shared():
                state, members = describe_members(conn, group)
                return state == "stable" and len(members) == 2 and all(len(p) == 2 for p in members.values())
            wait_until("a stable group of two with two partitions each", shared)
            produce(broker, topic, 40, 4, tag="second")
            second = {f"second-{i}" for i in range(40)}
            wait_until("the next 40 records", lambda: second <= set(a.values()) | set(b.values()), timeout=60)
            assert b.values(), "b got no partition"
        finally:
            b.stop()
        wait_until("a to own all four partitions again",
                   lambda: list(describe_members(conn, group)[1].values()) == [{0, 1, 2, 3}])
        from kafka.admin import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap("PLAINTEXT"))
        offsets = admin.list_consumer_group_offsets(group)
        admin.close()
        assert {tp.partition: o.offset for tp, o in offsets.items()} == {p: 20 for p in range(4)}
    finally:
        a.stop()
        conn.close()


def test_three_members_share_partitions_and_a_killed_member_is_replaced(broker):
    topic = new_topic(broker, 6)
    produce(broker, topic, 60, 6)
    group = f"g-{uuid.uuid4().hex[:8]}"
    probe = Connection(broker)
    ids = topic_ids(probe)
    a, b, c = (Member(broker, group, [topic], ids) for _ in range(3))
    first = a.join()
    assert first["error"] == 0 and len(a.member_id) == 22 and first["interval"] == 500
    run_until([a], lambda: len(a.owned) == 6)

    # b and c join: a gives partitions up before anyone else gets them.
    assert b.join()["error"] == 0
    assert c.join()["error"] == 0
    assert_disjoint([a, b, c])
    members = [a, b, c]
    run_until(members, lambda: all(len(m.owned) == 2 for m in members) and len({m.epoch for m in members}) == 1)
    assert set().union(*(m.owned for m in members)) == {(topic, p) for p in range(6)}
    error, state, group_epoch, assignment_epoch = consumer_group_describe(probe, group)
    assert (error, state) == (0, "stable") and group_epoch == assignment_epoch == a.epoch

    # Each member reads its partitions and commits where it got to, under its epoch.
    counts = {}
    with Heartbeating(members):
        for m in members:
            counts[m.member_id] = fetch_owned(broker, m.owned)
    for m in members:
        assert sum(counts[m.member_id].values()) == 20
        errors = m.commit(counts[m.member_id])
        assert set(errors.values()) == {0}, errors
    assert set(a.commit({next(iter(a.owned)): 1}, epoch=a.epoch - 1).values()) == {STALE_MEMBER_EPOCH}
    assert a.fetch_offsets(epoch=a.epoch + 1)[0] == STALE_MEMBER_EPOCH
    assert a.fetch_offsets(member_id="someone-else")[0] == UNKNOWN_MEMBER_ID

    # c dies: no leave, no more heartbeats. After its session, a and b own all six.
    c_partitions = set(c.owned)
    c.close()
    killed_at = time.time()
    run_until([a, b], lambda: len(a.owned) + len(b.owned) == 6, timeout=SESSION_MS / 1000 + 20)
    assert time.time() - killed_at >= SESSION_MS / 1000 - 1, "reassigned before the session timeout"
    assert c_partitions <= a.owned | b.owned
    ghost = Member(broker, group, [topic], ids)
    ghost.member_id, ghost.epoch = c.member_id, c.epoch
    assert ghost.heartbeat()["error"] == UNKNOWN_MEMBER_ID

    # The committed offsets of all six partitions, c's included, are still there.
    error, offsets = a.fetch_offsets()
    assert error == 0
    assert {tp: o for tp, o in offsets.items() if tp[0] == topic} == {(topic, p): 10 for p in range(6)}

    # A clean leave hands b's partitions to a.
    leave = b.heartbeat(epoch=-1)
    assert leave["error"] == 0 and leave["epoch"] == -1
    run_until([a], lambda: len(a.owned) == 6)
    for m in (a, ghost, probe):
        m.close()


def test_classic_and_consumer_groups_do_not_share_an_id(broker):
    topic = new_topic(broker, 1)
    conn = Connection(broker)
    group = f"g-{uuid.uuid4().hex[:8]}"
    member = Member(broker, group, [topic], topic_ids(conn))
    assert member.join()["error"] == 0
    # JoinGroup v0 (classic) on the consumer group's id.
    body = string(group) + struct.pack(">i", 10000) + string("") + string("consumer")
    body += struct.pack(">i", 1) + string("range") + struct.pack(">i", 0)
    sock = socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=10)
    sock.sendall(request(11, 0, 1, body))
    frame = read_frame(sock, timeout=15)
    assert struct.unpack_from(">h", frame, 4)[0] == GROUP_ID_NOT_FOUND
    sock.close()
    # Listed as a consumer group.
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap("PLAINTEXT"))
    assert (group, "consumer") in admin.list_consumer_groups()
    admin.close()
    member.close()
    conn.close()


def test_disabled_protocol_answers_unsupported_version(pki, tmp_path):
    b = Broker(tmp_path, pki).start()
    try:
        conn = Connection(b)
        member = Member(b, "g-off", ["t"], {"t": b"\0" * 16})
        result = member.heartbeat(epoch=0)
        assert result["error"] == UNSUPPORTED_VERSION
        assert "group.coordinator.rebalance.protocols" in result["message"]
        assert consumer_group_describe(conn, "g-off")[0] == UNSUPPORTED_VERSION
        member.close()
        conn.close()
    finally:
        b.stop()


def test_members_rejoin_after_a_restart_and_keep_their_offsets(pki, tmp_path):
    """The consumer group state is in memory (docs/groups.md): after a restart the member hears
    UNKNOWN_MEMBER_ID, rejoins with epoch 0 and gets its partitions back; the committed offsets stay."""
    b = Broker(tmp_path, pki, extra=CONSUMER_PROPS).start()
    try:
        topic = new_topic(b, 2)
        conn = Connection(b)
        member = Member(b, "g-restart", [topic], topic_ids(conn))
        conn.close()
        assert member.join()["error"] == 0
        run_until([member], lambda: len(member.owned) == 2)
        assert set(member.commit({(topic, 0): 5, (topic, 1): 7}).values()) == {0}
        member.close()
        b.stop()
        b.start()
        member.conn = Connection(b)
        deadline = time.time() + 30
        while (result := member.heartbeat())["error"] in (14, 15, 16) and time.time() < deadline:
            time.sleep(0.2)  # the coordinator is still loading __consumer_offsets
        assert result["error"] == UNKNOWN_MEMBER_ID
        member.member_id, member.epoch, member.owned = "", 0, set()
        assert member.join()["error"] == 0
        run_until([member], lambda: len(member.owned) == 2)
        error, offsets = member.fetch_offsets()
        assert error == 0 and offsets == {(topic, 0): 5, (topic, 1): 7}
        member.close()
    finally:
        b.stop()


def test_heartbeat_needs_read_and_describe_needs_describe_on_the_group(tmp_path):
    """With an authorizer, as Kafka's KafkaApis: READ on the group for ConsumerGroupHeartbeat, DESCRIBE
    for ConsumerGroupDescribe (READ implies it). PLAINTEXT clients are User:ANONYMOUS."""
    from harness import BIN, run
    pki = Pki(tmp_path / "pki", clients=("admin-1",))
    b = Broker(tmp_path, pki, extra={**CONSUMER_PROPS,
                                     "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                                     "super.users": "User:admin-1",
                                     "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT"}).start()
    try:
        group = "g-acl"
        conn = Connection(b)
        member = Member(b, group, ["not-created-yet"], {})
        assert member.heartbeat(epoch=0)["error"] == 30  # GROUP_AUTHORIZATION_FAILED
        assert consumer_group_describe(conn, group)[0] == 30
        cert, key, ca = pki.pem("admin-1")
        run(BIN, "acl", "add", "--allow-principal", "User:ANONYMOUS", "--operation", "Read", "--group", group,
            "--bootstrap-server", b.bootstrap("MTLS"), "--ca", ca, "--cert", cert, "--key", key)
        wait_until("the ACL to apply", lambda: member.join()["error"] == 0)
        assert consumer_group_describe(conn, group)[:2] == (0, "stable")
        member.close()
        conn.close()
    finally:
        b.stop()
