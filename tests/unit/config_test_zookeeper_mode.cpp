// ZooKeeper-mode configurations (zookeeper.connect, no process.roles) run as a one-node cluster: the
// seed's Kafka 2.3 broker configuration validates, its identity and quorum, the start-up report, the
// errors, KRaft configurations untouched, and check_storage formatting on first start in ZooKeeper mode only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "base/files.h"
#include "config/config.h"
#include "config/meta_properties.h"

using namespace bulwark::config;
namespace fs = std::filesystem;

namespace {

// The broker configuration of seed 003 (Kafka 2.3, ZooKeeper mode), unchanged.
const std::string kSeed =
    "broker.id=1\n"                                                                           // 1
    "zookeeper.connect=zookeeper:2182\n"                                                      // 2
    "listeners=SSL://kafka-1:9193,SASL_SSL://kafka-1:9194\n"                                  // 3
    "security.inter.broker.protocol=SSL\n"                                                    // 4
    "ssl.client.auth=required\n"                                                              // 5
    "ssl.keystore.location=kafka-1.jks\n"                                                     // 6
    "ssl.keystore.password=confidential\n"                                                    // 7
    "ssl.key.password=confidential\n"                                                         // 8
    "ssl.truststore.location=truststore.jks\n"                                                // 9
    "ssl.truststore.password=confidential\n"                                                  // 10
    "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
    "required user_consumer=\"pw4consumer\" user_producer=\"pw4producer\";\n"                 // 11
    "sasl.enabled.mechanisms=PLAIN\n"                                                         // 12
    "log.dirs=/tmp/kafka-1-logs\n"                                                            // 13
    "offsets.topic.replication.factor=2\n"                                                    // 14
    "transaction.state.log.replication.factor=2\n"                                            // 15
    "transaction.state.log.min.isr=2\n";                                                      // 16

// A combined KRaft node, for the checks that must not change.
const std::string kKraft =
    "process.roles=broker,controller\n"
    "node.id=1\n"
    "controller.quorum.voters=1@localhost:9093\n"
    "listeners=SSL://:9092,CONTROLLER://:9093\n"
    "advertised.listeners=SSL://localhost:9092\n"
    "controller.listener.names=CONTROLLER\n"
    "listener.security.protocol.map=CONTROLLER:SSL,SSL:SSL\n"
    "inter.broker.listener.name=SSL\n"
    "ssl.keystore.location=/etc/bulwark/node.p12\n"
    "ssl.keystore.type=PKCS12\n"
    "ssl.keystore.password=s3cret-keystore\n"
    "log.dirs=/var/lib/bulwark\n";

std::string with(const std::string& text, const std::string& key, const std::string& value) {
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

std::string without(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) line = "# removed";
    out += line + "\n";
  }
  return out;
}

