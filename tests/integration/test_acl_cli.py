"""`bulwark acl` and `bulwark scram` against a real `bulwark broker` with Kafka's StandardAuthorizer
semantics: certificates from `bulwark pki` (CN = principal through ssl.principal.mapping.rules), PEM
flags and Kafka client properties files (--command-config) with PKCS12, JKS and inline PEM stores, SASL
PLAIN and SCRAM logins, and the broker's refusals explained in plain words."""
import pytest

from harness import BIN, PASSWORD, Broker, Pki, free_port, run

ADMIN = "admin"
USER = "client-1"
PLAIN_ADMIN_PASSWORD = "admin-plain-secret"
ALICE_PASSWORD = "alice-Scram-secret-42"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("acl")
    pki = Pki(root, clients=(ADMIN, USER))
    for fmt in ("jks",):
        run(BIN, "pki", "export", ADMIN, "--format", fmt, "--password", PASSWORD, "--dir", pki.dir,
            "--out", pki.exports[ADMIN])
    broker = Broker(root, pki, extra={
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:broker-1",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    })
    # One more listener, SASL_PLAINTEXT, for the SCRAM and PLAIN logins (harness.Broker has none).
    # Two more listeners, SASL_PLAINTEXT and SASL_SSL, for the SCRAM and PLAIN logins (harness.Broker has none).
    broker.ports["SASL"] = free_port()
    broker.ports["SASLTLS"] = free_port()
    p = broker.props
    p["listeners"] = ",".join(f"{name}://127.0.0.1:{port}" for name, port in broker.ports.items())
    p["advertised.listeners"] = ",".join(
        f"{n}://127.0.0.1:{broker.ports[n]}" for n in ("PLAINTEXT", "SSL", "MTLS", "SASL", "SASLTLS"))
    p["listener.security.protocol.map"] += ",SASL:SASL_PLAINTEXT,SASLTLS:SASL_SSL"
    for listener in ("sasl", "sasltls"):
        p[f"listener.name.{listener}.sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
        p[f"listener.name.{listener}.plain.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_admin="{PLAIN_ADMIN_PASSWORD}";')
    broker.start()
    yield root, pki, broker
    broker.stop()


def pem_flags(pki, name):
    cert, key, ca = pki.pem(name)
    return ["--ca", ca, "--cert", cert, "--key", key]


def acl(broker, *args, flags, listener="MTLS", check=None):
    result = run(BIN, "acl", *args, "--bootstrap-server", broker.bootstrap(listener), *flags, check=False)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def scram(broker, *args, flags, listener="MTLS", check=None, **kw):
    result = run(BIN, "scram", *args, "--bootstrap-server", broker.bootstrap(listener), *flags, check=False, **kw)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def entry(principal, operation, permission="ALLOW", host="*"):
    return f"(principal={principal}, host={host}, operation={operation}, permissionType={permission})"


def pattern(kind, name, pattern_type="LITERAL"):
    return f"ResourcePattern(resourceType={kind}, name={name}, patternType={pattern_type})"


def test_admin_adds_lists_and_removes_acls_with_pem_flags(env):
    _, pki, broker = env
    admin = pem_flags(pki, ADMIN)
    added = acl(broker, "add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "write",
                "--topic", "orders", flags=admin, check=0)
    assert f"Adding ACLs for resource `{pattern('TOPIC', 'orders')}`:" in added.stdout
    assert entry("User:alice", "READ") in added.stdout and entry("User:alice", "WRITE") in added.stdout
    acl(broker, "add", "--deny-principal", "User:mallory", "--deny-host", "10.0.0.9", "--operation", "Describe",
        "--topic", "orders", "--group", "billing", flags=admin, check=0)

    listing = acl(broker, "list", flags=admin, check=0).stdout
    assert f"Current ACLs for resource `{pattern('TOPIC', 'orders')}`:" in listing
    assert f"Current ACLs for resource `{pattern('GROUP', 'billing')}`:" in listing
    assert entry("User:mallory", "DESCRIBE", "DENY", "10.0.0.9") in listing

    # Filters: by resource, by principal.
    group_only = acl(broker, "list", "--group", "billing", flags=admin, check=0).stdout
    assert pattern("GROUP", "billing") in group_only and pattern("TOPIC", "orders") not in group_only
    alice_only = acl(broker, "list", "--principal", "User:alice", flags=admin, check=0).stdout
    assert entry("User:alice", "READ") in alice_only and "mallory" not in alice_only

    # Remove narrowly: only alice's WRITE goes.
    removed = acl(broker, "remove", "--topic", "orders", "--allow-principal", "User:alice", "--operation", "Write",
                  flags=admin, check=0)
    assert entry("User:alice", "WRITE") in removed.stdout and "READ" not in removed.stdout
    listing = acl(broker, "list", "--topic", "orders", flags=admin, check=0).stdout
    assert entry("User:alice", "READ") in listing and entry("User:alice", "WRITE") not in listing

    # Remove everything on the topic, then nothing is left there; the group's ACL stays.
    removed = acl(broker, "remove", "--topic", "orders", flags=admin, check=0)
    assert entry("User:alice", "READ") in removed.stdout and entry("User:mallory", "DESCRIBE", "DENY", "10.0.0.9") \
        in removed.stdout
    assert acl(broker, "list", "--topic", "orders", flags=admin, check=0).stdout == ""
    again = acl(broker, "remove", "--topic", "orders", flags=admin, check=0)
    assert "nothing was removed" in again.stdout
    acl(broker, "remove", "--group", "billing", flags=admin, check=0)


def test_producer_consumer_and_prefixed_patterns(env):
    _, pki, broker = env
    admin = pem_flags(pki, ADMIN)
    acl(broker, "add", "--allow-principal", "User:app", "--producer", "--consumer", "--idempotent",
        "--topic", "pay-", "--group", "pay-workers", "--resource-pattern-type", "prefixed", flags=admin, check=0)
    listing = acl(broker, "list", "--principal", "User:app", flags=admin, check=0).stdout
    for op in ("WRITE", "DESCRIBE", "CREATE", "READ"):
        assert entry("User:app", op) in listing.split(pattern("TOPIC", "pay-", "PREFIXED"))[1].split("Current")[0]
    assert pattern("GROUP", "pay-workers", "PREFIXED") in listing
    assert pattern("CLUSTER", "kafka-cluster") in listing and entry("User:app", "IDEMPOTENT_WRITE") in listing

    # MATCH finds the prefixed ACLs that apply to a concrete topic name; LITERAL does not.
    match = acl(broker, "list", "--topic", "pay-eu", "--resource-pattern-type", "match", flags=admin, check=0).stdout
    assert pattern("TOPIC", "pay-", "PREFIXED") in match
    literal = acl(broker, "list", "--topic", "pay-eu", "--resource-pattern-type", "literal", flags=admin, check=0)
    assert literal.stdout == ""

    removed = acl(broker, "remove", "--allow-principal", "User:app", "--producer", "--consumer", "--idempotent",
                  "--topic", "pay-", "--group", "pay-workers", "--resource-pattern-type", "prefixed",
                  flags=admin, check=0)
    assert entry("User:app", "IDEMPOTENT_WRITE") in removed.stdout
    assert acl(broker, "list", "--principal", "User:app", flags=admin, check=0).stdout == ""


def test_non_super_user_is_refused_in_plain_words(env):
    _, pki, broker = env
    user = pem_flags(pki, USER)
    result = acl(broker, "add", "--allow-principal", "User:client-1", "--operation", "All", "--cluster",
                 flags=user, check=1)
    assert "may not alter ACLs (CLUSTER_AUTHORIZATION_FAILED)" in result.stderr, result.stderr
    assert "CN=client-1" in result.stderr
    listed = acl(broker, "list", flags=user, check=1)
    assert "may not describe ACLs (CLUSTER_AUTHORIZATION_FAILED)" in listed.stderr, listed.stderr
    removed = acl(broker, "remove", "--topic", "orders", flags=user, check=1)
    assert "CLUSTER_AUTHORIZATION_FAILED" in removed.stderr


def test_wrong_ca_is_a_clear_tls_error(env, tmp_path):
    _, pki, broker = env
    other = Pki(tmp_path, clients=())
    cert, key, _ = pki.pem(ADMIN)
    result = acl(broker, "list", "--ca", other.ca, "--cert", cert, "--key", key, flags=[], check=1)
    assert "TLS handshake failed" in result.stderr, result.stderr
    # The broker sends its chain up to its root, so OpenSSL's words are "self-signed certificate in
    # certificate chain" (or "unable to get local issuer certificate" for a chain without the root).
    assert "(certificate verify failed: self-signed certificate in certificate chain)" in result.stderr \
        or "(certificate verify failed: unable to get local issuer certificate)" in result.stderr, result.stderr
    assert "not in the truststore" in result.stderr


def test_client_certificate_required_and_plaintext_mismatch(env):
    _, pki, broker = env
    _, _, ca = pki.pem(ADMIN)
    no_cert = acl(broker, "list", "--ca", ca, flags=[], check=1)
    assert "certificate" in no_cert.stderr and "error:" in no_cert.stderr, no_cert.stderr
    # A TLS client on the plaintext port.
    wrong_port = acl(broker, "list", "--ca", ca, flags=[], listener="PLAINTEXT", check=1)
    assert "TLS handshake failed" in wrong_port.stderr, wrong_port.stderr


def test_usage_errors_exit_2(env):
    _, pki, broker = env
    admin = pem_flags(pki, ADMIN)
    no_principal = acl(broker, "add", "--topic", "t", flags=admin, check=2)
    assert "--allow-principal, --deny-principal" in no_principal.stderr
    bad_op = acl(broker, "add", "--allow-principal", "User:a", "--operation", "ClusterAction", "--topic", "t",
                 flags=admin, check=2)
    assert "TOPIC does not have operation CLUSTER_ACTION" in bad_op.stderr
    assert acl(broker, "add", "--allow-principal", "User:a", "--topic", "t", "--bogus", flags=admin).returncode == 2
    half = acl(broker, "list", "--ca", pki.pem(ADMIN)[2], "--cert", pki.pem(ADMIN)[0], flags=[], check=2)
    assert "--cert and --key go together" in half.stderr
    assert run(BIN, "acl", "list", check=False).returncode == 2  # --bootstrap-server is required


def write_props(path, lines):
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def test_command_config_with_pkcs12_jks_and_inline_pem(env, tmp_path):
    _, pki, broker = env
    keystore, truststore = pki.pkcs12(ADMIN)
    out = pki.exports[ADMIN]
    jks_keystore = out / f"{ADMIN}.keystore.jks"
    jks_truststore = out / f"{ADMIN}.truststore.jks"
    assert jks_keystore.exists() and jks_truststore.exists(), sorted(p.name for p in out.iterdir())
    cert, key, ca = pki.pem(ADMIN)
    configs = {
        "pkcs12": {"security.protocol": "SSL", "ssl.keystore.type": "PKCS12", "ssl.keystore.location": keystore,
                   "ssl.keystore.password": PASSWORD, "ssl.truststore.type": "PKCS12",
                   "ssl.truststore.location": truststore, "ssl.truststore.password": PASSWORD},
        "jks": {"security.protocol": "SSL", "ssl.keystore.type": "JKS", "ssl.keystore.location": jks_keystore,
                "ssl.keystore.password": PASSWORD, "ssl.key.password": PASSWORD, "ssl.truststore.type": "JKS",
                "ssl.truststore.location": jks_truststore, "ssl.truststore.password": PASSWORD,
                "ssl.endpoint.identification.algorithm": ""},
        "pem": {"security.protocol": "SSL", "ssl.keystore.type": "PEM", "ssl.truststore.type": "PEM",
                "ssl.keystore.key": key.read_text().strip().replace("\n", "\\n\\\n"),
                "ssl.keystore.certificate.chain": cert.read_text().strip().replace("\n", "\\n\\\n"),
                "ssl.truststore.certificates": ca.read_text().strip().replace("\n", "\\n\\\n")},
    }
    for name, props in configs.items():
        config = write_props(tmp_path / f"{name}.properties", {**props, "linger.ms": "5"})
        added = acl(broker, "add", "--allow-principal", f"User:{name}", "--operation", "Read", "--topic", name,
                    "--command-config", config, flags=[])
        assert added.returncode == 0, f"{name}: {added.stderr}"
        assert f"{config}:" in added.stderr and "linger.ms: unknown key, ignored" in added.stderr
        listing = acl(broker, "list", "--topic", name, "--command-config", config, flags=[], check=0).stdout
        assert entry(f"User:{name}", "READ") in listing
        acl(broker, "remove", "--topic", name, "--command-config", config, flags=[], check=0)
        assert PASSWORD not in added.stdout + added.stderr

    # Errors name the file, the line and the key.
    bad = write_props(tmp_path / "bad.properties", {"security.protocol": "SSL", "ssl.keystore.type": "BCFKS",
                                                    "sasl.mechanism": "GSSAPI"})
    result = acl(broker, "list", "--command-config", bad, flags=[], check=2)
    assert f"{bad}:2: ssl.keystore.type: 'BCFKS'" in result.stderr, result.stderr
    assert f"{bad}:3: sasl.mechanism: 'GSSAPI' is not supported" in result.stderr

    wrong_password = write_props(tmp_path / "wrong.properties", {**configs["pkcs12"],
                                                                 "ssl.keystore.password": "not-the-password"})
    result = acl(broker, "list", "--command-config", wrong_password, flags=[], check=1)
    assert str(keystore) in result.stderr and "not-the-password" not in result.stderr, result.stderr


def test_broker_without_authorizer_says_so(env, tmp_path):
    _, pki, _ = env
    plain = Broker(tmp_path, pki).start()
    try:
        result = acl(plain, "list", flags=[], listener="PLAINTEXT", check=1)
        assert "no authorizer configured (authorizer.class.name)" in result.stderr, result.stderr
        assert "SECURITY_DISABLED" in result.stderr
    finally:
        plain.stop()


def sasl_config(path, mechanism, user, password):
    module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
    return write_props(path, {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.jaas.config": f'org.apache.kafka.common.security.{module} required username="{user}" '
                            f'password="{password}";',
    })


def test_scram_set_list_login_and_delete(env, tmp_path):
    _, pki, broker = env
    admin = pem_flags(pki, ADMIN)
    password_file = tmp_path / "alice.pw"
    password_file.write_text(ALICE_PASSWORD + "\n")
    set_256 = scram(broker, "set", "--user", "alice", "--mechanism", "SCRAM-SHA-256", "--iterations", "8192",
                    "--password-file", password_file, flags=admin, check=0)
    assert ALICE_PASSWORD not in set_256.stdout + set_256.stderr
    scram(broker, "set", "--user", "alice", "--mechanism", "SCRAM-SHA-512", "--password-file", "-",
          input=ALICE_PASSWORD + "\n", flags=admin, check=0)
    listing = scram(broker, "list", "--user", "alice", flags=admin, check=0).stdout
    assert "SCRAM credential configs for user-principal 'alice' are" in listing
    assert "SCRAM-SHA-256=iterations=8192" in listing and "SCRAM-SHA-512=iterations=4096" in listing
    assert ALICE_PASSWORD not in listing
    assert "'alice'" in scram(broker, "list", flags=admin, check=0).stdout

    # alice logs in with SCRAM over the SASL listener; she is no super user, so ACLs are refused.
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        config = sasl_config(tmp_path / f"{mechanism}.properties", mechanism, "alice", ALICE_PASSWORD)
        result = acl(broker, "list", "--command-config", config, flags=[], listener="SASL", check=1)
        assert "the broker says User:alice may not describe ACLs (CLUSTER_AUTHORIZATION_FAILED)" in result.stderr, \
            result.stderr
    wrong = sasl_config(tmp_path / "wrong.properties", "SCRAM-SHA-256", "alice", "not-her-password")
    result = acl(broker, "list", "--command-config", wrong, flags=[], listener="SASL", check=1)
    assert "SASL authentication failed for user alice" in result.stderr, result.stderr
    assert "not-her-password" not in result.stderr

    # The PLAIN admin (a super user) manages ACLs over SASL too.
    plain = sasl_config(tmp_path / "plain.properties", "PLAIN", "admin", PLAIN_ADMIN_PASSWORD)
    acl(broker, "add", "--allow-principal", "User:alice", "--operation", "Describe", "--cluster",
        "--command-config", plain, flags=[], listener="SASL", check=0)
    config = sasl_config(tmp_path / "alice.properties", "SCRAM-SHA-256", "alice", ALICE_PASSWORD)
    listed = acl(broker, "list", "--command-config", config, flags=[], listener="SASL", check=0)
    assert entry("User:alice", "DESCRIBE") in listed.stdout
    acl(broker, "remove", "--cluster", "--command-config", plain, flags=[], listener="SASL", check=0)

    # SASL_SSL: the same logins inside TLS, the CA given as --ca.
    _, _, ca = pki.pem(ADMIN)
    tls_plain = sasl_config(tmp_path / "plain-tls.properties", "PLAIN", "admin", PLAIN_ADMIN_PASSWORD)
    tls_plain.write_text(tls_plain.read_text().replace("SASL_PLAINTEXT", "SASL_SSL"))
    acl(broker, "add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "tls-only",
        "--ca", ca, "--command-config", tls_plain, flags=[], listener="SASLTLS", check=0)
    tls_alice = sasl_config(tmp_path / "alice-tls.properties", "SCRAM-SHA-512", "alice", ALICE_PASSWORD)
    tls_alice.write_text(tls_alice.read_text().replace("SASL_PLAINTEXT", "SASL_SSL") +
                         f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n")
    refused = acl(broker, "add", "--allow-principal", "User:alice", "--operation", "All", "--cluster",
                  "--command-config", tls_alice, flags=[], listener="SASLTLS", check=1)
    assert "the broker says User:alice may not alter ACLs (CLUSTER_AUTHORIZATION_FAILED)" in refused.stderr
    acl(broker, "remove", "--topic", "tls-only", "--ca", ca, "--command-config", tls_plain, flags=[],
        listener="SASLTLS", check=0)

    # Delete one mechanism, then the other; alice can no longer log in.
    scram(broker, "delete", "--user", "alice", "--mechanism", "SCRAM-SHA-512", flags=admin, check=0)
    listing = scram(broker, "list", "--user", "alice", flags=admin, check=0).stdout
    assert "SCRAM-SHA-256=iterations=8192" in listing and "SCRAM-SHA-512" not in listing
    scram(broker, "delete", "--user", "alice", "--mechanism", "SCRAM-SHA-256", flags=admin, check=0)
    gone = scram(broker, "list", "--user", "alice", flags=admin, check=1)
    assert "alice" in gone.stderr and "RESOURCE_NOT_FOUND" in gone.stderr, gone.stderr
    again = scram(broker, "delete", "--user", "alice", "--mechanism", "SCRAM-SHA-256", flags=admin, check=1)
    assert "RESOURCE_NOT_FOUND" in again.stderr
    result = acl(broker, "list", "--command-config", config, flags=[], listener="SASL", check=1)
    assert "SASL authentication failed for user alice" in result.stderr


def test_scram_refusals(env, tmp_path):
    _, pki, broker = env
    password_file = tmp_path / "pw"
    password_file.write_text("some-password\n")
    user = pem_flags(pki, USER)
    refused = scram(broker, "set", "--user", "bob", "--mechanism", "SCRAM-SHA-256", "--password-file", password_file,
                    flags=user, check=1)
    assert "CLUSTER_AUTHORIZATION_FAILED" in refused.stderr, refused.stderr
    admin = pem_flags(pki, ADMIN)
    low = scram(broker, "set", "--user", "bob", "--mechanism", "SCRAM-SHA-256", "--iterations", "100",
                "--password-file", password_file, flags=admin, check=2)
    assert "iterations" in low.stderr
    bad_mech = scram(broker, "set", "--user", "bob", "--mechanism", "PLAIN", "--password-file", password_file,
                     flags=admin, check=2)
    assert "not SCRAM-SHA-256 or SCRAM-SHA-512" in bad_mech.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert scram(broker, "set", "--user", "bob", "--mechanism", "SCRAM-SHA-256", "--password-file", empty,
                 flags=admin, check=2).stderr.endswith("is empty\n")


def test_grants_take_effect_for_a_real_client(env):
    """A librdkafka producer with client-1's certificate is refused until `acl add --producer` grants it."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    _, pki, broker = env
    cert, key, ca = pki.pem(USER)
    topic = "granted-orders"

    def produce():
        producer = confluent_kafka.Producer({
            "bootstrap.servers": broker.bootstrap("MTLS"), "security.protocol": "ssl", "ssl.ca.location": str(ca),
            "ssl.certificate.location": str(cert), "ssl.key.location": str(key), "message.timeout.ms": 5000,
            "acks": "all"})
        errors = []
        producer.produce(topic, value=b"v", on_delivery=lambda err, msg: errors.append(err))
        producer.flush(15)
        return errors

    refused = produce()
    assert refused and refused[0] is not None and refused[0].code() == \
        confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    acl(broker, "add", "--allow-principal", "User:client-1", "--producer", "--topic", topic,
        flags=pem_flags(pki, ADMIN), check=0)
    assert produce() == [None]
    acl(broker, "remove", "--allow-principal", "User:client-1", "--producer", "--topic", topic,
        flags=pem_flags(pki, ADMIN), check=0)


def test_interoperates_with_kafka_python_admin(env):
    """ACLs written by `bulwark acl` are read back by kafka-python's admin client and vice versa, so the
    wire encoding is checked against an independent implementation."""
    admin_mod = pytest.importorskip("kafka.admin")
    _, pki, broker = env
    cert, key, ca = pki.pem(ADMIN)
    client = admin_mod.KafkaAdminClient(
        bootstrap_servers=broker.bootstrap("MTLS"), security_protocol="SSL", ssl_cafile=str(ca),
        ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_check_hostname=True)
    try:
        acl(broker, "add", "--allow-principal", "User:carol", "--operation", "Write", "--topic", "audit",
            "--resource-pattern-type", "prefixed", flags=pem_flags(pki, ADMIN), check=0)
        found, error = client.describe_acls(admin_mod.ACLFilter(
            principal="User:carol", host="*", operation=admin_mod.ACLOperation.ANY,
            permission_type=admin_mod.ACLPermissionType.ANY,
            resource_pattern=admin_mod.ResourcePatternFilter(admin_mod.ResourceType.ANY, None,
                                                             admin_mod.ACLResourcePatternType.ANY)))
        assert [(a.operation, a.resource_pattern.resource_type, a.resource_pattern.resource_name,
                 a.resource_pattern.pattern_type) for a in found] == [
            (admin_mod.ACLOperation.WRITE, admin_mod.ResourceType.TOPIC, "audit",
             admin_mod.ACLResourcePatternType.PREFIXED)], (found, error)

        created = client.create_acls([admin_mod.ACL(
            principal="User:dave", host="10.1.2.3", operation=admin_mod.ACLOperation.DESCRIBE_CONFIGS,
            permission_type=admin_mod.ACLPermissionType.DENY,
            resource_pattern=admin_mod.ResourcePattern(admin_mod.ResourceType.GROUP, "reports"))])
        assert not created["failed"], created
        listing = acl(broker, "list", "--principal", "User:dave", flags=pem_flags(pki, ADMIN), check=0).stdout
        assert pattern("GROUP", "reports") in listing
        assert entry("User:dave", "DESCRIBE_CONFIGS", "DENY", "10.1.2.3") in listing
    finally:
        client.close()
        acl(broker, "remove", "--topic", "audit", "--resource-pattern-type", "prefixed", flags=pem_flags(pki, ADMIN))
        acl(broker, "remove", "--group", "reports", flags=pem_flags(pki, ADMIN))


def test_host_name_is_checked_unless_the_command_config_turns_it_off(env, tmp_path):
    """--ca checks the broker certificate's SAN against the host dialled; Kafka's
    ssl.endpoint.identification.algorithm= (empty) turns only that check off."""
    root, pki, _ = env
    run(BIN, "pki", "issue", "broker", "elsewhere", "--dns", "kafka.invalid", "--dir", pki.dir)
    out = root / "export" / "elsewhere"
    run(BIN, "pki", "export", "elsewhere", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir, "--out", out)
    broker = Broker(tmp_path, pki, extra={"ssl.keystore.location": str(out / "elsewhere.keystore.p12")})
    broker.start()
    try:
        cert, key, ca = pki.pem(ADMIN)
        checked = acl(broker, "list", "--ca", ca, flags=[], listener="SSL", check=1)
        assert "does not name the host that was dialled" in checked.stderr, checked.stderr
        assert "hostname mismatch" in checked.stderr or "IP address mismatch" in checked.stderr, checked.stderr
        unchecked = write_props(tmp_path / "no-host-check.properties", {
            "security.protocol": "SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": ca,
            "ssl.endpoint.identification.algorithm": ""})
        result = acl(broker, "list", "--command-config", unchecked, flags=[], listener="SSL")
        # The chain verified and the request reached the broker, which has no authorizer.
        assert result.returncode == 1 and "SECURITY_DISABLED" in result.stderr, result.stderr
    finally:
        broker.stop()
