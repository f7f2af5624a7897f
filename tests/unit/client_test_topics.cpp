// kafka-topics.sh's option rules and printed forms: action checks, --config and --replica-assignment
// parsing, topic selection by name or regex, --list and --describe output, errors in plain words.
#include <gtest/gtest.h>

#include "client/topics.h"

namespace bulwark::client {
namespace {

TopicOptions with(TopicAction action) {
  TopicOptions o;
  o.actions = {action};
  return o;
}

void expect_usage(const TopicOptions& o, std::string_view words) {
  auto checked = check_topic_options(o);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().kind, ErrorKind::invalid_argument);
  EXPECT_NE(checked.error().message.find(words), std::string::npos) << checked.error().message;
}

TEST(TopicOptions, ExactlyOneAction) {
  expect_usage(TopicOptions{}, "exactly one action");
  auto two = with(TopicAction::list);
  two.actions.push_back(TopicAction::describe);
  expect_usage(two, "exactly one action");
  auto list = check_topic_options(with(TopicAction::list));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, TopicAction::list);
}

TEST(TopicOptions, CreateAlterAndDeleteNeedATopic) {
  expect_usage(with(TopicAction::create), "--create needs --topic");
  expect_usage(with(TopicAction::remove), "--delete needs --topic");
  auto alter = with(TopicAction::alter);
  alter.partitions = 3;
  expect_usage(alter, "--alter needs --topic");
  alter.topic = "orders";
  EXPECT_TRUE(check_topic_options(alter).ok());
  alter.partitions.reset();
  expect_usage(alter, "--alter needs --partitions");
}

TEST(TopicOptions, OptionsGoWithTheirActions) {
  auto o = with(TopicAction::list);
  o.partitions = 3;
  expect_usage(o, "--partitions goes with --create or --alter, not --list");
  o = with(TopicAction::describe);
  o.if_not_exists = true;
  expect_usage(o, "--if-not-exists goes with --create");
  o = with(TopicAction::create);
  o.topic = "t";
  o.under_replicated = true;
  expect_usage(o, "--under-replicated-partitions goes with --describe");
  o = with(TopicAction::alter);
  o.topic = "t";
  o.partitions = 4;
  o.configs = {"retention.ms=1"};
  expect_usage(o, "bulwark configs --alter");
  o.configs.clear();
  o.replication_factor = 3;
  expect_usage(o, "--replication-factor goes with --create");
}

TEST(TopicOptions, CountsAndNamesAreChecked) {
  auto o = with(TopicAction::create);
  o.topic = "orders";
  o.partitions = 0;
  expect_usage(o, "--partitions must be at least 1");
  o.partitions = 3;
  o.replication_factor = 40000;
  expect_usage(o, "--replication-factor must be between 1 and 32767");
  o.replication_factor.reset();
  o.replica_assignment = "1:2";
  expect_usage(o, "drop --partitions");
  o.replica_assignment.reset();
  o.topic = "bad/name";
  expect_usage(o, "only ASCII letters");
}

TEST(TopicNames, KafkasRules) {
  EXPECT_TRUE(validate_topic_name("orders.eu-1_x").ok());
  EXPECT_FALSE(validate_topic_name("").ok());
  EXPECT_FALSE(validate_topic_name(".").ok());
  EXPECT_FALSE(validate_topic_name("..").ok());
  EXPECT_FALSE(validate_topic_name(std::string(250, 'a')).ok());
  EXPECT_TRUE(validate_topic_name(std::string(249, 'a')).ok());
  EXPECT_FALSE(validate_topic_name("a b").ok());
}

TEST(TopicConfigs, KeyValuePairsTrimmed) {
  auto configs = parse_topic_configs({"retention.ms = 1000", "cleanup.policy=compact", "empty="});
  ASSERT_TRUE(configs.ok()) << configs.error().message;
  EXPECT_EQ(*configs, (ConfigPairs{{"retention.ms", "1000"}, {"cleanup.policy", "compact"}, {"empty", ""}}));
  EXPECT_FALSE(parse_topic_configs({"novalue"}).ok());
  EXPECT_FALSE(parse_topic_configs({"a=b=c"}).ok());
  EXPECT_FALSE(parse_topic_configs({"=b"}).ok());
}

TEST(ReplicaAssignment, PartitionsAndBrokers) {
  auto parsed = parse_replica_assignment("1:2:3, 2:3:1,3:1:2");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, (std::vector<std::vector<std::int32_t>>{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}));
  auto duplicate = parse_replica_assignment("1:1");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.error().message.find("lists broker 1 twice"), std::string::npos);
  auto uneven = parse_replica_assignment("1:2,3");
  ASSERT_FALSE(uneven.ok());
  EXPECT_NE(uneven.error().message.find("partition 1 has replication factor 1"), std::string::npos);
  EXPECT_FALSE(parse_replica_assignment("1:x").ok());
  EXPECT_FALSE(parse_replica_assignment("").ok());
}

std::vector<TopicInfo> sample_topics() {
  return {{"orders", {}, false, {}, {}},
          {"__consumer_offsets", {}, true, {}, {}},
          {"orders.eu", {}, false, {}, {}},
          {"payments", {}, false, {}, {}}};
}

std::vector<std::string> names(const std::vector<TopicInfo>& topics) {
  std::vector<std::string> out;
  for (const auto& t : topics) out.push_back(t.name);
  return out;
}