bulwark::Result<BrokerConfig> load(const std::string& text, const std::string& source = "kafka-1.properties") {
  auto props = parse_properties(text, source);
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

bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(ZooKeeperMode, SeedConfigValidatesAsOneNodeCluster) {
  auto c = load_ok(kSeed);
  EXPECT_TRUE(c.zookeeper_mode);
  EXPECT_EQ(c.node_id, 1);
  EXPECT_TRUE(c.is_broker());
  EXPECT_TRUE(c.is_controller());
  EXPECT_TRUE(c.controller_listener_names.empty());
  // A quorum of itself, at the inter-broker (SSL) listener.
  ASSERT_EQ(c.quorum_voters.size(), 1u);
  EXPECT_EQ(c.quorum_voters[0].id, 1);
  EXPECT_EQ(c.quorum_voters[0].host, "kafka-1");
  EXPECT_EQ(c.quorum_voters[0].port, 9193);

  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].listener, "SSL");
  EXPECT_EQ(c.listeners[0].protocol, SecurityProtocol::ssl);
  EXPECT_EQ(c.listeners[1].listener, "SASL_SSL");
  EXPECT_EQ(c.listeners[1].protocol, SecurityProtocol::sasl_ssl);
  EXPECT_EQ(c.listeners[1].port, 9194);
  ASSERT_EQ(c.advertised_listeners.size(), 2u);  // no controller listener to leave out
  EXPECT_EQ(c.inter_broker_listener_name, "SSL");
  EXPECT_EQ(c.inter_broker_security_protocol, SecurityProtocol::ssl);
  EXPECT_EQ(c.sasl_enabled_mechanisms, std::vector<std::string>{"PLAIN"});
  EXPECT_EQ(c.log_dirs, std::vector<std::string>{"/tmp/kafka-1-logs"});
  EXPECT_EQ(c.offsets_topic_replication_factor, 2);
  EXPECT_EQ(c.transaction_state_log_min_isr, 2);

  auto sasl = c.security_for("SASL_SSL");
  EXPECT_EQ(sasl.protocol, SecurityProtocol::sasl_ssl);
  EXPECT_EQ(sasl.sasl_enabled_mechanisms, std::vector<std::string>{"PLAIN"});
  ASSERT_EQ(sasl.sasl_jaas_configs.count("PLAIN"), 1u);
  EXPECT_EQ(sasl.sasl_jaas_configs.at("PLAIN").reveal(),
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_consumer=\"pw4consumer\" "
            "user_producer=\"pw4producer\";");
  EXPECT_EQ(sasl.keystore_location, "kafka-1.jks");
  EXPECT_EQ(sasl.keystore_type, "JKS");
  EXPECT_EQ(sasl.keystore_password.reveal(), "confidential");
  EXPECT_EQ(sasl.truststore_location, "truststore.jks");

  auto ssl = c.security_for("SSL");
  EXPECT_EQ(ssl.client_auth, ClientAuth::required);
  EXPECT_TRUE(ssl.sasl_jaas_configs.empty());  // the JAAS config is the SASL_SSL listener's only
}

TEST(ZooKeeperMode, StartupReportExplainsZooKeeperKeysWithoutSecrets) {
  auto c = load_ok(kSeed + "zookeeper.connection.timeout.ms=6000\n");
  auto report = c.startup_report();
  EXPECT_TRUE(has_line(report, "kafka-1.properties:2: zookeeper.connect is ignored: Bulwark keeps cluster metadata in "
                               "its own quorum (KRaft); this node runs as a one-node cluster with node.id=1"))
      << ::testing::PrintToString(report);
  EXPECT_TRUE(has_line(report, "kafka-1.properties:17: zookeeper.connection.timeout.ms is ignored: Bulwark does not "
                               "use ZooKeeper"))
      << ::testing::PrintToString(report);
  EXPECT_TRUE(has_line(report, "offsets.topic.replication.factor=2, transaction.state.log.replication.factor=2, "
                               "transaction.state.log.min.isr=2 ask for more than one node"))
      << ::testing::PrintToString(report);
  EXPECT_FALSE(has_line(report, "unknown key zookeeper"));
  for (const auto& line : report) {
    EXPECT_EQ(line.find("confidential"), std::string::npos) << line;
    EXPECT_EQ(line.find("pw4consumer"), std::string::npos) << line;
    EXPECT_EQ(line.find("pw4producer"), std::string::npos) << line;
  }
}

