"""The seed's KRaft node configuration (StandardAuthorizer, super.users, allow.everyone.if.no.acl.found=false,
CN mapping rules, ssl.client.auth=required) with the keystores its users make by hand with openssl and keytool,
started as it is (paths and ports only adjusted):
- admin-1 (a super user) creates a topic and produces with kcat;
- client-1 is denied with TOPIC_AUTHORIZATION_FAILED until admin-1 grants WRITE through kafka-python's
  KafkaAdminClient and READ through `bulwark acl`, then produces and consumes in a group;
- the grants survive a restart; denials are audited in Kafka's words; no password reaches the log;
- a certificate from another CA cannot connect at all.
The seed files are vendored in seed-examples/ (copies of ../shared/seed-examples) so the test runs anywhere."""
import socket
import subprocess
import uuid

import pytest

import clients
from harness import BIN, SOURCE_DIR, free_port, run, wait_for_port

SEED = SOURCE_DIR / "tests" / "integration" / "seed-examples"
PASSWORD = "sls1234567"  # the seed's store password


class SeedBroker:
    def __init__(self, root):
        self.root = root
        self.ssl_dir = root / "ssl"
        run("bash", SEED / "make-seed-keystores.sh", self.ssl_dir, timeout=600)
        text = (SEED / "kraft-node-1.properties").read_text()
        text = text.replace("/tmp/bulwark-seed/ssl", str(self.ssl_dir))
        text = text.replace("/tmp/bulwark-seed/kraft-combined-logs-1", str(root / "logs"))
        # The seed's fixed ports may be taken on a shared machine: move them, keep everything else.
        self.port, controller = free_port(), free_port()
        text = text.replace(":19092", f":{self.port}").replace(":19093", f":{controller}")
        self.config = root / "server.properties"
        self.config.write_text(text)
        run(BIN, "storage", "format", "-t", run(BIN, "storage", "random-uuid").stdout.strip(), "-c", self.config)
        self.log_path = root / "broker.log"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "broker", "-c", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()

    def pem(self, user):
        return {"ca": str(self.ssl_dir / "ca.crt"), "cert": str(self.ssl_dir / f"{user}.crt"),
                "key": str(self.ssl_dir / f"{user}.key")}

    @property
    def bootstrap(self):
        return f"localhost:{self.port}"

    def log_text(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    broker = SeedBroker(tmp_path_factory.mktemp("seed"))
    broker.start()
    yield broker
    broker.stop()


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
    sec = seed.pem(user)
    return run(BIN, "acl", *args, "--bootstrap-server", seed.bootstrap, "--ca", sec["ca"], "--cert", sec["cert"],
               "--key", sec["key"], check=check)


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
    admin_client = KafkaAdminClient(bootstrap_servers=seed.bootstrap, **clients.kafka_python_kwargs(admin))
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

    # The ACLs are durable: after a restart client-1 still produces.
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


def test_certificate_from_another_ca_cannot_connect(seed, tmp_path):
    other = tmp_path / "other-pki"
    run(BIN, "pki", "init", "--dir", other)
    run(BIN, "pki", "issue", "client", "admin-1", "--dir", other)  # same CN as the super user
    out = tmp_path / "export"
    run(BIN, "pki", "export", "admin-1", "--format", "pem", "--dir", other, "--out", out)
    sec = {"ca": str(seed.ssl_dir / "ca.crt"), "cert": str(out / "admin-1.chain.pem"), "key": str(out / "admin-1.key")}
    result = subprocess.run(clients.kcat_args(seed.bootstrap, sec) + ["-L", "-m", "10"], capture_output=True, timeout=60)
    assert result.returncode != 0
    assert b"SSL" in result.stderr or b"ssl" in result.stderr, result.stderr
    assert "certificate" in seed.log_text().lower()
    # The listener still serves the seed's own certificates.
    assert clients.kcat_metadata(seed.bootstrap, seed.pem("admin-1"))["brokers"]

