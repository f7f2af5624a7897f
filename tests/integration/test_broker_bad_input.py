"""Bad input never crashes the broker and never corrupts the log: truncated and oversized frames,
unknown API keys and versions, garbage instead of a TLS ClientHello, a plaintext client on an SSL port,
a client certificate from another CA, and a record batch with a wrong CRC."""
import socket
import ssl
import struct
import subprocess
import uuid

import pytest

import clients
import kafka_wire as kw
from harness import Broker, Pki

CORRUPT_MESSAGE = 2
UNSUPPORTED_VERSION = 35


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("badinput")
    pki = Pki(root)
    broker = Broker(root, pki, extra={"socket.request.max.bytes": str(1 << 20)}).start()
    yield broker
    broker.stop()


def connect(broker, listener="PLAINTEXT"):
    return socket.create_connection(("127.0.0.1", broker.ports[listener]), timeout=10)


def still_serves(broker):
    """The broker is alive and a real client can still write and read."""
    assert broker.alive()
    topic = f"alive-{uuid.uuid4().hex[:8]}"
    records = [(b"k", b"still-here", [])]
    clients.confluent_produce(broker.bootstrap("PLAINTEXT"), None, topic, records)
    assert clients.confluent_consume(broker.bootstrap("PLAINTEXT"), None, topic, 1)[0][1] == b"still-here"


def test_truncated_frame_then_close(cluster):
    with connect(cluster) as s:
        s.sendall(struct.pack(">i", 100) + b"\x00" * 10)
    still_serves(cluster)


@pytest.mark.parametrize("size", [-1, 0, (1 << 20) + 1, 0x7FFFFFFF])
def test_bad_frame_sizes_close_the_connection(cluster, size):
    with connect(cluster) as s:
        s.sendall(struct.pack(">i", size) + b"\x00" * 16)
        assert kw.closed_by_peer(s)
    still_serves(cluster)


def test_unknown_api_key_closes_the_connection(cluster):
    with connect(cluster) as s:
        s.sendall(kw.request(999, 0, 7, b""))
        assert kw.closed_by_peer(s)
    still_serves(cluster)


def test_unsupported_version_of_known_api_closes(cluster):
    with connect(cluster) as s:
        s.sendall(kw.request(3, 99, 8, b""))
        assert kw.closed_by_peer(s)


def test_api_versions_too_new_answers_v0_with_the_list(cluster):
    with connect(cluster) as s:
        # Flexible versions use request header v2: an (empty) tagged-field section follows the client id.
        s.sendall(kw.request(18, 99, 42, b"\x00"))
        payload = kw.read_frame(s)
    correlation, error, count = struct.unpack_from(">ihi", payload, 0)
    assert correlation == 42 and error == UNSUPPORTED_VERSION
    keys = [struct.unpack_from(">hhh", payload, 10 + 6 * i) for i in range(count)]
    assert (18, 0, 3) in keys and any(k[0] == 0 for k in keys)


def test_malformed_body_closes_the_connection(cluster):
    with connect(cluster) as s:
        # Metadata v1 whose topic array claims 2^31-1 entries in a few bytes.
        s.sendall(kw.request(3, 1, 9, struct.pack(">i", 0x7FFFFFFF) + b"ab"))
        assert kw.closed_by_peer(s)
    still_serves(cluster)


def test_batch_with_wrong_crc_is_rejected_and_nothing_written(cluster):
    topic = f"crc-{uuid.uuid4().hex[:8]}"
    clients.kafkajs("create", cluster.bootstrap("PLAINTEXT"), None, topic=topic, partitions=1)
    good = kw.record_batch([b"first"])
    bad = bytearray(kw.record_batch([b"second"]))
    bad[-3] ^= 0xFF  # inside the record value, covered by the CRC
    with connect(cluster) as s:
        s.sendall(kw.request(0, 3, 1, kw.produce_v3(topic, 0, good)))
        assert kw.parse_produce_v3_response(kw.read_frame(s)) == (0, 0)
        s.sendall(kw.request(0, 3, 2, kw.produce_v3(topic, 0, bytes(bad))))
        error, _ = kw.parse_produce_v3_response(kw.read_frame(s))
        assert error == CORRUPT_MESSAGE
        # A truncated batch (a torn write from a client) is corrupt too.
        s.sendall(kw.request(0, 3, 3, kw.produce_v3(topic, 0, good[:-5])))
        assert kw.parse_produce_v3_response(kw.read_frame(s))[0] == CORRUPT_MESSAGE
    got = clients.kafka_python_consume(cluster.bootstrap("PLAINTEXT"), None, topic, 2, timeout=8)
    assert [v for _, v, _ in got] == [b"first"]


def test_garbage_instead_of_client_hello(cluster):
    for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 4, b"\x16\x03\x01\xff\xff" + b"\x00" * 50):
        with connect(cluster, "SSL") as s:
            s.sendall(garbage)
            assert kw.closed_by_peer(s)
    still_serves(cluster)


def test_plaintext_kafka_client_on_ssl_port(cluster):
    with connect(cluster, "MTLS") as s:
        s.sendall(kw.request(18, 0, 1, b""))
        assert kw.closed_by_peer(s)
    assert "plaintext" in cluster.log_text().lower() or cluster.alive()
    still_serves(cluster)


def test_client_certificate_from_another_ca_cannot_connect(cluster, tmp_path):
    # Another CA and a client certificate from it, made with openssl as a user would.
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=tmp_path)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "other-ca.key", "-out", "other-ca.crt", "-subj", "/CN=Other CA", "-days", "30")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "mallory.key",
        "-out", "mallory.csr", "-subj", "/CN=admin-1")
    run("openssl", "x509", "-req", "-in", "mallory.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key",
        "-CAcreateserial", "-out", "mallory.crt", "-days", "30")
    _, _, ca = cluster.pki.pem("admin-1")
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(tmp_path / "mallory.crt"), str(tmp_path / "mallory.key"))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError)):
        with socket.create_connection(("127.0.0.1", cluster.ports["MTLS"]), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                # TLS 1.3: the server's verdict on the client certificate arrives after the handshake.
                s.sendall(kw.request(18, 0, 1, b""))
                assert kw.read_frame(s) is None
                raise ConnectionResetError("closed")
    still_serves(cluster)
