"""The network limits of the real broker: half-sent requests closed at bulwark.request.receive.timeout.ms
while other clients are served, max.connections.per.ip (with an override), max.connections and
listener.name.<l>.max.connections refusing new connections at accept, oversized frames before SASL login
closed at their header without raising the broker's memory, and the counting limit lines in the log."""
import re
import socket
import struct
import time

import pytest

import kafka_wire as kw
from harness import Broker, Pki

RECEIVE_TIMEOUT_S = 1.5
HUNDRED_MIB = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("limits-pki"), clients=())


@pytest.fixture(scope="module")
def slow(pki, tmp_path_factory):
    root = tmp_path_factory.mktemp("limits-slow")
    broker = Broker(root, pki, sasl=True,
                    extra={"bulwark.request.receive.timeout.ms": str(int(RECEIVE_TIMEOUT_S * 1000))}).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def limited(pki, tmp_path_factory):
    root = tmp_path_factory.mktemp("limits-conn")
    broker = Broker(root, pki, extra={
        "max.connections.per.ip": "10",
        "max.connections.per.ip.overrides": "127.0.0.2:25",
        "max.connections": "40",
        "listener.name.ssl.max.connections": "3",
    }).start()
    time.sleep(0.3)  # the harness's port checks have closed
    yield broker
    broker.stop()


def connect(broker, listener="PLAINTEXT", source="127.0.0.1"):
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", broker.ports[listener]))
    return sock


def api_versions_round_trip(sock, correlation_id=1):
    sock.sendall(kw.request(18, 0, correlation_id, b""))
    payload = kw.read_frame(sock, timeout=5)
    assert payload is not None and struct.unpack_from(">ih", payload) == (correlation_id, 0)


def answered(sock):
    """True if the broker serves this connection, False if it closed it."""
    try:
        sock.sendall(kw.request(18, 0, 9, b""))
        return kw.read_frame(sock, timeout=5) is not None
    except OSError:
        return False


def probe_ms(broker):
    started = time.monotonic()
    with connect(broker) as sock:
        api_versions_round_trip(sock)
    return (time.monotonic() - started) * 1000


