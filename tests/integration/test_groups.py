"""Consumer groups with real clients against a real `bulwark broker`: members of one group share a
6-partition topic while members join, leave cleanly and are killed (kafka-python, confluent-kafka,
kafkajs and a mix), kcat -G, committed offsets over a broker restart, and the Kafka error codes for
wrong generations, unknown members and protocols nobody shares (sent with kafka-python's protocol
classes and hand-built frames)."""
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import clients
import kafka_wire
from harness import Broker, Pki, have

HERE = Path(__file__).resolve().parent
SESSION_MS = 4000
GROUP_PROPS = {
    "group.initial.rebalance.delay.ms": "200",
    "group.min.session.timeout.ms": "1000",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"), clients=())


@pytest.fixture(scope="module")
def broker(pki, tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker"), pki, extra=GROUP_PROPS).start()
    yield b
    b.stop()


def new_topic(broker, partitions=6):
    name = f"t-{uuid.uuid4().hex[:10]}"
    result = clients.kafkajs("create", broker.bootstrap("PLAINTEXT"), None, topic=name, partitions=partitions)
    assert result["ok"], result
    return name


def produce(broker, topic, tag, count, partitions=6):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap("PLAINTEXT"), acks="all")
    values = [f"{tag}-{i}" for i in range(count)]
    for i, v in enumerate(values):
        producer.send(topic, value=v.encode(), partition=i % partitions)
    producer.flush(30)
    producer.close()
    return values


# ---- one request, encoded by kafka-python's protocol classes --------------------------------------

def call(broker, request, listener="PLAINTEXT"):
    from kafka.protocol.parser import KafkaProtocol
    proto = KafkaProtocol(client_id="bulwark-groups-test")
    proto.send_request(request)
    with socket.create_connection(("127.0.0.1", broker.ports[listener]), timeout=30) as sock:
        sock.sendall(proto.send_bytes())
        frame = kafka_wire.read_frame(sock, timeout=30)
    assert frame is not None, "the broker closed the connection"
    ((_, response),) = proto.receive_bytes(struct.pack(">i", len(frame)) + frame)
    return response


def describe(broker, group):
    from kafka.protocol.admin import DescribeGroupsRequest_v0
    (g,) = call(broker, DescribeGroupsRequest_v0(groups=[group])).groups
    error, group_id, state, protocol_type, protocol, members = g
    return {"error": error, "state": state, "protocol_type": protocol_type, "protocol": protocol, "members": members}


def committed(broker, group, topic, partitions=6):
    from kafka.protocol.commit import OffsetFetchRequest_v1
    response = call(broker, OffsetFetchRequest_v1(consumer_group=group, topics=[(topic, list(range(partitions)))]))
    ((name, parts),) = response.topics
    return {p: offset for p, offset, _meta, error in parts}


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---- group members as processes ------------------------------------------------------------------

class Member:
    """One consumer process (group_consumer.py or kafkajs_group.js) and the events it printed."""

    def __init__(self, kind, broker, topic, group, log_dir, instance_id=None, session_ms=SESSION_MS):
        self.kind = kind
        bootstrap = broker.bootstrap("PLAINTEXT")
        if kind.startswith("kafkajs"):
            args = {"brokers": [bootstrap], "topic": topic, "group": group, "sessionTimeout": SESSION_MS,
                    "assigner": "roundrobin" if kind == "kafkajs-roundrobin" else "kafkajs"}
            cmd = ["node", str(HERE / "kafkajs_group.js"), json.dumps(args)]
        else:
            cmd = [sys.executable, str(HERE / "group_consumer.py"), kind, bootstrap, topic, group, str(session_ms)]
            if instance_id:
                cmd.append(instance_id)
        self.stderr = open(log_dir / f"{kind}-{uuid.uuid4().hex[:6]}.stderr", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=HERE)
        self.events = []
        self.killed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"ev": "garbage", "line": line})

    def reads(self):
        return [e for e in self.events if e["ev"] == "read"]

    def committed_up_to(self, partition):
        return max((e["o"] for e in self.events if e["ev"] == "commit" and e["p"] == partition), default=-1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        assert any(e["ev"] == "closed" for e in self.events), f"{self.kind} did not close cleanly: {self.events[-5:]}"

    def kill(self):
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.stderr.close()


def all_reads(members):
    return [(m, e) for m in members for e in m.reads()]


def wait_all_read(members, values, timeout=60):
    wanted = set(values)

    def done():
        return wanted <= {e["v"] for _, e in all_reads(members)}

    try:
        wait_until(done, timeout, "every record to be read")
    except AssertionError:
        missing = wanted - {e["v"] for _, e in all_reads(members)}
        raise AssertionError(f"{len(missing)} records never read, e.g. {sorted(missing)[:5]}; events: " +
                             "; ".join(f"{m.kind}: {m.events[-3:]}" for m in members))


def wait_stable(broker, group, members, timeout=60):
    wait_until(lambda: (lambda d: d["state"] == "Stable" and len(d["members"]) == members)(describe(broker, group)),
               timeout, f"group {group} to be Stable with {members} members")


def check_exactly_once(members, values):
    """Every record read; a record read twice only when a killed member read it and had not committed it."""
    by_value = {}
    for m, e in all_reads(members):
        by_value.setdefault(e["v"], []).append((m, e))
    missing = [v for v in values if v not in by_value]
    assert not missing, f"records never read: {missing[:10]}"
    problems = []
    for value, reads in by_value.items():
        if len(reads) == 1:
            continue
        # A read that may legitimately be repeated: by a killed member, and not covered by its commits.
        lost_reads = [(m, e) for m, e in reads if m.killed and m.committed_up_to(e["p"]) <= e["o"]]
        if len(reads) - len(lost_reads) > 1 or len(lost_reads) == len(reads):
            problems.append((value, [(m.kind, e["p"], e["o"], m.killed) for m, e in reads]))
    failures = [(m.kind, e) for m in members for e in m.events if e["ev"] in ("commit_failed", "crash", "error")]
    assert not problems, f"records read twice: {problems[:10]}; commit failures: {failures[:10]}"


def run_membership_changes(broker, kinds, tmp_path):
    """Three members share the topic; a fourth joins, leaves cleanly, then one of the three is killed."""
    topic = new_topic(broker)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = []
    try:
        members = [Member(kind, broker, topic, group, tmp_path) for kind in kinds[:3]]
        wait_stable(broker, group, 3)
        values = produce(broker, topic, "before", 30)
        wait_all_read(members, values)
        # Each of the three reads some of the six partitions.
        assert all(m.reads() for m in members), [len(m.reads()) for m in members]

        joiner = Member(kinds[3], broker, topic, group, tmp_path)
        members.append(joiner)
        wait_stable(broker, group, 4)
        values += produce(broker, topic, "joined", 30)
        wait_all_read(members, values)

        joiner.stop()  # LeaveGroup: its partitions move at once, without waiting for the session timeout
        wait_stable(broker, group, 3, timeout=SESSION_MS / 1000 * 2)
        values += produce(broker, topic, "left", 30)
        wait_all_read(members, values)

        victim = members[2]
        victim.kill()
        values += produce(broker, topic, "killed", 30)
        wait_all_read(members, values)  # after the session timeout its partitions move to the others
        wait_stable(broker, group, 2)

        for m in members:
            if m is not victim and m is not joiner:
                m.stop()
        check_exactly_once(members, values)
        # The group committed everything: each partition's offset is its log end.
        assert committed(broker, group, topic) == {p: 20 for p in range(6)}
    finally:
        for m in members:
            m.cleanup()


def test_kafka_python_group_membership_changes(broker, tmp_path):
    run_membership_changes(broker, ["kafka-python"] * 4, tmp_path)


def test_confluent_kafka_group_membership_changes(broker, tmp_path):
    run_membership_changes(broker, ["confluent"] * 4, tmp_path)


@pytest.mark.skipif(not have("node"), reason="node is not installed")
def test_kafkajs_group_membership_changes(broker, tmp_path):
    run_membership_changes(broker, ["kafkajs"] * 4, tmp_path)


@pytest.mark.skipif(not have("node"), reason="node is not installed")
def test_mixed_clients_share_a_group(broker, tmp_path):
    # kafkajs offers its round-robin assigner under the Java name, so the three agree on "roundrobin".
    run_membership_changes(broker, ["kafka-python", "confluent", "kafkajs-roundrobin", "kafka-python"], tmp_path)


@pytest.mark.skipif(not have("kcat"), reason="kcat is not installed")
def test_kcat_group_consumes_and_commits(broker):
    topic = new_topic(broker)
    group = f"kcat-{uuid.uuid4().hex[:8]}"
    values = produce(broker, topic, "kcat", 24)

    def kcat_group():
        result = subprocess.run(["kcat", "-b", broker.bootstrap("PLAINTEXT"), "-G", group, "-X", "auto.offset.reset=earliest", "-e",
                                 "-f", "%s\n", "-X", "auto.commit.interval.ms=100", topic],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert sorted(kcat_group()) == sorted(values)
    assert committed(broker, group, topic) == {p: 4 for p in range(6)}
    more = produce(broker, topic, "more", 6)
    assert sorted(kcat_group()) == sorted(more)  # resumes where the group committed
    listed = call(broker, __import__("kafka.protocol.admin", fromlist=["x"]).ListGroupsRequest_v0())
    assert (group, "consumer") in [(g[0], g[1]) for g in listed.groups]


def test_committed_offsets_survive_a_restart(pki, tmp_path):
    from kafka import KafkaConsumer
    b = Broker(tmp_path, pki, extra=GROUP_PROPS).start()
    try:
        topic = new_topic(b, partitions=3)
        group = "restart-group"
        values = produce(b, topic, "first", 30, partitions=3)
        consumer = KafkaConsumer(topic, bootstrap_servers=b.bootstrap("PLAINTEXT"), group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=3000)
        read = [m.value.decode() for m in consumer]
        assert sorted(read) == sorted(values)
        consumer.commit()
        consumer.close()
        assert committed(b, group, topic, 3) == {0: 10, 1: 10, 2: 10}

        b.kill()  # no clean shutdown: the offsets must come back from __consumer_offsets
        b.start()
        assert committed(b, group, topic, 3) == {0: 10, 1: 10, 2: 10}
        assert describe(b, group)["state"] == "Empty"
        more = produce(b, topic, "second", 6, partitions=3)
        consumer = KafkaConsumer(topic, bootstrap_servers=b.bootstrap("PLAINTEXT"), group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=3000)
        assert sorted(m.value.decode() for m in consumer) == sorted(more)
        consumer.close()

        b.stop()
        b.start()
        assert committed(b, group, topic, 3) == {0: 10, 1: 10, 2: 10}  # nothing committed the second time
        # The offsets live in a topic, internal as Kafka's is.
        from kafka.protocol.metadata import MetadataRequest_v1
        internal = {t[1]: t[2] for t in call(b, MetadataRequest_v1(topics=None)).topics}
        assert internal["__consumer_offsets"] is True and internal[topic] is False
    finally:
        b.stop()


# ---- errors, with kafka-python's protocol classes and hand-built frames ---------------------------

def consumer_metadata(topics):
    """ConsumerProtocolMemberMetadata v0."""
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += kafka_wire.string(t)
    return out + struct.pack(">i", -1)


def join_v2(broker, group, member_id="", protocols=(("range", None),), protocol_type="consumer", session=6000):
    from kafka.protocol.group import JoinGroupRequest_v2
    protocols = [(name, meta if meta is not None else consumer_metadata(["t"])) for name, meta in protocols]
    return call(broker, JoinGroupRequest_v2(group=group, session_timeout=session, rebalance_timeout=30000,
                                            member_id=member_id, protocol_type=protocol_type,
                                            group_protocols=protocols))


def join_v4_frame(group, member_id, metadata):
    body = kafka_wire.string(group) + struct.pack(">ii", 6000, 30000) + kafka_wire.string(member_id)
    body += kafka_wire.string("consumer") + struct.pack(">i", 1) + kafka_wire.string("range")
    body += struct.pack(">i", len(metadata)) + metadata
    return kafka_wire.request(11, 4, 7, body)


def parse_join_v4(payload):
    pos = 4 + 4  # correlation id, throttle
    (error, generation) = struct.unpack_from(">hi", payload, pos)
    pos += 6
    strings = []
    for _ in range(3):  # protocol name, leader, member id
        (n,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        strings.append(payload[pos:pos + max(n, 0)].decode())
        pos += max(n, 0)
    return error, generation, strings[2]


def send_raw(broker, frame):
    with socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=30) as sock:
        sock.sendall(frame)
        return kafka_wire.read_frame(sock, timeout=30)


def test_group_errors_have_kafka_codes(broker):
    from kafka.protocol.admin import DeleteGroupsRequest_v0
    from kafka.protocol.commit import GroupCoordinatorRequest_v0, OffsetCommitRequest_v2
    from kafka.protocol.group import HeartbeatRequest_v1, LeaveGroupRequest_v1, SyncGroupRequest_v1

    group = f"errors-{uuid.uuid4().hex[:8]}"
    topic = new_topic(broker)

    # FindCoordinator v0 names this broker at the address of the listener asked.
    coordinator = call(broker, GroupCoordinatorRequest_v0(consumer_group=group))
    assert (coordinator.error_code, coordinator.coordinator_id, coordinator.host, coordinator.port) == \
        (0, 1, "127.0.0.1", broker.ports["PLAINTEXT"])

    # JoinGroup v2 (no MEMBER_ID_REQUIRED round before v4): the only member leads generation 1.
    joined = join_v2(broker, group)
    assert joined.error_code == 0, joined
    member, generation = joined.member_id, joined.generation_id
    assert generation == 1 and joined.leader_id == member and joined.group_protocol == "range"

    def heartbeat(gen, member_id):
        return call(broker, HeartbeatRequest_v1(group=group, generation_id=gen, member_id=member_id)).error_code

    assert heartbeat(generation, member) == 0
    assert heartbeat(generation + 1, member) == 22  # ILLEGAL_GENERATION
    assert heartbeat(generation, "nobody") == 25  # UNKNOWN_MEMBER_ID

    assert call(broker, SyncGroupRequest_v1(group=group, generation_id=generation + 1, member_id=member,
                                            group_assignment=[])).error_code == 22
    synced = call(broker, SyncGroupRequest_v1(group=group, generation_id=generation, member_id=member,
                                              group_assignment=[(member, b"assignment")]))
    assert (synced.error_code, synced.member_assignment) == (0, b"assignment")

    def commit(gen, member_id):
        response = call(broker, OffsetCommitRequest_v2(consumer_group=group, consumer_group_generation_id=gen,
                                                       consumer_id=member_id, retention_time=-1,
                                                       topics=[(topic, [(0, 5, "")])]))
        return response.topics[0][1][0][1]

    assert commit(generation + 7, member) == 22
    assert commit(generation, "nobody") == 25
    assert commit(generation, member) == 0
    assert committed(broker, group, topic)[0] == 5

    # A newcomer offering only protocols nobody in the group has, or another protocol type.
    assert join_v2(broker, group, protocols=(("cooperative-sticky", None),)).error_code == 23
    assert join_v2(broker, group, protocol_type="connect").error_code == 23
    assert join_v2(broker, group, member_id="made-up").error_code == 25
    assert join_v2(broker, f"{group}-short", session=10).error_code == 26  # INVALID_SESSION_TIMEOUT

    # JoinGroup v4: a first join gets MEMBER_ID_REQUIRED and the id to use.
    error, gen, assigned = parse_join_v4(send_raw(broker, join_v4_frame(f"{group}-v4", "", consumer_metadata(["t"]))))
    assert error == 79 and gen == -1 and assigned
    # Member metadata above the 1 MiB cap is refused, and the broker lives on.
    error, _, _ = parse_join_v4(send_raw(broker, join_v4_frame(f"{group}-big", "", b"x" * ((1 << 20) + 1000))))
    assert error == 42
    assert heartbeat(generation, member) == 0

    # DeleteGroups: not while it has members; after the member leaves, yes; then it is gone.
    assert call(broker, DeleteGroupsRequest_v0(groups_names=[group])).results == [(group, 68)]
    assert call(broker, LeaveGroupRequest_v1(group=group, member_id=member)).error_code == 0
    assert call(broker, LeaveGroupRequest_v1(group=group, member_id=member)).error_code == 25
    assert describe(broker, group)["state"] == "Empty"
    assert call(broker, DeleteGroupsRequest_v0(groups_names=[group])).results == [(group, 0)]
    assert call(broker, DeleteGroupsRequest_v0(groups_names=[group])).results == [(group, 69)]
    assert committed(broker, group, topic)[0] == -1
    assert describe(broker, group)["state"] == "Dead"


def test_static_member_restart_causes_no_rebalance(broker, tmp_path):
    """A confluent-kafka member with group.instance.id crashes and comes back within its session: it takes
    its old place (and partitions) without a rebalance, as KIP-345 promises."""
    topic = new_topic(broker)
    group = f"static-{uuid.uuid4().hex[:8]}"
    members = []
    try:
        members = [Member("confluent", broker, topic, group, tmp_path, instance_id=name, session_ms=10000)
                   for name in ("static-a", "static-b")]
        wait_stable(broker, group, 2)
        values = produce(broker, topic, "static", 12)
        wait_all_read(members, values)
        rebalances = broker.log_text().count(f"group {group}: rebalancing")

        members[0].kill()
        members.append(Member("confluent", broker, topic, group, tmp_path, instance_id="static-a", session_ms=10000))
        values += produce(broker, topic, "back", 12)
        wait_all_read(members, values, timeout=8)  # well within the 10 s session: no expiry involved
        assert members[2].reads(), "the restarted static member got no partitions"
        assert broker.log_text().count(f"group {group}: rebalancing") == rebalances
        wait_stable(broker, group, 2)
        members[1].stop()
        members[2].stop()
        check_exactly_once(members, values)
    finally:
        for m in members:
            m.cleanup()


@pytest.mark.skipif(not have("kcat"), reason="kcat is not installed")
def test_librdkafka_admin_lists_and_describes_groups(broker, tmp_path):
    from confluent_kafka.admin import AdminClient
    topic = new_topic(broker)
    group = f"admin-{uuid.uuid4().hex[:8]}"
    member = Member("confluent", broker, topic, group, tmp_path)
    try:
        wait_stable(broker, group, 1)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
        (listed,) = [g for g in admin.list_groups(timeout=10) if g.id == group]
        assert (listed.state, listed.protocol_type, listed.protocol) == ("Stable", "consumer", "range")
        assert len(listed.members) == 1 and listed.members[0].client_id == f"ck-{group}"
        member.stop()
        (listed,) = [g for g in admin.list_groups(timeout=10) if g.id == group]
        assert listed.state == "Empty" and not listed.members
    finally:
        member.cleanup()


# ---- flexible versions by hand: FindCoordinator v4 and OffsetFetch v8 (batched) --------------------

def test_batched_find_coordinator_and_offset_fetch(broker):
    from kafka.protocol.commit import OffsetCommitRequest_v2
    topic = new_topic(broker)
    groups = [f"batch-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for i, group in enumerate(groups):
        response = call(broker, OffsetCommitRequest_v2(consumer_group=group, consumer_group_generation_id=-1,
                                                       consumer_id="", retention_time=-1,
                                                       topics=[(topic, [(0, 10 + i, "m"), (1, 20 + i, "")])]))
        assert response.topics[0][1] == [(0, 0), (1, 0)]

    # FindCoordinator v4: one answer per key, all this broker on the SSL listener's advertised port.
    body = struct.pack(">b", 0) + kafka_wire.uvarint(3) + kafka_wire.compact_string(groups[0]) + kafka_wire.compact_string(groups[1]) + b"\0"
    with socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=30) as sock:
        sock.sendall(kafka_wire.flexible_request(10, 4, body))
        r = kafka_wire.FlexReader(kafka_wire.read_frame(sock))
    assert r.take(">i") == 9
    r.tags()
    r.take(">i")  # throttle

    def coordinator():
        out = (r.string(), r.take(">i"), r.string(), r.take(">i"), r.take(">h"), r.string())
        r.tags()
        return out

    assert r.array(coordinator) == [(g, 1, "127.0.0.1", broker.ports["PLAINTEXT"], 0, None) for g in groups]

    # OffsetFetch v8: all offsets of the first group, two partitions (one never committed) of the second.
    body = kafka_wire.uvarint(3)
    body += kafka_wire.compact_string(groups[0]) + kafka_wire.uvarint(0) + b"\0"
    body += kafka_wire.compact_string(groups[1]) + kafka_wire.uvarint(2) + kafka_wire.compact_string(topic) + kafka_wire.uvarint(3) + struct.pack(">ii", 1, 5)
    body += b"\0" + b"\0"
    body += b"\0" + b"\0"  # require_stable false, tags
    with socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=30) as sock:
        sock.sendall(kafka_wire.flexible_request(9, 8, body))
        r = kafka_wire.FlexReader(kafka_wire.read_frame(sock))
    r.take(">i")
    r.tags()
    r.take(">i")

    def partition():
        out = (r.take(">i"), r.take(">q"), r.take(">i"), r.string(), r.take(">h"))
        r.tags()
        return out

    def topic_entry():
        out = (r.string(), r.array(partition))
        r.tags()
        return out

    def group_entry():
        out = (r.string(), r.array(topic_entry), r.take(">h"))
        r.tags()
        return out

    assert r.array(group_entry) == [
        (groups[0], [(topic, [(0, 10, -1, "m", 0), (1, 20, -1, "", 0)])], 0),
        (groups[1], [(topic, [(1, 21, -1, "", 0), (5, -1, -1, "", 0)])], 0),
    ]
