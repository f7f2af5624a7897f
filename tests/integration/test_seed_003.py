"""Seed 003: a Kafka 2.3 broker configuration in ZooKeeper mode (zookeeper.connect, broker.id, no
process.roles), with an SSL listener (client certificates required, inter-broker) and a SASL_SSL listener
whose clients log in with SASL/PLAIN. Bulwark must start from it as it is (host names, ports and paths
adjusted only), without `bulwark storage format`, and serve the seed's producer and consumer.

The stores are made the way the seed's users make them, as kafka-1.jks and truststore.jks with the
password "confidential", here with `bulwark pki` (JKS export). The broker runs in the directory holding
them, so the seed's relative ssl.keystore.location / ssl.truststore.location stay unchanged."""
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from harness import BIN, run, wait_for_port, wait_for_started

# The seed's broker configuration, verbatim; only kafka-1, 9193, 9194 and /tmp/kafka-1-logs are replaced.
SEED_CONFIG = """\
broker.id=1
zookeeper.connect=zookeeper:2182
listeners=SSL://kafka-1:9193,SASL_SSL://kafka-1:9194
security.inter.broker.protocol=SSL
ssl.client.auth=required
ssl.keystore.location=kafka-1.jks
ssl.keystore.password=confidential
ssl.key.password=confidential
ssl.truststore.location=truststore.jks
ssl.truststore.password=confidential
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_consumer="pw4consumer" user_producer="pw4producer";
sasl.enabled.mechanisms=PLAIN
log.dirs=/tmp/kafka-1-logs
offsets.topic.replication.factor=2
transaction.state.log.replication.factor=2
transaction.state.log.min.isr=2
"""

def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class SeedBroker:
    def __init__(self, root):
        self.root = root
        self.pki = root / "pki"
        run(BIN, "pki", "init", "--dir", self.pki)
        run(BIN, "pki", "issue", "broker", "kafka-1", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", self.pki)
        run(BIN, "pki", "issue", "client", "client-1", "--dir", self.pki)
        jks = root / "export-jks"
        run(BIN, "pki", "export", "kafka-1", "--format", "jks", "--password", "confidential", "--dir", self.pki,
            "--out", jks)
        self.broker_dir = root / "kafka-1"
        self.broker_dir.mkdir()
        shutil.copy(jks / "kafka-1.keystore.jks", self.broker_dir / "kafka-1.jks")
        shutil.copy(jks / "kafka-1.truststore.jks", self.broker_dir / "truststore.jks")
        pem = root / "export-pem"
        run(BIN, "pki", "export", "client-1", "--format", "pem", "--dir", self.pki, "--out", pem)
        self.ca = str(pem / "ca.pem")
        self.client_cert = str(pem / "client-1.chain.pem")
        self.client_key = str(pem / "client-1.key")

        self.ssl_port, self.sasl_port = _free_ports(2)
        self.log_dir = root / "kafka-1-logs"
        text = SEED_CONFIG.replace("kafka-1:9193", f"127.0.0.1:{self.ssl_port}")
        text = text.replace("kafka-1:9194", f"127.0.0.1:{self.sasl_port}")
        text = text.replace("/tmp/kafka-1-logs", str(self.log_dir))
        self.config = self.broker_dir / "kafka-1.properties"
        self.config.write_text(text)
        self.log_file = root / "kafka-1.log"
        self.proc = None

    def start(self):
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        log = open(self.log_file, "ab")
        # No `bulwark storage format`: a ZooKeeper-mode configuration formats on first start, like Kafka.
        self.proc = subprocess.Popen([BIN, "broker", "-c", self.config.name], cwd=self.broker_dir, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_for_port(self.ssl_port, proc=self.proc)
            wait_for_port(self.sasl_port, proc=self.proc)
            wait_for_started(self.log_file, log_start, self.proc)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_text()}") from None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def ssl_bootstrap(self):
        return f"127.0.0.1:{self.ssl_port}"

    def sasl_bootstrap(self):
        return f"127.0.0.1:{self.sasl_port}"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = SeedBroker(tmp_path_factory.mktemp("seed003"))
    try:
        b.start()
        yield b
    finally:
        b.stop()


# ---- clients
def _kafka_python_sasl(user, password, ca):
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_plain_username": user,
            "sasl_plain_password": password, "ssl_cafile": ca, "ssl_check_hostname": True}


