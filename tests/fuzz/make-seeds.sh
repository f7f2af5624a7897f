#!/usr/bin/env bash
# Regenerates the committed seed corpora in tests/fuzz/corpus/<target>/ with real tools: openssl and
# keytool for keystores and CSRs, the SCRAM arithmetic (Python's hashlib, RFC 5802) for valid SASL
# exchanges, the properties files the integration tests use, and the round-trip test's framed requests.
# Seeds are inputs to start from, not expected outputs; re-running changes keys and salts, which is fine.
# Usage: tests/fuzz/make-seeds.sh [build dir with wire_test (default build)]
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
build=${1:-../../build}
corpus=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=changeit

fresh() { rm -rf "${corpus:?}/$1"; mkdir -p "$corpus/$1"; echo "$corpus/$1"; }

# ---- keystores: JKS, PKCS12 (keytool modern, openssl legacy), PEM -----------------------------------
(
  cd "$tmp"
  openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
    -days 3650 -subj "/CN=fuzz-ca/O=Bulwark" 2>/dev/null
  keytool -genkeypair -alias broker -keyalg EC -groupname secp256r1 -dname "CN=kafka-1, OU=DevOps, O=SLS, C=IR" \
    -ext SAN=DNS:localhost,IP:127.0.0.1 -keystore broker.jks -storetype JKS -storepass $pass -keypass $pass 2>/dev/null
  keytool -certreq -alias broker -keystore broker.jks -storepass $pass -file broker.csr 2>/dev/null
  openssl x509 -req -CA ca.crt -CAkey ca.key -in broker.csr -out broker.crt -days 3650 -CAcreateserial \
    -copy_extensions copy 2>/dev/null
  keytool -importcert -noprompt -alias caroot -file ca.crt -keystore broker.jks -storepass $pass 2>/dev/null
  keytool -importcert -noprompt -alias broker -file broker.crt -keystore broker.jks -storepass $pass 2>/dev/null
  keytool -importcert -noprompt -alias caroot -file ca.crt -keystore trust.jks -storetype JKS -storepass $pass 2>/dev/null
  keytool -importkeystore -noprompt -srckeystore broker.jks -srcstorepass $pass -destkeystore broker.p12 \
    -deststoretype PKCS12 -deststorepass $pass 2>/dev/null
  keytool -importcert -noprompt -alias caroot -file ca.crt -keystore trust.p12 -storetype PKCS12 -storepass $pass 2>/dev/null
  openssl pkcs12 -in broker.p12 -passin pass:$pass -nodes -nocerts -out broker.key 2>/dev/null
  openssl pkcs12 -export -legacy -inkey broker.key -in broker.crt -certfile ca.crt -passout pass:$pass \
    -out legacy.p12 2>/dev/null
  openssl pkcs12 -export -inkey broker.key -in broker.crt -certfile ca.crt -passout pass:$pass -out openssl.p12 2>/dev/null
  openssl pkcs8 -topk8 -in broker.key -passout pass:$pass -out broker-enc.key 2>/dev/null
  openssl genrsa 2048 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out rsa.key
  openssl req -new -key rsa.key -subj "/CN=client-1/OU=DevOps/O=SLS" \
    -addext "subjectAltName=DNS:client-1.example,DNS:*.kafka.local,IP:::1,IP:10.0.0.7" -out rsa.csr
  openssl req -new -key broker.key -subj "/CN=kafka-2" -outform DER -out ec.csr.der
  openssl genpkey -algorithm ed25519 -out ed.key
  openssl req -new -key ed.key -subj "/CN=ed-node/O=SLS" -addext "subjectAltName=DNS:ed-node" -out ed.csr
)
d=$(fresh fuzz_keystore_jks); cp "$tmp"/broker.jks "$tmp"/trust.jks "$d"/
d=$(fresh fuzz_keystore_pkcs12); cp "$tmp"/broker.p12 "$tmp"/trust.p12 "$tmp"/legacy.p12 "$tmp"/openssl.p12 "$d"/
d=$(fresh fuzz_keystore_pem)
cat "$tmp"/broker.key "$tmp"/broker.crt "$tmp"/ca.crt >"$d"/keystore.pem
cat "$tmp"/broker-enc.key "$tmp"/broker.crt >"$d"/keystore-encrypted.pem
cp "$tmp"/ca.crt "$d"/truststore.pem
d=$(fresh fuzz_csr)
cp "$tmp"/broker.csr "$d"/keytool.csr; cp "$tmp"/rsa.csr "$d"/openssl-rsa-sans.csr
cp "$tmp"/ec.csr.der "$d"/ec.csr.der; cp "$tmp"/ed.csr "$d"/ed25519.csr

