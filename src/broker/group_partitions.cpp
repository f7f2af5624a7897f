#include "broker/group_partitions.h"

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "broker/controller_channel.h"
#include "broker/state.h"
#include "groups/log_store.h"
#include "wire/generated/create_topics.h"

namespace bulwark::broker {

std::int32_t offsets_partition_for(const std::string& group_id, std::int32_t partitions) {
  // Java's String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, in 32-bit two's complement.
  std::uint32_t hash = 0;
  auto add = [&hash](std::uint32_t unit) { hash = hash * 31 + unit; };
  for (std::size_t i = 0; i < group_id.size();) {
    auto byte = static_cast<unsigned char>(group_id[i]);
    std::uint32_t code_point = byte;
    std::size_t length = 1;
    if (byte >= 0xf0) length = 4, code_point = byte & 0x07;
    else if (byte >= 0xe0) length = 3, code_point = byte & 0x0f;
    else if (byte >= 0xc0) length = 2, code_point = byte & 0x1f;
    if (i + length > group_id.size()) length = 1, code_point = byte;  // malformed tail: bytes as they are
    for (std::size_t k = 1; k < length; ++k) code_point = (code_point << 6) | (static_cast<unsigned char>(group_id[i + k]) & 0x3f);
    if (code_point >= 0x10000) {  // a surrogate pair in UTF-16
      code_point -= 0x10000;
      add(0xd800 + (code_point >> 10));
      add(0xdc00 + (code_point & 0x3ff));
    } else {
      add(code_point);
    }
    i += length;
  }
  const auto signed_hash = static_cast<std::int32_t>(hash);
  // Kafka's Utils.abs: Integer.MIN_VALUE maps to 0 (Math.abs would leave it negative).
  const std::int32_t positive = signed_hash == INT32_MIN ? 0 : (signed_hash < 0 ? -signed_hash : signed_hash);
  return partitions > 0 ? positive % partitions : 0;
}

Status ReplicatedGroupStore::append(const std::vector<groups::StoredRecord>& records) {
  if (records.empty()) return Status::success();
  const auto now = state_.now_ms();
  auto batch = groups::encode_group_batch(records, now);
  if (!batch.ok()) return batch.error();
  storage::AppendOptions options;
  options.now_ms = now;
  options.max_message_bytes = INT32_MAX;  // group metadata with many members may be large
  auto appended = partition_->append_as_leader(*batch, options);
  if (!appended) return make_error(ErrorKind::unavailable, "this broker no longer leads " + partition_->log()->dir().string());
  if (!appended->result.ok()) return static_cast<Error>(appended->result.error());
  appended_end_.store(appended->result->last_offset + 1);
  state_.notifier.notify(partition_->topic_partition());  // followers waiting in a fetch
  return Status::success();
}

Result<std::vector<groups::StoredRecord>> ReplicatedGroupStore::load() {
  return groups::read_group_records(*partition_->log());
}

GroupCoordinators::GroupCoordinators(BrokerState& state, groups::GroupSettings settings)
    : state_(state), settings_(settings) {}

GroupCoordinators::~GroupCoordinators() { stop(); }

void GroupCoordinators::start() {
  thread_ = std::thread([this] { run(); });
}

void GroupCoordinators::stop() {
  {
    std::lock_guard lock(wake_mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<std::int32_t, Entry> entries;
  {
    std::lock_guard lock(mu_);
    entries.swap(entries_);
  }
  for (auto& [index, entry] : entries) entry.coordinator->resign(groups::GroupError::not_coordinator);
}

void GroupCoordinators::on_image() {
  {
    std::lock_guard lock(wake_mu_);
    wake_ = true;
  }
  wake_cv_.notify_all();
}

std::optional<std::int32_t> GroupCoordinators::partition_for(const std::string& group_id) const {
  const auto image = state_.image();
  const auto* topic = image->topic(kOffsetsTopic);
  if (!topic || topic->partitions.empty()) return std::nullopt;
  return offsets_partition_for(group_id, static_cast<std::int32_t>(topic->partitions.size()));
}

GroupCoordinators::Lookup GroupCoordinators::for_group(const std::string& group_id) const {
  Lookup out;
  auto index = partition_for(group_id);
  if (!index) {
    out.error = groups::GroupError::coordinator_not_available;
    return out;
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(*index); it != entries_.end()) {
      out.coordinator = it->second.coordinator;
      out.partition = it->second.partition;
      out.store = it->second.store;
      return out;
    }
  }
  auto hosted = state_.replicas->get({kOffsetsTopic, *index});
  const bool leads = hosted && hosted->role() == replication::Role::leader;
  out.error = leads ? groups::GroupError::coordinator_load_in_progress : groups::GroupError::not_coordinator;
  return out;
}

std::vector<std::shared_ptr<groups::GroupCoordinator>> GroupCoordinators::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<groups::GroupCoordinator>> out;
  for (const auto& [index, entry] : entries_) out.push_back(entry.coordinator);
  return out;
}

std::map<std::int32_t, std::shared_ptr<replication::Partition>> GroupCoordinators::led_partitions() const {
  std::map<std::int32_t, std::shared_ptr<replication::Partition>> out;
  const auto image = state_.image();
  const auto* topic = image->topic(kOffsetsTopic);
  if (!topic) return out;
  for (const auto& [index, partition] : topic->partitions) {
    if (partition.leader != state_.node_id()) continue;
    auto hosted = state_.replicas->get({kOffsetsTopic, index});
    if (hosted && hosted->role() == replication::Role::leader) out.emplace(index, std::move(hosted));
  }
  return out;
}

// Resigns the coordinators whose partition left (or came back at another epoch: the log may have
// been truncated as a follower meanwhile), then loads the new ones from their logs. False when a load
// failed (the next tick tries again).
bool GroupCoordinators::reconcile() {
  bool loaded_all = true;
  auto led = led_partitions();
  std::vector<std::shared_ptr<groups::GroupCoordinator>> resigned;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto now_led = led.find(it->first);
      if (now_led != led.end() && now_led->second == it->second.partition &&
          now_led->second->leader_epoch() == it->second.leader_epoch) {
        ++it;
        continue;
      }
      resigned.push_back(it->second.coordinator);
      it = entries_.erase(it);
    }
  }
  for (auto& coordinator : resigned) coordinator->resign(groups::GroupError::not_coordinator);
  for (auto& [index, partition] : led) {
    {
      std::lock_guard lock(mu_);
      if (entries_.count(index)) continue;
    }
    const auto epoch = partition->leader_epoch();
    {
      std::lock_guard lock(mu_);
      markers_while_loading_[index].clear();  // from here on, markers wait for this load
    }
    auto store = std::make_unique<ReplicatedGroupStore>(partition, state_);
    const auto* store_ptr = store.get();
    auto clock = [this] { return state_.now_ms(); };
    auto opened = groups::GroupCoordinator::open(settings_, std::move(store), clock);
    if (!opened.ok()) {
      log::error("{}-{}: cannot load its groups: {} (retrying)", kOffsetsTopic, index, opened.error().message);
      std::lock_guard lock(mu_);
      markers_while_loading_.erase(index);
      loaded_all = false;
      continue;
    }
    std::shared_ptr<groups::GroupCoordinator> coordinator = std::move(*opened);
    std::vector<Marker> early;
    {
      std::lock_guard lock(mu_);
      entries_[index] = Entry{partition, epoch, coordinator, store_ptr};
      if (auto it = markers_while_loading_.find(index); it != markers_while_loading_.end()) {
        early = std::move(it->second);
        markers_while_loading_.erase(it);
      }
    }
    for (const auto& m : early) coordinator->on_transaction_marker(m.producer_id, m.producer_epoch, m.committed);
    log::info("{}-{}: coordinating its groups (leader epoch {})", kOffsetsTopic, index, epoch);
  }
  return loaded_all;
}

