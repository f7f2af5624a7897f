// kafka-consumer-groups.sh's rules: option parsing, new offsets for --reset-offsets, the offsets
// view's rows, the printed tables and the errors in plain words.
#include <gtest/gtest.h>

#include "client/groups_admin.h"

namespace bulwark::client {
namespace {

using K = ResetSpec::Kind;

TEST(GroupsParse, TopicArgs) {
  auto all = parse_topic_arg("orders");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->topic, "orders");
  EXPECT_TRUE(all->partitions.empty());
  auto some = parse_topic_arg("orders:0,2,5");
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->topic, "orders");
  EXPECT_EQ(some->partitions, (std::vector<std::int32_t>{0, 2, 5}));
  for (const char* bad : {"", "orders:", ":1", "orders:1,x", "orders:1:2", "orders:-1", "orders:1,"}) {
    auto r = parse_topic_arg(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
    }
  }
}

TEST(GroupsParse, DatetimeIsUtcWithoutAZone) {
  EXPECT_EQ(*parse_datetime("1970-01-01T00:00:00.000"), 0);
  EXPECT_EQ(*parse_datetime("1970-01-01T00:00:01"), 1000);
  EXPECT_EQ(*parse_datetime("2024-02-29T12:34:56.789Z"), 1709210096789);
  EXPECT_EQ(*parse_datetime("2024-02-29T14:34:56.789+02:00"), 1709210096789);
  EXPECT_EQ(*parse_datetime("2024-02-29T07:04:56.789-0530"), 1709210096789);
  EXPECT_EQ(*parse_datetime("2024-02-29T13:34:56.789+01"), 1709210096789);
  EXPECT_EQ(*parse_datetime("2024-02-29T12:34:56.7Z"), 1709210096700);
  for (const char* bad : {"2024-02-29", "2024-02-29 12:34:56", "2024-13-01T00:00:00", "2024-02-29T25:00:00",
                          "2024-02-29T12:34:56.", "2024-02-29T12:34:56+2", "yesterday"})
    EXPECT_FALSE(parse_datetime(bad).ok()) << bad;
}

