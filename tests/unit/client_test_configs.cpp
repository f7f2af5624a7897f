// kafka-configs.sh's entity flags, --add-config/--delete-config parsing and printed --describe form.
#include <gtest/gtest.h>

#include "client/configs.h"

namespace bulwark::client {
namespace {

void expect_usage(const EntityFlags& f, bool need_name, std::string_view words) {
  auto entity = config_entity(f, need_name);
  ASSERT_FALSE(entity.ok());
  EXPECT_EQ(entity.error().kind, ErrorKind::invalid_argument);
  EXPECT_NE(entity.error().message.find(words), std::string::npos) << entity.error().message;
}

TEST(ConfigEntity, EntityTypeAndNameOrTheShortcuts) {
  EntityFlags f;
  f.entity_type = "topics";
  f.entity_name = "orders";
  auto topic = config_entity(f, true);
  ASSERT_TRUE(topic.ok()) << topic.error().message;
  EXPECT_EQ(topic->type, ConfigResourceType::topic);
  EXPECT_EQ(topic->resource_name(), "orders");

  EntityFlags shortcut;
  shortcut.broker = "1";
  auto broker = config_entity(shortcut, true);
  ASSERT_TRUE(broker.ok());
  EXPECT_EQ(broker->type, ConfigResourceType::broker);
  EXPECT_EQ(broker->resource_name(), "1");

  EntityFlags defaults;
  defaults.entity_type = "brokers";
  defaults.entity_default = true;
  auto cluster = config_entity(defaults, true);
  ASSERT_TRUE(cluster.ok());
  EXPECT_TRUE(cluster->is_default);
  EXPECT_EQ(cluster->resource_name(), "");

  EntityFlags all_topics;
  all_topics.entity_type = "topics";
  auto all = config_entity(all_topics, false);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->name);
  expect_usage(all_topics, true, "--alter needs one entity");
}

TEST(ConfigEntity, ClashesAndUnsupportedTypes) {
  expect_usage({}, false, "name an entity");
  EntityFlags both;
  both.topic = "orders";
  both.broker = "1";
  expect_usage(both, false, "both a topic and a broker");
  EntityFlags two_names;
  two_names.entity_type = "topics";
  two_names.entity_name = "a";
  two_names.topic = "b";
  expect_usage(two_names, false, "name one entity");
  EntityFlags users;
  users.entity_type = "users";
  expect_usage(users, false, "bulwark scram");
  EntityFlags bogus;
  bogus.entity_type = "tables";
  expect_usage(bogus, false, "not an entity type");
  EntityFlags topic_default;
  topic_default.entity_type = "topics";
  topic_default.entity_default = true;
  expect_usage(topic_default, false, "topics have none");
  EntityFlags bad_id;
  bad_id.broker = "one";
  expect_usage(bad_id, false, "must be a valid integer broker id, but it is: one");
}

TEST(AddConfig, CommasAndEqualsInBracketsStayInTheValue) {
  auto parsed = parse_add_config("retention.ms=1000, cleanup.policy=[compact,delete],sasl=[a=b]");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, (ConfigPairs{{"retention.ms", "1000"}, {"cleanup.policy", "compact,delete"}, {"sasl", "a=b"}}));
  auto empty_value = parse_add_config("ssl.endpoint.identification.algorithm=");
  ASSERT_TRUE(empty_value.ok());
  EXPECT_EQ(empty_value->front().second, "");
  EXPECT_FALSE(parse_add_config("novalue").ok());
  EXPECT_FALSE(parse_add_config("a=b=c").ok());
  EXPECT_FALSE(parse_add_config("").ok());
}

TEST(DeleteConfig, CommaSeparatedKeys) {
  auto keys = parse_delete_config("retention.ms, cleanup.policy");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, (std::vector<std::string>{"retention.ms", "cleanup.policy"}));
  EXPECT_FALSE(parse_delete_config("a,,b").ok());
}

ConfigEntity topic_entity() { return {ConfigResourceType::topic, std::string("orders"), false}; }

