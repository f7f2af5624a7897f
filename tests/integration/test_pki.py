"""`bulwark pki` against the real tools users check certificates with: openssl and keytool."""
import os
import re
import socket
import stat
import subprocess
import time

import pytest

BIN = os.environ.get("BULWARK_BIN", "bulwark")
KEY_TYPES = ["ec:p256", "ec:p384", "rsa:2048", "rsa:4096", "ed25519"]
PASSWORD = "secret-123"


def run(*args, check=True, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def pki(*args, check=True):
    return run(BIN, "pki", *args, check=check)


def fails(*args):
    """Runs a pki command that must fail; returns its message."""
    result = pki(*args, check=False)
    assert result.returncode != 0, f"pki {args} succeeded:\n{result.stdout}"
    assert "error:" in result.stderr
    # A crash would show up as a signal (negative code) or an abort message.
    assert result.returncode > 0 and "terminate called" not in result.stderr
    return result.stderr


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tree(path):
    """Every file under path with its contents, to check that a failed command changed nothing."""
    snapshot = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                snapshot[full] = f.read()
    return snapshot


def x509_text(path):
    return run("openssl", "x509", "-in", path, "-noout", "-text").stdout


def openssl_verify(pki_dir, leaf, *extra):
    return run("openssl", "verify", *extra, "-CAfile", pki_dir / "ca/root.crt",
               "-untrusted", pki_dir / "ca/intermediate.crt", leaf, check=False)


def keytool_list(store, password=PASSWORD):
    return run("keytool", "-list", "-v", "-keystore", store, "-storepass", password).stdout


def assert_key_entry(listing, alias, leaf_cn):
    assert f"Alias name: {alias}" in listing
    assert "Entry type: PrivateKeyEntry" in listing
    assert "Certificate chain length: 3" in listing
    owners = re.findall(r"^Owner: (.*)$", listing, re.M)
    assert len(owners) == 3, owners
    assert owners[0].startswith(f"CN={leaf_cn}")
    assert owners[1].startswith("CN=Bulwark Intermediate CA")
    assert owners[2].startswith("CN=Bulwark Root CA")


def assert_trust_entry(listing):
    assert "Your keystore contains 1 entry" in listing
    assert "Alias name: bulwark-root-ca" in listing
    assert "Entry type: trustedCertEntry" in listing
    assert re.search(r"^Owner: CN=Bulwark Root CA", listing, re.M)


@pytest.fixture
def ca(tmp_path):
    d = tmp_path / "pki"
    pki("init", "--dir", d, "--subject", "O=SLS,OU=DevOps,L=Tehran,C=IR")
    return d


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_key_type_gives_chains_openssl_accepts(tmp_path, key_type):
    d = tmp_path / "pki"
    out = pki("init", "--dir", d, "--key", key_type).stdout
    assert "Created root CA" in out and "Created intermediate CA" in out
    pki("issue", "broker", "kafka-1", "--dir", d, "--dns", "kafka-1", "--dns", "localhost",
        "--ip", "192.168.9.194", "--ip", "::1", "--key", key_type)
    pki("issue", "client", "admin-1", "--dir", d, "--key", key_type)
    for name in ("kafka-1", "admin-1"):
        leaf = d / "issued" / name / "cert.pem"
        result = openssl_verify(d, leaf)
        assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr
        assert mode(d / "issued" / name / "key.pem") == 0o600
        # chain.pem is leaf, intermediate, root
        chain = (d / "issued" / name / "chain.pem").read_text()
        assert chain.count("BEGIN CERTIFICATE") == 3
        assert chain.startswith(leaf.read_text())
    for key in ("root.key", "intermediate.key"):
        assert mode(d / "ca" / key) == 0o600

    broker = x509_text(d / "issued/kafka-1/cert.pem")
    assert "DNS:kafka-1" in broker and "DNS:localhost" in broker
    assert "IP Address:192.168.9.194" in broker and "IP Address:0:0:0:0:0:0:0:1" in broker
    assert re.search(r"Key Usage: critical\n\s+Digital Signature" + (", Key Encipherment" if key_type.startswith("rsa") else r"\n"), broker)
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in broker
    assert re.search(r"Basic Constraints: critical\n\s+CA:FALSE", broker)
    assert "Subject Key Identifier" in broker and "Authority Key Identifier" in broker
    assert re.search(r"Subject: .*CN = kafka-1", broker)
    assert re.search(r"Serial Number:\s*\n?\s*([0-9a-f]{2}:){15}[0-9a-f]{2}", broker)

    client = x509_text(d / "issued/admin-1/cert.pem")
    assert "TLS Web Client Authentication" in client
    assert "TLS Web Server Authentication" not in client

    root = x509_text(d / "ca/root.crt")
    assert re.search(r"Basic Constraints: critical\n\s+CA:TRUE, pathlen:1", root)
    assert re.search(r"Key Usage: critical\n\s+Certificate Sign, CRL Sign", root)
    assert "Subject: CN = Bulwark Root CA" in root
    intermediate = x509_text(d / "ca/intermediate.crt")
    assert re.search(r"Basic Constraints: critical\n\s+CA:TRUE, pathlen:0", intermediate)
    assert re.search(r"Key Usage: critical\n\s+Certificate Sign, CRL Sign", intermediate)
    assert "Subject Key Identifier" in intermediate and "Authority Key Identifier" in intermediate
    bundle = (d / "ca/ca-bundle.pem").read_text()
    assert bundle == (d / "ca/intermediate.crt").read_text() + (d / "ca/root.crt").read_text()


def test_subject_fields_and_principal(ca):
    pki("issue", "client", "admin-1", "--dir", ca)
    subject = run("openssl", "x509", "-in", ca / "issued/admin-1/cert.pem", "-noout", "-subject",
                  "-nameopt", "RFC2253").stdout
    assert subject.strip() == "subject=CN=admin-1,O=SLS,OU=DevOps,L=Tehran,C=IR"
    listing = pki("list", "--dir", ca).stdout
    assert "User:CN=admin-1,O=SLS,OU=DevOps,L=Tehran,C=IR" in listing


@pytest.mark.parametrize("fmt,ext,extra", [("jks", "jks", []), ("pkcs12", "p12", []), ("pkcs12", "p12", ["--legacy"])])
def test_keystores_open_in_keytool(ca, tmp_path, fmt, ext, extra):
    pki("issue", "broker", "kafka-1", "--dir", ca, "--dns", "kafka-1")
    pki("issue", "client", "client-1", "--dir", ca, "--key", "rsa:2048")
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    for name in ("kafka-1", "client-1"):
        out = pki("export", name, "--dir", ca, "--format", fmt, "--password-file", password_file, *extra).stdout
        assert PASSWORD not in out
        folder = ca / "export" / name
        keystore = folder / f"{name}.keystore.{ext}"
        truststore = folder / f"{name}.truststore.{ext}"
        assert mode(keystore) == 0o600
        assert_key_entry(keytool_list(keystore), name, name)
        assert_trust_entry(keytool_list(truststore))


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_key_type_exports_stores_keytool_opens(tmp_path, key_type):
    d = tmp_path / "pki"
    pki("init", "--dir", d, "--key", key_type)
    pki("issue", "broker", "kafka-1", "--dir", d, "--key", key_type, "--dns", "kafka-1")
    for fmt, ext in (("jks", "jks"), ("pkcs12", "p12")):
        out = tmp_path / fmt
        pki("export", "kafka-1", "--dir", d, "--format", fmt, "--password", PASSWORD, "--out", out)
        assert_key_entry(keytool_list(out / f"kafka-1.keystore.{ext}"), "kafka-1", "kafka-1")
        assert_trust_entry(keytool_list(out / f"kafka-1.truststore.{ext}"))


def test_pem_export(ca, tmp_path):
    pki("issue", "broker", "kafka-1", "--dir", ca, "--dns", "kafka-1")
    out = tmp_path / "out"
    pki("export", "kafka-1", "--dir", ca, "--format", "pem", "--out", out)
    assert mode(out / "kafka-1.key") == 0o600
    assert mode(out / "kafka-1.keystore.pem") == 0o600
    assert "BEGIN PRIVATE KEY" in (out / "kafka-1.key").read_text()
    assert (out / "ca.pem").read_text() == (ca / "ca/ca-bundle.pem").read_text()
    assert (out / "kafka-1.chain.pem").read_text().count("BEGIN CERTIFICATE") == 3
    result = run("openssl", "verify", "-CAfile", out / "ca.pem", out / "kafka-1.crt")
    assert ": OK" in result.stdout
    # The key belongs to the certificate.
    pub_from_key = run("openssl", "pkey", "-in", out / "kafka-1.key", "-pubout").stdout
    pub_from_cert = run("openssl", "x509", "-in", out / "kafka-1.crt", "-noout", "-pubkey").stdout
    assert pub_from_key == pub_from_cert
    # With a password the key is encrypted, and the password opens it.
    out2 = tmp_path / "out2"
    pki("export", "kafka-1", "--dir", ca, "--format", "pem", "--password", PASSWORD, "--out", out2)
    assert "BEGIN ENCRYPTED PRIVATE KEY" in (out2 / "kafka-1.key").read_text()
    run("openssl", "pkey", "-in", out2 / "kafka-1.key", "-passin", f"pass:{PASSWORD}", "-noout")
    # The Kafka PEM keystore (key + chain) uses the 3DES PBE Java 17 can decrypt.
    keystore_pem = (out2 / "kafka-1.keystore.pem").read_text()
    assert keystore_pem.count("BEGIN CERTIFICATE") == 3 and "BEGIN ENCRYPTED PRIVATE KEY" in keystore_pem
    key_block = keystore_pem[:keystore_pem.index("-----END ENCRYPTED PRIVATE KEY-----") + 35]
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in run("openssl", "asn1parse", input=key_block).stdout
    assert (run("openssl", "pkey", "-passin", f"pass:{PASSWORD}", "-pubout", input=key_block).stdout ==
            run("openssl", "x509", "-in", out2 / "kafka-1.crt", "-noout", "-pubkey").stdout)
    # Refuses to overwrite without --force, and replaces with it.
    assert "already exists" in fails("export", "kafka-1", "--dir", ca, "--format", "pem", "--out", out)
    pki("export", "kafka-1", "--dir", ca, "--format", "pem", "--out", out, "--force")


def keytool_csr(tmp_path, name, san):
    store = tmp_path / f"{name}.jks"
    run("keytool", "-genkeypair", "-alias", name, "-keyalg", "RSA", "-keysize", "2048",
        "-dname", f"CN={name}, OU=Ops, O=Elsewhere, C=DE", "-ext", f"SAN={san}",
        "-keystore", store, "-storetype", "JKS", "-storepass", PASSWORD, "-keypass", PASSWORD)
    csr = tmp_path / f"{name}.csr"
    run("keytool", "-certreq", "-alias", name, "-keystore", store, "-storepass", PASSWORD,
        "-ext", f"SAN={san}", "-file", csr)
    return store, csr


def test_csr_from_keytool_keeps_subject_and_sans(ca, tmp_path):
    store, csr = keytool_csr(tmp_path, "kafka-9", "dns:kafka-9.example,ip:10.1.2.3")
    assert "NEW CERTIFICATE REQUEST" in csr.read_text()
    out = pki("issue", "broker", "kafka-9", "--dir", ca, "--csr", csr, "--dns", "extra.example").stdout
    assert "signed from the CSR" in out
    cert = ca / "issued/kafka-9/cert.pem"
    text = x509_text(cert)
    assert "DNS:kafka-9.example" in text and "IP Address:10.1.2.3" in text and "DNS:extra.example" in text
    assert re.search(r"Subject: C = DE, O = Elsewhere, OU = Ops, CN = kafka-9", text)
    assert not (ca / "issued/kafka-9/key.pem").exists()
    assert openssl_verify(ca, cert).returncode == 0
    # The signed chain goes back into the keystore that made the CSR, as users do it.
    run("keytool", "-importcert", "-noprompt", "-alias", "kafka-9", "-file", ca / "issued/kafka-9/chain.pem",
        "-keystore", store, "-storepass", PASSWORD)
    listing = keytool_list(store)
    assert "Certificate chain length: 3" in listing
    # A DER CSR works as well.
    der = tmp_path / "kafka-9.der"
    run("openssl", "req", "-in", csr, "-outform", "DER", "-out", der)
    pki("issue", "broker", "kafka-9-der", "--dir", ca, "--csr", der)
    assert "IP Address:10.1.2.3" in x509_text(ca / "issued/kafka-9-der/cert.pem")


def test_csr_with_bad_signature_is_refused(ca, tmp_path):
    _, csr = keytool_csr(tmp_path, "kafka-8", "dns:kafka-8")
    der = tmp_path / "bad.der"
    run("openssl", "req", "-in", csr, "-outform", "DER", "-out", der)
    data = bytearray(der.read_bytes())
    data[-1] ^= 0x01  # last byte of the signature
    der.write_bytes(bytes(data))
    before = tree(ca)
    message = fails("issue", "broker", "kafka-8", "--dir", ca, "--csr", der)
    assert "bad signature" in message
    assert tree(ca) == before
    assert not (ca / "issued/kafka-8").exists()
    # Not a CSR at all
    junk = tmp_path / "junk.csr"
    junk.write_text("hello")
    assert "not a certificate signing request" in fails("issue", "broker", "kafka-8", "--dir", ca, "--csr", junk)


def test_root_key_out_moves_root_key(tmp_path):
    d = tmp_path / "pki"
    offline = tmp_path / "offline" / "root.key"
    offline.parent.mkdir()
    out = pki("init", "--dir", d, "--root-key-out", offline).stdout
    assert "offline" in out
    assert not (d / "ca/root.key").exists()
    assert mode(offline) == 0o600
    assert "PRIVATE KEY" in offline.read_text()
    # The key really is the root's.
    assert (run("openssl", "pkey", "-in", offline, "-pubout").stdout ==
            run("openssl", "x509", "-in", d / "ca/root.crt", "-noout", "-pubkey").stdout)
    pki("issue", "broker", "kafka-1", "--dir", d, "--ip", "127.0.0.1")
    assert openssl_verify(d, d / "issued/kafka-1/cert.pem").returncode == 0


def test_revoke_and_crl(ca):
    pki("issue", "client", "client-1", "--dir", ca)
    pki("issue", "client", "client-2", "--dir", ca)
    leaf = ca / "issued/client-1/cert.pem"
    crl_args = ("-crl_check", "-CRLfile", ca / "crl.pem")
    assert openssl_verify(ca, leaf, *crl_args).returncode == 0
    out = pki("revoke", "client-1", "--dir", ca, "--reason", "keyCompromise").stdout
    assert "Revoked client-1" in out and "crl.pem" in out
    run("openssl", "crl", "-in", ca / "crl.pem", "-noout", "-verify", "-CAfile", ca / "ca/ca-bundle.pem")
    crl_text = run("openssl", "crl", "-in", ca / "crl.pem", "-noout", "-text").stdout
    assert "Key Compromise" in crl_text
    assert re.search(r"Issuer: .*CN = Bulwark Intermediate CA$", crl_text, re.M)
    result = openssl_verify(ca, leaf, *crl_args)
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr
    assert openssl_verify(ca, ca / "issued/client-2/cert.pem", *crl_args).returncode == 0
    listing = pki("list", "--dir", ca).stdout
    block = listing[listing.index("client-1 (client)"):listing.index("client-2 (client)")]
    assert "revoked:   yes (keyCompromise)" in block
    assert "already revoked" in fails("revoke", "client-1", "--dir", ca)
    # `pki crl` regenerates it with a higher CRL number
    number_before = re.search(r"X509v3 CRL Number:\s*\n\s*(\d+)", crl_text).group(1)
    pki("crl", "--dir", ca)
    crl_text2 = run("openssl", "crl", "-in", ca / "crl.pem", "-noout", "-text").stdout
    assert int(re.search(r"X509v3 CRL Number:\s*\n\s*(\d+)", crl_text2).group(1)) == int(number_before) + 1
    assert openssl_verify(ca, leaf, *crl_args).returncode != 0


def serial_of(path):
    return run("openssl", "x509", "-in", path, "-noout", "-serial").stdout.strip()


def pubkey_of(path):
    return run("openssl", "x509", "-in", path, "-noout", "-pubkey").stdout


def test_list_and_renew(ca):
    pki("issue", "broker", "kafka-1", "--dir", ca, "--dns", "kafka-1", "--ip", "10.0.0.7", "--days", "30")
    cert = ca / "issued/kafka-1/cert.pem"
    listing = pki("list", "--dir", ca).stdout
    serial = serial_of(cert).split("=")[1]
    assert serial in listing
    assert "User:CN=kafka-1,O=SLS,OU=DevOps,L=Tehran,C=IR" in listing
    assert "DNS:kafka-1, IP:10.0.0.7" in listing
    assert re.search(r"expires:\s+in (29|30) days", listing)
    assert "revoked:   no" in listing

    old_serial, old_key = serial_of(cert), pubkey_of(cert)
    pki("renew", "kafka-1", "--dir", ca)
    assert serial_of(cert) != old_serial and pubkey_of(cert) != old_key
    text = x509_text(cert)
    assert "DNS:kafka-1" in text and "IP Address:10.0.0.7" in text
    assert openssl_verify(ca, cert).returncode == 0
    mid_serial, mid_key = serial_of(cert), pubkey_of(cert)
    pki("renew", "kafka-1", "--dir", ca, "--keep-key")
    assert serial_of(cert) != mid_serial and pubkey_of(cert) == mid_key
    assert "no certificate named nope" in fails("renew", "nope", "--dir", ca)


def test_serials_are_unique_and_16_bytes(ca):
    for i in range(6):
        pki("issue", "client", f"c{i}", "--dir", ca)
    serials = {serial_of(ca / f"issued/c{i}/cert.pem") for i in range(6)}
    assert len(serials) == 6
    for s in serials:
        value = s.split("=")[1]
        assert len(value) == 32 and int(value[0], 16) < 8


def properties(path):
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


@pytest.mark.parametrize("fmt", ["jks", "pkcs12", "pem"])
def test_bootstrap_makes_everything(tmp_path, fmt):
    d = tmp_path / "pki"
    out = pki("bootstrap", "--dir", d, "--broker", "kafka-1=kafka-1,192.168.9.194",
              "--broker", "kafka-2=localhost,127.0.0.1", "--client", "admin-1", "--client", "client-1",
              "--format", fmt).stdout
    password_file = d / "bootstrap.password"
    assert mode(password_file) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 6 and password not in out
    assert str(password_file) in out
    ext = {"jks": "jks", "pkcs12": "p12", "pem": "pem"}[fmt]
    for broker in ("kafka-1", "kafka-2"):
        folder = d / "export" / broker
        props = properties(folder / f"{broker}.server.properties")
        assert mode(folder / f"{broker}.server.properties") == 0o600
        for key, value in props.items():
            if key.endswith(".location"):
                assert os.path.isfile(value), f"{key}={value} does not exist"
        assert props["ssl.client.auth"] == "required"
        assert props["ssl.endpoint.identification.algorithm"] == "https"
        assert props["ssl.enabled.protocols"] == "TLSv1.3,TLSv1.2"
        assert props["ssl.principal.mapping.rules"] == "RULE:^CN=([^,]+).*$/$1/,DEFAULT"
        assert props["super.users"] == "User:kafka-1;User:kafka-2;User:admin-1"
        assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["ssl.keystore.type"] == fmt.upper()
        assert props["ssl.keystore.location"].endswith(f"{broker}.keystore.{ext}")
        if fmt != "pem":
            assert props["ssl.keystore.password"] == password
            assert props["ssl.truststore.password"] == password
            assert_key_entry(keytool_list(props["ssl.keystore.location"], password), broker, broker)
            assert_trust_entry(keytool_list(props["ssl.truststore.location"], password))
        assert mode(folder / f"{broker}.key") == 0o600
    for client in ("admin-1", "client-1"):
        folder = d / "export" / client
        rd = properties(folder / f"{client}.librdkafka.conf")
        assert rd["security.protocol"] == "ssl"
        for key in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
            assert os.path.isfile(rd[key])
        java = properties(folder / f"{client}.client.properties")
        assert java["security.protocol"] == "SSL"
        for key, value in java.items():
            if key.endswith(".location"):
                assert os.path.isfile(value)
        result = run("openssl", "verify", "-CAfile", rd["ssl.ca.location"], rd["ssl.certificate.location"])
        assert ": OK" in result.stdout
    san = x509_text(d / "issued/kafka-1/cert.pem")
    assert "DNS:kafka-1" in san and "IP Address:192.168.9.194" in san
    # Running it again refuses to overwrite, and changes nothing.
    before = tree(d)
    message = fails("bootstrap", "--dir", d, "--broker", "kafka-3=localhost", "--client", "admin-1", "--format", fmt)
    assert "already issued" in message
    assert tree(d) == before
    if fmt == "pem":
        # Bootstrap's stores are remembered like `pki export`'s: a CA rotation writes them again.
        pki("rotate-ca", "--dir", d, "--phase", "1", "--new-root")
        for name in ("kafka-1", "kafka-2", "admin-1", "client-1"):
            ca = (d / "export" / name / "ca.pem").read_text()
            assert ca.count("BEGIN CERTIFICATE") == 3, f"{name}: {ca.count('BEGIN CERTIFICATE')} CA certificates"


def test_bootstrap_with_password_file(tmp_path):
    d = tmp_path / "pki"
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pki("bootstrap", "--dir", d, "--broker", "kafka-1=localhost,127.0.0.1", "--client", "admin-1",
        "--format", "pkcs12", "--password-file", pw)
    assert not (d / "bootstrap.password").exists()
    assert_key_entry(keytool_list(d / "export/admin-1/admin-1.keystore.p12"), "admin-1", "admin-1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process):
    deadline = time.time() + 15
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail("s_server exited early: " + process.stdout.read())
        # s_server prints ACCEPT once it listens; probing with connect() would use up its one accept.
        if os.path.exists(f"/proc/net/tcp"):
            with open("/proc/net/tcp") as f:
                if any(f":{port:04X} " in line and line.split()[3] == "0A" for line in f):
                    return
        time.sleep(0.1)
    pytest.fail(f"s_server did not listen on port {port}")


@pytest.mark.parametrize("key_type", ["ec:p256", "rsa:2048", "ed25519"])
def test_mutual_tls_handshake_with_issued_certificates(tmp_path, key_type):
    d = tmp_path / "pki"
    pki("bootstrap", "--dir", d, "--broker", "kafka-1=localhost,127.0.0.1", "--client", "admin-1",
        "--format", "jks", "--password", PASSWORD, "--key", key_type)
    broker = d / "export/kafka-1"
    client = properties(d / "export/admin-1/admin-1.librdkafka.conf")  # the PEM files a librdkafka client uses
    port = free_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1",
         "-cert", broker / "kafka-1.crt", "-key", broker / "kafka-1.key", "-cert_chain", broker / "kafka-1.chain.pem",
         "-CAfile", broker / "ca.pem", "-Verify", "3", "-verify_return_error"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, server)
        client_run = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", client["ssl.certificate.location"],
             "-key", client["ssl.key.location"], "-cert_chain", client["ssl.certificate.location"],
             "-CAfile", client["ssl.ca.location"], "-verify_return_error", "-verify_hostname", "localhost",
             "-verify_ip", "127.0.0.1"],
            input="hello from admin-1\n", capture_output=True, text=True, timeout=30)
        server_out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    out = client_run.stdout + client_run.stderr
    assert "Verify return code: 0 (ok)" in out, out
    assert re.search(r"s:\s*CN\s?=\s?kafka-1", out), out
    assert "hello from admin-1" in server_out, server_out
    assert re.search(r"subject=.*CN\s?=\s?admin-1", server_out), server_out


