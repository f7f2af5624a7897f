// The controller's decisions: every accepted decision's records are applied to the image they were made
// from (they must fit), and the resulting image is checked; every refusal has no records.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cluster/controller.h"
#include "cluster_test_records_builders.h"
#include "security/sasl.h"

namespace bulwark::cluster {
namespace {

using namespace builders;
namespace msg = wire::msg;

// Applies records after the image's offset; the test fails if any does not fit.
ImagePtr apply_all(const ImagePtr& image, const std::vector<AnyRecord>& records) {
  std::vector<PositionedRecord> positioned;
  std::int64_t offset = image->offset();
  for (const AnyRecord& r : records) positioned.push_back({r, LogPosition{++offset, 1}});
  auto applied = apply_records(image, positioned);
  EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
  return applied.ok() ? *applied : image;
}

struct CountingIds {
  std::uint32_t next = 1;
  std::uint32_t start = 0;
  IdSource source() {
    return IdSource{[this] { return uuid(next++, 0xCC); }, [this](std::uint32_t n) { return start % n; }};
  }
};

AnyRecord broker_in_rack(std::int32_t id, std::int64_t epoch, std::optional<std::string> rack, bool fenced = false) {
  AnyRecord r = broker(id, epoch, fenced);
  std::get<rec::RegisterBrokerRecord>(r.record).rack = std::move(rack);
  return r;
}

// metadata.version and `count` unfenced brokers 1..count (epochs 100 + id), all in one rack.
ImagePtr cluster_of(std::int32_t count) {
  std::vector<AnyRecord> records{feature("metadata.version", kMetadataVersion)};
  for (std::int32_t id = 1; id <= count; ++id) records.push_back(broker_in_rack(id, 100 + id, "r"));
  return apply_ok(MetadataImage::empty(), records);
}

ControllerSettings settings() {
  ControllerSettings s;
  s.default_partitions = 3;
  s.default_replication_factor = 2;
  s.topic_config_error = [](const std::string& key, const std::string& value) -> std::optional<std::string> {
    if (key == "retention.ms" && value == "soon") return "Invalid value soon for configuration retention.ms";
    if (key == "no.such.key") return "Unknown topic config name: no.such.key";
    return std::nullopt;
  };
  return s;
}

msg::CreateTopicsRequest::CreatableTopic new_topic(const std::string& name, std::int32_t partitions,
                                                   std::int16_t factor) {
  msg::CreateTopicsRequest::CreatableTopic t;
  t.name = name;
  t.num_partitions = partitions;
  t.replication_factor = factor;
  return t;
}

msg::CreateTopicsRequest create_request(std::vector<msg::CreateTopicsRequest::CreatableTopic> topics,
                                        bool validate_only = false) {
  msg::CreateTopicsRequest r;
  r.topics = std::move(topics);
  r.validate_only = validate_only;
  return r;
}

// Creates topics that must all succeed, and returns the image with them.
ImagePtr with_topics(const ImagePtr& image, std::vector<msg::CreateTopicsRequest::CreatableTopic> topics) {
  CountingIds ids{1000};
  auto d = create_topics(*image, create_request(std::move(topics)), 7, settings(), ids.source());
  for (const auto& t : d.response.topics) EXPECT_EQ(t.error_code, 0) << t.name << ": " << t.error_message.value_or("");
  return apply_all(image, d.records);
}

std::int16_t error_of(const msg::CreateTopicsResponse& r, const std::string& name) {
  for (const auto& t : r.topics)
    if (t.name == name) return t.error_code;
  ADD_FAILURE() << "no result for " << name;
  return -100;
}

std::string message_of(const msg::CreateTopicsResponse& r, const std::string& name) {
  for (const auto& t : r.topics)
    if (t.name == name) return t.error_message.value_or("");
  return "";
}

// ---- Configs ----------------------------------------------------------------------------------------------

constexpr std::int16_t kUnknownTopicOrPartition = 3, kInvalidConfig = 40, kInvalidRequest = 42;

msg::IncrementalAlterConfigsRequest incremental(std::int8_t type, const std::string& name,
                                                std::vector<std::tuple<std::string, std::int8_t, std::optional<std::string>>> edits) {
  msg::IncrementalAlterConfigsRequest request;
  msg::IncrementalAlterConfigsRequest::AlterConfigsResource resource;
  resource.resource_type = type;
  resource.resource_name = name;
  for (auto& [key, op, value] : edits) {
    msg::IncrementalAlterConfigsRequest::AlterableConfig config;
    config.name = key;
    config.config_operation = op;
    config.value = value;
    resource.configs.push_back(std::move(config));
  }
  request.resources.push_back(std::move(resource));
  return request;
}

ControllerSettings with_broker_rules() {
  auto s = settings();
  s.broker_config_error = [](const std::string& key, const std::optional<std::string>&, bool per_broker)
      -> std::optional<std::string> {
    if (key != "listener.name.ssl.ssl.keystore.location") return "Cannot update these configs dynamically: " + key;
    if (!per_broker) return "broker id must be specified";
    return std::nullopt;
  };
  return s;
}

TEST(Controller, IncrementalAlterConfigsSetDeleteAppendSubtract) {
  ImagePtr image = with_topics(cluster_of(1), {new_topic("orders", 1, 1)});
  auto d = incremental_alter_configs(*image, incremental(2, "orders", {{"retention.ms", 0, "1000"},
                                                                     {"cleanup.policy", 2, "delete"}}), settings());
  ASSERT_EQ(d.response.responses.size(), 1u);
  EXPECT_EQ(d.response.responses[0].error_code, 0);
  EXPECT_EQ(d.records.size(), 2u);
  image = apply_all(image, d.records);
  EXPECT_EQ(image->config({ConfigResourceType::topic, "orders"}, "retention.ms")->value, "1000");
  EXPECT_EQ(image->config({ConfigResourceType::topic, "orders"}, "cleanup.policy")->value, "delete");

  // APPEND adds what is missing, SUBTRACT takes away; setting a value it already has makes no record.
  d = incremental_alter_configs(*image, incremental(2, "orders", {{"cleanup.policy", 2, "delete,other"}}), settings());
  image = apply_all(image, d.records);
  EXPECT_EQ(image->config({ConfigResourceType::topic, "orders"}, "cleanup.policy")->value, "delete,other");
  d = incremental_alter_configs(*image, incremental(2, "orders", {{"cleanup.policy", 3, "delete"}, {"retention.ms", 0, "1000"}}),
                                settings());
  ASSERT_EQ(d.records.size(), 1u);
  image = apply_all(image, d.records);
  EXPECT_EQ(image->config({ConfigResourceType::topic, "orders"}, "cleanup.policy")->value, "other");
  d = incremental_alter_configs(*image, incremental(2, "orders", {{"retention.ms", 1, std::nullopt}}), settings());
  image = apply_all(image, d.records);
  EXPECT_FALSE(image->config({ConfigResourceType::topic, "orders"}, "retention.ms").has_value());
}

TEST(Controller, AlterConfigsRefusalsMakeNoRecords) {
  ImagePtr image = with_topics(cluster_of(1), {new_topic("orders", 1, 1)});
  struct Case {
    msg::IncrementalAlterConfigsRequest request;
    std::int16_t error;
    std::string words;
  };
  const Case cases[] = {
      {incremental(2, "missing", {{"retention.ms", 0, "1"}}), kUnknownTopicOrPartition, "does not exist"},
      {incremental(2, "orders", {{"retention.ms", 0, "soon"}}), kInvalidConfig, "Invalid value soon"},
      {incremental(2, "orders", {{"retention.ms", 0, "1"}, {"retention.ms", 1, std::nullopt}}), kInvalidRequest,
       "duplicate config keys"},
      {incremental(2, "orders", {{"retention.ms", 7, "1"}}), kInvalidRequest, "Unknown config operation 7"},
      {incremental(2, "orders", {{"retention.ms", 0, std::nullopt}}), kInvalidRequest, "Null value"},
      {incremental(4, "1", {{"log.retention.ms", 0, "1"}}), kInvalidConfig, "Cannot update these configs dynamically"},
      {incremental(4, "", {{"listener.name.ssl.ssl.keystore.location", 0, "/k"}}), kInvalidConfig, "broker id must be"},
      {incremental(4, "one", {{"listener.name.ssl.ssl.keystore.location", 0, "/k"}}), kInvalidRequest, "Invalid broker id"},
      {incremental(16, "x", {{"a", 0, "1"}}), kInvalidRequest, "topic and broker configs only"},
  };
  for (const auto& c : cases) {
    auto d = incremental_alter_configs(*image, c.request, with_broker_rules());
    EXPECT_TRUE(d.records.empty()) << c.words;
    ASSERT_EQ(d.response.responses.size(), 1u);
    EXPECT_EQ(d.response.responses[0].error_code, c.error) << c.words;
    EXPECT_NE(d.response.responses[0].error_message.value_or("").find(c.words), std::string::npos)
        << d.response.responses[0].error_message.value_or("");
  }
  // Without broker rules no broker config changes at all.
  auto d = incremental_alter_configs(*image, incremental(4, "1", {{"listener.name.ssl.ssl.keystore.location", 0, "/k"}}),
                                     settings());
  EXPECT_EQ(d.response.responses[0].error_code, kInvalidConfig);
}

TEST(Controller, AlterConfigsReplacesTheWholeSetAndValidateOnlyStoresNothing) {
  ImagePtr image = cluster_of(1);
  auto d = incremental_alter_configs(*image, incremental(4, "1", {{"listener.name.ssl.ssl.keystore.location", 0, "/a"}}),
                                     with_broker_rules());
  ASSERT_EQ(d.records.size(), 1u);
  image = apply_all(image, d.records);
  EXPECT_EQ(image->config({ConfigResourceType::broker, "1"}, "listener.name.ssl.ssl.keystore.location")->value, "/a");

  auto request = incremental(4, "1", {{"listener.name.ssl.ssl.keystore.location", 0, "/b"}});
  request.validate_only = true;
  d = incremental_alter_configs(*image, request, with_broker_rules());
  EXPECT_EQ(d.response.responses[0].error_code, 0);
  EXPECT_TRUE(d.records.empty());

  image = with_topics(image, {new_topic("orders", 1, 1)});
  image = apply_all(image, incremental_alter_configs(*image, incremental(2, "orders", {{"retention.ms", 0, "5"},
                                                                                      {"segment.ms", 0, "6"}}),
                                                     settings()).records);
  msg::AlterConfigsRequest legacy;
  msg::AlterConfigsRequest::AlterConfigsResource resource;
  resource.resource_type = 2;
  resource.resource_name = "orders";
  msg::AlterConfigsRequest::AlterableConfig config;
  config.name = "retention.ms";
  config.value = "7";
  resource.configs.push_back(config);
  legacy.resources.push_back(resource);
  auto replaced = alter_configs(*image, legacy, settings());
  EXPECT_EQ(replaced.response.responses[0].error_code, 0);
  image = apply_all(image, replaced.records);
  EXPECT_EQ(image->config({ConfigResourceType::topic, "orders"}, "retention.ms")->value, "7");
  EXPECT_FALSE(image->config({ConfigResourceType::topic, "orders"}, "segment.ms").has_value()) << "AlterConfigs replaces the set";
}

// ---- Topic names and placement ----------------------------------------------------------------------------

TEST(Controller, TopicNameRules) {
  EXPECT_EQ(invalid_topic_name_reason("orders.v1_x-2"), std::nullopt);
  EXPECT_EQ(invalid_topic_name_reason(std::string(249, 'a')), std::nullopt);
  EXPECT_NE(invalid_topic_name_reason(std::string(250, 'a')), std::nullopt);
  EXPECT_NE(invalid_topic_name_reason(""), std::nullopt);
  EXPECT_NE(invalid_topic_name_reason("."), std::nullopt);
  EXPECT_NE(invalid_topic_name_reason(".."), std::nullopt);
  EXPECT_EQ(*invalid_topic_name_reason("a b"),
            "Topic name \"a b\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
  EXPECT_NE(invalid_topic_name_reason("ordérs"), std::nullopt);
}

TEST(Controller, PlacementSpreadsLeadersAndReplicasEvenly) {
  ImagePtr image = cluster_of(3);
  for (std::uint32_t start = 0; start < 3; ++start) {
    auto placed = place_replicas(*image, 30, 3, start);
    ASSERT_TRUE(placed.ok()) << placed.error().message;
    ASSERT_EQ(placed->size(), 30u);
    std::map<std::int32_t, int> leaders;
    std::map<std::int32_t, int> second;
    for (const auto& replicas : *placed) {
      ASSERT_EQ(replicas.size(), 3u);
      EXPECT_EQ(std::set<std::int32_t>(replicas.begin(), replicas.end()).size(), 3u) << "duplicate replica";
      ++leaders[replicas[0]];
      ++second[replicas[1]];
    }
    EXPECT_EQ(leaders, (std::map<std::int32_t, int>{{1, 10}, {2, 10}, {3, 10}}));
    EXPECT_EQ(second, (std::map<std::int32_t, int>{{1, 10}, {2, 10}, {3, 10}}));
  }
  // The start moves the first leader.
  EXPECT_NE((*place_replicas(*image, 1, 1, 0))[0], (*place_replicas(*image, 1, 1, 1))[0]);
  // 5 brokers, factor 2: leaders within one of each other and followers are shifted (not always leader + 1).
  ImagePtr five = cluster_of(5);
  auto placed = place_replicas(*five, 20, 2, 0);
  ASSERT_TRUE(placed.ok());
  std::set<std::pair<std::int32_t, std::int32_t>> pairs;
  for (const auto& r : *placed) pairs.insert({r[0], r[1]});
  EXPECT_GT(pairs.size(), 5u) << "followers never shift";
}

TEST(Controller, PlacementIsRackAware) {
  std::vector<AnyRecord> records{feature("metadata.version", kMetadataVersion)};
  const char* racks[] = {"a", "a", "b", "b", "c", "c"};
  for (std::int32_t id = 1; id <= 6; ++id) records.push_back(broker_in_rack(id, 100 + id, racks[id - 1]));
  ImagePtr image = apply_ok(MetadataImage::empty(), records);
  auto rack_of = [&](std::int32_t id) { return *image->broker(id)->rack; };
  auto placed = place_replicas(*image, 12, 3, 1);
  ASSERT_TRUE(placed.ok());
  std::map<std::int32_t, int> leaders;
  for (const auto& r : *placed) {
    std::set<std::string> used;
    for (auto b : r) used.insert(rack_of(b));
    EXPECT_EQ(used.size(), 3u) << "replicas share a rack";
    ++leaders[r[0]];
  }
  for (std::int32_t id = 1; id <= 6; ++id) EXPECT_EQ(leaders[id], 2) << "broker " << id;
  // Two racks, factor 3: both racks hold a replica, and the replicas stay distinct.
  ImagePtr two_racks = apply_ok(
      MetadataImage::empty(), {feature("metadata.version", kMetadataVersion), broker_in_rack(1, 101, "a"),
                               broker_in_rack(2, 102, "a"), broker_in_rack(3, 103, "b"), broker_in_rack(4, 104, "b")});
  auto two = place_replicas(*two_racks, 8, 3, 0);
  ASSERT_TRUE(two.ok());
  for (const auto& r : *two) {
    EXPECT_EQ(std::set<std::int32_t>(r.begin(), r.end()).size(), 3u);
    std::set<std::string> used;
    for (auto b : r) used.insert(*two_racks->broker(b)->rack);
    EXPECT_EQ(used.size(), 2u);
  }
}

TEST(Controller, PlacementUsesOnlyUnfencedBrokersAndRefusesTooFew) {
  ImagePtr image = apply_ok(cluster_of(2), {broker_in_rack(3, 103, "r", /*fenced=*/true)});
  auto placed = place_replicas(*image, 10, 2, 0);
  ASSERT_TRUE(placed.ok());
  for (const auto& r : *placed) EXPECT_FALSE(std::find(r.begin(), r.end(), 3) != r.end()) << "placed on fenced 3";
  auto refused = place_replicas(*image, 1, 3, 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached "
            "because only 2 broker(s) are registered.");
  EXPECT_FALSE(place_replicas(*MetadataImage::empty(), 1, 1, 0).ok());
}

// ---- CreateTopics -----------------------------------------------------------------------------------------

TEST(Controller, CreateTopicsRecordsBuildTheTopic) {
  ImagePtr image = cluster_of(3);
  CountingIds ids;
  auto topic = new_topic("orders", 6, 2);
  topic.configs.push_back({"retention.ms", "1000", {}});
  auto d = create_topics(*image, create_request({topic}), 7, settings(), ids.source());
  ASSERT_EQ(d.response.topics.size(), 1u);
  const auto& result = d.response.topics[0];
  EXPECT_EQ(result.error_code, 0);
  EXPECT_EQ(result.error_message, std::nullopt);
  EXPECT_EQ(result.num_partitions, 6);
  EXPECT_EQ(result.replication_factor, 2);
  ASSERT_TRUE(result.configs.has_value());
  ASSERT_EQ(result.configs->size(), 1u);
  EXPECT_EQ((*result.configs)[0].name, "retention.ms");
  // Kafka's order: the topic, its configs, its partitions.
  ASSERT_EQ(d.records.size(), 8u);
  EXPECT_EQ(d.records[0].name(), "TopicRecord");
  EXPECT_EQ(d.records[1].name(), "ConfigRecord");
  EXPECT_EQ(d.records[2].name(), "PartitionRecord");

  ImagePtr after = apply_all(image, d.records);
  const TopicImage* t = after->topic("orders");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->id, result.topic_id);
  EXPECT_NE(t->id, Uuid{});
  ASSERT_EQ(t->partitions.size(), 6u);
  std::map<std::int32_t, int> leaders;
  for (const auto& [index, p] : t->partitions) {
    ASSERT_EQ(p.replicas.size(), 2u);
    EXPECT_NE(p.replicas[0], p.replicas[1]);
    EXPECT_EQ(p.isr, p.replicas);
    EXPECT_EQ(p.leader, p.replicas[0]);
    EXPECT_EQ(p.leader_epoch, 0);
    EXPECT_EQ(p.partition_epoch, 0);
    ++leaders[p.leader];
  }
  EXPECT_EQ(leaders, (std::map<std::int32_t, int>{{1, 2}, {2, 2}, {3, 2}}));
  EXPECT_EQ(after->config({ConfigResourceType::topic, "orders"}, "retention.ms")->value, "1000");
}

TEST(Controller, CreateTopicsRefusalsHaveNoRecordsAndKafkasMessages) {
  ImagePtr image = with_topics(cluster_of(1), {new_topic("existing", 1, 1)});
  CountingIds ids;
  auto bad_config = new_topic("bad-config", 1, 1);
  bad_config.configs.push_back({"retention.ms", "soon", {}});
  auto null_config = new_topic("null-config", 1, 1);
  null_config.configs.push_back({"retention.ms", std::nullopt, {}});
  auto manual_with_factor = new_topic("manual", -1, 1);
  manual_with_factor.assignments.push_back({0, {1}, {}});
  auto d = create_topics(
      *image,
      create_request({new_topic("bad name", 1, 1), new_topic("existing", 1, 1), new_topic("too-many-replicas", 1, 3),
                      new_topic("zero-partitions", 0, 1), new_topic("zero-factor", 1, 0), bad_config, null_config,
                      manual_with_factor, new_topic("twice", 1, 1), new_topic("twice", 1, 1)}),
      7, settings(), ids.source());
  EXPECT_TRUE(d.records.empty());
  EXPECT_EQ(d.response.topics.size(), 9u);  // one answer for "twice"
  EXPECT_EQ(error_of(d.response, "bad name"), 17);
  EXPECT_EQ(error_of(d.response, "existing"), 36);
  EXPECT_EQ(message_of(d.response, "existing"), "Topic 'existing' already exists.");
  EXPECT_EQ(error_of(d.response, "too-many-replicas"), 38);
  EXPECT_EQ(message_of(d.response, "too-many-replicas"),
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached "
            "because only 1 broker(s) are registered.");
  EXPECT_EQ(error_of(d.response, "zero-partitions"), 37);
  EXPECT_EQ(error_of(d.response, "zero-factor"), 38);
  EXPECT_EQ(error_of(d.response, "bad-config"), 40);
  EXPECT_EQ(message_of(d.response, "bad-config"), "Invalid value soon for configuration retention.ms");
  EXPECT_EQ(error_of(d.response, "null-config"), 40);
  EXPECT_EQ(error_of(d.response, "manual"), 42);
  EXPECT_EQ(error_of(d.response, "twice"), 42);
  EXPECT_EQ(message_of(d.response, "twice"), "Duplicate topic name.");
}

TEST(Controller, CreateTopicsCreatesTheValidOnesOfAMixedRequest) {
  ImagePtr image = cluster_of(2);
  CountingIds ids;
  auto d = create_topics(*image,
                         create_request({new_topic("good", 2, 2), new_topic("bad", 1, 5), new_topic("also", -1, -1)}),
                         7, settings(), ids.source());
  EXPECT_EQ(error_of(d.response, "good"), 0);
  EXPECT_EQ(error_of(d.response, "bad"), 38);
  EXPECT_EQ(error_of(d.response, "also"), 0);
  ImagePtr after = apply_all(image, d.records);
  ASSERT_NE(after->topic("good"), nullptr);
  EXPECT_EQ(after->topic("bad"), nullptr);
  // -1 counts: the settings' defaults (3 partitions, factor 2).
  ASSERT_NE(after->topic("also"), nullptr);
  EXPECT_EQ(after->topic("also")->partitions.size(), 3u);
  EXPECT_EQ(after->partition("also", 0)->replicas.size(), 2u);
  EXPECT_NE(after->topic("good")->id, after->topic("also")->id);
}

TEST(Controller, CreateTopicsValidateOnlyAnswersWithoutRecords) {
  ImagePtr image = cluster_of(3);
  CountingIds ids;
  auto d = create_topics(*image, create_request({new_topic("orders", 4, 3), new_topic("x", 1, 4)}, true), 7, settings(),
                         ids.source());
  EXPECT_TRUE(d.records.empty());
  EXPECT_EQ(error_of(d.response, "orders"), 0);
  EXPECT_EQ(d.response.topics[0].num_partitions, 4);
  EXPECT_EQ(d.response.topics[0].replication_factor, 3);
  EXPECT_EQ(error_of(d.response, "x"), 38);
}

TEST(Controller, CreateTopicsManualAssignment) {
  ImagePtr image = apply_ok(cluster_of(3), {broker_in_rack(4, 104, "r", /*fenced=*/true)});
  CountingIds ids;
  auto manual = new_topic("manual", -1, -1);
  manual.assignments.push_back({0, {4, 2}, {}});  // 4 is fenced: not in the ISR, 2 leads
  manual.assignments.push_back({1, {3, 1}, {}});
  auto d = create_topics(*image, create_request({manual}), 7, settings(), ids.source());
  ASSERT_EQ(error_of(d.response, "manual"), 0) << message_of(d.response, "manual");
  ImagePtr after = apply_all(image, d.records);
  const PartitionState* p0 = after->partition("manual", 0);
  ASSERT_NE(p0, nullptr);
  EXPECT_EQ(p0->replicas, (std::vector<std::int32_t>{4, 2}));
  EXPECT_EQ(p0->isr, (std::vector<std::int32_t>{2}));
  EXPECT_EQ(p0->leader, 2);
  EXPECT_EQ(after->partition("manual", 1)->leader, 3);

  auto assigned = [&](std::vector<std::pair<std::int32_t, std::vector<std::int32_t>>> parts) {
    auto t = new_topic("m2", -1, -1);
    for (auto& [index, brokers] : parts) t.assignments.push_back({index, brokers, {}});
    auto r = create_topics(*image, create_request({t}), 7, settings(), ids.source());
    EXPECT_TRUE(r.records.empty());
    return std::make_pair(error_of(r.response, "m2"), message_of(r.response, "m2"));
  };
  EXPECT_EQ(assigned({{0, {1, 1}}}),
            std::make_pair(std::int16_t{39},
                           std::string("The manual partition assignment includes the broker 1 more than once.")));
  EXPECT_EQ(assigned({{0, {9}}}).first, 39);
  EXPECT_EQ(assigned({{0, {4}}}).first, 39);               // only a fenced broker
  EXPECT_EQ(assigned({{0, {1}}, {2, {2}}}).first, 39);     // not 0..n-1
  EXPECT_EQ(assigned({{0, {1}}, {1, {1, 2}}}).first, 39);  // factors differ
  EXPECT_EQ(assigned({{0, {1}}, {0, {2}}}).first, 39);     // partition twice
}

TEST(Controller, CreateTopicsRefusesNamesThatCollideOnDotAndUnderscore) {
  ImagePtr image = with_topics(cluster_of(1), {new_topic("a.b", 1, 1)});
  CountingIds ids;
  auto d = create_topics(*image, create_request({new_topic("a_b", 1, 1)}), 7, settings(), ids.source());
  EXPECT_TRUE(d.records.empty());
  EXPECT_EQ(error_of(d.response, "a_b"), 17);
  EXPECT_EQ(message_of(d.response, "a_b"), "Topic 'a_b' collides with existing topic: a.b");
}

// ---- DeleteTopics and CreatePartitions --------------------------------------------------------------------

TEST(Controller, DeleteTopicsByNameAndById) {
  auto with_config = new_topic("orders", 2, 1);
  with_config.configs.push_back({"retention.ms", "5", {}});
  ImagePtr image = with_topics(cluster_of(1), {with_config, new_topic("payments", 1, 1), new_topic("keep", 1, 1)});
  const Uuid payments = image->topic("payments")->id;

  msg::DeleteTopicsRequest by_name;
  by_name.topic_names = {"orders", "nope"};
  auto d = delete_topics(*image, by_name, 5);
  ASSERT_EQ(d.response.responses.size(), 2u);
  EXPECT_EQ(d.response.responses[0].error_code, 0);
  EXPECT_EQ(d.response.responses[1].error_code, 3);
  ImagePtr after = apply_all(image, d.records);
  EXPECT_EQ(after->topic("orders"), nullptr);
  EXPECT_EQ(after->configs({ConfigResourceType::topic, "orders"}), nullptr);
  EXPECT_NE(after->topic("payments"), nullptr);

  msg::DeleteTopicsRequest by_id;
  by_id.topics.push_back({std::nullopt, payments, {}});
  by_id.topics.push_back({std::nullopt, uuid(77), {}});
  by_id.topics.push_back({std::string("keep"), uuid(78), {}});  // both: refused
  auto d2 = delete_topics(*after, by_id, 6);
  ASSERT_EQ(d2.response.responses.size(), 3u);
  EXPECT_EQ(d2.response.responses[0].error_code, 0);
  EXPECT_EQ(d2.response.responses[0].name, std::optional<std::string>("payments"));
  EXPECT_EQ(d2.response.responses[1].error_code, 100);
  EXPECT_EQ(d2.response.responses[2].error_code, 42);
  ImagePtr after2 = apply_all(after, d2.records);
  EXPECT_EQ(after2->topic("payments"), nullptr);
  EXPECT_NE(after2->topic("keep"), nullptr);

  msg::DeleteTopicsRequest twice;
  twice.topic_names = {"keep", "keep"};
  auto d3 = delete_topics(*after2, twice, 5);
  EXPECT_TRUE(d3.records.empty());
  ASSERT_EQ(d3.response.responses.size(), 1u);
  EXPECT_EQ(d3.response.responses[0].error_code, 42);
}

TEST(Controller, CreatePartitionsGrowsTheTopic) {
  ImagePtr image = with_topics(cluster_of(3), {new_topic("orders", 2, 2)});
  CountingIds ids;
  msg::CreatePartitionsRequest request;
  request.topics.push_back({"orders", 5, std::nullopt, {}});
  auto d = create_partitions(*image, request, ids.source());
  ASSERT_EQ(d.response.results.size(), 1u);
  EXPECT_EQ(d.response.results[0].error_code, 0);
  EXPECT_EQ(d.records.size(), 3u);
  ImagePtr after = apply_all(image, d.records);
  ASSERT_EQ(after->topic("orders")->partitions.size(), 5u);
  for (std::int32_t i = 2; i < 5; ++i) {
    const PartitionState* p = after->partition("orders", i);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->replicas.size(), 2u);
    EXPECT_NE(p->replicas[0], p->replicas[1]);
    EXPECT_EQ(p->leader, p->replicas[0]);
    EXPECT_EQ(p->isr, p->replicas);
  }
  // Validate only: the answer, no records.
  request.validate_only = true;
  request.topics[0].count = 6;
  auto v = create_partitions(*after, request, ids.source());
  EXPECT_EQ(v.response.results[0].error_code, 0);
  EXPECT_TRUE(v.records.empty());
}

TEST(Controller, CreatePartitionsRefusals) {
  ImagePtr image = with_topics(cluster_of(2), {new_topic("orders", 2, 2)});
  CountingIds ids;
  auto one = [&](msg::CreatePartitionsRequest::CreatePartitionsTopic topic) {
    msg::CreatePartitionsRequest request;
    request.topics.push_back(std::move(topic));
    auto d = create_partitions(*image, request, ids.source());
    EXPECT_TRUE(d.records.empty());
    return std::make_pair(d.response.results.at(0).error_code, d.response.results.at(0).error_message.value_or(""));
  };
  EXPECT_EQ(one({"orders", 2, std::nullopt, {}}),
            std::make_pair(std::int16_t{37}, std::string("Topic already has 2 partition(s).")));
  EXPECT_EQ(one({"orders", 1, std::nullopt, {}}).first, 37);
  EXPECT_EQ(one({"nope", 3, std::nullopt, {}}).first, 3);
  using Assignment = msg::CreatePartitionsRequest::CreatePartitionsAssignment;
  EXPECT_EQ(one({"orders", 4, std::vector<Assignment>{{{1, 2}, {}}}, {}}).first, 39);  // 2 new, 1 assignment
  EXPECT_EQ(one({"orders", 3, std::vector<Assignment>{{{1}, {}}}, {}}).first, 39);     // factor 1, topic has 2
  msg::CreatePartitionsRequest manual;
  manual.topics.push_back({"orders", 3, std::vector<Assignment>{{{2, 1}, {}}}, {}});
  auto ok = create_partitions(*image, manual, ids.source());
  ASSERT_EQ(ok.response.results[0].error_code, 0) << ok.response.results[0].error_message.value_or("");
  EXPECT_EQ(apply_all(image, ok.records)->partition("orders", 2)->replicas, (std::vector<std::int32_t>{2, 1}));
}

// ---- Brokers ----------------------------------------------------------------------------------------------

msg::BrokerRegistrationRequest registration(std::int32_t id, std::uint32_t incarnation) {
  msg::BrokerRegistrationRequest r;
  r.broker_id = id;
  r.incarnation_id = uuid(incarnation, 0xEE);
  r.rack = "r";
  r.listeners.push_back({"EXTERNAL", "10.0.0.1", 9092, 0, {}});
  r.features.push_back({std::string(kMetadataVersionFeature), 1, kMetadataVersion, {}});
  return r;
}

// Registers and applies; the registration is at the next offset, which is its broker epoch.
ImagePtr register_ok(const ImagePtr& image, const msg::BrokerRegistrationRequest& request, bool expired = false) {
  auto d = register_broker(*image, request, expired);
  EXPECT_EQ(d.response.error_code, 0);
  assign_broker_epoch(d, image->offset() + 1);
  EXPECT_EQ(d.response.broker_epoch, image->offset() + 1);
  return apply_all(image, d.records);
}

TEST(Controller, RegisterBrokerDuplicatesAndRetries) {
  ImagePtr image = apply_ok(MetadataImage::empty(), bootstrap_records(*MetadataImage::empty()));
  ImagePtr registered = register_ok(image, registration(1, 1));
  const BrokerRegistration* b = registered->broker(1);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->fenced);
  EXPECT_EQ(b->epoch, registered->offset());
  EXPECT_EQ(b->incarnation_id, uuid(1, 0xEE));
  EXPECT_EQ(b->rack, std::optional<std::string>("r"));
  ASSERT_EQ(b->endpoints.size(), 1u);
  EXPECT_EQ(b->endpoints[0].port, 9092);

