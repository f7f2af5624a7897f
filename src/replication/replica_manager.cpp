#include "replication/replica_manager.h"

#include <algorithm>
#include <utility>

#include "base/clock.h"
#include "base/files.h"
#include "base/log.h"
#include "replication/fetcher.h"
#include "wire/generated/alter_partition.h"
#include "wire/protocol.h"

namespace bulwark::replication {

namespace msg = wire::msg;

namespace {

constexpr const char* kHighWatermarkFile = "replication-offset-checkpoint";
constexpr std::int16_t kAlterPartitionVersion = 1;  // topics by name

bool hosts(const cluster::PartitionState& state, std::int32_t node_id) {
  return std::find(state.replicas.begin(), state.replicas.end(), node_id) != state.replicas.end();
}

std::string join_ids(const std::vector<std::int32_t>& ids) {
  std::string out;
  for (auto id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return "[" + out + "]";
}

}  // namespace

Result<std::unique_ptr<ReplicaManager>> ReplicaManager::create(ReplicationSettings settings, storage::LogManager& logs,
                                                               AlterPartitionSender alter_partition,
                                                               std::function<std::int64_t()> broker_epoch,
                                                               PartitionNotifier notify) {
  std::unique_ptr<ReplicaManager> manager(
      new ReplicaManager(std::move(settings), logs, std::move(alter_partition), std::move(broker_epoch), std::move(notify)));
  for (const auto& dir : manager->settings_.log_dirs) {
    auto text = read_file(dir / kHighWatermarkFile);
    if (!text.ok()) continue;  // a new dir, or one written before replication: the high watermarks start low
    auto offsets = storage::parse_offset_checkpoint(*text);
    if (!offsets) {
      log::warn("{}: unreadable high watermark checkpoint; consumers see new records once the followers have them",
                (dir / kHighWatermarkFile).string());
      continue;
    }
    manager->checkpointed_.insert(offsets->begin(), offsets->end());
  }
  if (!manager->settings_.fetch_disabled_reason.empty()) return manager;  // said once a partition needs it
  auto client = net::OutboundClient::create(manager->settings_.outbound);
  if (!client.ok()) return client.error();
  manager->fetcher_ = std::make_unique<FollowerFetcher>(manager->settings_, std::move(*client), manager->notify_);
  return manager;
}

ReplicaManager::ReplicaManager(ReplicationSettings settings, storage::LogManager& logs,
                               AlterPartitionSender alter_partition, std::function<std::int64_t()> broker_epoch,
                               PartitionNotifier notify)
    : settings_(std::move(settings)),
      logs_(logs),
      alter_partition_(std::move(alter_partition)),
      broker_epoch_(std::move(broker_epoch)),
      notify_(std::move(notify)) {}

ReplicaManager::~ReplicaManager() { stop(); }

std::shared_ptr<Partition> ReplicaManager::get(const storage::TopicPartition& tp) const {
  std::lock_guard lock(mu_);
  auto it = partitions_.find(tp);
  return it == partitions_.end() ? nullptr : it->second;
}

void ReplicaManager::apply_image(const cluster::MetadataImage* before, const cluster::MetadataImage& after) {
  const auto now = wall_clock_ms();
  const auto me = settings_.node_id;
  std::vector<storage::TopicPartition> changed;
  FollowerAssignment assignment;
  {
    std::lock_guard lock(mu_);
    std::erase_if(partitions_, [&](const auto& entry) {
      const auto* state = after.partition(entry.first.topic, entry.first.partition);
      return !state || !hosts(*state, me);
    });
    for (const auto* topic : after.topics()) {
      if (before && before->topic(topic->id) == topic) continue;  // images share unchanged topics
      for (const auto& [index, state] : topic->partitions) {
        if (!hosts(state, me)) continue;
        storage::TopicPartition tp{topic->name, index};
        auto& partition = partitions_[tp];
        if (!partition) {
          auto log = logs_.get(tp);
          if (!log) {
            partitions_.erase(tp);  // its log could not be opened (said when it failed)
            continue;
          }
          auto hw = checkpointed_.find(tp);
          partition = std::make_shared<Partition>(tp, me, std::move(log), hw == checkpointed_.end() ? 0 : hw->second,
                                                  settings_.lag_time_max_ms);
        }
        if (partition->apply(state, now)) {
          changed.push_back(tp);
          if (state.leader == me)
            log::info("{}-{}: leader at epoch {} (ISR {}, high watermark {})", tp.topic, tp.partition,
                      state.leader_epoch, join_ids(state.isr), partition->high_watermark());
          else
            log::info("{}-{}: following {} at leader epoch {}", tp.topic, tp.partition, state.leader, state.leader_epoch);
        }
      }
    }
    for (const auto& [tp, partition] : partitions_) {
      if (partition->role() != Role::follower) continue;
      const auto leader_id = partition->leader_id();
      const auto* leader = leader_id >= 0 ? after.broker(leader_id) : nullptr;
      const auto* endpoint = leader ? leader->endpoint(settings_.inter_broker_listener) : nullptr;
      if (!endpoint) continue;  // no leader, or one not reachable on our inter-broker listener (yet)
      assignment.leaders[leader_id] = {endpoint->host, endpoint->port};
      assignment.partitions[leader_id].push_back(partition);
    }
  }
  if (fetcher_) {
    fetcher_->set_assignment(std::move(assignment));
  } else if (!assignment.partitions.empty() && !std::exchange(said_fetch_disabled_, true)) {
    log::error("this broker follows partitions but cannot fetch from their leaders: {}. Those replicas stay empty "
               "and out of the ISR.", settings_.fetch_disabled_reason);
  }
  // Waiters on a partition that changed role re-check it (a delayed produce on a former leader ends).
  for (const auto& tp : changed) notify_(tp);
}

std::map<std::int32_t, std::vector<storage::TopicPartition>> ReplicaManager::fetch_assignment() const {
  return fetcher_ ? fetcher_->assignment() : std::map<std::int32_t, std::vector<storage::TopicPartition>>{};
}

void ReplicaManager::start() {
  if (fetcher_) fetcher_->start();
  thread_ = std::thread([this] { run(); });
}

void ReplicaManager::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fetcher_) fetcher_->stop();
  write_checkpoints();
}

