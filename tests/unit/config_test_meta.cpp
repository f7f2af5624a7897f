// Kafka UUIDs, meta.properties, format_storage and the start-up check.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "base/files.h"
#include "config/meta_properties.h"

using namespace bulwark::config;
namespace fs = std::filesystem;

namespace {

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(Uuid, KnownValues) {
  std::array<std::uint8_t, 16> zero{};
  EXPECT_EQ(encode_uuid(zero), "AAAAAAAAAAAAAAAAAAAAAA");  // Kafka's Uuid.ZERO_UUID.toString()
  std::array<std::uint8_t, 16> ones;
  ones.fill(0xff);
  EXPECT_EQ(encode_uuid(ones), "_____________________w");
  auto d = decode_uuid("_____________________w");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, ones);
  auto padded = decode_uuid("AAAAAAAAAAAAAAAAAAAAAA==");
  ASSERT_TRUE(padded.ok());
  EXPECT_EQ(*padded, zero);
}

TEST(Uuid, RandomIsWellFormedAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = random_uuid();
    ASSERT_EQ(id.size(), 22u) << id;
    ASSERT_NE(id[0], '-') << id;
    auto bytes = decode_uuid(id);
    ASSERT_TRUE(bytes.ok()) << id;
    EXPECT_EQ((*bytes)[6] >> 4, 4) << id;        // version 4, as java.util.UUID.randomUUID
    EXPECT_EQ((*bytes)[8] & 0xc0, 0x80) << id;   // IETF variant
    EXPECT_EQ(encode_uuid(*bytes), id);
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
  }
}

TEST(Uuid, BadInputs) {
  EXPECT_FALSE(decode_uuid("").ok());
  EXPECT_FALSE(decode_uuid("abc").ok());
  EXPECT_FALSE(decode_uuid("AAAAAAAAAAAAAAAAAAAAAAA").ok());   // 23 characters
  EXPECT_FALSE(decode_uuid("AAAAAAAAAAAAAAAAAAAAA+").ok());    // '+' is standard base64, not base64url
  EXPECT_FALSE(decode_uuid("AAAAAAAAAAAAAAAAAAAAAB").ok());    // bits beyond 16 bytes
  auto e = decode_uuid("not-a-uuid");
  ASSERT_FALSE(e.ok());
  EXPECT_CONTAINS(e.error().message, "'not-a-uuid' is not a valid Kafka UUID");
}

TEST(MetaProperties, RenderAndParse) {
  MetaProperties m;
  m.cluster_id = "MkU3OEVBNTcwNTJENDM2Qg";
  m.node_id = 3;
  m.directory_id = "f8lwMmF2QP-FSJ2D9kCK9g";
  auto when = std::chrono::system_clock::from_time_t(1700000000);  // Tue Nov 14 22:13:20 UTC 2023
  auto text = render_meta_properties(m, when);
  EXPECT_EQ(text,
            "#\n#Tue Nov 14 22:13:20 UTC 2023\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n"
            "directory.id=f8lwMmF2QP-FSJ2D9kCK9g\nnode.id=3\nversion=1\n");
  auto back = parse_meta_properties(text, "meta.properties");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->cluster_id, m.cluster_id);
  EXPECT_EQ(back->node_id, 3);
  EXPECT_EQ(back->directory_id, m.directory_id);
  EXPECT_EQ(back->version, 1);

  EXPECT_CONTAINS(parse_meta_properties("version=0\ncluster.id=x\nbroker.id=1\n", "m").error().message, "ZooKeeper");
  EXPECT_CONTAINS(parse_meta_properties("version=1\nnode.id=1\n", "m").error().message, "no cluster.id");
  EXPECT_CONTAINS(parse_meta_properties("version=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n", "m").error().message, "no node.id");
  // Written by an older Kafka: no directory.id is fine.
  EXPECT_TRUE(parse_meta_properties("version=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\nnode.id=1\n", "m").ok());
}

class StorageFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("bulwark-config-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  BrokerConfig config(int node_id, std::vector<std::string> dirs, std::optional<std::string> metadata = {}) {
    BrokerConfig c;
    c.source = "server.properties";
    c.node_id = node_id;
    for (auto& d : dirs) c.log_dirs.push_back((root_ / d).string());
    if (metadata) c.metadata_log_dir = (root_ / *metadata).string();
    return c;
  }

  fs::path root_;
};