  // Another incarnation while the session lives: refused.
  auto dup = register_broker(*registered, registration(1, 2), false);
  EXPECT_EQ(dup.response.error_code, 101);
  EXPECT_TRUE(dup.records.empty());
  // A retry of the same incarnation, or another once the session expired: a new epoch.
  ImagePtr retried = register_ok(registered, registration(1, 1));
  EXPECT_GT(retried->broker(1)->epoch, b->epoch);
  ImagePtr restarted = register_ok(retried, registration(1, 2), /*expired=*/true);
  EXPECT_EQ(restarted->broker(1)->incarnation_id, uuid(2, 0xEE));

  // A broker that cannot run the cluster's metadata.version.
  auto old = registration(2, 3);
  old.features[0].max_supported_version = 7;
  EXPECT_EQ(register_broker(*image, old, false).response.error_code, 35);
  auto no_features = registration(2, 3);
  no_features.features.clear();
  EXPECT_EQ(register_broker(*image, no_features, false).response.error_code, 35);
  auto two_listeners = registration(2, 3);
  two_listeners.listeners.push_back(two_listeners.listeners[0]);
  EXPECT_EQ(register_broker(*image, two_listeners, false).response.error_code, 42);
  // Until the epoch is assigned the decision leaves the response's at -1.
  EXPECT_EQ(register_broker(*image, registration(3, 3), false).response.broker_epoch, -1);
}

