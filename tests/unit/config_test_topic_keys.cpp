#include <gtest/gtest.h>

#include "config/config.h"

namespace bulwark::config {
namespace {

TEST(TopicKeys, SegmentBytesFollowsKafkasRange) {
  EXPECT_FALSE(topic_config_error("segment.bytes", "14"));
  EXPECT_FALSE(topic_config_error("segment.bytes", "2147483647"));
  for (const char* bad : {"0", "-1", "13", "8589934592", "2147483648", "", "1e6", "12 "}) {
    auto why = topic_config_error("segment.bytes", bad);
    ASSERT_TRUE(why) << bad;
    EXPECT_NE(why->find("Invalid value"), std::string::npos) << *why;
    EXPECT_NE(why->find("segment.bytes"), std::string::npos) << *why;
  }
}

TEST(TopicKeys, RangesAndAllowedValues) {
  EXPECT_FALSE(topic_config_error("retention.ms", "-1"));
  EXPECT_TRUE(topic_config_error("retention.ms", "-2"));
  EXPECT_FALSE(topic_config_error("retention.bytes", "-5"));  // Kafka: any long
  EXPECT_TRUE(topic_config_error("flush.messages", "0"));
  EXPECT_TRUE(topic_config_error("segment.ms", "0"));
  EXPECT_TRUE(topic_config_error("min.insync.replicas", "0"));
  EXPECT_FALSE(topic_config_error("message.timestamp.type", "LogAppendTime"));
  EXPECT_TRUE(topic_config_error("message.timestamp.type", "logappendtime"));
  EXPECT_FALSE(topic_config_error("compression.type", "zstd"));
  EXPECT_TRUE(topic_config_error("compression.type", "brotli"));
}

TEST(TopicKeys, UnknownAndUnsupportedAreNamed) {
  EXPECT_EQ(*topic_config_error("no.such.key", "1"), "Unknown topic config name: no.such.key");
  EXPECT_FALSE(topic_config_error("cleanup.policy", "compact"));
  EXPECT_FALSE(topic_config_error("cleanup.policy", "compact,delete"));
  EXPECT_TRUE(topic_config_error("cleanup.policy", "shred"));
  EXPECT_FALSE(topic_config_error("min.cleanable.dirty.ratio", "0.01"));
  EXPECT_NE(topic_config_error("min.cleanable.dirty.ratio", "1.5")->find("Invalid value"), std::string::npos);
  EXPECT_FALSE(topic_config_error("delete.retention.ms", "100"));
  EXPECT_FALSE(topic_config_error("max.compaction.lag.ms", "1000"));
  EXPECT_FALSE(topic_config_error("cleanup.policy", "delete"));
  EXPECT_NE(topic_config_error("preallocate", "true")->find("does not act on"), std::string::npos);
  // A bad value of an unsupported key is reported as the bad value first.
  EXPECT_NE(topic_config_error("preallocate", "maybe")->find("Invalid value"), std::string::npos);
}

// The topic key and its server.properties synonym share type and floor, so nothing accepted for a
// topic is refused as a broker default, and the other way round.
TEST(TopicKeys, SupportedKeysAgreeWithTheirBrokerSynonym) {
  for (const auto& topic : topic_key_specs()) {
    if (topic.spec.status != KeyStatus::supported || topic.broker_key.empty()) continue;
    const KeySpec* broker = find_key_spec(topic.broker_key);
    ASSERT_NE(broker, nullptr) << topic.broker_key;
    EXPECT_EQ(broker->type, topic.spec.type) << topic.spec.name;
    if (topic.spec.name == "segment.bytes") {
      EXPECT_EQ(broker->min, topic.spec.min);
    }
  }
}

}  // namespace
}  // namespace bulwark::config
