"""Prometheus metrics on metrics.listener, under real traffic: requests and their latency per API, bytes
in and out per topic, log end offsets and consumer-group lag, partitions and the active controller,
connections per listener, failed SASL logins, failed TLS handshakes by reason, authorization denials,
and the seconds until each certificate expires. Names as the JMX exporter gives Kafka's."""
import re
import socket
import time
import urllib.request
import uuid

import clients
from harness import BIN, PASSWORD, Broker, Pki, free_port_block, run, wait_for


def scrape(port):
    """The exposition, after Prometheus' own client library has parsed all of it."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["bulwark_request_total_time_ms"].type == "histogram"
    return text


def value(text, series):
    """The value of one series, e.g. 'kafka_log_log_logendoffset{topic="t",partition="0"}'."""
    match = re.search("^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_metrics_follow_real_traffic(tmp_path):
    pki = Pki(tmp_path, clients=("admin-1",))
    broker_dn = run("openssl", "x509", "-in", pki.dir / "issued/broker-1/cert.pem", "-noout", "-subject",
                    "-nameopt", "RFC2253").stdout.strip().removeprefix("subject=")
    port = free_port_block(range(1))
    broker = Broker(tmp_path, pki, sasl=True, extra={
        "metrics.listener": f"http://127.0.0.1:{port}",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:ANONYMOUS;User:{broker_dn}",
    }).start()
    topic, group = f"metrics-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:6]}"
    try:
        bootstrap, sec = broker.bootstrap("SSL"), clients.security(pki, "SSL")
        records = [(None, b"x" * 100, None) for _ in range(10)]
        clients.confluent_produce(bootstrap, sec, topic, records)
        from confluent_kafka import Consumer
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, **clients.librdkafka_conf(sec)})
        consumer.subscribe([topic])
        got = []
        deadline = time.time() + 60
        while len(got) < 4 and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                got.append(msg)
        consumer.commit(message=got[3], asynchronous=False)  # committed offset 4: lag 6
        consumer.close()

        # A plaintext client on the TLS port, and a bad SASL password.
        with socket.create_connection(("127.0.0.1", broker.ports["SSL"])) as raw:
            raw.sendall(b"\x00\x00\x00\x10" + b"\x00\x12" + b"\x00" * 14)
            raw.recv(100)
        bad = clients.sasl_security("PLAIN", "alice", "wrong-password")
        try:
            clients.kafka_python_produce(broker.bootstrap("SASL_PLAINTEXT"), bad, topic, [(None, b"no", None)])
        except Exception:
            pass
        # alice logs in but holds no ACL: creating a topic is denied.
        from kafka.admin import KafkaAdminClient, NewTopic
        alice = KafkaAdminClient(bootstrap_servers=broker.bootstrap("SASL_PLAINTEXT"),
                                 **clients.kafka_python_kwargs(clients.sasl_security("PLAIN", "alice", "alice-secret")))
        try:
            alice.create_topics([NewTopic("denied-topic", 1, 1)])
        except Exception:
            pass
        alice.close()

        def lag_reached():
            text = scrape(port)
            lag = value(text, f'kafka_consumergroup_lag{{consumergroup="{group}",topic="{topic}",partition="0"}}')
            return text if lag == 6 else None
        text = wait_for("the group's lag", lag_reached, timeout=30)

        assert value(text, 'kafka_network_requestmetrics_requests_total{request="Produce"}') >= 1
        assert value(text, 'bulwark_request_total_time_ms_count{request="Produce"}') >= 1
        assert value(text, 'bulwark_request_total_time_ms_bucket{request="Produce",le="+Inf"}') >= 1
        assert value(text, 'kafka_network_requestmetrics_totaltimems{request="Produce",quantile="0.99"}') is not None
        assert value(text, f'kafka_server_brokertopicmetrics_bytesin_total{{topic="{topic}"}}') >= 1000
        assert value(text, f'kafka_server_brokertopicmetrics_messagesin_total{{topic="{topic}"}}') == 10
        assert value(text, f'kafka_server_brokertopicmetrics_bytesout_total{{topic="{topic}"}}') >= 400
        assert value(text, f'kafka_log_log_logendoffset{{topic="{topic}",partition="0"}}') == 10
        assert value(text, f'kafka_consumergroup_current_offset{{consumergroup="{group}",topic="{topic}",partition="0"}}') == 4
        assert value(text, "kafka_controller_kafkacontroller_activecontrollercount") == 1
        assert value(text, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
        assert value(text, "kafka_server_replicamanager_underreplicatedpartitions") == 0
        assert value(text, "kafka_server_replicamanager_leadercount") >= 1
        assert value(text, 'kafka_server_socketservermetrics_connection_count{listener="SSL"}') is not None
        assert value(text, 'bulwark_tls_handshake_failures_total{listener="SSL",reason="plaintext"}') >= 1
        assert value(text, 'kafka_server_socketservermetrics_failed_authentication_total{listener="SASL_PLAINTEXT"}') >= 1
        assert value(text, 'kafka_server_socketservermetrics_successful_authentication_total{listener="SASL_PLAINTEXT"}') >= 1
        assert value(text, 'bulwark_authorizer_denials_total{operation="CREATE",resource_type="TOPIC"}') >= 1
        expiry = re.search(r'^bulwark_tls_certificate_expiry_seconds\{listener="SSL",role="keystore",subject="CN=broker-1[^"]*",'
                           r'serial="[0-9A-F]+"\} (\S+)$', text, re.M)
        assert expiry and 360 * 86400 < float(expiry.group(1)) <= 366 * 86400, expiry
        assert re.search(r'^bulwark_tls_certificate_expiry_seconds\{listener="SSL",role="truststore",', text, re.M)
        assert "# TYPE bulwark_request_total_time_ms histogram" in text
        assert_deploy_files_use_only_exported_names(text)
    finally:
        broker.stop()


def assert_deploy_files_use_only_exported_names(text):
    """The shipped alert rules and dashboard name only series this broker exports."""
    import json
    import os
    from pathlib import Path
    import yaml
    repo = Path(os.environ.get("BULWARK_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    rules = yaml.safe_load((repo / "deploy/prometheus/bulwark-alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert {rule["alert"] for group in rules["groups"] for rule in group["rules"]} >= {
        "BulwarkCertificateExpiresSoon", "BulwarkUnderReplicatedPartitions", "BulwarkNoActiveController"}
    dashboard = json.loads((repo / "deploy/grafana/bulwark-dashboard.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    for expression in expressions:
        for name in re.findall(r"\b((?:kafka|bulwark)_[a-z_]+)", expression):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in exported else name
            assert name in exported or base in exported, f"{name} in {expression!r} is not exported"


def test_an_explicit_metrics_listener_that_cannot_bind_stops_start_up(tmp_path):
    pki = Pki(tmp_path, clients=())
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    broker = Broker(tmp_path, pki, extra={"metrics.listener": f"http://127.0.0.1:{taken}"})
    try:
        broker.start()
        raise AssertionError("the broker started without its metrics listener")
    except AssertionError as e:
        if "started without" in str(e):
            raise
    finally:
        broker.stop()
        holder.close()
    assert f"cannot listen on 127.0.0.1:{taken} for metrics" in broker.log_text()


def https_scrape(port, pki, client=None):
    """GET /metrics over TLS, verifying the broker certificate against the PKI's CA; (status, serial)."""
    import ssl
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client:
        cert, key, _ = pki.pem(client)
        context.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            serial = int(sock.getpeercert()["serialNumber"], 16)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    return answer.split(b" ", 2)[1].decode(), serial