msg::BrokerHeartbeatRequest heartbeat(const MetadataImage& image, std::int32_t id, std::int64_t offset) {
  msg::BrokerHeartbeatRequest r;
  r.broker_id = id;
  r.broker_epoch = image.broker(id)->epoch;
  r.current_metadata_offset = offset;
  return r;
}

TEST(Controller, HeartbeatUnfencesOnlyOnceCaughtUp) {
  ImagePtr image = register_ok(cluster_of(1), registration(2, 9));
  const std::int64_t epoch = image->broker(2)->epoch;
  auto behind = broker_heartbeat(*image, heartbeat(*image, 2, epoch - 1));
  EXPECT_EQ(behind.response.error_code, 0);
  EXPECT_TRUE(behind.records.empty());
  EXPECT_FALSE(behind.response.is_caught_up);
  EXPECT_TRUE(behind.response.is_fenced);

  auto caught_up = broker_heartbeat(*image, heartbeat(*image, 2, epoch));
  EXPECT_TRUE(caught_up.response.is_caught_up);
  EXPECT_FALSE(caught_up.response.is_fenced);
  EXPECT_FALSE(caught_up.response.should_shut_down);
  ASSERT_EQ(caught_up.records.size(), 1u);
  ImagePtr unfenced = apply_all(image, caught_up.records);
  EXPECT_FALSE(unfenced->broker(2)->fenced);
  // Steady state: nothing to write.
  auto steady = broker_heartbeat(*unfenced, heartbeat(*unfenced, 2, epoch + 5));
  EXPECT_TRUE(steady.records.empty());
  EXPECT_FALSE(steady.response.is_fenced);

  // A fenced broker that wants to stay fenced stays.
  auto wants_fence = heartbeat(*image, 2, epoch);
  wants_fence.want_fence = true;
  EXPECT_TRUE(broker_heartbeat(*image, wants_fence).records.empty());

  auto stale = heartbeat(*image, 2, epoch);
  stale.broker_epoch = epoch - 1;
  auto s = broker_heartbeat(*image, stale);
  EXPECT_EQ(s.response.error_code, 77);
  EXPECT_TRUE(s.records.empty());
  msg::BrokerHeartbeatRequest unknown;
  unknown.broker_id = 42;
  EXPECT_EQ(broker_heartbeat(*image, unknown).response.error_code, 102);
}

