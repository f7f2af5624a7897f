"""Transactions with real clients, end to end: confluent-kafka's transactional producer commits and aborts
and a read_committed consumer sees only the committed records while a read_uncommitted one sees all of
them; kafkajs's transactional producer does the same; and a consume-transform-produce loop
(send_offsets_to_transaction) killed with -9 at random points twenty times leaves every input record in
the output exactly once."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest

import clients
from harness import Broker, Pki

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("transactions")
    b = Broker(root, Pki(root), extra={
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0",
    }).start()
    yield b
    b.stop()


def conf(broker):
    return {"bootstrap.servers": broker.bootstrap("MTLS"), **clients.librdkafka_conf(clients.security(broker.pki, "MTLS"))}


def new_topic(broker, partitions=1):
    name = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(conf(broker))
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    return name


def read_all(broker, topic, isolation, expect=None, quiet=4.0):
    """Values in `topic` as a consumer with `isolation` sees them, read until `quiet` seconds bring nothing."""
    c = Consumer({**conf(broker), "group.id": f"reader-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.subscribe([topic])
    values, last = [], time.time()
    try:
        while time.time() - last < quiet and (expect is None or len(values) < expect):
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error() is None:
                    values.append(m.value())
                    last = time.time()
    finally:
        c.close()
    return values


def test_confluent_kafka_commits_and_aborts(broker):
    topic = new_topic(broker)
    p = Producer({**conf(broker), "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(30)
    for name, n, commit in (("first", 10, True), ("aborted", 7, False), ("second", 5, True)):
        p.begin_transaction()
        for i in range(n):
            p.produce(topic, value=f"{name}-{i}".encode())
        p.flush(30)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    committed = read_all(broker, topic, "read_committed")
    assert sorted(committed) == sorted([f"first-{i}".encode() for i in range(10)] +
                                       [f"second-{i}".encode() for i in range(5)])
    everything = read_all(broker, topic, "read_uncommitted", expect=22)
    assert len(everything) == 22 and sum(v.startswith(b"aborted-") for v in everything) == 7


def test_an_open_transaction_holds_read_committed_back(broker):
    topic = new_topic(broker)
    p = Producer({**conf(broker), "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"open-{i}".encode())
    p.flush(30)
    # Not yet committed: visible to read_uncommitted only (the last stable offset holds the rest back).
    assert len(read_all(broker, topic, "read_uncommitted", expect=3)) == 3
    assert read_all(broker, topic, "read_committed", quiet=2.0) == []
    p.commit_transaction(30)
    assert len(read_all(broker, topic, "read_committed", expect=3)) == 3


def test_kafkajs_commits_and_aborts(broker):
    topic = new_topic(broker)
    sec = clients.security(broker.pki, "MTLS")
    args = {"brokers": [broker.bootstrap("MTLS")], "ssl": sec, "topic": topic,
            "transactionalId": f"js-{uuid.uuid4().hex[:6]}", "commit": 6, "abort": 4}
    env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
    r = subprocess.run(["node", os.path.join(HERE, "kafkajs_txn.js"), json.dumps(args)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    committed = read_all(broker, topic, "read_committed")
    assert sorted(committed) == sorted(f"committed-{i}".encode() for i in range(6))
    assert len(read_all(broker, topic, "read_uncommitted", expect=10)) == 10


def test_consume_transform_produce_killed_twenty_times_is_exactly_once(broker):
    records = 2000
    source, sink = new_topic(broker, partitions=2), new_topic(broker, partitions=2)
    p = Producer({**conf(broker), "enable.idempotence": True})
    for i in range(records):
        p.produce(source, key=str(i).encode(), value=f"in-{i}".encode())
    p.flush(30)
    args = {"bootstrap": broker.bootstrap("MTLS"), "conf": clients.librdkafka_conf(clients.security(broker.pki, "MTLS")),
            "input": source, "output": sink, "group": f"eos-{uuid.uuid4().hex[:6]}",
            "transactional_id": f"eos-{uuid.uuid4().hex[:6]}", "idle": 6}
    command = [sys.executable, os.path.join(HERE, "eos_worker.py"), json.dumps(args)]
    rng = random.Random(20261204)
    for run in range(20):
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.5, 1.5))
        if worker.poll() is not None:
            pytest.fail(f"the worker ended before kill {run}: {worker.stderr.read().decode()[-2000:]}")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # The killed workers got somewhere (the kills landed mid-stream, not before any work).
    before_final = len(read_all(broker, sink, "read_committed", quiet=2.0))
    assert 0 < before_final < records, before_final
    final = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    out = read_all(broker, sink, "read_committed", expect=records)
    assert len(out) == records, f"{len(out)} output records for {records} inputs"
    assert sorted(out) == sorted(f"out-in-{i}".encode() for i in range(records))
    # Killed transactions left records behind that read_committed skips: the aborts were real.
    assert len(read_all(broker, sink, "read_uncommitted", expect=records + 1, quiet=2.0)) >= records
    assert broker.alive()