TEST(GroupsParse, Durations) {
  EXPECT_EQ(*parse_duration("PT30M"), 30 * 60'000);
  EXPECT_EQ(*parse_duration("P1DT2H"), 86'400'000 + 2 * 3'600'000);
  EXPECT_EQ(*parse_duration("pt0.5s"), 500);
  EXPECT_EQ(*parse_duration("P2D"), 2 * 86'400'000);
  EXPECT_EQ(*parse_duration("PT1H1M1.25S"), 3'600'000 + 60'000 + 1250);
  for (const char* bad : {"", "P", "PT", "30M", "P1H", "PT1D", "P1DT", "PT1.5M", "PT-1S", "P1W"})
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
}

TEST(GroupsParse, StatesAnyCaseToKafkaNames) {
  auto states = parse_group_states("stable, EMPTY,Stable");
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(*states, (std::vector<std::string>{"Stable", "Empty"}));
  auto bad = parse_group_states("Stable,Sleeping");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("Sleeping"), std::string::npos);
}

TEST(GroupsReset, KafkaRules) {
  const TopicPartition tp{"orders", 0};
  const PartitionOffsets o{5, 2, 10, std::nullopt};
  EXPECT_EQ(*new_offset({K::earliest, 0}, tp, o), 2);
  EXPECT_EQ(*new_offset({K::latest, 0}, tp, o), 10);
  EXPECT_EQ(*new_offset({K::current, 0}, tp, o), 5);
  EXPECT_EQ(*new_offset({K::to_offset, 7}, tp, o), 7);
  EXPECT_EQ(*new_offset({K::to_offset, 99}, tp, o), 10);  // clamped to the log end
  EXPECT_EQ(*new_offset({K::to_offset, 0}, tp, o), 2);    // and to the log start
  EXPECT_EQ(*new_offset({K::shift_by, -2}, tp, o), 3);
  EXPECT_EQ(*new_offset({K::shift_by, -20}, tp, o), 2);
  EXPECT_EQ(*new_offset({K::shift_by, 3}, tp, o), 8);
  EXPECT_EQ(*new_offset({K::shift_by, 30}, tp, o), 10);
}

TEST(GroupsReset, ShiftNeedsACommittedOffsetAndCurrentFallsBackToTheEnd) {
  const TopicPartition tp{"orders", 3};
  const PartitionOffsets none{std::nullopt, 0, 10, std::nullopt};
  auto shifted = new_offset({K::shift_by, 1}, tp, none);
  ASSERT_FALSE(shifted.ok());
  EXPECT_NE(shifted.error().message.find("orders-3"), std::string::npos);
  EXPECT_EQ(*new_offset({K::current, 0}, tp, none), 10);
  EXPECT_FALSE(new_offset({K::earliest, 0}, tp, PartitionOffsets{}).ok());
}

TEST(GroupsReset, TimestampsFallBackToTheLogEnd) {
  const TopicPartition tp{"orders", 0};
  EXPECT_EQ(*new_offset({K::to_datetime, 1000}, tp, PartitionOffsets{1, 0, 10, 4}), 4);
  EXPECT_EQ(*new_offset({K::by_duration, 1000}, tp, PartitionOffsets{1, 0, 10, -1}), 10);
  EXPECT_EQ(reset_timestamp({K::to_datetime, 1234}), 1234);
  EXPECT_EQ(reset_timestamp({K::latest, 0}), std::nullopt);
}

GroupDescription stable_group() {
  GroupDescription g;
  g.group_id = "billing";
  g.state = "Stable";
  g.protocol_type = "consumer";
  g.protocol = "range";
  g.coordinator_id = 1;
  g.coordinator = "127.0.0.1:9092";
  g.members.push_back({"c-1-aaa", std::nullopt, "c-1", "/127.0.0.1", {{"orders", 1}}});
  g.members.push_back({"c-2-bbb", std::nullopt, "c-2", "/10.0.0.2", {{"orders", 2}, {"orders", 0}}});
  g.members.push_back({"c-3-ccc", std::nullopt, "c-3", "/10.0.0.3", {}});
  return g;
}

TEST(GroupsRows, MembersWithMostPartitionsFirstThenUnassignedCommits) {
  const std::map<TopicPartition, std::int64_t> committed = {{{"orders", 0}, 3}, {{"orders", 2}, 7}, {{"audit", 0}, 1}};
  const std::map<TopicPartition, std::int64_t> ends = {{{"orders", 0}, 10}, {{"orders", 1}, 4}, {{"orders", 2}, 7}};
  auto rows = offset_rows(stable_group(), committed, ends);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].consumer_id, "c-2-bbb");
  EXPECT_EQ(rows[0].partition, 0);
  EXPECT_EQ(rows[0].current_offset, 3);
  EXPECT_EQ(rows[0].lag, 7);
  EXPECT_EQ(rows[1].partition, 2);
  EXPECT_EQ(rows[1].lag, 0);
  EXPECT_EQ(rows[2].consumer_id, "c-1-aaa");
  EXPECT_EQ(rows[2].current_offset, std::nullopt);  // nothing committed: no lag either
  EXPECT_EQ(rows[2].log_end_offset, 4);
  EXPECT_EQ(rows[2].lag, std::nullopt);
  EXPECT_EQ(rows[3].topic, "audit");
  EXPECT_EQ(rows[3].consumer_id, "-");
  EXPECT_EQ(rows[3].log_end_offset, std::nullopt);  // unknown log end: "-"
}

TEST(GroupsRender, OffsetsTableInKafkasColumns) {
  GroupDescription g;
  g.group_id = "billing";
  g.state = "Empty";
  auto rows = offset_rows(g, {{{"orders", 0}, 3}}, {{{"orders", 0}, 10}});
  EXPECT_EQ(render_offsets(rows),
            "\nGROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     "
            "HOST            CLIENT-ID"
            "\nbilling         orders          0          3               10              7               -               "
            "-               -\n");
  EXPECT_EQ(render_offsets({}), "");
}

TEST(GroupsRender, WideValuesWidenTheirColumns) {
  GroupDescription g = stable_group();
  g.group_id = "a-rather-long-group-name";
  auto text = render_offsets(offset_rows(g, {}, {}));
  EXPECT_NE(text.find("\nGROUP                    TOPIC"), std::string::npos) << text;
  EXPECT_NE(text.find("\na-rather-long-group-name orders          0          -               -               -       "
                      "        c-2-bbb         /10.0.0.2       c-2"),
            std::string::npos)
      << text;
}