void ReplicaManager::run() {
  // Kafka checks for ISR shrinks every replica.lag.time.max.ms / 2; expansions are checked as often.
  const auto tick = std::chrono::milliseconds(std::clamp<std::int64_t>(settings_.lag_time_max_ms / 4, 50, 1000));
  auto next_checkpoint = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.checkpoint_interval_ms);
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, tick, [this] { return stopping_; })) {
    lock.unlock();
    send_isr_changes(wall_clock_ms());
    if (std::chrono::steady_clock::now() >= next_checkpoint) {
      write_checkpoints();
      next_checkpoint = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.checkpoint_interval_ms);
    }
    lock.lock();
  }
}

void ReplicaManager::send_isr_changes(std::int64_t now_ms) {
  std::vector<std::shared_ptr<Partition>> leaders;
  {
    std::lock_guard lock(mu_);
    for (const auto& [tp, partition] : partitions_)
      if (partition->role() == Role::leader) leaders.push_back(partition);
  }
  msg::AlterPartitionRequest request;
  request.broker_id = settings_.node_id;
  request.broker_epoch = broker_epoch_();
  std::vector<std::pair<std::shared_ptr<Partition>, IsrChange>> changing;
  for (const auto& partition : leaders) {
    auto change = partition->next_isr_change(now_ms);
    if (!change) continue;
    changing.emplace_back(partition, *change);
    auto wanted = join_ids(partition->isr()) + " to " + join_ids(change->new_isr);
    bool news = false;  // retries are not
    {
      std::lock_guard lock(mu_);
      news = std::exchange(last_asked_[partition->topic_partition()], wanted) != wanted;
    }
    if (news)
      log::info("{}-{}: asking the controller to change the ISR from {}", change->topic, change->partition, wanted);
    if (request.topics.empty() || request.topics.back().topic_name != change->topic)
      request.topics.push_back({.topic_name = change->topic});
    msg::AlterPartitionRequest::PartitionData data;
    data.partition_index = change->partition;
    data.leader_epoch = change->leader_epoch;
    data.partition_epoch = change->partition_epoch;
    data.new_isr = std::move(change->new_isr);
    request.topics.back().partitions.push_back(std::move(data));
  }
  if (changing.empty()) return;
  alter_partition_(wire::encode_message(request, kAlterPartitionVersion), kAlterPartitionVersion,
                   [this, changing](Result<Bytes> response) { on_alter_partition_response(changing, std::move(response)); });
}

