"""Seed 000's three KRaft nodes (kraft-node-{1,2,3}.properties: combined broker+controller roles, a
three-voter quorum over SSL, StandardAuthorizer, super.users, allow.everyone.if.no.acl.found=false, CN
mapping rules, ssl.client.auth=required) with the keystores its users make by hand with openssl and
keytool, started as they are (paths and ports only adjusted), form one cluster:
- kcat and confluent-kafka see three brokers; a topic with replication factor 3 is created, and a topic
  made through one node exists on the others;
- admin-1 (a super user) creates a topic and produces with kcat; client-1 is denied with
  TOPIC_AUTHORIZATION_FAILED until admin-1 grants WRITE through kafka-python's KafkaAdminClient (on one
  node) and READ through `bulwark acl` (on another), then produces and consumes in a group; the grants
  hold on every node and survive a restart of the cluster; denials are audited in Kafka's words; no
  password reaches the log;
- kill -9 of the active controller: another node is elected, topics can be created again, and the
  killed node rejoins and catches up;
- a certificate from another CA cannot connect at all.
The seed files are vendored in seed-examples/ (copies of ../shared/seed-examples) so the test runs anywhere."""
import re
import socket
import subprocess
import time
import uuid

import pytest

import clients
from harness import BIN, SOURCE_DIR, free_port, run, wait_for_port

SEED = SOURCE_DIR / "tests" / "integration" / "seed-examples"
PASSWORD = "sls1234567"  # the seed's store password
ELECTION_TIMEOUT_S = 1.0  # controller.quorum.election.timeout.ms, Kafka's default (the seed sets none)
FETCH_TIMEOUT_S = 2.0     # controller.quorum.fetch.timeout.ms, Kafka's default


class SeedNode:
    def __init__(self, root, index, ssl_dir, ports):
        self.root = root
        self.index = index
        root.mkdir(parents=True, exist_ok=True)
        text = (SEED / f"kraft-node-{index}.properties").read_text()
        text = text.replace("/tmp/bulwark-seed/ssl", str(ssl_dir))
        text = text.replace(f"/tmp/bulwark-seed/kraft-combined-logs-{index}", str(root / "logs"))
        # The seed's fixed ports may be taken on a shared machine: move them, keep everything else.
        for seed_port, port in ports.items():
            text = text.replace(f":{seed_port}", f":{port}")
        self.port = ports[10000 * index + 9092]
        self.node_id = int(re.search(r"^node\.id=(\d+)$", text, re.M).group(1))
        self.config = root / "server.properties"
        self.config.write_text(text)
        self.log_path = root / "broker.log"
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "broker", "-c", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        if self.log:
            self.log.close()
            self.log = None

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.log.close()
        self.log = None

    def log_text(self):
        return self.log_path.read_text(errors="replace")


class SeedCluster:
    def __init__(self, root):
        self.ssl_dir = root / "ssl"
        run("bash", SEED / "make-seed-keystores.sh", self.ssl_dir, timeout=600)
        ports = {10000 * i + offset: free_port() for i in (1, 2, 3) for offset in (9092, 9093)}
        self.nodes = [SeedNode(root / f"node-{i}", i, self.ssl_dir, ports) for i in (1, 2, 3)]
        cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
        for node in self.nodes:
            node.root.mkdir(parents=True, exist_ok=True)
            run(BIN, "storage", "format", "-t", cluster_id, "-c", node.config)

    def start(self):
        # All three at once: each waits for a quorum of the others.
        for node in self.nodes:
            node.log = open(node.log_path, "ab")
            node.proc = subprocess.Popen([BIN, "broker", "-c", str(node.config)], stdout=node.log,
                                         stderr=subprocess.STDOUT)
        for node in self.nodes:
            try:
                wait_for_port(node.port, proc=node.proc)
            except AssertionError as e:
                raise AssertionError(f"node {node.node_id}: {e}\n{node.log_text()[-4000:]}") from None
        self.wait_for_brokers(3)

    def stop(self):
        for node in self.nodes:
            node.stop()

    def pem(self, user):
        return {"ca": str(self.ssl_dir / "ca.crt"), "cert": str(self.ssl_dir / f"{user}.crt"),
                "key": str(self.ssl_dir / f"{user}.key")}

    @property
    def bootstrap(self):
        return ",".join(f"localhost:{n.port}" for n in self.nodes if n.proc and n.proc.poll() is None)

    def node_bootstrap(self, node):
        return f"localhost:{node.port}"

    def log_text(self):
        return "".join(n.log_text() for n in self.nodes)

    def wait_for_brokers(self, count, via=None, timeout=60):
        deadline = time.time() + timeout
        meta = None
        while time.time() < deadline:
            try:
                meta = clients.kcat_metadata(self.node_bootstrap(via or self.nodes[0]), self.pem("admin-1"))
                if len(meta["brokers"]) >= count:
                    return meta
            except Exception:  # a node still starting
                pass
            time.sleep(0.2)
        raise AssertionError(f"fewer than {count} brokers after {timeout}s: {meta}")

    def controller_id(self, via):
        """The controller as a node names it in Metadata (kcat's controllerid)."""
        return clients.kcat_metadata(self.node_bootstrap(via), self.pem("admin-1")).get("controllerid")


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    cluster = SeedCluster(tmp_path_factory.mktemp("seed"))
    cluster.start()
    yield cluster
    cluster.stop()


