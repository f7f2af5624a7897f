"""Real Kafka clients against a real `bulwark broker` over PLAINTEXT, SSL and mTLS, with every
compression codec, headers, null keys and values, and records near message.max.bytes."""
import base64
import uuid

import pytest

import clients
from harness import Broker, Pki, have

LISTENERS = ["PLAINTEXT", "SSL", "MTLS"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
BIG = 900_000  # below every client's default limit and the broker's message.max.bytes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("broker")
    pki = Pki(root)
    broker = Broker(root, pki).start()
    yield broker
    broker.stop()


def sample_records(tag, big=False):
    records = [(f"k{i}".encode(), f"{tag}-v{i}".encode(), [("h", f"x{i}".encode())]) for i in range(20)]
    records.append((None, f"{tag}-null-key".encode(), []))
    records.append((b"tombstone", None, []))
    records.append((b"empty", b"", [("a", b"1"), ("b", b"2")]))
    if big:
        records.append((b"big", b"B" * BIG, []))
    return records


def new_topic(broker, name=None):
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    clients.kafkajs("create", broker.bootstrap("PLAINTEXT"), None, topic=name, partitions=1)
    return name


def normalize(records):
    return [(k, v if v is not None else None, sorted((hk, bytes(hv) if hv is not None else None) for hk, hv in h))
            for k, v, h in records]


PRODUCERS = {
    "confluent-kafka": clients.confluent_produce,
    "kafka-python": clients.kafka_python_produce,
    "kcat": clients.kcat_produce,
}
CONSUMERS = {
    "confluent-kafka": clients.confluent_consume,
    "kafka-python": clients.kafka_python_consume,
    "kcat": clients.kcat_consume,
}


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize("client", list(PRODUCERS))
@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_round_trip(cluster, client, listener, codec):
    if client == "kcat" and not have("kcat"):
        pytest.skip("kcat is not installed")
    topic = new_topic(cluster)
    sec = clients.security(cluster.pki, listener)
    records = sample_records(f"{client}-{codec}", big=(codec in ("none", "zstd") and client != "kcat"))
    if client == "kcat":
        # kcat reads text lines: no empty-but-not-null value distinction on stdin.
        records = [r for r in records if r[1] != b""]
    PRODUCERS[client](cluster.bootstrap(listener), sec, topic, records, compression=codec)
    got = CONSUMERS[client](cluster.bootstrap(listener), sec, topic, len(records))
    assert normalize(got) == normalize(records)
    assert cluster.alive()


@pytest.mark.parametrize("listener", LISTENERS)
def test_kafkajs_produces_and_others_read_it(cluster, listener):
    topic = new_topic(cluster)
    sec = clients.security(cluster.pki, listener)
    records = sample_records("kafkajs")
    out = clients.kafkajs("produce", cluster.bootstrap(listener), sec, topic=topic, records=records,
                          compression="gzip")
    assert out["result"][0]["errorCode"] == 0
    got = clients.kafka_python_consume(cluster.bootstrap(listener), sec, topic, len(records))
    assert normalize(got) == normalize(records)
    offsets = clients.kafkajs("offsets", cluster.bootstrap(listener), sec, topic=topic)["offsets"]
    assert offsets[0]["high"] == str(len(records)) and offsets[0]["low"] == "0"


@pytest.mark.parametrize("listener", LISTENERS)
def test_kafkajs_consumes_what_it_produced(cluster, listener):
    topic = new_topic(cluster)
    sec = clients.security(cluster.pki, listener)
    records = sample_records("kafkajs-rt")
    clients.kafkajs("produce", cluster.bootstrap(listener), sec, topic=topic, records=records)
    out = clients.kafkajs("consume", cluster.bootstrap(listener), sec, topic=topic, count=len(records),
                          group=f"g-{uuid.uuid4().hex[:8]}")
    b64 = lambda v: None if v is None else base64.b64decode(v)
    got = [(b64(r["key"]), b64(r["value"]), [(k, b64(v)) for k, v in r["headers"].items()]) for r in out["records"]]
    assert normalize(got) == normalize(records)


@pytest.mark.parametrize("listener", LISTENERS)
def test_clients_mix_across_listeners(cluster, listener):
    """What one client writes on one listener, another reads on another."""
    topic = new_topic(cluster)
    records = sample_records("mix")
    clients.confluent_produce(cluster.bootstrap(listener), clients.security(cluster.pki, listener), topic, records,
                              compression="lz4", idempotent=True)
    got = clients.kcat_consume(cluster.bootstrap("MTLS"), clients.security(cluster.pki, "MTLS"), topic,
                               len(records))
    assert [r[0] for r in got] == [r[0] for r in records]


def test_kcat_metadata_matches_what_was_created(cluster):
    name = f"meta-{uuid.uuid4().hex[:8]}"
    clients.kafkajs("create", cluster.bootstrap("PLAINTEXT"), None, topic=name, partitions=4)
    meta = clients.kcat_metadata(cluster.bootstrap("MTLS"), clients.security(cluster.pki, "MTLS"))
    topics = {t["topic"]: t for t in meta["topics"]}
    assert name in topics
    assert sorted(p["partition"] for p in topics[name]["partitions"]) == [0, 1, 2, 3]
    assert all(p["leader"] == cluster.node_id for p in topics[name]["partitions"])
    assert [b["name"] for b in meta["brokers"]] == [f"127.0.0.1:{cluster.ports['MTLS']}"]


def test_mtls_listener_refuses_a_client_without_certificate(cluster):
    from confluent_kafka.admin import AdminClient
    sec = clients.security(cluster.pki, "SSL")  # CA only: no client certificate
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap("MTLS"), **clients.librdkafka_conf(sec)})
    with pytest.raises(Exception):
        admin.list_topics(timeout=5)
    assert cluster.alive()


def test_kafka_python_admin_creates_and_deletes_topics(cluster):
    from kafka.admin import KafkaAdminClient, NewTopic, NewPartitions
    from kafka.errors import TopicAlreadyExistsError
    sec = clients.security(cluster.pki, "MTLS")
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap("MTLS"), **clients.kafka_python_kwargs(sec))
    name = f"admin-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    admin.create_partitions({name: NewPartitions(total_count=3)})
    from kafka.admin import ConfigResource, ConfigResourceType
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    described = {c[0]: c[1] for c in configs[0].resources[0][4]}
    assert described["retention.ms"] == "3600000"
    admin.delete_topics([name])
    meta = clients.kcat_metadata(cluster.bootstrap("PLAINTEXT"), None)
    assert name not in {t["topic"] for t in meta["topics"]}
    admin.close()


def test_internal_offsets_topic_name_is_reserved(cluster):
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import InvalidTopicError
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap("PLAINTEXT"))
    with pytest.raises(InvalidTopicError):
        admin.create_topics([NewTopic("__consumer_offsets", num_partitions=1, replication_factor=1)])
    admin.close()
    # The refusal created nothing: the topic exists only as the group coordinators create it (once any
    # group was used), with offsets.topic.num.partitions (50) partitions, not the one asked for.
    topics = {t["topic"]: t for t in clients.kcat_metadata(cluster.bootstrap("PLAINTEXT"), None)["topics"]}
    assert "__consumer_offsets" not in topics or len(topics["__consumer_offsets"]["partitions"]) == 50