// KIP-684: the broker-wide ssl.client.auth does not reach SASL_SSL listeners; the prefixed key does.
TEST(ZooKeeperMode, SaslSslListenerIgnoresBrokerWideClientAuth) {
  auto c = load_ok(kSeed);
  EXPECT_EQ(c.security_for("SSL").client_auth, ClientAuth::required);
  EXPECT_EQ(c.security_for("SASL_SSL").client_auth, ClientAuth::none);
  EXPECT_TRUE(has_line(c.startup_report(), "kafka-1.properties:5: ssl.client.auth=required does not apply to the "
                                           "SASL_SSL listener SASL_SSL (as in Kafka, KIP-684)"));

  auto prefixed = load_ok(kSeed + "listener.name.sasl_ssl.ssl.client.auth=required\n");
  EXPECT_EQ(prefixed.security_for("SASL_SSL").client_auth, ClientAuth::required);
  EXPECT_FALSE(has_line(prefixed.startup_report(), "does not apply to the SASL_SSL listener"));
  auto requested = load_ok(with(kSeed, "ssl.client.auth", "none") + "listener.name.sasl_ssl.ssl.client.auth=requested\n");
  EXPECT_EQ(requested.security_for("SASL_SSL").client_auth, ClientAuth::requested);
  EXPECT_EQ(requested.security_for("SSL").client_auth, ClientAuth::none);
}

TEST(ZooKeeperMode, NodeIdAndBrokerIdRules) {
  EXPECT_CONTAINS(load_error(without(kSeed, "broker.id")),
                  "kafka-1.properties: broker.id: is not set: this ZooKeeper-mode configuration (zookeeper.connect "
                  "without process.roles) needs broker.id as a number of 0 or more. Kafka would generate an id");
  EXPECT_CONTAINS(load_error(with(kSeed, "broker.id", "-1")), "kafka-1.properties:1: broker.id: is -1: this ZooKeeper-mode");
  auto by_node_id = load_ok(without(kSeed, "broker.id") + "node.id=4\n");
  EXPECT_EQ(by_node_id.node_id, 4);
  EXPECT_EQ(by_node_id.quorum_voters.at(0).id, 4);
  EXPECT_CONTAINS(load_error(kSeed + "node.id=2\n"), "broker.id: must equal node.id (2)");
}

TEST(ZooKeeperMode, NeitherProcessRolesNorZooKeeperIsAClearError) {
  auto no_zk = load_error(without(kSeed, "zookeeper.connect"));
  EXPECT_CONTAINS(no_zk, "kafka-1.properties: process.roles: is not set: Bulwark runs in KRaft mode only");
  EXPECT_CONTAINS(no_zk, "zookeeper.connect with broker.id");
  EXPECT_CONTAINS(no_zk, "node.id, controller.quorum.voters and controller.listener.names");
  // An empty zookeeper.connect is not a ZooKeeper-mode configuration either.
  EXPECT_CONTAINS(load_error(with(kSeed, "zookeeper.connect", "  ")), "process.roles: is not set");
}

TEST(ZooKeeperMode, ControllerListenerNamesMustBeEmpty) {
  EXPECT_CONTAINS(load_error(kSeed + "controller.listener.names=SSL\n"),
                  "controller.listener.names: must be empty when not running in KRaft mode");
}

TEST(ZooKeeperMode, InterBrokerListenerStillChecked) {
  EXPECT_CONTAINS(load_error(with(kSeed, "security.inter.broker.protocol", "PLAINTEXT")),
                  "the inter-broker listener PLAINTEXT is not defined in listeners (SSL, SASL_SSL)");
  EXPECT_CONTAINS(load_error(without(kSeed, "ssl.keystore.location")), "listener SSL uses SSL but has no keystore");
}

TEST(ZooKeeperMode, KraftConfigsAreUnaffected) {
  auto k = load_ok(kKraft);
  EXPECT_FALSE(k.zookeeper_mode);
  EXPECT_EQ(k.controller_listener_names, std::vector<std::string>{"CONTROLLER"});
  ASSERT_EQ(k.quorum_voters.size(), 1u);
  EXPECT_EQ(k.quorum_voters[0].port, 9093);

  // process.roles wins over zookeeper.connect: KRaft, with zookeeper.connect reported as unknown.
  auto with_zk = load_ok(kKraft + "zookeeper.connect=zk:2181\n");
  EXPECT_FALSE(with_zk.zookeeper_mode);
  EXPECT_TRUE(has_line(with_zk.startup_report(), "unknown key zookeeper.connect is ignored (Bulwark runs in KRaft mode only"));
  // The KRaft checks still apply when zookeeper.connect is present.
  EXPECT_CONTAINS(load_error(without(kKraft, "controller.listener.names") + "zookeeper.connect=zk:2181\n"),
                  "controller.listener.names: must name at least one listener when process.roles is set");
  EXPECT_CONTAINS(load_error(without(kKraft, "controller.quorum.voters")), "controller.quorum.voters: must list the controllers");
  EXPECT_CONTAINS(load_error(without(kKraft, "node.id")), "node.id: is required when process.roles is set");
}

