"""Certificates that change while the broker runs: a renewed keystore is served to new handshakes
(inotify, SIGHUP) while open connections carry on; bad or disallowed material keeps the old in force and
says why; a CRL revokes a client, also one that comes back with a session ticket; and the broker's own
expired certificate stops start-up. Real files, real `bulwark pki`, real openssl and clients."""
import signal
import socket
import ssl
import subprocess
import time
import uuid

import clients
import kafka_wire
from harness import BIN, PASSWORD, Broker, Pki, run, signed_with_dates, wait_for

API_VERSIONS = kafka_wire.request(18, 0, 1, b"")


def served_serial(port):
    """The serial a new `openssl s_client` handshake sees, e.g. "1A2B..."."""
    hello = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"],
                           input=b"", capture_output=True, timeout=20)
    serial = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=hello.stdout, capture_output=True,
                            timeout=20)
    return serial.stdout.decode().strip().removeprefix("serial=")


def serial_of(path):
    return run("openssl", "x509", "-in", path, "-noout", "-serial").stdout.strip().removeprefix("serial=")


def renew_broker_certificate(pki, *extra):
    run(BIN, "pki", "renew", "broker-1", "--dir", pki.dir, *extra)
    run(BIN, "pki", "export", "broker-1", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir,
        "--out", pki.exports["broker-1"], "--force")
    return serial_of(pki.dir / "issued/broker-1/cert.pem")


def tls_context(pki, client=None):
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client:
        cert, key, _ = pki.pem(client)
        context.load_cert_chain(str(cert), str(key))
    return context


def api_versions_over(context, port, session=None):
    """(socket, answered) after one ApiVersions request on a new TLS connection."""
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                               server_hostname="localhost", session=session)
    try:
        sock.sendall(API_VERSIONS)
        return sock, kafka_wire.read_frame(sock, timeout=10) is not None
    except (OSError, ssl.SSLError):
        return sock, False


def test_a_renewed_keystore_reaches_new_handshakes_while_open_connections_carry_on(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker = Broker(tmp_path, pki).start()
    topic = f"reload-{uuid.uuid4().hex[:8]}"
    bootstrap, sec = broker.bootstrap("SSL"), clients.security(pki, "SSL")
    try:
        port = broker.ports["SSL"]
        before = served_serial(port)
        assert before == serial_of(pki.dir / "issued/broker-1/cert.pem")
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        clients.confluent_produce(bootstrap, sec, topic, [(None, b"before", None)])
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                             **clients.librdkafka_conf(sec)})
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen = []

        def poll_until(count):
            deadline = time.time() + 30
            while len(seen) < count and time.time() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None:
                    assert msg.error() is None, msg.error()
                    seen.append(msg.value())
        poll_until(1)
        open_socket, answered = api_versions_over(tls_context(pki), port)
        assert answered

        after = renew_broker_certificate(pki)
        assert after != before
        wait_for("the renewed certificate to be served", lambda: served_serial(port) == after, timeout=20)
        log = broker.log_text()
        assert f"listener SSL: TLS material reloaded (a watched file changed): certificate serial {before}" in log
        assert f"replaced by serial {after}, valid until" in log
        # The connection made before the reload still answers, with the certificate it started with.
        open_socket.sendall(API_VERSIONS)
        assert kafka_wire.read_frame(open_socket, timeout=10) is not None
        peer = ssl.DER_cert_to_PEM_cert(open_socket.getpeercert(binary_form=True))
        assert run("openssl", "x509", "-noout", "-serial", input=peer).stdout.strip() == f"serial={before}"
        open_socket.close()
        clients.confluent_produce(bootstrap, sec, topic, [(None, b"after", None)])
        poll_until(2)
        assert seen == [b"before", b"after"]
        consumer.close()
        # The inter-broker and controller listeners share the keystore, and passed the peer checks.
        assert "listener MTLS: TLS material reloaded" in log and "listener CONTROLLER: TLS material reloaded" in log
    finally:
        broker.stop()


