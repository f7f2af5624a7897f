#include "sim/metadata_machine.h"

#include <string>

#include "cluster/controller.h"
#include "cluster/metadata_loader.h"
#include "cluster/records.h"

namespace bulwark::sim {
namespace {

namespace msg = wire::msg;
using cluster::AnyRecord;
using cluster::MetadataImage;

constexpr int kBrokers = 4;
constexpr int kTopicNames = 12;

cluster::IdSource ids_from(raft::Random& rng) {
  cluster::IdSource ids;
  ids.new_uuid = [&rng] {
    cluster::Uuid id{};
    for (auto& b : id) b = static_cast<uint8_t>(rng.below(256));
    id[0] |= 1;  // never the all-zero id
    return id;
  };
  ids.pick = [&rng](uint32_t n) { return n == 0 ? 0u : static_cast<uint32_t>(rng.below(n)); };
  return ids;
}

// One decision of the kinds a controller makes most: broker lifecycle, topics and ACLs.
std::vector<AnyRecord> decide(const MetadataImage& image, raft::Random& rng) {
  auto bootstrap = cluster::bootstrap_records(image);
  if (!bootstrap.empty()) return bootstrap;
  cluster::ControllerSettings settings;
  settings.default_partitions = 2;
  settings.default_replication_factor = 2;
  auto ids = ids_from(rng);
  const auto broker_id = static_cast<int32_t>(1 + rng.below(kBrokers));
  const auto* broker = image.broker(broker_id);
  switch (rng.below(6)) {
    case 0: {  // a broker registers (again, as after a restart)
      msg::BrokerRegistrationRequest request;
      request.broker_id = broker_id;
      request.incarnation_id = ids.new_uuid();
      request.listeners.push_back({"SSL", "localhost", static_cast<uint16_t>(9092 + broker_id), 1, {}});
      request.features.push_back({"metadata.version", 1, cluster::kMetadataVersion, {}});
      auto decision = cluster::register_broker(image, request, true);
      for (auto& r : decision.records)
        if (auto* reg = std::get_if<cluster::rec::RegisterBrokerRecord>(&r.record)) reg->broker_epoch = image.offset() + 1;
      return decision.records;
    }
    case 1: {  // a heartbeat (unfences a broker that has caught up), then leaders for what lacks one
      if (!broker) return {};
      msg::BrokerHeartbeatRequest request;
      request.broker_id = broker_id;
      request.broker_epoch = broker->epoch;
      request.current_metadata_offset = image.offset();
      auto records = cluster::broker_heartbeat(image, request).records;
      if (records.empty()) return cluster::elect_leaders(image);
      return records;
    }
    case 2:  // a session ends
      return broker ? cluster::fence_broker(image, broker_id) : std::vector<AnyRecord>{};
    case 3:
    case 4: {  // CreateTopics of a name that may exist already (refused: no records)
      msg::CreateTopicsRequest request;
      msg::CreateTopicsRequest::CreatableTopic topic;
      topic.name = "t" + std::to_string(rng.below(kTopicNames));
      topic.num_partitions = -1;
      topic.replication_factor = static_cast<int16_t>(1 + rng.below(2));
      request.topics.push_back(topic);
      return cluster::create_topics(image, request, 7, settings, ids).records;
    }
    default: {  // DeleteTopics
      msg::DeleteTopicsRequest request;
      request.topic_names.push_back("t" + std::to_string(rng.below(kTopicNames)));
      return cluster::delete_topics(image, request, 5).records;
    }
  }
}

std::vector<cluster::PositionedRecord> positioned(const std::vector<AnyRecord>& records, int64_t first, int32_t epoch) {
  std::vector<cluster::PositionedRecord> out;
  for (size_t i = 0; i < records.size(); ++i) out.push_back({records[i], {first + static_cast<int64_t>(i), epoch}});
  return out;
}

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

}  // namespace

bool MetadataMachine::apply(const raft::LogEntry& entry) {
  if (entry.offset != applied_end()) return false;
  cluster::MetadataDelta delta(image_);
  if (entry.kind == raft::EntryKind::data) {
    auto record = cluster::decode_record(entry.payload);
    Status applied = record.ok() ? delta.apply(*record) : Status(record.error());
    if (!applied.ok() && apply_failure_.empty())
      apply_failure_ = "offset " + std::to_string(entry.offset) + ": " + applied.error().message;
  }
  image_ = delta.build({entry.offset, entry.epoch});
  if (entry.kind == raft::EntryKind::leader_change) {
    raft::LeaderChange change;
    if (raft::decode_leader_change(entry.payload, change) && change.leader_id == node_id_ && entry.epoch > active_epoch_) {
      // The ControllerService's rule: active once its epoch's LeaderChange is applied.
      active_epoch_ = entry.epoch;
      working_ = image_;
      next_offset_ = entry.offset + 1;
    }
  }
  return true;
}

std::optional<std::vector<std::vector<uint8_t>>> MetadataMachine::next_proposal(int32_t epoch, int64_t log_end_offset,
                                                                                 raft::Random& rng) {
  if (eager_activation_ && active_epoch_ != epoch) {
    active_epoch_ = epoch;
    working_ = image_;
    next_offset_ = log_end_offset;
  }
  if (active_epoch_ != epoch || !working_) return std::nullopt;
  // Another node's proposals would make the prediction wrong; a fresh leader has none after its own.
  if (log_end_offset != next_offset_) return std::nullopt;
  pending_ = decide(*working_, rng);
  if (pending_.empty()) return std::nullopt;
  std::vector<std::vector<uint8_t>> payloads;
  for (const auto& record : pending_) payloads.push_back(cluster::encode_record(record));
  return payloads;
}

bool MetadataMachine::mark_proposed(int64_t first_offset) {
  if (first_offset != next_offset_) return false;
  auto after = cluster::apply_records(working_, positioned(pending_, first_offset, active_epoch_));
  if (!after.ok()) {
    apply_failure_ = "the controller's own decision does not apply to its working image: " + after.error().message;
    return true;
  }
  working_ = *after;
  next_offset_ += static_cast<int64_t>(pending_.size());
  pending_.clear();
  return true;
}

// Snapshot bytes: the position (int64 offset, int32 epoch), then cluster::encode_snapshot of the image.
std::vector<uint8_t> MetadataMachine::snapshot() const {
  std::vector<uint8_t> out;
  put(out, static_cast<uint64_t>(image_->offset()), 8);
  put(out, static_cast<uint32_t>(image_->position().epoch), 4);
  auto records = cluster::encode_snapshot(*image_);
  out.insert(out.end(), records.begin(), records.end());
  return out;
}

bool MetadataMachine::load(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 12) return false;
  uint64_t offset = 0;
  uint32_t epoch = 0;
  for (int i = 0; i < 8; ++i) offset = (offset << 8) | bytes[static_cast<size_t>(i)];
  for (int i = 8; i < 12; ++i) epoch = (epoch << 8) | bytes[static_cast<size_t>(i)];
  auto image = cluster::decode_snapshot(ByteView(bytes).subspan(12),
                                        {static_cast<int64_t>(offset), static_cast<int32_t>(epoch)});
  if (!image.ok()) return false;
  image_ = *image;
  active_epoch_ = -1;
  working_.reset();
  return true;
}

}  // namespace bulwark::sim
