#include <gtest/gtest.h>

#include "broker/errors.h"
#include "broker/fetch_sessions.h"

namespace bulwark::broker {
namespace {

using Request = wire::msg::FetchRequest;
using Response = wire::msg::FetchResponse;

const FetchSessionOwner kConsumer{"User:alice", -1};
const FetchSessionOwner kFollower{"User:broker-2", 2};

Request fetch(std::int32_t session_id, std::int32_t epoch, std::vector<std::pair<std::string, std::int32_t>> partitions,
              std::int64_t offset = 0) {
  Request r;
  r.session_id = session_id;
  r.session_epoch = epoch;
  for (const auto& [topic, partition] : partitions) {
    if (r.topics.empty() || r.topics.back().topic != topic) r.topics.push_back({topic, {}, {}, {}});
    Request::FetchPartition p;
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    r.topics.back().partitions.push_back(p);
  }
  return r;
}

// The partitions a request covers, as "topic-partition@offset".
std::vector<std::string> covered(const Request& r) {
  std::vector<std::string> out;
  for (const auto& t : r.topics)
    for (const auto& p : t.partitions) out.push_back(t.topic + "-" + std::to_string(p.partition) + "@" + std::to_string(p.fetch_offset));
  return out;
}

// The answer the broker would give for every partition of the effective request.
Response answer(const Request& effective, std::int64_t high_watermark, const std::string& with_records = "") {
  Response response;
  for (const auto& t : effective.topics) {
    auto& topic = response.responses.emplace_back();
    topic.topic = t.topic;
    for (const auto& p : t.partitions) {
      auto& out = topic.partitions.emplace_back();
      out.partition_index = p.partition;
      out.high_watermark = high_watermark;
      out.last_stable_offset = high_watermark;
      out.log_start_offset = 0;
      out.records = (t.topic + "-" + std::to_string(p.partition)) == with_records ? Bytes{1, 2, 3} : Bytes{};
    }
  }
  return response;
}

std::vector<std::string> listed(const Response& r) {
  std::vector<std::string> out;
  for (const auto& t : r.responses)
    for (const auto& p : t.partitions) out.push_back(t.topic + "-" + std::to_string(p.partition_index));
  return out;
}

TEST(FetchSessions, FullFetchOpensASessionAndIncrementalFetchesCoverAllOfIt) {
  FetchSessionCache cache(10);
  auto full = cache.begin(fetch(0, 0, {{"a", 0}, {"a", 1}, {"b", 0}}), kConsumer, 1000);
  ASSERT_EQ(full.error, 0);
  ASSERT_NE(full.session_id, 0);
  EXPECT_FALSE(full.incremental);
  auto response = answer(full.effective, 5);
  cache.finish(full, response);
  EXPECT_EQ(response.session_id, full.session_id);
  EXPECT_EQ(listed(response), (std::vector<std::string>{"a-0", "a-1", "b-0"})) << "a full fetch lists everything";

  // Only a-1 moved on, b-0 is forgotten and c-0 joins; the fetch still covers the whole session.
  auto next = fetch(full.session_id, 1, {{"a", 1}, {"c", 0}}, 7);
  next.forgotten_topics_data.push_back({"b", {}, {0}, {}});
  auto incremental = cache.begin(next, kConsumer, 1100);
  ASSERT_EQ(incremental.error, 0);
  EXPECT_TRUE(incremental.incremental);
  EXPECT_EQ(covered(incremental.effective), (std::vector<std::string>{"a-0@0", "a-1@7", "c-0@7"}));

  // Nothing new for a-0 and a-1 (same high watermark): only c-0, which the client has not heard of, and
  // the partition with records are listed.
  response = answer(incremental.effective, 5, "a-1");
  cache.finish(incremental, response);
  EXPECT_EQ(listed(response), (std::vector<std::string>{"a-1", "c-0"}));

  // a-1 returned records, so it goes to the back of the line; a moved high watermark is news for all.
  auto third = cache.begin(fetch(full.session_id, 2, {}), kConsumer, 1200);
  ASSERT_EQ(third.error, 0);
  EXPECT_EQ(covered(third.effective), (std::vector<std::string>{"a-0@0", "c-0@7", "a-1@7"}));
  response = answer(third.effective, 5);
  cache.finish(third, response);
  EXPECT_TRUE(listed(response).empty()) << "an incremental answer without news lists nothing";
  auto fourth = cache.begin(fetch(full.session_id, 3, {}), kConsumer, 1300);
  response = answer(fourth.effective, 6);
  cache.finish(fourth, response);
  EXPECT_EQ(listed(response), (std::vector<std::string>{"a-0", "c-0", "a-1"}));
}

TEST(FetchSessions, WrongEpochUnknownIdAndAnotherOwnerAreRefused) {
  FetchSessionCache cache(10);
  auto full = cache.begin(fetch(0, 0, {{"a", 0}}), kConsumer, 0);
  ASSERT_NE(full.session_id, 0);
  EXPECT_EQ(cache.begin(fetch(full.session_id, 2, {}), kConsumer, 0).error, code(KafkaError::invalid_fetch_session_epoch));
  EXPECT_EQ(cache.begin(fetch(full.session_id + 1, 1, {}), kConsumer, 0).error, code(KafkaError::fetch_session_id_not_found));
  EXPECT_EQ(cache.begin(fetch(full.session_id, 1, {}), FetchSessionOwner{"User:mallory", -1}, 0).error,
            code(KafkaError::fetch_session_id_not_found))
      << "a session was served to a principal that did not open it";
  EXPECT_EQ(cache.begin(fetch(full.session_id, 1, {}), kConsumer, 0).error, 0) << "a refused fetch moved the session's epoch on";
  // The same epoch twice (a retry of a request that was answered) is refused too.
  EXPECT_EQ(cache.begin(fetch(full.session_id, 1, {}), kConsumer, 0).error, code(KafkaError::invalid_fetch_session_epoch));
}

TEST(FetchSessions, TopicIdsAreKeptAndADeletedTopicIsForgottenByItsId) {
  FetchSessionCache cache(10);
  const wire::Uuid id_a{1}, id_b{2};
  auto first = fetch(0, 0, {{"a", 0}, {"b", 0}});
  first.topics[0].topic_id = id_a;  // as handle_fetch resolves v13+ ids: the name and the client's id
  first.topics[1].topic_id = id_b;
  auto full = cache.begin(first, kConsumer, 0);
  ASSERT_NE(full.session_id, 0);
  auto next = cache.begin(fetch(full.session_id, 1, {}), kConsumer, 0);
  ASSERT_EQ(next.effective.topics.size(), 2u);
  EXPECT_EQ(next.effective.topics[0].topic_id, id_a) << "the session lost the id the client named the topic by";
  EXPECT_EQ(next.effective.topics[1].topic_id, id_b);
  // "b" was deleted: its id no longer resolves to a name, so the client forgets it by id alone.
  auto forget = fetch(full.session_id, 2, {});
  forget.forgotten_topics_data.push_back({"", id_b, {0}, {}});
  auto after = cache.begin(forget, kConsumer, 0);
  ASSERT_EQ(after.error, 0);
  EXPECT_EQ(covered(after.effective), (std::vector<std::string>{"a-0@0"}));
}

TEST(FetchSessions, FinalEpochClosesTheSessionAndSessionlessFetchesOpenNone) {
  FetchSessionCache cache(10);
  auto full = cache.begin(fetch(0, 0, {{"a", 0}}), kConsumer, 0);
  ASSERT_EQ(cache.size(), 1u);
  auto closing = cache.begin(fetch(full.session_id, -1, {{"a", 0}}), kConsumer, 0);
  EXPECT_EQ(closing.error, 0);
  EXPECT_EQ(closing.session_id, 0);
  EXPECT_EQ(covered(closing.effective), (std::vector<std::string>{"a-0@0"}));
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.begin(fetch(full.session_id, 1, {}), kConsumer, 0).error, code(KafkaError::fetch_session_id_not_found));
  auto sessionless = cache.begin(fetch(0, -1, {{"a", 0}}), kConsumer, 0);
  EXPECT_EQ(sessionless.session_id, 0);
  EXPECT_EQ(cache.size(), 0u);
  // A new full fetch naming its old session replaces it.
  auto first = cache.begin(fetch(0, 0, {{"a", 0}}), kConsumer, 0);
  auto second = cache.begin(fetch(first.session_id, 0, {{"a", 0}}), kConsumer, 0);
  EXPECT_NE(second.session_id, 0);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(FetchSessions, AFullCacheEvictsIdleSessionsAndConsumersMakeRoomForFollowers) {
  FetchSessionCache cache(2, /*eviction_ms=*/1000);
  auto c1 = cache.begin(fetch(0, 0, {{"a", 0}}), kConsumer, 0);
  auto c2 = cache.begin(fetch(0, 0, {{"a", 1}}), kConsumer, 100);
  ASSERT_NE(c1.session_id, 0);
  ASSERT_NE(c2.session_id, 0);
  EXPECT_EQ(cache.begin(fetch(0, 0, {{"a", 2}}), kConsumer, 500).session_id, 0) << "a busy session was evicted";
  auto follower = cache.begin(fetch(0, 0, {{"a", 0}}), kFollower, 600);
  ASSERT_NE(follower.session_id, 0) << "a follower found no room among consumer sessions";
  EXPECT_EQ(cache.begin(fetch(c1.session_id, 1, {}), kConsumer, 600).error, code(KafkaError::fetch_session_id_not_found))
      << "the least recently used consumer session should have made room";
  EXPECT_EQ(cache.begin(fetch(c2.session_id, 1, {}), kConsumer, 700).error, 0);
  // Once idle for the eviction time, any session makes room.
  auto late = cache.begin(fetch(0, 0, {{"b", 0}}), kConsumer, 1700);
  EXPECT_NE(late.session_id, 0);
  EXPECT_EQ(cache.begin(fetch(follower.session_id, 1, {}), kFollower, 1700).error, code(KafkaError::fetch_session_id_not_found));
  FetchSessionCache disabled(0);
  EXPECT_EQ(disabled.begin(fetch(0, 0, {{"a", 0}}), kConsumer, 0).session_id, 0);
}

}  // namespace
}  // namespace bulwark::broker
