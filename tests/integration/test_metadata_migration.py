"""A data dir written before the metadata log (topics in bulwark-topics.json, ACLs in bulwark-acls.json,
SCRAM users in bulwark-scram-credentials.json, records in the partition logs) is migrated into
metadata records on its first start, and nothing in it is lost: the topic keeps its id, partitions,
configs and records, the ACLs are enforced, the SCRAM user logs in. A later start does not import the
files again (the metadata log is the truth from then on)."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import stat

import clients
from harness import Broker, Pki

TOPIC_ID = "q7bVzdwpR4i2m8a0Zx9K3w"  # a base64url topic id, as the earlier release wrote them
SCRAM_USER, SCRAM_PASSWORD = "erin", "erin-secret"


def scram_sha256_entry(password, salt=b"0123456789abcdef", iterations=4096):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return {"salt": b64(salt), "stored_key": b64(hashlib.sha256(client_key).digest()),
            "server_key": b64(hmac.new(salted, b"Server Key", hashlib.sha256).digest()), "iterations": iterations}


def write_earlier_release_files(log_dir):
    (log_dir / "bulwark-topics.json").write_text(json.dumps({"version": 1, "topics": [
        {"name": "legacy", "id": TOPIC_ID, "partitions": 2, "replication_factor": 1,
         "configs": {"retention.ms": "7200000"}}]}))
    (log_dir / "bulwark-acls.json").write_text(json.dumps({"version": 1, "acls": [
        {"resource_type": "TOPIC", "resource_name": "legacy", "pattern_type": "LITERAL", "principal": "User:client-1",
         "host": "*", "operation": "WRITE", "permission": "ALLOW"}]}))
    store = log_dir / "bulwark-scram-credentials.json"
    store.write_text(json.dumps({"version": 1, "users": {SCRAM_USER: {"SCRAM-SHA-256": scram_sha256_entry(SCRAM_PASSWORD)}}}))
    os.chmod(store, 0o600)


def test_earlier_data_dir_is_migrated_without_loss(tmp_path):
    pki = Pki(tmp_path)
    extra = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             "super.users": "User:admin-1;User:ANONYMOUS", "allow.everyone.if.no.acl.found": "false",
             "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
             "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-256",
             "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-256"}
    broker = Broker(tmp_path, pki, extra=extra, sasl=True)
    admin = clients.security(pki, "MTLS", "admin-1")
    # Records in the partition logs, made by a broker; then the dir is made to look like the earlier
    # release left it: no metadata log, the three JSON files beside the logs.
    broker.start()
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(admin)})
    a.create_topics([NewTopic("legacy", 2, 1)])["legacy"].result(timeout=30)
    clients.confluent_produce(broker.bootstrap("MTLS"), admin, "legacy", [(b"k", b"before-upgrade", [])])
    broker.stop()
    shutil.rmtree(broker.log_dir / "__cluster_metadata-0")
    write_earlier_release_files(broker.log_dir)

    broker.start(format_storage=False)
    log = broker.log_text()
    assert "migrating 1 topic(s)" in log and "migrating 1 ACL(s)" in log and "migrating 1 SCRAM credential(s)" in log
    # The topic: its id, partition count and config are kept, and so are its records.
    meta = clients.kcat_metadata(broker.bootstrap("MTLS"), admin)
    legacy = next(t for t in meta["topics"] if t["topic"] == "legacy")
    assert len(legacy["partitions"]) == 2
    from confluent_kafka.admin import ConfigResource
    a = AdminClient({"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(admin)})
    resource = ConfigResource("topic", "legacy")
    configs = a.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == "7200000"
    consumed = clients.confluent_consume(broker.bootstrap("MTLS"), admin, "legacy", 1, partition=topic_partition(broker, admin))
    assert [v for _, v, _ in consumed] == [b"before-upgrade"]
    # The ACL: client-1 may write to the topic (and only there).
    client = clients.security(pki, "MTLS", "client-1")
    clients.confluent_produce(broker.bootstrap("MTLS"), client, "legacy", [(None, b"by-client-1", [])])
    # The SCRAM user logs in.
    scram = clients.sasl_security("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASSWORD)
    assert clients.kcat_metadata(broker.bootstrap("SASL_PLAINTEXT"), scram)["brokers"]
    broker.stop()

    # The files are not imported again: a topic deleted since stays deleted.
    broker.start(format_storage=False)
    a = AdminClient({"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(admin)})
    a.delete_topics(["legacy"])["legacy"].result(timeout=30)
    broker.stop()
    broker.start(format_storage=False)
    assert "legacy" not in a_topics(broker, admin)
    assert broker.log_text().count("migrating 1 topic(s)") == 1
    assert stat.S_IMODE(os.stat(broker.log_dir / "__cluster_metadata-0" / "metadata.log").st_mode) == 0o600
    broker.stop()


def topic_partition(broker, sec):
    """The partition holding the one record produced before the upgrade."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap("MTLS"), "group.id": "probe",
                         **clients.librdkafka_conf(sec)})
    try:
        for partition in (0, 1):
            low, high = consumer.get_watermark_offsets(TopicPartition("legacy", partition), timeout=10)
            if high > low:
                return partition
    finally:
        consumer.close()
    raise AssertionError("no partition of legacy holds the record produced before the upgrade")


def a_topics(broker, sec):
    return [t["topic"] for t in clients.kcat_metadata(broker.bootstrap("MTLS"), sec)["topics"]]


def test_earlier_committed_offsets_are_kept(tmp_path):
    """The earlier release kept every group's offsets in one local log, __consumer_offsets-0: the
    topic is then created with that one partition (whatever offsets.topic.num.partitions says), so
    every group still finds its offsets."""
    from confluent_kafka import Consumer, TopicPartition
    pki = Pki(tmp_path)
    broker = Broker(tmp_path, pki, extra={"offsets.topic.num.partitions": "1"})
    admin = clients.security(pki, "MTLS", "admin-1")
    conf = {"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(admin)}

    def committed_offsets():
        consumer = Consumer({**conf, "group.id": "billing", "enable.auto.commit": False})
        try:
            return [tp.offset for tp in consumer.committed([TopicPartition("legacy", 0), TopicPartition("legacy", 1)],
                                                            timeout=30)]
        finally:
            consumer.close()

    broker.start()
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient(conf)
    a.create_topics([NewTopic("legacy", 2, 1)])["legacy"].result(timeout=30)
    consumer = Consumer({**conf, "group.id": "billing", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("legacy", 0, 7), TopicPartition("legacy", 1, 3)], asynchronous=False)
    consumer.close()
    broker.stop()
    shutil.rmtree(broker.log_dir / "__cluster_metadata-0")
    write_earlier_release_files(broker.log_dir)
    del broker.props["offsets.topic.num.partitions"]  # the default, 50, from now on

    broker.start(format_storage=False)
    assert committed_offsets() == [7, 3]
    assert "holds committed offsets from before replicated offsets" in broker.log_text()
    meta = clients.kcat_metadata(broker.bootstrap("MTLS"), admin)
    offsets_topic = next(t for t in meta["topics"] if t["topic"] == "__consumer_offsets")
    assert len(offsets_topic["partitions"]) == 1
    broker.stop()
    broker.start(format_storage=False)  # and from the metadata log from then on
    assert committed_offsets() == [7, 3]
    broker.stop()
