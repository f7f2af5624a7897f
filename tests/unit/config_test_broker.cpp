// BrokerConfig: typed keys, Kafka's validation messages, listeners, per-listener overrides, passwords.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "config/config.h"

using namespace bulwark::config;

namespace {

// A valid combined KRaft node with one SSL client listener and an SSL controller listener.
const std::string kBase =
    "process.roles=broker,controller\n"                                         // 1
    "node.id=1\n"                                                               // 2
    "controller.quorum.voters=1@localhost:9093\n"                               // 3
    "listeners=SSL://:9092,CONTROLLER://:9093\n"                                // 4
    "advertised.listeners=SSL://localhost:9092\n"                               // 5
    "controller.listener.names=CONTROLLER\n"                                    // 6
    "listener.security.protocol.map=CONTROLLER:SSL,SSL:SSL\n"                   // 7
    "inter.broker.listener.name=SSL\n"                                          // 8
    "ssl.keystore.location=/etc/bulwark/node.p12\n"                             // 9
    "ssl.keystore.type=PKCS12\n"                                                // 10
    "ssl.keystore.password=s3cret-keystore\n"                                   // 11
    "log.dirs=/var/lib/bulwark\n";                                              // 12

// Replaces (or appends) `key=value` in kBase, keeping line numbers of the other keys.
std::string with(std::string text, const std::string& key, const std::string& value) {
  std::istringstream in(text);
  std::string line, out;
  bool replaced = false;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) {
      line = key + "=" + value;
      replaced = true;
    }
    out += line + "\n";
  }
  if (!replaced) out += key + "=" + value + "\n";
  return out;
}

std::string without(std::string text, const std::string& key) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) line = "# removed";
    out += line + "\n";
  }
  return out;
}

bulwark::Result<BrokerConfig> load(const std::string& text) {
  auto props = parse_properties(text, "server.properties");
  if (!props) return props.error();
  auto config = build_broker_config(*props);
  if (!config) return config.error();
  auto status = validate(*config);
  if (!status) return status.error();
  return config;
}

BrokerConfig load_ok(const std::string& text) {
  auto c = load(text);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : BrokerConfig{};
}

std::string load_error(const std::string& text) {
  auto c = load(text);
  EXPECT_FALSE(c.ok()) << "expected the config to be refused";
  return c.ok() ? std::string() : c.error().message;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(BrokerConfig, BaseConfigIsValid) {
  auto c = load_ok(kBase);
  EXPECT_EQ(c.node_id, 1);
  EXPECT_TRUE(c.is_broker());
  EXPECT_TRUE(c.is_controller());
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].listener, "SSL");
  EXPECT_EQ(c.listeners[0].host, "");
  EXPECT_EQ(c.listeners[0].port, 9092);
  EXPECT_EQ(c.listeners[1].protocol, SecurityProtocol::ssl);
  ASSERT_EQ(c.advertised_listeners.size(), 1u);
  EXPECT_EQ(c.advertised_listeners[0].host, "localhost");
  EXPECT_EQ(c.inter_broker_listener_name, "SSL");
  EXPECT_EQ(c.inter_broker_security_protocol, SecurityProtocol::ssl);
  ASSERT_EQ(c.log_dirs.size(), 1u);
  EXPECT_EQ(c.log_dirs[0], "/var/lib/bulwark");
  // Kafka's defaults.
  EXPECT_EQ(c.num_partitions, 1);
  EXPECT_EQ(c.log_segment_bytes, 1073741824);
  EXPECT_EQ(c.message_max_bytes, 1048588);
  EXPECT_EQ(c.offsets_topic_replication_factor, 3);
  EXPECT_EQ(c.offsets_topic_num_partitions, 50);
  EXPECT_EQ(c.num_network_threads, 3);
  EXPECT_EQ(c.num_io_threads, 8);
  EXPECT_EQ(c.log_roll_ms, 168LL * 3600 * 1000);
  EXPECT_EQ(c.compression_type, "producer");
  EXPECT_EQ(c.log_message_timestamp_type, "CreateTime");
  EXPECT_EQ(c.log_cleanup_policy, std::vector<std::string>{"delete"});
  EXPECT_TRUE(c.auto_create_topics_enable);
  EXPECT_FALSE(c.unclean_leader_election_enable);
  EXPECT_EQ(c.log_flush_interval_ms, INT64_MAX);  // falls back to log.flush.scheduler.interval.ms
}

TEST(BrokerConfig, EnumMessageNamesFileLineKeyAndChoices) {
  auto msg = load_error(kBase + "ssl.client.auth=mandatory\n");
  EXPECT_EQ(msg, "server.properties:13: ssl.client.auth: 'mandatory' is not one of none, requested, required");
}

