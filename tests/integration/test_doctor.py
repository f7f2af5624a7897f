"""bulwark doctor: `pki bootstrap`'s node config and the seed examples pass; each misconfiguration, made
from the bootstrap node config, is flagged with its severity and the exit code --fail-on gives; and
--bootstrap-server judges real brokers (a sound one from the bootstrap output, one whose SSL listener
takes clients without a certificate and has no authorizer, and an ACL that opens the cluster)."""
import os
import re
import subprocess
import types

import pytest

from harness import BIN, SOURCE_DIR, Broker, Pki, free_port_block, have, run, signed_with_dates, wait_for_port, \
    wait_for_started

SEVERITY = re.compile(r"^(INFO|LOW|MEDIUM|HIGH|CRITICAL) +(\S+)", re.M)
SEED = SOURCE_DIR / "tests" / "integration" / "seed-examples"


def doctor(*args):
    return subprocess.run([BIN, "doctor", *map(str, args)], capture_output=True, text=True, timeout=120)


def findings(result):
    return [(severity.lower(), check) for severity, check in SEVERITY.findall(result.stdout)]


def above_info(result):
    return [f for f in findings(result) if f[0] != "info"]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor")
    port = free_port_block((0, 1))
    run(BIN, "pki", "bootstrap", "--dir", root / "pki", "--broker", "kafka-1=localhost,127.0.0.1",
        "--client", "admin-1", "--client", "client-1", "--format", "pkcs12", "--node-configs", port)
    export = root / "pki" / "export"
    return types.SimpleNamespace(root=root, port=port, export=export, dir=root / "pki",
                                 node=export / "kafka-1" / "kafka-1.node.properties",
                                 tls=export / "kafka-1" / "kafka-1.server.properties")


def variant(bootstrap, tmp_path, changes):
    """The bootstrap node config with `changes` (key: value; None removes the key)."""
    lines = bootstrap.node.read_text().splitlines()
    keys = {line.partition("=")[0]: i for i, line in enumerate(lines) if "=" in line and not line.startswith("#")}
    for key, value in changes.items():
        if key in keys:
            lines[keys[key]] = f"{key}={value}" if value is not None else ""
        elif value is not None:
            lines.append(f"{key}={value}")
    path = tmp_path / "server.properties"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def test_bootstrap_output_passes(bootstrap):
    for config in (bootstrap.node, bootstrap.tls):
        result = doctor("-c", config, "--fail-on", "low")
        assert result.returncode == 0, result.stdout + result.stderr
        assert above_info(result) == [], result.stdout
    assert ("info", "super-user-mapping") in findings(doctor("-c", bootstrap.node))  # admin-1: not seen, mappable


def test_usage_and_unreadable_config(tmp_path, bootstrap):
    assert doctor().returncode == 2
    assert doctor("-c", tmp_path / "missing.properties").returncode == 2
    assert doctor("-c", bootstrap.node, "--bootstrap-server", "127.0.0.1:1").returncode == 2
    bad = doctor("-c", bootstrap.node, "--fail-on", "severe")
    assert bad.returncode == 2 and "info, low, medium, high, critical" in bad.stderr
    help_text = doctor("--help").stdout
    assert "0 no finding" in help_text and "1 findings" in help_text and "2 a usage error" in help_text


def sasl_listener(bootstrap):
    p = bootstrap.port
    return {"listeners": f"SSL://127.0.0.1:{p},CONTROLLER://127.0.0.1:{p + 1},SASL_PLAINTEXT://127.0.0.1:{p + 2}",
            "listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN"}


