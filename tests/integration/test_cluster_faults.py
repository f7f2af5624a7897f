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
from harness import BIN, PASSWORD, free_port, run, wait_for_port

ELECTION_TIMEOUT_MS = 500


class Node:
    def __init__(self, root, node_id, keystore, truststore, voters, ports):
        self.root = root
        self.node_id = node_id
        self.port, self.controller_port = ports[node_id]
        self.log_dir = root / "logs"
        self.config = root / "server.properties"
        self.log_path = root / "broker.log"
        self.proc = None
        self.props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": f"MTLS://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"MTLS://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "MTLS",
            "listener.security.protocol.map": "MTLS:SSL,CONTROLLER:SSL",
            "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(keystore), "ssl.keystore.password": PASSWORD,
            "ssl.truststore.type": "PKCS12", "ssl.truststore.location": str(truststore),
            "ssl.truststore.password": PASSWORD,
            "ssl.client.auth": "required",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:node-1;User:node-2;User:node-3;User:admin-1",
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
            "log.dirs": str(self.log_dir),
            "controller.quorum.election.timeout.ms": str(ELECTION_TIMEOUT_MS),
            "controller.quorum.fetch.timeout.ms": str(2 * ELECTION_TIMEOUT_MS),
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
        }

    def write(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))

    def spawn(self):
        self.write()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "broker", "-c", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Cluster:
    def __init__(self, root, untrusted=None, unprivileged=None):
        """untrusted / unprivileged: the id of a node whose certificate comes from another CA, or whose
        certificate's CN (outsider) is not a super user."""
        self.root = root
        pki = root / "pki"
        run(BIN, "pki", "init", "--dir", pki)
        other = root / "other-pki"
        run(BIN, "pki", "init", "--dir", other)
        ports = {i: (free_port(), free_port()) for i in (1, 2, 3)}
        voters = ",".join(f"{i}@127.0.0.1:{ports[i][1]}" for i in (1, 2, 3))
        self.nodes = []
        for i in (1, 2, 3):
            name = "outsider" if i == unprivileged else f"node-{i}"
            ca_dir = other if i == untrusted else pki
            run(BIN, "pki", "issue", "broker", name, "--dns", "localhost", "--ip", "127.0.0.1", "--dir", ca_dir)
            out = root / "export" / f"{i}"
            run(BIN, "pki", "export", name, "--format", "pkcs12", "--password", PASSWORD, "--dir", ca_dir, "--out", out)
            self.nodes.append(Node(root / f"node-{i}", i, out / f"{name}.keystore.p12", out / f"{name}.truststore.p12",
                                   voters, ports))
        run(BIN, "pki", "issue", "client", "admin-1", "--dir", pki)
        run(BIN, "pki", "export", "admin-1", "--format", "pem", "--dir", pki, "--out", root / "export" / "admin-1")
        self.admin = {"ca": str(root / "export" / "admin-1" / "ca.pem"),
                      "cert": str(root / "export" / "admin-1" / "admin-1.chain.pem"),
                      "key": str(root / "export" / "admin-1" / "admin-1.key")}
        self.cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
        for node in self.nodes:
            node.write()
            run(BIN, "storage", "format", "-t", self.cluster_id, "-c", node.config)

    def start(self, nodes=None):
        nodes = nodes or self.nodes
        for node in nodes:
            node.spawn()
        for node in nodes:
            wait_for_port(node.port, proc=node.proc)

    def stop(self):
        # Last node first: brokers then reach the controllers for their controlled shutdown.
        for node in reversed(self.nodes):
            if node.proc:
                node.stop()

    def bootstrap(self, node):
        return f"127.0.0.1:{node.port}"

    def create_topic(self, via, name, timeout_ms=5000):
        """CreateTopics through `via` with the operation timeout `timeout_ms`; returns the error (None on
        success) and the seconds it took."""
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap(via), **clients.librdkafka_conf(self.admin)})
        started = time.time()
        future = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=timeout_ms / 1000,
                                     request_timeout=timeout_ms / 1000 + 10)[name]
        try:
            future.result(timeout=timeout_ms / 1000 + 30)
            return None, time.time() - started
        except Exception as e:  # confluent_kafka.KafkaException wrapping the KafkaError
            return e.args[0], time.time() - started

    def wait_until_created(self, via, timeout=30):
        deadline = time.time() + timeout
        error = None
        while time.time() < deadline:
            error, _ = self.create_topic(via, f"t-{uuid.uuid4().hex[:8]}")
            if error is None:
                return
            time.sleep(0.5)
        raise AssertionError(f"no topic could be created through node {via.node_id}: {error}")


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
