"""`bulwark probe HOST:PORT`: against a real broker's PLAINTEXT, SSL, MTLS, SASL_SSL and SASL_PLAINTEXT
listeners (and a Python TLS server serving an expired certificate, which no broker would start with),
each step is judged in plain words with its fix, and the exit code names the first failing step:
0 all good, 2 usage, 3 TCP, 4 TLS, 5 client certificate, 6 SASL, 7 Kafka, 8 authorization."""
import json
import socket
import ssl
import threading

import pytest

from harness import BIN, PASSWORD, Broker, Pki, free_port, run, signed_with_dates

OK, USAGE, TCP, TLS, CLIENT_CERT, SASL, KAFKA, AUTHORIZATION = 0, 2, 3, 4, 5, 6, 7, 8
MAPPING = "RULE:^CN=([^,]+).*$/$1/,DEFAULT"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    pki = Pki(root, clients=("admin-1", "client-1", "revoked-1"))
    # client-1 stays good; revoked-1 is on the CRL the broker loads.
    run(BIN, "pki", "crl", "--dir", pki.dir)
    run(BIN, "pki", "revoke", "revoked-1", "--dir", pki.dir)
    # A broker certificate that names only other.example, served on an extra SSL listener.
    run(BIN, "pki", "issue", "broker", "elsewhere", "--dns", "other.example", "--dir", pki.dir)
    elsewhere = root / "export/elsewhere"
    run(BIN, "pki", "export", "elsewhere", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir,
        "--out", elsewhere)
    # A second, unrelated PKI: its CA trusts nobody here and nobody here trusts it.
    other = root / "other-pki"
    run(BIN, "pki", "init", "--dir", other)
    run(BIN, "pki", "issue", "client", "stranger", "--dir", other)
    run(BIN, "pki", "export", "stranger", "--format", "pem", "--dir", other, "--out", root / "export/stranger")

    broker = Broker(root, pki, sasl=True, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin-1",
        "ssl.principal.mapping.rules": MAPPING,
        "ssl.crl.location": str(pki.dir / "crl.pem"),
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.elsewhere.ssl.keystore.location": str(elsewhere / "elsewhere.keystore.p12"),
    })
    elsewhere_port = free_port()
    broker.props["listeners"] += f",ELSEWHERE://127.0.0.1:{elsewhere_port}"
    broker.props["advertised.listeners"] += f",ELSEWHERE://127.0.0.1:{elsewhere_port}"
    broker.props["listener.security.protocol.map"] += ",ELSEWHERE:SSL"
    broker.ports["ELSEWHERE"] = elsewhere_port
    broker.start()
    yield {"root": root, "pki": pki, "broker": broker, "other": other}
    broker.stop()


def probe(*args, timeout=60):
    """(exit code, {step name: (status, text)}, stdout) of one `bulwark probe`."""
    result = run(BIN, "probe", *args, "--timeout-ms", "10000", check=False, timeout=timeout)
    steps = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "warn", "FAIL", "skip"):
            text = rest.strip()
            name = next(n for n in ("TCP", "TLS", "certificate", "host name", "client cert", "ApiVersions", "SASL",
                                    "Metadata", "principal") if text.startswith(n))
            steps[name] = (status, text[len(name):].strip())
    assert result.returncode == USAGE or len(steps) == 9, result.stdout + result.stderr
    return result.returncode, steps, result.stdout + result.stderr


def at(env, listener):
    return env["broker"].bootstrap(listener)


def tls_flags(env, client=None):
    pki = env["pki"]
    flags = ["--ca", pki.ca]
    if client:
        cert, key, _ = pki.pem(client)
        flags += ["--cert", cert, "--key", key]
    return flags