class ZooKeeperModeStorage : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("bulwark-zk-test-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  BrokerConfig seed_with_dirs(const std::string& dirs, const std::string& base = kSeed) {
    std::string list;
    for (char c : dirs) list += (list.empty() ? "" : ",") + (root_ / std::string(1, c)).string();
    return load_ok(with(base, "log.dirs", list));
  }

  fs::path root_;
};

TEST_F(ZooKeeperModeStorage, FormatsUnformattedDirectoriesOnFirstStart) {
  fs::create_directories(root_ / "b");  // exists but empty; "a" does not exist yet
  auto c = seed_with_dirs("ab");
  ASSERT_TRUE(c.zookeeper_mode);
  auto first = check_storage(c);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(decode_uuid(first->cluster_id).ok()) << first->cluster_id;
  EXPECT_EQ(first->node_id, 1);
  for (auto d : {"a", "b"}) {
    auto st = inspect_directory(root_ / d);
    ASSERT_EQ(st.state, DirectoryState::formatted) << d << " " << st.problem;
    EXPECT_EQ(st.meta->version, 1);
    EXPECT_EQ(st.meta->cluster_id, first->cluster_id);
    EXPECT_EQ(st.meta->node_id, 1);
    EXPECT_EQ(st.meta->directory_id.size(), 22u);
  }
  // A restart reads the same files back and writes nothing.
  auto before = bulwark::read_file(root_ / "a" / "meta.properties");
  auto second = check_storage(c);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->cluster_id, first->cluster_id);
  EXPECT_EQ(*bulwark::read_file(root_ / "a" / "meta.properties"), *before);

  // A log directory added later joins the same cluster.
  auto more = seed_with_dirs("abc");
  auto third = check_storage(more);
  ASSERT_TRUE(third.ok()) << third.error().message;
  auto st = inspect_directory(root_ / "c");
  ASSERT_EQ(st.state, DirectoryState::formatted);
  EXPECT_EQ(st.meta->cluster_id, first->cluster_id);
}

TEST_F(ZooKeeperModeStorage, KraftModeStillRefusesUnformattedDirectories) {
  std::string kraft = with(kKraft, "log.dirs", (root_ / "a").string());
  auto c = load_ok(kraft);
  ASSERT_FALSE(c.zookeeper_mode);
  auto r = check_storage(c);
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "is not formatted (it does not exist); run `bulwark storage format");
  EXPECT_FALSE(fs::exists(root_ / "a"));  // nothing written
}

TEST_F(ZooKeeperModeStorage, DirectoryOfAnotherNodeStopsFormatting) {
  auto other = seed_with_dirs("a", with(kSeed, "broker.id", "7"));
  ASSERT_TRUE(check_storage(other).ok());
  auto c = seed_with_dirs("ab");
  auto r = check_storage(c);
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "formatted for node.id 7, but this config has node.id 1");
  EXPECT_FALSE(fs::exists(root_ / "b"));  // nothing written when a directory is wrong
}

TEST_F(ZooKeeperModeStorage, KafkaZooKeeperModeMetaPropertiesAreRefusedClearly) {
  fs::create_directories(root_ / "a");
  ASSERT_TRUE(bulwark::write_file_atomic(root_ / "a" / "meta.properties", std::string_view("version=0\nbroker.id=1\n")).ok());
  auto r = check_storage(seed_with_dirs("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "version=0 is a ZooKeeper-mode directory");
}

}  // namespace
