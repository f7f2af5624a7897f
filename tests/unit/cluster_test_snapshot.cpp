// Snapshots: image -> records -> image is the identity on random images (seeded, reproducible), the
// records survive the framing, and readers see whole images while a writer publishes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "cluster/image.h"
#include "cluster_test_records_builders.h"

namespace bulwark::cluster {
namespace {

using namespace builders;

// Random but valid metadata histories: every record is built to fit the image so far, with some
// records that do not fit mixed in (they must fail and change nothing).
class RandomHistory {
 public:
  explicit RandomHistory(std::uint64_t seed) : rng_(seed) {}

  ImagePtr build(int steps) {
    ImagePtr image = apply_ok(MetadataImage::empty(), {feature("metadata.version", 19)});
    for (int i = 0; i < steps; ++i) {
      MetadataDelta delta(image);
      const int batch = pick(1, 5);
      for (int j = 0; j < batch; ++j) {
        AnyRecord r = next(*image, delta);
        Status s = delta.apply(r);
        if (!s.ok()) ADD_FAILURE() << r.name() << ": " << s.error().message;
        image = delta.build(LogPosition{image->offset() + 1, pick(1, 3)});
      }
    }
    return image;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return pick(0, 1) == 1; }

  std::vector<std::int32_t> some_brokers() {
    std::vector<std::int32_t> out;
    for (int b = 1; b <= 5; ++b) {
      if (coin()) out.push_back(b);
    }
    return out;
  }

  // A record that fits `image` (the delta is built after each record, so image is current).
  AnyRecord next(const MetadataImage& image, MetadataDelta&) {
    switch (pick(0, 12)) {
      case 0:
      case 1: {
        const auto id = static_cast<std::int32_t>(pick(1, 5));
        AnyRecord r = broker(id, pick(1, 1000), coin());
        auto& b = std::get<rec::RegisterBrokerRecord>(r.record);
        if (coin()) b.rack = std::nullopt;
        b.in_controlled_shutdown = coin();
        if (coin()) b.log_dirs = {uuid(static_cast<std::uint32_t>(pick(0, 9)), 0xDD)};
        auto& f = b.features.emplace_back();
        f.name = "metadata.version";
        f.min_supported_version = 1;
        f.max_supported_version = static_cast<std::int16_t>(pick(1, 20));
        return r;
      }
      case 2:
        if (!image.brokers().empty()) {
          const auto& b =
              std::next(image.brokers().begin(), pick(0, static_cast<int>(image.brokers().size()) - 1))->second;
          rec::BrokerRegistrationChangeRecord r;
          r.broker_id = b.id;
          r.broker_epoch = b.epoch;
          r.fenced = static_cast<std::int8_t>(pick(-1, 1));
          r.in_controlled_shutdown = static_cast<std::int8_t>(pick(0, 1));
          return make_record(r);
        }
        [[fallthrough]];
      case 3: {
        const std::uint32_t n = next_topic_++;
        return topic("topic-" + std::to_string(n), uuid(n));
      }
      case 4:
      case 5:
        if (image.topic_count() > 0) {
          const TopicImage* t =
              image.topics()[static_cast<std::size_t>(pick(0, static_cast<int>(image.topic_count()) - 1))];
          AnyRecord r =
              partition(t->id, pick(0, 3), some_brokers(), some_brokers(), pick(-1, 5), pick(0, 9), pick(0, 9));
          auto& p = std::get<rec::PartitionRecord>(r.record);
          if (coin()) p.eligible_leader_replicas = some_brokers();
          p.leader_recovery_state = static_cast<std::int8_t>(pick(0, 1));
          if (coin()) {
            for (std::size_t k = 0; k < p.replicas.size(); ++k)
              p.directories.push_back(uuid(static_cast<std::uint32_t>(k), 0xDD));
          }
          return r;
        }
        return make_record(rec::NoOpRecord{});
      case 6:
        for (const TopicImage* t : image.topics()) {
          if (t->partitions.empty()) continue;
          rec::PartitionChangeRecord r;
          r.topic_id = t->id;
          r.partition_id = t->partitions.begin()->first;
          if (coin()) r.isr = some_brokers();
          if (coin()) r.leader = pick(-2, 5);
          if (coin()) r.replicas = some_brokers();
          if (coin()) r.removing_replicas = some_brokers();
          if (coin()) r.last_known_elr = some_brokers();
          return make_record(r);
        }
        return make_record(rec::NoOpRecord{});
      case 7:
        if (image.topic_count() > 0 && pick(0, 3) == 0) {
          rec::RemoveTopicRecord r;
          r.topic_id = image.topics().front()->id;
          return make_record(r);
        }
        [[fallthrough]];
      case 8: {
        const auto type = coin() ? ConfigResourceType::topic : ConfigResourceType::broker;
        const std::string name = type == ConfigResourceType::topic ? "topic-" + std::to_string(pick(0, 5))
                                                                   : (coin() ? "" : std::to_string(pick(1, 3)));
        std::optional<std::string> value;
        if (pick(0, 3) > 0) value = std::to_string(pick(0, 1000));
        return config(type, name, "key." + std::to_string(pick(0, 3)), value);
      }
      case 9:
        if (image.acl_count() > 0 && coin()) {
          rec::RemoveAccessControlEntryRecord r;
          r.id = image.acls().front().id;
          return make_record(r);
        }
        return acl(uuid(next_acl_++, 0xAC), "User:u" + std::to_string(pick(0, 9)),
                   static_cast<std::int8_t>(pick(2, 14)));
      case 10:
        return scram("user" + std::to_string(pick(0, 3)), static_cast<std::int8_t>(pick(1, 2)), pick(4096, 9000));
      case 11: {
        rec::ProducerIdsRecord r;
        r.broker_id = pick(1, 5);
        r.broker_epoch = pick(1, 100);
        r.next_producer_id = image.producer_ids().next_producer_id + 1000;
        return make_record(r);
      }
      default: {
        rec::ClientQuotaRecord q;
        auto& e = q.entity.emplace_back();
        e.entity_type = coin() ? "user" : "client-id";
        if (coin()) e.entity_name = "n" + std::to_string(pick(0, 3));
        q.key = "request_percentage";
        q.value = pick(1, 100) + 0.25;
        q.remove = pick(0, 3) == 0;
        return make_record(q);
      }
    }
  }