// Brokers 1..3 unfenced; orders-0 [1,2,3] led by 1, orders-1 [2,1] led by 2, orders-2 [1] led by 1,
// orders-3 [3,1,2] led by 3 with ISR [3,1,2].
ImagePtr led_partitions() {
  ImagePtr image = cluster_of(3);
  const Uuid orders = uuid(1);
  return apply_ok(image, {topic("orders", orders), partition(orders, 0, {1, 2, 3}, {1, 2, 3}, 1, 3, 5),
                          partition(orders, 1, {2, 1}, {2, 1}, 2), partition(orders, 2, {1}, {1}, 1),
                          partition(orders, 3, {3, 1, 2}, {3, 1, 2}, 3)});
}

TEST(Controller, FenceMovesLeadershipAndShrinksIsr) {
  ImagePtr image = led_partitions();
  auto records = fence_broker(*image, 1);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].name(), "FenceBrokerRecord");
  ImagePtr after = apply_all(image, records);
  EXPECT_TRUE(after->broker(1)->fenced);
  const PartitionState* p0 = after->partition("orders", 0);
  EXPECT_EQ(p0->leader, 2);  // the first replica in the ISR that is unfenced
  EXPECT_EQ(p0->isr, (std::vector<std::int32_t>{2, 3}));
  EXPECT_EQ(p0->leader_epoch, 4);
  EXPECT_EQ(p0->partition_epoch, 6);
  const PartitionState* p1 = after->partition("orders", 1);
  EXPECT_EQ(p1->leader, 2);
  EXPECT_EQ(p1->isr, (std::vector<std::int32_t>{2}));
  EXPECT_EQ(p1->leader_epoch, 0);  // the leader did not change
  EXPECT_EQ(p1->partition_epoch, 1);
  const PartitionState* p2 = after->partition("orders", 2);
  EXPECT_EQ(p2->leader, kNoLeader);
  EXPECT_EQ(p2->isr, (std::vector<std::int32_t>{1}));  // the last ISR member stays
  EXPECT_EQ(p2->leader_epoch, 1);
  EXPECT_EQ(after->partition("orders", 3)->isr, (std::vector<std::int32_t>{3, 2}));
  EXPECT_EQ(after->partition("orders", 3)->leader, 3);
  // Nothing left to move: fencing again writes only the (idempotent) fence.
  EXPECT_EQ(fence_broker(*after, 1).size(), 1u);
  EXPECT_TRUE(fence_broker(*after, 99).empty());
}