std::vector<ConfigEntry> topic_entries() {
  return {
      {"retention.ms",
       "1000",
       false,
       false,
       false,
       1,
       {{"retention.ms", "1000", 1}, {"log.retention.ms", "604800000", 5}}},
      {"cleanup.policy", "compact,delete", false, false, false, 1, {}},
      {"segment.bytes", "1073741824", false, true, false, 5, {}},
  };
}

TEST(DescribeConfigs, DynamicEntriesSortedInKafkasForm) {
  EXPECT_EQ(describe_heading(topic_entity(), false), "Dynamic configs for topic orders are:");
  EXPECT_EQ(describe_heading(topic_entity(), true), "All configs for topic orders are:");
  auto shown = entries_to_show(topic_entity(), topic_entries(), false);
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(
      render_config_entries(shown),
      "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete}\n"
      "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, "
      "DEFAULT_CONFIG:log.retention.ms=604800000}\n");
  EXPECT_EQ(entries_to_show(topic_entity(), topic_entries(), true).size(), 3u);
}

TEST(DescribeConfigs, BrokersAndSensitiveValues) {
  const ConfigEntity broker{ConfigResourceType::broker, std::string("1"), false};
  const ConfigEntity cluster{ConfigResourceType::broker, std::nullopt, true};
  EXPECT_EQ(describe_heading(broker, false), "Dynamic configs for broker 1 are:");
  EXPECT_EQ(describe_heading(cluster, false), "Default configs for brokers in the cluster are:");
  std::vector<ConfigEntry> entries = {
      {"listener.name.ssl.ssl.keystore.password", "leaked", false, false, true, 2,
       {{"listener.name.ssl.ssl.keystore.password", "leaked", 2}}},
      {"listener.name.ssl.ssl.keystore.location", "/k.p12", false, false, false, 2, {}},
      {"log.dirs", "/data", true, false, false, 4, {}},
      {"listener.name.ssl.ssl.crl.location", "/crl", false, false, false, 3, {}},
  };
  EXPECT_EQ(render_config_entries(entries_to_show(broker, entries, false)),
            "  listener.name.ssl.ssl.keystore.location=/k.p12 sensitive=false "
            "synonyms={DYNAMIC_BROKER_CONFIG:listener.name.ssl.ssl.keystore.location=/k.p12}\n"
            "  listener.name.ssl.ssl.keystore.password=null sensitive=true "
            "synonyms={DYNAMIC_BROKER_CONFIG:listener.name.ssl.ssl.keystore.password=null}\n");
  auto defaults = entries_to_show(cluster, entries, false);
  ASSERT_EQ(defaults.size(), 1u);
  EXPECT_EQ(defaults.front().name, "listener.name.ssl.ssl.crl.location");
  EXPECT_EQ(entries_to_show(broker, entries, true).size(), 4u);
}

TEST(DescribeConfigs, UnknownSourceHasNoSynonyms) {
  EXPECT_EQ(render_config_entries({{"k", std::nullopt, false, false, false, -1, {}}}),
            "  k=null sensitive=false synonyms={}\n");
  EXPECT_EQ(config_source_name(4), "STATIC_BROKER_CONFIG");
  EXPECT_EQ(config_source_name(42), "UNKNOWN");
}

TEST(AlterConfigs, MessagesAndMissingKeys) {
  EXPECT_EQ(altered_message(topic_entity()), "Completed updating config for topic orders.");
  EXPECT_EQ(altered_message({ConfigResourceType::broker, std::string("2"), false}),
            "Completed updating config for broker 2.");
  EXPECT_EQ(altered_message({ConfigResourceType::broker, std::nullopt, true}),
            "Completed updating default config for brokers in the cluster.");
  auto shown = entries_to_show(topic_entity(), topic_entries(), false);
  EXPECT_EQ(missing_keys({"retention.ms", "segment.bytes", "nope"}, shown),
            (std::vector<std::string>{"segment.bytes", "nope"}));
}

}  // namespace
}  // namespace bulwark::client