def rss_kb(broker):
    for line in open(f"/proc/{broker.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def limit_count(broker, text):
    """The sum of the counts in the broker's "limit: N <text>" lines."""
    return sum(int(n) for n in re.findall(r"limit: (\d+) " + re.escape(text), broker.log_text()))


def wait_for_limit_count(broker, text, expected, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline and limit_count(broker, text) < expected:
        time.sleep(0.2)
    return limit_count(broker, text)


DEADLINE_TEXT = "connections closed because a started request"


def test_half_sent_frames_close_at_the_deadline_while_others_are_served(slow):
    stuck = []
    for _ in range(200):
        sock = connect(slow)
        sock.sendall(struct.pack(">i", 1000) + b"\x00\x12")  # a header and two bytes of a 1000-byte request
        stuck.append(sock)
    sent = time.monotonic()
    # While the 200 hold their half requests, a new client is answered at once.
    probes = [probe_ms(slow) for _ in range(3)]
    assert max(probes) < 100, probes
    assert time.monotonic() - sent < RECEIVE_TIMEOUT_S - 0.3  # the probes ran while all 200 were open
    for sock in stuck:
        assert kw.closed_by_peer(sock, timeout=10)
    took = time.monotonic() - sent
    assert RECEIVE_TIMEOUT_S - 0.2 <= took < RECEIVE_TIMEOUT_S + 3, took
    for sock in stuck:
        sock.close()
    # One line at once, the rest counted into one more line per interval, never 200 lines.
    assert wait_for_limit_count(slow, DEADLINE_TEXT, 200) == 200
    assert len(re.findall(re.escape(DEADLINE_TEXT), slow.log_text())) <= 4
    assert slow.alive()


def send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the broker may already have closed the connection


def test_huge_frames_before_login_close_at_the_header_without_memory(slow):
    with connect(slow, "SASL_PLAINTEXT") as warm:  # warm the connection path
        api_versions_round_trip(warm)
    before_text = limit_count(slow, "connections closed for a request larger than sasl.server.max.receive.size")
    before = rss_kb(slow)
    socks = []
    for _ in range(10):
        sock = connect(slow, "SASL_PLAINTEXT")
        sock.sendall(struct.pack(">i", HUNDRED_MIB))
        send_quietly(sock, b"\x00" * (256 * 1024))
        socks.append(sock)
    for sock in socks:
        assert kw.closed_by_peer(sock, timeout=5)
        sock.close()
    grown = rss_kb(slow) - before
    assert grown < 4 * 1024, f"RSS grew by {grown} kB"
    assert wait_for_limit_count(slow, "connections closed for a request larger than sasl.server.max.receive.size",
                                before_text + 10) == before_text + 10


def test_announced_size_pins_no_memory_after_login(slow):
    user, password = next(iter(Broker.PLAIN_USERS.items()))
    socks = []
    for _ in range(10):
        sock = connect(slow, "SASL_PLAINTEXT")
        kw.sasl_plain_login(sock, user, password)
        socks.append(sock)
    time.sleep(0.2)
    before = rss_kb(slow)
    for sock in socks:
        sock.sendall(struct.pack(">i", HUNDRED_MIB) + b"\x00" * (64 * 1024))  # 100 MiB announced, 64 KiB sent
    time.sleep(0.3)
    grown = rss_kb(slow) - before
    # The broker holds what arrived (10 x 64 KiB), not what was announced (10 x 100 MiB).
    assert grown < 8 * 1024, f"RSS grew by {grown} kB"
    for sock in socks:  # and the slow-loris guard closes them all
        assert kw.closed_by_peer(sock, timeout=10)
        sock.close()


def refused_and_served(broker, count, source, listener="PLAINTEXT"):
    socks = [connect(broker, listener, source) for _ in range(count)]
    results = [answered(s) for s in socks]
    return socks, results


def close_all(socks):
    for s in socks:
        s.close()
    time.sleep(0.3)  # the broker sees the closes and frees the slots


def test_per_ip_limit_and_its_override(limited):
    socks, results = refused_and_served(limited, 15, "127.0.0.1")
    assert results == [True] * 10 + [False] * 5
    more, results = refused_and_served(limited, 30, "127.0.0.2")  # max.connections.per.ip.overrides=127.0.0.2:25
    assert results == [True] * 25 + [False] * 5
    close_all(socks + more)
    again, results = refused_and_served(limited, 1, "127.0.0.1")
    assert results == [True]
    close_all(again)


def test_max_connections(limited):
    socks = []
    results = []
    for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"):
        s, r = refused_and_served(limited, 9, source)
        socks += s
        results += r
    assert results == [True] * 40 + [False] * 5  # max.connections=40, every address under its own limit
    probe, served = refused_and_served(limited, 1, "127.0.0.9")
    assert served == [False]  # full: a new client is refused at once, not left waiting
    close_all(socks + probe)
    assert probe_ms(limited) < 1000


def test_listener_limit(limited):
    socks = [connect(limited, "SSL", "127.0.0.8") for _ in range(5)]
    states = []
    for s in socks:
        s.settimeout(0.5)
        try:
            states.append("closed" if s.recv(1) == b"" else "data")
        except socket.timeout:
            states.append("open")  # waiting for our ClientHello
        except OSError:
            states.append("closed")
    assert states == ["open"] * 3 + ["closed"] * 2  # listener.name.ssl.max.connections=3
    close_all(socks)


def test_refusals_are_counted_in_rate_limited_lines(limited):
    assert wait_for_limit_count(limited, "new connections refused at max.connections.per.ip", 10) == 10
    assert wait_for_limit_count(limited, "new connections refused at max.connections ", 6) == 6
    assert wait_for_limit_count(limited, "new connections refused at listener.name.<listener>.max.connections",
                                2) == 2
    assert limited.alive()
