// The one table of keys. Names, types and defaults are Kafka 3.7's (KafkaConfig, SslConfigs,
// BrokerSecurityConfigs, StandardAuthorizer). The status column says what Bulwark acts on today: move a
// key from N (accepted, validated, reported at start-up as not enforced) to S when the broker honours it.
#include <algorithm>

#include "config/config.h"

namespace bulwark::config {
namespace {

constexpr auto S = KeyStatus::supported;
constexpr auto N = KeyStatus::not_enforced;
constexpr std::optional<std::string_view> null = std::nullopt;
constexpr std::int64_t kLongMax = INT64_MAX;
constexpr std::int64_t kNoMin = INT64_MIN;

using enum KeyType;

std::vector<KeySpec> make_specs() {
  // name, type, default, status, per-listener, min, max, allowed values, case-insensitive
  return {
      // --- KRaft identity and quorum
      {"node.id", int32, "-1", S},
      {"broker.id", int32, "-1", S},
      {"process.roles", list, "", S, false, kNoMin, kLongMax, {"broker", "controller"}},
      {"controller.quorum.voters", list, "", S},
      {"controller.quorum.bootstrap.servers", list, "", N},  // Kafka 3.9 dynamic quorum; voters still required
      {"early.start.listeners", string, null, N},
      {"controller.listener.names", list, "", S},
      {"metadata.log.dir", string, null, S},
      {"controller.quorum.election.timeout.ms", int32, "1000", S, false, 1},
      {"controller.quorum.fetch.timeout.ms", int32, "2000", S, false, 1},
      {"controller.quorum.election.backoff.max.ms", int32, "1000", S, false, 1},
      {"controller.quorum.append.linger.ms", int32, "25", N},
      {"controller.quorum.request.timeout.ms", int32, "2000", S, false, 1},
      {"controller.quorum.retry.backoff.ms", int32, "20", S, false, 1},
      {"metadata.log.segment.bytes", int32, "1073741824", N, false, 12},
      {"metadata.log.max.record.bytes.between.snapshots", int64, "20971520", S, false, 1},
      {"metadata.max.retention.bytes", int64, "104857600", N},
      {"metadata.max.retention.ms", int64, "604800000", N},
      {"initial.broker.registration.timeout.ms", int32, "60000", N},
      {"broker.heartbeat.interval.ms", int32, "2000", S, false, 1},
      {"broker.session.timeout.ms", int32, "9000", S, false, 1},
      {"broker.rack", string, null, S},

      // --- listeners
      {"listeners", string, "PLAINTEXT://:9092", S},
      {"advertised.listeners", string, null, S},
      {"listener.security.protocol.map", string,
       "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", S},
      {"inter.broker.listener.name", string, null, S},
      {"security.inter.broker.protocol", string, "PLAINTEXT", S, false, kNoMin, kLongMax,
       {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}, true},
      {"socket.send.buffer.bytes", int32, "102400", S},
      {"socket.receive.buffer.bytes", int32, "102400", S},
      {"socket.request.max.bytes", int32, "104857600", S, false, 1},
      {"socket.listen.backlog.size", int32, "50", N, false, 1},
      {"num.network.threads", int32, "3", S, false, 1},
      {"num.io.threads", int32, "8", S, false, 1},
      {"queued.max.requests", int32, "500", S, false, 1},
      {"queued.max.request.bytes", int64, "-1", S, false, -1},
      {"connections.max.idle.ms", int64, "600000", S},
      // Bulwark's own key (Kafka has none): a request whose first byte arrived, or a TLS handshake, must
      // arrive in full within this time or the connection closes (slow-loris guard). Clients give up on a
      // request after their request.timeout.ms (30 s) anyway.
      {"bulwark.request.receive.timeout.ms", int64, "30000", S, false, 1},
      {"max.connections", int32, "2147483647", S, true, 0},
      {"max.connections.per.ip", int32, "2147483647", S, false, 0},
      {"max.connections.per.ip.overrides", string, "", S},
      {"max.connection.creation.rate", int32, "2147483647", N, true, 0},
      {"connections.max.reauth.ms", int64, "0", N, true},
      {"connection.failed.authentication.delay.ms", int32, "100", S, false, 0},
      // Client quotas: the samples their rates are measured over (docs/quotas.md).
      {"quota.window.num", int32, "11", S, false, 1},
      {"quota.window.size.seconds", int32, "1", S, false, 1},

      // --- TLS (also as listener.name.<l>.ssl.*)
      {"ssl.keystore.type", string, "JKS", S, true, kNoMin, kLongMax, {"JKS", "PKCS12", "PEM"}, true},
      {"ssl.keystore.location", string, null, S, true},
      {"ssl.keystore.password", password, null, S, true},
      {"ssl.keystore.key", password, null, S, true},
      {"ssl.keystore.certificate.chain", password, null, S, true},
      {"ssl.key.password", password, null, S, true},
      {"ssl.truststore.type", string, "JKS", S, true, kNoMin, kLongMax, {"JKS", "PKCS12", "PEM"}, true},
      {"ssl.truststore.location", string, null, S, true},
      {"ssl.truststore.password", password, null, S, true},
      {"ssl.truststore.certificates", password, null, S, true},
      {"ssl.client.auth", string, "none", S, true, kNoMin, kLongMax, {"none", "requested", "required"}},
      // Bulwark speaks TLS 1.2 and 1.3 only (DESIGN.md), so older names are refused rather than ignored.
      {"ssl.enabled.protocols", list, "TLSv1.2,TLSv1.3", S, true, kNoMin, kLongMax, {"TLSv1.2", "TLSv1.3"}},
      {"ssl.protocol", string, "TLSv1.3", S, true, kNoMin, kLongMax, {"TLS", "TLSv1.2", "TLSv1.3"}},
      {"ssl.cipher.suites", list, "", S, true},
      {"ssl.endpoint.identification.algorithm", string, "https", S, true, kNoMin, kLongMax, {"", "https"}, true},
      {"ssl.principal.mapping.rules", string, "DEFAULT", S, true},
      {"ssl.keymanager.algorithm", string, "SunX509", N, true},
      {"ssl.trustmanager.algorithm", string, "PKIX", N, true},
      {"ssl.secure.random.implementation", string, null, N, true},
      {"ssl.provider", string, null, N, true},
      {"ssl.engine.factory.class", class_name, null, N, true},
      {"ssl.allow.dn.changes", boolean, "false", S, true},
      {"ssl.allow.san.changes", boolean, "false", S, true},
      // Bulwark's own TLS keys. Kafka leaves CRLs to the JVM's java.security; here a PEM or DER CRL file,
      // reloaded like the truststore.
      {"ssl.crl.location", string, null, S, true},
      // Warn this many days before a certificate of ours or a trusted CA expires (start-up, then hourly).
      {"bulwark.ssl.certificate.expiry.warning.days", int32, "30", S, false, 0},
      // Reload a listener when its keystore, truststore or CRL file changes (SIGHUP always reloads).
      {"bulwark.ssl.reload.on.file.change", boolean, "true", S},
      // Prometheus metrics over HTTP (loopback by default; empty = off). Kafka exports JMX instead.
      {"metrics.listener", string, "http://127.0.0.1:9404", S},
      // An https:// metrics.listener serves with this listener's keystore (default: the first TLS
      // listener), reloaded with it, and asks scrapers for a certificate as metrics.ssl.client.auth says.
      {"metrics.ssl.listener.name", string, null, S},
      {"metrics.ssl.client.auth", string, "none", S, false, kNoMin, kLongMax, {"none", "requested", "required"}, true},
      {"principal.builder.class", class_name, null, N, true},

      // --- SASL (listener.name.<l>.<mechanism>.sasl.jaas.config for the JAAS config)
      {"sasl.enabled.mechanisms", list, "GSSAPI", S, true, kNoMin, kLongMax,
       {"GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}},
      {"sasl.mechanism.inter.broker.protocol", string, "GSSAPI", N, false, kNoMin, kLongMax,
       {"GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}},
      {"sasl.mechanism.controller.protocol", string, "GSSAPI", N, false, kNoMin, kLongMax,
       {"GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}},
      {"sasl.jaas.config", password, null, S, true},
      {"sasl.server.max.receive.size", int32, "524288", S, false, 1},
      {"sasl.server.callback.handler.class", class_name, null, N, true},
      {"sasl.login.callback.handler.class", class_name, null, N, true},
      {"sasl.login.class", class_name, null, N, true},
      {"sasl.kerberos.service.name", string, null, N, true},

      // --- authorization (StandardAuthorizer's keys)
      {"authorizer.class.name", class_name, "", S},
      {"super.users", string, null, S},
      {"allow.everyone.if.no.acl.found", boolean, "false", S},

      // --- log storage
      {"log.dirs", string, null, S},
      {"log.dir", string, "/tmp/kafka-logs", S},
      {"num.partitions", int32, "1", S, false, 1},
      {"auto.create.topics.enable", boolean, "true", S},
      {"delete.topic.enable", boolean, "true", S},
      {"log.segment.bytes", int32, "1073741824", S, false, 14},
      {"log.roll.ms", int64, null, S},
      {"log.roll.hours", int32, "168", S, false, 1},
      {"log.roll.jitter.ms", int64, null, N},
      {"log.roll.jitter.hours", int32, "0", N, false, 0},
      {"log.retention.ms", int64, null, S},
      {"log.retention.minutes", int32, null, S},
      {"log.retention.hours", int32, "168", S},
      {"log.retention.bytes", int64, "-1", S},
      {"log.retention.check.interval.ms", int64, "300000", S, false, 1},
      {"log.flush.interval.messages", int64, "9223372036854775807", S, false, 1},
      {"log.flush.interval.ms", int64, null, S},
      {"log.flush.scheduler.interval.ms", int64, "9223372036854775807", S},
      {"log.flush.offset.checkpoint.interval.ms", int32, "60000", N, false, 0},
      {"log.index.size.max.bytes", int32, "10485760", N, false, 4},
      {"log.index.interval.bytes", int32, "4096", N, false, 0},
      {"log.preallocate", boolean, "false", N},
      {"log.segment.delete.delay.ms", int64, "60000", N, false, 0},
      {"num.recovery.threads.per.data.dir", int32, "1", N, false, 1},
      {"message.max.bytes", int32, "1048588", S, false, 0},
      {"compression.type", string, "producer", S, false, kNoMin, kLongMax,
       {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}},
      {"log.message.timestamp.type", string, "CreateTime", S, false, kNoMin, kLongMax, {"CreateTime", "LogAppendTime"}},
      {"log.message.timestamp.difference.max.ms", int64, "9223372036854775807", N, false, 0},
      {"log.cleanup.policy", list, "delete", S, false, kNoMin, kLongMax, {"delete", "compact"}},
      {"log.cleaner.enable", boolean, "true", S},
      {"log.cleaner.threads", int32, "1", S, false, 0},
      {"log.cleaner.delete.retention.ms", int64, "86400000", S, false, 0},
      {"log.cleaner.min.cleanable.ratio", string, "0.5", S},
      {"log.cleaner.dedupe.buffer.size", int64, "134217728", S, false, 1024},
      {"log.cleaner.backoff.ms", int64, "15000", S, false, 0},
      {"log.cleaner.io.max.bytes.per.second", string, "1.7976931348623157E308", S},
      {"log.cleaner.min.compaction.lag.ms", int64, "0", S, false, 0},
      {"log.cleaner.max.compaction.lag.ms", int64, "9223372036854775807", S, false, 1},
      {"log.message.format.version", string, null, N},

      // --- replication
      {"default.replication.factor", int32, "1", N},
      {"min.insync.replicas", int32, "1", S, false, 1},
      {"unclean.leader.election.enable", boolean, "false", N},
      {"replica.lag.time.max.ms", int64, "30000", S, false, 1},
      {"num.replica.fetchers", int32, "1", N},
      {"replica.fetch.max.bytes", int32, "1048576", S, false, 0},
      {"replica.fetch.wait.max.ms", int32, "500", S, false, 0},
      {"replica.fetch.min.bytes", int32, "1", S, false, 0},
      {"replica.fetch.response.max.bytes", int32, "10485760", S, false, 0},
      {"replica.fetch.backoff.ms", int32, "1000", S, false, 0},
      {"replica.socket.timeout.ms", int32, "30000", S, false, 1},
      {"replica.socket.receive.buffer.bytes", int32, "65536", N},
      {"replica.high.watermark.checkpoint.interval.ms", int64, "5000", S, false, 1},
      {"auto.leader.rebalance.enable", boolean, "true", S},
      {"leader.imbalance.check.interval.seconds", int64, "300", S, false, 1},
      {"leader.imbalance.per.broker.percentage", int32, "10", S, false, 0},
      {"controlled.shutdown.enable", boolean, "true", N},
      {"inter.broker.protocol.version", string, null, N},

      // --- groups and offsets
      {"offsets.topic.replication.factor", int16, "3", S, false, 1},
      {"offsets.topic.num.partitions", int32, "50", S, false, 1},
      {"offsets.topic.segment.bytes", int32, "104857600", S, false, 1},
      {"offsets.retention.minutes", int32, "10080", S, false, 1},
      {"offsets.retention.check.interval.ms", int64, "600000", N, false, 1},
      {"offsets.commit.timeout.ms", int32, "5000", S, false, 1},
      {"offsets.load.buffer.size", int32, "5242880", N, false, 1},
      {"group.initial.rebalance.delay.ms", int32, "3000", S},
      {"group.min.session.timeout.ms", int32, "6000", S},
      {"group.max.session.timeout.ms", int32, "1800000", S},
      {"group.max.size", int32, "2147483647", N, false, 1},
      {"group.coordinator.rebalance.protocols", list, "classic", S, false, kNoMin, kLongMax, {"classic", "consumer"}},
      {"group.consumer.session.timeout.ms", int32, "45000", S, false, 1},
      {"group.consumer.heartbeat.interval.ms", int32, "5000", S, false, 1},
      {"group.consumer.max.size", int32, "2147483647", S, false, 1},

      // --- transactions
      {"transaction.state.log.replication.factor", int16, "3", S, false, 1},
      {"transaction.state.log.min.isr", int32, "2", S, false, 1},
      {"transaction.state.log.num.partitions", int32, "50", S, false, 1},
      {"transaction.state.log.segment.bytes", int32, "104857600", S, false, 1},
      {"transaction.max.timeout.ms", int32, "900000", S, false, 1},
      {"transactional.id.expiration.ms", int32, "604800000", S, false, 1},
      {"transaction.abort.timed.out.transaction.cleanup.interval.ms", int32, "10000", S, false, 1},
      {"transaction.remove.expired.transaction.cleanup.interval.ms", int32, "3600000", S, false, 1},
      {"producer.id.expiration.ms", int32, "86400000", S, false, 1},
      {"producer.id.expiration.check.interval.ms", int32, "600000", S, false, 1},

      // --- misc
      {"metric.reporters", list, "", N},
      {"auto.include.jmx.reporter", boolean, "true", N},
      {"request.timeout.ms", int32, "30000", N},
      {"max.incremental.fetch.session.cache.slots", int32, "1000", S, false, 0},
      {"fetch.max.bytes", int32, "57671680", N, false, 1024},
      {"delegation.token.master.key", password, null, N},
      {"delegation.token.secret.key", password, null, N},
  };
}

}  // namespace

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> specs = make_specs();
  return specs;
}

const KeySpec* find_key_spec(std::string_view name) {
  const auto& specs = key_specs();
  auto it = std::find_if(specs.begin(), specs.end(), [&](const KeySpec& s) { return s.name == name; });
  return it == specs.end() ? nullptr : &*it;
}

}  // namespace bulwark::config