def sasl_config(env, path, password="alice-secret", mechanism="PLAIN", protocol="SASL_SSL"):
    _, truststore = env["pki"].pkcs12("admin-1")
    module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
    lines = [f"security.protocol={protocol}", f"sasl.mechanism={mechanism}",
             f'sasl.jaas.config=org.apache.kafka.common.security.{module} required username="alice" '
             f'password="{password}";']
    if protocol == "SASL_SSL":
        lines += [f"ssl.truststore.location={truststore}", f"ssl.truststore.password={PASSWORD}",
                  "ssl.truststore.type=PKCS12"]
    path.write_text("\n".join(lines) + "\n")
    return path


def failing(steps):
    return [name for name, (status, _) in steps.items() if status == "FAIL"]


# ---- Listeners that work ---------------------------------------------------------------------------

def test_plaintext_listener_works_and_the_principal_is_anonymous(env):
    code, steps, out = probe(at(env, "PLAINTEXT"))
    assert code == OK, out
    assert steps["TCP"][0] == "ok" and "connected in" in steps["TCP"][1]
    assert steps["TLS"] == ("skip", "not used (security.protocol=PLAINTEXT)")
    assert steps["ApiVersions"][0] == "ok" and "Metadata v0..12" in steps["ApiVersions"][1]
    assert steps["Metadata"][0] == "ok" and "1 at 127.0.0.1" in steps["Metadata"][1]
    assert steps["principal"][0] == "ok" and steps["principal"][1].startswith("User:ANONYMOUS")
    assert "every step works" in out


def test_ssl_listener_works_with_the_chain_and_sans_shown(env):
    code, steps, out = probe(at(env, "SSL"), *tls_flags(env))
    assert code == OK, out
    assert steps["TLS"][0] == "ok" and "TLSv1.3, cipher TLS_" in steps["TLS"][1]
    assert steps["certificate"][0] == "ok"
    assert "CN=broker-1" in steps["certificate"][1] and "verified against our truststore" in steps["certificate"][1]
    assert steps["host name"] == ("ok", "the certificate names 127.0.0.1 (SANs: DNS:localhost, IP:127.0.0.1)")
    assert steps["client cert"] == ("ok", "the broker does not ask for one (ssl.client.auth=none)")


def test_mtls_listener_accepts_our_certificate_and_derives_the_principal_by_the_brokers_rules(env):
    code, steps, out = probe(at(env, "MTLS"), *tls_flags(env, "admin-1"), "--principal-mapping-rules", MAPPING)
    assert code == OK, out
    assert steps["client cert"][0] == "ok" and "the broker accepted ours: CN=admin-1" in steps["client cert"][1]
    principal = steps["principal"][1]
    assert principal.startswith("User:admin-1, derived from our certificate subject CN=admin-1"), principal
    # admin-1 is a super user: DescribeCluster says it may do everything on the cluster.
    assert "on the cluster it may: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION" in principal


def test_mtls_from_a_java_keystore_file_and_from_a_librdkafka_file(env, tmp_path):
    keystore, truststore = env["pki"].pkcs12("admin-1")
    java = tmp_path / "java.properties"
    java.write_text(f"security.protocol=SSL\nssl.keystore.location={keystore}\nssl.keystore.password={PASSWORD}\n"
                    f"ssl.keystore.type=PKCS12\nssl.truststore.location={truststore}\n"
                    f"ssl.truststore.password={PASSWORD}\n")
    code, steps, out = probe(at(env, "MTLS"), "--command-config", java)
    assert code == OK, out
    assert "the broker accepted ours: CN=admin-1" in steps["client cert"][1]
    assert PASSWORD not in out

    cert, key, ca = env["pki"].pem("admin-1")
    rdkafka = tmp_path / "rdkafka.properties"
    rdkafka.write_text(f"security.protocol=SSL\nssl.ca.location={ca}\nssl.certificate.location={cert}\n"
                       f"ssl.key.location={key}\n")
    code, steps, out = probe(at(env, "MTLS"), "--command-config", rdkafka)
    assert code == OK, out
    assert "the broker accepted ours: CN=admin-1" in steps["client cert"][1]
    assert "unknown key" not in out  # the librdkafka keys were used, not ignored

    # Both a --ca flag and ssl.ca.location: which one was meant is not guessed.
    code, _, out = probe(at(env, "MTLS"), "--command-config", rdkafka, "--ca", ca)
    assert code == USAGE and "give either --ca or this key, not both" in out


