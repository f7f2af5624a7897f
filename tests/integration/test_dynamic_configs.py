"""Dynamic configs, as `kafka-configs --alter` sends them: a broker's listener keystore replaced through
AlterConfigs (kafka-python, confluent-kafka) and IncrementalAlterConfigs (the v0 request kafka-configs
sends, built by hand: Debian's clients predate it), with Kafka's rules for what may change and how;
DescribeConfigs shows the values in force with passwords hidden; the change survives a restart. Topic
configs change the same way."""
import socket
import struct

import kafka_wire
from harness import BIN, PASSWORD, Broker, Pki, run
from test_cert_reload import serial_of, served_serial

SOURCE_DYNAMIC_BROKER = 2
SOURCE_TOPIC = 1


def export_renewed(pki, tmp_path, name="renewed"):
    """A renewed broker-1 keystore in a new place (the old files stay as they are)."""
    run(BIN, "pki", "renew", "broker-1", "--dir", pki.dir)
    out = tmp_path / name
    run(BIN, "pki", "export", "broker-1", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir, "--out", out)
    return out / "broker-1.keystore.p12", serial_of(pki.dir / "issued/broker-1/cert.pem")


def incremental_alter(port, resource_type, name, configs, validate_only=False):
    """IncrementalAlterConfigs v0; configs = [(key, op, value)]; returns [(error, message)]."""
    body = struct.pack(">i", 1) + struct.pack(">b", resource_type) + kafka_wire.string(name)
    body += struct.pack(">i", len(configs))
    for key, op, value in configs:
        body += kafka_wire.string(key) + struct.pack(">b", op) + kafka_wire.string(value)
    body += struct.pack(">?", validate_only)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(kafka_wire.request(44, 0, 7, body))
        answer = kafka_wire.read_frame(sock, timeout=30)
    pos = 4 + 4  # correlation id, throttle time
    (count,) = struct.unpack_from(">i", answer, pos); pos += 4
    out = []
    for _ in range(count):
        error, length = struct.unpack_from(">hh", answer, pos); pos += 4
        message = answer[pos:pos + length].decode() if length >= 0 else None
        pos += max(length, 0)
        pos += 1  # resource type
        (name_len,) = struct.unpack_from(">h", answer, pos); pos += 2 + name_len
        out.append((error, message))
    return out


def describe_broker(admin, node_id="1"):
    from kafka.admin import ConfigResource, ConfigResourceType
    response = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, node_id)])[0]
    (_, _, _, _, entries), = response.resources
    # kafka-python's DescribeConfigs v1 answers (name, value, read_only, source, is_sensitive, synonyms)
    return {entry[0]: entry[1:5] for entry in entries}


def kafka_python_admin(broker):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap("PLAINTEXT"), request_timeout_ms=30000)