def test_bad_input_is_refused_with_clear_words(ca, tmp_path):
    pki("issue", "broker", "kafka-1", "--dir", ca, "--dns", "kafka-1")
    before = tree(ca)
    assert "10.0.0.1 is an IP address; pass it with --ip so it is an IP SAN" in fails(
        "issue", "broker", "x", "--dir", ca, "--dns", "10.0.0.1")
    assert "not a valid DNS name" in fails("issue", "broker", "x", "--dir", ca, "--dns", "bad_name.example")
    assert "not a valid DNS name" in fails("issue", "broker", "x", "--dir", ca, "--dns", "-bad.example")
    assert "not an IPv4 or IPv6 address" in fails("issue", "broker", "x", "--dir", ca, "--ip", "300.1.1.1")
    assert 'unknown key type "dsa:1024"' in fails("issue", "broker", "x", "--dir", ca, "--key", "dsa:1024")
    assert "already issued" in fails("issue", "broker", "kafka-1", "--dir", ca, "--dns", "kafka-1")
    assert tree(ca) == before
    # --force replaces it
    pki("issue", "broker", "kafka-1", "--dir", ca, "--dns", "kafka-1", "--force")

    missing = tmp_path / "nowhere"
    assert f"no PKI in {missing}: run `bulwark pki init --dir {missing}` first" in fails(
        "issue", "broker", "x", "--dir", missing)
    assert "no PKI in" in fails("list", "--dir", missing)
    assert not missing.exists()
    assert 'unknown key type "rsa:1024"' in fails("init", "--dir", missing, "--key", "rsa:1024")
    assert not missing.exists()
    assert "already holds a PKI" in fails("init", "--dir", ca)