def confluent_produce_errors(bootstrap, sec, topic, value):
    from confluent_kafka import Producer
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 15000, "acks": "all",
                         **clients.librdkafka_conf(sec)})
    producer.produce(topic, value, on_delivery=lambda err, msg: errors.append(err) if err else None)
    producer.flush(30)
    return errors


def group_consume(bootstrap, sec, topic, group, count, timeout=40):
    """confluent-kafka as a group member; returns (values, errors)."""
    import time
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         **clients.librdkafka_conf(sec)})
    consumer.subscribe([topic])
    values, errors = [], []
    deadline = time.time() + timeout
    while len(values) < count and time.time() < deadline and not errors:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            errors.append(msg.error())
        else:
            values.append(msg.value())
    consumer.close()
    return values, errors


def bulwark_acl(seed, *args, user="admin-1", check=True):
    """`bulwark acl` through node 2 (the admin client below uses node 1): ACLs are the cluster's."""
    sec = seed.pem(user)
    return run(BIN, "acl", *args, "--bootstrap-server", seed.node_bootstrap(seed.nodes[1]), "--ca", sec["ca"],
               "--cert", sec["cert"], "--key", sec["key"], check=check)


def test_admin_creates_and_produces_client_is_denied_until_granted(seed):
    from confluent_kafka import KafkaError
    topic = f"seed-{uuid.uuid4().hex[:8]}"
    admin, client = seed.pem("admin-1"), seed.pem("client-1")

    # admin-1 is a super user: auto-creates the topic (num.partitions=6) and produces.
    clients.kcat_produce(seed.bootstrap, admin, topic, [(b"k", b"from-admin-1", [])])
    meta = clients.kcat_metadata(seed.bootstrap, admin)
    assert len(next(t for t in meta["topics"] if t["topic"] == topic)["partitions"]) == 6

    # client-1 has no ACL: allow.everyone.if.no.acl.found=false denies it.
    errors = confluent_produce_errors(seed.bootstrap, client, topic, b"denied")
    assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors
    result = subprocess.run(clients.kcat_args(seed.bootstrap, client) + ["-P", "-t", topic], input=b"denied\n",
                            capture_output=True, timeout=60)
    assert result.returncode != 0 and b"authorization failed" in result.stderr.lower(), result.stderr
    # The principal is the CN (ssl.principal.mapping.rules), and the denial is audited in Kafka's words.
    assert "Principal = User:client-1 is Denied operation = DESCRIBE from host = 127.0.0.1 on resource = " \
           f"Topic:LITERAL:{topic}" in seed.log_text()
    # client-1 may not grant itself anything.
    denied = bulwark_acl(seed, "add", "--allow-principal", "User:client-1", "--operation", "Write", "--topic", topic,
                         user="client-1", check=False)
    assert denied.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in denied.stdout + denied.stderr

    # admin-1 grants WRITE with kafka-python's admin client.
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, KafkaAdminClient, ResourcePattern, ResourceType
    admin_client = KafkaAdminClient(bootstrap_servers=seed.node_bootstrap(seed.nodes[0]),
                                    **clients.kafka_python_kwargs(admin))
    acl = ACL(principal="User:client-1", host="*", operation=ACLOperation.WRITE,
              permission_type=ACLPermissionType.ALLOW, resource_pattern=ResourcePattern(ResourceType.TOPIC, topic))
    result = admin_client.create_acls([acl])
    assert not result["failed"], result
    admin_client.close()
    assert confluent_produce_errors(seed.bootstrap, client, topic, b"from-client-1") == []

    # Reading needs READ on the topic and on the group: a consumer is refused first...
    group = f"g-{topic}"
    values, errors = group_consume(seed.bootstrap, client, topic, group, 2, timeout=20)
    assert values == [] and errors and errors[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                            KafkaError.GROUP_AUTHORIZATION_FAILED), errors
    # ...until admin-1 grants it with `bulwark acl` (kafka-acls.sh's --consumer).
    bulwark_acl(seed, "add", "--allow-principal", "User:client-1", "--consumer", "--topic", topic, "--group", group)
    listed = bulwark_acl(seed, "list", "--topic", topic).stdout
    assert "principal=User:client-1" in listed and "operation=READ" in listed and "operation=WRITE" in listed
    values, errors = group_consume(seed.bootstrap, client, topic, group, 2)
    assert errors == [] and sorted(values) == [b"from-admin-1", b"from-client-1"]

    # The ACLs are durable: after a restart of the whole cluster client-1 still produces.
    seed.stop()
    seed.start()
    assert confluent_produce_errors(seed.bootstrap, client, topic, b"after-restart") == []
    # And removing them takes the right away again.
    bulwark_acl(seed, "remove", "--allow-principal", "User:client-1", "--topic", topic)
    errors = confluent_produce_errors(seed.bootstrap, client, topic, b"denied again")
    assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors

    log = seed.log_text()
    assert "authorizer on" in log
    assert PASSWORD not in log
    assert "super.users is accepted" not in log  # enforced, so not reported as accepted-only