def test_sasl_ssl_login_works_and_json_says_so(env, tmp_path):
    config = sasl_config(env, tmp_path / "alice.properties")
    result = run(BIN, "probe", at(env, "SASL_SSL"), "--command-config", config, "--json", check=False)
    assert result.returncode == OK, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["exit_code"] == 0 and report["principal"] == "User:alice"
    assert "derived from the SASL username" in report["principal_source"]
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["SASL"]["status"] == "ok"
    assert steps["SASL"]["message"] == "PLAIN login as alice accepted (the listener offers PLAIN)"
    assert "alice-secret" not in result.stdout + result.stderr


# ---- Plaintext against TLS, and TLS against plaintext ----------------------------------------------

def test_plaintext_settings_on_a_tls_port(env):
    code, steps, out = probe(at(env, "SSL"))
    assert code == TLS, out
    status, text = steps["ApiVersions"]
    assert status == "FAIL" and "it is a TLS listener" in text and "security.protocol=SSL" in text


def test_tls_settings_on_a_plaintext_port(env):
    code, steps, out = probe(at(env, "PLAINTEXT"), *tls_flags(env))
    assert code == TLS, out
    status, text = steps["TLS"]
    assert status == "FAIL" and "PLAINTEXT or SASL_PLAINTEXT listener" in text
    assert steps["certificate"][0] == "skip"


def test_nothing_listening(env):
    code, steps, out = probe(f"127.0.0.1:{free_port()}")
    assert code == TCP, out
    assert steps["TCP"][0] == "FAIL" and "connection refused, nothing listens there" in steps["TCP"][1]


# ---- The broker's certificate ----------------------------------------------------------------------

def test_a_truststore_without_the_brokers_ca(env):
    code, steps, out = probe(at(env, "SSL"), "--ca", env["other"] / "ca/root.crt")
    assert code == TLS, out
    status, text = steps["certificate"]
    assert status == "FAIL" and "CN=broker-1" in text
    # Both PKIs name their root the same: the probe says it is another key, and what to give instead.
    assert "not the one our truststore holds" in text and "--ca FILE or ssl.truststore.location" in text
    # A client sends nothing to a broker that did not verify.
    assert steps["ApiVersions"][0] == "skip" and steps["SASL"][0] == "skip"


def test_a_broker_certificate_without_the_host_name_lists_its_sans(env):
    code, steps, out = probe(at(env, "ELSEWHERE"), *tls_flags(env))
    assert code == TLS, out
    assert steps["certificate"][0] == "ok"
    status, text = steps["host name"]
    assert status == "FAIL"
    assert "the broker's certificate (CN=elsewhere) names DNS:other.example, not 127.0.0.1" in text
    assert "bulwark pki issue broker NAME --ip 127.0.0.1" in text


