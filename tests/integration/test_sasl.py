"""SASL on SASL_SSL and SASL_PLAINTEXT listeners: PLAIN users from the listener's JAAS config, SCRAM-SHA-256
and SCRAM-SHA-512 users stored at format time (--add-scram), logged in by kafka-python (SaslHandshake v0
and bare tokens), confluent-kafka, kcat and kafkajs (SaslHandshake v1 + SaslAuthenticate). Wrong passwords
fail cleanly and slowly; nothing but ApiVersions and SASL is served before the login; passwords never
reach the log."""
import base64
import json
import os
import socket
import ssl
import stat
import struct
import subprocess
import time
import uuid

import pytest

import clients
import kafka_wire
from harness import Broker, Pki, have

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SCRAM_USERS = {"carol": "carol-secret", "dave": "d@ve,=pass"}  # dave's password has SCRAM's special characters
CLIENTS = ["kafka-python", "confluent-kafka", "kcat", "kafkajs"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("sasl")
    pki = Pki(root)
    # A short failed-login delay keeps the wrong-password tests quick; it still doubles per failure.
    broker = Broker(root, pki, sasl=True, extra={"connection.failed.authentication.delay.ms": "20"})
    specs = [f'{m}=[name={u},password="{p}"]' for m in MECHANISMS[1:] for u, p in SCRAM_USERS.items()]
    broker.start(add_scram=specs)
    yield broker, pki
    broker.stop()


def user_for(mechanism):
    return ("alice", Broker.PLAIN_USERS["alice"]) if mechanism == "PLAIN" else ("carol", SCRAM_USERS["carol"])


def sasl_sec(pki, mechanism, user, password, tls=True):
    return clients.sasl_security(mechanism, user, password, ca=pki.pem("broker-1")[2] if tls else None)


def produce_and_consume(client, bootstrap, sec, topic, records):
    if client == "kafka-python":
        clients.kafka_python_produce(bootstrap, sec, topic, records)
        return clients.kafka_python_consume(bootstrap, sec, topic, len(records))
    if client == "confluent-kafka":
        clients.confluent_produce(bootstrap, sec, topic, records)
        return clients.confluent_consume(bootstrap, sec, topic, len(records))
    if client == "kcat":
        clients.kcat_produce(bootstrap, sec, topic, records)
        return clients.kcat_consume(bootstrap, sec, topic, len(records))
    clients.kafkajs("produce", bootstrap, sec, topic=topic, records=records)
    out = clients.kafkajs("consume", bootstrap, sec, topic=topic, count=len(records), group=f"g-{topic}")
    dec = lambda v: None if v is None else base64.b64decode(v)
    return [(dec(m["key"]), dec(m["value"]), []) for m in out["records"]]


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_clients_log_in_over_sasl_ssl(cluster, client, mechanism):
    broker, pki = cluster
    if client == "kcat" and not have("kcat"):
        pytest.skip("kcat is not installed")
    user, password = user_for(mechanism)
    topic = f"sasl-{client}-{mechanism}-{uuid.uuid4().hex[:6]}".lower()
    clients.kafkajs("create", broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic=topic)
    records = [(b"k%d" % i, f"{client} {mechanism} {i}".encode(), []) for i in range(3)]
    got = produce_and_consume(client, broker.bootstrap("SASL_SSL"), sasl_sec(pki, mechanism, user, password), topic,
                              records)
    assert [(k, v) for k, v, _ in got] == [(k, v) for k, v, _ in records]
    assert f"authenticated as User:{user} with {mechanism}" in broker.log_text()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_plaintext_listener(cluster, mechanism):
    broker, pki = cluster
    user, password = ("bob", Broker.PLAIN_USERS["bob"]) if mechanism == "PLAIN" else ("dave", SCRAM_USERS["dave"])
    topic = f"sasl-plain-{uuid.uuid4().hex[:6]}"
    clients.kafkajs("create", broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic=topic)
    sec = sasl_sec(pki, mechanism, user, password, tls=False)
    clients.confluent_produce(broker.bootstrap("SASL_PLAINTEXT"), sec, topic, [(None, b"over sasl_plaintext", [])])
    got = clients.kafka_python_consume(broker.bootstrap("SASL_PLAINTEXT"), sec, topic, 1)
    assert got[0][1] == b"over sasl_plaintext"


def wrong_password_fails(client, bootstrap, sec):
    """Runs the client against a wrong password and returns its error text (it must fail, not hang)."""
    topic = "never-written"
    if client == "confluent-kafka":
        from confluent_kafka import Producer
        errors = []
        producer = Producer({"bootstrap.servers": bootstrap, "error_cb": lambda e: errors.append(str(e)),
                             **clients.librdkafka_conf(sec)})
        deadline = time.time() + 30
        while not any("Authentication failed" in e for e in errors) and time.time() < deadline:
            producer.poll(0.5)
        return " ".join(errors)
    if client == "kcat":
        result = subprocess.run(clients.kcat_args(bootstrap, sec) + ["-L", "-m", "10"], capture_output=True, timeout=60)
        assert result.returncode != 0
        return result.stderr.decode()
    if client == "kafkajs":
        result = subprocess.run(["node", str(clients.HERE / "kafkajs_client.js"),
                                 json.dumps({"action": "metadata", "brokers": [bootstrap],
                                                           "ssl": {"ca": sec["ca"]}, "sasl": sec["sasl"],
                                                           "topic": topic})],
                                capture_output=True, timeout=120, cwd=clients.HERE)
        assert result.returncode != 0
        return result.stdout.decode() + result.stderr.decode()
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError) as failure:
        KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=11000, api_version_auto_timeout_ms=10000,
                      **clients.kafka_python_kwargs(sec)).topics()
    return repr(failure.value)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_password_fails_cleanly(cluster, client, mechanism):
    broker, pki = cluster
    if client == "kcat" and not have("kcat"):
        pytest.skip("kcat is not installed")
    user, _ = user_for(mechanism)
    started = time.time()
    error = wrong_password_fails(client, broker.bootstrap("SASL_SSL"), sasl_sec(pki, mechanism, user, "wrong-password"))
    assert time.time() - started < 60
    if client in ("confluent-kafka", "kcat"):
        assert "Authentication failed" in error or "authentication" in error.lower(), error
    if client == "kafkajs":
        assert "SASL" in error or "Authentication" in error, error
    assert broker.alive()
    log = broker.log_text()
    assert f"failed authentication" in log and f"with {mechanism}" in log
    assert "wrong-password" not in log