// A misspelt security key would be ignored and leave that protection off: it stops start-up, naming
// the key meant. Other unknown keys warn with the same suggestion.
TEST(BrokerConfig, AMisspeltSecurityKeyStopsStartUp) {
  EXPECT_CONTAINS(load_error(kBase + "ssl.clinet.auth=required\n"),
                  "server.properties:13: ssl.clinet.auth: unknown key; did you mean ssl.client.auth?");
  EXPECT_CONTAINS(load_error(kBase + "listener.name.mtls.ssl.client.auht=required\n"),
                  "did you mean listener.name.mtls.ssl.client.auth?");
  EXPECT_CONTAINS(load_error(kBase + "super.user=User:admin\n"), "did you mean super.users?");
  EXPECT_CONTAINS(load_error(kBase + "allow.everyone.if.no.acl.foud=false\n"),
                  "did you mean allow.everyone.if.no.acl.found?");
  EXPECT_CONTAINS(load_error(kBase + "sasl.enabled.mechanism=PLAIN\n"), "did you mean sasl.enabled.mechanisms?");
  // Unknown keys far from every security key start, with a suggestion when one is close.
  auto c = load_ok(kBase + "num.partiton=3\nno.such.key=1\n");
  auto report = c.startup_report();
  auto has = [&](const std::string& s) {
    for (const auto& line : report)
      if (line.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("unknown key num.partiton is ignored (did you mean num.partitions?)"));
  EXPECT_TRUE(has("unknown key no.such.key is ignored"));
  EXPECT_FALSE(has("no.such.key is ignored (did you mean"));
}

TEST(BrokerConfig, AMisspeltListenersKeyIsNamed) {
  std::string text = kBase;
  auto at = text.find("listeners=");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 10, "listners=");
  EXPECT_CONTAINS(load_error(text), "listners: unknown key; did you mean listeners?");
}

TEST(BrokerConfig, TypeAndRangeMessages) {
  EXPECT_CONTAINS(load_error(kBase + "num.partitions=abc\n"), "server.properties:13: num.partitions: 'abc' is not a valid int");
  EXPECT_CONTAINS(load_error(kBase + "num.partitions=0\n"), "server.properties:13: num.partitions: '0' is below the minimum 1");
  EXPECT_CONTAINS(load_error(kBase + "num.partitions=3000000000\n"), "num.partitions: '3000000000' is not a valid int");
  EXPECT_CONTAINS(load_error(kBase + "auto.create.topics.enable=yes\n"),
                  "auto.create.topics.enable: 'yes' is not a boolean (true or false)");
  EXPECT_CONTAINS(load_error(kBase + "compression.type=brotli\n"), "compression.type: 'brotli' is not one of");
  EXPECT_CONTAINS(load_error(kBase + "ssl.enabled.protocols=TLSv1.1,TLSv1.2\n"),
                  "ssl.enabled.protocols: 'TLSv1.1' is not one of TLSv1.2, TLSv1.3");
  EXPECT_CONTAINS(load_error(kBase + "offsets.topic.replication.factor=40000\n"),
                  "offsets.topic.replication.factor: '40000' is not a valid short");
  EXPECT_CONTAINS(load_error(kBase + "process.roles=broker,gateway\n"), "process.roles: 'gateway' is not one of broker, controller");
}

TEST(BrokerConfig, AllPerKeyProblemsAreReportedTogether) {
  auto msg = load_error(kBase + "num.io.threads=x\nmin.insync.replicas=0\n");
  EXPECT_CONTAINS(msg, "server.properties:13: num.io.threads");
  EXPECT_CONTAINS(msg, "server.properties:14: min.insync.replicas");
}

TEST(BrokerConfig, ValuesAreTrimmedAndBooleansIgnoreCase) {
  auto c = load_ok(kBase + "num.partitions=  6  \nauto.create.topics.enable=FALSE\n");
  EXPECT_EQ(c.num_partitions, 6);
  EXPECT_FALSE(c.auto_create_topics_enable);
}

TEST(BrokerConfig, MissingListenerProtocol) {
  auto msg = load_error(with(kBase, "listeners", "SSL://:9092,CONTROLLER://:9093,INTERNAL://:9094"));
  EXPECT_CONTAINS(msg, "server.properties:4: listeners: No security protocol defined for listener INTERNAL");
}

TEST(BrokerConfig, AdvertisedListenerMustExistInListeners) {
  auto text = with(kBase, "listener.security.protocol.map", "CONTROLLER:SSL,SSL:SSL,EXTERNAL:SSL");
  auto msg = load_error(with(text, "advertised.listeners", "SSL://localhost:9092,EXTERNAL://example.com:9094"));
  EXPECT_CONTAINS(msg, "server.properties:5: advertised.listeners: listener EXTERNAL is not defined in listeners (SSL, CONTROLLER)");
}

TEST(BrokerConfig, AdvertisedListenerMustNotBeController) {
  auto msg = load_error(with(kBase, "advertised.listeners", "SSL://localhost:9092,CONTROLLER://localhost:9093"));
  EXPECT_CONTAINS(msg, "advertised.listeners: must not contain the controller listener CONTROLLER");
}

TEST(BrokerConfig, ControllerListenerMustBeInListeners) {
  auto msg = load_error(with(kBase, "listeners", "SSL://:9092"));
  EXPECT_CONTAINS(msg, "server.properties:6: controller.listener.names: the controller listener CONTROLLER is not in listeners (SSL)");
}

TEST(BrokerConfig, ControllerNodeIdMustBeAVoter) {
  auto msg = load_error(with(kBase, "controller.quorum.voters", "2@localhost:9093,3@localhost:9095"));
  EXPECT_CONTAINS(msg, "server.properties:3: controller.quorum.voters: If process.roles contains the 'controller' role, "
                       "the node id 1 must be included in the set of voters (2,3)");
}

