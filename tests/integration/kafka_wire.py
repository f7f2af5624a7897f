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


def sasl_plain_login(sock, user, password):
    """SaslHandshake v1 (PLAIN) and SaslAuthenticate v1 on a fresh connection."""
    sock.sendall(request(17, 1, 1, string("PLAIN")))
    assert struct.unpack_from(">ih", read_frame(sock)) == (1, 0)
    token = b"\0" + user.encode() + b"\0" + password.encode()
    sock.sendall(request(36, 1, 2, struct.pack(">i", len(token)) + token))
    assert struct.unpack_from(">ih", read_frame(sock)) == (2, 0)


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


# ---- flexible versions (KIP-482): unsigned varints, compact strings and arrays, tagged fields -------

def uvarint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_int32s(values):
    """A compact nullable array of int32."""
    return uvarint(0) if values is None else uvarint(len(values) + 1) + b"".join(struct.pack(">i", v) for v in values)


def flexible_request(api_key, version, body, correlation_id=9):
    """A request with header v2 (client id, then no tagged fields) and its size prefix."""
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string("bulwark-test") + b"\0" + body
    return struct.pack(">i", len(payload)) + payload


class FlexReader:
    """Reads a flexible-version response body from `pos`."""

    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    def string(self):
        n = self.uvarint()
        if n == 0:
            return None
        s = self.data[self.pos:self.pos + n - 1].decode()
        self.pos += n - 1
        return s

    def array(self, item):
        return [item() for _ in range(self.uvarint() - 1)]

    def int32s(self):
        return self.array(lambda: self.take(">i"))

    def tags(self):
        """No tagged fields (what Bulwark sends)."""
        assert self.uvarint() == 0

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()

