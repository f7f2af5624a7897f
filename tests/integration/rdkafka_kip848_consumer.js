// A KIP-848 consumer for test_consumer_group_protocol.py: node-rdkafka (its bundled librdkafka 2.8)
// with group.protocol=consumer, so the group is run by ConsumerGroupHeartbeat, not JoinGroup/SyncGroup.
// node rdkafka_kip848_consumer.js '<json>' with {"bootstrap", "topic", "group"}. Each record is
// committed (OffsetCommit v9) before the next; one JSON line per record on stdout. SIGTERM: leave the
// group (heartbeat with epoch -1), print {"ev":"closed"}.
const Kafka = require('node-rdkafka');

const args = JSON.parse(process.argv[2]);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const consumer = new Kafka.KafkaConsumer({
  'bootstrap.servers': args.bootstrap,
  'group.id': args.group,
  'group.protocol': 'consumer',
  'enable.auto.commit': false,
  'broker.address.family': 'v4',
}, { 'auto.offset.reset': 'earliest' });

consumer.on('event.error', (e) => emit({ ev: 'error', message: e.message }));
consumer.on('ready', () => {
  emit({ ev: 'ready' });
  consumer.subscribe([args.topic]);
  consumer.consume();
});
consumer.on('data', (m) => {
  consumer.commitMessageSync(m);
  emit({ ev: 'record', partition: m.partition, offset: m.offset, value: m.value.toString() });
});
consumer.on('disconnected', () => {
  emit({ ev: 'closed' });
  process.exit(0);
});
process.on('SIGTERM', () => consumer.disconnect());
consumer.connect();
