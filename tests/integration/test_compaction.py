"""Log compaction with a real broker and real clients: a compacted topic reads back as the last value
per key, tombstones gone after delete.retention.ms; kill -9 during cleaning loses nothing; and a
compacted __consumer_offsets loads quickly with the right committed offsets."""
import re
import time
import uuid

import clients
from harness import Broker, Pki, wait_for

CLEANER = {"log.cleaner.backoff.ms": "200", "offsets.topic.num.partitions": "1",
           "offsets.topic.replication.factor": "1", "offsets.topic.segment.bytes": "65536"}
TOPIC_CONFIGS = {"cleanup.policy": "compact", "segment.bytes": "16384", "segment.ms": "300",
                 "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"}


def conf(broker, pki):
    return {"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(clients.security(pki, "MTLS"))}


def create_topic(broker, pki, name):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(conf(broker, pki))
    admin.create_topics([NewTopic(name, 1, 1, config=TOPIC_CONFIGS)], request_timeout=15)[name].result(timeout=20)


def produce(broker, pki, topic, items):
    """items: (key, value or None for a tombstone), acknowledged by the broker (acks=all)."""
    from confluent_kafka import Producer
    p = Producer({**conf(broker, pki), "acks": "all", "linger.ms": 5})
    failures = []
    for key, value in items:
        p.produce(topic, key=key, value=value, on_delivery=lambda err, _m: err and failures.append(err))
        p.poll(0)
    assert p.flush(30) == 0
    assert not failures, failures


def read_all(broker, pki, topic):
    """Every record of partition 0 as (offset, key, value), from the beginning to the end."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({**conf(broker, pki), "group.id": "reader-" + uuid.uuid4().hex[:6], "enable.auto.commit": False})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline = [], time.time() + 30
    while (not out or out[-1][0] < high - 1) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


def latest(items):
    last = {}
    for key, value in items:
        last[key] = value
    return last


def rounds(keys, count, start=0, size=200):
    return [(b"k%03d" % k, (b"r%05d-" % r) + b"x" * size) for r in range(start, start + count) for k in range(keys)]


def cleaned_lines(broker, name, since=0):
    return re.findall(r"cleaned log %s-0: (\d+) records -> (\d+)" % re.escape(name), broker.log_text()[since:])


def test_compacted_topic_keeps_the_last_value_and_drops_tombstones(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra=CLEANER).start()
    try:
        create_topic(broker, pki, "table")
        items = rounds(30, 30)
        items += [(b"k%03d" % k, None) for k in range(10)]  # tombstones for k000..k009
        produce(broker, pki, "table", items)
        time.sleep(0.5)  # segment.ms: the next append rolls the tombstones into a sealed segment
        produce(broker, pki, "table", [(b"filler", b"x")])
        wait_for("a cleaning", lambda: cleaned_lines(broker, "table"), timeout=30)
        expected = {k: v for k, v in latest(items + [(b"filler", b"x")]).items() if v is not None}

        def compacted():
            records = read_all(broker, pki, "table")
            return records if {k for _, k, v in records if v is None} == set() else None
        # delete.retention.ms=2000: the tombstones go on a later cleaning.
        records = wait_for("tombstones removed", compacted, timeout=30)
        assert {k: v for _, k, v in records} == expected
        assert len(records) < len(items) / 4, len(records)
        offsets = [o for o, _, _ in records]
        assert offsets == sorted(offsets) and offsets[-1] == len(items)  # offsets kept, gaps allowed
    finally:
        broker.stop()


def test_kill_during_cleaning_loses_nothing(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra=CLEANER).start()
    try:
        create_topic(broker, pki, "state")
        written = []
        for attempt in range(3):
            since = len(broker.log_text())
            batch = rounds(40, 15, start=attempt * 15)
            produce(broker, pki, "state", batch)
            written += batch
            time.sleep(0.4)
            produce(broker, pki, "state", [(b"tick", b"%d" % attempt)])
            written.append((b"tick", b"%d" % attempt))
            wait_for("cleaning to start", lambda: "cleaning log state-0" in broker.log_text()[since:], timeout=30)
            broker.kill()
            broker.start(format_storage=False)
            got = {k: v for _, k, v in read_all(broker, pki, "state")}
            assert got == latest(written), attempt
    finally:
        broker.stop()


def test_large_consumer_offsets_loads_compacted(tmp_path):
    from confluent_kafka import Consumer, TopicPartition
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra=CLEANER).start()
    try:
        create_topic(broker, pki, "events")
        c = Consumer({**conf(broker, pki), "group.id": "big", "enable.auto.commit": False})
        commits = 3000
        for i in range(1, commits + 1):
            c.commit(offsets=[TopicPartition("events", 0, i)], asynchronous=False)
        c.close()
        wait_for("__consumer_offsets cleaned", lambda: cleaned_lines(broker, "__consumer_offsets"), timeout=40)
        broker.stop()
        since = len(broker.log_text())
        started = time.time()
        broker.start(format_storage=False)
        c = Consumer({**conf(broker, pki), "group.id": "big", "enable.auto.commit": False})
        committed = wait_for("committed offsets", lambda: [
            tp for tp in c.committed([TopicPartition("events", 0)], timeout=10) if tp.offset >= 0], timeout=30)
        c.close()
        assert committed[0].offset == commits
        loaded = re.findall(r"loaded \d+ groups from (\d+) stored records", broker.log_text()[since:])
        assert loaded and int(loaded[-1]) < commits / 2, loaded
        assert time.time() - started < 30
    finally:
        broker.stop()
