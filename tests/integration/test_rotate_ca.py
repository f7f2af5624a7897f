"""`pki rotate-ca` on a running broker, phase by phase, with a producer (acks=all) and a consumer going
over TLS the whole time: every phase reaches the broker by hot reload, the broker ends up serving a
certificate from the new CA under a new root, no acknowledged record is lost and no client sees an error.
Fresh mTLS clients with the re-exported files work after every phase."""
import subprocess
import threading
import time
import uuid

import clients
from harness import BIN, PASSWORD, Broker, Pki, run, wait_for
from test_cert_reload import serial_of, served_serial


def issuer_cn(port):
    hello = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"],
                           input=b"", capture_output=True, timeout=20)
    out = subprocess.run(["openssl", "x509", "-noout", "-issuer", "-nameopt", "RFC2253"], input=hello.stdout,
                         capture_output=True, timeout=20)
    return out.stdout.decode().strip().removeprefix("issuer=")


class Traffic:
    """A confluent-kafka producer (acks=all) and consumer on one topic, in threads, until stop()."""

    def __init__(self, bootstrap, sec, topic):
        from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
        conf = clients.librdkafka_conf(sec)
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", **conf})
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                                  **conf})
        self.consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.topic, self.acked, self.errors, self.seen = topic, [], [], []
        self.running = True
        self.threads = [threading.Thread(target=self.produce), threading.Thread(target=self.consume)]
        for t in self.threads:
            t.start()

    def produce(self):
        def delivered(err, msg):
            (self.errors if err else self.acked).append(err or msg.value())
        i = 0
        while self.running:
            self.producer.produce(self.topic, f"r-{i}".encode(), on_delivery=delivered)
            self.producer.poll(0)
            i += 1
            time.sleep(0.02)
        self.producer.flush(30)

    def consume(self):
        while self.running or len(self.seen) < len(self.acked):
            msg = self.consumer.poll(0.5)
            if msg is None:
                if not self.running and time.time() > self.deadline:
                    break
                continue
            if msg.error():
                self.errors.append(msg.error())
            else:
                self.seen.append(msg.value())

    def stop(self):
        self.deadline = time.time() + 30
        self.running = False
        for t in self.threads:
            t.join(60)
        self.consumer.close()


def rotate(pki, *args):
    return run(BIN, "pki", "rotate-ca", "--dir", pki.dir, "--password-file", pki.root / "store.password", *args).stdout


def fresh_mtls_client_works(broker, pki, topic):
    records = clients.confluent_consume(broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic, 1, timeout=30)
    return len(records) == 1


