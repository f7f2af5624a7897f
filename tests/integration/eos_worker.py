"""A consume-transform-produce loop with exactly-once semantics (confluent-kafka): reads `input` as a
member of `group` (read_committed), writes each record's value, transformed, to `output` inside a
transaction together with the consumed offsets (send_offsets_to_transaction), and commits. Exits 0 once
nothing new has arrived for --idle seconds. test_transactions.py kills it with -9 at random points.
Usage: eos_worker.py '<json: bootstrap, conf, input, output, group, transactional_id, idle>'"""
import json
import random
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

args = json.loads(sys.argv[1])
conf = args["conf"]
consumer = Consumer({**conf, "bootstrap.servers": args["bootstrap"], "group.id": args["group"],
                     "group.instance.id": "eos-worker",  # a restarted worker takes the dead one's place at once
                     "isolation.level": "read_committed", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
producer = Producer({**conf, "bootstrap.servers": args["bootstrap"], "transactional.id": args["transactional_id"],
                     "transaction.timeout.ms": 60000})
producer.init_transactions(30)
consumer.subscribe([args["input"]])
last_news = time.time()
while time.time() - last_news < args["idle"]:
    records = [m for m in consumer.consume(num_messages=5, timeout=0.5) if m.error() is None]
    if not records:
        continue
    last_news = time.time()
    producer.begin_transaction()
    for m in records:
        producer.produce(args["output"], key=m.key(), value=b"out-" + m.value())
    time.sleep(random.uniform(0, 0.05))  # widen the window a kill can land in
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    try:
        producer.commit_transaction(30)
    except KafkaException as e:
        print(f"commit failed: {e}", file=sys.stderr)
        sys.exit(3)
consumer.close()
print("idle: done")