TEST(Controller, ElectLeadersAfterUnfence) {
  ImagePtr fenced = apply_all(led_partitions(), fence_broker(*led_partitions(), 1));
  EXPECT_TRUE(elect_leaders(*fenced).empty());  // orders-2's only ISR member is fenced
  auto hb = broker_heartbeat(*fenced, heartbeat(*fenced, 1, fenced->broker(1)->epoch));
  ImagePtr unfenced = apply_all(fenced, hb.records);
  ASSERT_FALSE(unfenced->broker(1)->fenced);
  auto elections = elect_leaders(*unfenced);
  ASSERT_EQ(elections.size(), 1u);
  ImagePtr after = apply_all(unfenced, elections);
  EXPECT_EQ(after->partition("orders", 2)->leader, 1);
  EXPECT_EQ(after->partition("orders", 2)->leader_epoch, 2);
  EXPECT_EQ(after->partition("orders", 0)->leader, 2);  // a led partition keeps its leader
  EXPECT_TRUE(elect_leaders(*after).empty());
}

TEST(Controller, ControlledShutdownMovesLeadersThenShutsDown) {
  ImagePtr image = led_partitions();
  auto request = heartbeat(*image, 1, image->offset());
  request.want_shut_down = true;
  auto first = broker_heartbeat(*image, request);
  EXPECT_FALSE(first.response.is_fenced);
  EXPECT_FALSE(first.response.should_shut_down);
  ASSERT_FALSE(first.records.empty());
  EXPECT_EQ(first.records[0].name(), "BrokerRegistrationChangeRecord");
  ImagePtr moving = apply_all(image, first.records);
  EXPECT_TRUE(moving->broker(1)->in_controlled_shutdown);
  EXPECT_FALSE(moving->broker(1)->fenced);
  EXPECT_EQ(moving->partition("orders", 0)->leader, 2);
  EXPECT_EQ(moving->partition("orders", 2)->leader, kNoLeader);
  // New topics avoid it.
  auto avoiding = place_replicas(*moving, 6, 2, 0);
  ASSERT_TRUE(avoiding.ok());
  for (const auto& r : *avoiding) EXPECT_EQ(std::count(r.begin(), r.end(), 1), 0);

  auto second = broker_heartbeat(*moving, request);
  EXPECT_TRUE(second.response.should_shut_down);
  EXPECT_TRUE(second.response.is_fenced);
  ImagePtr done = apply_all(moving, second.records);
  EXPECT_TRUE(done->broker(1)->fenced);
  // A broker that leads nothing shuts down at once.
  ImagePtr quiet = cluster_of(2);
  auto quick = broker_heartbeat(*quiet, [&] {
    auto r = heartbeat(*quiet, 2, quiet->offset());
    r.want_shut_down = true;
    return r;
  }());
  EXPECT_TRUE(quick.response.should_shut_down);
  EXPECT_TRUE(apply_all(quiet, quick.records)->broker(2)->fenced);
}

TEST(Controller, HeartbeatWantingFenceFencesAndMovesLeaders) {
  ImagePtr image = led_partitions();
  auto request = heartbeat(*image, 1, image->broker(1)->epoch);
  request.want_fence = true;
  auto d = broker_heartbeat(*image, request);
  EXPECT_TRUE(d.response.is_fenced);
  EXPECT_FALSE(d.response.should_shut_down);
  ImagePtr after = apply_all(image, d.records);
  EXPECT_TRUE(after->broker(1)->fenced);
  EXPECT_EQ(after->partition("orders", 0)->leader, 2);
  EXPECT_EQ(after->partition("orders", 2)->leader, kNoLeader);
  // Fence and shut down at once.
  request.want_shut_down = true;
  auto both = broker_heartbeat(*image, request);
  EXPECT_TRUE(both.response.should_shut_down);
  EXPECT_TRUE(apply_all(image, both.records)->broker(1)->fenced);
}

// ---- ACLs -------------------------------------------------------------------------------------------------

msg::CreateAclsRequest::AclCreation acl_creation(const std::string& principal, std::int8_t operation = 3,
                                                 const std::string& name = "orders", std::int8_t pattern = 3) {
  return {2, name, pattern, principal, "*", operation, 3, {}};
}

TEST(Controller, CreateAcls) {
  ImagePtr image = apply_ok(cluster_of(1), {acl(uuid(1, 0xAC), "User:alice")});
  CountingIds ids;
  msg::CreateAclsRequest request;
  request.creations = {acl_creation("User:alice"),  // identical to the existing one: success, no record
                       acl_creation("User:bob"),
                       acl_creation("User:bob"),
                       acl_creation("bob"),
                       {0, "orders", 3, "User:x", "*", 3, 3, {}},
                       acl_creation("User:carol", 4, "ord", 4)};
  auto d = create_acls(*image, request, ids.source());
  ASSERT_EQ(d.response.results.size(), 6u);
  EXPECT_EQ(d.response.results[0].error_code, 0);
  EXPECT_EQ(d.response.results[1].error_code, 0);
  EXPECT_EQ(d.response.results[2].error_code, 0);
  EXPECT_EQ(d.response.results[3].error_code, 42);
  EXPECT_EQ(d.response.results[3].error_message.value_or("").rfind("Invalid ACL: ", 0), 0u);
  EXPECT_EQ(d.response.results[4].error_code, 42);
  EXPECT_EQ(d.response.results[5].error_code, 0);
  EXPECT_EQ(d.records.size(), 2u);  // bob once, carol
  ImagePtr after = apply_all(image, d.records);
  ASSERT_EQ(after->acl_count(), 3u);
  bool carol = false;
  for (const AclEntry& a : after->acls()) {
    if (a.principal == "User:carol") {
      carol = true;
      EXPECT_EQ(a.pattern_type, 4);
      EXPECT_EQ(a.operation, 4);
      EXPECT_EQ(a.resource_name, "ord");
    }
  }
  EXPECT_TRUE(carol);
}

TEST(Controller, DeleteAclsByFilter) {
  ImagePtr base = cluster_of(1);
  CountingIds ids;
  msg::CreateAclsRequest create;
  create.creations = {acl_creation("User:alice"), acl_creation("User:alice", 4), acl_creation("User:bob"),
                      acl_creation("User:bob", 3, "ord", 4), acl_creation("User:bob", 3, "other")};
  ImagePtr image = apply_all(base, create_acls(*base, create, ids.source()).records);
  ASSERT_EQ(image->acl_count(), 5u);

  using Filter = msg::DeleteAclsRequest::DeleteAclsFilter;
  msg::DeleteAclsRequest request;
  // ANY resource, any pattern, principal alice: her two.
  request.filters.push_back(Filter{1, std::nullopt, 1, std::string("User:alice"), std::nullopt, 1, 1, {}});
  // MATCH "orders" for bob: the literal on orders and the prefix "ord", not "other".
  request.filters.push_back(Filter{2, std::string("orders"), 2, std::string("User:bob"), std::nullopt, 1, 1, {}});
  // Overlaps the first: alice's READ again (listed, removed once).
  request.filters.push_back(Filter{2, std::string("orders"), 3, std::string("User:alice"), std::string("*"), 3, 3, {}});
  // Unknown code.
  request.filters.push_back(Filter{0, std::nullopt, 1, std::nullopt, std::nullopt, 1, 1, {}});
  auto d = delete_acls(*image, request);
  ASSERT_EQ(d.response.filter_results.size(), 4u);
  EXPECT_EQ(d.response.filter_results[0].matching_acls.size(), 2u);
  EXPECT_EQ(d.response.filter_results[1].matching_acls.size(), 2u);
  EXPECT_EQ(d.response.filter_results[2].matching_acls.size(), 1u);
  EXPECT_EQ(d.response.filter_results[3].error_code, 42);
  EXPECT_EQ(d.records.size(), 4u);
  ImagePtr after = apply_all(image, d.records);
  ASSERT_EQ(after->acl_count(), 1u);
  EXPECT_EQ(after->acls()[0].resource_name, "other");
}

// ---- SCRAM ------------------------------------------------------------------------------------------------

msg::AlterUserScramCredentialsRequest::ScramCredentialUpsertion upsert(const std::string& user, std::int8_t mechanism,
                                                                       std::int32_t iterations = 4096) {
  namespace sasl = security::sasl;
  const Bytes salt{9, 8, 7, 6};
  auto m = mechanism == 2 ? sasl::Mechanism::scram_sha_512 : sasl::Mechanism::scram_sha_256;
  auto salted = sasl::scram_salted_password(m, "secret", salt, 4096);
  EXPECT_TRUE(salted.ok());
  return {user, mechanism, iterations, salt, salted.ok() ? *salted : Bytes{}, {}};
}

TEST(Controller, ScramUpsertAndDelete) {
  namespace sasl = security::sasl;
  ImagePtr image = cluster_of(1);
  msg::AlterUserScramCredentialsRequest request;
  request.upsertions = {upsert("alice", 1), upsert("bob", 2)};
  auto d = alter_scram_credentials(*image, request);
  ASSERT_EQ(d.response.results.size(), 2u);
  EXPECT_EQ(d.response.results[0].error_code, 0);
  EXPECT_EQ(d.response.results[1].error_code, 0);
  ImagePtr after = apply_all(image, d.records);
  const ScramCredential* alice = after->scram_credential("alice", ScramMechanism::sha256);
  ASSERT_NE(alice, nullptr);
  // The stored form is what a login with the password derives.
  auto expected = sasl::make_scram_credential(sasl::Mechanism::scram_sha_256, "secret", 4096, Bytes{9, 8, 7, 6});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(alice->stored_key, expected->stored_key);
  EXPECT_EQ(alice->server_key, expected->server_key);
  EXPECT_EQ(alice->salt, (Bytes{9, 8, 7, 6}));
  EXPECT_EQ(alice->iterations, 4096);
  EXPECT_NE(after->scram_credential("bob", ScramMechanism::sha512), nullptr);

  msg::AlterUserScramCredentialsRequest removal;
  removal.deletions = {{"alice", 1, {}}, {"bob", 1, {}}};  // bob has only SHA-512
  auto r = alter_scram_credentials(*after, removal);
  ASSERT_EQ(r.response.results.size(), 2u);
  EXPECT_EQ(r.response.results[0].error_code, 0);
  EXPECT_EQ(r.response.results[1].error_code, 91);
  ImagePtr removed = apply_all(after, r.records);
  EXPECT_EQ(removed->scram_credential("alice", ScramMechanism::sha256), nullptr);
  EXPECT_NE(removed->scram_credential("bob", ScramMechanism::sha512), nullptr);
}

