"""Client quotas against a real `bulwark broker` with real clients (confluent_kafka): `bulwark quotas`
sets producer_byte_rate / consumer_byte_rate for SASL users with kafka-configs.sh's spellings, a
producer and a consumer going as fast as they can are held to the quota (within 10 %), hear
throttle_time_ms (librdkafka's throttle callback), and the quotas survive a restart (metadata log).

The broker measures over quota.window.num=2 windows of 1 s here: with Kafka's default of 11 a fresh
client may burst 10 s worth of its quota first, which a 7 s measurement cannot average out."""
import socket
import struct
import time

import pytest

import kafka_wire as kw
from harness import BIN, Broker, Pki, run

QUOTA = 256 * 1024  # bytes per second
WARMUP_S = 3.0  # the requests pipelined before the first throttle are answered in this time
MEASURE_S = 20.0
VALUE = b"x" * 1000


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("quotas")
    pki = Pki(root, clients=())
    broker = Broker(root, pki, sasl=True, extra={"quota.window.num": "2", "quota.window.size.seconds": "1",
                                                 "log.flush.interval.messages": "9223372036854775807"})
    broker.start()
    # The rate tests' quotas, set here so each test runs alone too.
    quotas(broker, "--alter", "--add-config", f"producer_byte_rate={QUOTA}", "--entity-type", "users",
           "--entity-name", "alice")
    quotas(broker, "--alter", "--add-config", f"consumer_byte_rate={QUOTA},request_percentage=400",
           "--entity-type", "users", "--entity-name", "bob")
    yield broker
    broker.stop()


def quotas(broker, *args, check=0):
    result = run(BIN, "quotas", "--bootstrap-server", broker.bootstrap("PLAINTEXT"), *args, check=False)
    assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def sasl_config(broker, user):
    return {
        "bootstrap.servers": broker.bootstrap("SASL_PLAINTEXT"),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": Broker.PLAIN_USERS[user],
    }


def test_alter_and_describe_speak_kafka_configs(env):
    broker = env
    done = quotas(broker, "--alter", "--add-config", f"producer_byte_rate={QUOTA}", "--entity-type", "users",
                  "--entity-name", "alice")  # the fixture set it already: the same value again
    assert done.stdout.strip() == "Completed updating config for user alice."
    quotas(broker, "--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048",
           "--entity-type", "users", "--entity-name", "carol", "--entity-type", "clients", "--entity-default")
    shown = quotas(broker, "--describe", "--entity-type", "users", "--entity-name", "alice").stdout
    assert shown.strip() == f"Quota configs for user-principal 'alice' are producer_byte_rate={QUOTA}.0"
    shown = quotas(broker, "--describe", "--entity-type", "users", "--entity-name", "carol",
                   "--entity-type", "clients", "--entity-default").stdout
    assert shown.strip() == ("Quota configs for user-principal 'carol', the default client-id are "
                             "consumer_byte_rate=2048.0, producer_byte_rate=1024.0")
    quotas(broker, "--alter", "--delete-config", "producer_byte_rate", "--entity-type", "users", "--entity-name",
           "carol", "--entity-type", "clients", "--entity-default")
    shown = quotas(broker, "--describe", "--entity-type", "users", "--entity-name", "carol",
                   "--entity-type", "clients", "--entity-default").stdout
    assert shown.strip() == ("Quota configs for user-principal 'carol', the default client-id are "
                             "consumer_byte_rate=2048.0")
    # Every user (strict: entities with only a user part).
    every = quotas(broker, "--describe", "--entity-type", "users").stdout
    assert "user-principal 'alice'" in every and "user-principal 'bob'" in every and "carol" not in every
    refused = quotas(broker, "--alter", "--add-config", "producer_byte_rate=1.5", "--entity-type", "users",
                     "--entity-name", "alice", check=1)
    assert "INVALID_REQUEST" in refused.stderr and "must be a Long value" in refused.stderr
    bad = quotas(broker, "--alter", "--add-config", "producer_byte_rate=lots", "--entity-type", "users",
                 "--entity-name", "alice", check=2)
    assert "Cannot parse quota configuration value for producer_byte_rate: lots" in bad.stderr


def rate_over(events, start, end):
    """Bytes per second of the (time, bytes) events inside [start, end)."""
    return sum(n for t, n in events if start <= t < end) / (end - start)