TEST(BrokerConfig, BrokerOnlyNodeMustNotBeAVoterNorBindTheControllerListener) {
  auto text = with(kBase, "process.roles", "broker");
  text = with(text, "listeners", "SSL://:9092");
  EXPECT_CONTAINS(load_error(text), "the node id 1 must not be included in the set of voters");
  auto ok = with(text, "controller.quorum.voters", "5@localhost:9093");
  auto c = load_ok(ok);
  EXPECT_FALSE(c.is_controller());
  auto bad = with(ok, "listeners", "SSL://:9092,CONTROLLER://:9093");
  EXPECT_CONTAINS(load_error(bad), "listeners: must not contain the controller listener CONTROLLER when process.roles=broker");
}

TEST(BrokerConfig, KraftRequiredKeys) {
  EXPECT_CONTAINS(load_error(without(kBase, "process.roles")), "process.roles: is not set: Bulwark runs in KRaft mode only");
  EXPECT_CONTAINS(load_error(without(kBase, "node.id")), "server.properties: node.id: is required");
  EXPECT_CONTAINS(load_error(without(kBase, "controller.quorum.voters")), "controller.quorum.voters: must list the controllers");
  EXPECT_CONTAINS(load_error(kBase + "broker.id=2\n"), "server.properties:13: broker.id: must equal node.id (1)");
  auto c = load_ok(with(without(kBase, "node.id"), "broker.id", "1"));  // broker.id alone still works
  EXPECT_EQ(c.node_id, 1);
}

TEST(BrokerConfig, SslListenerNeedsKeystore) {
  auto msg = load_error(without(kBase, "ssl.keystore.location"));
  EXPECT_CONTAINS(msg, "ssl.keystore.location: listener SSL uses SSL but has no keystore");
  EXPECT_CONTAINS(msg, "listener CONTROLLER uses SSL but has no keystore");
  // PEM in the config is a keystore too, but only with type PEM and both parts.
  auto pem = with(without(kBase, "ssl.keystore.location"), "ssl.keystore.type", "PEM");
  pem += "ssl.keystore.key=-----BEGIN PRIVATE KEY-----\\n...\nssl.keystore.certificate.chain=-----BEGIN CERTIFICATE-----\n";
  load_ok(pem);
  auto half = with(without(kBase, "ssl.keystore.location"), "ssl.keystore.type", "PEM") + "ssl.keystore.key=xyz\n";
  EXPECT_CONTAINS(load_error(half), "ssl.keystore.key and ssl.keystore.certificate.chain must be set together");
  auto wrong_type = without(kBase, "ssl.keystore.location") + "ssl.keystore.key=k\nssl.keystore.certificate.chain=c\n";
  EXPECT_CONTAINS(load_error(wrong_type), "a private key in the config needs ssl.keystore.type=PEM, but it is PKCS12");
  auto both = kBase + "ssl.keystore.key=k\nssl.keystore.certificate.chain=c\n";
  EXPECT_CONTAINS(load_error(with(both, "ssl.keystore.type", "PEM")), "Both ssl.keystore.location and ssl.keystore.key are set");
}

TEST(BrokerConfig, PerListenerKeystoreSatisfiesTheCheck) {
  auto text = without(kBase, "ssl.keystore.location");
  text += "listener.name.ssl.ssl.keystore.location=/a.p12\nlistener.name.controller.ssl.keystore.location=/b.p12\n";
  auto c = load_ok(text);
  EXPECT_EQ(c.security_for("SSL").keystore_location, "/a.p12");
  EXPECT_EQ(c.security_for("CONTROLLER").keystore_location, "/b.p12");
}

TEST(BrokerConfig, InterBrokerListenerMustExist) {
  auto msg = load_error(with(kBase, "inter.broker.listener.name", "REPLICATION"));
  EXPECT_CONTAINS(msg, "server.properties:8: inter.broker.listener.name: listener REPLICATION is not in listener.security.protocol.map");
  auto mapped = with(with(kBase, "inter.broker.listener.name", "REPLICATION"), "listener.security.protocol.map",
                     "CONTROLLER:SSL,SSL:SSL,REPLICATION:SSL");
  EXPECT_CONTAINS(load_error(mapped), "inter.broker.listener.name: the inter-broker listener REPLICATION is not defined in listeners");
  // Default security.inter.broker.protocol=PLAINTEXT needs a PLAINTEXT listener.
  EXPECT_CONTAINS(load_error(without(kBase, "inter.broker.listener.name")),
                  "server.properties: security.inter.broker.protocol: the inter-broker listener PLAINTEXT is not defined in listeners");
  EXPECT_CONTAINS(load_error(kBase + "security.inter.broker.protocol=SSL\n"),
                  "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set");
  auto by_protocol = without(kBase, "inter.broker.listener.name") + "security.inter.broker.protocol=SSL\n";
  EXPECT_EQ(load_ok(by_protocol).inter_broker_listener_name, "SSL");
}

