// A real process killed with SIGKILL while appending with flush.messages=1, and the LogManager.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "base/log.h"
#include "storage/log.h"
#include "wire/record_batch.h"

namespace bulwark::storage {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

Bytes tagged_batch(std::int64_t tag, int records, std::size_t value_size) {
  std::vector<wire::Record> rs;
  for (int i = 0; i < records; ++i) {
    wire::Record r;
    r.offset = i;
    r.timestamp = 1700000000000 + tag;
    std::string value = "crash-" + std::to_string(tag) + "-" + std::to_string(i) + "-";
    value.resize(std::max(value.size(), value_size), 'z');
    r.value = Bytes(value.begin(), value.end());
    rs.push_back(std::move(r));
  }
  return *wire::encode_batch(rs, wire::BatchOptions{});
}

struct Ack {
  std::int64_t offset;
  std::int64_t tag;
  std::int32_t records;
};

LogConfig crash_config() {
  LogConfig c;
  c.segment_bytes = 64 * 1024;
  c.flush_interval_messages = 1;  // fdatasync before append returns
  c.retention_ms = -1;
  return c;
}

// Child: append until killed, reporting each acknowledged batch through the pipe.
[[noreturn]] void writer(const fs::path& dir, int fd, std::int64_t first_tag) {
  auto log = PartitionLog::open(dir, crash_config());
  if (!log.ok()) ::_exit(3);
  std::mt19937 rng(static_cast<unsigned>(first_tag));
  for (std::int64_t tag = first_tag; tag < first_tag + 1000000; ++tag) {
    const int records = 1 + static_cast<int>(rng() % 3);
    auto r = (*log)->append(tagged_batch(tag, records, 50 + rng() % 3000), AppendOptions{});
    if (!r.ok()) ::_exit(2);
    Ack ack{r->base_offset, tag, records};
    if (::write(fd, &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack)) ::_exit(4);
  }
  ::_exit(0);
}

TEST(StorageCrash, AcknowledgedBatchesSurviveSigkill) {
  TempDir tmp;
  const auto dir = tmp.path() / "crash-0";
  std::mt19937 rng(std::random_device{}());
  std::int64_t total_acks = 0;
  for (int round = 0; round < 4; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const std::int64_t first_tag = round * 1000000;
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      writer(dir, fds[1], first_tag);
    }
    ::close(fds[1]);
    const int delay_ms = 100 + static_cast<int>(rng() % 400);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    std::vector<Ack> acks;
    Ack ack{};
    while (::read(fds[0], &ack, sizeof ack) == static_cast<ssize_t>(sizeof ack)) acks.push_back(ack);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself (exit " << WEXITSTATUS(status) << ")";
    ASSERT_FALSE(acks.empty()) << "no acknowledged append within " << delay_ms << " ms";
    total_acks += static_cast<std::int64_t>(acks.size());

    auto log = PartitionLog::open(dir, crash_config());
    ASSERT_TRUE(log.ok()) << log.error().message;
    const std::int64_t leo = (*log)->log_end_offset();
    EXPECT_GE(leo, acks.back().offset + acks.back().records) << "round " << round;
    for (const auto& a : acks) {
      auto f = (*log)->read(a.offset, 1, leo);
      ASSERT_TRUE(f.ok()) << f.error().message;
      auto split = wire::split_batches(f->bytes);
      ASSERT_TRUE(split.ok());
      ASSERT_FALSE(split->batches.empty()) << "offset " << a.offset << " missing after SIGKILL";
      ByteView b = split->batches[0];
      ASSERT_TRUE(wire::batch_crc_ok(b));
      EXPECT_EQ(wire::parse_batch_header(b)->base_offset, a.offset);
      auto records = wire::decode_records(b);
      ASSERT_TRUE(records.ok());
      ASSERT_EQ(records->size(), static_cast<std::size_t>(a.records));
      const std::string want = "crash-" + std::to_string(a.tag) + "-0-";
      EXPECT_EQ(as_chars(*(*records)[0].value).substr(0, want.size()), want);
    }
    // The recovered log takes appends at its end.
    auto next = (*log)->append(tagged_batch(-1, 1, 10), AppendOptions{});
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->base_offset, leo);
  }
  RecordProperty("acknowledged_batches", static_cast<int>(total_acks));
  EXPECT_GT(total_acks, 10);
}

