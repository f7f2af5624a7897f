// kafkajs driven by the integration tests: node kafkajs_client.js '<json>' where json is
// {"action": "produce"|"consume"|"metadata", "brokers": [...], "ssl": null|{"ca","cert","key"},
//  "sasl": null|{"mechanism","username","password"}, "topic",
//  "records": [{"key","value","headers"}] (values base64, null allowed), "compression", "count", "group"}.
// Prints one JSON line with the result.
const fs = require('fs');
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');

const args = JSON.parse(process.argv[2]);
const decode = (v) => (v === null || v === undefined ? null : Buffer.from(v, 'base64'));
const encode = (v) => (v === null || v === undefined ? null : Buffer.from(v).toString('base64'));

function sslOptions(ssl) {
  if (!ssl) return undefined;
  const out = { ca: [fs.readFileSync(ssl.ca, 'utf-8')], rejectUnauthorized: true };
  if (ssl.cert) out.cert = fs.readFileSync(ssl.cert, 'utf-8');
  if (ssl.key) out.key = fs.readFileSync(ssl.key, 'utf-8');
  return out;
}

async function main() {
  const kafka = new Kafka({
    clientId: 'bulwark-test-kafkajs',
    brokers: args.brokers,
    ssl: sslOptions(args.ssl),
    sasl: args.sasl ? { ...args.sasl, mechanism: args.sasl.mechanism.toLowerCase() } : undefined,
    logLevel: logLevel.ERROR,
    retry: { retries: 3 },
  });
  if (args.action === 'produce') {
    const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: !!args.idempotent });
    await producer.connect();
    const compression = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }[args.compression || 'none'];
    const result = await producer.send({
      topic: args.topic,
      acks: -1,
      compression,
      messages: args.records.map((r) => ({
        key: decode(r.key),
        value: decode(r.value),
        headers: Object.fromEntries(Object.entries(r.headers || {}).map(([k, v]) => [k, decode(v)])),
      })),
    });
    await producer.disconnect();
    console.log(JSON.stringify({ ok: true, result }));
  } else if (args.action === 'metadata') {
    const admin = kafka.admin();
    await admin.connect();
    const topics = await admin.fetchTopicMetadata({ topics: [args.topic] });
    await admin.disconnect();
    console.log(JSON.stringify({ ok: true, topics }));
  } else if (args.action === 'create') {
    const admin = kafka.admin();
    await admin.connect();
    const created = await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: args.partitions || 1 }] });
    await admin.disconnect();
    console.log(JSON.stringify({ ok: true, created }));
  } else if (args.action === 'offsets') {
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(args.topic);
    await admin.disconnect();
    console.log(JSON.stringify({ ok: true, offsets }));
  } else if (args.action === 'consume') {
    // kafkajs consumes only as a group member: join args.group, read args.count records from the start.
    const consumer = kafka.consumer({ groupId: args.group, sessionTimeout: 6000, heartbeatInterval: 500,
                                      maxBytesPerPartition: 2 * 1024 * 1024 });
    await consumer.connect();
    await consumer.subscribe({ topic: args.topic, fromBeginning: true });
    const records = [];
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${records.length} of ${args.count} records`)), 60000);
      consumer.run({
        eachMessage: async ({ message }) => {
          records.push({
            key: encode(message.key),
            value: encode(message.value),
            headers: Object.fromEntries(Object.entries(message.headers || {}).map(([k, v]) => [k, encode(v)])),
          });
          if (records.length >= args.count) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
    await consumer.disconnect();
    console.log(JSON.stringify({ ok: true, records }));
  } else {
    throw new Error('unknown action ' + args.action);
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