TEST(Controller, ScramRefusals) {
  ImagePtr image = cluster_of(1);
  msg::AlterUserScramCredentialsRequest request;
  request.deletions = {{"dup", 1, {}}};
  request.upsertions = {upsert("dup", 2),         upsert("", 1),    upsert("mech", 3), upsert("few", 1, 100),
                        upsert("many", 1, 20000), upsert("fine", 1)};
  request.upsertions[5].salt.clear();  // refused by the derivation: no salt
  auto d = alter_scram_credentials(*image, request);
  std::map<std::string, std::int16_t> codes;
  for (const auto& r : d.response.results) codes[r.user] = r.error_code;
  // "dup" is deleted (no credential: 91 first) and upserted: the first error wins.
  EXPECT_EQ(codes["dup"], 91);
  EXPECT_EQ(codes[""], 93);
  EXPECT_EQ(codes["mech"], 33);
  EXPECT_EQ(codes["few"], 93);
  EXPECT_EQ(codes["many"], 93);
  EXPECT_EQ(codes["fine"], 93);
  EXPECT_TRUE(d.records.empty());

  // Both mechanisms of a user in one request (as kafka-configs sends them) are fine; the same mechanism
  // twice refuses that user's alterations, and only that user's.
  msg::AlterUserScramCredentialsRequest both;
  both.upsertions = {upsert("carol", 1), upsert("carol", 2)};
  auto b = alter_scram_credentials(*image, both);
  ASSERT_EQ(b.response.results.size(), 1u);
  EXPECT_EQ(b.response.results[0].error_code, 0);
  ImagePtr with_both = apply_all(image, b.records);
  EXPECT_NE(with_both->scram_credential("carol", ScramMechanism::sha256), nullptr);
  EXPECT_NE(with_both->scram_credential("carol", ScramMechanism::sha512), nullptr);

  msg::AlterUserScramCredentialsRequest twice;
  twice.upsertions = {upsert("carol", 1), upsert("carol", 2), upsert("carol", 1), upsert("dave", 1)};
  auto t = alter_scram_credentials(*image, twice);
  ASSERT_EQ(t.response.results.size(), 2u);
  EXPECT_EQ(t.response.results[0].user, "carol");
  EXPECT_EQ(t.response.results[0].error_code, 92);
  EXPECT_EQ(t.response.results[1].error_code, 0);
  ImagePtr after = apply_all(image, t.records);
  EXPECT_EQ(after->scram_credential("carol", ScramMechanism::sha256), nullptr);
  EXPECT_EQ(after->scram_credential("carol", ScramMechanism::sha512), nullptr);
  EXPECT_NE(after->scram_credential("dave", ScramMechanism::sha256), nullptr);
  // Below metadata.version 3.5-IV2 there is no SCRAM.
  ImagePtr old = apply_ok(MetadataImage::empty(), {feature("metadata.version", 7)});
  EXPECT_EQ(alter_scram_credentials(*old, twice).response.results[1].error_code, 35);
}

// ---- Producer ids and bootstrap ---------------------------------------------------------------------------

TEST(Controller, ProducerIdBlocksAreContiguousAndIncreasing) {
  ImagePtr image = cluster_of(2);
  ControllerSettings s = settings();
  msg::AllocateProducerIdsRequest request{1, image->broker(1)->epoch, {}};
  auto first = allocate_producer_ids(*image, request, s);
  EXPECT_EQ(first.response.error_code, 0);
  EXPECT_EQ(first.response.producer_id_start, 0);
  EXPECT_EQ(first.response.producer_id_len, 1000);
  ImagePtr after = apply_all(image, first.records);
  EXPECT_EQ(after->producer_ids().next_producer_id, 1000);
  EXPECT_EQ(after->producer_ids().broker_id, 1);
  msg::AllocateProducerIdsRequest other{2, after->broker(2)->epoch, {}};
  auto second = allocate_producer_ids(*after, other, s);
  EXPECT_EQ(second.response.producer_id_start, 1000);
  EXPECT_EQ(apply_all(after, second.records)->producer_ids().next_producer_id, 2000);

  request.broker_epoch -= 1;
  auto stale = allocate_producer_ids(*image, request, s);
  EXPECT_EQ(stale.response.error_code, 77);
  EXPECT_TRUE(stale.records.empty());
  auto unknown = allocate_producer_ids(*image, {9, 1, {}}, s);
  EXPECT_EQ(unknown.response.error_code, 102);
  EXPECT_TRUE(unknown.records.empty());
}

TEST(Controller, BootstrapWritesMetadataVersionOnce) {
  auto records = bootstrap_records(*MetadataImage::empty());
  ASSERT_EQ(records.size(), 1u);
  ImagePtr image = apply_all(MetadataImage::empty(), records);
  EXPECT_EQ(image->metadata_version(), kMetadataVersion);
  EXPECT_TRUE(bootstrap_records(*image).empty());
}

// ---- AlterPartition ---------------------------------------------------------------------------------------

// An ISR change of orders-`index` from `broker` at the partition's current epochs (v0-2 NewIsr; v3
// NewIsrWithEpochs without epochs; topic by name below v2, by id from v2).
msg::AlterPartitionRequest alter_request(const MetadataImage& image, std::int32_t broker, std::int32_t index,
                                         std::vector<std::int32_t> isr, std::int16_t version = 1) {
  const TopicImage* orders = image.topic("orders");
  const PartitionState* p = orders->partition(index);
  msg::AlterPartitionRequest::PartitionData data;
  data.partition_index = index;
  data.leader_epoch = p->leader_epoch;
  data.partition_epoch = p->partition_epoch;
  data.leader_recovery_state = p->leader_recovery_state;
  if (version >= 3) {
    for (std::int32_t id : isr) data.new_isr_with_epochs.push_back({id, -1, {}});
  } else {
    data.new_isr = std::move(isr);
  }
  msg::AlterPartitionRequest::TopicData topic;
  if (version >= 2) {
    topic.topic_id = orders->id;
  } else {
    topic.topic_name = "orders";
  }
  topic.partitions.push_back(std::move(data));
  msg::AlterPartitionRequest request;
  request.broker_id = broker;
  request.broker_epoch = image.broker(broker)->epoch;
  request.topics.push_back(std::move(topic));
  return request;
}

msg::AlterPartitionRequest::PartitionData& only_partition(msg::AlterPartitionRequest& request) {
  return request.topics.at(0).partitions.at(0);
}

// The single partition answer of a single-topic request.
const msg::AlterPartitionResponse::PartitionData& only_answer(const Decision<msg::AlterPartitionResponse>& d) {
  EXPECT_EQ(d.response.topics.size(), 1u);
  EXPECT_EQ(d.response.topics.at(0).partitions.size(), 1u);
  return d.response.topics.at(0).partitions.at(0);
}

std::int16_t alter_error(const MetadataImage& image, const msg::AlterPartitionRequest& request,
                         std::int16_t version = 1) {
  auto d = alter_partition(image, request, version);
  EXPECT_TRUE(d.records.empty());
  return only_answer(d).error_code;
}

