// The metadata image at scale: 10,000 topics of 10 partitions each (3 replicas), built from records as a
// node applies them. Reports the heap the image holds (bytes per partition, from mallinfo2 before and
// after), the time to apply all records, and the cost of the delta for one new topic on top of it
// (images share unchanged topics; the map of topics is copied, which this shows).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <string>
#include <vector>

#include "cluster/image.h"
#include "cluster/records.h"

namespace {

using namespace bulwark::cluster;

constexpr int kTopics = 10000;
constexpr int kPartitions = 10;

Uuid topic_id(int i) {
  Uuid id{};
  id[0] = 1;
  for (int b = 0; b < 4; ++b) id[12 + b] = static_cast<std::uint8_t>(i >> (8 * (3 - b)));
  return id;
}

std::vector<PositionedRecord> cluster_records(int topics) {
  std::vector<PositionedRecord> out;
  std::int64_t offset = 0;
  auto add = [&](AnyRecord r) { out.push_back({std::move(r), {offset++, 1}}); };
  rec::FeatureLevelRecord mv;
  mv.name = "metadata.version";
  mv.feature_level = 19;
  add(make_record(mv));
  for (int b = 0; b < 3; ++b) {
    rec::RegisterBrokerRecord r;
    r.broker_id = b;
    r.broker_epoch = offset;
    r.incarnation_id = topic_id(1000000 + b);
    r.end_points.push_back({"SSL", "localhost", static_cast<std::uint16_t>(9092 + b), 1, {}});
    r.fenced = false;
    add(make_record(r));
  }
  for (int t = 0; t < topics; ++t) {
    rec::TopicRecord topic;
    topic.name = "topic-" + std::to_string(t);
    topic.topic_id = topic_id(t);
    add(make_record(topic));
    for (int p = 0; p < kPartitions; ++p) {
      rec::PartitionRecord partition;
      partition.partition_id = p;
      partition.topic_id = topic.topic_id;
      partition.replicas = {p % 3, (p + 1) % 3, (p + 2) % 3};
      partition.isr = partition.replicas;
      partition.leader = p % 3;
      partition.leader_epoch = 0;
      partition.partition_epoch = 0;
      add(make_record(partition));
    }
  }
  return out;
}

void BM_ImageOf10kTopics(benchmark::State& state) {
  const auto records = cluster_records(kTopics);
  std::size_t image_bytes = 0;
  for (auto _ : state) {
    const auto before = mallinfo2().uordblks;
    auto image = apply_records(MetadataImage::empty(), records);
    if (!image.ok()) state.SkipWithError(image.error().message.c_str());
    image_bytes = mallinfo2().uordblks - before;
    benchmark::DoNotOptimize(image);
  }
  state.counters["records"] = static_cast<double>(records.size());
  state.counters["image_MiB"] = static_cast<double>(image_bytes) / (1 << 20);
  state.counters["bytes_per_partition"] = static_cast<double>(image_bytes) / (kTopics * kPartitions);
  state.counters["records_per_s"] =
      benchmark::Counter(static_cast<double>(records.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ImageOf10kTopics)->Unit(benchmark::kMillisecond)->Iterations(3);

// One more topic on top of the 10,000: the delta copies what changes, not the image.
void BM_OneTopicDeltaOn10kTopics(benchmark::State& state) {
  const auto records = cluster_records(kTopics);
  auto base = apply_records(MetadataImage::empty(), records);
  if (!base.ok()) return state.SkipWithError(base.error().message.c_str());
  auto extra = cluster_records(kTopics + 1);
  std::vector<PositionedRecord> one(extra.end() - (1 + kPartitions), extra.end());
  for (auto _ : state) {
    auto next = apply_records(*base, one);
    benchmark::DoNotOptimize(next);
  }
}
BENCHMARK(BM_OneTopicDeltaOn10kTopics)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
