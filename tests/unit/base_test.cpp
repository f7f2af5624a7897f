#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "base/bytes.h"
#include "base/edit_distance.h"
#include "base/files.h"

namespace bulwark {
namespace {

TEST(ByteReader, ReadsBigEndianAndStopsAtEnd) {
  const Bytes data{0x01, 0x02, 0x03, 0x04, 0x05};
  ByteReader reader(data);
  std::int32_t v = 0;
  ASSERT_TRUE(reader.read_i32(v));
  EXPECT_EQ(v, 0x01020304);
  std::int16_t too_long = 0;
  EXPECT_FALSE(reader.read_i16(too_long));
  EXPECT_FALSE(reader.ok());
  std::uint8_t after_failure = 0;
  EXPECT_FALSE(reader.read_u8(after_failure)) << "a failed reader stays failed";
}

TEST(ByteWriter, VarintsRoundTripThroughReader) {
  const std::int64_t longs[] = {0, -1, 1, 63, -64, 64, 300, -300, INT64_MAX, INT64_MIN};
  const std::int32_t ints[] = {0, -1, 1, 127, -128, INT32_MAX, INT32_MIN};
  ByteWriter writer;
  for (auto v : longs) writer.write_varlong(v);
  for (auto v : ints) writer.write_varint(v);
  writer.write_unsigned_varint(0xffffffffu);
  Bytes out = writer.take();
  ByteReader reader(out);
  for (auto expected : longs) {
    std::int64_t v = 0;
    ASSERT_TRUE(reader.read_varlong(v));
    EXPECT_EQ(v, expected);
  }
  for (auto expected : ints) {
    std::int32_t v = 0;
    ASSERT_TRUE(reader.read_varint(v));
    EXPECT_EQ(v, expected);
  }
  std::uint32_t u = 0;
  ASSERT_TRUE(reader.read_unsigned_varint(u));
  EXPECT_EQ(u, 0xffffffffu);
  EXPECT_TRUE(reader.at_end());
}

TEST(ByteWriter, ZigzagMatchesKafkaEncoding) {
  ByteWriter writer;
  writer.write_varint(-1);  // zigzag 1
  writer.write_varint(1);   // zigzag 2
  writer.write_varint(-65); // zigzag 129 = 0x81 0x01
  EXPECT_EQ(writer.take(), (Bytes{0x01, 0x02, 0x81, 0x01}));
}

TEST(ByteReader, RejectsOverlongVarint) {
  const Bytes data{0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  ByteReader reader(data);
  std::uint32_t v = 0;
  EXPECT_FALSE(reader.read_unsigned_varint(v));
}

TEST(Files, AtomicWriteSetsModeAndRefusesOverwrite) {
  auto dir = std::filesystem::temp_directory_path() / ("bulwark-files-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(make_directories(dir / "a" / "b").ok());
  auto path = dir / "a" / "b" / "secret.key";
  ASSERT_TRUE(write_file_atomic(path, std::string_view("key"), kPrivateFileMode).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = write_file_atomic(path, std::string_view("other"), kPrivateFileMode);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::already_exists);
  EXPECT_EQ(*read_file(path), "key") << "a refused write must not change the file";
  ASSERT_TRUE(write_file_atomic(path, std::string_view("other"), kPrivateFileMode, Overwrite::allow).ok());
  EXPECT_EQ(*read_file(path), "other");
  EXPECT_EQ(read_file(dir / "missing").error().kind, ErrorKind::not_found);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bulwark

#include "base/crc32c.h"

namespace bulwark {
namespace {

TEST(Crc32c, KnownVectorsOnBothPaths) {
  // RFC 3720 B.4 test vectors and the classic check value.
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xe3069283u);
  EXPECT_EQ(crc32c_software(as_bytes("123456789")), 0xe3069283u);
  Bytes zeros(32, 0x00), ones(32, 0xff);
  EXPECT_EQ(crc32c(zeros), 0x8a9136aau);
  EXPECT_EQ(crc32c(ones), 0x62a8ab43u);
  EXPECT_EQ(crc32c_software(ones), 0x62a8ab43u);
}

TEST(Crc32c, IncrementalEqualsWhole) {
  Bytes data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31 + 7);
  ByteView all(data);
  for (std::size_t split : {0u, 1u, 7u, 8u, 9u, 500u, 999u}) {
    EXPECT_EQ(crc32c(all.subspan(split), crc32c(all.first(split))), crc32c(all));
    EXPECT_EQ(crc32c_software(all), crc32c(all));
  }
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

TEST(EditDistance, CountsEditsAndTranspositionsUpToTheLimit) {
  EXPECT_EQ(edit_distance("ssl.client.auth", "ssl.client.auth", 2), 0u);
  EXPECT_EQ(edit_distance("ssl.clinet.auth", "ssl.client.auth", 2), 1u);  // one transposition
  EXPECT_EQ(edit_distance("listners", "listeners", 2), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting", 5), 3u);
  EXPECT_EQ(edit_distance("a", "abcdef", 2), 3u) << "past the limit: limit + 1";
  EXPECT_EQ(edit_distance("abcdef", "fedcba", 2), 3u);
}

TEST(EditDistance, NearestWordIsTheClosestWithinTheLimit) {
  const std::vector<std::string> commands{"init", "issue", "export", "list"};
  EXPECT_EQ(nearest_word("isue", commands), "issue");
  EXPECT_EQ(nearest_word("lsit", commands), "list");
  EXPECT_EQ(nearest_word("frobnicate", commands), std::nullopt);
}

}  // namespace
}  // namespace bulwark