TEST(Controller, AlterPartitionShrinkAccepted) {
  ImagePtr image = led_partitions();  // orders-0: replicas and ISR [1,2,3], leader 1, epochs 3 / 5
  auto d = alter_partition(*image, alter_request(*image, 1, 0, {1, 2}), 1);
  EXPECT_EQ(d.response.error_code, 0);
  ASSERT_EQ(d.records.size(), 1u);
  const auto& change = std::get<rec::PartitionChangeRecord>(d.records[0].record);
  EXPECT_EQ(change.topic_id, image->topic("orders")->id);
  EXPECT_EQ(change.partition_id, 0);
  EXPECT_EQ(change.isr, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(change.leader, kNoLeaderChange);
  EXPECT_EQ(change.leader_recovery_state, -1);
  ASSERT_EQ(d.response.topics.size(), 1u);
  EXPECT_EQ(d.response.topics[0].topic_name, "orders");
  const auto& answer = only_answer(d);
  EXPECT_EQ(answer.error_code, 0);
  EXPECT_EQ(answer.partition_index, 0);
  EXPECT_EQ(answer.leader_id, 1);
  EXPECT_EQ(answer.leader_epoch, 3);
  EXPECT_EQ(answer.isr, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(answer.leader_recovery_state, 0);
  EXPECT_EQ(answer.partition_epoch, 6);
  // The answer is the state the record produces.
  ImagePtr applied = apply_all(image, d.records);
  const PartitionState* after = applied->partition("orders", 0);
  EXPECT_EQ(after->isr, answer.isr);
  EXPECT_EQ(after->leader, answer.leader_id);
  EXPECT_EQ(after->leader_epoch, answer.leader_epoch);
  EXPECT_EQ(after->partition_epoch, answer.partition_epoch);
}

TEST(Controller, AlterPartitionExpandAccepted) {
  ImagePtr base = led_partitions();
  ImagePtr shrunk = apply_all(base, alter_partition(*base, alter_request(*base, 1, 0, {1, 2}), 1).records);
  auto d = alter_partition(*shrunk, alter_request(*shrunk, 1, 0, {1, 2, 3}), 1);
  ASSERT_EQ(d.records.size(), 1u);
  EXPECT_EQ(only_answer(d).error_code, 0);
  EXPECT_EQ(only_answer(d).isr, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(only_answer(d).partition_epoch, 7);
  ImagePtr expanded = apply_all(shrunk, d.records);
  const PartitionState* after = expanded->partition("orders", 0);
  EXPECT_EQ(after->isr, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(after->partition_epoch, 7);
  EXPECT_EQ(after->leader_epoch, 3);
}

TEST(Controller, AlterPartitionStaleOrUnknownBrokerEpoch) {
  ImagePtr image = led_partitions();
  auto stale = alter_request(*image, 1, 0, {1, 2});
  stale.broker_epoch -= 1;
  auto d = alter_partition(*image, stale, 1);
  EXPECT_EQ(d.response.error_code, 77);  // for the whole response
  EXPECT_TRUE(d.response.topics.empty());
  EXPECT_TRUE(d.records.empty());
  auto unknown = alter_request(*image, 1, 0, {1, 2});
  unknown.broker_id = 42;
  EXPECT_EQ(alter_partition(*image, unknown, 1).response.error_code, 77);  // Kafka's checkBrokerEpoch
}

TEST(Controller, AlterPartitionFromAFollowerIsInvalid) {
  ImagePtr image = led_partitions();
  EXPECT_EQ(alter_error(*image, alter_request(*image, 2, 0, {1, 2})), 42);  // Kafka: INVALID_REQUEST
}

TEST(Controller, AlterPartitionLeaderEpochMismatch) {
  ImagePtr image = led_partitions();
  auto older = alter_request(*image, 1, 0, {1, 2});
  only_partition(older).leader_epoch = 2;
  EXPECT_EQ(alter_error(*image, older), 74);
  auto newer = alter_request(*image, 1, 0, {1, 2});
  only_partition(newer).leader_epoch = 4;
  EXPECT_EQ(alter_error(*image, newer), 41);  // this controller is behind
}

TEST(Controller, AlterPartitionPartitionEpochMismatch) {
  ImagePtr image = led_partitions();
  auto older = alter_request(*image, 1, 0, {1, 2});
  only_partition(older).partition_epoch = 4;
  EXPECT_EQ(alter_error(*image, older), 82);
  auto newer = alter_request(*image, 1, 0, {1, 2});
  only_partition(newer).partition_epoch = 6;
  EXPECT_EQ(alter_error(*image, newer), 41);
}

TEST(Controller, AlterPartitionRefusesIneligibleIsrMembers) {
  ImagePtr base = led_partitions();
  ImagePtr image = apply_all(base, fence_broker(*base, 3));  // orders-0's ISR is now [1,2]
  ASSERT_EQ(image->partition("orders", 0)->isr, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {1, 2, 3}, 2), 2), 107);
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {1, 2, 3}, 1), 1), 55);  // below v2
  // A broker in controlled shutdown cannot join either.
  rec::BrokerRegistrationChangeRecord shutdown;
  shutdown.broker_id = 2;
  shutdown.broker_epoch = image->broker(2)->epoch;
  shutdown.in_controlled_shutdown = 1;
  ImagePtr shrunk = apply_all(image, alter_partition(*image, alter_request(*image, 1, 0, {1}), 1).records);
  ImagePtr shutting = apply_all(shrunk, {make_record(shutdown)});
  EXPECT_EQ(alter_error(*shutting, alter_request(*shutting, 1, 0, {1, 2}, 2), 2), 107);
}

TEST(Controller, AlterPartitionRefusesIsrOutsideTheReplicas) {
  ImagePtr image = apply_all(cluster_of(4), {topic("orders", uuid(1)), partition(uuid(1), 0, {1, 2, 3}, {1, 2, 3}, 1)});
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {1, 2, 4})), 42);  // 4 is not a replica
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {1, 1})), 42);     // twice
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {1, -1})), 42);
}

TEST(Controller, AlterPartitionRefusesIsrWithoutTheLeader) {
  ImagePtr image = led_partitions();
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {2, 3})), 42);
  EXPECT_EQ(alter_error(*image, alter_request(*image, 1, 0, {})), 42);
}

TEST(Controller, AlterPartitionLeaderRecoveryState) {
  ImagePtr image = led_partitions();
  auto recovering = alter_request(*image, 1, 0, {1});
  only_partition(recovering).leader_recovery_state = 1;  // RECOVERED cannot go back to RECOVERING
  EXPECT_EQ(alter_error(*image, recovering), 42);
  auto unknown = alter_request(*image, 1, 0, {1});
  only_partition(unknown).leader_recovery_state = 2;
  EXPECT_EQ(alter_error(*image, unknown), 42);
  // A leader elected uncleanly reports recovery: the record carries the recovered state.
  rec::PartitionChangeRecord unclean;
  unclean.topic_id = uuid(1);
  unclean.partition_id = 2;
  unclean.leader_recovery_state = 1;
  ImagePtr after_unclean = apply_all(image, {make_record(unclean)});
  auto recovered = alter_request(*after_unclean, 1, 2, {1});
  only_partition(recovered).leader_recovery_state = 0;
  auto d = alter_partition(*after_unclean, recovered, 1);
  ASSERT_EQ(d.records.size(), 1u);
  const auto& change = std::get<rec::PartitionChangeRecord>(d.records[0].record);
  EXPECT_FALSE(change.isr.has_value());
  EXPECT_EQ(change.leader_recovery_state, 0);
  EXPECT_EQ(apply_all(after_unclean, d.records)->partition("orders", 2)->leader_recovery_state, 0);
}

