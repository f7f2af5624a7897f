// DescribeLogDirs' per-dir rules: every configured dir answers, offline ones with KAFKA_STORAGE_ERROR and
// nothing else, online ones with their partitions grouped by topic and their volume's bytes.
#include <gtest/gtest.h>

#include <filesystem>

#include "broker/log_dirs.h"

namespace bulwark::broker {
namespace {

constexpr std::int16_t kKafkaStorageError = 56;

TEST(LogDirs, OnlineAndOfflineDirs) {
  const auto root = std::filesystem::temp_directory_path() / "bulwark-log-dirs-test";
  std::filesystem::create_directories(root / "a");
  std::filesystem::create_directories(root / "b");
  const std::string a = (root / "a").string(), b = (root / "b").string();
  std::vector<LogDirPartition> partitions = {
      {{"orders", 1}, root / "a", 300, 0},
      {{"orders", 0}, root / "a" / ".", 100, 0},  // spelled differently: the same dir
      {{"audit", 0}, root / "a", 5, -1},
      {{"orders", 2}, root / "b", 7, 0},
  };
  auto results = assemble_log_dirs({a + "/", b}, {root / "b"}, partitions);
  ASSERT_EQ(results.size(), 2u);

  EXPECT_EQ(results[0].error_code, 0);
  EXPECT_EQ(results[0].log_dir, a);
  ASSERT_EQ(results[0].topics.size(), 2u);
  EXPECT_EQ(results[0].topics[0].name, "audit");
  EXPECT_EQ(results[0].topics[0].partitions[0].offset_lag, -1);
  ASSERT_EQ(results[0].topics[1].partitions.size(), 2u);
  EXPECT_EQ(results[0].topics[1].partitions[0].partition_index, 0);
  EXPECT_EQ(results[0].topics[1].partitions[0].partition_size, 100);
  EXPECT_EQ(results[0].topics[1].partitions[1].partition_size, 300);
  EXPECT_FALSE(results[0].topics[1].partitions[1].is_future_key);
  EXPECT_GT(results[0].total_bytes, 0);
  EXPECT_GE(results[0].usable_bytes, 0);
  EXPECT_LE(results[0].usable_bytes, results[0].total_bytes);

  EXPECT_EQ(results[1].error_code, kKafkaStorageError);
  EXPECT_EQ(results[1].log_dir, b);
  EXPECT_TRUE(results[1].topics.empty());
  EXPECT_EQ(results[1].total_bytes, -1);
  EXPECT_EQ(results[1].usable_bytes, -1);
  std::filesystem::remove_all(root);
}

TEST(LogDirs, MissingVolumeLeavesBytesUnknown) {
  auto results = assemble_log_dirs({"/nonexistent/bulwark/log-dir"}, {}, {});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error_code, 0);
  EXPECT_EQ(results[0].total_bytes, -1);
}

}  // namespace
}  // namespace bulwark::broker