TEST(SelectTopics, AllSortedOrExcludingInternal) {
  auto all = select_topics(sample_topics(), std::nullopt, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(names(*all), (std::vector<std::string>{"__consumer_offsets", "orders", "orders.eu", "payments"}));
  auto external = select_topics(sample_topics(), std::nullopt, true);
  ASSERT_TRUE(external.ok());
  EXPECT_EQ(names(*external), (std::vector<std::string>{"orders", "orders.eu", "payments"}));
}

TEST(SelectTopics, NameOrWholeNameRegex) {
  auto exact = select_topics(sample_topics(), std::string("orders"), false);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(names(*exact), (std::vector<std::string>{"orders"}));
  auto regex = select_topics(sample_topics(), std::string("orders.*"), false);
  ASSERT_TRUE(regex.ok());
  EXPECT_EQ(names(*regex), (std::vector<std::string>{"orders", "orders.eu"}));
  auto none = select_topics(sample_topics(), std::string("nope"), false);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto bad = select_topics(sample_topics(), std::string("orders["), false);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::invalid_argument);
}

TEST(RenderTopics, ListIsOneNamePerLine) {
  EXPECT_EQ(render_topic_list(sample_topics()), "orders\n__consumer_offsets\norders.eu\npayments\n");
  EXPECT_EQ(render_topic_list({}), "");
}

TopicInfo described() {
  TopicInfo t;
  t.name = "orders";
  t.id = wire::Uuid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  t.partitions = {{0, 1, {1, 2, 3}, {1, 2, 3}}, {1, 2, {2, 3, 1}, {2}}, {2, -1, {3, 1, 2}, {}}};
  t.overrides = {{"cleanup.policy", "compact"}, {"retention.ms", "1000"}};
  return t;
}

TEST(RenderTopics, DescribeInKafkasForm) {
  const std::string out = render_topic_description(described(), {}, {1, 2, 3});
  EXPECT_EQ(out,
            "Topic: orders\tTopicId: AQIDBAUGBwgJCgsMDQ4PEA\tPartitionCount: 3\tReplicationFactor: 3\t"
            "Configs: cleanup.policy=compact,retention.ms=1000\n"
            "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3\n"
            "\tTopic: orders\tPartition: 1\tLeader: 2\tReplicas: 2,3,1\tIsr: 2\n"
            "\tTopic: orders\tPartition: 2\tLeader: none\tReplicas: 3,1,2\tIsr: \n");
}

TEST(RenderTopics, NoTopicIdWhenZeroAndEmptyConfigs) {
  TopicInfo t;
  t.name = "t";
  t.partitions = {{0, 1, {1}, {1}}};
  EXPECT_EQ(render_topic_description(t, {}, {1}),
            "Topic: t\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: \n"
            "\tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n");
}

TEST(RenderTopics, ReportingFiltersPrintOnlyMatchingPartitions) {
  DescribeFilter under;
  under.under_replicated = true;
  EXPECT_EQ(render_topic_description(described(), under, {1, 2, 3}),
            "\tTopic: orders\tPartition: 1\tLeader: 2\tReplicas: 2,3,1\tIsr: 2\n"
            "\tTopic: orders\tPartition: 2\tLeader: none\tReplicas: 3,1,2\tIsr: \n");
  DescribeFilter unavailable;
  unavailable.unavailable = true;
  // Broker 2 is not alive: partition 1's leader is gone too.
  EXPECT_EQ(render_topic_description(described(), unavailable, {1, 3}),
            "\tTopic: orders\tPartition: 1\tLeader: 2\tReplicas: 2,3,1\tIsr: 2\n"
            "\tTopic: orders\tPartition: 2\tLeader: none\tReplicas: 3,1,2\tIsr: \n");
  DescribeFilter overrides;
  overrides.with_overrides = true;
  const std::string only_topic = render_topic_description(described(), overrides, {1, 2, 3});
  EXPECT_EQ(only_topic.find("Partition:"), std::string::npos);
  EXPECT_NE(only_topic.find("Configs: cleanup.policy=compact"), std::string::npos);
  TopicInfo plain = described();
  plain.overrides.clear();
  EXPECT_EQ(render_topic_description(plain, overrides, {1, 2, 3}), "");
}

TEST(AdminErrors, PlainWordsWithTheCodeAndTheBrokersMessage) {
  EXPECT_EQ(
      explain_admin_error(36, std::string("Topic 'orders' already exists."), "create topic 'orders'", "ANONYMOUS"),
      "could not create topic 'orders': the topic already exists (TOPIC_ALREADY_EXISTS): Topic 'orders' already "
      "exists.");
  EXPECT_EQ(explain_admin_error(3, std::nullopt, "delete topic 'x'", "ANONYMOUS"),
            "could not delete topic 'x': the topic does not exist (UNKNOWN_TOPIC_OR_PARTITION)");
  const auto denied = explain_admin_error(29, std::string("Authorization failed."), "create topic 'x'",
                                          "the principal of certificate `CN=client-1`");
  EXPECT_EQ(denied, "the broker says the principal of certificate `CN=client-1` may not create topic 'x' "
                    "(TOPIC_AUTHORIZATION_FAILED): Authorization failed.");
  EXPECT_EQ(admin_error({29, std::nullopt}, "x", "y").kind, ErrorKind::unauthenticated);
  const auto invalid = explain_admin_error(40, std::string("Invalid value abc for configuration retention.ms"),
                                           "create topic 't'", "ANONYMOUS");
  EXPECT_NE(invalid.find("(INVALID_CONFIG): Invalid value abc for configuration retention.ms"), std::string::npos);
  EXPECT_EQ(admin_error({40, std::nullopt}, "x", "y").kind, ErrorKind::io);
}

}  // namespace
}  // namespace bulwark::client