TEST(GroupsRender, Members) {
  auto g = stable_group();
  EXPECT_EQ(render_members(g, false),
            "\nGROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     \n"
            "billing         c-1-aaa         /127.0.0.1      c-1             1               \n"
            "billing         c-2-bbb         /10.0.0.2       c-2             2               \n"
            "billing         c-3-ccc         /10.0.0.3       c-3             0               \n");
  g.members[1].assignment.push_back({"audit", 4});
  g.members[0].group_instance_id = "static-1";
  auto verbose = render_members(g, true);
  EXPECT_NE(verbose.find("GROUP-INSTANCE-ID HOST"), std::string::npos) << verbose;
  EXPECT_NE(verbose.find("#PARTITIONS     ASSIGNMENT\n"), std::string::npos) << verbose;
  EXPECT_NE(verbose.find("3               audit(4), orders(0,2)\n"), std::string::npos) << verbose;
  EXPECT_NE(verbose.find("0               -\n"), std::string::npos) << verbose;
}

TEST(GroupsRender, StateListsAndResets) {
  EXPECT_EQ(render_state(stable_group()),
            "\nGROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS"
            "\nbilling         127.0.0.1:9092  (1)       range                Stable               3\n");
  std::vector<GroupListing> listed = {{"billing", "consumer", "Stable"}, {"audit", "", "Empty"}};
  EXPECT_EQ(render_group_list(listed, false), "billing\naudit\n");
  EXPECT_EQ(render_group_list(listed, true), "GROUP           STATE\nbilling         Stable\naudit           Empty\n");
  EXPECT_EQ(render_reset({{"billing", {{{"orders", 0}, 0}, {{"orders", 1}, 12}}}}),
            "\nGROUP           TOPIC           PARTITION  NEW-OFFSET"
            "\nbilling         orders          0          0"
            "\nbilling         orders          1          12\n");
  EXPECT_EQ(render_reset({{"billing", {}}}), "");
  EXPECT_EQ(render_offset_deletion({{{"orders", 0}, 0}, {{"orders", 1}, 86}}),
            "\nTOPIC           PARTITION  STATUS"
            "\norders          0          Successful"
            "\norders          1          Error: GROUP_SUBSCRIBED_TO_TOPIC\n");
}

TEST(GroupsState, NotesExistenceAndInactivity) {
  GroupDescription g;
  g.group_id = "billing";
  g.state = "Dead";
  EXPECT_EQ(group_state_note(g), "Error: Consumer group 'billing' does not exist.");
  EXPECT_FALSE(group_exists(g));
  EXPECT_TRUE(group_inactive(g));
  g.state = "Empty";
  EXPECT_EQ(group_state_note(g), "Consumer group 'billing' has no active members.");
  EXPECT_TRUE(group_inactive(g));
  g.state = "PreparingRebalance";
  EXPECT_EQ(group_state_note(g), "Warning: Consumer group 'billing' is rebalancing.");
  EXPECT_FALSE(group_inactive(g));
  g.state = "Stable";
  EXPECT_EQ(group_state_note(g), std::nullopt);
  EXPECT_FALSE(group_inactive(g));
}

TEST(GroupsErrors, PlainWords) {
  auto denied = explain_group_error(30, "billing", "delete", "User:alice");
  EXPECT_EQ(denied, "the broker says User:alice may not delete group 'billing' (GROUP_AUTHORIZATION_FAILED)");
  EXPECT_EQ(group_error_kind(30), ErrorKind::unauthenticated);
  EXPECT_NE(explain_group_error(68, "billing", "delete", "x").find("still has active members"), std::string::npos);
  EXPECT_NE(explain_group_error(69, "billing", "delete", "x").find("does not exist (GROUP_ID_NOT_FOUND)"),
            std::string::npos);
  EXPECT_EQ(group_error_kind(69), ErrorKind::not_found);
  EXPECT_NE(explain_group_error(42, "billing", "delete", "x").find("INVALID_REQUEST"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::client