  std::mt19937_64 rng_;
  std::uint32_t next_topic_ = 100;
  std::uint32_t next_acl_ = 1;
};

// With BULWARK_FUZZ_SEEDS=<dir>, a few snapshots are written there as fuzz_metadata_records seeds:
// each record preceded by its big-endian u16 length.
void write_snapshot_seed(std::uint64_t seed, const std::vector<AnyRecord>& records) {
  const char* dir = std::getenv("BULWARK_FUZZ_SEEDS");
  if (dir == nullptr || seed > 3) return;
  ByteWriter w;
  for (const AnyRecord& r : records) {
    const Bytes bytes = encode_record(r);
    if (bytes.size() > 0xffff) continue;
    w.write_u16(static_cast<std::uint16_t>(bytes.size()));
    w.write_bytes(bytes);
  }
  std::ofstream out(std::string(dir) + "/snapshot-" + std::to_string(seed), std::ios::binary);
  out.write(reinterpret_cast<const char*>(w.buffer().data()), static_cast<std::streamsize>(w.size()));
}

TEST(Snapshot, RandomImagesRebuildFromTheirRecords) {
  std::size_t partitions = 0, brokers = 0, configs = 0, acls = 0, scram = 0, quotas = 0, producer_blocks = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    ImagePtr image = RandomHistory(seed).build(40);
    for (const TopicImage* t : image->topics()) partitions += t->partitions.size();
    brokers += image->brokers().size();
    configs += image->config_resources().size();
    acls += image->acl_count();
    scram += image->scram_credentials().size();
    quotas += image->client_quotas().size();
    producer_blocks += image->producer_ids().next_producer_id > 0 ? 1 : 0;
    const std::vector<AnyRecord> records = snapshot_records(*image);
    write_snapshot_seed(seed, records);
    auto rebuilt = image_from_snapshot(records, image->position());
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
    EXPECT_TRUE(**rebuilt == *image);
    EXPECT_EQ((*rebuilt)->digest(), image->digest());
    // Through the framing, as a snapshot file would hold them.
    std::vector<AnyRecord> decoded;
    for (const AnyRecord& r : records) {
      auto d = decode_record(encode_record(r));
      ASSERT_TRUE(d.ok()) << d.error().message;
      decoded.push_back(std::move(*d));
    }
    EXPECT_EQ(decoded, records);
    // The snapshot of the rebuilt image is the same list.
    EXPECT_EQ(snapshot_records(**rebuilt), records);
  }
  // The histories reach every section (so the identity above is not about empty images).
  EXPECT_GT(partitions, 40u);
  EXPECT_GT(brokers, 40u);
  EXPECT_GT(configs, 40u);
  EXPECT_GT(acls, 10u);
  EXPECT_GT(scram, 40u);
  EXPECT_GT(quotas, 10u);
  EXPECT_GT(producer_blocks, 10u);
}

TEST(Snapshot, RandomHistoriesAreDeterministicAndDiffer) {
  EXPECT_EQ(RandomHistory(7).build(30)->digest(), RandomHistory(7).build(30)->digest());
  EXPECT_NE(RandomHistory(7).build(30)->digest(), RandomHistory(8).build(30)->digest());
}

TEST(Snapshot, SectionOrderStartsWithMetadataVersion) {
  ImagePtr image = apply_ok(MetadataImage::empty(), {
                                                        feature("kraft.version", 1),
                                                        broker(1, 5),
                                                        topic("t", uuid(1)),
                                                        partition(uuid(1), 0, {1}, {1}, 1),
                                                        config(ConfigResourceType::topic, "t", "k", "v"),
                                                        feature("metadata.version", 19),
                                                        acl(uuid(1, 0xAC), "User:a"),
                                                        scram("a", 1),
                                                    });
  std::vector<std::string_view> names;
  for (const AnyRecord& r : snapshot_records(*image)) names.push_back(r.name());
  EXPECT_EQ(names, (std::vector<std::string_view>{"FeatureLevelRecord", "FeatureLevelRecord", "RegisterBrokerRecord",
                                                  "TopicRecord", "PartitionRecord", "ConfigRecord",
                                                  "AccessControlEntryRecord", "UserScramCredentialRecord"}));
  EXPECT_EQ(std::get<rec::FeatureLevelRecord>(snapshot_records(*image)[0].record).name, "metadata.version");
  EXPECT_TRUE(snapshot_records(*MetadataImage::empty()).empty());
}

TEST(Snapshot, BadSnapshotNamesTheRecord) {
  std::vector<AnyRecord> records = {topic("t", uuid(1)), partition(uuid(2), 0, {1}, {1}, 1)};
  auto r = image_from_snapshot(records, LogPosition{5, 1});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("snapshot record 1"), std::string::npos) << r.error().message;
}