void GroupCoordinators::run() {
  std::unique_lock lock(wake_mu_);
  while (!stopping_) {
    wake_cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_ || wake_; });
    if (stopping_) break;
    const bool leadership_may_have_moved = std::exchange(wake_, false);
    lock.unlock();
    if (leadership_may_have_moved || retry_load_) retry_load_ = !reconcile();
    for (auto& coordinator : all()) coordinator->tick();
    lock.lock();
  }
}

void GroupCoordinators::on_transaction_marker(std::int32_t offsets_partition, std::int64_t producer_id,
                                              std::int16_t producer_epoch, bool committed) {
  std::shared_ptr<groups::GroupCoordinator> coordinator;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(offsets_partition); it != entries_.end()) {
      coordinator = it->second.coordinator;
    } else if (auto loading = markers_while_loading_.find(offsets_partition); loading != markers_while_loading_.end()) {
      loading->second.push_back({producer_id, producer_epoch, committed});
      return;
    } else {
      return;  // not coordinated here: whoever loads the partition replays the marker from the log
    }
  }
  coordinator->on_transaction_marker(producer_id, producer_epoch, committed);
}

void GroupCoordinators::create_topic() {
  if (!state_.controller || creating_.exchange(true)) return;
  const auto image = state_.image();
  const auto& cfg = state_.config;
  const auto live = static_cast<std::int16_t>(std::min<std::size_t>(image->live_brokers().size(), INT16_MAX));
  const std::int16_t factor = std::max<std::int16_t>(1, std::min(cfg.offsets_topic_replication_factor, live));
  wire::msg::CreateTopicsRequest request;
  request.timeout_ms = 30000;
  wire::msg::CreateTopicsRequest::CreatableTopic topic;
  topic.name = kOffsetsTopic;
  // A data dir from before replicated offsets: its one partition, here, keeps every group's offsets.
  auto legacy = state_.logs->get({kOffsetsTopic, 0});
  if (legacy && legacy->log_end_offset() > 0) {
    topic.num_partitions = -1;
    topic.replication_factor = -1;
    wire::msg::CreateTopicsRequest::CreatableReplicaAssignment assignment;
    assignment.partition_index = 0;
    assignment.broker_ids.push_back(state_.node_id());
    for (const auto* broker : image->live_brokers())
      if (static_cast<std::int16_t>(assignment.broker_ids.size()) < factor && broker->id != state_.node_id())
        assignment.broker_ids.push_back(broker->id);
    topic.assignments.push_back(std::move(assignment));
    log::info("{}-0 holds committed offsets from before replicated offsets: {} is created with that one partition",
              kOffsetsTopic, kOffsetsTopic);
  } else {
    topic.num_partitions = std::max(1, cfg.offsets_topic_num_partitions);
    topic.replication_factor = factor;
  }
  if (factor < cfg.offsets_topic_replication_factor)
    log::warn("offsets.topic.replication.factor is {} but {} broker(s) are live: {} is created with {} cop{} of each "
              "partition, so committed offsets survive the loss of {} broker(s)",
              cfg.offsets_topic_replication_factor, live, kOffsetsTopic, factor, factor == 1 ? "y" : "ies", factor - 1);
  // Offsets are removed by tombstones and offsets.retention.minutes, never by log retention; the log
  // cleaner keeps the last commit per group and partition, so a load replays only that (as Kafka).
  const std::string segment_bytes = std::to_string(cfg.offsets_topic_segment_bytes);
  for (const auto& [key, value] : {std::pair<const char*, std::string>{"retention.ms", "-1"},
                                   std::pair<const char*, std::string>{"segment.bytes", segment_bytes},
                                   std::pair<const char*, std::string>{"cleanup.policy", "compact"}}) {
    wire::msg::CreateTopicsRequest::CreateableTopicConfig config;
    config.name = key;
    config.value = value;
    topic.configs.push_back(std::move(config));
  }
  request.topics.push_back(std::move(topic));
  constexpr std::int16_t version = 7;
  auto principal = serialize_principal("User", "bulwark-node-" + std::to_string(state_.node_id()));
  state_.controller->forward(
      request.api_key, version, wire::encode_message(request, version), std::move(principal), {},
      std::chrono::steady_clock::now() + std::chrono::seconds(30), [this](Result<Bytes> answer) {
        creating_ = false;
        if (!answer.ok()) return log::warn("creating {}: {}", kOffsetsTopic, answer.error().message);
        auto response = wire::decode_message<wire::msg::CreateTopicsResponse>(*answer, version);
        if (!response || response->topics.empty()) return log::warn("creating {}: a malformed answer", kOffsetsTopic);
        const auto& result = response->topics.front();
        constexpr std::int16_t kTopicAlreadyExists = 36;
        if (result.error_code != 0 && result.error_code != kTopicAlreadyExists)
          log::warn("creating {}: error {} ({})", kOffsetsTopic, result.error_code, result.error_message.value_or(""));
      });
}

}  // namespace bulwark::broker
