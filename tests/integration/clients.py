"""Produce and consume with the real clients (kcat, kafka-python, confluent-kafka, kafkajs), each
configured for PLAINTEXT, SSL (server authentication), MTLS (client certificate too) or SASL.
`sec` is None (PLAINTEXT) or a dict: ca (TLS), cert + key (client certificate), and
sasl = dict(mechanism, username, password) for SASL_SSL (with ca) or SASL_PLAINTEXT (without).
A record is (key, value, headers) with bytes or None; headers a list of (str, bytes)."""
import base64
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def security(pki, listener, client="admin-1"):
    """The TLS material a client needs for a listener: None, or dict(ca, cert, key)."""
    if listener == "PLAINTEXT":
        return None
    cert, key, ca = pki.pem(client)
    if listener == "SSL":
        return {"ca": str(ca)}
    return {"ca": str(ca), "cert": str(cert), "key": str(key)}


def sasl_security(mechanism, username, password, ca=None):
    sec = {"sasl": {"mechanism": mechanism, "username": username, "password": password}}
    if ca:
        sec["ca"] = str(ca)
    return sec


def librdkafka_conf(sec):
    if sec is None:
        return {"security.protocol": "plaintext"}
    conf = {"security.protocol": "ssl"}
    if "sasl" in sec:
        conf = {"security.protocol": "sasl_ssl" if "ca" in sec else "sasl_plaintext",
                "sasl.mechanisms": sec["sasl"]["mechanism"], "sasl.username": sec["sasl"]["username"],
                "sasl.password": sec["sasl"]["password"]}
    if "ca" in sec:
        conf["ssl.ca.location"] = sec["ca"]
    if "cert" in sec:
        conf["ssl.certificate.location"] = sec["cert"]
        conf["ssl.key.location"] = sec["key"]
    return conf


# ---- confluent-kafka (librdkafka in-process)
def confluent_produce(bootstrap, sec, topic, records, compression="none", idempotent=False):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": bootstrap, "compression.type": compression, "acks": "all",
            "enable.idempotence": idempotent, "message.max.bytes": 1000000, "linger.ms": 5}
    conf.update(librdkafka_conf(sec))
    producer = Producer(conf)
    errors = []
    for key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers or None,
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records not delivered"
    assert not errors, errors


def confluent_consume(bootstrap, sec, topic, count, partition=0, timeout=60):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    import time
    conf = {"bootstrap.servers": bootstrap, "group.id": "bulwark-test-unused", "enable.auto.commit": False,
            "fetch.message.max.bytes": 2000000}
    conf.update(librdkafka_conf(sec))
    consumer = Consumer(conf)
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        out.append((msg.key(), msg.value(), [(k, v) for k, v in (msg.headers() or [])]))
    consumer.close()
    return out


# ---- kafka-python
def kafka_python_kwargs(sec):
    if sec is None:
        return {"security_protocol": "PLAINTEXT"}
    if "sasl" in sec:
        kw = {"security_protocol": "SASL_SSL" if "ca" in sec else "SASL_PLAINTEXT",
              "sasl_mechanism": sec["sasl"]["mechanism"], "sasl_plain_username": sec["sasl"]["username"],
              "sasl_plain_password": sec["sasl"]["password"]}
        if "ca" in sec:
            kw.update({"ssl_cafile": sec["ca"], "ssl_check_hostname": True})
        return kw
    kw = {"security_protocol": "SSL", "ssl_cafile": sec["ca"], "ssl_check_hostname": True}
    if "cert" in sec:
        kw["ssl_certfile"] = sec["cert"]
        kw["ssl_keyfile"] = sec["key"]
    return kw


def kafka_python_produce(bootstrap, sec, topic, records, compression="none"):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=1048576,
                             compression_type=None if compression == "none" else compression,
                             **kafka_python_kwargs(sec))
    futures = [producer.send(topic, key=k, value=v, headers=h or []) for k, v, h in records]
    for f in futures:
        f.get(timeout=60)
    producer.close()


def kafka_python_consume(bootstrap, sec, topic, count, partition=0, timeout=60):
    from kafka import KafkaConsumer, TopicPartition
    import time
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=2000000, fetch_max_bytes=4000000, **kafka_python_kwargs(sec))
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            for msg in batch:
                out.append((msg.key, msg.value, list(msg.headers)))
    consumer.close()
    return out


# ---- kcat
def kcat_args(bootstrap, sec):
    args = ["kcat", "-b", bootstrap]
    for k, v in librdkafka_conf(sec).items():
        args += ["-X", f"{k}={v}"]
    return args


def kcat_produce(bootstrap, sec, topic, records, compression="none"):
    """kcat reads one record per invocation here so that keys, null values and headers are exact:
    `key<TAB>value` with -K, and -Z so that an empty value is sent as NULL."""
    for key, value, headers in records:
        args = kcat_args(bootstrap, sec) + ["-P", "-t", topic, "-z", compression, "-X", "message.max.bytes=1000000",
                                            "-X", "acks=all", "-Z"]
        line = value or b""
        if key is not None:
            args += ["-K", "\t"]
            line = key + b"\t" + line
        for hk, hv in headers or []:
            args += ["-H", f"{hk}={hv.decode()}"]
        # One line on stdin is one message (values here hold no newline).
        result = subprocess.run(args, input=line + b"\n", capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode()


def kcat_consume(bootstrap, sec, topic, count, partition=0, timeout=60):
    args = kcat_args(bootstrap, sec) + ["-C", "-t", topic, "-o", "beginning", "-c", str(count), "-e", "-J",
                                        "-X", "fetch.message.max.bytes=2000000"]
    if partition is not None:  # None: every partition
        args += ["-p", str(partition)]
    result = subprocess.run(args, capture_output=True, timeout=timeout)
    assert result.returncode == 0, result.stderr.decode()
    out = []
    for line in result.stdout.decode().splitlines():
        m = json.loads(line)
        headers = m.get("headers") or []
        hs = [(headers[i], headers[i + 1].encode()) for i in range(0, len(headers), 2)]
        key = None if m.get("key") is None else m["key"].encode()
        value = None if m.get("payload") is None else m["payload"].encode()
        out.append((key, value, hs))
    return out


def kcat_metadata(bootstrap, sec):
    result = subprocess.run(kcat_args(bootstrap, sec) + ["-L", "-J"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


# ---- kafkajs (node)
def kafkajs(action, bootstrap, sec, **kw):
    b64 = lambda v: None if v is None else base64.b64encode(v).decode()
    if "records" in kw:
        kw["records"] = [{"key": b64(k), "value": b64(v), "headers": {hk: b64(hv) for hk, hv in (h or [])}}
                         for k, v, h in kw["records"]]
    sasl = (sec or {}).get("sasl")
    ssl = {k: v for k, v in sec.items() if k != "sasl"} if sec else None
    payload = {"action": action, "brokers": [bootstrap], "ssl": ssl or None, "sasl": sasl, **kw}
    result = subprocess.run(["node", str(HERE / "kafkajs_client.js"), json.dumps(payload)], capture_output=True,
                            timeout=120, cwd=HERE)
    out = json.loads(result.stdout.decode().strip().splitlines()[-1]) if result.stdout.strip() else {"ok": False}
    assert result.returncode == 0 and out.get("ok"), f"kafkajs {action} failed: {out} {result.stderr.decode()}"
    return out
