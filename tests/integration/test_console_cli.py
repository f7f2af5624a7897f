"""`bulwark produce` and `bulwark consume` (kafka-console-producer.sh / kafka-console-consumer.sh)
against one real `bulwark broker` over mutual TLS with StandardAuthorizer, cross-checked with
confluent-kafka (librdkafka): keys, values and headers as the line reader parses them, keyed records on
the partition Kafka's murmur2 partitioner picks, every compression codec, a 100k-line pipe, consumer
groups (committed offsets, a second run continuing after them, a group shared with librdkafka, SIGTERM
leaving cleanly) and the refusals in words."""
import queue
import signal
import subprocess
import threading
import time
import uuid

import pytest

import clients
from harness import BIN, Broker, Pki, run

ADMIN = "admin-1"  # super user
USER = "client-1"  # no ACLs of its own
GROUP_PROPS = {
    "group.initial.rebalance.delay.ms": "100",
    "group.min.session.timeout.ms": "1000",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin-1;User:broker-1",
    "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    pki = Pki(root, clients=(ADMIN, USER))
    broker = Broker(root, pki, extra=GROUP_PROPS).start()
    yield pki, broker
    broker.stop()


def flags(pki, name=ADMIN):
    cert, key, ca = pki.pem(name)
    return ["--ca", ca, "--cert", cert, "--key", key]


def bootstrap(broker):
    return broker.bootstrap("MTLS")


def conf(env, name=ADMIN, **extra):
    pki, broker = env
    c = {"bootstrap.servers": bootstrap(broker), **clients.librdkafka_conf(clients.security(pki, "MTLS", name))}
    c.update(extra)
    return c


def new_topic(env, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    name = f"console-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(conf(env))  # alive until the result is in
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def produce(env, topic, lines, *args, name=ADMIN, timeout=60):
    pki, broker = env
    return subprocess.run([BIN, "produce", "--bootstrap-server", bootstrap(broker), *flags(pki, name),
                           "--topic", topic, *map(str, args)],
                          input="".join(line + "\n" for line in lines), capture_output=True, text=True,
                          timeout=timeout)


def consume(env, topic, *args, name=ADMIN, timeout=60):
    pki, broker = env
    return run(BIN, "consume", "--bootstrap-server", bootstrap(broker), *flags(pki, name), "--topic", topic, *args,
               check=False, timeout=timeout)


def read_all(env, topic, partitions, count, timeout=30):
    """Every record of the topic, read with confluent-kafka: (partition, offset, key, value, headers)."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    consumer = Consumer(conf(env, **{"group.id": "unused", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        out.append((msg.partition(), msg.offset(), msg.key(), msg.value(), list(msg.headers() or [])))
    consumer.close()
    return out


def librdkafka_partitions(env, partitions, keys):
    """The partition librdkafka's murmur2_random partitioner (Java's default) picks for each key."""
    from confluent_kafka import Producer
    topic = new_topic(env, partitions)
    picked = {}
    producer = Producer(conf(env, partitioner="murmur2_random"))
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"x",
                         on_delivery=lambda err, msg: picked.__setitem__(msg.key().decode(), msg.partition()))
    assert producer.flush(30) == 0
    return picked


def committed(env, group, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer(conf(env, **{"group.id": group, "enable.auto.commit": False}))
    result = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
    consumer.close()
    return {tp.partition: tp.offset for tp in result}


def readline(proc, timeout):
    """The next line the process prints, or "" when none comes within timeout s."""
    lines = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def test_keys_and_headers_land_where_kafkas_partitioner_puts_them(env):
    topic = new_topic(env, 6)
    keys = [f"user-{i}" for i in range(60)]
    lines = [f"trace:{i},kind:k{i % 3}\t{k}\tvalue {i}\twith tab" for i, k in enumerate(keys)]
    result = produce(env, topic, lines, "--property", "parse.key=true", "--property", "parse.headers=true")
    assert result.returncode == 0, result.stderr
    got = read_all(env, topic, 6, len(lines))
    assert len(got) == len(lines)
    expected = librdkafka_partitions(env, 6, keys)
    assert len(set(expected.values())) > 1
    for partition, _, key, value, headers in got:
        i = keys.index(key.decode())
        assert value == f"value {i}\twith tab".encode()
        assert headers == [("trace", str(i).encode()), ("kind", f"k{i % 3}".encode())]
        assert partition == expected[key.decode()], key


def test_consume_prints_what_librdkafka_produced(env):
    topic = new_topic(env, 3)
    records = [(f"k{i}".encode(), f"v{i}".encode(), [("h", b"x")]) for i in range(50)]
    clients.confluent_produce(bootstrap(env[1]), clients.security(env[0], "MTLS"), topic, records)
    result = consume(env, topic, "--from-beginning", "--max-messages", "50", "--property", "print.key=true",
                     "--timeout-ms", "20000")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(f"k{i}\tv{i}" for i in range(50))
    assert result.stderr.strip().endswith("Processed a total of 50 messages")

    every = consume(env, topic, "--partition", "0", "--offset", "1", "--max-messages", "2", "--property",
                    "print.partition=true", "print.offset=true", "print.headers=true", "print.timestamp=true",
                    "--timeout-ms", "10000")
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert len(lines) == 2
    for n, line in enumerate(lines):
        stamp, partition, offset, headers, value = line.split("\t")
        assert stamp.startswith("CreateTime:") and int(stamp.split(":")[1]) > 1600000000000
        assert (partition, offset, headers) == ("Partition:0", f"Offset:{n + 1}", "h:x")
        assert value.startswith("v")


def test_every_codec_round_trips(env):
    topic = new_topic(env, 1)
    sent = []
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        lines = [f"{codec}-{i}-" + "abc" * 20 for i in range(20)]
        result = produce(env, topic, lines, "--compression-codec", codec)
        assert result.returncode == 0, (codec, result.stderr)
        sent += lines
    got = consume(env, topic, "--from-beginning", "--max-messages", str(len(sent)), "--timeout-ms", "20000")
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == sent
    assert [v.decode() for *_, v, _ in read_all(env, topic, 1, len(sent))] == sent


def test_a_hundred_thousand_lines_are_quick(env):
    topic = new_topic(env, 3)
    lines = [f"line-{i:06d}" for i in range(100_000)]
    start = time.time()
    result = produce(env, topic, lines)
    took = time.time() - start
    assert result.returncode == 0, result.stderr
    assert took < 30, f"100k lines took {took:.1f}s"
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer(conf(env, **{"group.id": "unused"}))
    total = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in range(3))
    consumer.close()
    assert total == 100_000
    got = consume(env, topic, "--from-beginning", "--max-messages", "100000", "--timeout-ms", "20000")
    assert got.returncode == 0, got.stderr
    assert sorted(got.stdout.splitlines()) == lines


def test_group_commits_and_the_next_run_continues(env):
    topic = new_topic(env, 3)
    lines = [f"k{i}:v{i}" for i in range(30)]
    assert produce(env, topic, lines, "--property", "parse.key=true", "--property", "key.separator=:").returncode == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = consume(env, topic, "--group", group, "--from-beginning", "--max-messages", "10", "--timeout-ms", "20000")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 10
    offsets = committed(env, group, topic, 3)
    assert sum(o for o in offsets.values() if o >= 0) == 10, offsets

    second = consume(env, topic, "--group", group, "--timeout-ms", "4000")
    assert second.returncode == 0, second.stderr
    assert "Processed a total of 20 messages" in second.stderr
    assert sorted(first.stdout.splitlines() + second.stdout.splitlines()) == sorted(f"v{i}" for i in range(30))
    assert sum(committed(env, group, topic, 3).values()) == 30

    third = consume(env, topic, "--group", group, "--from-beginning", "--timeout-ms", "2000")
    assert third.returncode == 0 and third.stdout == "", third.stderr  # committed offsets win over --from-beginning


def test_a_group_shared_with_librdkafka_splits_the_partitions(env):
    from confluent_kafka import Consumer
    topic = new_topic(env, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    pki, broker = env
    other = Consumer(conf(env, **{"group.id": group, "partition.assignment.strategy": "range",
                                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                                  "heartbeat.interval.ms": 500}))
    other.subscribe([topic])
    deadline = time.time() + 20
    while not other.assignment() and time.time() < deadline:
        other.poll(0.2)
    assert len(other.assignment()) == 4
    ours = subprocess.Popen([BIN, "consume", "--bootstrap-server", bootstrap(broker), *flags(pki), "--topic", topic,
                             "--group", group, "--from-beginning", "--property", "print.partition=true",
                             "--consumer-property", "heartbeat.interval.ms=500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while len(other.assignment()) != 2 and time.time() < deadline:
            other.poll(0.2)
        theirs = sorted(tp.partition for tp in other.assignment())
        assert len(theirs) == 2, theirs
        lines = [f"p{p}-{i}" for p in range(4) for i in range(5)]
        # Unkeyed lines with a tiny batch: the sticky partitioner moves on after each one.
        assert produce(env, topic, lines, "--batch-size", "1").returncode == 0
        read_by_librdkafka = []
        deadline = time.time() + 15
        while time.time() < deadline:
            msg = other.poll(0.2)
            if msg is not None and msg.error() is None:
                read_by_librdkafka.append(msg.partition())
            if len(read_by_librdkafka) >= 10:
                break
        assert set(read_by_librdkafka) <= set(theirs)
    finally:
        ours.send_signal(signal.SIGTERM)
        out, err = ours.communicate(timeout=30)
        other.close()
    assert ours.returncode == 0, err
    printed = {int(line.split("\t")[0].split(":")[1]) for line in out.splitlines()}
    assert printed and not printed & set(theirs), (printed, theirs)
    assert "Processed a total of" in err


def test_as_group_leader_bulwark_assigns_librdkafka_its_share(env):
    from confluent_kafka import Consumer
    pki, broker = env
    topic = new_topic(env, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    ours = subprocess.Popen([BIN, "consume", "--bootstrap-server", bootstrap(broker), *flags(pki), "--topic", topic,
                             "--group", group, "--from-beginning", "--property", "print.partition=true",
                             "--consumer-property", "heartbeat.interval.ms=300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    other = None
    try:
        # Once it prints a record produced now, it has joined (alone, so as the leader).
        assert produce(env, topic, ["k:hello"], "--property", "parse.key=true", "--property",
                       "key.separator=:").returncode == 0
        first = readline(ours, 30)
        assert first.startswith("Partition:"), first
        other = Consumer(conf(env, **{"group.id": group, "partition.assignment.strategy": "range",
                                      "session.timeout.ms": 6000}))
        other.subscribe([topic])
        deadline = time.time() + 30
        while len(other.assignment()) != 2 and time.time() < deadline:
            other.poll(0.2)
        assert sorted(tp.partition for tp in other.assignment()) in ([0, 1], [2, 3])
    finally:
        ours.send_signal(signal.SIGTERM)
        _, err = ours.communicate(timeout=30)
        if other:
            other.close()
    assert ours.returncode == 0, err


def test_sigterm_leaves_the_group_and_commits(env):
    pki, broker = env
    topic = new_topic(env, 2)
    assert produce(env, topic, [f"v{i}" for i in range(10)]).returncode == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([BIN, "consume", "--bootstrap-server", bootstrap(broker), *flags(pki), "--topic", topic,
                             "--group", group, "--from-beginning", "--consumer-property", "session.timeout.ms=30000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(10):
        assert readline(proc, 20), "the consumer printed fewer than 10 records"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Processed a total of 10 messages" in err
    assert sum(committed(env, group, topic, 2).values()) == 10
    # It left: a new member is not kept waiting for the 30 s session of the old one.
    start = time.time()
    again = consume(env, topic, "--group", group, "--timeout-ms", "1000")
    assert again.returncode == 0 and again.stdout == "", again.stderr
    assert time.time() - start < 15


def test_refusals_in_words(env):
    pki, broker = env
    topic = new_topic(env, 1)
    denied = produce(env, topic, ["x"], name=USER)
    assert denied.returncode == 1
    assert "client-1" in denied.stderr and "TOPIC_AUTHORIZATION_FAILED" in denied.stderr, denied.stderr

    # DESCRIBE but not WRITE: the record itself is refused, and the line is named.
    run(BIN, "acl", "add", "--bootstrap-server", bootstrap(broker), *flags(pki), "--allow-principal",
        "User:client-1", "--operation", "Describe", "--topic", topic)
    time.sleep(1)
    refused = produce(env, topic, ["x", "y"], name=USER)
    assert refused.returncode == 1
    assert "not written" in refused.stderr and "write" in refused.stderr, refused.stderr
    assert "TOPIC_AUTHORIZATION_FAILED" in refused.stderr and "client-1" in refused.stderr

    missing = consume(env, f"missing-{uuid.uuid4().hex[:6]}", "--timeout-ms", "1000")
    assert missing.returncode == 1 and "does not exist" in missing.stderr, missing.stderr
    bad = produce(env, topic, ["no separator here"], "--property", "parse.key=true")
    assert bad.returncode == 1 and "No key separator found on line number 1" in bad.stderr, bad.stderr
    usage = consume(env, topic, "--offset", "3")
    assert usage.returncode == 2 and "partition is required" in usage.stderr