def _confluent_sasl(user, password, ca):
    return {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": password, "ssl.ca.location": ca}


def _kafka_python_produce(bootstrap, kw, topic, values):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **kw)
    for f in [producer.send(topic, value=v) for v in values]:
        f.get(timeout=60)
    producer.close()


def _kafka_python_group_consume(bootstrap, kw, topic, group, count, timeout=60):
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, **kw)
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            out.extend(m.value for m in batch)
    consumer.commit()
    committed = consumer.committed(next(iter(consumer.assignment())))
    consumer.close()
    return out, committed


def _confluent_produce(bootstrap, conf, topic, values):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **conf})
    errors = []
    for v in values:
        producer.produce(topic, value=v, on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert producer.flush(60) == 0, "records not delivered"
    assert not errors, errors


def _confluent_consume(bootstrap, conf, topic, group, count, timeout=60):
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, **conf})
    consumer.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        out.append(msg.value())
    consumer.close()
    return out


def _confluent_errors(bootstrap, conf, seconds=15):
    """Connects a librdkafka producer and returns the errors it reports to error_cb (served by poll())
    within `seconds`; a failed SASL login arrives there as _AUTHENTICATION."""
    from confluent_kafka import Producer
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "error_cb": errors.append, **conf})
    deadline = time.time() + seconds
    while not errors and time.time() < deadline:
        producer.poll(0.5)
    producer.flush(0)
    return errors


# ---- tests
def test_starts_without_format_and_says_zookeeper_is_not_used(broker):
    log = broker.log_text()
    assert re.search(r"kafka-1\.properties:2: zookeeper\.connect is ignored: Bulwark keeps cluster metadata in its "
                     r"own quorum \(KRaft\); this node runs as a one-node cluster with node\.id=1", log), log
    m = re.search(r"formatted (\S+) for cluster (\S+) \(ZooKeeper-mode configuration: Kafka creates "
                  r"meta\.properties on first start\)", log)
    assert m, log
    assert m.group(1) == str(broker.log_dir)
    meta = (broker.log_dir / "meta.properties").read_text()
    assert f"cluster.id={m.group(2)}\n" in meta
    assert "node.id=1\n" in meta and "version=1\n" in meta
    # No secret of the seed is ever printed.
    for secret in ("confidential", "pw4consumer", "pw4producer"):
        assert secret not in log


def test_sasl_plain_producer_and_consumer(broker):
    topic = f"seed003-{uuid.uuid4().hex[:8]}"
    values = [f"record-{i}".encode() for i in range(10)]
    _kafka_python_produce(broker.sasl_bootstrap(), _kafka_python_sasl("producer", "pw4producer", broker.ca), topic,
                          values)
    got, committed = _kafka_python_group_consume(broker.sasl_bootstrap(),
                                                 _kafka_python_sasl("consumer", "pw4consumer", broker.ca), topic,
                                                 f"g-{topic}", len(values))
    assert got == values
    assert committed == len(values)  # group offsets work on one node despite offsets.topic.replication.factor=2

    more = [b"from-librdkafka-1", b"from-librdkafka-2"]
    _confluent_produce(broker.sasl_bootstrap(), _confluent_sasl("producer", "pw4producer", broker.ca), topic, more)
    got = _confluent_consume(broker.sasl_bootstrap(), _confluent_sasl("consumer", "pw4consumer", broker.ca), topic,
                             f"g2-{topic}", len(values) + len(more))
    assert got == values + more


