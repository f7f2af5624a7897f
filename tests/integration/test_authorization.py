"""What each API checks with an authorizer, seen by real clients, with Kafka's error codes: CreateTopics,
DeleteTopics, CreatePartitions, DescribeConfigs (topic and broker), Metadata listing only DESCRIBE-able
topics, groups (GROUP_AUTHORIZATION_FAILED, ListGroups filtered), idempotent producers (InitProducerId),
PREFIXED ACLs, DENY over ALLOW, host-specific ACLs and User:ANONYMOUS on PLAINTEXT. admin-1 is the only
super user; ACLs are granted with `bulwark acl` over mTLS."""
import socket
import ssl
import struct
import time
import uuid

import pytest

import clients
import kafka_wire
from harness import BIN, Broker, Pki, run

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("authz")
    pki = Pki(root, clients=("admin-1", "client-1", "client-2"))
    broker = Broker(root, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        "auto.create.topics.enable": "false",
    })
    broker.start()
    yield broker, pki
    broker.stop()


def conf(broker, pki, user):
    return {"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(clients.security(pki, "MTLS", user))}


def acl(broker, pki, *args):
    cert, key, ca = pki.pem("admin-1")
    run(BIN, "acl", *args, "--bootstrap-server", broker.bootstrap("MTLS"), "--ca", ca, "--cert", cert, "--key", key)


def error_code(future):
    with pytest.raises(KafkaException) as failure:
        future.result(timeout=30)
    return failure.value.args[0].code()


def new_topic(broker, pki, partitions=1):
    topic = f"authz-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(conf(broker, pki, "admin-1"))
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
    return topic


def produce_error(config, topic, idempotent=False):
    errors = []
    producer = Producer({**config, "message.timeout.ms": 10000, "enable.idempotence": idempotent})
    try:
        producer.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
        producer.flush(30)
    except KafkaException as fatal:  # e.g. an idempotent producer refused its producer id
        return fatal.args[0]
    return errors[0] if errors else "no delivery report"


def test_admin_apis_answer_with_authorization_errors(cluster):
    broker, pki = cluster
    client = AdminClient(conf(broker, pki, "client-1"))
    fresh = f"authz-{uuid.uuid4().hex[:8]}"
    assert error_code(client.create_topics([NewTopic(fresh, 1, 1)])[fresh]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    topic = new_topic(broker, pki)
    assert error_code(client.delete_topics([topic])[topic]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert error_code(client.create_partitions([NewPartitions(topic, 3)])[topic]) == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    resource = ConfigResource("topic", topic)
    assert error_code(client.describe_configs([resource])[resource]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    broker_resource = ConfigResource("broker", "1")
    assert error_code(client.describe_configs([broker_resource])[broker_resource]) == \
        KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # CREATE on the cluster allows creating any topic; ALTER on a topic allows adding partitions.
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Create", "--cluster")
    client.create_topics([NewTopic(fresh, 1, 1)])[fresh].result(timeout=30)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Alter", "--topic", topic)
    client.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
    assert len(AdminClient(conf(broker, pki, "admin-1")).list_topics(topic, timeout=30).topics[topic].partitions) == 3


def test_metadata_lists_only_what_the_principal_may_describe(cluster):
    broker, pki = cluster
    hidden, shown = new_topic(broker, pki), new_topic(broker, pki)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Describe", "--topic", shown)
    listed = AdminClient(conf(broker, pki, "client-1")).list_topics(timeout=30).topics
    assert shown in listed and hidden not in listed
    assert hidden in AdminClient(conf(broker, pki, "admin-1")).list_topics(timeout=30).topics


def test_prefixed_acls_deny_over_allow_and_hosts(cluster):
    broker, pki = cluster
    prefix = f"team-{uuid.uuid4().hex[:6]}-"
    outside = new_topic(broker, pki)
    admin = AdminClient(conf(broker, pki, "admin-1"))
    inside = prefix + "orders"
    admin.create_topics([NewTopic(inside, 1, 1)])[inside].result(timeout=30)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Write", "--topic", prefix,
        "--resource-pattern-type", "prefixed")
    config = conf(broker, pki, "client-1")
    assert produce_error(config, inside) is None
    assert produce_error(config, outside).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # A DENY wins over the prefixed ALLOW.
    acl(broker, pki, "add", "--deny-principal", "User:client-1", "--operation", "Write", "--topic", inside)
    assert produce_error(config, inside).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # An ALLOW for another host does not apply to 127.0.0.1.
    elsewhere = new_topic(broker, pki)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--allow-host", "10.0.0.1", "--operation", "Write",
        "--topic", elsewhere)
    assert produce_error(config, elsewhere).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--allow-host", "127.0.0.1", "--operation", "Write",
        "--topic", elsewhere)
    assert produce_error(config, elsewhere) is None


def test_idempotent_producer_needs_write_somewhere(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    # client-2 may only describe the topic: InitProducerId is refused (IDEMPOTENT_WRITE on the cluster, or
    # WRITE on some topic, is what Kafka asks for), so nothing is written.
    acl(broker, pki, "add", "--allow-principal", "User:client-2", "--operation", "Describe", "--topic", topic)
    denied = produce_error(conf(broker, pki, "client-2"), topic, idempotent=True)
    assert denied.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, denied
    assert "Principal = User:client-2 is Denied operation = IDEMPOTENT_WRITE" in broker.log_text()
    acl(broker, pki, "add", "--allow-principal", "User:client-2", "--producer", "--topic", topic)
    assert produce_error(conf(broker, pki, "client-2"), topic, idempotent=True) is None


def test_groups_need_read_on_the_group(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    group = f"g-{topic}"
    producer = Producer(conf(broker, pki, "admin-1"))
    producer.produce(topic, b"for the group")
    producer.flush(30)
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Read", "--topic", topic)

    def consume():
        consumer = Consumer({**conf(broker, pki, "client-1"), "group.id": group, "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        deadline = time.time() + 30
        try:
            while time.time() < deadline:
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                return msg.error().code() if msg.error() else msg.value()
        finally:
            consumer.close()

    assert consume() == KafkaError.GROUP_AUTHORIZATION_FAILED
    acl(broker, pki, "add", "--allow-principal", "User:client-1", "--operation", "Read", "--group", group)
    assert consume() == b"for the group"
    # ListGroups shows client-1 only the groups it may describe (READ implies DESCRIBE).
    admin_groups = {g.id for g in AdminClient(conf(broker, pki, "admin-1")).list_groups(timeout=30)}
    client_groups = {g.id for g in AdminClient(conf(broker, pki, "client-1")).list_groups(timeout=30)}
    assert group in admin_groups and group in client_groups
    assert client_groups <= admin_groups
    # DescribeGroups v3 authorized operations (a bit per operation code): READ implies DESCRIBE, not DELETE.
    # Hand-built: kafka-python 2.0.2 decodes a v3 answer with the v2 schema and drops the field.
    read, delete, describe = 1 << 3, 1 << 6, 1 << 8
    assert describe_group_operations(broker, pki, "client-1", group) == read | describe
    assert describe_group_operations(broker, pki, "admin-1", group) == read | delete | describe


def describe_group_operations(broker, pki, user, group):
    """DescribeGroups v3 with include_authorized_operations for one group without members."""
    cert, key, ca = pki.pem(user)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    with context.wrap_socket(socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=10),
                             server_hostname="localhost") as sock:
        body = struct.pack(">i", 1) + kafka_wire.string(group) + b"\x01"
        sock.sendall(kafka_wire.request(15, 3, 9, body))
        payload = kafka_wire.read_frame(sock)
    pos = 4 + 4 + 4  # correlation id, throttle time, one group
    (error,) = struct.unpack_from(">h", payload, pos)
    assert error == 0
    pos += 2
    for _ in range(4):  # group id, state, protocol type, protocol data
        (n,) = struct.unpack_from(">h", payload, pos)
        pos += 2 + n
    (members,) = struct.unpack_from(">i", payload, pos)
    assert members == 0
    (operations,) = struct.unpack_from(">i", payload, pos + 4)
    return operations


def test_plaintext_clients_are_anonymous(cluster):
    broker, pki = cluster
    topic = new_topic(broker, pki)
    anonymous = {"bootstrap.servers": broker.bootstrap("PLAINTEXT")}
    assert produce_error(anonymous, topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert "Principal = User:ANONYMOUS is Denied" in broker.log_text()
    acl(broker, pki, "add", "--allow-principal", "User:ANONYMOUS", "--operation", "Write", "--topic", topic)
    assert produce_error(anonymous, topic) is None
