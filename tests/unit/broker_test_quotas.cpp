#include <gtest/gtest.h>

#include "broker/quotas.h"

namespace bulwark::broker {
namespace {

using Entity = cluster::ClientQuotaEntity;
constexpr QuotaWindowConfig kKafkaDefaults{11, 1000};

Entity user_client(std::optional<std::string> user, std::optional<std::string> client) {
  return {{"client-id", std::move(client)}, {"user", std::move(user)}};
}
Entity user_only(std::optional<std::string> user) { return {{"user", std::move(user)}}; }
Entity client_only(std::optional<std::string> client) { return {{"client-id", std::move(client)}}; }

// Every level of Kafka's precedence, each with its own value (1 = most specific).
ClientQuotaMap all_levels() {
  ClientQuotaMap quotas;
  const std::string key = "producer_byte_rate";
  quotas[user_client("alice", "c1")][key] = 1;
  quotas[user_client("alice", std::nullopt)][key] = 2;
  quotas[user_only("alice")][key] = 3;
  quotas[user_client(std::nullopt, "c1")][key] = 4;
  quotas[user_client(std::nullopt, std::nullopt)][key] = 5;
  quotas[user_only(std::nullopt)][key] = 6;
  quotas[client_only("c1")][key] = 7;
  quotas[client_only(std::nullopt)][key] = 8;
  return quotas;
}

TEST(QuotaPrecedence, MostSpecificEntityWinsInKafkaOrder) {
  auto quotas = all_levels();
  const std::vector<Entity> order = {
      user_client("alice", "c1"),        user_client("alice", std::nullopt),   user_only("alice"),
      user_client(std::nullopt, "c1"),   user_client(std::nullopt, std::nullopt), user_only(std::nullopt),
      client_only("c1"),                 client_only(std::nullopt),
  };
  // Tags: whose usage the matched level counts together.
  const std::vector<std::pair<std::string, std::string>> tags = {
      {"alice", "c1"}, {"alice", "c1"}, {"alice", ""}, {"alice", "c1"},
      {"alice", "c1"}, {"alice", ""},   {"", "c1"},    {"", "c1"},
  };
  for (std::size_t level = 0; level < order.size(); ++level) {
    auto found = resolve_quota(quotas, "producer_byte_rate", "alice", "c1");
    ASSERT_TRUE(found) << "level " << level + 1;
    EXPECT_EQ(found->bound, static_cast<double>(level + 1));
    EXPECT_EQ(found->user_tag, tags[level].first) << "level " << level + 1;
    EXPECT_EQ(found->client_tag, tags[level].second) << "level " << level + 1;
    quotas.erase(order[level]);
  }
  EXPECT_FALSE(resolve_quota(quotas, "producer_byte_rate", "alice", "c1"));
}

TEST(QuotaPrecedence, OtherKeysAndOtherClientsDoNotMatch) {
  ClientQuotaMap quotas;
  quotas[user_only("alice")]["consumer_byte_rate"] = 100;
  quotas[user_client("bob", "c2")]["producer_byte_rate"] = 5;
  EXPECT_FALSE(resolve_quota(quotas, "producer_byte_rate", "alice", "c1"));
  EXPECT_FALSE(resolve_quota(quotas, "producer_byte_rate", "bob", "c1"));
  EXPECT_EQ(resolve_quota(quotas, "consumer_byte_rate", "alice", "any")->bound, 100);
  // A key set on a less specific entity applies when the more specific one lacks that key.
  quotas[user_client("alice", "c1")]["request_percentage"] = 50;
  EXPECT_EQ(resolve_quota(quotas, "consumer_byte_rate", "alice", "c1")->bound, 100);
}

TEST(SampledRate, DividesByAtLeastSamplesMinusOneWindows) {
  SampledRate rate(kKafkaDefaults);
  rate.record(1000, 0);
  EXPECT_EQ(rate.window_size_ms(0), 10'000);
  EXPECT_DOUBLE_EQ(rate.measure(0), 100.0);
  rate.record(500, 1500);  // a new sample: the first is complete
  EXPECT_EQ(rate.window_size_ms(1500), 10'500);
  EXPECT_DOUBLE_EQ(rate.measure(1500), 1500.0 / 10.5);
}

TEST(SampledRate, SamplesOlderThanAllWindowsAreDropped) {
  SampledRate rate(kKafkaDefaults);
  rate.record(1000, 0);
  rate.record(500, 1500);
  // At 11 s the first sample (started at 0) has aged out; the one from 1.5 s remains.
  EXPECT_EQ(rate.window_size_ms(11'000), 10'500);
  EXPECT_DOUBLE_EQ(rate.measure(11'000), 500.0 / 10.5);
  EXPECT_DOUBLE_EQ(rate.measure(30'000), 0.0);
}

TEST(SampledRate, WrapsAroundItsSamples) {
  SampledRate rate({3, 1000});
  for (int second = 0; second < 10; ++second) rate.record(300, second * 1000);
  // Three samples of 300 retained, spanning 7 s..9 s: 900 bytes over 2 s (the samples - 1 minimum).
  EXPECT_EQ(rate.window_size_ms(9000), 2000);
  EXPECT_DOUBLE_EQ(rate.measure(9000), 450.0);
}

TEST(ThrottleTime, IsKafkasUnboundedFormula) {
  EXPECT_EQ(throttle_time_ms(900, 1000, 10'000, 11'000), 0);
  EXPECT_EQ(throttle_time_ms(1000, 1000, 10'000, 11'000), 0);
  EXPECT_EQ(throttle_time_ms(1100, 1000, 10'000, 11'000), 1000);
  EXPECT_EQ(throttle_time_ms(2000, 1000, 10'500, 11'000), 10'500);
  EXPECT_EQ(throttle_time_ms(1000.06, 1000, 10'000, 11'000), 1);  // 0.6 ms, rounded as Math.round
  EXPECT_EQ(throttle_time_ms(1000.04, 1000, 10'000, 11'000), 0);
  EXPECT_EQ(throttle_time_ms(5000, 1000, 10'000, 11'000), 40'000);  // not capped, as Kafka's ClientQuotaManager
  EXPECT_EQ(throttle_time_ms(1e12, 1, 10'000, 11'000), INT32_MAX);  // but it must fit throttle_time_ms
  EXPECT_EQ(throttle_time_ms(1, 0, 10'000, 11'000), 11'000);       // a zero quota
}

TEST(ClientQuotaManager, MaxValueInWindowIsTheQuotaOverSamplesMinusOneWindows) {
  ClientQuotaMap quotas;
  quotas[user_only("alice")]["consumer_byte_rate"] = 1000;
  ClientQuotaManager manager(kKafkaDefaults);  // 11 samples of 1 s
  EXPECT_EQ(manager.max_value_in_window(QuotaKind::fetch, quotas, "alice", "c"), 10'000.0);
  EXPECT_EQ(manager.max_value_in_window(QuotaKind::produce, quotas, "alice", "c"), std::nullopt);
  EXPECT_EQ(manager.max_value_in_window(QuotaKind::fetch, quotas, "bob", "c"), std::nullopt);
}

TEST(ClientQuotaManager, ThrottlesByObservedRateOverQuota) {
  ClientQuotaMap quotas;
  quotas[user_only("alice")]["producer_byte_rate"] = 1000;
  ClientQuotaManager manager(kKafkaDefaults);
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "alice", "c1", 5000, 0), 0);  // 500 B/s
  // 20000 bytes over the 10 s minimum window: 2000 B/s, (2000 - 1000) / 1000 * 10 s.
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "alice", "c1", 15'000, 0), 10'000);
  // Another client of alice shares the /users/alice quota.
  EXPECT_GT(manager.record(QuotaKind::produce, quotas, "alice", "c2", 1, 0), 0);
  // Fetch and other users are not affected.
  EXPECT_EQ(manager.record(QuotaKind::fetch, quotas, "alice", "c1", 1e9, 0), 0);
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "bob", "c1", 1e9, 0), 0);
}

TEST(ClientQuotaManager, DefaultUserQuotaIsPerUser) {
  ClientQuotaMap quotas;
  quotas[user_only(std::nullopt)]["consumer_byte_rate"] = 1000;
  ClientQuotaManager manager(kKafkaDefaults);
  EXPECT_GT(manager.record(QuotaKind::fetch, quotas, "alice", "c", 20'000, 0), 0);
  EXPECT_EQ(manager.record(QuotaKind::fetch, quotas, "bob", "c", 5'000, 0), 0);
}

TEST(ClientQuotaManager, UnrecordTakesBackAThrottledFetch) {
  ClientQuotaMap quotas;
  quotas[client_only("c1")]["consumer_byte_rate"] = 1000;
  ClientQuotaManager manager(kKafkaDefaults);
  EXPECT_GT(manager.record(QuotaKind::fetch, quotas, "u", "c1", 20'000, 0), 0);
  manager.unrecord(QuotaKind::fetch, quotas, "u", "c1", 20'000, 0);
  EXPECT_EQ(manager.record(QuotaKind::fetch, quotas, "u", "c1", 5'000, 0), 0);
}

// A producer that sends as fast as it is allowed (waits out each throttle) ends up at its quota:
// the property the integration test checks against a real broker, here with a fake clock.
TEST(ClientQuotaManager, ThrottledClientConvergesToTheQuota) {
  ClientQuotaMap quotas;
  quotas[user_only("alice")]["producer_byte_rate"] = 10'000;
  ClientQuotaManager manager(kKafkaDefaults);
  std::int64_t now = 0;
  double sent = 0;
  while (now < 120'000) {
    sent += 4096;
    const auto throttle = manager.record(QuotaKind::produce, quotas, "alice", "p", 4096, now);
    now += std::max<std::int64_t>(throttle, 5);  // 5 ms per request when not throttled
  }
  const double rate = sent / (static_cast<double>(now) / 1000.0);
  EXPECT_NEAR(rate, 10'000, 1'000);
}

TEST(ClientQuotaManager, RequestPercentageCountsThreadTime) {
  ClientQuotaMap quotas;
  quotas[user_only("alice")]["request_percentage"] = 10;  // 10 % of one thread
  ClientQuotaManager manager(kKafkaDefaults);
  // 2 s of thread time at once: 200 percent-seconds over 10 s = 20 %; (20 - 10) / 10 * 10 s.
  EXPECT_EQ(manager.record(QuotaKind::request, quotas, "alice", "c", thread_time_percent(2'000'000'000), 0), 10'000);
}

}  // namespace
}  // namespace bulwark::broker
