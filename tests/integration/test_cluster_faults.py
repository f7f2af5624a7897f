"""Bad input and faults of a three-node cluster (combined broker+controller nodes, mTLS everywhere, an
authorizer with the nodes as super users), with real processes on loopback:
- with two of three controllers lost, a metadata change fails with Kafka's error code within the
  client's timeout, and the cluster recovers by itself when a node returns;
- a voter whose principal is not a super user, or whose certificate the others do not trust, is kept
  out, and the nodes say why;
- a node refuses to start when controller.quorum.voters disagrees with its quorum-state, or its
  cluster.id differs from the quorum's, naming both values."""
import re
import subprocess
import time
import uuid

import pytest

import clients
from cluster_harness import ELECTION_TIMEOUT_MS, Cluster
from harness import BIN, run

def test_two_lost_controllers_fail_metadata_changes_in_time_then_recover(tmp_path):
    from confluent_kafka import KafkaError
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        first = cluster.nodes[0]
        cluster.wait_until_created(first)
        # One of three lost: still writable.
        cluster.nodes[2].kill()
        cluster.wait_until_created(first)
        # Two lost: no majority. The change fails with Kafka's REQUEST_TIMED_OUT within the client's timeout.
        cluster.nodes[1].kill()
        time.sleep(2 * ELECTION_TIMEOUT_MS / 1000)  # node 1 has noticed its leader is gone
        error, took = cluster.create_topic(first, f"nomajority-{uuid.uuid4().hex[:8]}", timeout_ms=3000)
        assert error is not None and error.code() == KafkaError.REQUEST_TIMED_OUT, error
        assert took < 3 + 2, took
        # A node returns: the cluster recovers by itself.
        cluster.start([cluster.nodes[1]])
        cluster.wait_until_created(first, timeout=40)
    finally:
        cluster.stop()


@pytest.mark.parametrize("fault", ["unprivileged", "untrusted"])
def test_a_voter_the_others_do_not_accept_is_kept_out(tmp_path, fault):
    cluster = Cluster(tmp_path, **{fault: 3})
    cluster.start()
    try:
        first, outsider = cluster.nodes[0], cluster.nodes[2]
        # Nodes 1 and 2 are a majority of their own: the cluster works without node 3.
        cluster.wait_until_created(first)
        meta = clients.kcat_metadata(cluster.bootstrap(first), cluster.admin)
        assert sorted(b["id"] for b in meta["brokers"]) == [1, 2], meta["brokers"]
        time.sleep(2)
        logs = first.log_text() + cluster.nodes[1].log_text()
        if fault == "unprivileged":
            assert "User:outsider" in logs and "super.users" in logs, logs[-3000:]
        else:
            assert re.search(r"certificate|TLS|SSL", logs + outsider.log_text()), logs[-3000:]
        # Said at most once per interval, not for every retry.
        assert logs.count("may not take part in the quorum") <= 2
    finally:
        cluster.stop()


FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 74, 75


def list_offsets(cluster, node, topic, current_leader_epoch):
    """(error code, leader epoch) of a ListOffsets v4 (latest offset) for partition 0, over mTLS."""
    import socket
    import ssl
    import struct
    import kafka_wire
    body = struct.pack(">ibi", -1, 0, 1) + kafka_wire.string(topic) + struct.pack(">iiiq", 1, 0, current_leader_epoch, -1)
    context = ssl.create_default_context(cafile=cluster.admin["ca"])
    context.load_cert_chain(cluster.admin["cert"], cluster.admin["key"])
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(kafka_wire.request(2, 4, 11, body))
            payload = kafka_wire.read_frame(sock)
    (name_len,) = struct.unpack_from(">h", payload, 12)
    _, error, _, _, epoch = struct.unpack_from(">ihqqi", payload, 12 + 2 + name_len + 4)
    return error, epoch


def test_leader_epochs_move_with_leadership_and_stale_ones_are_fenced(tmp_path):
    from confluent_kafka.admin import AdminClient, NewTopic
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        first = cluster.nodes[0]
        cluster.wait_until_created(first)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap(first), **clients.librdkafka_conf(cluster.admin)})
        topic = f"epochs-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(timeout=30)
        leader_id = admin.list_topics(topic, timeout=15).topics[topic].partitions[0].leader
        leader = next(n for n in cluster.nodes if n.node_id == leader_id)
        error, epoch = list_offsets(cluster, leader, topic, -1)
        assert error == 0
        assert list_offsets(cluster, leader, topic, epoch + 5)[0] == UNKNOWN_LEADER_EPOCH
        # The leader dies; once its session ends the controller moves the leadership: a new epoch.
        leader.kill()
        survivor = next(n for n in cluster.nodes if n is not leader)
        survivor_admin = AdminClient({"bootstrap.servers": cluster.bootstrap(survivor),
                                      **clients.librdkafka_conf(cluster.admin)})
        deadline = time.time() + 30
        new_leader = leader_id
        while new_leader in (leader_id, -1) and time.time() < deadline:
            new_leader = survivor_admin.list_topics(topic, timeout=15).topics[topic].partitions[0].leader
            time.sleep(0.2)
        assert new_leader not in (leader_id, -1), new_leader
        node = next(n for n in cluster.nodes if n.node_id == new_leader)
        error, new_epoch = list_offsets(cluster, node, topic, -1)
        assert error == 0 and new_epoch > epoch, (epoch, new_epoch)
        assert list_offsets(cluster, node, topic, epoch)[0] == FENCED_LEADER_EPOCH
        assert list_offsets(cluster, node, topic, new_epoch)[0] == 0
    finally:
        cluster.stop()


def test_changed_voters_or_cluster_id_is_refused_naming_both(tmp_path):
    cluster = Cluster(tmp_path)
    cluster.start()
    cluster.wait_until_created(cluster.nodes[0])
    cluster.stop()
    node = cluster.nodes[0]
    original = dict(node.props)
    # controller.quorum.voters no longer names the voters its quorum-state has.
    node.props["controller.quorum.voters"] = original["controller.quorum.voters"].rsplit(",", 1)[0]
    node.write()
    result = subprocess.run([BIN, "broker", "-c", str(node.config)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "lists voters [1,2,3] but controller.quorum.voters is [1,2]" in output, output
    # meta.properties names another cluster than the quorum's.
    node.props = original
    node.write()
    meta = node.log_dir / "meta.properties"
    other_id = run(BIN, "storage", "random-uuid").stdout.strip()
    meta.write_text(meta.read_text().replace(cluster.cluster_id, other_id))
    result = subprocess.run([BIN, "broker", "-c", str(node.config)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert cluster.cluster_id in output and other_id in output, output
