"""KIP-630 on a real node: after metadata.log.max.record.bytes.between.snapshots of records the node
snapshots its metadata image (%020d-%010d.checkpoint) and the metadata log behind it goes; a restart
loads the snapshot and replays the rest, and every topic is still there."""
import uuid

import clients
from harness import Broker, Pki


def test_snapshots_bound_the_metadata_log_and_restarts_load_them(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra={"metadata.log.max.record.bytes.between.snapshots": "2000"}).start()
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), **clients.librdkafka_conf(None)})
    names = [f"snap-{i}-{uuid.uuid4().hex[:6]}" for i in range(40)]
    for name, future in admin.create_topics([NewTopic(n, 2, 1) for n in names]).items():
        future.result(timeout=30)
    clients.confluent_produce(broker.bootstrap("PLAINTEXT"), None, names[-1], [(None, b"kept", [])])
    metadata = broker.log_dir / "__cluster_metadata-0"
    checkpoints = sorted(metadata.glob("*.checkpoint"))
    assert checkpoints, list(metadata.iterdir())
    assert "metadata snapshot at offset" in broker.log_text()
    # The log behind the snapshot went: what is left is less than the records written.
    snapshot_end = int(checkpoints[-1].name.split("-")[0])
    assert snapshot_end > 40 and (metadata / "metadata.log").stat().st_size < 2000 * 4
    broker.stop()

    broker.start(format_storage=False)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), **clients.librdkafka_conf(None)})
    listed = admin.list_topics(timeout=15).topics
    assert all(name in listed and len(listed[name].partitions) == 2 for name in names)
    consumed = clients.confluent_consume(broker.bootstrap("PLAINTEXT"), None, names[-1], 1,
                                         partition=next(p for p in (0, 1) if high(broker, names[-1], p)))
    assert [v for _, v, _ in consumed] == [b"kept"]
    broker.stop()


def high(broker, topic, partition):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.bootstrap("PLAINTEXT"), "group.id": "probe"})
    try:
        low, hi = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return hi > low
    finally:
        consumer.close()
