// Partition log throughput: appends of 16 KiB batches with and without fdatasync per batch, the group
// commit of flush.messages=1 with several appending threads, the disk's own floor (pwrite + fdatasync
// of 16 KiB in a loop, no log) and sequential reads. Run from a build dir; the log lives under $TMPDIR
// (the disk being measured). Compare appends/s of BM_GroupCommit/threads:N with BM_DiskSyncWriteFloor.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/log.h"
#include "storage/log.h"
#include "wire/record_batch.h"

namespace {

using namespace bulwark;
namespace fs = std::filesystem;

fs::path fresh_dir() {
  std::string pattern = (fs::temp_directory_path() / "bulwark-storage-bench-XXXXXX").string();
  return fs::path(::mkdtemp(pattern.data())) / "bench-0";
}

// One batch of 16 records of ~1 KiB: about 16 KiB on disk.
Bytes batch_16k() {
  std::vector<wire::Record> records;
  for (int i = 0; i < 16; ++i) {
    wire::Record r;
    r.offset = i;
    r.timestamp = 1700000000000;
    r.value = Bytes(1000, static_cast<std::uint8_t>('a' + i));
    records.push_back(std::move(r));
  }
  return *wire::encode_batch(records, wire::BatchOptions{});
}

void append_bench(benchmark::State& state, std::int64_t flush_messages) {
  log::set_level(log::Level::warn);
  const auto dir = fresh_dir();
  storage::LogConfig config;
  config.segment_bytes = 256 << 20;
  config.flush_interval_messages = flush_messages;
  auto plog = storage::PartitionLog::open(dir, config);
  if (!plog.ok()) {
    state.SkipWithError(plog.error().message.c_str());
    return;
  }
  const Bytes batch = batch_16k();
  storage::AppendOptions options;
  for (auto _ : state) {
    auto r = (*plog)->append(batch, options);
    if (!r.ok()) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch.size()));
  state.counters["batch_bytes"] = static_cast<double>(batch.size());
  plog->reset();
  fs::remove_all(dir.parent_path());
}

void BM_AppendNoFlush(benchmark::State& state) { append_bench(state, INT64_MAX); }
void BM_AppendFlushEachBatch(benchmark::State& state) { append_bench(state, 1); }

// flush.messages=1 with state.threads() appenders on one log: appends waiting while an fdatasync runs
// share the next one, so appends/s grows with the threads while fdatasyncs/s stays near the floor.
std::shared_ptr<storage::PartitionLog> shared_log;
fs::path shared_dir;

void BM_GroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    log::set_level(log::Level::warn);
    shared_dir = fresh_dir();
    storage::LogConfig config;
    config.segment_bytes = 1 << 30;
    config.flush_interval_messages = 1;
    auto opened = storage::PartitionLog::open(shared_dir, config);
    if (opened.ok()) shared_log = *opened;
    else state.SkipWithError(opened.error().message.c_str());
  }
  const Bytes batch = batch_16k();
  for (auto _ : state) {
    if (!shared_log || !shared_log->append(batch, storage::AppendOptions{}).ok()) {
      state.SkipWithError("append failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    shared_log.reset();
    fs::remove_all(shared_dir.parent_path());
  }
}

// The disk's own rate of 16 KiB synchronous appends: the floor BM_AppendFlushEachBatch is measured against.
void BM_DiskSyncWriteFloor(benchmark::State& state) {
  const auto dir = fresh_dir().parent_path();
  const int fd = ::open((dir / "floor").c_str(), O_CREAT | O_WRONLY, 0600);
  const Bytes block = batch_16k();
  std::uint64_t offset = 0;
  for (auto _ : state) {
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
    offset += block.size();
  }
  state.SetItemsProcessed(state.iterations());
  ::close(fd);
  fs::remove_all(dir);
}

void BM_ReadSequential(benchmark::State& state) {
  log::set_level(log::Level::warn);
  const auto dir = fresh_dir();
  storage::LogConfig config;
  config.segment_bytes = 64 << 20;
  auto plog = storage::PartitionLog::open(dir, config);
  const Bytes batch = batch_16k();
  for (int i = 0; i < 8192; ++i) (void)(*plog)->append(batch, storage::AppendOptions{});  // 128 MiB
  const std::int64_t leo = (*plog)->log_end_offset();
  const auto max_bytes = static_cast<std::size_t>(state.range(0));
  std::int64_t offset = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    auto f = (*plog)->read(offset, max_bytes, leo);
    if (!f.ok()) {
      state.SkipWithError(f.error().message.c_str());
      break;
    }
    bytes += static_cast<std::int64_t>(f->bytes.size());
    auto split = wire::split_batches(f->bytes);
    offset = wire::parse_batch_header(split->batches.back())->last_offset() + 1;
    if (offset >= leo) offset = 0;
  }
  state.SetBytesProcessed(bytes);
  plog->reset();
  fs::remove_all(dir.parent_path());
}

// Real time: fdatasync waits off-CPU, and that wait is the cost being measured.
BENCHMARK(BM_AppendNoFlush)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_AppendFlushEachBatch)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_DiskSyncWriteFloor)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_GroupCommit)->Threads(1)->Threads(4)->Threads(16)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_ReadSequential)->Arg(64 << 10)->Arg(1 << 20)->MinTime(2.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