# ---- SASL, SCRAM, JAAS, principals, consumer protocol ---------------------------------------------
python3 - "$corpus" <<'PY'
import base64, hashlib, hmac, json, os, struct, sys
corpus = sys.argv[1]
def put(target, name, data):
    d = os.path.join(corpus, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f: f.write(data if isinstance(data, bytes) else data.encode())
def clear(target):
    d = os.path.join(corpus, target); os.makedirs(d, exist_ok=True)
    for f in os.listdir(d): os.remove(os.path.join(d, f))

for t in ["fuzz_sasl_plain", "fuzz_scram_server", "fuzz_scram_client", "fuzz_scram_config", "fuzz_sasl_jaas",
          "fuzz_principal_rules", "fuzz_consumer_protocol"]:
    clear(t)

put("fuzz_sasl_plain", "plain", b"\0alice\0alice-secret")
put("fuzz_sasl_plain", "plain-authzid", b"alice\0alice\0alice-secret")
put("fuzz_sasl_plain", "plain-other-authzid", b"bob\0alice\0pw")
put("fuzz_sasl_plain", "mechanism", b"SCRAM-SHA-512")

# RFC 5802 with the targets' fixed nonces, salt and password (fuzz_scram_server.cpp / _client.cpp).
salt, password, iterations = b"fuzz-salt", b"alice-secret", 4096
def exchange(algo, user, client_nonce, server_nonce):
    salted = hashlib.pbkdf2_hmac(algo, password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", algo).digest()
    stored_key = hashlib.new(algo, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", algo).digest()
    first_bare = f"n={user},r={client_nonce}"
    nonce = client_nonce + server_nonce
    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={iterations}"
    final_bare = f"c=biws,r={nonce}"
    auth = f"{first_bare},{server_first},{final_bare}".encode()
    sig = hmac.new(stored_key, auth, algo).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    client_final = f"{final_bare},p={base64.b64encode(proof).decode()}"
    server_final = "v=" + base64.b64encode(hmac.new(server_key, auth, algo).digest()).decode()
    return "n,," + first_bare, server_first, client_final, server_final, (stored_key, server_key)
creds = {}
for flag, algo, mech in [(0, "sha256", "SCRAM-SHA-256"), (1, "sha512", "SCRAM-SHA-512")]:
    cf, sf, cfin, sfin, _ = exchange(algo, "alice", "clientnonce42", "fuzzservernonce")
    put("fuzz_scram_server", f"{algo}-login", bytes([flag]) + f"{cf}\0{cfin}".encode())
    put("fuzz_scram_server", f"{algo}-authzid", bytes([flag]) + f"n,a=alice,{cf[3:]}\0{cfin}".encode())
    put("fuzz_scram_server", f"{algo}-unknown-user", bytes([flag]) + b"n,,n=mall=2Cory,r=abc\0c=biws,r=abc,p=AAAA")
    put("fuzz_scram_server", f"{algo}-tokenauth", bytes([flag]) + b"n,,n=alice,r=xyz,tokenauth=true")
    _, sf, cfin, sfin, keys = exchange(algo, "alice", "fuzzclientnonce", "servernonce99")
    put("fuzz_scram_client", f"{algo}-login", bytes([flag]) + f"{sf}\0{sfin}".encode())
    put("fuzz_scram_client", f"{algo}-error", bytes([flag]) + f"{sf}\0e=invalid-proof".encode())
    creds[mech] = {"salt": base64.b64encode(salt).decode(), "stored_key": base64.b64encode(keys[0]).decode(),
                   "server_key": base64.b64encode(keys[1]).decode(), "iterations": iterations}
put("fuzz_scram_config", "credentials.json", b"\0" + json.dumps({"version": 1, "users": {"alice": creds}}).encode())
put("fuzz_scram_config", "add-scram", b"\1SCRAM-SHA-256=[name=alice,password=alice-secret]")
put("fuzz_scram_config", "add-scram-iterations", b"\1SCRAM-SHA-512=[name=bob,iterations=4096,password=\"b,ob\"]")
put("fuzz_scram_config", "add-scram-salted", b"\1SCRAM-SHA-256=[name=carol,iterations=4096,salt=" +
    base64.b64encode(salt) + b",saltedpassword=" + base64.b64encode(hashlib.pbkdf2_hmac("sha256", password, salt, 4096)) + b"]")

put("fuzz_sasl_jaas", "plain", 'org.apache.kafka.common.security.plain.PlainLoginModule required '
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
put("fuzz_sasl_jaas", "scram", 'org.apache.kafka.common.security.scram.ScramLoginModule required username=alice password="a\\"b";')
put("fuzz_sasl_jaas", "optional", 'com.example.Module optional debug=true;')

put("fuzz_principal_rules", "kafka-doc", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
    "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT\0CN=kafka-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR")
put("fuzz_principal_rules", "upper", "RULE:(?i)^cn=([^,]+).*$/$1/U\0CN=alice,O=x")
put("fuzz_principal_rules", "default", "DEFAULT")
put("fuzz_principal_rules", "anonymous", "RULE:^(.*)$/x\\$1/\0")
put("fuzz_principal_rules", "principal", "User:alice")

def s16(v): b = v.encode(); return struct.pack(">h", len(b)) + b
def ns16(v): return struct.pack(">h", -1) if v is None else s16(v)
def b32(v): return struct.pack(">i", len(v)) + v
subscription = struct.pack(">hi", 1, 2) + s16("orders") + s16("payments") + b32(b"user-data") + struct.pack(">i", 0)
assignment = struct.pack(">hi", 1, 1) + s16("orders") + struct.pack(">iii", 2, 0, 1) + b32(b"")
put("fuzz_consumer_protocol", "subscription", b"\0" + subscription)
put("fuzz_consumer_protocol", "offset-key", b"\1" + struct.pack(">h", 1) + s16("group-1") + s16("orders") + struct.pack(">i", 3))
put("fuzz_consumer_protocol", "group-key", b"\1" + struct.pack(">h", 2) + s16("group-1"))
put("fuzz_consumer_protocol", "offset-value-v3", b"\2" + struct.pack(">hqi", 3, 42, 5) + s16("meta") + struct.pack(">q", 1700000000000))
put("fuzz_consumer_protocol", "offset-value-v1", b"\2" + struct.pack(">hq", 1, 42) + s16("") + struct.pack(">qq", 1700000000000, -1))
member = s16("consumer-1-uuid") + ns16("static-1") + s16("consumer-1") + s16("/127.0.0.1") + struct.pack(">ii", 300000, 45000) + b32(subscription) + b32(assignment)
put("fuzz_consumer_protocol", "group-value-v3", b"\3" + struct.pack(">h", 3) + s16("consumer") + struct.pack(">i", 7) + ns16("range") + ns16("consumer-1-uuid") + struct.pack(">q", 1700000000000) + struct.pack(">i", 1) + member)
PY

# ---- properties -------------------------------------------------------------------------------------
d=$(fresh fuzz_properties)
cp ../integration/seed-examples/kraft-node-1.properties "$d"/
printf 'listeners=PLAINTEXT://:9092,SSL://[::1]:9093\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL\ncontroller.quorum.voters=1@localhost:9094,2@[::1]:9095\n# comment\n! bang\nkey\\ with\\ spaces = value \\\n   continued\nunicode=\\u00e9\\t\n' >"$d"/escapes.properties
printf 'version=1\nnode.id=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\ndirectory.id=J8aAPcfLQt2bqs1JT_rMgQ\n' >"$d"/meta.properties

# ---- wire: framed requests of the newest version of every API (from the round-trip test) ------------
if [ -x "$build/tests/wire_test" ]; then
  d=$(fresh fuzz_request_decoder)
  BULWARK_FUZZ_SEEDS=$tmp/requests "$build/tests/wire_test" --gtest_filter='CodecRoundTrip.*Request*' >/dev/null
  # Keep one file per API key (the largest version), so the corpus stays small.
  python3 - "$tmp/requests" "$d" <<'PY'
import os, shutil, struct, sys
src, dst = sys.argv[1:]
lowest, highest = {}, {}
for f in sorted(os.listdir(src)):
    data = open(os.path.join(src, f), "rb").read()
    if len(data) < 4: continue
    key, version = struct.unpack(">hh", data[:4])  # request header: api key, api version
    if key not in lowest or version < lowest[key][0]: lowest[key] = (version, f)
    if key not in highest or version > highest[key][0]: highest[key] = (version, f)
for table in (lowest, highest):
    for version, f in table.values(): shutil.copy(os.path.join(src, f), os.path.join(dst, f))
PY
else
  echo "no $build/tests/wire_test: fuzz_request_decoder seeds left as they are" >&2
fi
# ---- legacy message sets: magic v0/v1 (Produce v0-v2), plain and in gzip wrappers -------------------
d=$(fresh fuzz_legacy_messages)
python3 - "$d" <<'PY'
import gzip, os, struct, sys, zlib
out = sys.argv[1]
def nbytes(b): return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b
def message(offset, magic, attributes, key, value, timestamp=1700000000000):
    body = struct.pack(">bb", magic, attributes) + (struct.pack(">q", timestamp) if magic else b"") + nbytes(key) + nbytes(value)
    return struct.pack(">qiI", offset, len(body) + 4, zlib.crc32(body)) + body
def put(name, data): open(os.path.join(out, name), "wb").write(data)
for magic in (0, 1):
    inner = message(0, magic, 0, b"k1", b"hello") + message(1, magic, 0, None, b"world")
    put(f"v{magic}", inner)
    put(f"v{magic}-gzip", message(1, magic, 1, None, gzip.compress(inner, mtime=0)))
    # Fuzz wrapper mode: byte 0 = magic | codec << 1, then the wrapper's value.
    put(f"v{magic}-wrapper-value", bytes([magic | 1 << 1]) + gzip.compress(inner, mtime=0))
put("v1-nested", message(0, 1, 1, None, gzip.compress(message(0, 1, 1, None, gzip.compress(message(0, 1, 0, None, b"x"))))))
PY
# ---- record batches: magic v2, uncompressed and with each codec Python has ----------------------------
d=$(fresh fuzz_record_batch)
python3 - "$d" <<'PY'
import gzip, os, struct, sys
out = sys.argv[1]
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8): crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
def varint(n):
    n = (n << 1) ^ (n >> 63); b = bytearray()
    while True:
        if n < 0x80: b.append(n); return bytes(b)
        b.append((n & 0x7F) | 0x80); n >>= 7
def record(i, key, value, headers=()):
    body = b"\0" + varint(i * 10) + varint(i)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers)) + b"".join(varint(len(k)) + k + varint(len(v)) + v for k, v in headers)
    return varint(len(body)) + body
def batch(codec, records, compress=lambda b: b, producer=(-1, -1, -1)):
    payload = compress(b"".join(records))
    after_crc = struct.pack(">hiqqqhii", codec, len(records) - 1, 1700000000000, 1700000000000 + 10 * (len(records) - 1),
                            producer[0], producer[1], producer[2], len(records)) + payload
    crc = crc32c(after_crc)
    rest = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(rest)) + rest
recs = [record(0, b"k0", b"hello"), record(1, None, b"world", [(b"h", b"v")]), record(2, b"k2", None)]
open(os.path.join(out, "none"), "wb").write(batch(0, recs))
open(os.path.join(out, "two-batches"), "wb").write(batch(0, recs[:1]) + batch(0, recs[1:], producer=(7, 0, 0)))
open(os.path.join(out, "gzip"), "wb").write(batch(1, recs, lambda b: gzip.compress(b, mtime=0)))
try:
    import lz4.frame
    open(os.path.join(out, "lz4"), "wb").write(batch(3, recs, lz4.frame.compress))
except ImportError: pass
try:
    import zstandard
    open(os.path.join(out, "zstd"), "wb").write(batch(4, recs, zstandard.ZstdCompressor().compress))
except ImportError: pass
PY
echo "seeds written under $corpus"