TEST(BrokerConfig, LogDirs) {
  EXPECT_CONTAINS(load_error(with(kBase, "log.dirs", "")), "server.properties:12: log.dirs: no log directory given");
  EXPECT_CONTAINS(load_error(with(kBase, "log.dirs", " , ")), "log.dirs: no log directory given");
  EXPECT_CONTAINS(load_error(with(kBase, "log.dirs", "/a,/b,/a/")), "Duplicate log directory found: /a/");
  auto c = load_ok(with(kBase, "log.dirs", "/a, /b"));
  EXPECT_EQ(c.log_dirs, (std::vector<std::string>{"/a", "/b"}));
  auto fallback = load_ok(without(kBase, "log.dirs") + "log.dir=/single\n");
  EXPECT_EQ(fallback.log_dirs, std::vector<std::string>{"/single"});
  auto defaulted = load_ok(without(kBase, "log.dirs"));
  EXPECT_EQ(defaulted.log_dirs, std::vector<std::string>{"/tmp/kafka-logs"});
}

TEST(BrokerConfig, RetentionPrecedence) {
  constexpr std::int64_t hour = 3600 * 1000, minute = 60 * 1000;
  EXPECT_EQ(load_ok(kBase).log_retention_ms, 168 * hour);
  EXPECT_EQ(load_ok(kBase + "log.retention.hours=1\n").log_retention_ms, 1 * hour);
  EXPECT_EQ(load_ok(kBase + "log.retention.hours=1\nlog.retention.minutes=5\n").log_retention_ms, 5 * minute);
  EXPECT_EQ(load_ok(kBase + "log.retention.hours=1\nlog.retention.minutes=5\nlog.retention.ms=1234\n").log_retention_ms, 1234);
  EXPECT_EQ(load_ok(kBase + "log.retention.ms=-1\nlog.retention.hours=1\n").log_retention_ms, -1);
  EXPECT_EQ(load_ok(kBase + "log.retention.hours=-1\n").log_retention_ms, -1);
  EXPECT_EQ(load_ok(kBase + "log.retention.minutes=-5\n").log_retention_ms, -1);
  EXPECT_CONTAINS(load_error(kBase + "log.retention.ms=0\n"),
                  "server.properties:13: log.retention.ms: log.retention.ms must be unlimited (-1) or, equal or greater than 1");
  EXPECT_CONTAINS(load_error(kBase + "log.retention.minutes=0\n"), "server.properties:13: log.retention.minutes:");
  EXPECT_EQ(load_ok(kBase + "log.roll.hours=2\n").log_roll_ms, 2 * hour);
  EXPECT_EQ(load_ok(kBase + "log.roll.hours=2\nlog.roll.ms=777\n").log_roll_ms, 777);
  EXPECT_EQ(load_ok(kBase + "log.flush.interval.ms=50\n").log_flush_interval_ms, 50);
}

TEST(Listeners, Grammar) {
  std::map<std::string, SecurityProtocol> map{{"PLAINTEXT", SecurityProtocol::plaintext},
                                              {"SSL", SecurityProtocol::ssl},
                                              {"INTERNAL", SecurityProtocol::sasl_ssl}};
  auto eps = parse_listeners(" PLAINTEXT://:9092 , ssl://[::1]:9093,INTERNAL://host-1.example.com:0,", map);
  ASSERT_TRUE(eps.ok()) << eps.error().message;
  ASSERT_EQ(eps->size(), 3u);
  EXPECT_EQ((*eps)[0].listener, "PLAINTEXT");
  EXPECT_EQ((*eps)[0].host, "");
  EXPECT_EQ((*eps)[0].port, 9092);
  EXPECT_EQ((*eps)[1].listener, "SSL");  // normalised to upper case, as Kafka does
  EXPECT_EQ((*eps)[1].host, "::1");
  EXPECT_EQ((*eps)[1].port, 9093);
  EXPECT_EQ((*eps)[1].protocol, SecurityProtocol::ssl);
  EXPECT_EQ((*eps)[1].to_string(), "SSL://[::1]:9093");
  EXPECT_EQ((*eps)[2].host, "host-1.example.com");
  EXPECT_EQ((*eps)[2].protocol, SecurityProtocol::sasl_ssl);
  EXPECT_EQ((*eps)[0].to_string(), "PLAINTEXT://:9092");

  auto v6any = parse_listeners("SSL://[::]:9092", map);
  ASSERT_TRUE(v6any.ok());
  EXPECT_EQ((*v6any)[0].host, "::");

  EXPECT_FALSE(parse_listeners("SSL://:99999", map).ok());
  EXPECT_FALSE(parse_listeners("SSL://host", map).ok());
  EXPECT_FALSE(parse_listeners("SSL:/host:1", map).ok());
  EXPECT_FALSE(parse_listeners("SSL://[::1:9092", map).ok());
  EXPECT_FALSE(parse_listeners("SSL://bad host:9092", map).ok());
  auto dup = parse_listeners("SSL://:1,ssl://:2", map);
  ASSERT_FALSE(dup.ok());
  EXPECT_CONTAINS(dup.error().message, "Each listener must have a different name");
  auto unmapped = parse_listeners("OTHER://:1", map);
  ASSERT_FALSE(unmapped.ok());
  EXPECT_CONTAINS(unmapped.error().message, "No security protocol defined for listener OTHER");
}

