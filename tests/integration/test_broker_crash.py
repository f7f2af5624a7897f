"""A broker killed with kill -9 during a produce loop restarts with every acknowledged record intact
(log.flush.interval.messages=1: each batch is fdatasync'ed before it is acknowledged)."""
import threading
import time
import uuid

import clients
from harness import Broker, Pki


def test_kill_9_loses_no_acknowledged_record(tmp_path):
    from confluent_kafka import Producer
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki, extra={"log.flush.interval.messages": "1"}).start()
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    clients.kafkajs("create", broker.bootstrap("PLAINTEXT"), None, topic=topic, partitions=1)
    sec = clients.security(pki, "MTLS")
    acked = []
    producer = Producer({"bootstrap.servers": broker.bootstrap("MTLS"), "acks": "all", "linger.ms": 1,
                         "message.timeout.ms": 5000, "retries": 0, **clients.librdkafka_conf(sec)})

    def on_delivery(err, msg):
        if err is None:
            acked.append(msg.value())

    killer = threading.Timer(2.0, broker.kill)
    killer.start()
    i = 0
    deadline = time.time() + 4.0
    while time.time() < deadline:
        try:
            producer.produce(topic, value=f"record-{i}".encode(), on_delivery=on_delivery)
            i += 1
        except BufferError:
            pass
        producer.poll(0.001)
    producer.flush(10)
    killer.join()
    assert not broker.alive()
    assert len(acked) > 50, f"only {len(acked)} records were acknowledged before the kill"

    broker.start(format_storage=False)
    got = clients.confluent_consume(broker.bootstrap("MTLS"), sec, topic, len(acked), timeout=60)
    values = [v for _, v, _ in got]
    missing = set(acked) - set(values)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:3]}"
    # Offsets are dense and in produce order: what was acknowledged appears in the order it was sent.
    positions = [values.index(v) for v in acked]
    assert positions == sorted(positions)
    broker.stop()