TEST(LogManager, ParsesPartitionDirectoryNames) {
  auto tp = parse_partition_dir_name("my-topic-3-12");
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->topic, "my-topic-3");
  EXPECT_EQ(tp->partition, 12);
  EXPECT_FALSE(parse_partition_dir_name("nodash").has_value());
  EXPECT_FALSE(parse_partition_dir_name("topic-").has_value());
  EXPECT_FALSE(parse_partition_dir_name("-3").has_value());
  EXPECT_FALSE(parse_partition_dir_name("topic-x1").has_value());
  EXPECT_EQ(partition_dir_name({"a.b_c-d", 7}), "a.b_c-d-7");
}

// Partition directories only (the log dir also holds .lock and checkpoint files).
std::ptrdiff_t count_dirs(const fs::path& dir) {
  std::ptrdiff_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) n += entry.is_directory() ? 1 : 0;
  return n;
}

TEST(LogManager, CreatesBalancesListsRemovesAndReopens) {
  TempDir tmp;
  const auto d1 = tmp.path() / "d1", d2 = tmp.path() / "d2";
  LogConfig config;
  {
    auto manager = LogManager::open({d1, d2}, config);
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    for (int p = 0; p < 4; ++p) ASSERT_TRUE((*manager)->get_or_create({"orders-eu", p}, config).ok());
    EXPECT_EQ(count_dirs(d1), 2);
    EXPECT_EQ(count_dirs(d2), 2);
    auto log = (*manager)->get({"orders-eu", 2});
    ASSERT_NE(log, nullptr);
    auto same = (*manager)->get_or_create({"orders-eu", 2}, config);
    EXPECT_EQ(same->get(), log.get());
    ASSERT_TRUE(log->append(tagged_batch(1, 2, 10), AppendOptions{}).ok());
    EXPECT_EQ((*manager)->get({"orders-eu", 9}), nullptr);
    EXPECT_EQ((*manager)->get_or_create({"", 0}, config).code(), LogError::invalid_argument);

    auto doomed = (*manager)->get({"orders-eu", 0});
    const auto doomed_dir = doomed->dir();
    ASSERT_TRUE((*manager)->remove({"orders-eu", 0}).ok());
    EXPECT_FALSE(fs::exists(doomed_dir));
    EXPECT_EQ((*manager)->remove({"orders-eu", 0}).code(), LogError::not_found);
    EXPECT_EQ(doomed->read(0, 100, 10).code(), LogError::io) << "a deleted partition is closed";
    EXPECT_EQ((*manager)->list().size(), 3u);
  }
  // A deletion interrupted by a crash, and a directory that is not a partition.
  fs::create_directories(d1 / "orders-eu-7.0123456789abcdef0123456789abcdef-delete");
  fs::create_directories(d2 / "lost+found");
  auto manager = LogManager::open({d1, d2}, config);
  ASSERT_TRUE(manager.ok()) << manager.error().message;
  EXPECT_FALSE(fs::exists(d1 / "orders-eu-7.0123456789abcdef0123456789abcdef-delete"));
  auto listed = (*manager)->list();
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0], (TopicPartition{"orders-eu", 1}));
  EXPECT_EQ((*manager)->get({"orders-eu", 2})->log_end_offset(), 2);
  // The next partition goes to the emptier dir.
  auto created = (*manager)->get_or_create({"new", 0}, config);
  ASSERT_TRUE(created.ok());
  const auto parent = (*created)->dir().parent_path();
  const auto in_d1 = count_dirs(d1);
  const auto in_d2 = count_dirs(d2) - 1;  // lost+found
  EXPECT_EQ(in_d1, 2);
  EXPECT_EQ(in_d2, 2);
  EXPECT_EQ(parent, d1) << "d1 had one partition left, d2 two";
}

}  // namespace
}  // namespace bulwark::storage