class TlsServer:
    """A loopback TLS server that shakes hands with whoever connects, then hangs up."""

    def __init__(self, chain, key):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(chain), str(key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()
        self.thread.join(timeout=5)


def test_an_expired_broker_certificate(env, tmp_path):
    chain, key = signed_with_dates(env["pki"], tmp_path / "ca", "20200101000000Z", "20210101000000Z")
    server = TlsServer(chain, key)
    try:
        code, steps, out = probe(f"127.0.0.1:{server.port}", *tls_flags(env))
    finally:
        server.close()
    assert code == TLS, out
    status, text = steps["certificate"]
    assert status == "FAIL"
    assert "the broker's certificate (CN=broker-1, serial 1000) expired on 2021-01-01 00:00 UTC" in text
    assert "renew it on the broker" in text
    assert steps["host name"][0] == "ok"


def test_a_broker_certificate_not_valid_yet(env, tmp_path):
    chain, key = signed_with_dates(env["pki"], tmp_path / "ca", "20900101000000Z", "20910101000000Z")
    server = TlsServer(chain, key)
    try:
        code, steps, out = probe(f"127.0.0.1:{server.port}", *tls_flags(env))
    finally:
        server.close()
    assert code == TLS, out
    status, text = steps["certificate"]
    assert status == "FAIL" and "is not valid until 2090-01-01 00:00 UTC" in text and "clocks" in text


# ---- Our certificate -------------------------------------------------------------------------------

def test_mtls_without_a_client_certificate(env):
    code, steps, out = probe(at(env, "MTLS"), *tls_flags(env))
    assert code == CLIENT_CERT, out
    status, text = steps["client cert"]
    assert status == "FAIL"
    assert "requires a client certificate (ssl.client.auth=required) and we sent none" in text
    assert "give --cert FILE --key FILE" in text and "CN=Bulwark Root CA" in text
    assert steps["TLS"][0] == "ok" and steps["certificate"][0] == "ok"


def test_a_client_certificate_from_another_ca(env):
    stranger = env["root"] / "export/stranger"
    code, steps, out = probe(at(env, "MTLS"), "--ca", env["pki"].ca, "--cert", stranger / "stranger.chain.pem",
                             "--key", stranger / "stranger.key")
    assert code == CLIENT_CERT, out
    status, text = steps["client cert"]
    assert status == "FAIL" and "the broker does not trust" in text and "CN=stranger" in text
    assert "use a certificate from a CA the broker trusts" in text


def test_a_revoked_client_certificate(env):
    code, steps, out = probe(at(env, "MTLS"), *tls_flags(env, "revoked-1"))
    assert code == CLIENT_CERT, out
    status, text = steps["client cert"]
    assert status == "FAIL" and "CN=revoked-1" in text and "is revoked" in text
    assert "ssl.crl.location lists it" in text
    # The same CA's unrevoked certificate is fine.
    code, steps, out = probe(at(env, "MTLS"), *tls_flags(env, "client-1"))
    assert code == OK, out


def test_with_tls_1_2_the_broker_judges_our_certificate_inside_the_handshake(env, tmp_path):
    """TLS 1.2 refusals come as alerts during the handshake, not after it: the same steps, the same words."""
    tls12 = tmp_path / "tls12.properties"
    tls12.write_text("security.protocol=SSL\nssl.enabled.protocols=TLSv1.2\n"
                     f"ssl.ca.location={env['pki'].ca}\n")
    code, steps, out = probe(at(env, "MTLS"), "--command-config", tls12)
    assert code == CLIENT_CERT, out
    assert steps["TLS"][0] == "ok" and "TLSv1.2" in steps["TLS"][1]
    assert steps["certificate"][0] == "ok"
    assert "requires a client certificate (ssl.client.auth=required) and we sent none" in steps["client cert"][1]

    stranger = env["root"] / "export/stranger"
    tls12.write_text(tls12.read_text() + f"ssl.certificate.location={stranger / 'stranger.chain.pem'}\n"
                                         f"ssl.key.location={stranger / 'stranger.key'}\n")
    code, steps, out = probe(at(env, "MTLS"), "--command-config", tls12)
    assert code == CLIENT_CERT, out
    assert steps["client cert"][0] == "FAIL" and "the broker does not trust" in steps["client cert"][1]


def test_a_client_certificate_the_listener_does_not_ask_for_is_a_warning(env):
    code, steps, out = probe(at(env, "SSL"), *tls_flags(env, "admin-1"))
    assert code == OK, out
    status, text = steps["client cert"]
    assert status == "warn" and "ours (CN=admin-1) is not sent" in text
    assert steps["principal"][1].startswith("User:ANONYMOUS")


# ---- SASL ------------------------------------------------------------------------------------------

def test_a_bad_sasl_password(env, tmp_path):
    config = sasl_config(env, tmp_path / "bad.properties", password="not-her-password")
    code, steps, out = probe(at(env, "SASL_SSL"), "--command-config", config)
    assert code == SASL, out
    status, text = steps["SASL"]
    assert status == "FAIL" and "PLAIN login as alice refused" in text and "SASL_AUTHENTICATION_FAILED" in text
    assert "check the password in sasl.jaas.config" in text
    assert "not-her-password" not in out
    assert steps["Metadata"][0] == "skip"


def test_a_sasl_mechanism_the_listener_does_not_offer(env, tmp_path):
    config = sasl_config(env, tmp_path / "scram.properties", mechanism="SCRAM-SHA-256")
    code, steps, out = probe(at(env, "SASL_SSL"), "--command-config", config)
    assert code == SASL, out
    assert steps["SASL"] == ("FAIL", "the listener does not offer SCRAM-SHA-256; it offers PLAIN -> set sasl.mechanism "
                                     "to one of those (PLAIN with PlainLoginModule, SCRAM-SHA-* with ScramLoginModule)")


def test_a_sasl_listener_probed_without_sasl(env):
    code, steps, out = probe(at(env, "SASL_PLAINTEXT"))
    assert code == SASL, out
    status, text = steps["SASL"]
    assert status == "FAIL" and "wants a SASL login (it offers PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)" in text
    assert "security.protocol=SASL_PLAINTEXT" in text


def test_sasl_settings_on_a_listener_without_sasl(env, tmp_path):
    config = sasl_config(env, tmp_path / "alice.properties")
    code, steps, out = probe(at(env, "SSL"), "--command-config", config)
    assert code == SASL, out
    status, text = steps["SASL"]
    assert status == "FAIL" and "does not speak SASL" in text and "security.protocol=SSL" in text


# ---- Authorization ---------------------------------------------------------------------------------

def test_metadata_of_a_topic_our_principal_may_not_describe_and_the_fix_works(env, tmp_path):
    config = sasl_config(env, tmp_path / "alice.properties")
    code, steps, out = probe(at(env, "SASL_SSL"), "--command-config", config, "--topic", "payments")
    assert code == AUTHORIZATION, out
    status, text = steps["Metadata"]
    assert status == "FAIL" and "User:alice may not Describe topic payments (TOPIC_AUTHORIZATION_FAILED)" in text
    fix = "bulwark acl add --allow-principal User:alice --operation Describe --topic payments"
    assert fix in text
    assert steps["principal"][0] == "ok" and "on the cluster it may: none" in steps["principal"][1]

    # Doing what the fix says, as the super user, makes the step pass (the topic does not exist: a warning).
    cert, key, ca = env["pki"].pem("admin-1")
    run(BIN, *fix.split()[1:], "--bootstrap-server", at(env, "MTLS"), "--ca", ca, "--cert", cert, "--key", key)
    code, steps, out = probe(at(env, "SASL_SSL"), "--command-config", config, "--topic", "payments")
    assert code == OK, out
    assert steps["Metadata"][0] == "warn" and "no topic payments" in steps["Metadata"][1]


# ---- Usage -----------------------------------------------------------------------------------------

def test_usage_errors_exit_2(env, tmp_path):
    code, _, out = probe(at(env, "SSL"), "--cert", env["pki"].ca)
    assert code == USAGE and "need --ca" in out
    code, _, out = probe("127.0.0.1:1,127.0.0.1:2")
    assert code == USAGE and "one broker at a time" in out
    code, _, out = probe(at(env, "MTLS"), *tls_flags(env, "admin-1"), "--principal-mapping-rules", "RULE:[")
    assert code == USAGE and "--principal-mapping-rules" in out
