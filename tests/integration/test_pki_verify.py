"""`bulwark pki verify` on certificates made the way users make them: the real `openssl` CLI (req, x509,
ca) and the real `keytool`, and on a PKI made by `bulwark pki` itself."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

BIN = os.environ.get("BULWARK_BIN", "bulwark")
PASSWORD = "changeit-123"

OPENSSL_CNF = """
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_int ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ broker ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:kafka-1, DNS:*.kafka.test, IP:127.0.0.1

[ server_only ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:kafka-1

[ no_san ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ip_as_dns ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:kafka-1, DNS:127.0.0.1

[ self_signed ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:selfie
"""

# A minimal `openssl ca` setup: the only way OpenSSL 3.0's CLI sets arbitrary start and end dates.
CA_CNF = """
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
"""


def run(*args, check=True, input=None):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=180, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def verify(*args):
    """Runs `bulwark pki verify` and returns (exit code, stdout + stderr)."""
    result = run(BIN, "pki", "verify", *args, check=False)
    # A crash shows up as a negative code (signal) or an abort message.
    assert result.returncode in (0, 1, 2), result
    assert "terminate called" not in result.stderr
    return result.returncode, result.stdout + result.stderr


def one_line(text):
    """Findings are single lines; join wrapped text for substring checks."""
    return " ".join(text.split())


class OpensslPki:
    """A root and an intermediate CA made with `openssl req` / `openssl x509`, and leaves signed by the
    intermediate."""

    def __init__(self, root: Path):
        self.root = root
        self.cnf = root / "openssl.cnf"
        self.cnf.write_text(OPENSSL_CNF)
        self.ca_key, self.ca = root / "root.key", root / "root.crt"
        run("openssl", "req", "-x509", "-config", self.cnf, "-extensions", "v3_ca", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.ca_key, "-out", self.ca,
            "-subj", "/O=Verify Test/CN=Test Root CA", "-days", "3650")
        self.int_key, self.int = root / "int.key", root / "int.crt"
        self.sign(self.csr("int", "/O=Verify Test/CN=Test Intermediate CA"), self.int, "v3_int", days=1825,
                  ca=self.ca, ca_key=self.ca_key)
        self.bundle = root / "ca-bundle.pem"
        self.bundle.write_text(self.int.read_text() + self.ca.read_text())

    def csr(self, name, subject, newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-256")):
        key, csr = self.root / f"{name}.key", self.root / f"{name}.csr"
        run("openssl", "req", "-new", "-config", self.cnf, "-newkey", *newkey, "-nodes", "-keyout", key,
            "-out", csr, "-subj", subject)
        return csr

    def sign(self, csr, out, extensions, days=365, md="-sha256", ca=None, ca_key=None):
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca or self.int, "-CAkey", ca_key or self.int_key,
            "-CAcreateserial", "-days", days, md, "-extfile", self.cnf, "-extensions", extensions, "-out", out)
        return out

    def leaf(self, name, extensions="broker", cn="kafka-1", **kw):
        newkey = kw.pop("newkey", ("ec", "-pkeyopt", "ec_paramgen_curve:P-256"))
        cert = self.sign(self.csr(name, f"/O=Verify Test/CN={cn}", newkey), self.root / f"{name}.crt", extensions,
                         **kw)
        chain = self.root / f"{name}-chain.pem"
        chain.write_text(cert.read_text() + self.int.read_text())
        return chain

    def key(self, name):
        return self.root / f"{name}.key"


@pytest.fixture(scope="module")
def ossl(tmp_path_factory):
    return OpensslPki(tmp_path_factory.mktemp("openssl-pki"))


def test_good_chain_passes(ossl):
    chain = ossl.leaf("good")
    code, out = verify(chain, "--ca", ossl.ca, "--key", ossl.key("good"), "--host", "kafka-1",
                       "--host", "127.0.0.1", "--host", "b2.kafka.test", "--purpose", "server")
    assert code == 0, out
    assert "ERROR" not in out and "WARNING" not in out, out
    text = one_line(out)
    assert "the chain verifies: CN=kafka-1,O=Verify Test -> CN=Test Intermediate CA,O=Verify Test -> " \
           "CN=Test Root CA,O=Verify Test" in text
    assert "127.0.0.1 matches the IP SAN" in text
    assert "b2.kafka.test matches the DNS SAN *.kafka.test" in text
    assert "the private key belongs to the certificate" in text
    assert "PASSED: 0 errors, 0 warnings" in text


def test_key_and_chain_in_one_pem_and_der(ossl, tmp_path):
    chain = ossl.leaf("combined")
    combined = tmp_path / "combined.pem"
    # Root first, key in the middle: the leaf is found anyway.
    combined.write_text(ossl.ca.read_text() + ossl.key("combined").read_text() + chain.read_text())
    code, out = verify(combined, "--ca", ossl.ca, "--host", "kafka-1")
    assert code == 0, out
    assert "the private key belongs to the certificate" in one_line(out)

    der = tmp_path / "root.der"
    run("openssl", "x509", "-in", ossl.ca, "-outform", "DER", "-out", der)
    code, out = verify(der, "--ca", ossl.ca)
    assert "(DER)" in out
    assert code == 0, out
    assert "a CA certificate: it may sign certificates" in one_line(out)

    # A CA file on its own is checked as a CA: the intermediate against the root.
    code, out = verify(ossl.int, "--ca", ossl.ca, "--host", "kafka-1")
    assert code == 0, out
    text = one_line(out)
    assert "the chain verifies: CN=Test Intermediate CA,O=Verify Test -> CN=Test Root CA,O=Verify Test" in text
    assert "host names were not checked" in text
    code, out = verify(ossl.int, "--ca", ossl.int)
    assert code == 0, out  # trusted directly; the warning says OpenSSL clients also need the root
    assert "Java clients accept such a bundle" in one_line(out)


def test_missing_host_and_wildcard_depth(ossl):
    chain = ossl.leaf("hosts")
    code, out = verify(chain, "--ca", ossl.ca, "--host", "10.0.0.9", "--host", "a.b.kafka.test")
    assert code == 1, out
    text = one_line(out)
    assert "the certificate has no SAN for 10.0.0.9; clients that verify host names will refuse it" in text
    assert "the certificate has no SAN for a.b.kafka.test" in text


def test_ip_only_as_dns_name(ossl):
    chain = ossl.leaf("ipdns", extensions="ip_as_dns")
    code, out = verify(chain, "--ca", ossl.ca, "--host", "127.0.0.1")
    assert code == 1, out
    assert ("the certificate lists 127.0.0.1 as a DNS name, not as an IP address; clients that verify host "
            "names will refuse it") in one_line(out)


def test_no_san_but_cn_matches(ossl):
    chain = ossl.leaf("nosan", extensions="no_san")
    code, out = verify(chain, "--ca", ossl.ca, "--host", "kafka-1")
    assert code == 0, out  # Java and OpenSSL clients still fall back to the CN: a warning
    assert "WARNING" in out
    assert "modern clients ignore the CN" in one_line(out)
    code, out = verify(chain, "--ca", ossl.ca, "--host", "127.0.0.1")
    assert code == 1
    assert "the certificate has no SAN for 127.0.0.1" in one_line(out)


def test_missing_intermediate(ossl, tmp_path):
    ossl.leaf("leafonly")
    code, out = verify(ossl.root / "leafonly.crt", "--ca", ossl.ca, "--dir", tmp_path / "none")
    assert code == 1, out
    text = one_line(out)
    assert "the chain is missing the intermediate CA CN=Test Intermediate CA,O=Verify Test" in text
    assert "serve the full chain" in text
    # With a bundle that carries the intermediate, the same file verifies.
    code, out = verify(ossl.root / "leafonly.crt", "--ca", ossl.bundle)
    assert code == 0, out


def test_untrusted_issuer(ossl, tmp_path):
    other = OpensslPki(tmp_path)
    chain = other.leaf("foreign")
    full = tmp_path / "foreign-full.pem"
    full.write_text(chain.read_text() + other.ca.read_text())
    code, out = verify(full, "--ca", ossl.ca)
    assert code == 1, out
    assert "signed by a CA that is not in the trust bundle (issuer: CN=Test Root CA,O=Verify Test)" in one_line(out)
    # Same names, different keys: the tool says the CA was re-created rather than "unknown".
    assert "different key" in one_line(out)


def test_self_signed(ossl, tmp_path):
    key, cert = tmp_path / "self.key", tmp_path / "self.crt"
    run("openssl", "req", "-x509", "-config", ossl.cnf, "-extensions", "self_signed", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=selfie",
        "-days", "20")
    code, out = verify(cert, "--ca", ossl.ca, "--host", "selfie")
    assert code == 1, out
    assert "self-signed certificate not in the trust bundle (subject: CN=selfie)" in one_line(out)
    code, out = verify(cert, "--ca", cert, "--host", "selfie", "--key", key)
    assert code == 0, out
    assert "expires soon" in one_line(out)  # 20 days: inside the 30-day warning window


def test_expired_and_not_yet_valid_via_openssl_ca(ossl, tmp_path):
    cadir = tmp_path / "ca"
    (cadir / "newcerts").mkdir(parents=True)
    (cadir / "index.txt").write_text("")
    (cadir / "serial").write_text("1000\n")
    ca_cnf = tmp_path / "ca.cnf"
    ca_cnf.write_text(CA_CNF.format(dir=cadir) + OPENSSL_CNF)
    csr = ossl.csr("expired", "/CN=kafka-1")
    expired = tmp_path / "expired.crt"
    run("openssl", "ca", "-batch", "-config", ca_cnf, "-cert", ossl.int, "-keyfile", ossl.int_key, "-in", csr,
        "-out", expired, "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-extensions", "broker",
        "-notext")
    future = tmp_path / "future.crt"
    run("openssl", "ca", "-batch", "-config", ca_cnf, "-cert", ossl.int, "-keyfile", ossl.int_key, "-in", csr,
        "-out", future, "-startdate", "20991201000000Z", "-enddate", "20991231000000Z", "-extensions", "broker",
        "-notext")
    for cert in (expired, future):
        cert.write_text(cert.read_text() + ossl.int.read_text())

    code, out = verify(expired, "--ca", ossl.ca, "--host", "kafka-1")
    assert code == 1, out
    text = one_line(out)
    assert "the certificate expired on 2021-01-01 00:00 UTC" in text
    assert "days ago" in text
    assert "the chain verifies" in text  # the chain itself is fine; only the dates are wrong

    code, out = verify(future, "--ca", ossl.ca)
    assert code == 1, out
    assert "the certificate is not yet valid: it becomes valid on 2099-12-01 00:00 UTC" in one_line(out)

    # --at moves the clock: inside the leaf's window its dates are fine, but the CAs did not exist yet.
    code, out = verify(expired, "--ca", ossl.ca, "--at", "2020-06-01")
    assert code == 1, out
    text = one_line(out)
    assert "valid from 2020-01-01 00:00 UTC to 2021-01-01 00:00 UTC (214 days left)" in text
    assert "the CA CN=Test Intermediate CA,O=Verify Test in the chain is not valid until" in text
    # And a good chain checked two years ahead has expired.
    code, out = verify(ossl.leaf("later"), "--ca", ossl.ca, "--at", "@%d" % (time.time() + 730 * 86400))
    assert code == 1, out
    assert "the certificate expired on" in one_line(out)


def test_rsa_1024(ossl):
    chain = ossl.leaf("rsa1024", newkey=("rsa:1024",))
    code, out = verify(chain, "--ca", ossl.ca, "--host", "kafka-1")
    assert code == 1, out
    assert "the certificate has a 1024-bit RSA key; use at least 2048 bits" in one_line(out)


def test_sha1_signature(ossl):
    chain = ossl.leaf("sha1", md="-sha1")
    code, out = verify(chain, "--ca", ossl.ca, "--host", "kafka-1")
    assert code == 1, out
    assert "the certificate is signed with SHA-1" in one_line(out)


def test_wrong_key(ossl):
    chain = ossl.leaf("wrongkey")
    ossl.leaf("otherkey")
    code, out = verify(chain, "--ca", ossl.ca, "--key", ossl.key("otherkey"))
    assert code == 1, out
    assert "the private key does not belong to the certificate" in one_line(out)


def test_purpose(ossl):
    chain = ossl.leaf("serveronly", extensions="server_only")
    code, out = verify(chain, "--ca", ossl.ca, "--purpose", "client")
    assert code == 1, out
    assert "lacks clientAuth" in one_line(out)
    code, out = verify(chain, "--ca", ossl.ca)
    assert code == 0, out
    assert "brokers are clients of each other" in one_line(out)
    code, out = verify(chain, "--ca", ossl.ca, "--purpose", "server", "--host", "kafka-1")
    assert code == 0, out
    assert "WARNING" not in out


def test_encrypted_key_and_password_file(ossl, tmp_path):
    chain = ossl.leaf("enc")
    enc = tmp_path / "enc.key"
    run("openssl", "pkcs8", "-topk8", "-in", ossl.key("enc"), "-out", enc, "-v2", "aes-256-cbc",
        "-passout", f"pass:{PASSWORD}")
    code, out = verify(chain, "--ca", ossl.ca, "--key", enc)
    assert code == 2
    assert "encrypted" in out and "--password" in out
    code, out = verify(chain, "--ca", ossl.ca, "--key", enc, "--password", "not-the-password")
    assert code == 2
    assert "wrong password" in out
    assert "not-the-password" not in out
    pwfile = tmp_path / "pw.txt"
    pwfile.write_text(PASSWORD + "\n")
    code, out = verify(chain, "--ca", ossl.ca, "--key", enc, "--password-file", pwfile)
    assert code == 0, out
    assert PASSWORD not in out


def test_usage_problems_exit_2(ossl, tmp_path):
    code, out = verify(tmp_path / "missing.pem", "--ca", ossl.ca)
    assert code == 2 and "does not exist" in out
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    code, out = verify(garbage, "--ca", ossl.ca)
    assert code == 2 and "not a certificate" in out
    code, out = verify(ossl.ca, "--ca", tmp_path / "missing-ca.pem")
    assert code == 2 and "missing-ca.pem does not exist" in out
    code, out = verify(ossl.ca, "--ca", ossl.ca, "--purpose", "broker")
    assert code == 2 and "unknown purpose" in out
    code, out = verify(ossl.ca, "--ca", ossl.ca, "--at", "next tuesday")
    assert code == 2 and "cannot read the time" in out
    code, out = verify("--ca", ossl.ca)
    assert code == 2 and "CERT" in out
    code, out = verify(ossl.ca, "--password", "x" * 8, "--password-file", ossl.ca)
    assert code == 2 and "not both" in out
    code, out = verify(tmp_path, "--ca", ossl.ca)
    assert code == 2 and "is a directory" in out
    code, out = verify("/dev/zero", "--ca", ossl.ca)
    assert code == 2 and "not a regular file" in out


def test_no_trust_anchors(ossl, tmp_path):
    chain = ossl.leaf("noanchors")
    code, out = verify(chain, "--dir", tmp_path / "no-pki")
    assert code == 1, out
    assert "Trust anchors: none" in out
    assert "there are no trust anchors" in one_line(out)


# ---- keytool -------------------------------------------------------------------------------------

def keytool(*args):
    return run("keytool", *args)


needs_keytool = pytest.mark.skipif(shutil.which("keytool") is None, reason="keytool is not installed")


@needs_keytool
@pytest.mark.parametrize("storetype", ["JKS", "PKCS12"])
def test_keytool_keystore_signed_by_the_ca(ossl, tmp_path, storetype):
    store = tmp_path / f"kafka.{storetype.lower()}"
    common = ["-keystore", store, "-storetype", storetype, "-storepass", PASSWORD]
    keytool("-genkeypair", "-alias", "kafka-1", "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "365",
            "-dname", "CN=kafka-1", "-ext", "SAN=dns:kafka-1,ip:127.0.0.1", "-keypass", PASSWORD, *common)
    csr, signed = tmp_path / "kafka.csr", tmp_path / "kafka.crt"
    keytool("-certreq", "-alias", "kafka-1", "-file", csr, "-ext", "SAN=dns:kafka-1,ip:127.0.0.1", *common)
    ossl.sign(csr, signed, "broker")
    keytool("-importcert", "-noprompt", "-alias", "caroot", "-file", ossl.ca, *common)
    keytool("-importcert", "-noprompt", "-alias", "intermediate", "-file", ossl.int, *common)
    keytool("-importcert", "-noprompt", "-alias", "kafka-1", "-file", signed, *common)

    code, out = verify(store, "--password", PASSWORD, "--ca", ossl.ca, "--host", "kafka-1", "--host", "127.0.0.1")
    assert code == 0, out
    text = one_line(out)
    assert f"({storetype})" in out
    assert "Key entry 'kafka-1'" in text
    assert "the chain verifies" in text
    assert "the private key belongs to the certificate" in text
    assert "Trusted entry 'caroot'" in text

    code, out = verify(store, "--password", "wrong-password", "--ca", ossl.ca)
    assert code == 2, out
    assert "password" in out.lower()
    code, out = verify(store, "--ca", ossl.ca)
    assert code == 2, out
    assert "--password" in out


@needs_keytool
def test_keytool_self_signed_keypair(ossl, tmp_path):
    store = tmp_path / "self.jks"
    keytool("-genkeypair", "-alias", "lonely", "-keyalg", "RSA", "-keysize", "2048", "-validity", "365",
            "-dname", "CN=lonely", "-storetype", "JKS", "-keystore", store, "-storepass", PASSWORD,
            "-keypass", PASSWORD)
    code, out = verify(store, "--password", PASSWORD, "--ca", ossl.ca, "--host", "lonely")
    assert code == 1, out
    text = one_line(out)
    assert "self-signed certificate not in the trust bundle (subject: CN=lonely)" in text
    assert "modern clients ignore the CN" in text


@needs_keytool
@pytest.mark.parametrize("storetype", ["JKS", "PKCS12"])
def test_keytool_truststore(ossl, tmp_path, storetype):
    trust = tmp_path / f"trust.{storetype.lower()}"
    keytool("-importcert", "-noprompt", "-alias", "caroot", "-file", ossl.ca, "-keystore", trust,
            "-storetype", storetype, "-storepass", PASSWORD)
    # The truststore itself: its entries are listed and checked.
    code, out = verify(trust, "--password", PASSWORD, "--ca", ossl.ca)
    assert code == 0, out
    text = one_line(out)
    assert "Trusted entry 'caroot'" in text
    assert "CA certificate CN=Test Root CA,O=Verify Test" in text
    # The truststore as the trust anchors for a PEM chain.
    chain = ossl.leaf(f"via-{storetype}")
    code, out = verify(chain, "--ca", trust, "--password", PASSWORD, "--host", "kafka-1")
    assert code == 0, out
    # A keystore without trusted entries is not a truststore.
    code, out = verify(chain, "--ca", trust, "--password", "wrong-password")
    assert code == 2, out


# ---- bulwark pki ---------------------------------------------------------------------------------

def bulwark_pki_available():
    try:
        return run(BIN, "pki", "init", "--help", check=False).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(not bulwark_pki_available(), reason="`bulwark pki init` is not available in this binary yet")
def test_chain_issued_by_bulwark_pki(tmp_path):
    d = tmp_path / "pki"
    run(BIN, "pki", "init", "--dir", d)
    run(BIN, "pki", "issue", "broker", "kafka-1", "--dns", "kafka-1", "--ip", "127.0.0.1", "--dir", d)
    run(BIN, "pki", "issue", "client", "admin-1", "--dir", d)
    issued = d / "issued" / "kafka-1"

    # Default anchors: the PKI directory's root.
    code, out = verify(issued / "chain.pem", "--dir", d, "--key", issued / "key.pem", "--host", "kafka-1",
                       "--host", "127.0.0.1", "--purpose", "server")
    assert code == 0, out
    assert "WARNING" not in out, out
    assert f"Trust anchors: {d / 'ca' / 'root.crt'}" in out

    # With the bundle a client would get.
    code, out = verify(issued / "chain.pem", "--ca", d / "ca" / "ca-bundle.pem", "--host", "kafka-1")
    assert code == 0, out

    # By name, with its key from the directory.
    code, out = verify("kafka-1", "--dir", d, "--host", "kafka-1")
    assert code == 0, out
    assert "the private key belongs to the certificate" in one_line(out)

    # cert.pem alone verifies only thanks to the directory's intermediate: a warning to serve the chain.
    code, out = verify(issued / "cert.pem", "--dir", d)
    assert code == 0, out
    assert "does not include the intermediate CA" in one_line(out)
    # Against the root alone, it is missing the intermediate.
    code, out = verify(issued / "cert.pem", "--ca", d / "ca" / "root.crt", "--dir", d)
    assert code == 1, out
    assert "the chain is missing the intermediate CA" in one_line(out)

    # A client certificate is for clients only.
    client = d / "issued" / "admin-1" / "chain.pem"
    code, out = verify(client, "--dir", d, "--purpose", "client")
    assert code == 0, out
    code, out = verify(client, "--dir", d, "--purpose", "server")
    assert code == 1, out
    assert "lacks serverAuth" in one_line(out)

    # Another PKI's CA does not trust it.
    other = tmp_path / "other"
    run(BIN, "pki", "init", "--dir", other)
    code, out = verify(issued / "chain.pem", "--dir", other)
    assert code == 1, out
    assert "different key" in one_line(out) or "not in the trust bundle" in one_line(out)


@pytest.mark.skipif(not bulwark_pki_available(), reason="`bulwark pki init` is not available in this binary yet")
@needs_keytool
def test_keystores_exported_by_bulwark_pki(tmp_path):
    d = tmp_path / "pki"
    run(BIN, "pki", "init", "--dir", d)
    run(BIN, "pki", "issue", "broker", "kafka-1", "--dns", "kafka-1", "--ip", "127.0.0.1", "--dir", d)
    for fmt in ("jks", "pkcs12"):
        out_dir = tmp_path / f"export-{fmt}"
        run(BIN, "pki", "export", "kafka-1", "--format", fmt, "--password", PASSWORD, "--dir", d, "--out", out_dir)
        stores = sorted(p for p in out_dir.iterdir() if p.suffix in (".jks", ".p12", ".pfx"))
        assert stores, list(out_dir.iterdir())
        for store in stores:
            code, out = verify(store, "--password", PASSWORD, "--dir", d, "--host", "kafka-1", "--host",
                               "127.0.0.1")
            assert code == 0, out


def test_seed_002_v1_root_is_a_legal_anchor_and_a_leaf_outliving_it_is_warned(tmp_path):
    """Seed 002's recipe: `openssl req -new -x509` with a config whose extensions are only in [v3_req]
    makes an X.509 v1 root without extensions; its leaves are signed with `openssl x509 -req` for longer
    than the root lives."""
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text("[req]\ndefault_bits = 2048\nencrypt_key = no\ndefault_md = sha256\nprompt = no\n"
                   "distinguished_name = dn\nreq_extensions = v3_req\n[dn]\nC = KR\nO = Organization\n"
                   "CN = Kafka-Security-CA\n[v3_req]\nbasicConstraints = CA:TRUE\n")
    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.crt"
    run("openssl", "req", "-new", "-x509", "-keyout", ca_key, "-out", ca, "-days", "100", "-config", cnf)
    assert "Version: 1 (0x0)" in run("openssl", "x509", "-in", ca, "-noout", "-text").stdout
    code, out = verify(ca, "--ca", ca)
    assert code == 0, out
    assert "WARNING" not in out, out  # not "no SAN", not "not a CA"
    assert "X.509 v1 self-signed root" in one_line(out)

    key, csr, leaf, ext = (tmp_path / n for n in ("leaf.key", "leaf.csr", "leaf.crt", "ext.cnf"))
    ext.write_text("subjectAltName = DNS:kafka-1\nextendedKeyUsage = serverAuth, clientAuth\n")
    run("openssl", "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", key, "-out", csr, "-subj", "/CN=kafka-1")
    run("openssl", "x509", "-req", "-CA", ca, "-CAkey", ca_key, "-in", csr, "-out", leaf, "-days", "365",
        "-CAcreateserial", "-extfile", ext)
    code, out = verify(leaf, "--ca", ca, "--host", "kafka-1")
    assert code == 0, out
    assert "but the trusted CA CN=Kafka-Security-CA,O=Organization,C=KR expires on" in one_line(out), out
    run("openssl", "x509", "-req", "-CA", ca, "-CAkey", ca_key, "-in", csr, "-out", leaf, "-days", "30",
        "-CAcreateserial", "-extfile", ext)
    code, out = verify(leaf, "--ca", ca, "--host", "kafka-1")
    assert code == 0 and "but the trusted CA" not in one_line(out), out
