"""Memory after a connection storm: the broker holds no write buffer for an idle TLS connection, and once a
storm of mTLS connections has come and gone its RSS returns close to where it started, without anyone
asking (the allocator would otherwise keep the freed TLS state of every connection)."""
import concurrent.futures
import resource
import socket
import ssl
import struct
import time

import pytest

from harness import Broker, Pki

CONNECTIONS = 1500


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def api_versions_v0(correlation_id):
    body = struct.pack(">hhih", 18, 0, correlation_id, 4) + b"storm"[:4]
    return struct.pack(">i", len(body)) + body


def read_frame(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    (size,) = struct.unpack(">i", head)
    got = 0
    while got < size:
        chunk = s.recv(min(65536, size - got))
        if not chunk:
            raise ConnectionError("closed")
        got += len(chunk)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CONNECTIONS + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    root = tmp_path_factory.mktemp("storm")
    pki = Pki(root)
    b = Broker(root, pki).start()  # spawned after the raise: it inherits the limit
    yield b
    b.stop()


def open_storm(broker, count):
    cert, key, ca = broker.pki.pem("admin-1")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))

    def one(i):
        raw = socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=30)
        try:
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(api_versions_v0(i + 1))
            read_frame(s)
            return s
        except BaseException:
            raw.close()
            raise

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(count)))


def test_rss_returns_after_a_storm_of_mtls_connections(broker):
    pid = broker.proc.pid
    time.sleep(0.5)
    baseline = rss_kib(pid)
    for round_ in range(2):
        socks = open_storm(broker, CONNECTIONS)
        time.sleep(0.5)
        peak = rss_kib(pid)
        per_connection = (peak - baseline) / CONNECTIONS
        # Idle TLS connections hold OpenSSL's session state but no 256 KiB write buffer each.
        assert per_connection < 48, f"{per_connection:.1f} KiB per idle mTLS connection"
        assert peak - baseline > 8 * 1024, "the storm should cost the broker memory while it lasts"
        for s in socks:
            s.close()
        deadline = time.time() + 15
        while time.time() < deadline and rss_kib(pid) > baseline + 8 * 1024:
            time.sleep(0.25)
        after = rss_kib(pid)
        assert after <= baseline + 8 * 1024, \
            f"round {round_}: RSS {baseline} KiB before, {peak} KiB with {CONNECTIONS} connections, {after} KiB after"
    # The broker still serves new connections afterwards.
    assert len(open_storm(broker, 4)) == 4