TEST(Listeners, SamePortTwiceIsRefused) {
  auto msg = load_error(with(kBase, "listeners", "SSL://:9092,CONTROLLER://127.0.0.1:9092"));
  EXPECT_CONTAINS(msg, "listeners: Each listener must have a different port");
}

TEST(Listeners, DefaultAdvertisedIsListenersMinusControllerWithCanonicalHost) {
  auto c = load_ok(without(kBase, "advertised.listeners"));
  ASSERT_EQ(c.advertised_listeners.size(), 1u);
  EXPECT_EQ(c.advertised_listeners[0].listener, "SSL");
  EXPECT_EQ(c.advertised_listeners[0].host, canonical_host_name());
  EXPECT_FALSE(c.advertised_listeners[0].host.empty());
  EXPECT_CONTAINS(load_error(with(kBase, "advertised.listeners", "SSL://0.0.0.0:9092")), "nonroutable meta-address 0.0.0.0");
}

TEST(Listeners, ProtocolMap) {
  auto m = parse_security_protocol_map("a:ssl, B : SASL_SSL");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->at("A"), SecurityProtocol::ssl);
  EXPECT_EQ(m->at("B"), SecurityProtocol::sasl_ssl);
  auto bad = parse_security_protocol_map("A:TLS");
  ASSERT_FALSE(bad.ok());
  EXPECT_CONTAINS(bad.error().message, "'TLS' is not a security protocol");
  EXPECT_FALSE(parse_security_protocol_map("A").ok());
  EXPECT_FALSE(parse_security_protocol_map("A:SSL,a:SSL").ok());
  EXPECT_CONTAINS(load_error(with(kBase, "listener.security.protocol.map", "CONTROLLER:SSL,SSL:TLS")),
                  "server.properties:7: listener.security.protocol.map: 'TLS' is not a security protocol");
}

TEST(Listeners, KafkaDefaultMapGivesControllerPlaintextWhenNothingIsSecure) {
  std::string text =
      "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@localhost:9093\n"
      "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\nlog.dirs=/x\n";
  auto c = load_ok(text);
  EXPECT_EQ(c.find_listener("CONTROLLER")->protocol, SecurityProtocol::plaintext);
  auto report = c.startup_report();
  bool warned = false;
  for (const auto& line : report) warned = warned || line.find("controller listener CONTROLLER uses PLAINTEXT") != std::string::npos;
  EXPECT_TRUE(warned);
  // With an SSL listener in use Kafka adds no default mapping.
  auto ssl_text = kBase;
  ssl_text = without(ssl_text, "listener.security.protocol.map");
  EXPECT_CONTAINS(load_error(ssl_text), "No security protocol defined for listener CONTROLLER");
}

TEST(QuorumVoters, Grammar) {
  auto v = parse_quorum_voters("0@localhost:19093, 1@[::1]:29093,2@10.0.0.3:39093");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[0].id, 0);
  EXPECT_EQ((*v)[0].host, "localhost");
  EXPECT_EQ((*v)[1].host, "::1");
  EXPECT_EQ((*v)[1].port, 29093);
  EXPECT_EQ((*v)[2].id, 2);
  EXPECT_FALSE(parse_quorum_voters("localhost:9093").ok());
  EXPECT_FALSE(parse_quorum_voters("x@localhost:9093").ok());
  EXPECT_FALSE(parse_quorum_voters("1@:9093").ok());
  EXPECT_FALSE(parse_quorum_voters("1@a:1,1@b:2").ok());
  EXPECT_CONTAINS(load_error(with(kBase, "controller.quorum.voters", "1@localhost")),
                  "server.properties:3: controller.quorum.voters: '1@localhost': no port given");
}

TEST(ListenerSecurity, PrefixOverridesGlobal) {
  auto text = kBase +
              "ssl.client.auth=required\n"
              "ssl.truststore.location=/global/trust.jks\n"
              "ssl.truststore.password=trust-pass\n"
              "listener.name.controller.ssl.client.auth=requested\n"
              "listener.name.controller.ssl.truststore.location=/controller/trust.p12\n"
              "listener.name.controller.ssl.truststore.type=pkcs12\n"
              "listener.name.ssl.ssl.enabled.protocols=TLSv1.3\n"
              "listener.name.ssl.sasl.enabled.mechanisms=SCRAM-SHA-512\n"
              "listener.name.ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.ScramLoginModule required;\n";
  auto c = load_ok(text);
  auto ssl = c.security_for("SSL");
  EXPECT_EQ(ssl.protocol, SecurityProtocol::ssl);
  EXPECT_EQ(ssl.client_auth, ClientAuth::required);
  EXPECT_EQ(ssl.truststore_location, "/global/trust.jks");
  EXPECT_EQ(ssl.truststore_type, "JKS");
  EXPECT_EQ(ssl.truststore_password.reveal(), "trust-pass");
  EXPECT_EQ(ssl.enabled_protocols, std::vector<std::string>{"TLSv1.3"});
  EXPECT_EQ(ssl.keystore_location, "/etc/bulwark/node.p12");
  EXPECT_EQ(ssl.keystore_type, "PKCS12");
  EXPECT_EQ(ssl.endpoint_identification_algorithm, "https");
  EXPECT_EQ(ssl.principal_mapping_rules, "DEFAULT");
  EXPECT_EQ(ssl.sasl_enabled_mechanisms, std::vector<std::string>{"SCRAM-SHA-512"});
  ASSERT_EQ(ssl.sasl_jaas_configs.count("SCRAM-SHA-512"), 1u);
  EXPECT_EQ(ssl.sasl_jaas_configs.at("SCRAM-SHA-512").reveal(), "org.apache.kafka.ScramLoginModule required;");

  auto ctl = c.security_for("controller");  // any case
  EXPECT_EQ(ctl.listener, "CONTROLLER");
  EXPECT_EQ(ctl.client_auth, ClientAuth::requested);
  EXPECT_EQ(ctl.truststore_location, "/controller/trust.p12");
  EXPECT_EQ(ctl.truststore_type, "PKCS12");
  EXPECT_EQ(ctl.enabled_protocols, (std::vector<std::string>{"TLSv1.2", "TLSv1.3"}));
  EXPECT_EQ(ctl.sasl_enabled_mechanisms, std::vector<std::string>{"GSSAPI"});
  EXPECT_TRUE(ctl.sasl_jaas_configs.empty());
}