TEST(ImagePublisher, ReadersSeeWholeImagesWhileWriterPublishes) {
  ImagePublisher publisher;
  constexpr int kImages = 300;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad{0};
  auto reader = [&] {
    std::int64_t last = -1;
    while (!done.load()) {
      ImagePtr image = publisher.current();
      // Image at offset n holds topics t0..tn-1, each with one partition: a torn image would not.
      const auto n = image->offset() + 1;
      if (image->offset() < last || static_cast<std::int64_t>(image->topic_count()) != n) ++bad;
      for (std::int64_t k = 0; k < n; ++k) {
        if (image->partition("t" + std::to_string(k), 0) == nullptr) {
          ++bad;
          break;
        }
      }
      last = image->offset();
      ++reads;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  // The readers are running before the writer starts (on a busy machine the writer could otherwise
  // finish before any reader was scheduled, and nothing would be checked).
  while (reads.load() < 3) std::this_thread::yield();
  MetadataDelta delta(publisher.current());
  for (int i = 0; i < kImages; ++i) {
    const auto id = uuid(static_cast<std::uint32_t>(i + 1));
    ASSERT_TRUE(delta.apply(topic("t" + std::to_string(i), id)).ok());
    ASSERT_TRUE(delta.apply(partition(id, 0, {1}, {1}, 1)).ok());
    ASSERT_TRUE(publisher.publish(delta.build(LogPosition{i, 1})).ok());
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(publisher.current()->offset(), kImages - 1);
}

TEST(ImagePublisher, RefusesToGoBack) {
  ImagePublisher publisher;
  MetadataDelta delta(publisher.current());
  ASSERT_TRUE(publisher.publish(delta.build(LogPosition{10, 1})).ok());
  Status back = publisher.publish(delta.build(LogPosition{5, 1}));
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("behind"), std::string::npos);
  EXPECT_FALSE(publisher.publish(nullptr).ok());
  EXPECT_EQ(publisher.current()->offset(), 10);
}

}  // namespace
}  // namespace bulwark::cluster
