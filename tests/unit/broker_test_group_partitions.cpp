#include <gtest/gtest.h>

#include "broker/group_partitions.h"

namespace bulwark::broker {
namespace {

// Java's String.hashCode values (from the JDK) behind Kafka's partitionFor.
TEST(OffsetsPartitionFor, FollowsJavaStringHashCode) {
  EXPECT_EQ(offsets_partition_for("hello", 50), 99162322 % 50);
  EXPECT_EQ(offsets_partition_for("", 50), 0);
  // A longer id: the hash overflows 32 bits, as Java's int does, and may come out negative.
  std::int32_t h = 0;
  for (char c : std::string("console-consumer-1")) h = static_cast<std::int32_t>(static_cast<std::uint32_t>(h) * 31u + static_cast<unsigned char>(c));
  EXPECT_EQ(offsets_partition_for("console-consumer-1", 50), (h < 0 ? -h : h) % 50);
}

TEST(OffsetsPartitionFor, MinimumHashMapsToPartitionZero) {
  // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
  for (std::int32_t partitions : {1, 7, 50}) EXPECT_EQ(offsets_partition_for("polygenelubricants", partitions), 0);
}

TEST(OffsetsPartitionFor, HashesUtf16CodeUnits) {
  // U+00E9 is one UTF-16 unit (233); U+1F389 is the surrogate pair D83C DF89.
  EXPECT_EQ(offsets_partition_for("\xc3\xa9", 1000), 233);
  const std::uint32_t pair = 0xd83cu * 31u + 0xdf89u;
  EXPECT_EQ(offsets_partition_for("\xf0\x9f\x8e\x89", 100000), static_cast<std::int32_t>(pair) % 100000);
}

}  // namespace
}  // namespace bulwark::broker