TEST_F(StorageFormat, FormatsEveryDirectoryWithItsOwnDirectoryId) {
  auto c = config(2, {"a", "b"}, "meta");
  EXPECT_CONTAINS(check_storage(c).error().message, "is not formatted");
  auto cluster = random_uuid();
  auto out = format_storage(c, cluster, false);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->formatted.size(), 3u);
  std::set<std::string> dir_ids;
  for (auto d : {"a", "b", "meta"}) {
    auto st = inspect_directory(root_ / d);
    ASSERT_EQ(st.state, DirectoryState::formatted) << d << " " << st.problem;
    EXPECT_EQ(st.meta->cluster_id, cluster);
    EXPECT_EQ(st.meta->node_id, 2);
    EXPECT_EQ(st.meta->directory_id.size(), 22u);
    dir_ids.insert(st.meta->directory_id);
  }
  EXPECT_EQ(dir_ids.size(), 3u);
  auto ok = check_storage(c);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->cluster_id, cluster);
}

TEST_F(StorageFormat, SecondFormatFailsUnlessIgnored) {
  auto c = config(1, {"a"});
  auto cluster = random_uuid();
  ASSERT_TRUE(format_storage(c, cluster, false).ok());
  auto before = bulwark::read_file(root_ / "a" / "meta.properties");
  auto again = format_storage(c, cluster, false);
  ASSERT_FALSE(again.ok());
  EXPECT_CONTAINS(again.error().message, "is already formatted. Use --ignore-formatted");
  auto ignored = format_storage(c, cluster, true);
  ASSERT_TRUE(ignored.ok()) << ignored.error().message;
  EXPECT_TRUE(ignored->formatted.empty());
  EXPECT_EQ(ignored->skipped.size(), 1u);
  EXPECT_EQ(*bulwark::read_file(root_ / "a" / "meta.properties"), *before);  // untouched

  // A new directory added later is formatted, the old one skipped.
  auto more = config(1, {"a", "b"});
  auto partial = format_storage(more, cluster, true);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->formatted.size(), 1u);
  EXPECT_EQ(partial->skipped.size(), 1u);
}

TEST_F(StorageFormat, OtherClusterOrNodeAlwaysFails) {
  auto c = config(1, {"a", "b"});
  auto first = random_uuid();
  ASSERT_TRUE(format_storage(config(1, {"a"}), first, false).ok());
  auto second = random_uuid();
  auto r = format_storage(c, second, true);
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "formatted for another cluster: its cluster.id is " + first);
  EXPECT_FALSE(fs::exists(root_ / "b" / "meta.properties"));  // nothing written when a check fails

  auto other_node = format_storage(config(7, {"a"}), first, true);
  ASSERT_FALSE(other_node.ok());
  EXPECT_CONTAINS(other_node.error().message, "formatted for node.id 1");
  auto start = check_storage(config(7, {"a"}));
  ASSERT_FALSE(start.ok());
  EXPECT_CONTAINS(start.error().message, "has node.id 1");
}

TEST_F(StorageFormat, StartupCheckFindsMixedClusters) {
  ASSERT_TRUE(format_storage(config(1, {"a"}), random_uuid(), false).ok());
  ASSERT_TRUE(format_storage(config(1, {"b"}), random_uuid(), false).ok());
  auto r = check_storage(config(1, {"a", "b"}));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "belong to different clusters");
}

TEST_F(StorageFormat, BadClusterIdAndBrokenFile) {
  auto c = config(1, {"a"});
  auto bad = format_storage(c, "hello", false);
  ASSERT_FALSE(bad.ok());
  EXPECT_CONTAINS(bad.error().message, "not a valid Kafka UUID");
  EXPECT_FALSE(fs::exists(root_ / "a"));
  fs::create_directories(root_ / "a");
  std::ofstream(root_ / "a" / "meta.properties") << "garbage\n";
  EXPECT_EQ(inspect_directory(root_ / "a").state, DirectoryState::broken);
  EXPECT_FALSE(format_storage(c, random_uuid(), true).ok());
  EXPECT_EQ(inspect_directory(root_ / "missing").state, DirectoryState::missing);
  fs::create_directories(root_ / "empty");
  EXPECT_EQ(inspect_directory(root_ / "empty").state, DirectoryState::not_formatted);
}

}  // namespace
