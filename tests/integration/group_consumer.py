"""A consumer-group member run as its own process by test_groups.py, so a test can start, stop (SIGTERM:
finish the record in hand, commit, leave the group) or kill (SIGKILL) it.

usage: group_consumer.py <kafka-python|confluent> <bootstrap> <topic> <group> [session_timeout_ms [instance_id]]

Every record is committed (synchronously, offset + 1) before the next is read. One JSON line per event
on stdout: {"ev": "read", "p", "o", "v"}, {"ev": "commit", "p", "o"} after a successful commit,
{"ev": "commit_failed", "p", "o", "error"}, {"ev": "ready"} once subscribed, {"ev": "closed"} at a clean end.
"""
import json
import signal
import sys
import time

kind, bootstrap, topic, group = sys.argv[1:5]
session_timeout_ms = int(sys.argv[5]) if len(sys.argv) > 5 else 4000
instance_id = sys.argv[6] if len(sys.argv) > 6 else None  # group.instance.id (confluent only)
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def run_kafka_python():
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=session_timeout_ms,
                             heartbeat_interval_ms=300, max_poll_records=20, client_id=f"kp-{group}")
    emit(ev="ready")
    while not stopping:
        batches = consumer.poll(timeout_ms=200)
        for tp, records in batches.items():
            for record in records:
                emit(ev="read", p=record.partition, o=record.offset, v=record.value.decode())
                try:
                    consumer.commit({TopicPartition(topic, record.partition): OffsetAndMetadata(record.offset + 1, None)})
                    emit(ev="commit", p=record.partition, o=record.offset + 1)
                except Exception as e:  # noqa: BLE001 - reported to the test, which decides
                    emit(ev="commit_failed", p=record.partition, o=record.offset + 1, error=repr(e))
    consumer.close()  # LeaveGroup
    emit(ev="closed")


def run_confluent():
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": session_timeout_ms,
                         "heartbeat.interval.ms": 300, "client.id": f"ck-{group}",
                         **({"group.instance.id": instance_id} if instance_id else {})})
    consumer.subscribe([topic])
    emit(ev="ready")
    while not stopping:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        emit(ev="read", p=msg.partition(), o=msg.offset(), v=msg.value().decode())
        try:
            result = consumer.commit(offsets=[TopicPartition(topic, msg.partition(), msg.offset() + 1)],
                                     asynchronous=False)
            errors = [str(tp.error) for tp in result or [] if tp.error]
            if errors:
                emit(ev="commit_failed", p=msg.partition(), o=msg.offset() + 1, error=";".join(errors))
            else:
                emit(ev="commit", p=msg.partition(), o=msg.offset() + 1)
        except Exception as e:  # noqa: BLE001
            emit(ev="commit_failed", p=msg.partition(), o=msg.offset() + 1, error=repr(e))
    consumer.close()  # LeaveGroup
    emit(ev="closed")


{"kafka-python": run_kafka_python, "confluent": run_confluent}[kind]()
