"""A slow disk holds up only the writes waiting for it: appends and their fdatasync run on the request
pool (num.io.threads), so the network thread keeps answering other connections meanwhile. The disk is
made slow by an LD_PRELOAD shim (every fdatasync under the log dir takes 600 ms), with
log.flush.interval.messages=1 so that every produce waits for one."""
import os
import socket
import threading
import time
import uuid

import clients
import kafka_wire
from harness import Broker, Pki
from test_fsync_failure import build_shim

SLOW_MS = 600


def round_trip(sock, frame):
    started = time.monotonic()
    sock.sendall(frame)
    assert kafka_wire.read_frame(sock, timeout=10) is not None
    return time.monotonic() - started


def test_a_slow_fsync_does_not_stall_the_network_thread(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    shim = build_shim(tmp_path)
    trigger = tmp_path / "slow-disk-now"
    broker = Broker(tmp_path, pki, extra={"num.network.threads": "1", "log.flush.interval.messages": "1"})
    saved = dict(os.environ)
    os.environ.update({"LD_PRELOAD": str(shim), "FAILING_FSYNC_DIR": str(broker.log_dir),
                       "FAILING_FSYNC_TRIGGER": str(trigger), "SLOW_FSYNC_MS": str(SLOW_MS)})
    try:
        broker.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    topic = f"slow-{uuid.uuid4().hex[:8]}"
    try:
        clients.confluent_produce(broker.bootstrap("PLAINTEXT"), clients.security(pki, "PLAINTEXT"), topic, [(None, b"first", None)])
        trigger.touch()
        port = broker.ports["PLAINTEXT"]
        producer = socket.create_connection(("127.0.0.1", port))
        other = socket.create_connection(("127.0.0.1", port))
        api_versions = kafka_wire.request(18, 0, 1, b"")
        round_trip(other, api_versions)  # the connection is accepted and its session made

        produce_times = []

        def produce_slowly():
            for i in range(3):
                body = kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([f"slow-{i}".encode()]))
                produce_times.append(round_trip(producer, kafka_wire.request(0, 3, 100 + i, body)))

        writer = threading.Thread(target=produce_slowly)
        writer.start()
        answers = []
        while writer.is_alive():
            answers.append(round_trip(other, api_versions))
            time.sleep(0.02)
        writer.join()

        assert len(produce_times) == 3 and min(produce_times) >= SLOW_MS / 1000 * 0.9, \
            f"the produce did not wait for the slow fdatasync: {produce_times}"
        assert len(answers) >= 20
        assert max(answers) < 0.25, (
            f"ApiVersions on another connection of the same network thread took up to {max(answers):.3f} s "
            f"while a produce waited {SLOW_MS} ms for the disk")
        trigger.unlink()
        producer.sendall(kafka_wire.request(0, 3, 200, kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([b"last"]))))
        assert kafka_wire.parse_produce_v3_response(kafka_wire.read_frame(producer)) == (0, 4)
    finally:
        trigger.unlink(missing_ok=True)
        broker.stop()