def test_three_nodes_are_one_cluster_with_replication_factor_3(seed):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin_sec = seed.pem("admin-1")
    meta = seed.wait_for_brokers(3)
    assert sorted(b["id"] for b in meta["brokers"]) == [0, 1, 2], meta["brokers"]
    admin = AdminClient({"bootstrap.servers": seed.node_bootstrap(seed.nodes[0]), **clients.librdkafka_conf(admin_sec)})
    # Every node names the same controller, one of the three.
    assert len({seed.controller_id(node) for node in seed.nodes}) == 1
    assert seed.controller_id(seed.nodes[0]) in (0, 1, 2)

    topic = f"rf3-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=3)])[topic].result(timeout=30)
    # Every node knows it, with three replicas per partition, spread over all three brokers as leaders.
    for node in seed.nodes:
        meta = clients.kcat_metadata(seed.node_bootstrap(node), admin_sec)
        partitions = next(t for t in meta["topics"] if t["topic"] == topic)["partitions"]
        assert len(partitions) == 6
        assert all(sorted(r["id"] for r in p["replicas"]) == [0, 1, 2] for p in partitions), partitions
        assert sorted({p["leader"] for p in partitions}) == [0, 1, 2], partitions
    # Records go to each partition's leader, and a consumer on another node's bootstrap reads them.
    clients.confluent_produce(seed.node_bootstrap(seed.nodes[2]), admin_sec, topic,
                              [(b"k", f"v{i}".encode(), []) for i in range(20)])
    values, errors = group_consume(seed.node_bootstrap(seed.nodes[0]), admin_sec, topic, f"g-{topic}", 20)
    assert errors == [] and sorted(values) == sorted(f"v{i}".encode() for i in range(20))
    # The quorum as kafka-metadata-quorum.sh shows it, through any broker.
    tls = ["--ca", admin_sec["ca"], "--cert", admin_sec["cert"], "--key", admin_sec["key"]]
    status = run(BIN, "quorum", "describe", "--status", "--bootstrap-server", seed.node_bootstrap(seed.nodes[1]),
                 *tls).stdout
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in status.splitlines())}
    assert fields["CurrentVoters"] == "[0,1,2]" and int(fields["LeaderId"]) in (0, 1, 2), status
    assert int(fields["HighWatermark"]) > 0 and fields["ClusterId"], status
    replication = run(BIN, "quorum", "describe", "--replication", "--bootstrap-server",
                      seed.node_bootstrap(seed.nodes[2]), *tls).stdout
    assert sum(1 for line in replication.splitlines() if line.split()[-1] in ("Leader", "Follower")) == 3, replication
    # And the metadata log in words, from any node's directory.
    dump = run(BIN, "metadata", "dump", seed.nodes[2].root / "logs" / "__cluster_metadata-0").stdout
    assert f"TopicRecord v0 name={topic}" in dump or f"name={topic} id=" in dump, dump[-2000:]
    assert "RegisterBrokerRecord" in dump and "LeaderChange leader=" in dump, dump[-2000:]
    assert PASSWORD not in dump

    # A topic with more replicas than brokers is refused with Kafka's words.
    too_many = admin.create_topics([NewTopic(f"rf4-{topic}", 1, 4)])[f"rf4-{topic}"]
    with pytest.raises(Exception) as refused:
        too_many.result(timeout=30)
    assert "INVALID_REPLICATION_FACTOR" in str(refused.value) or "replication factor" in str(refused.value).lower()


