"""Hand-built Kafka requests for tests that must send what no well-behaved client sends."""
import socket
import ssl
import struct


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(api_key, version, correlation_id, body, client_id="bulwark-test"):
    """A non-flexible request (header v1) with its 4-byte size prefix."""
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id) + body
    return struct.pack(">i", len(payload)) + payload


def produce_v3(topic, partition, records, acks=1):
    body = string(None) + struct.pack(">hi", acks, 10000)
    body += struct.pack(">i", 1) + string(topic) + struct.pack(">i", 1)
    body += struct.pack(">i", partition) + struct.pack(">i", len(records)) + records
    return body


def parse_produce_v3_response(payload):
    """(error_code, base_offset) of the single partition in a Produce v3 response body."""
    pos = 4  # correlation id
    (n_topics,) = struct.unpack_from(">i", payload, pos); pos += 4
    (name_len,) = struct.unpack_from(">h", payload, pos); pos += 2 + name_len
    (n_parts,) = struct.unpack_from(">i", payload, pos); pos += 4
    _, error, base = struct.unpack_from(">ihq", payload, pos)
    return error, base


def read_frame(sock, timeout=10):
    sock.settimeout(timeout)
    header = recv_exactly(sock, 4)
    if header is None:
        return None
    (size,) = struct.unpack(">i", header)
    return recv_exactly(sock, size)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def closed_by_peer(sock, timeout=10):
    """True when the peer closes the connection (EOF or reset) within the timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True
    except socket.timeout:
        return False


def record_batch(values, codec=0):
    """A record batch v2 built by kafka-python's own builder."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i, v in enumerate(values):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=None, value=v, headers=[])
    return bytes(builder.build())