def raw_connect(broker, pki, listener="SASL_SSL"):
    sock = socket.create_connection(("127.0.0.1", broker.ports[listener]), timeout=10)
    if listener == "SASL_SSL":
        context = ssl.create_default_context(cafile=str(pki.pem("broker-1")[2]))
        sock = context.wrap_socket(sock, server_hostname="localhost")
    return sock


def sasl_handshake(sock, mechanism, version, correlation_id=1):
    sock.sendall(kafka_wire.request(17, version, correlation_id, kafka_wire.string(mechanism)))
    payload = kafka_wire.read_frame(sock)
    (cid, error, count) = struct.unpack(">ihi", payload[:10])
    assert cid == correlation_id
    pos, mechanisms = 10, []
    for _ in range(count):
        (n,) = struct.unpack(">h", payload[pos:pos + 2])
        mechanisms.append(payload[pos + 2:pos + 2 + n].decode())
        pos += 2 + n
    return error, mechanisms


def test_requests_before_login_close_the_connection(cluster):
    broker, pki = cluster
    sock = raw_connect(broker, pki)
    metadata_v1_all = struct.pack(">i", -1)
    sock.sendall(kafka_wire.request(3, 1, 7, metadata_v1_all))
    assert kafka_wire.closed_by_peer(sock)
    assert "before SASL authentication completed" in broker.log_text()