def test_bad_or_disallowed_material_keeps_the_old_in_force(tmp_path):
    pki = Pki(tmp_path, clients=())
    run(BIN, "pki", "issue", "broker", "other-broker", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", pki.dir)
    other = tmp_path / "export/other-broker"
    run(BIN, "pki", "export", "other-broker", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir,
        "--out", other)
    broker = Broker(tmp_path, pki).start()
    keystore, _ = pki.pkcs12("broker-1")
    port = broker.ports["SSL"]
    try:
        serial = served_serial(port)
        keystore.with_name("staging").write_bytes(b"this is not a keystore")
        keystore.with_name("staging").rename(keystore)
        wait_for("the refusal", lambda: "listener SSL: the new TLS material (a watched file changed) is not used"
                 in broker.log_text(), timeout=20)
        assert f"the material in force (serial {serial}," in broker.log_text()
        assert served_serial(port) == serial

        # Another subject (CN=other-broker) is refused as Kafka refuses it, unless ssl.allow.dn.changes.
        (other / "other-broker.keystore.p12").replace(keystore)
        wait_for("the DN refusal", lambda: "differs from the one in force" in broker.log_text(), timeout=20)
        assert "ssl.allow.dn.changes=true" in broker.log_text()
        assert served_serial(port) == serial and broker.alive()
    finally:
        broker.stop()


def test_sighup_reloads_when_files_are_not_watched(tmp_path):
    pki = Pki(tmp_path, clients=())
    broker = Broker(tmp_path, pki, extra={"bulwark.ssl.reload.on.file.change": "false"}).start()
    port = broker.ports["SSL"]
    try:
        before = served_serial(port)
        after = renew_broker_certificate(pki)
        time.sleep(1.5)
        assert served_serial(port) == before, "files are not watched: only SIGHUP reloads"
        broker.proc.send_signal(signal.SIGHUP)
        wait_for("the SIGHUP reload", lambda: served_serial(port) == after, timeout=20)
        assert broker.alive()
        assert "received SIGHUP: reloading the TLS material" in broker.log_text()
        assert f"listener SSL: TLS material reloaded (SIGHUP): certificate serial {before}" in broker.log_text()
    finally:
        broker.stop()


def test_a_revoked_client_is_refused_also_through_a_session_ticket(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1", "client-1"))
    run(BIN, "pki", "crl", "--dir", pki.dir)
    broker = Broker(tmp_path, pki, extra={"ssl.crl.location": str(pki.dir / "crl.pem")}).start()
    port = broker.ports["MTLS"]
    try:
        admin = tls_context(pki, "admin-1")
        first, answered = api_versions_over(admin, port)
        assert answered
        ticket = first.session
        first.close()

        # Revoking someone else rereads the CRL; trust is unchanged, so admin-1's ticket stays good.
        out = run(BIN, "pki", "revoke", "client-1", "--dir", pki.dir).stdout
        assert "Revoked client-1 serial" in out
        wait_for("the CRL reload", lambda: "1 CRL(s) revoking 1 serial(s)" in broker.log_text(), timeout=20)
        resumed, answered = api_versions_over(admin, port, session=ticket)
        assert answered and resumed.session_reused
        resumed.close()
        _, answered = api_versions_over(tls_context(pki, "client-1"), port)
        assert not answered
        wait_for("the explanation", lambda: "is revoked: the CRL of" in broker.log_text(), timeout=10)

        run(BIN, "pki", "revoke", "admin-1", "--dir", pki.dir)
        wait_for("the second CRL reload", lambda: "1 CRL(s) revoking 2 serial(s)" in broker.log_text(), timeout=20)
        comeback, answered = api_versions_over(admin, port, session=ticket)
        assert not answered, "a revoked client must not come back through its session ticket"
        comeback.close()
        wait_for("the refused resumption", lambda: "TLS session resumed by" in broker.log_text(), timeout=10)
        _, answered = api_versions_over(admin, port)
        assert not answered
        # A client without a certificate on the SSL listener is not affected.
        _, answered = api_versions_over(tls_context(pki), broker.ports["SSL"])
        assert answered
    finally:
        broker.stop()


def test_revoke_after_renew_takes_the_superseded_serial(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    old = serial_of(pki.dir / "issued/admin-1/cert.pem")
    run(BIN, "pki", "renew", "admin-1", "--dir", pki.dir)
    new = serial_of(pki.dir / "issued/admin-1/cert.pem")
    out = run(BIN, "pki", "revoke", "admin-1", "--superseded", "--dir", pki.dir).stdout
    assert f"Revoked admin-1 serial {old} (superseded)" in out and new not in out
    crl = run("openssl", "crl", "-in", pki.dir / "crl.pem", "-noout", "-text").stdout
    assert f"Serial Number: {old}" in crl and f"Serial Number: {new}" not in crl


def pem_keystore_with_dates(pki, tmp_path, start, end):
    """A PEM keystore (key, then the chain) for CN=broker-1 valid start..end."""
    chain, key = signed_with_dates(pki, tmp_path / "openssl-ca", start, end)
    keystore = tmp_path / "keystore.pem"
    keystore.write_text(key.read_text() + chain.read_text())
    return keystore


def test_an_expired_certificate_of_our_own_stops_start_up(tmp_path):
    pki = Pki(tmp_path, clients=())
    expired = pem_keystore_with_dates(pki, tmp_path, "20200101000000Z", "20210101000000Z")
    broker = Broker(tmp_path, pki, extra={"ssl.keystore.type": "PEM", "ssl.keystore.location": str(expired)})
    broker.write_config()
    cluster_id = run(BIN, "storage", "random-uuid").stdout.strip()
    run(BIN, "storage", "format", "-t", cluster_id, "-c", broker.config)
    result = subprocess.run([BIN, "broker", "-c", str(broker.config)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "expired on 2021-01-01 00:00 UTC" in result.stderr, result.stderr
    assert "renew it" in result.stderr


def test_a_certificate_near_expiry_is_warned_about_at_start_up(tmp_path):
    pki = Pki(tmp_path, clients=())
    run(BIN, "pki", "renew", "broker-1", "--days", "10", "--dir", pki.dir)
    run(BIN, "pki", "export", "broker-1", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir,
        "--out", pki.exports["broker-1"], "--force")
    broker = Broker(tmp_path, pki, extra={"bulwark.ssl.certificate.expiry.warning.days": "20"}).start()
    try:
        assert "listener SSL: the certificate CN=broker-1" in broker.log_text()
        assert "expires in 9 day(s)" in broker.log_text() or "expires in 10 day(s)" in broker.log_text()
    finally:
        broker.stop()
