#include <gtest/gtest.h>

#include "client/quotas.h"

namespace bulwark::client {
namespace {

TEST(QuotaTool, PrintsDoublesAsJava) {
  EXPECT_EQ(java_double(1024), "1024.0");
  EXPECT_EQ(java_double(0.5), "0.5");
  EXPECT_EQ(java_double(12.25), "12.25");
  EXPECT_EQ(java_double(1e7), "1.0E7");
  EXPECT_EQ(java_double(1.5e-5), "1.5E-5");
  EXPECT_EQ(java_double(0), "0.0");
}

TEST(QuotaTool, PairsEntityTypesWithNamesAndDefaults) {
  auto entity = quota_entity({{"users", "clients"}, {std::string("alice"), std::nullopt}});
  ASSERT_TRUE(entity.ok());
  EXPECT_EQ(render_quota_entity(*entity), "user-principal 'alice', the default client-id");
  EXPECT_FALSE(quota_entity({{"users"}, {}}).ok());
  EXPECT_FALSE(quota_entity({{"topics"}, {std::string("t")}}).ok());
  auto filter = quota_filter({{"users", "clients"}, {std::string("alice")}});
  ASSERT_TRUE(filter.ok());
  ASSERT_EQ(filter->size(), 2u);
  EXPECT_EQ((*filter)[0].match_type, 0);
  EXPECT_EQ((*filter)[1].match_type, 2);
}

TEST(QuotaTool, ParsesAddAndDeleteConfig) {
  auto ops = quota_ops("producer_byte_rate=1024, consumer_byte_rate=2048", {"request_percentage"});
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 3u);
  EXPECT_EQ((*ops)[1].key, "consumer_byte_rate");
  EXPECT_EQ((*ops)[1].value, 2048);
  EXPECT_FALSE((*ops)[2].value);
  auto bad = quota_ops("producer_byte_rate=fast", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "Cannot parse quota configuration value for producer_byte_rate: fast");
  EXPECT_FALSE(quota_ops("", {}).ok());
}

TEST(QuotaTool, RendersKafkaLines) {
  QuotaEntity alice{{"user", "alice"}};
  EXPECT_EQ(render_quota_line(alice, {{"consumer_byte_rate", 2048}, {"producer_byte_rate", 1024}}),
            "Quota configs for user-principal 'alice' are consumer_byte_rate=2048.0, producer_byte_rate=1024.0");
  EXPECT_EQ(render_alter_done({{"users"}, {std::string("alice")}}), "Completed updating config for user alice.");
  EXPECT_EQ(render_alter_done({{"clients"}, {std::nullopt}}), "Completed updating default config for clients in the cluster.");
}

}  // namespace
}  // namespace bulwark::client