def certificate_serial(pki):
    return int(run("openssl", "x509", "-in", pki.dir / "issued/broker-1/cert.pem", "-noout",
                   "-serial").stdout.strip().removeprefix("serial="), 16)


def test_metrics_over_https_ask_for_a_client_certificate_and_follow_a_reload(tmp_path):
    import signal
    import ssl
    pki = Pki(tmp_path, clients=("admin-1",))
    port = free_port_block(range(1))
    broker = Broker(tmp_path, pki, extra={
        "metrics.listener": f"https://127.0.0.1:{port}",
        "metrics.ssl.listener.name": "MTLS",
        "metrics.ssl.client.auth": "required",
    }).start()
    try:
        status, serial = https_scrape(port, pki, client="admin-1")
        assert status == "200"
        assert serial == certificate_serial(pki)
        try:
            https_scrape(port, pki)
            raise AssertionError("a scraper without a certificate was served")
        except (ssl.SSLError, ConnectionError, IndexError):
            pass
        wait_for("the refused scrape logged", lambda: "metrics: TLS handshake from 127.0.0.1 failed" in broker.log_text())

        # A renewed keystore, picked up on SIGHUP by the MTLS listener, serves metrics too.
        run(BIN, "pki", "renew", "broker-1", "--dir", pki.dir)
        run(BIN, "pki", "export", "broker-1", "--format", "pkcs12", "--password", PASSWORD, "--dir", pki.dir,
            "--out", pki.exports["broker-1"], "--force")
        renewed = certificate_serial(pki)
        broker.proc.send_signal(signal.SIGHUP)
        wait_for("the renewed certificate on the metrics listener",
                 lambda: https_scrape(port, pki, client="admin-1") == ("200", renewed))
    finally:
        broker.stop()


def test_an_https_metrics_listener_without_a_tls_listener_is_refused(tmp_path):
    pki = Pki(tmp_path, clients=())
    port = free_port_block(range(1))
    broker = Broker(tmp_path, pki, extra={"metrics.listener": f"https://127.0.0.1:{port}",
                                          "metrics.ssl.listener.name": "PLAINTEXT"})
    try:
        broker.start()
        raise AssertionError("the broker started with an https metrics listener on a plaintext listener")
    except AssertionError as e:
        if "started with" in str(e):
            raise
    finally:
        broker.stop()
    assert "listener PLAINTEXT is not one; set metrics.ssl.listener.name" in broker.log_text()
