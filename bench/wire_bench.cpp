// Record batch costs on the broker's hot paths: CRC-32C (hardware vs portable), produce-path
// validation (split + header + CRC, no decompression), and decode / encode per codec for the paths
// that need the records themselves.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "wire/compression.h"
#include "wire/record_batch.h"

using namespace bulwark;
using namespace bulwark::wire;

namespace {

Bytes random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

// Log-like records: compressible text with some variation, 100-byte values, short keys, a header.
std::vector<Record> sample_records(std::size_t n, std::size_t value_size) {
  std::mt19937 rng(42);
  std::vector<Record> out;
  out.reserve(n);
  const char* words[] = {"GET ", "POST ", "/api/v1/orders ", "200 ", "404 ", "user=", "latency_ms=", "ok "};
  for (std::size_t i = 0; i < n; ++i) {
    Record r;
    r.offset = static_cast<std::int64_t>(i);
    r.timestamp = 1'700'000'000'000LL + static_cast<std::int64_t>(i);
    std::string key = "user-" + std::to_string(rng() % 1000);
    r.key = Bytes(key.begin(), key.end());
    std::string value;
    while (value.size() < value_size) value += words[rng() % 8] + std::to_string(rng() % 100) + " ";
    value.resize(value_size);
    r.value = Bytes(value.begin(), value.end());
    r.headers.push_back({"trace-id", Bytes{'a', 'b', 'c', 'd'}});
    out.push_back(std::move(r));
  }
  return out;
}

void BM_Crc32cHardware(benchmark::State& state) {
  if (!crc32c_has_hardware()) {
    state.SkipWithError("no SSE4.2 crc32 instruction");
    return;
  }
  Bytes data = random_bytes(static_cast<std::size_t>(state.range(0)), 1);
  for (auto _ : state) benchmark::DoNotOptimize(crc32c(ByteView(data)));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cHardware)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20);

void BM_Crc32cSoftware(benchmark::State& state) {
  Bytes data = random_bytes(static_cast<std::size_t>(state.range(0)), 1);
  for (auto _ : state) benchmark::DoNotOptimize(crc32c_software(ByteView(data)));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cSoftware)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20);

// Produce path: a request's records blob split into batches, each header parsed and CRC checked.
// Argument: records per batch (100-byte values); the blob holds 64 batches.
void BM_ValidateBatches(benchmark::State& state) {
  auto records = sample_records(static_cast<std::size_t>(state.range(0)), 100);
  Bytes blob;
  for (int i = 0; i < 64; ++i) {
    auto batch = encode_batch(records, BatchOptions{.compression = static_cast<Compression>(state.range(1))});
    blob.insert(blob.end(), batch->begin(), batch->end());
  }
  for (auto _ : state) {
    auto split = split_batches(ByteView(blob));
    bool all_ok = split.ok();
    for (ByteView b : split->batches) all_ok &= parse_batch_header(b).ok() && batch_crc_ok(b);
    if (!all_ok) state.SkipWithError("validation failed");
    benchmark::DoNotOptimize(all_ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * blob.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);  // batches
}
BENCHMARK(BM_ValidateBatches)->Args({1, 0})->Args({100, 0})->Args({1000, 0})->Args({1000, 4});

// Header + CRC for one batch without split (what the produce handler does per batch).
void BM_HeaderAndCrc(benchmark::State& state) {
  auto batch = encode_batch(sample_records(static_cast<std::size_t>(state.range(0)), 100), BatchOptions{});
  for (auto _ : state) {
    auto header = parse_batch_header(ByteView(*batch));
    benchmark::DoNotOptimize(header.ok() && batch_crc_ok(ByteView(*batch)));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch->size()));
}
BENCHMARK(BM_HeaderAndCrc)->Arg(1)->Arg(10)->Arg(160);

// Bytes processed = uncompressed records section, so codecs compare on the same scale.
std::size_t plain_size(const std::vector<Record>& records) {
  return encode_batch(records, BatchOptions{})->size() - kBatchHeaderSize;
}

void BM_DecodeRecords(benchmark::State& state) {
  auto codec = static_cast<Compression>(state.range(0));
  auto records = sample_records(1000, 100);
  auto batch = encode_batch(records, BatchOptions{.compression = codec});
  for (auto _ : state) {
    auto decoded = decode_records(ByteView(*batch));
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
  state.SetLabel(std::string(compression_name(codec)) + " ratio " +
                 std::to_string(static_cast<double>(plain_size(records)) / static_cast<double>(batch->size())));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * plain_size(records)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
}
BENCHMARK(BM_DecodeRecords)->DenseRange(0, 4);

void BM_EncodeBatch(benchmark::State& state) {
  auto codec = static_cast<Compression>(state.range(0));
  auto records = sample_records(1000, 100);
  for (auto _ : state) {
    auto batch = encode_batch(records, BatchOptions{.compression = codec});
    if (!batch.ok()) state.SkipWithError(batch.error().message.c_str());
    benchmark::DoNotOptimize(batch);
  }
  state.SetLabel(std::string(compression_name(codec)));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * plain_size(records)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
}
BENCHMARK(BM_EncodeBatch)->DenseRange(0, 4);

}  // namespace

BENCHMARK_MAIN();