TEST(Controller, AlterPartitionUnchangedIsrWritesNothing) {
  ImagePtr image = led_partitions();
  auto d = alter_partition(*image, alter_request(*image, 1, 0, {1, 2, 3}), 1);
  EXPECT_TRUE(d.records.empty());
  const auto& answer = only_answer(d);
  EXPECT_EQ(answer.error_code, 0);
  EXPECT_EQ(answer.isr, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(answer.leader_id, 1);
  EXPECT_EQ(answer.leader_epoch, 3);
  EXPECT_EQ(answer.partition_epoch, 5);
}

TEST(Controller, AlterPartitionUnknownTopicOrPartition) {
  ImagePtr image = led_partitions();
  auto by_name = alter_request(*image, 1, 0, {1, 2});
  by_name.topics[0].topic_name = "nope";
  EXPECT_EQ(alter_error(*image, by_name), 3);
  auto missing_partition = alter_request(*image, 1, 0, {1, 2});
  only_partition(missing_partition).partition_index = 9;
  EXPECT_EQ(alter_error(*image, missing_partition), 3);
  auto by_id = alter_request(*image, 1, 0, {1, 2}, 2);
  by_id.topics[0].topic_id = uuid(77);
  EXPECT_EQ(alter_error(*image, by_id, 2), 100);
}

TEST(Controller, AlterPartitionV2ByTopicId) {
  ImagePtr image = led_partitions();
  auto request = alter_request(*image, 1, 0, {1, 3}, 2);
  ASSERT_TRUE(request.topics[0].topic_name.empty());
  auto d = alter_partition(*image, request, 2);
  ASSERT_EQ(d.records.size(), 1u);
  ASSERT_EQ(d.response.topics.size(), 1u);
  EXPECT_EQ(d.response.topics[0].topic_id, image->topic("orders")->id);
  EXPECT_EQ(only_answer(d).error_code, 0);
  EXPECT_EQ(only_answer(d).isr, (std::vector<std::int32_t>{1, 3}));
  EXPECT_EQ(apply_all(image, d.records)->partition("orders", 0)->isr, (std::vector<std::int32_t>{1, 3}));
}

TEST(Controller, AlterPartitionV3ChecksEachMembersBrokerEpoch) {
  ImagePtr base = led_partitions();
  ImagePtr image = apply_all(base, alter_partition(*base, alter_request(*base, 1, 0, {1}), 1).records);
  auto request = alter_request(*image, 1, 0, {}, 3);
  only_partition(request).new_isr = {1, 2};  // v0-2's field: ignored in v3
  only_partition(request).new_isr_with_epochs = {{1, image->broker(1)->epoch, {}}, {2, 999, {}}};
  EXPECT_EQ(alter_error(*image, request, 3), 107);
  only_partition(request).new_isr_with_epochs[1].broker_epoch = image->broker(2)->epoch;
  auto d = alter_partition(*image, request, 3);
  EXPECT_EQ(only_answer(d).error_code, 0);
  EXPECT_EQ(only_answer(d).isr, (std::vector<std::int32_t>{1, 2}));
  ASSERT_EQ(d.records.size(), 1u);
  only_partition(request).new_isr_with_epochs[1].broker_epoch = -1;  // no epoch: not checked
  EXPECT_EQ(only_answer(alter_partition(*image, request, 3)).error_code, 0);
}


// ---- ElectLeaders and the automatic rebalance ---------------------------------------------------

// t-0 [1,2,3] led by 2 (not its preferred 1, which is in the ISR); t-1 [2,1] led by its preferred 2;
// t-2 [3,1] led by 1 with ISR [1] (preferred 3 out of the ISR); t-3 [4,2] with ISR [4] and no leader,
// broker 4 fenced (only an unclean election helps).
ImagePtr election_cluster() {
  const Uuid t = uuid(7);
  return apply_ok(cluster_of(3), {broker_in_rack(4, 104, "r", /*fenced=*/true), topic("t", t),
                                  partition(t, 0, {1, 2, 3}, {1, 2, 3}, 2, 4, 6), partition(t, 1, {2, 1}, {2, 1}, 2),
                                  partition(t, 2, {3, 1}, {1}, 1), partition(t, 3, {4, 2}, {4}, kNoLeader)});
}

msg::ElectLeadersRequest election(std::int8_t type, std::optional<std::vector<std::int32_t>> partitions) {
  msg::ElectLeadersRequest request;
  request.election_type = type;
  if (!partitions) {
    request.topic_partitions = std::nullopt;
  } else {
    request.topic_partitions = std::vector<msg::ElectLeadersRequest::TopicPartitions>{{"t", *partitions, {}}};
  }
  return request;
}

std::map<std::int32_t, std::int16_t> election_errors(const msg::ElectLeadersResponse& response) {
  std::map<std::int32_t, std::int16_t> out;
  for (const auto& topic : response.replica_election_results)
    for (const auto& p : topic.partition_result) out[p.partition_id] = p.error_code;
  return out;
}

TEST(Controller, PreferredElectionMovesLeadershipBackWhereItCan) {
  ImagePtr image = election_cluster();
  auto decision = elect_leaders_request(*image, election(0, std::vector<std::int32_t>{0, 1, 2, 9}));
  EXPECT_EQ(election_errors(decision.response),
            (std::map<std::int32_t, std::int16_t>{{0, 0}, {1, 84}, {2, 80}, {9, 3}}));
  ASSERT_EQ(decision.records.size(), 1u);
  ImagePtr after = apply_all(image, decision.records);
  EXPECT_EQ(after->partition("t", 0)->leader, 1);
  EXPECT_EQ(after->partition("t", 0)->leader_epoch, 5);  // a leader change bumps the epoch
  EXPECT_EQ(after->partition("t", 0)->isr, (std::vector<std::int32_t>{1, 2, 3}));
  // Every partition (a null list): only the elected ones are reported; nothing is left to elect after.
  auto all = elect_leaders_request(*image, election(0, std::nullopt));
  EXPECT_EQ(election_errors(all.response), (std::map<std::int32_t, std::int16_t>{{0, 0}}));
  EXPECT_TRUE(elect_leaders_request(*after, election(0, std::nullopt)).records.empty());
  // An unknown topic, and an unknown election type.
  auto request = election(0, std::vector<std::int32_t>{0});
  request.topic_partitions->front().topic = "nope";
  EXPECT_EQ(election_errors(elect_leaders_request(*image, request).response).at(0), 3);
  EXPECT_EQ(elect_leaders_request(*image, election(7, std::nullopt)).response.error_code, 42);
}

TEST(Controller, UncleanElectionTakesAnyLiveReplicaOnlyWhenAsked) {
  ImagePtr image = election_cluster();
  EXPECT_TRUE(elect_leaders(*image).empty()) << "no clean election is possible for t-3";
  auto decision = elect_leaders_request(*image, election(1, std::vector<std::int32_t>{0, 3}));
  EXPECT_EQ(election_errors(decision.response), (std::map<std::int32_t, std::int16_t>{{0, 84}, {3, 0}}));
  ImagePtr after = apply_all(image, decision.records);
  EXPECT_EQ(after->partition("t", 3)->leader, 2);
  EXPECT_EQ(after->partition("t", 3)->isr, (std::vector<std::int32_t>{2}));
  // With no live replica at all there is nothing to elect.
  ImagePtr dead = apply_all(image, fence_broker(*image, 2));
  EXPECT_EQ(election_errors(elect_leaders_request(*dead, election(1, std::vector<std::int32_t>{3})).response).at(3), 83);
}

TEST(Controller, RebalanceElectsPreferredLeadersAboveTheImbalanceThreshold) {
  ImagePtr image = election_cluster();
  // Broker 1 prefers t-0 only and leads none of it: 100 % imbalance.
  auto records = rebalance_leaders(*image, 10);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(apply_all(image, records)->partition("t", 0)->leader, 1);
  EXPECT_TRUE(rebalance_leaders(*image, 100).empty()) << "at 100 % nothing is ever imbalanced enough";
  EXPECT_TRUE(rebalance_leaders(*apply_all(image, records), 10).empty());
}

// ---- Reassignments ----------------------------------------------------------------------------------------

msg::AlterPartitionReassignmentsRequest reassign(std::int32_t index, std::optional<std::vector<std::int32_t>> target) {
  msg::AlterPartitionReassignmentsRequest request;
  auto& topic = request.topics.emplace_back();
  topic.name = "orders";
  topic.partitions.push_back({index, std::move(target), {}});
  return request;
}

const msg::AlterPartitionReassignmentsResponse::ReassignablePartitionResponse& reassign_answer(
    const Decision<msg::AlterPartitionReassignmentsResponse>& d) {
  return d.response.responses.at(0).partitions.at(0);
}

std::vector<std::int32_t> ids(std::initializer_list<std::int32_t> list) { return list; }

TEST(Controller, ReassignmentAddsReplicasThenCompletesWhenTheyAreInSync) {
  ImagePtr image = led_partitions();  // orders-2: replicas and ISR [1], led by 1
  auto started = alter_partition_reassignments(*image, reassign(2, ids({2, 3})));
  EXPECT_EQ(reassign_answer(started).error_code, 0);
  ASSERT_EQ(started.records.size(), 1u);
  image = apply_all(image, started.records);
  const PartitionState* p = image->partition("orders", 2);
  EXPECT_EQ(p->replicas, ids({2, 3, 1}));  // the target, then what leaves
  EXPECT_EQ(p->adding_replicas, ids({2, 3}));
  EXPECT_EQ(p->removing_replicas, ids({1}));
  EXPECT_EQ(p->isr, ids({1}));
  EXPECT_EQ(p->leader, 1);
  auto listed = list_partition_reassignments(*image, {});
  ASSERT_EQ(listed.topics.size(), 1u);
  EXPECT_EQ(listed.topics[0].partitions.at(0).partition_index, 2);
  EXPECT_EQ(listed.topics[0].partitions.at(0).adding_replicas, ids({2, 3}));

  // One new replica in sync is not enough.
  auto half = alter_partition(*image, alter_request(*image, 1, 2, {1, 2}), 1);
  image = apply_all(image, half.records);
  EXPECT_EQ(image->partition("orders", 2)->adding_replicas, ids({2, 3}));
  // Both in sync: the target is the replica set, the leaving leader hands over, its epoch moves on.
  const auto epoch = image->partition("orders", 2)->leader_epoch;
  auto done = alter_partition(*image, alter_request(*image, 1, 2, {1, 2, 3}), 1);
  EXPECT_EQ(only_answer(done).leader_id, 2);
  EXPECT_EQ(only_answer(done).isr, ids({2, 3}));
  image = apply_all(image, done.records);
  p = image->partition("orders", 2);
  EXPECT_EQ(p->replicas, ids({2, 3}));
  EXPECT_EQ(p->isr, ids({2, 3}));
  EXPECT_TRUE(p->adding_replicas.empty() && p->removing_replicas.empty());
  EXPECT_EQ(p->leader, 2);
  EXPECT_EQ(p->leader_epoch, epoch + 1);
  EXPECT_EQ(only_answer(done).leader_epoch, p->leader_epoch);
  EXPECT_TRUE(list_partition_reassignments(*image, {}).topics.empty());
}

TEST(Controller, ReassignmentThatAddsNothingCompletesAtOnce) {
  ImagePtr image = led_partitions();  // orders-0: [1,2,3] led by 1
  auto d = alter_partition_reassignments(*image, reassign(0, ids({2, 3})));
  EXPECT_EQ(reassign_answer(d).error_code, 0);
  image = apply_all(image, d.records);
  const PartitionState* p = image->partition("orders", 0);
  EXPECT_EQ(p->replicas, ids({2, 3}));
  EXPECT_EQ(p->isr, ids({2, 3}));
  EXPECT_EQ(p->leader, 2);  // 1 left: the first target replica in sync leads
  EXPECT_TRUE(p->adding_replicas.empty() && p->removing_replicas.empty());
  // The same target again changes nothing.
  EXPECT_TRUE(alter_partition_reassignments(*image, reassign(0, ids({2, 3}))).records.empty());
}

TEST(Controller, ReassignmentCancelGoesBackToTheReplicasBefore) {
  ImagePtr image = led_partitions();
  image = apply_all(image, alter_partition_reassignments(*image, reassign(2, ids({2, 3}))).records);
  image = apply_all(image, alter_partition(*image, alter_request(*image, 1, 2, {1, 2}), 1).records);
  auto cancel = alter_partition_reassignments(*image, reassign(2, std::nullopt));
  EXPECT_EQ(reassign_answer(cancel).error_code, 0);
  image = apply_all(image, cancel.records);
  const PartitionState* p = image->partition("orders", 2);
  EXPECT_EQ(p->replicas, ids({1}));
  EXPECT_EQ(p->isr, ids({1}));  // the replica the cancelled reassignment added leaves the ISR
  EXPECT_TRUE(p->adding_replicas.empty() && p->removing_replicas.empty());
  EXPECT_EQ(reassign_answer(alter_partition_reassignments(*image, reassign(2, std::nullopt))).error_code, 85);
}

TEST(Controller, ReassignmentRefusals) {
  ImagePtr image = led_partitions();
  for (auto target : {ids({}), ids({2, 2}), ids({2, 9})}) {
    auto d = alter_partition_reassignments(*image, reassign(0, target));
    EXPECT_EQ(reassign_answer(d).error_code, 39);  // INVALID_REPLICA_ASSIGNMENT
    EXPECT_TRUE(d.records.empty());
  }
  EXPECT_EQ(reassign_answer(alter_partition_reassignments(*image, reassign(7, ids({1})))).error_code, 3);
}

}  // namespace
}  // namespace bulwark::cluster
