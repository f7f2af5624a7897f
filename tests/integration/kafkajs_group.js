// A kafkajs consumer-group member for test_groups.py (the same contract as group_consumer.py):
// node kafkajs_group.js '<json>' with {"brokers": [...], "topic", "group", "sessionTimeout",
// "assigner": "kafkajs"|"roundrobin"}. "roundrobin" names kafkajs's round-robin assigner as the Java
// and librdkafka clients do, so kafkajs can share a group with them (kafkajs calls it
// "RoundRobinAssigner", a protocol no other client offers).
// Each record is committed (offset + 1) before the next; one JSON line per event on stdout. SIGTERM:
// finish the record in hand, leave the group, print {"ev":"closed"}.
const { Kafka, logLevel, PartitionAssigners } = require('kafkajs');

const args = JSON.parse(process.argv[2]);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const javaRoundRobin = (config) => {
  const assigner = PartitionAssigners.roundRobin(config);
  return { ...assigner, name: 'roundrobin', protocol: assigner.protocol, assign: assigner.assign };
};

async function main() {
  const kafka = new Kafka({
    clientId: 'kj-' + args.group,
    brokers: args.brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 },
  });
  const consumer = kafka.consumer({
    groupId: args.group,
    sessionTimeout: args.sessionTimeout || 4000,
    heartbeatInterval: 300,
    rebalanceTimeout: 20000,
    // kafkajs heartbeats between fetches only: a fetch must not wait longer than the session lasts.
    maxWaitTimeInMs: 250,
    partitionAssigners: args.assigner === 'roundrobin' ? [javaRoundRobin] : [PartitionAssigners.roundRobin],
  });
  let stopping = false;
  process.on('SIGTERM', async () => {
    if (stopping) return;
    stopping = true;
    await consumer.disconnect();  // waits for the record in hand, then LeaveGroup
    emit({ ev: 'closed' });
    process.exit(0);
  });
  consumer.on(consumer.events.CRASH, (e) => emit({ ev: 'crash', error: String(e.payload && e.payload.error) }));
  await consumer.connect();
  await consumer.subscribe({ topics: [args.topic], fromBeginning: true });
  emit({ ev: 'ready' });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const offset = Number(message.offset);
      emit({ ev: 'read', p: partition, o: offset, v: message.value.toString() });
      try {
        await consumer.commitOffsets([{ topic, partition, offset: String(offset + 1) }]);
        emit({ ev: 'commit', p: partition, o: offset + 1 });
      } catch (e) {
        emit({ ev: 'commit_failed', p: partition, o: offset + 1, error: String(e) });
        throw e;  // kafkajs then rejoins and resumes from the committed offset
      }
    },
  });
}

main().catch((e) => {
  emit({ ev: 'error', error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