TEST(ListenerSecurity, PrefixedKeysAreValidatedToo) {
  auto msg = load_error(kBase + "listener.name.ssl.ssl.client.auth=always\n");
  EXPECT_EQ(msg, "server.properties:13: listener.name.ssl.ssl.client.auth: 'always' is not one of none, requested, required");
}

TEST(ListenerSecurity, UpperCasePrefixIsReportedNotApplied) {
  auto c = load_ok(kBase + "listener.name.SSL.ssl.client.auth=required\n");
  EXPECT_EQ(c.security_for("SSL").client_auth, ClientAuth::none);  // Kafka ignores it too
  bool reported = false;
  for (const auto& line : c.startup_report()) {
    if (line.find("server.properties:13: listener.name.SSL.ssl.client.auth names no listener") != std::string::npos &&
        line.find("listener.name.ssl.") != std::string::npos) {
      reported = true;
    }
  }
  EXPECT_TRUE(reported);
}

TEST(Password, NeverPrinted) {
  Password p("hunter2");
  EXPECT_EQ(fmt::format("{}", p), "[hidden]");
  EXPECT_EQ(fmt::format("{:>10}", p), "  [hidden]");
  std::ostringstream out;
  out << p;
  EXPECT_EQ(out.str(), "[hidden]");
  EXPECT_EQ(p.reveal(), "hunter2");
}

TEST(Password, NotInReportsOrErrors) {
  auto text = kBase + "ssl.key.password=key-pass-123\nlistener.name.ssl.plain.sasl.jaas.config=user_admin=\"jaas-pass-456\";\n"
                      "ssl.truststore.password=trust-pass-789\nmystery.password=other-secret\n";
  auto c = load_ok(text);
  for (const auto& line : c.startup_report()) {
    EXPECT_EQ(line.find("s3cret-keystore"), std::string::npos) << line;
    EXPECT_EQ(line.find("key-pass-123"), std::string::npos) << line;
    EXPECT_EQ(line.find("jaas-pass-456"), std::string::npos) << line;
    EXPECT_EQ(line.find("trust-pass-789"), std::string::npos) << line;
    EXPECT_EQ(line.find("other-secret"), std::string::npos) << line;
  }
  EXPECT_EQ(fmt::format("{}", c.security_for("SSL").keystore_password), "[hidden]");
  // An error on another key does not echo the passwords either.
  auto msg = load_error(text + "num.partitions=x\n");
  EXPECT_EQ(msg.find("s3cret-keystore"), std::string::npos);
  EXPECT_EQ(msg.find("key-pass-123"), std::string::npos);
}