def test_rotate_ca_with_a_new_root_on_a_running_broker_loses_nothing(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    (pki.root / "store.password").write_text(PASSWORD + "\n")
    broker = Broker(tmp_path, pki).start()
    topic = f"rotate-{uuid.uuid4().hex[:8]}"
    port = broker.ports["SSL"]
    old_issuer = issuer_cn(port)
    old_serial = served_serial(port)
    traffic = None
    try:
        out = rotate(pki, "--phase", "1", "--new-root")
        assert "Phase 1 of 3" in out and "Bulwark Root CA G2" in out
        wait_for("phase 1 to reach the listeners",
                 lambda: broker.log_text().count("listener SSL: TLS material read again") >= 1 and
                 "2 trusted certificate(s)" in broker.log_text(), timeout=30)
        assert served_serial(port) == old_serial, "phase 1 only adds trust"
        # Clients take the new bundle (both roots) now, as an operator distributes it in phase 1.
        assert (pki.exports["admin-1"] / "ca.pem").read_text().count("BEGIN CERTIFICATE") == 3
        traffic = Traffic(broker.bootstrap("SSL"), clients.security(pki, "SSL"), topic)
        wait_for("traffic", lambda: len(traffic.seen) >= 10, timeout=60)
        assert fresh_mtls_client_works(broker, pki, topic)

        out = rotate(pki, "--phase", "2")
        assert "Phase 2 of 3" in out and "reissued 2 certificate(s)" in out
        new_serial = serial_of(pki.dir / "issued/broker-1/cert.pem")
        wait_for("the reissued certificate", lambda: served_serial(port) == new_serial, timeout=30)
        assert issuer_cn(port).startswith("CN=Bulwark Intermediate CA G2") and old_issuer != issuer_cn(port)
        crl = run("openssl", "crl", "-in", pki.dir / "crl.pem", "-noout", "-issuer").stdout
        assert (pki.dir / "crl.pem").read_text().count("BEGIN X509 CRL") == 2, "both intermediates revoke in phase 2"
        assert "Bulwark Intermediate CA G2" in crl
        seen_before = len(traffic.seen)
        wait_for("traffic after phase 2", lambda: len(traffic.seen) >= seen_before + 10, timeout=60)
        assert fresh_mtls_client_works(broker, pki, topic)

        out = rotate(pki, "--phase", "3")
        assert "Phase 3 of 3" in out and "the rotation is done" in out
        wait_for("phase 3 to reach the listeners", lambda: broker.log_text().count("1 trusted certificate(s)") >= 3 and
                 broker.log_text().rfind("1 trusted certificate(s)") > broker.log_text().rfind("2 trusted certificate(s)"),
                 timeout=30)
        assert (pki.exports["admin-1"] / "ca.pem").read_text().count("BEGIN CERTIFICATE") == 2
        seen_before = len(traffic.seen)
        wait_for("traffic after phase 3", lambda: len(traffic.seen) >= seen_before + 10, timeout=60)
        assert fresh_mtls_client_works(broker, pki, topic)
        assert "cannot run now" in run(BIN, "pki", "rotate-ca", "--dir", pki.dir, "--phase", "2", check=False).stderr
    finally:
        if traffic:
            traffic.stop()
        broker.stop()
    assert not traffic.errors, traffic.errors[:5]
    assert traffic.acked, "nothing was produced"
    assert set(traffic.acked) <= set(traffic.seen), "an acknowledged record was not consumed"
    assert "is not used" not in broker.log_text(), "every phase's material was accepted"


def test_phases_run_in_order_and_skipping_one_is_refused(tmp_path):
    pki = Pki(tmp_path, clients=())
    (pki.root / "store.password").write_text(PASSWORD + "\n")
    refused = run(BIN, "pki", "rotate-ca", "--dir", pki.dir, "--phase", "2", check=False)
    assert refused.returncode != 0 and "no rotation is under way; start with --phase 1" in refused.stderr
    # Without --new-root the root in force signs the new intermediate: truststores do not change.
    trust_before = (pki.exports["broker-1"] / "ca.pem").read_text()
    rotate(pki, "--phase", "1")
    assert (pki.exports["broker-1"] / "ca.pem").read_text().count("BEGIN CERTIFICATE") == trust_before.count("BEGIN CERTIFICATE")
    refused = run(BIN, "pki", "rotate-ca", "--dir", pki.dir, "--phase", "3", check=False)
    assert refused.returncode != 0 and "the next one is --phase 2" in refused.stderr
    out = rotate(pki, "--wait", "0")  # the rest at once
    assert "Phase 2 of 3" in out and "Phase 3 of 3" in out
    chain = run("openssl", "verify", "-CAfile", pki.dir / "ca/root.crt", "-untrusted", pki.dir / "ca/intermediate.crt",
                pki.dir / "issued/broker-1/cert.pem")
    assert chain.stdout.strip().endswith("OK")
    no_password = run(BIN, "pki", "rotate-ca", "--dir", pki.dir, "--phase", "1", check=False)
    assert no_password.returncode != 0 and "protected by a password: give it with --password-file" in no_password.stderr


def test_rotate_ca_on_a_running_three_node_cluster(tmp_path):
    """The same phases on three broker+controller nodes with mTLS between them: each node reloads every
    phase (its peers still verify it: the brokers' own check), the quorum and replication carry on, and
    acks=all records produced in each phase are all there at the end."""
    from cluster_harness import Cluster
    cluster = Cluster(tmp_path, props={"default.replication.factor": "3", "min.insync.replicas": "2",
                                       "offsets.topic.replication.factor": "3"})
    (tmp_path / "store.password").write_text(PASSWORD + "\n")
    cluster.start()
    topic = f"rotate-{uuid.uuid4().hex[:8]}"
    produced = []

    def produce_some(tag):
        records = [(None, f"{tag}-{i}".encode(), None) for i in range(20)]
        clients.confluent_produce(cluster.bootstrap(cluster.nodes[0]), cluster.admin, topic, records)
        produced.extend(value for _, value, _ in records)

    def all_nodes(predicate):
        return all(predicate(node) for node in cluster.nodes)

    def phase(*args):
        return run(BIN, "pki", "rotate-ca", "--dir", tmp_path / "pki", "--password-file", tmp_path / "store.password",
                   *args).stdout
    try:
        cluster.wait_until_created(cluster.nodes[0])
        produce_some("before")
        phase("--phase", "1", "--new-root")
        wait_for("every node to trust both roots", lambda: all_nodes(
            lambda n: n.log_text().count("2 trusted certificate(s)") >= 2), timeout=30)  # MTLS and CONTROLLER
        produce_some("phase-1")

        phase("--phase", "2")
        wait_for("every node to serve its reissued certificate", lambda: all_nodes(
            lambda n: served_serial(n.port) == serial_of(tmp_path / f"pki/issued/node-{n.node_id}/cert.pem")), timeout=30)
        produce_some("phase-2")

        phase("--phase", "3")
        wait_for("every node to trust only the new root", lambda: all_nodes(
            lambda n: n.log_text().rfind("1 trusted certificate(s)") > n.log_text().rfind("2 trusted certificate(s)")),
                 timeout=30)
        produce_some("phase-3")
        # Replication and the quorum still work over the rotated certificates: a new topic, then all data.
        cluster.wait_until_created(cluster.nodes[2])
        got = clients.confluent_consume(cluster.bootstrap(cluster.nodes[1]), cluster.admin, topic, len(produced))
        assert [value for _, value, _ in got] == produced
        for node in cluster.nodes:
            assert "is not used" not in node.log_text(), f"node {node.node_id} refused a phase's material"
            assert node.proc.poll() is None
    finally:
        cluster.stop()
