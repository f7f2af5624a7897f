"""A slow disk holds up only the writes waiting for it: appends and their fdatasync run on the request
pool (num.io.threads), so the network thread keeps answering other connections meanwhile. The disk is
made slow by an LD_PRELOAD shim (every fdatasync under the log dir takes 600 ms), with
log.flush.interval.messages=1 so that every produce waits for one."""
import os
import socket
import struct
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

        list_offsets = struct.pack(">ii", -1, 1) + kafka_wire.string(topic) + struct.pack(">iiq", 1, 0, -1)

        def latest_offset(sock, correlation_id):
            sock.sendall(kafka_wire.request(2, 1, correlation_id, list_offsets))
            answer = kafka_wire.read_frame(sock)
            error, latest = struct.unpack_from(">hxxxxxxxxq", answer, len(answer) - 18)
            assert error == 0
            return latest

        acked_at = []  # when each slow produce was answered

        def produce_slowly():
            for i in range(3):
                body = kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([f"slow-{i}".encode()]))
                started = time.monotonic()
                producer.sendall(kafka_wire.request(0, 3, 100 + i, body))
                assert kafka_wire.parse_produce_v3_response(kafka_wire.read_frame(producer)) == (0, 1 + i)
                acked_at.append((started, time.monotonic()))

        writer = threading.Thread(target=produce_slowly)
        writer.start()
        answers, offsets_seen = [], []
        while writer.is_alive():
            answers.append(round_trip(other, api_versions))
            sent = time.monotonic()
            offsets_seen.append((sent, latest_offset(other, 2)))
            answers.append(time.monotonic() - sent)
            time.sleep(0.02)
        writer.join()

        produce_times = [done - started for started, done in acked_at]
        assert len(produce_times) == 3 and min(produce_times) >= SLOW_MS / 1000 * 0.9, \
            f"the produce did not wait for the slow fdatasync: {produce_times}"
        assert len(answers) >= 20
        assert max(answers) < 0.25, (
            f"ApiVersions and ListOffsets (of the same partition) on another connection of the same network "
            f"thread took up to {max(answers):.3f} s while a produce waited {SLOW_MS} ms for the disk")
        # The high watermark never covers a record whose fdatasync is still running.
        for i, (_, done) in enumerate(acked_at):
            early = [latest for sent, latest in offsets_seen if sent < done - 0.3 and latest >= 2 + i]
            assert not early, f"slow-{i} was visible (latest offset {early[0]}) before its fdatasync ended"

        # Produces from several connections to one partition share fdatasyncs (a group commit).
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
        started = time.monotonic()
        for n, sock in enumerate(connections):
            body = kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([f"together-{n}".encode()]))
            sock.sendall(kafka_wire.request(0, 3, 400 + n, body))
        for sock in connections:
            assert kafka_wire.parse_produce_v3_response(kafka_wire.read_frame(sock))[0] == 0
        together = time.monotonic() - started
        assert together < 4 * SLOW_MS / 1000, f"6 concurrent produces took {together:.2f} s: one fdatasync each"

        # One connection's requests are processed in the order sent: a ListOffsets pipelined behind a
        # produce that waits for the disk sees that produce's record.
        body = kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([b"pipelined"]))
        producer.sendall(kafka_wire.request(0, 3, 300, body) + kafka_wire.request(2, 1, 301, list_offsets))
        assert kafka_wire.parse_produce_v3_response(kafka_wire.read_frame(producer)) == (0, 10)
        answer = kafka_wire.read_frame(producer)
        error, latest = struct.unpack_from(">hxxxxxxxxq", answer, len(answer) - 18)
        assert (error, latest) == (0, 11), "the ListOffsets behind the produce was served before it"

        trigger.unlink()
        producer.sendall(kafka_wire.request(0, 3, 200, kafka_wire.produce_v3(topic, 0, kafka_wire.record_batch([b"last"]))))
        assert kafka_wire.parse_produce_v3_response(kafka_wire.read_frame(producer)) == (0, 11)
    finally:
        trigger.unlink(missing_ok=True)
        broker.stop()