TEST(StartupReport, UnknownNotEnforcedAndDuplicates) {
  auto text = kBase +
              "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"  // 13
              "no.such.key=1\n"                                                                   // 14
              "num.partitions=3\n"                                                                // 15
              "num.partitions=4\n"                                                                // 16
              "zookeeper.connect=localhost:2181\n";                                               // 17
  auto c = load_ok(text);
  EXPECT_EQ(c.num_partitions, 4);
  auto report = c.startup_report();
  auto has = [&](const std::string& s) {
    for (const auto& line : report)
      if (line.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_FALSE(has("authorizer.class.name is accepted but not enforced"));  // the authorizer is enforced
  EXPECT_FALSE(has("is not a Kafka authorizer Bulwark knows"));
  EXPECT_TRUE(has("server.properties:14: unknown key no.such.key is ignored"));
  EXPECT_TRUE(has("server.properties:16: num.partitions is set again (first on line 15)"));
  EXPECT_TRUE(has("server.properties:17: unknown key zookeeper.connect is ignored (Bulwark runs in KRaft mode only"));
  EXPECT_FALSE(has("num.partitions is accepted but not enforced"));  // supported keys are not reported
  EXPECT_FALSE(has("listeners"));
}

TEST(KeyTable, NamesAreUniqueAndDefaultsPassTheirOwnValidators) {
  std::set<std::string_view> names;
  for (const auto& spec : key_specs()) {
    EXPECT_TRUE(names.insert(spec.name).second) << "duplicate " << spec.name;
    if (!spec.default_value) continue;
    // Feed the default back through the parser as if a user had written it (alone, so that keys that
    // depend on each other, such as listeners and the protocol map, meet their own defaults).
    std::string text = std::string(spec.name) + "=" + std::string(*spec.default_value) + "\n";
    auto props = parse_properties(text, "server.properties");
    ASSERT_TRUE(props.ok());
    auto c = build_broker_config(*props);
    EXPECT_TRUE(c.ok()) << spec.name << ": " << (c.ok() ? "" : c.error().message);
  }
}

// The seed configuration must load as it is (its key paths need not exist for parsing).
TEST(SeedConfig, KraftNode1) {
  std::vector<std::filesystem::path> candidates;
  if (const char* src = std::getenv("BULWARK_SOURCE_DIR")) {
    candidates.push_back(std::filesystem::path(src) / ".." / "shared" / "seed-examples" / "kraft-node-1.properties");
  }
  candidates.push_back("/work/shared/seed-examples/kraft-node-1.properties");
  std::filesystem::path seed;
  for (const auto& c : candidates)
    if (std::filesystem::exists(c)) {
      seed = c;
      break;
    }
  if (seed.empty()) GTEST_SKIP() << "seed configuration kraft-node-1.properties not found (set BULWARK_SOURCE_DIR)";

  auto c = load_broker_config(seed);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->node_id, 0);
  EXPECT_TRUE(c->is_broker() && c->is_controller());
  ASSERT_EQ(c->quorum_voters.size(), 3u);
  EXPECT_EQ(c->quorum_voters[2].port, 39093);
  EXPECT_EQ(c->find_listener("SSL")->port, 19092);
  EXPECT_EQ(c->find_listener("CONTROLLER")->protocol, SecurityProtocol::ssl);
  EXPECT_EQ(c->advertised_listeners.at(0).to_string(), "SSL://localhost:19092");
  EXPECT_EQ(c->super_users, (std::vector<std::string>{"User:kafka-1", "User:kafka-2", "User:kafka-3", "User:admin-1"}));
  EXPECT_FALSE(c->allow_everyone_if_no_acl_found);
  EXPECT_EQ(c->num_partitions, 6);
  EXPECT_EQ(c->offsets_topic_replication_factor, 2);
  EXPECT_EQ(c->transaction_state_log_replication_factor, 2);
  auto sec = c->security_for("CONTROLLER");
  EXPECT_EQ(sec.client_auth, ClientAuth::required);
  EXPECT_EQ(sec.keystore_type, "JKS");
  EXPECT_EQ(sec.principal_mapping_rules, "RULE:^CN=([^,]+).*$/$1/,DEFAULT");

  auto report = c->startup_report();
  std::string all;
  for (const auto& line : report) all += line + "\n";
  EXPECT_EQ(all.find("unknown key"), std::string::npos) << all;  // every seed key is known
  EXPECT_EQ(all.find("sls1234567"), std::string::npos) << all;   // no password in the report
  // The seed's authorizer keys are enforced, so none is reported as accepted-only.
  EXPECT_EQ(all.find("authorizer.class.name is accepted"), std::string::npos) << all;
  EXPECT_EQ(all.find("super.users is accepted"), std::string::npos) << all;
  EXPECT_EQ(all.find("ssl.principal.mapping.rules is accepted"), std::string::npos) << all;
  EXPECT_EQ(all.find("listeners is accepted"), std::string::npos) << all;
  EXPECT_EQ(all.find("ssl.keystore.location is accepted"), std::string::npos) << all;
}

}  // namespace

namespace {

TEST(BrokerConfig, ControllerOnlyNodeBindsOnlyControllerListeners) {
  std::string text =
      "process.roles=controller\nnode.id=3\ncontroller.quorum.voters=3@localhost:9093\n"
      "listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n"
      "listener.security.protocol.map=CONTROLLER:SSL\nssl.keystore.location=/k.p12\nlog.dirs=/x\n";
  auto c = load_ok(text);
  EXPECT_FALSE(c.is_broker());
  EXPECT_TRUE(c.advertised_listeners.empty());
  auto bad = with(with(text, "listeners", "CONTROLLER://:9093,SSL://:9092"), "listener.security.protocol.map",
                  "CONTROLLER:SSL,SSL:SSL");
  EXPECT_CONTAINS(load_error(bad), "listeners: must only contain controller listeners (CONTROLLER) when "
                                   "process.roles=controller, but has SSL");
}

TEST(BrokerConfig, SaslInterBrokerMechanismMustBeEnabled) {
  auto text = with(kBase, "listener.security.protocol.map", "CONTROLLER:SSL,SSL:SASL_SSL");
  EXPECT_CONTAINS(load_error(text + "sasl.enabled.mechanisms=PLAIN\n"),
                  "server.properties: sasl.mechanism.inter.broker.protocol: GSSAPI must be included in sasl.enabled.mechanisms");
  auto c = load_ok(text + "sasl.enabled.mechanisms=SCRAM-SHA-512\nsasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n");
  EXPECT_EQ(c.inter_broker_security_protocol, SecurityProtocol::sasl_ssl);
  EXPECT_TRUE(uses_sasl(c.find_listener("SSL")->protocol));
}

TEST(BrokerConfig, PemTruststoreRules) {
  EXPECT_CONTAINS(load_error(kBase + "ssl.truststore.certificates=-----BEGIN CERTIFICATE-----\n"),
                  "ssl.truststore.certificates: certificates in the config need ssl.truststore.type=PEM, but it is JKS");
  EXPECT_CONTAINS(load_error(kBase + "ssl.truststore.type=PEM\nssl.truststore.certificates=x\nssl.truststore.location=/t\n"),
                  "Both ssl.truststore.location and ssl.truststore.certificates are set");
  auto c = load_ok(kBase + "ssl.truststore.type=pem\nssl.truststore.certificates=x\n");
  EXPECT_EQ(c.security_for("SSL").truststore_type, "PEM");
}

TEST(StartupReport, PerListenerKeysAndMissingTruststore) {
  auto c = load_ok(kBase + "listener.name.ssl.sasl.kerberos.service.name=kafka\n"  // 13
                           "listener.name.external.ssl.client.auth=required\n"  // 14
                           "ssl.client.auth=required\n"                         // 15
                           "listener.name.ssl.ssl.bogus=1\n");                  // 16
  std::string all;
  for (const auto& line : c.startup_report()) all += line + "\n";
  EXPECT_CONTAINS(all, "server.properties:13: listener.name.ssl.sasl.kerberos.service.name is accepted but not enforced yet");
  EXPECT_CONTAINS(all, "server.properties:14: listener.name.external.ssl.client.auth names no listener of this node (external)");
  EXPECT_CONTAINS(all, "listener SSL requires client certificates but has no truststore");
  EXPECT_CONTAINS(all, "server.properties:16: unknown key listener.name.ssl.ssl.bogus is ignored");
}

}  // namespace