def test_sasl_wrong_password_fails_cleanly(broker):
    from confluent_kafka import KafkaError
    errors = _confluent_errors(broker.sasl_bootstrap(), _confluent_sasl("producer", "not-the-password", broker.ca))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), [str(e) for e in errors]

    from kafka import KafkaProducer
    from kafka.errors import NoBrokersAvailable
    with pytest.raises(NoBrokersAvailable):  # kafka-python's only word for a refused login at bootstrap
        KafkaProducer(bootstrap_servers=broker.sasl_bootstrap(), request_timeout_ms=10000,
                      api_version_auto_timeout_ms=10000,
                      **_kafka_python_sasl("consumer", "wrong", broker.ca)).close()
    # An unknown user is refused the same way.
    errors = _confluent_errors(broker.sasl_bootstrap(), _confluent_sasl("nobody", "pw4producer", broker.ca))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), [str(e) for e in errors]
    assert broker.alive()
    assert "not-the-password" not in broker.log_text()


def test_ssl_listener_requires_a_client_certificate(broker):
    topic = f"seed003-ssl-{uuid.uuid4().hex[:8]}"
    mtls = {"security.protocol": "ssl", "ssl.ca.location": broker.ca,
            "ssl.certificate.location": broker.client_cert, "ssl.key.location": broker.client_key}
    _confluent_produce(broker.ssl_bootstrap(), mtls, topic, [b"over-mtls"])
    assert _confluent_consume(broker.ssl_bootstrap(), mtls, topic, f"g-{topic}", 1) == [b"over-mtls"]

    from kafka import KafkaConsumer
    from kafka.errors import NoBrokersAvailable
    kw = {"security_protocol": "SSL", "ssl_cafile": broker.ca, "ssl_check_hostname": True}
    consumer = KafkaConsumer(bootstrap_servers=broker.ssl_bootstrap(), ssl_certfile=broker.client_cert,
                             ssl_keyfile=broker.client_key, **kw)
    assert topic in consumer.topics()
    consumer.close()

    # ssl.client.auth=required: without a certificate, no request is served.
    errors = _confluent_errors(broker.ssl_bootstrap(), {"security.protocol": "ssl", "ssl.ca.location": broker.ca})
    assert errors, "a client without a certificate got metadata from the SSL listener"
    # kafka-python gives up with NoBrokersAvailable, or with the TLS error itself when the TLS 1.3 alert
    # arrives on its first write.
    with pytest.raises((NoBrokersAvailable, ssl.SSLError)):
        KafkaConsumer(bootstrap_servers=broker.ssl_bootstrap(), request_timeout_ms=10000,
                      api_version_auto_timeout_ms=10000, **kw).close()
    assert "the client sent no certificate but ssl.client.auth=required" in broker.log_text()
    assert broker.alive()


def test_restart_keeps_the_cluster_it_formatted(broker):
    topic = f"seed003-restart-{uuid.uuid4().hex[:8]}"
    producer_conf = _confluent_sasl("producer", "pw4producer", broker.ca)
    _confluent_produce(broker.sasl_bootstrap(), producer_conf, topic, [b"before-restart"])
    meta_before = (broker.log_dir / "meta.properties").read_text()
    broker.stop()
    broker.start()
    # The port listens from the moment it is bound; "started" follows once the node is a broker.
    deadline = time.time() + 10
    while len(re.findall(r"broker 1 of cluster (\S+) started", broker.log_text())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    log = broker.log_text()
    # Formatted once, on the first start only; both starts name the same cluster.
    assert len(re.findall(r"formatted \S+ for cluster", log)) == 1, log
    started = re.findall(r"broker 1 of cluster (\S+) started", log)
    assert len(started) == 2 and started[0] == started[1], log
    assert (broker.log_dir / "meta.properties").read_text() == meta_before
    got = _confluent_consume(broker.sasl_bootstrap(), _confluent_sasl("consumer", "pw4consumer", broker.ca), topic,
                             f"g-{topic}", 1)
    assert got == [b"before-restart"]