def test_bad_passwords_leave_no_files(ca, tmp_path):
    pki("issue", "client", "client-1", "--dir", ca)
    before = tree(ca)
    out = tmp_path / "out"
    missing = tmp_path / "missing-password"
    assert "cannot read the password file" in fails(
        "export", "client-1", "--dir", ca, "--format", "jks", "--password-file", missing, "--out", out)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in fails("export", "client-1", "--dir", ca, "--format", "pkcs12", "--password-file", empty,
                               "--out", out)
    short = tmp_path / "short"
    short.write_text("abc\n")
    assert "at least 6 characters" in fails("export", "client-1", "--dir", ca, "--format", "jks",
                                            "--password-file", short, "--out", out)
    assert "password is needed" in fails("export", "client-1", "--dir", ca, "--format", "jks", "--out", out)
    assert not out.exists()
    assert tree(ca) == before
    # bootstrap with a bad password makes no PKI at all
    d = tmp_path / "fresh"
    assert "is empty" in fails("bootstrap", "--dir", d, "--broker", "kafka-1", "--password-file", empty)
    assert "at least 6 characters" in fails("bootstrap", "--dir", d, "--broker", "kafka-1", "--password", "abc")
    assert not d.exists()
    # A keystore made with one password does not open with another (keytool says so).
    good = tmp_path / "good"
    good.write_text(PASSWORD)
    pki("export", "client-1", "--dir", ca, "--format", "jks", "--password-file", good, "--out", out)
    wrong = run("keytool", "-list", "-keystore", out / "client-1.keystore.jks", "-storepass", "not-the-password",
                check=False)
    assert wrong.returncode != 0 and "password was incorrect" in wrong.stdout + wrong.stderr


