// kafkajs's transactional producer: node kafkajs_txn.js '<json>' with {"brokers", "ssl", "topic",
// "transactionalId", "commit": n, "abort": m}: one transaction of n records committed, then one of m
// records aborted. Prints {"ok": true} or {"error": "..."}.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const args = JSON.parse(process.argv[2]);
const ssl = args.ssl && { ca: [fs.readFileSync(args.ssl.ca, 'utf-8')], cert: fs.readFileSync(args.ssl.cert, 'utf-8'),
  key: fs.readFileSync(args.ssl.key, 'utf-8'), rejectUnauthorized: true };

async function main() {
  const kafka = new Kafka({ clientId: 'bulwark-test-kafkajs-txn', brokers: args.brokers, ssl, logLevel: logLevel.ERROR });
  const producer = kafka.producer({ transactionalId: args.transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (const [n, commit] of [[args.commit, true], [args.abort, false]]) {
    const txn = await producer.transaction();
    const messages = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `${commit ? 'committed' : 'aborted'}-${i}` }));
    await txn.send({ topic: args.topic, messages });
    if (commit) await txn.commit(); else await txn.abort();
  }
  await producer.disconnect();
  console.log(JSON.stringify({ ok: true }));
}
main().catch((e) => { console.log(JSON.stringify({ error: String(e && e.stack || e) })); process.exit(1); });
