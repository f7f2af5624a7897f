"""Topic configs that arrive over the wire are checked as server.properties is, before anything is
stored, so no CreateTopics request can stop the broker from restarting; and a config made invalid on
disk by hand takes only its own topic offline."""
import json
import shutil
import socket
import uuid

import clients
import kafka_wire
from harness import Broker, Pki

INVALID_CONFIG = 40
KAFKA_STORAGE_ERROR = 56


def admin(broker, pki):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": broker.bootstrap("MTLS"),
                        **clients.librdkafka_conf(clients.security(pki, "MTLS"))})


def create(admin_client, name, configs, validate_only=False):
    """The KafkaError of creating `name` with `configs` (None when it was created)."""
    from confluent_kafka.admin import NewTopic
    futures = admin_client.create_topics([NewTopic(name, 1, 1, config=configs)], validate_only=validate_only,
                                         request_timeout=15)
    try:
        futures[name].result(timeout=20)
        return None
    except Exception as e:  # confluent_kafka.KafkaException carrying the broker's error
        return e.args[0]


def topic_names(admin_client):
    return set(admin_client.list_topics(timeout=15).topics)


def raw_produce_error(broker, topic):
    """The error code a Produce v3 of one record gets for partition 0 of `topic` (PLAINTEXT listener)."""
    with socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=10) as sock:
        body = kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([b"x"]), acks=1)
        sock.sendall(kafka_wire.request(0, 3, 7, body))
        error, _ = kafka_wire.parse_produce_v3_response(kafka_wire.read_frame(sock))
        return error


def test_invalid_segment_bytes_is_refused_and_the_broker_restarts(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki).start()
    a = admin(broker, pki)
    bad = {"segment.bytes": ["0", "-1", str(2 ** 33), "13", "1e6"],
           "retention.ms": ["-2", "forever"],
           "flush.messages": ["0"],
           "message.timestamp.type": ["WallClock"]}
    for key, values in bad.items():
        for value in values:
            name = f"bad-{uuid.uuid4().hex[:8]}"
            error = create(a, name, {key: value})
            assert error is not None and error.code() == INVALID_CONFIG, (key, value, error)
            assert key in error.str(), error.str()
            assert name not in topic_names(a)
    # Unknown keys, and Kafka keys Bulwark does not act on, are refused by name.
    for configs, words in [({"no.such.key": "1"}, "Unknown topic config name"),
                           ({"preallocate": "true"}, "does not act on")]:
        error = create(a, "refused-" + uuid.uuid4().hex[:6], configs)
        assert error is not None and error.code() == INVALID_CONFIG and words in error.str(), error
    # validate_only answers the same without creating anything.
    error = create(a, "dry-run", {"segment.bytes": "0"}, validate_only=True)
    assert error is not None and error.code() == INVALID_CONFIG
    assert create(a, "tiny-segments", {"segment.bytes": "14", "retention.ms": "-1"}) is None

    broker.stop()
    broker.start(format_storage=False)
    assert broker.alive()
    a = admin(broker, pki)
    names = topic_names(a)
    assert "tiny-segments" in names and not any(n.startswith("bad-") for n in names)
    broker.stop()


def test_invalid_stored_config_keeps_only_that_topic_offline(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki).start()
    a = admin(broker, pki)
    assert create(a, "healthy", {"retention.ms": "3600000"}) is None
    assert create(a, "damaged", {"segment.bytes": "1048576"}) is None
    sec = clients.security(pki, "MTLS")
    clients.confluent_produce(broker.bootstrap("MTLS"), sec, "damaged", [(None, b"kept", None)])
    broker.stop()

    # A data dir as the earlier release left it (topics in bulwark-topics.json, no metadata log), with a
    # config no broker accepts stored by hand: the migration keeps it, and the topic stays offline.
    shutil.rmtree(broker.log_dir / "__cluster_metadata-0")
    registry = broker.log_dir / "bulwark-topics.json"
    registry.write_text(json.dumps({"version": 1, "topics": [
        {"name": "healthy", "id": "AAAAAAAAAAAAAAAAAAAAAg", "partitions": 1, "replication_factor": 1,
         "configs": {"retention.ms": "3600000"}},
        {"name": "damaged", "id": "AAAAAAAAAAAAAAAAAAAAAw", "partitions": 1, "replication_factor": 1,
         "configs": {"segment.bytes": "0"}}]}))

    broker.start(format_storage=False)
    assert broker.alive()
    log = broker.log_text()
    assert "topic damaged is offline" in log and "segment.bytes" in log
    # Every other topic serves.
    clients.confluent_produce(broker.bootstrap("MTLS"), sec, "healthy", [(None, b"v1", None)])
    assert [v for _, v, _ in clients.confluent_consume(broker.bootstrap("MTLS"), sec, "healthy", 1)] == [b"v1"]
    # The offline topic is listed without a leader and refuses writes with Kafka's storage error.
    a = admin(broker, pki)
    partition = a.list_topics("damaged", timeout=15).topics["damaged"].partitions[0]
    assert partition.leader == -1
    assert raw_produce_error(broker, "damaged") == KAFKA_STORAGE_ERROR
    # Its data is still on disk; deleting the topic is how an operator clears it.
    assert any((broker.log_dir / "damaged-0").glob("*.log"))
    futures = a.delete_topics(["damaged"], request_timeout=15)
    futures["damaged"].result(timeout=20)
    assert "damaged" not in topic_names(a)
    broker.stop()
    broker.start(format_storage=False)
    assert broker.alive() and broker.log_text().count("topic damaged is offline") == 1
    broker.stop()