MISCONFIGURATIONS = {
    "plaintext-anywhere": (lambda b: {"listeners": f"SSL://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{b.port + 1},"
                                                   f"PLAINTEXT://0.0.0.0:{b.port + 2}",
                                      "listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL,PLAINTEXT:PLAINTEXT"},
                           "high", "plaintext-listener"),
    "client-auth-requested": (lambda b: {"ssl.client.auth": "requested"}, "high", "client-auth"),
    "allow-everyone": (lambda b: {"allow.everyone.if.no.acl.found": "true"}, "high", "allow-everyone"),
    "wildcard-super-user": (lambda b: {"super.users": "User:kafka-1;User:*"}, "critical", "super-user-wildcard"),
    "unmapped-super-user": (lambda b: {"ssl.principal.mapping.rules": "DEFAULT"}, "medium", "super-user-mapping"),
    "tls-1.1": (lambda b: {"ssl.enabled.protocols": "TLSv1.2,TLSv1.1"}, "high", "weak-tls-version"),
    "3des": (lambda b: {"ssl.cipher.suites": "TLS_RSA_WITH_3DES_EDE_CBC_SHA,TLS_AES_128_GCM_SHA256"}, "high",
             "weak-cipher"),
    "cbc-sha1": (lambda b: {"ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_AES_128_GCM_SHA256"},
                 "medium", "weak-cipher"),
    "sasl-plain-in-clear": (sasl_listener, "high", "sasl-plain-cleartext"),
    "unknown-key": (lambda b: {"num.partition": "3"}, "low", "unknown-key"),
    "misspelt-security-key": (lambda b: {"ssl.client.auht": "required"}, "high", "unknown-key"),
    "near-expiry": (lambda b: {"bulwark.ssl.certificate.expiry.warning.days": "400"}, "medium", "certificate"),
}


@pytest.mark.parametrize("name", MISCONFIGURATIONS)
def test_each_misconfiguration_is_flagged(bootstrap, tmp_path, name):
    changes, severity, check = MISCONFIGURATIONS[name]
    config = variant(bootstrap, tmp_path, changes(bootstrap))
    expect_flagged(config, severity, check)


def expect_flagged(config, severity, check):
    result = doctor("-c", config)
    assert (severity, check) in findings(result), result.stdout
    order = ["info", "low", "medium", "high", "critical"]
    assert result.returncode == (1 if order.index(severity) >= order.index("high") else 0), result.stdout
    assert doctor("-c", config, "--fail-on", severity).returncode == 1
    if severity != "critical":
        stricter = order[order.index(severity) + 1]
        others = [f for f in findings(result) if order.index(f[0]) >= order.index(stricter)]
        assert doctor("-c", config, "--fail-on", stricter).returncode == (1 if others else 0), result.stdout
    assert "fix: " in result.stdout


def test_readable_keystore(bootstrap, tmp_path):
    keystore = bootstrap.export / "kafka-1" / "kafka-1.keystore.p12"
    copy = tmp_path / "kafka-1.keystore.p12"
    copy.write_bytes(keystore.read_bytes())
    copy.chmod(0o644)
    expect_flagged(variant(bootstrap, tmp_path, {"ssl.keystore.location": copy}), "high", "file-mode")
    copy.chmod(0o640)
    expect_flagged(variant(bootstrap, tmp_path, {"ssl.keystore.location": copy}), "medium", "file-mode")


def pem_keystore(bootstrap, tmp_path, start, end):
    chain, key = signed_with_dates(types.SimpleNamespace(dir=bootstrap.dir), tmp_path / "ca", start, end)
    store = tmp_path / "keystore.pem"
    store.write_text(key.read_text() + chain.read_text())
    store.chmod(0o600)
    return variant(bootstrap, tmp_path, {"ssl.keystore.type": "PEM", "ssl.keystore.location": store,
                                         "ssl.keystore.password": None, "ssl.key.password": None})


def test_expired_certificate_is_critical(bootstrap, tmp_path):
    config = pem_keystore(bootstrap, tmp_path, "20200101000000Z", "20210101000000Z")
    expect_flagged(config, "critical", "certificate")
    assert "expired" in doctor("-c", config).stdout


def test_certificate_outliving_its_ca(bootstrap, tmp_path):
    config = pem_keystore(bootstrap, tmp_path, "20240101000000Z", "20991231000000Z")
    result = doctor("-c", config)
    assert ("medium", "certificate") in findings(result), result.stdout
    assert re.search(r"valid until 2099.*expires on", result.stdout), result.stdout