def test_producer_is_held_to_producer_byte_rate_and_hears_throttle(env):
    from confluent_kafka import Producer
    broker = env
    throttles = []
    acked = []
    # A small queue: produce() blocks (BufferError) instead of queueing more than the quota lets out.
    producer = Producer({**sasl_config(broker, "alice"), "batch.size": 16384, "linger.ms": 5, "acks": 1,
                         "queue.buffering.max.kbytes": 1024,
                         "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    producer.produce("quota-produce", VALUE)  # creates the topic before the clock starts
    producer.flush(10)

    def delivered(err, msg):
        if err is None:
            acked.append((time.monotonic(), len(msg.value())))

    start = time.monotonic()
    while time.monotonic() - start < WARMUP_S + MEASURE_S:
        try:
            producer.produce("quota-produce", VALUE, on_delivery=delivered)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.flush(30)
    rate = rate_over(acked, start + WARMUP_S, start + WARMUP_S + MEASURE_S)
    assert abs(rate - QUOTA) <= 0.10 * QUOTA, f"achieved {rate:.0f} B/s against a quota of {QUOTA}"
    assert throttles and max(throttles) > 0, "the producer never heard throttle_time_ms"


def test_consumer_is_held_to_consumer_byte_rate(env):
    from confluent_kafka import Consumer, Producer
    broker = env
    # bob's quota is on fetching only: he fills the topic at full speed, in small batches. The broker
    # hands out whole fetches or none, so the fetch size is the granularity the rate is held to: 16 KiB
    # is 6 % of a second's quota.
    filler = Producer({**sasl_config(broker, "bob"), "batch.size": 8192, "linger.ms": 5})
    total = int(QUOTA * (WARMUP_S + MEASURE_S) * 2.5)
    for _ in range(total // len(VALUE)):
        while True:
            try:
                filler.produce("quota-fetch", VALUE)
                break
            except BufferError:
                filler.poll(0.05)
        filler.poll(0)
    assert filler.flush(60) == 0

    throttles = []
    consumer = Consumer({**sasl_config(broker, "bob"), "group.id": "quota-group", "auto.offset.reset": "earliest",
                         "fetch.max.bytes": 1048576, "max.partition.fetch.bytes": 16384,
                         "queued.max.messages.kbytes": 128,  # what poll() sees is what was fetched
                         "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    consumer.subscribe(["quota-fetch"])
    received = []
    while not received:  # joined and fetching before the clock starts
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            received.append(len(msg.value()))
    events = []
    start = time.monotonic()
    while time.monotonic() - start < WARMUP_S + MEASURE_S:
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is None:
            events.append((time.monotonic(), len(msg.value())))
    consumer.close()
    rate = rate_over(events, start + WARMUP_S, start + WARMUP_S + MEASURE_S)
    assert abs(rate - QUOTA) <= 0.10 * QUOTA, f"achieved {rate:.0f} B/s against a quota of {QUOTA}"
    assert throttles and max(throttles) > 0, "the consumer never heard throttle_time_ms"


def metadata_rate(broker, user, seconds):
    """Metadata v1 requests (all topics) per second, one after the other for `seconds`, as `user` with
    client id bulwark-test."""
    sock = socket.create_connection(("127.0.0.1", broker.ports["SASL_PLAINTEXT"]))
    kw.sasl_plain_login(sock, user, Broker.PLAIN_USERS[user])
    start, answered = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        sock.sendall(kw.request(3, 1, 100 + answered, struct.pack(">i", -1)))
        assert struct.unpack_from(">i", kw.read_frame(sock, timeout=30))[0] == 100 + answered
        answered += 1
    rate = answered / (time.monotonic() - start)
    sock.close()
    return rate


def test_request_percentage_covers_apis_without_a_byte_rate(env):
    broker = env
    # 0.05 % of a request thread is 0.5 ms of handler time per second: a few Metadata requests' worth.
    quotas(broker, "--alter", "--add-config", "request_percentage=0.05", "--entity-type", "users", "--entity-name",
           "alice", "--entity-type", "clients", "--entity-name", "bulwark-test")
    try:
        throttled = metadata_rate(broker, "alice", 5.0)
        free = metadata_rate(broker, "bob", 1.0)  # bob's request_percentage=400 is far away
        assert throttled < free / 5, f"over its request quota a client still made {throttled:.0f} requests/s ({free:.0f} free)"
    finally:
        quotas(broker, "--alter", "--delete-config", "request_percentage", "--entity-type", "users", "--entity-name",
               "alice", "--entity-type", "clients", "--entity-name", "bulwark-test")


def test_quotas_survive_a_restart(env):
    broker = env
    broker.stop()
    broker.start()
    shown = quotas(broker, "--describe", "--entity-type", "users", "--entity-name", "alice").stdout
    assert shown.strip() == f"Quota configs for user-principal 'alice' are producer_byte_rate={QUOTA}.0"
    shown = quotas(broker, "--describe", "--entity-type", "users", "--entity-name", "bob").stdout
    assert shown.strip() == f"Quota configs for user-principal 'bob' are consumer_byte_rate={QUOTA}.0, request_percentage=400.0"