def test_unknown_mechanism_lists_the_enabled_ones(cluster):
    broker, pki = cluster
    sock = raw_connect(broker, pki)
    error, mechanisms = sasl_handshake(sock, "GSSAPI", 1)
    assert error == 33  # UNSUPPORTED_SASL_MECHANISM
    assert mechanisms == MECHANISMS
    sock.close()


def test_plain_v0_bare_tokens_and_failure_delay(tmp_path):
    # A broker of its own: the failed-login delay doubles per recent failure from the same host.
    pki = Pki(tmp_path)
    broker = Broker(tmp_path, pki, sasl=True, extra={"connection.failed.authentication.delay.ms": "50"})
    broker.start()
    try:
        # A good login the way kafka-python does it: SaslHandshake v0, then a bare token, answered by an empty one.
        sock = raw_connect(broker, pki)
        assert sasl_handshake(sock, "PLAIN", 0) == (0, MECHANISMS)
        token = b"\0alice\0" + Broker.PLAIN_USERS["alice"].encode()
        sock.sendall(struct.pack(">i", len(token)) + token)
        assert kafka_wire.read_frame(sock) == b""
        sock.close()
        # A wrong password: the connection closes after the delay, which grows with repeated failures.
        delays = []
        for _ in range(3):
            sock = raw_connect(broker, pki)
            assert sasl_handshake(sock, "PLAIN", 0)[0] == 0
            token = b"\0alice\0not-her-password"
            started = time.time()
            sock.sendall(struct.pack(">i", len(token)) + token)
            assert kafka_wire.closed_by_peer(sock, timeout=15)
            delays.append(time.time() - started)
        assert delays[0] >= 0.045
        assert delays[2] >= 0.19  # 50 ms doubled twice
        assert broker.alive()
    finally:
        broker.stop()


def sasl_authenticate(sock, token, correlation_id, version=1):
    sock.sendall(kafka_wire.request(36, version, correlation_id, struct.pack(">i", len(token)) + token))
    payload = kafka_wire.read_frame(sock)
    (cid, error) = struct.unpack(">ih", payload[:6])
    assert cid == correlation_id
    return error


def test_bad_sasl_input_is_refused_and_the_broker_keeps_serving(cluster):
    broker, pki = cluster
    # SaslAuthenticate before any handshake: ILLEGAL_SASL_STATE.
    sock = raw_connect(broker, pki)
    assert sasl_authenticate(sock, b"\0alice\0x", 2) == 34
    sock.close()
    # Malformed SCRAM and PLAIN tokens: SASL_AUTHENTICATION_FAILED, then the connection is done.
    for mechanism, token in (("SCRAM-SHA-256", b"garbage without structure"), ("SCRAM-SHA-512", b"n,,n=,r="),
                             ("PLAIN", b"no-nul-separators"), ("PLAIN", b"\0\0\0\0")):
        sock = raw_connect(broker, pki)
        assert sasl_handshake(sock, mechanism, 1)[0] == 0
        assert sasl_authenticate(sock, token, 3) == 58
        sock.sendall(kafka_wire.request(18, 0, 4, b""))  # nothing more is served on this connection
        assert kafka_wire.closed_by_peer(sock)
    # A frame larger than Kafka's sasl.server.max.receive.size (512 KiB) before the login.
    sock = raw_connect(broker, pki)
    assert sasl_handshake(sock, "PLAIN", 0)[0] == 0
    big = b"\0" * (600 * 1024)
    try:
        sock.sendall(struct.pack(">i", len(big)) + big)
    except OSError:
        pass  # closed at the 4-byte size already, before the rest was sent (as Kafka does)
    assert kafka_wire.closed_by_peer(sock)
    # Random bytes as a bare v0 token.
    sock = raw_connect(broker, pki)
    assert sasl_handshake(sock, "SCRAM-SHA-256", 0)[0] == 0
    junk = os.urandom(3000)
    sock.sendall(struct.pack(">i", len(junk)) + junk)
    assert kafka_wire.closed_by_peer(sock)
    assert broker.alive()
    clients.kafka_python_produce(broker.bootstrap("SASL_SSL"), sasl_sec(pki, "PLAIN", "alice", "alice-secret"),
                                 f"after-junk-{uuid.uuid4().hex[:6]}", [(None, b"still serving", [])])


