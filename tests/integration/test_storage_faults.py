"""Storage faults against the real broker: a full disk (a small tmpfs the test mounts), damaged middle
segments, 10,000 tiny segments under a low `ulimit -n`, a second broker on the same log dir, and kill -9
during the broker's atomic file writes."""
import json
import os
import random
import resource
import socket
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import clients
import kafka_wire
from harness import BIN, Broker, Pki, run, wait_for_port, wait_for_started


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"), clients=("admin-1",))


def start(broker, nofile=None):
    """Broker.start, optionally with RLIMIT_NOFILE set (soft and hard) for the broker process."""
    if nofile is None:
        return broker.start()
    broker.write_config()
    if not (broker.log_dir / "meta.properties").exists():
        cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
        run(BIN, "storage", "format", "-t", cluster_id, "-c", broker.config)
    log_start = broker.log_file.stat().st_size if broker.log_file.exists() else 0
    broker._log = open(broker.log_file, "ab")
    broker.proc = subprocess.Popen([BIN, "broker", "-c", str(broker.config)], stdout=broker._log,
                                   stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
    for name in broker.client_listeners:
        wait_for_port(broker.ports[name], proc=broker.proc)
    wait_for_started(broker.log_file, log_start, broker.proc)
    return broker


def producer(broker, pki, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": broker.bootstrap("MTLS"), "acks": "all", "linger.ms": 0, "retries": 0,
            "message.timeout.ms": 10000, **clients.librdkafka_conf(clients.security(pki, "MTLS")), **extra}
    return Producer(conf)


def produce_each(prod, topic, values):
    """Sends every value as its own batch; returns (acked values, delivery errors)."""
    acked, errors = [], []

    def on_delivery(err, msg):
        (errors if err else acked).append(err if err else msg.value())

    for v in values:
        prod.produce(topic, value=v, on_delivery=on_delivery)
        prod.flush(15)
    return acked, errors


def batches(segment):
    """(position, base offset, last offset, total size) of each batch in a .log file."""
    data = segment.read_bytes()
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        (delta,) = struct.unpack_from(">i", data, pos + 23)
        out.append((pos, base, base + delta, length + 12))
        pos += length + 12
    return out


# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_refuses_writes_with_a_storage_error_and_loses_nothing(tmp_path, pki, small_disk):
    from confluent_kafka import KafkaError
    broker = Broker(tmp_path, pki, extra={"log.dirs": str(small_disk / "logs")})
    broker.log_dir = small_disk / "logs"
    start(broker)
    try:
        topic = f"full-{uuid.uuid4().hex[:8]}"
        prod = producer(broker, pki)
        acked, errors = produce_each(prod, topic, [f"before-{i}".encode() for i in range(20)])
        assert len(acked) == 20, errors

        filler = small_disk / "filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        value = b"x" * 20000
        full_acked, full_errors = produce_each(prod, topic, [value + str(i).encode() for i in range(150)])
        assert full_errors, "a full disk accepted every record"
        codes = {e.code() for e in full_errors}
        assert codes == {KafkaError.KAFKA_STORAGE_ERROR}, f"producers saw {codes}, not KAFKA_STORAGE_ERROR"
        assert broker.alive()

        text = broker.log_text()
        assert "rejected:" not in text, "one WARN line per rejected produce"
        reports = [line for line in text.splitlines() if "refused since the last report" in line]
        assert 1 <= len(reports) <= 3, f"{len(reports)} report lines for {len(full_errors)} refused writes"
        assert "No space left on device" in reports[0]

        filler.unlink()
        after, after_errors = produce_each(prod, topic, [f"after-{i}".encode() for i in range(20)])
        assert len(after) == 20, f"writes did not resume after space returned: {after_errors[:3]}"
        all_acked = acked + full_acked + after
        got = clients.confluent_consume(broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic,
                                        len(all_acked), timeout=30)
        values = [v for _, v, _ in got]
        assert sorted(values) == sorted(all_acked), "an acknowledged record was lost or an unacknowledged one kept"
    finally:
        broker.stop()


# ---------------------------------------------------------------------------------------------------
def test_damaged_middle_segments_lose_only_the_damaged_batches(tmp_path, pki):
    broker = start(Broker(tmp_path, pki, extra={"log.segment.bytes": "1000"}))
    topic = f"damage-{uuid.uuid4().hex[:8]}"
    prod = producer(broker, pki)
    values = [f"record-{i:05d}-".encode() + b"v" * 60 for i in range(120)]
    acked, errors = produce_each(prod, topic, values)
    assert len(acked) == 120, errors[:3]
    broker.kill()  # unclean: recovery checks the segments above the recovery point

    part = broker.log_dir / f"{topic}-0"
    segments = sorted(part.glob("*.log"))
    assert len(segments) >= 10
    header_victim, payload_victim = segments[3], segments[6]
    pos, hbase, hlast, _ = batches(header_victim)[1]
    with open(header_victim, "r+b") as f:  # the magic byte
        f.seek(pos + 16)
        f.write(b"\x07")
    ppos, pbase, plast, psize = batches(payload_victim)[1]
    with open(payload_victim, "r+b") as f:  # a byte of the record's value, covered by the CRC only
        f.seek(ppos + psize - 10)
        b = f.read(1)
        f.seek(ppos + psize - 10)
        f.write(bytes([b[0] ^ 0x40]))
    # As after a crash before the first recovery-point checkpoint: every segment gets CRC-checked.
    (broker.log_dir / "recovery-point-offset-checkpoint").unlink(missing_ok=True)

    start(broker)
    try:
        text = broker.log_text()
        assert "invalid batch header" in text and "CRC mismatch" in text, "recovery did not report the damage"
        assert len(sorted(part.glob("*.log"))) == len(segments), "recovery deleted segments"
        assert len(list(part.glob("*.damaged-*"))) == 2
        lost = set(range(hbase, hlast + 1)) | set(range(pbase, plast + 1))
        expected = [v for i, v in enumerate(values) if i not in lost]
        got = clients.confluent_consume(broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic,
                                        len(expected), timeout=30)
        assert [v for _, v, _ in got] == expected
    finally:
        broker.stop()


# ---------------------------------------------------------------------------------------------------
def api_versions(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(kafka_wire.request(18, 0, 7, b""))
        frame = kafka_wire.read_frame(s)
        assert frame is not None and len(frame) > 4


def test_ten_thousand_tiny_segments_leave_listeners_accepting(tmp_path, pki):
    broker = start(Broker(tmp_path, pki))
    topic = f"tiny-{uuid.uuid4().hex[:8]}"
    acked, errors = produce_each(producer(broker, pki), topic, [b"seed-record"])
    assert acked, errors
    broker.stop()

    # 10,000 one-batch segments, made from the real batch with only its base offset (outside the CRC)
    # changed; the index files are left for recovery to rebuild.
    part = broker.log_dir / f"{topic}-0"
    template = bytearray((part / "00000000000000000000.log").read_bytes())
    count = 10_000
    for offset in range(1, count):
        struct.pack_into(">q", template, 0, offset)
        (part / f"{offset:020d}.log").write_bytes(template)

    start(broker, nofile=1024)
    try:
        fds = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
        assert fds < 700, f"{fds} descriptors open after recovering {count} segments"
        socks = []
        for _ in range(100):  # new connections are accepted, and answered
            socks.append(socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=5))
        api_versions(broker.ports["PLAINTEXT"])
        got = clients.confluent_consume(broker.bootstrap("MTLS"), clients.security(pki, "MTLS"), topic, count,
                                        timeout=60)
        assert len(got) == count
        api_versions(broker.ports["PLAINTEXT"])
        fds = len(os.listdir(f"/proc/{broker.proc.pid}/fd"))
        assert fds < 900, f"{fds} descriptors open after reading every segment"
        for s in socks:
            s.close()
        assert "Too many open files" not in broker.log_text()
    finally:
        broker.stop()


# ---------------------------------------------------------------------------------------------------
def test_second_broker_on_the_same_log_dir_refuses_to_start(tmp_path, pki):
    first = start(Broker(tmp_path, pki))
    try:
        (tmp_path / "second").mkdir()
        second = Broker(tmp_path / "second", pki)
        second.props["log.dirs"] = str(first.log_dir)
        second.write_config()
        result = subprocess.run([BIN, "broker", "-c", str(second.config)], capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        out = result.stdout + result.stderr
        assert "in use by another process" in out and str(first.log_dir) in out, out
        assert first.alive()
        api_versions(first.ports["PLAINTEXT"])
    finally:
        first.stop()


def test_second_broker_on_the_same_metadata_dir_refuses_to_start(tmp_path, pki):
    shared = tmp_path / "metadata"
    first = Broker(tmp_path, pki, extra={"metadata.log.dir": str(shared)})
    start(first)
    try:
        (tmp_path / "second").mkdir()
        second = Broker(tmp_path / "second", pki, extra={"metadata.log.dir": str(shared)})
        second.write_config()
        cluster_id = next(l.split("=", 1)[1] for l in (shared / "meta.properties").read_text().splitlines()
                          if l.startswith("cluster.id="))
        run(BIN, "storage", "format", "-t", cluster_id, "-c", second.config, "--ignore-formatted")
        result = subprocess.run([BIN, "broker", "-c", str(second.config)], capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        out = result.stdout + result.stderr
        assert "in use by another process" in out and str(shared) in out, out
        assert first.alive()
    finally:
        first.stop()
    # Once the first is gone the dir is free again (the lock dies with its process).
    start(first)
    first.stop()


def test_read_only_log_dir_is_refused_at_start_up_by_name(tmp_path, pki, small_disk):
    broker = Broker(tmp_path, pki, extra={"log.dirs": str(small_disk / "logs")})
    broker.start()
    broker.stop()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = subprocess.run([BIN, "broker", "-c", str(broker.config)], capture_output=True, text=True, timeout=30)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(small_disk / "logs") in out and "Read-only file system" in out, out
    assert "terminate called" not in out and result.returncode > 0


# ---------------------------------------------------------------------------------------------------
def check_parseable(log_dir):
    """Every file the broker wrote parses (temp files of interrupted writes aside)."""
    for path in log_dir.rglob("*"):
        if path.is_dir() or ".tmp-" in path.name:
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.name == "meta.properties":
            lines = [l for l in path.read_text().splitlines() if l and not l.startswith("#")]
            assert lines and all("=" in l for l in lines), path
        elif path.name == "recovery-point-offset-checkpoint":
            lines = path.read_text().splitlines()
            assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, path
        elif path.name == "log-start-offset":
            int(path.read_text())
        elif path.name == "bulwark-producer-ids":
            int(path.read_text().split()[0])


def test_kill_9_during_atomic_writes_leaves_every_file_parseable(tmp_path, pki):
    from confluent_kafka.admin import AdminClient, NewTopic
    broker = start(Broker(tmp_path, pki))
    rng = random.Random(7)
    partitions_seen = []
    try:
        for round_ in range(4):
            admin = AdminClient({"bootstrap.servers": broker.bootstrap("MTLS"),
                                 **clients.librdkafka_conf(clients.security(pki, "MTLS"))})
            admin.create_topics([NewTopic(f"t{round_}-{i}", 2, 1) for i in range(40)], operation_timeout=10)
            time.sleep(rng.uniform(0.1, 0.8))
            broker.kill()  # somewhere in the topic and partition files being written
            partitions_seen.append(len([p for p in broker.log_dir.glob(f"t{round_}-*") if p.is_dir()]))
            check_parseable(broker.log_dir)
            start(broker)
            check_parseable(broker.log_dir)
            api_versions(broker.ports["PLAINTEXT"])
        print("partition dirs at each kill:", partitions_seen)
        assert sum(partitions_seen) > 0, "no topic was being created when the broker was killed"
        for path in broker.log_dir.iterdir():
            if path.is_dir() and path.name.startswith("t"):
                assert path.stat().st_mode & 0o007 == 0, f"{path} is world-accessible"
    finally:
        broker.stop()