def test_kill_9_of_the_active_controller(seed):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin_sec = seed.pem("admin-1")
    seed.wait_for_brokers(3)
    leader_id = seed.controller_id(seed.nodes[0])
    victim = next(n for n in seed.nodes if n.node_id == leader_id)
    survivor = next(n for n in seed.nodes if n is not victim)
    survivors = [n for n in seed.nodes if n is not victim]
    active_before = sum(n.log_text().count(" active in epoch ") for n in survivors)
    victim.kill()
    killed_at = time.time()
    # A survivor says "controller N active in epoch E" once its LeaderChange entry is committed.
    while time.time() - killed_at < 30:
        if sum(n.log_text().count(" active in epoch ") for n in survivors) > active_before:
            break
        time.sleep(0.02)
    elected_after = time.time() - killed_at
    assert elected_after < 30, f"no new controller 30 s after killing {leader_id}"
    new_leader = seed.controller_id(survivor)
    assert new_leader != leader_id and new_leader in (n.node_id for n in survivors)
    # Followers notice a dead leader when their fetches time out, then one wins an election within
    # 2x the election timeout (T + rand(T)); one split vote (backoff, then another election) is allowed.
    ELECTION_BACKOFF_MAX_S = 1.0
    assert elected_after < FETCH_TIMEOUT_S + 2 * (2 * ELECTION_TIMEOUT_S) + ELECTION_BACKOFF_MAX_S + 0.5, elected_after

    # Topic creation works again, through the survivors.
    admin = AdminClient({"bootstrap.servers": seed.node_bootstrap(survivor), **clients.librdkafka_conf(admin_sec)})
    topic = f"after-kill-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=2)])[topic].result(timeout=30)

    # The killed node rejoins and catches up: it knows the topic made while it was down.
    victim.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        meta = clients.kcat_metadata(seed.node_bootstrap(victim), admin_sec)
        if any(t["topic"] == topic for t in meta["topics"]) and len(meta["brokers"]) == 3:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"node {victim.node_id} did not catch up: {meta}")


def test_certificate_from_another_ca_cannot_connect(seed, tmp_path):
    other = tmp_path / "other-pki"
    run(BIN, "pki", "init", "--dir", other)
    run(BIN, "pki", "issue", "client", "admin-1", "--dir", other)  # same CN as the super user
    out = tmp_path / "export"
    run(BIN, "pki", "export", "admin-1", "--format", "pem", "--dir", other, "--out", out)
    sec = {"ca": str(seed.ssl_dir / "ca.crt"), "cert": str(out / "admin-1.chain.pem"), "key": str(out / "admin-1.key")}
    result = subprocess.run(clients.kcat_args(seed.node_bootstrap(seed.nodes[0]), sec) + ["-L", "-m", "10"],
                            capture_output=True, timeout=60)
    assert result.returncode != 0
    assert b"SSL" in result.stderr or b"ssl" in result.stderr, result.stderr
    assert "certificate" in seed.log_text().lower()
    # The listener still serves the seed's own certificates.
    assert clients.kcat_metadata(seed.bootstrap, seed.pem("admin-1"))["brokers"]