namespace {
TEST(StartupReport, UnknownAuthorizerClass) {
  auto c = load_ok(kBase + "authorizer.class.name=com.example.MyAuthorizer\n");
  std::string all;
  for (const auto& line : c.startup_report()) all += line + "\n";
  EXPECT_CONTAINS(all, "server.properties:13: authorizer.class.name com.example.MyAuthorizer is not a Kafka authorizer Bulwark knows");
}
}  // namespace

TEST(BrokerConfig, ConnectionLimitsAndOverrides) {
  auto c = load_ok(with(with(with(kBase, "max.connections.per.ip", "10"), "max.connections.per.ip.overrides",
                             "127.0.0.2:25, kafka-1:0,[::1]:7"),
                        "listener.name.ssl.max.connections", "3"));
  EXPECT_EQ(c.max_connections_per_ip, 10);
  using Override = std::pair<std::string, std::int32_t>;
  EXPECT_EQ(c.max_connections_per_ip_overrides,
            (std::vector<Override>{{"127.0.0.2", 25}, {"kafka-1", 0}, {"::1", 7}}));
  EXPECT_EQ(c.listener_max_connections.at("SSL"), 3);
  EXPECT_EQ(c.listener_max_connections.count("CONTROLLER"), 0u);
  EXPECT_EQ(c.queued_max_request_bytes, -1);  // Kafka's default: unlimited
  EXPECT_EQ(c.sasl_server_max_receive_size, 524288);
}

TEST(BrokerConfig, BadConnectionLimitsAreNamed) {
  for (const char* bad : {"no-count", "host:", ":5", "host:-1", "host:many", "a:1,b"}) {
    auto message = load_error(with(kBase, "max.connections.per.ip.overrides", bad));
    EXPECT_CONTAINS(message, "max.connections.per.ip.overrides");
    EXPECT_CONTAINS(message, "is not host:count");
  }
  EXPECT_CONTAINS(load_error(with(kBase, "queued.max.request.bytes", "-2")), "queued.max.request.bytes");
  EXPECT_CONTAINS(load_error(with(kBase, "listener.name.ssl.max.connections", "-1")), "max.connections");
}

TEST(BrokerConfig, TransactionCoordinatorKeys) {
  auto defaults = load_ok(kBase);
  EXPECT_EQ(defaults.transaction_state_log_num_partitions, 50);
  EXPECT_EQ(defaults.transaction_max_timeout_ms, 900000);
  EXPECT_EQ(defaults.transactional_id_expiration_ms, 604800000);
  EXPECT_EQ(defaults.transaction_abort_timed_out_transaction_cleanup_interval_ms, 10000);
  EXPECT_EQ(defaults.transaction_remove_expired_transaction_cleanup_interval_ms, 3600000);
  std::string text = kBase;
  text += "transaction.state.log.num.partitions=7\ntransaction.max.timeout.ms=1000\n"
          "transactional.id.expiration.ms=5000\ntransaction.abort.timed.out.transaction.cleanup.interval.ms=200\n";
  auto c = load_ok(text);
  EXPECT_EQ(c.transaction_state_log_num_partitions, 7);
  EXPECT_EQ(c.transaction_max_timeout_ms, 1000);
  EXPECT_EQ(c.transactional_id_expiration_ms, 5000);
  EXPECT_EQ(c.transaction_abort_timed_out_transaction_cleanup_interval_ms, 200);
  EXPECT_CONTAINS(load_error(kBase + std::string("transaction.state.log.num.partitions=0\n")),
                  "transaction.state.log.num.partitions");
}