def test_kip_684_client_certificates_on_sasl_ssl(tmp_path):
    """listener.name.sasl_ssl.ssl.client.auth=required: a certificate is required too, the principal is SASL's."""
    pki = Pki(tmp_path)
    broker = Broker(tmp_path, pki, sasl=True, extra={"listener.name.sasl_ssl.ssl.client.auth": "required"})
    broker.start()
    try:
        topic = f"kip684-{uuid.uuid4().hex[:6]}"
        clients.kafkajs("create", broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic=topic)
        sasl_only = sasl_sec(pki, "PLAIN", "alice", Broker.PLAIN_USERS["alice"])
        result = subprocess.run(clients.kcat_args(broker.bootstrap("SASL_SSL"), sasl_only) + ["-L", "-m", "5"],
                                capture_output=True, timeout=60)
        assert result.returncode != 0
        with_cert = dict(sasl_only, cert=str(pki.pem("client-1")[0]), key=str(pki.pem("client-1")[1]))
        clients.confluent_produce(broker.bootstrap("SASL_SSL"), with_cert, topic, [(None, b"cert and password", [])])
        log = broker.log_text()
        assert "authenticated as User:alice with PLAIN" in log
        assert "certificate" in log  # the refused handshake is explained
    finally:
        broker.stop()


def test_scram_credentials_are_stored_without_passwords(cluster):
    broker, _ = cluster
    # format --add-scram leaves them for the first controller, which writes them into the metadata log.
    store = broker.log_dir / "bulwark-scram-credentials.json"
    metadata_log = broker.log_dir / "__cluster_metadata-0" / "metadata.log"
    for path in (store, metadata_log):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    text = store.read_text()
    assert "carol" in text and "SCRAM-SHA-512" in text
    records = metadata_log.read_bytes()
    assert b"carol" in records and b"dave" in records
    for password in SCRAM_USERS.values():
        assert password not in text and password.encode() not in records
    log = broker.log_text()
    for password in list(SCRAM_USERS.values()) + list(Broker.PLAIN_USERS.values()):
        assert password not in log


def test_sasl_principal_is_authorized_with_acls(tmp_path):
    """With an authorizer, a SASL user is User:<name>: denied until an ACL names it."""
    pki = Pki(tmp_path)
    broker = Broker(tmp_path, pki, sasl=True, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    })
    broker.start()
    try:
        admin = clients.security(pki, "MTLS")
        topic = f"acl-sasl-{uuid.uuid4().hex[:6]}"
        clients.kafkajs("create", broker.bootstrap("MTLS"), admin, topic=topic)
        sec = sasl_sec(pki, "PLAIN", "alice", Broker.PLAIN_USERS["alice"])
        from confluent_kafka import KafkaError, Producer
        errors = []
        producer = Producer({"bootstrap.servers": broker.bootstrap("SASL_SSL"), "message.timeout.ms": 10000,
                             **clients.librdkafka_conf(sec)})
        producer.produce(topic, b"denied", on_delivery=lambda err, msg: errors.append(err))
        producer.flush(30)
        assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors
        assert "Principal = User:alice is Denied operation = DESCRIBE from host = 127.0.0.1" in broker.log_text()
        from kafka.admin import (ACL, ACLOperation, ACLPermissionType, KafkaAdminClient, ResourcePattern,
                                 ResourceType)
        admin_client = KafkaAdminClient(bootstrap_servers=broker.bootstrap("MTLS"), **clients.kafka_python_kwargs(admin))
        acl = ACL(principal="User:alice", host="*", operation=ACLOperation.WRITE,
                  permission_type=ACLPermissionType.ALLOW, resource_pattern=ResourcePattern(ResourceType.TOPIC, topic))
        result = admin_client.create_acls([acl])
        assert not result["failed"], result
        admin_client.close()
        clients.kafka_python_produce(broker.bootstrap("SASL_SSL"), sec, topic, [(None, b"allowed", [])])
    finally:
        broker.stop()