def test_out_copies_and_csr_renewal(ca, tmp_path):
    out = tmp_path / "copies"
    pki("issue", "client", "client-1", "--dir", ca, "--out", out)
    assert (out / "client-1.crt").read_text() == (ca / "issued/client-1/cert.pem").read_text()
    assert mode(out / "client-1.key") == 0o600
    assert (out / "client-1.chain.pem").read_text().count("BEGIN CERTIFICATE") == 3
    pki("crl", "--dir", ca, "--out", out)
    assert (out / "crl.pem").read_text() == (ca / "crl.pem").read_text()
    assert "already exists" in fails("crl", "--dir", ca, "--out", out)

    # A certificate signed from a CSR renews with the same public key (the key never came here) ...
    _, csr = keytool_csr(tmp_path, "kafka-7", "dns:kafka-7")
    pki("issue", "broker", "kafka-7", "--dir", ca, "--csr", csr)
    cert = ca / "issued/kafka-7/cert.pem"
    old_serial, old_key = serial_of(cert), pubkey_of(cert)
    pki("renew", "kafka-7", "--dir", ca)
    assert serial_of(cert) != old_serial and pubkey_of(cert) == old_key
    assert "DNS:kafka-7" in x509_text(cert)
    # ... and cannot be exported as a keystore: the message says where the chain is instead.
    message = fails("export", "kafka-7", "--dir", ca, "--format", "jks", "--password", PASSWORD)
    assert "signed from a CSR" in message and "chain.pem" in message
    assert "--key has no meaning with --csr" in fails("issue", "broker", "kafka-6", "--dir", ca, "--csr", csr,
                                                      "--key", "rsa:2048")


def test_parallel_commands_do_not_lose_state(ca):
    procs = [subprocess.Popen([BIN, "pki", "issue", "client", f"p{i}", "--dir", str(ca)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    listing = pki("list", "--dir", ca).stdout
    for i in range(8):
        assert f"p{i} (client)" in listing