@pytest.mark.skipif(not have("keytool"), reason="the seed's keystores are made with keytool")
def test_seed_examples_pass(tmp_path):
    ssl_dir = tmp_path / "ssl"
    run("bash", SEED / "make-seed-keystores.sh", ssl_dir, timeout=600)
    for index in (1, 2, 3):
        config = tmp_path / f"kraft-node-{index}.properties"
        text = (SEED / f"kraft-node-{index}.properties").read_text().replace("/tmp/bulwark-seed/ssl", str(ssl_dir))
        config.write_text(text.replace("/tmp/bulwark-seed", str(tmp_path)))
        config.chmod(0o600)
        result = doctor("-c", config)
        assert result.returncode == 0, result.stdout
        assert [f for f in above_info(result) if f[0] in ("high", "critical")] == [], result.stdout


def start_bootstrap_broker(bootstrap):
    log_file = bootstrap.root / "kafka-1.log"
    cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
    run(BIN, "storage", "format", "-t", cluster_id, "-c", bootstrap.node)
    log = open(log_file, "ab")
    proc = subprocess.Popen([BIN, "broker", "-c", str(bootstrap.node)], stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(bootstrap.port, proc=proc)
    wait_for_started(log_file, 0, proc)
    return proc, log


def test_running_cluster(bootstrap, tmp_path):
    admin = bootstrap.export / "admin-1" / "admin-1.librdkafka.conf"
    server = f"127.0.0.1:{bootstrap.port}"
    proc, log = start_bootstrap_broker(bootstrap)
    try:
        sound = doctor("--bootstrap-server", server, "--command-config", admin)
        assert sound.returncode == 0, sound.stdout + sound.stderr
        assert [f for f in findings(sound) if f[0] in ("high", "critical")] == [], sound.stdout
        # An ACL that lets anybody alter the cluster.
        java = bootstrap.export / "admin-1" / "admin-1.client.properties"
        run(BIN, "acl", "add", "--bootstrap-server", server, "--command-config", java,
            "--allow-principal", "User:*", "--operation", "Alter", "--cluster")
        opened = doctor("--bootstrap-server", server, "--command-config", java)  # Kafka's form works too
        assert ("critical", "open-acl") in findings(opened), opened.stdout
        assert opened.returncode == 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()

    # The harness broker: an SSL listener without client authentication, and no authorizer.
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki).start()
    try:
        cert, key, ca = pki.pem("admin-1")
        result = doctor("--bootstrap-server", broker.bootstrap("SSL"), "--ca", ca, "--cert", cert, "--key", key)
        got = findings(result)
        assert ("high", "client-auth") in got, result.stdout
        assert ("high", "no-authorizer") in got, result.stdout  # from DescribeConfigs
        assert ("high", "weak-tls-version") not in got, result.stdout  # Bulwark never speaks TLS 1.1
        assert result.returncode == 1
        unreachable = doctor("--bootstrap-server", f"127.0.0.1:{free_port_block((0,))}")
        assert unreachable.returncode == 2, unreachable.stdout
    finally:
        broker.stop()


@pytest.mark.skipif(not have("openssl"), reason="needs openssl s_server")
def test_tls_hellos_find_old_versions_and_weak_ciphers(bootstrap):
    """A TLS server that takes everything (Bulwark itself never speaks TLS 1.1): the hellos see it."""
    folder = bootstrap.export / "kafka-1"
    port = free_port_block((0,))
    server = subprocess.Popen(["openssl", "s_server", "-accept", str(port), "-cert", str(folder / "kafka-1.chain.pem"),
                               "-key", str(folder / "kafka-1.key"), "-cipher", "ALL:@SECLEVEL=0", "-quiet"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=server)
        result = doctor("--bootstrap-server", f"127.0.0.1:{port}", "--ca", folder / "ca.pem")
        got = findings(result)
        assert got.count(("high", "weak-tls-version")) == 2, result.stdout
        assert "TLSv1.1 handshake" in result.stdout
        assert ("high", "weak-cipher") in got and ("medium", "weak-cipher") in got, result.stdout
        assert result.returncode == 1
    finally:
        server.kill()
        server.wait(timeout=30)