void ReplicaManager::on_alter_partition_response(std::vector<std::pair<std::shared_ptr<Partition>, IsrChange>> sent,
                                                 Result<Bytes> response) {
  std::map<storage::TopicPartition, const msg::AlterPartitionResponse::PartitionData*> answers;
  std::optional<msg::AlterPartitionResponse> decoded;
  // Failures are retried every tick: said at most once per 30 s.
  auto warn = [this](const std::string& why) {
    const auto now = wall_clock_ms();
    std::lock_guard lock(mu_);
    if (now - last_failure_log_ms_ < 30000) return;
    last_failure_log_ms_ = now;
    log::warn("AlterPartition failed: {}; retrying", why);
  };
  if (!response.ok()) {
    warn("the controller was not reached: " + response.error().message);
  } else if (!(decoded = wire::decode_message<msg::AlterPartitionResponse>(*response, kAlterPartitionVersion))) {
    warn("the controller's response does not decode");
  } else if (decoded->error_code != 0) {
    warn("the controller answered error " + std::to_string(decoded->error_code));
  } else {
    for (const auto& topic : decoded->topics)
      for (const auto& p : topic.partitions) answers[{topic.topic_name, p.partition_index}] = &p;
  }
  for (const auto& [partition, change] : sent) {
    const auto& tp = partition->topic_partition();
    auto it = answers.find(tp);
    if (it == answers.end() || it->second->error_code != 0) {
      if (it != answers.end())
        warn(tp.topic + "-" + std::to_string(tp.partition) + ": the controller refused the ISR change with error " +
             std::to_string(it->second->error_code));
      partition->complete_isr_change(change, std::nullopt);
      continue;
    }
    log::info("{}-{}: ISR is now {} (partition epoch {})", tp.topic, tp.partition, join_ids(it->second->isr),
              it->second->partition_epoch);
    {
      std::lock_guard lock(mu_);
      last_asked_.erase(tp);
    }
    partition->complete_isr_change(change, std::make_pair(it->second->isr, it->second->partition_epoch));
    notify_(tp);  // the high watermark may move now
  }
}

void ReplicaManager::write_checkpoints() {
  std::map<std::filesystem::path, std::map<storage::TopicPartition, std::int64_t>> by_dir;
  for (const auto& dir : settings_.log_dirs) by_dir[dir];
  {
    std::lock_guard lock(mu_);
    for (const auto& [tp, partition] : partitions_)
      by_dir[partition->log()->dir().parent_path()][tp] = partition->high_watermark();
  }
  for (const auto& [dir, offsets] : by_dir) {
    auto text = storage::format_offset_checkpoint(offsets);
    if (last_checkpoint_[dir] == text) continue;
    auto written = write_file_atomic(dir / kHighWatermarkFile, text, kPublicFileMode, Overwrite::allow);
    if (!written.ok()) {
      log::warn("cannot write {}: {}", (dir / kHighWatermarkFile).string(), written.error().message);
      continue;
    }
    last_checkpoint_[dir] = std::move(text);
  }
}

}  // namespace bulwark::replication
