"""A failing fsync in the real broker process (an LD_PRELOAD shim makes fdatasync/fsync under the log
dir answer EIO, since this kernel has no dm-error) is never followed by an acknowledgement: not of the
batch it covered, not of an idempotent retry of it, and not of anything after it on that log dir."""
import os
import subprocess
import uuid
from pathlib import Path

import clients
from harness import Broker, Pki

HERE = Path(__file__).resolve().parent


def build_shim(tmp_path):
    shim = tmp_path / "libfailing_fsync.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(shim), str(HERE / "shims" / "failing_fsync.c"), "-ldl"],
                   check=True, capture_output=True)
    return shim


def start_with_failing_fsync(broker, shim, trigger):
    saved = dict(os.environ)
    os.environ.update({"LD_PRELOAD": str(shim), "FAILING_FSYNC_DIR": str(broker.log_dir),
                       "FAILING_FSYNC_TRIGGER": str(trigger)})
    try:
        return broker.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def produce(broker, pki, topic, values):
    """Idempotent acks=all producer that retries (as clients do) until message.timeout.ms."""
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": broker.bootstrap("MTLS"), "acks": "all", "enable.idempotence": True,
            "linger.ms": 0, "message.timeout.ms": 6000, **clients.librdkafka_conf(clients.security(pki, "MTLS"))}
    prod = Producer(conf)
    acked, errors = [], []
    for v in values:
        prod.produce(topic, value=v, on_delivery=lambda err, msg: (errors if err else acked).append(err or msg.value()))
    prod.flush(30)
    return acked, errors


def test_failed_fsync_is_never_acknowledged(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    shim = build_shim(tmp_path)
    trigger = tmp_path / "fail-fsync-now"
    broker = Broker(tmp_path, pki, extra={"log.flush.interval.messages": "1"})
    start_with_failing_fsync(broker, shim, trigger)
    topic = f"fsync-{uuid.uuid4().hex[:8]}"
    try:
        before, errors = produce(broker, pki, topic, [f"before-{i}".encode() for i in range(20)])
        assert len(before) == 20, errors

        trigger.touch()
        during, errors = produce(broker, pki, topic, [f"during-{i}".encode() for i in range(5)])
        assert during == [], f"acknowledged while fsync failed: {during}"
        assert errors
        assert broker.alive()
        log = broker.log_text()
        assert "Input/output error" in log and str(broker.log_dir) in log, log[-2000:]

        # The disk "recovers", but a failed fsync is not retried as if nothing happened: the log dir stays
        # offline until the broker restarts, and nothing more is acknowledged on it.
        trigger.unlink()
        after, errors = produce(broker, pki, topic, [f"after-{i}".encode() for i in range(3)])
        assert after == [] and errors
    finally:
        broker.stop()

    broker.start(format_storage=False)  # without the shim: a healthy disk again
    try:
        again, errors = produce(broker, pki, topic, [f"again-{i}".encode() for i in range(5)])
        assert len(again) == 5, errors
        acked = before + again
        got = [v for _, v, _ in clients.confluent_consume(broker.bootstrap("MTLS"), clients.security(pki, "MTLS"),
                                                           topic, len(acked), timeout=30)]
        assert set(acked) <= set(got), f"acknowledged records lost: {sorted(set(acked) - set(got))[:3]}"
    finally:
        broker.stop()