def test_alter_configs_swaps_a_listener_keystore_and_the_change_survives_a_restart(tmp_path):
    from kafka.admin import ConfigResource, ConfigResourceType
    pki = Pki(tmp_path, clients=())
    broker = Broker(tmp_path, pki).start()
    port = broker.ports["SSL"]
    try:
        before = served_serial(port)
        keystore, after = export_renewed(pki, tmp_path)
        admin = kafka_python_admin(broker)
        change = {"listener.name.ssl.ssl.keystore.location": str(keystore),
                  "listener.name.ssl.ssl.keystore.password": PASSWORD}
        response = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", configs=change)])
        assert [r[0] for r in response.resources] == [0], response.resources
        assert served_serial(port) == after, "answered once the listener serves the new keystore"
        assert served_serial(broker.ports["MTLS"]) == before, "only the listener named in the key changes"
        assert f"listener SSL: TLS material reloaded (dynamic config): certificate serial {before}" in broker.log_text()

        configs = describe_broker(admin)
        value, read_only, source, sensitive = configs["listener.name.ssl.ssl.keystore.location"]
        assert value == str(keystore) and not read_only and not sensitive and source == SOURCE_DYNAMIC_BROKER
        value, _, source, sensitive = configs["listener.name.ssl.ssl.keystore.password"]
        assert value is None and sensitive and source == SOURCE_DYNAMIC_BROKER, "passwords are hidden as Kafka hides them"
        _, read_only, source, _ = configs["ssl.keystore.location"]
        assert not read_only and source == 4, "STATIC_BROKER_CONFIG, and reconfigurable per listener"
        _, read_only, source, _ = configs["log.dirs"]
        assert read_only and source == 4
        assert PASSWORD not in broker.log_text()

        # A keystore that does not load is refused before it is stored; the one in force stays.
        bad = {"listener.name.ssl.ssl.keystore.location": str(tmp_path / "missing.p12"),
               "listener.name.ssl.ssl.keystore.password": PASSWORD}
        response = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", configs=bad)])
        (error, message, _, _), = response.resources
        assert error == 40 and "listener SSL" in message and "missing.p12" in message, response.resources
        assert served_serial(port) == after
        admin.close()

        broker.stop()
        broker.start(format_storage=False)
        assert served_serial(port) == after, "a dynamic config is kept in the metadata log"
    finally:
        broker.stop()


def test_incremental_alter_configs_follows_kafkas_rules(tmp_path):
    pki = Pki(tmp_path, clients=())
    broker = Broker(tmp_path, pki).start()
    port, plain = broker.ports["SSL"], broker.ports["PLAINTEXT"]
    try:
        before = served_serial(port)
        keystore, after = export_renewed(pki, tmp_path)
        key = "listener.name.ssl.ssl.keystore.location"
        assert incremental_alter(plain, 4, "1", [(key, 0, str(keystore))], validate_only=True) == [(0, None)]
        assert served_serial(port) == before, "validate_only changes nothing"
        assert incremental_alter(plain, 4, "1", [(key, 0, str(keystore))]) == [(0, None)]
        assert served_serial(port) == after
        # DELETE falls back to server.properties.
        assert incremental_alter(plain, 4, "1", [(key, 1, None)]) == [(0, None)]
        assert served_serial(port) == before

        refusals = [
            ("1", "ssl.keystore.location", 40, "only per-listener using the listener prefix"),
            ("", key, 40, "broker id must be specified"),
            ("1", "log.retention.ms", 40, "Cannot update these configs dynamically"),
            ("7", key, 42, "Unexpected broker id, expected 1"),
        ]
        for name, config_key, error, words in refusals:
            (got, message), = incremental_alter(plain, 4, name, [(config_key, 0, str(keystore))])
            assert got == error and words in message, (name, config_key, got, message)
        (got, message), = incremental_alter(plain, 4, "1", [(key, 9, "x")])
        assert got == 42 and "Unknown config operation" in message
        assert served_serial(port) == before
    finally:
        broker.stop()


def test_confluent_alter_configs_changes_a_topic_config(tmp_path):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    pki = Pki(tmp_path, clients=())
    broker = Broker(tmp_path, pki).start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
        admin.create_topics([NewTopic("configured", 1, 1)])["configured"].result(30)
        resource = ConfigResource("topic", "configured", set_config={"retention.ms": "3600000"})
        admin.alter_configs([resource])[resource].result(30)
        described = admin.describe_configs([ConfigResource("topic", "configured")])
        configs = list(described.values())[0].result(30)
        assert configs["retention.ms"].value == "3600000"
        assert configs["retention.ms"].source == SOURCE_TOPIC
        bad = ConfigResource("topic", "configured", set_config={"retention.ms": "soon"})
        try:
            admin.alter_configs([bad])[bad].result(30)
            raise AssertionError("an invalid value must be refused")
        except Exception as e:  # confluent_kafka.KafkaException
            assert "retention.ms" in str(e)
    finally:
        broker.stop()
