// The console consumer: fetches from each partition's leader and prints the records, alone or as a
// member of a consumer group (the classic protocol, eager "range" assignment, committed offsets).
#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "client/console.h"
#include "wire/generated/fetch.h"
#include "wire/generated/heartbeat.h"
#include "wire/generated/join_group.h"
#include "wire/generated/leave_group.h"
#include "wire/generated/list_offsets.h"
#include "wire/generated/offset_commit.h"
#include "wire/generated/offset_fetch.h"
#include "wire/generated/sync_group.h"

namespace bulwark::client {
namespace {

using namespace kafka_errors;
using namespace wire::msg;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kEarliest = -2;  // ListOffsets timestamps
constexpr std::int64_t kLatest = -1;
constexpr const char* kAssignor = "range";

struct Position {
  std::int32_t partition = 0;
  std::int64_t next = -1;       // the offset to fetch next; -1 until resolved
  std::int64_t committed = -1;  // what we last committed
};

Error fatal(std::string message) { return make_error(ErrorKind::unavailable, std::move(message)); }

// Errors a refreshed Metadata (a moved leader, a topic id learnt late) may cure.
bool leader_moved(std::int16_t code) {
  return code == kNotLeaderOrFollower || code == kLeaderNotAvailable || code == kFencedLeaderEpoch ||
         code == kUnknownLeaderEpoch || code == kUnknownTopicId || code == kKafkaStorageError ||
         code == kUnknownTopicOrPartition;
}

class ConsoleConsumer {
 public:
  ConsoleConsumer(ClusterClient& cluster, const ConsumerOptions& options, std::FILE* out, std::FILE* err,
                  const std::atomic<bool>& stop, ConsumeStats& stats)
      : cluster_(cluster), o_(options), out_(out), err_(err), stop_(stop), stats_(stats) {}

  Status run() {
    auto topic = describe_topic(cluster_, o_.topic, /*create=*/false);
    if (!topic) return topic.error();
    topic_ = *topic;
    if (o_.group) {
      BULWARK_TRY(join());
    } else {
      BULWARK_TRY(assign_without_group());
    }
    Status outcome = consume();
    if (o_.group) finish_group();
    return outcome;
  }

 private:
  // ---- Positions ---------------------------------------------------------------------------------

  Status assign_without_group() {
    if (o_.partition) {
      if (*o_.partition < 0 || *o_.partition >= topic_.partitions)
        return make_error(ErrorKind::invalid_argument, fmt::format("topic {} has partitions 0..{}, not {}", o_.topic,
                                                                   topic_.partitions - 1, *o_.partition));
      positions_ = {Position{*o_.partition}};
      if (o_.offset != "earliest" && o_.offset != "latest") {
        positions_[0].next = std::stoll(o_.offset);  // the command checked it is a number
        return Status::success();
      }
      return resolve(o_.offset == "earliest" || o_.from_beginning ? kEarliest : kLatest);
    }
    for (std::int32_t p = 0; p < topic_.partitions; ++p) positions_.push_back(Position{p});
    return resolve(o_.from_beginning ? kEarliest : kLatest);
  }

  // Where to start when there is no committed offset or the offset is out of range.
  Result<std::int64_t> reset_point(const Position& p) const {
    if (o_.from_beginning || o_.auto_offset_reset == "earliest") return kEarliest;
    if (o_.auto_offset_reset == "latest") return kLatest;
    return fatal(fmt::format("no valid offset to start {}-{} from and auto.offset.reset is none", o_.topic,
                             p.partition));
  }

  // ListOffsets (earliest or latest) for every position not yet known.
  Status resolve(std::int64_t timestamp) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      std::map<std::int32_t, std::vector<Position*>> by_leader;
      for (auto& p : positions_)
        if (p.next < 0) BULWARK_TRY(add_by_leader(p, by_leader));
      if (by_leader.empty()) return Status::success();
      for (auto& [node, list] : by_leader) BULWARK_TRY(list_offsets(node, list, timestamp));
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    }
    return fatal(fmt::format("could not find where to start reading {}: its leaders keep moving", o_.topic));
  }

  Status add_by_leader(Position& p, std::map<std::int32_t, std::vector<Position*>>& by_leader) {
    auto leader = cluster_.leader(o_.topic, p.partition);
    if (!leader) return leader.error();
    auto node = cluster_.leader_id(o_.topic, p.partition);
    if (!node) return fatal(fmt::format("{}-{} has no leader now", o_.topic, p.partition));
    by_leader[*node].push_back(&p);
    return Status::success();
  }

  Status list_offsets(std::int32_t node, const std::vector<Position*>& list, std::int64_t timestamp) {
    ListOffsetsRequest request;
    request.replica_id = -1;
    ListOffsetsRequest::ListOffsetsTopic topic;
    topic.name = o_.topic;
    for (const auto* p : list) topic.partitions.push_back({p->partition, -1, timestamp, 1, {}});
    request.topics.push_back(std::move(topic));
    auto response = call<ListOffsetsRequest, ListOffsetsResponse>(node, request);
    if (!response) return response.error().kind == ErrorKind::io ? Status::success() : Status(response.error());
    for (const auto& t : response->topics) {
      for (const auto& r : t.partitions) {
        auto it = std::find_if(list.begin(), list.end(), [&](const Position* p) { return p->partition == r.partition_index; });
        if (it == list.end()) continue;
        if (r.error_code == 0) {
          (*it)->next = r.old_style_offsets.empty() ? r.offset : r.old_style_offsets.front();
        } else if (leader_moved(r.error_code)) {
          (void)cluster_.refresh_metadata({o_.topic});
        } else {
          return fatal(partition_error_words(r.error_code, o_.topic, r.partition_index, "describe", identity()));
        }
      }
    }
    return Status::success();
  }

  // ---- Fetching ----------------------------------------------------------------------------------

  Status consume() {
    last_record_ = Clock::now();
    while (!stop_.load() && !done_) {
      if (o_.group) BULWARK_TRY(keep_membership());
      if (positions_.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(o_.fetch_max_wait_ms));
      } else {
        BULWARK_TRY(fetch_round());
      }
      std::fflush(out_);
      if (o_.timeout && Clock::now() - last_record_ >= *o_.timeout) break;
    }
    return Status::success();
  }

  Status fetch_round() {
    std::map<std::int32_t, std::vector<Position*>> by_leader;
    for (auto& p : positions_) BULWARK_TRY(add_by_leader(p, by_leader));
    for (auto& [node, list] : by_leader) {
      BULWARK_TRY(fetch(node, list));
      if (done_) break;
    }
    return Status::success();
  }

  FetchRequest fetch_request(const std::vector<Position*>& list) const {
    FetchRequest request;
    request.replica_id = -1;
    request.max_wait_ms = o_.fetch_max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = o_.fetch_max_bytes;
    request.session_epoch = -1;  // a full fetch each time, no session
    FetchRequest::FetchTopic topic;
    topic.topic = o_.topic;
    topic.topic_id = topic_.topic_id;
    for (const auto* p : list) {
      FetchRequest::FetchPartition fp;
      fp.partition = p->partition;
      fp.fetch_offset = p->next;
      fp.partition_max_bytes = o_.max_partition_fetch_bytes;
      topic.partitions.push_back(fp);
    }
    request.topics.push_back(std::move(topic));
    return request;
  }

  Status fetch(std::int32_t node, const std::vector<Position*>& list) {
    auto response = call<FetchRequest, FetchResponse>(node, fetch_request(list));
    if (!response) {
      if (response.error().kind != ErrorKind::io) return response.error();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // dropped; dialled again next round
      return Status::success();
    }
    if (response->error_code != 0)
      return fatal(fmt::format("fetching {} failed: {}", o_.topic, error_name(response->error_code)));
    bool refresh = false;
    for (const auto& t : response->responses) {
      if (t.topic != o_.topic && t.topic_id != topic_.topic_id) continue;
      for (const auto& data : t.partitions) {
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const Position* p) { return p->partition == data.partition_index; });
        if (it == list.end()) continue;
        BULWARK_TRY(take(**it, data, refresh));
        if (done_) return Status::success();
      }
    }
    if (refresh) {
      (void)cluster_.refresh_metadata({o_.topic});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Status::success();
  }

  Status take(Position& p, const FetchResponse::PartitionData& data, bool& refresh) {
    if (data.error_code == kOffsetOutOfRange) {
      auto point = reset_point(p);
      if (!point) return point.error();
      std::fprintf(err_, "note: offset %lld is out of range for %s-%d, starting from the %s\n",
                   static_cast<long long>(p.next), o_.topic.c_str(), p.partition,
                   *point == kEarliest ? "earliest" : "latest");
      p.next = -1;
      return resolve(*point);
    }
    if (leader_moved(data.error_code)) {
      refresh = true;
      return Status::success();
    }
    if (data.error_code != 0)
      return fatal(partition_error_words(data.error_code, o_.topic, p.partition, "read", identity()));
    if (!data.records || data.records->empty()) return Status::success();
    return print_batches(p, *data.records);
  }

  Status print_batches(Position& p, ByteView records) {
    auto split = wire::split_batches(records);
    if (!split) return fatal(fmt::format("{}-{}: {}", o_.topic, p.partition, split.error().message));
    for (ByteView batch : split->batches) {
      auto header = wire::parse_batch_header(batch);
      if (!header) return fatal(fmt::format("{}-{}: {}", o_.topic, p.partition, header.error().message));
      if (header->last_offset() < p.next) continue;
      if (!header->is_control()) BULWARK_TRY(print_batch(p, batch, *header));
      if (done_) return Status::success();
      p.next = std::max(p.next, header->last_offset() + 1);  // past control records and compacted gaps
    }
    return Status::success();
  }

  Status print_batch(Position& p, ByteView batch, const wire::BatchHeader& header) {
    auto records = wire::decode_records(batch);
    if (!records)
      return fatal(fmt::format("{}-{} at offset {}: {}", o_.topic, p.partition, header.base_offset,
                               records.error().message));
    for (auto& r : *records) {
      if (r.offset < p.next) continue;
      if (header.log_append_time()) r.timestamp = header.max_timestamp;
      const std::string line = format_record(r, p.partition, header.log_append_time(), o_.format);
      if (std::fwrite(line.data(), 1, line.size(), out_) != line.size()) {
        done_ = true;  // the reader went away (a closed pipe)
        return Status::success();
      }
      p.next = r.offset + 1;
      last_record_ = Clock::now();
      ++stats_.messages;
      if (o_.max_messages && stats_.messages >= *o_.max_messages) {
        done_ = true;
        return Status::success();
      }
    }
    return Status::success();
  }

  // ---- The group ---------------------------------------------------------------------------------

  Status join() {
    for (int attempt = 0;; ++attempt) {
      if (stop_.load()) return Status::success();
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 100 * attempt)));
      if (attempt > 50) return fatal(fmt::format("could not join group {}: it keeps rebalancing", *o_.group));
      auto joined = join_group();
      if (!joined) return joined.error();
      if (!*joined) continue;
      auto synced = sync_group(**joined);
      if (!synced) return synced.error();
      if (!*synced) continue;
      BULWARK_TRY(take_assignment(**synced));
      const auto now = Clock::now();
      next_heartbeat_ = now + o_.heartbeat_interval;
      next_commit_ = now + o_.auto_commit_interval;
      rejoin_ = false;
      return Status::success();
    }
  }

  // The JoinGroup response, or nullopt to try again (a member id to learn, a coordinator that moved).
  Result<std::optional<JoinGroupResponse>> join_group() {
    JoinGroupRequest request;
    request.group_id = *o_.group;
    request.session_timeout_ms = static_cast<std::int32_t>(o_.session_timeout.count());
    request.rebalance_timeout_ms = rebalance_timeout_ms();
    request.member_id = member_id_;
    request.group_instance_id = o_.group_instance_id;
    request.protocol_type = "consumer";
    request.protocols.push_back({kAssignor, encode_subscription({o_.topic}), {}});
    auto response = call_coordinator<JoinGroupRequest, JoinGroupResponse>(request);
    if (!response) return response.error();
    if (!*response) return std::optional<JoinGroupResponse>();
    auto& r = **response;
    if (r.error_code == kMemberIdRequired || r.error_code == 0) member_id_ = r.member_id;
    if (r.error_code == kUnknownMemberId) member_id_.clear();
    if (r.error_code == 0) return std::optional<JoinGroupResponse>(std::move(r));
    BULWARK_TRY(group_error(r.error_code, "join"));
    return std::optional<JoinGroupResponse>();
  }

  // The JoinGroup call waits on the broker for the whole rebalance: keep it inside our read timeout.
  std::int32_t rebalance_timeout_ms() const {
    const auto limit = cluster_.settings().timeout - std::chrono::seconds(2);
    return static_cast<std::int32_t>(std::max<std::int64_t>(1000, std::min(o_.max_poll_interval, limit).count()));
  }

  // The assignment bytes SyncGroup gave us, or nullopt to join again.
  Result<std::optional<Bytes>> sync_group(const JoinGroupResponse& joined) {
    generation_ = joined.generation_id;
    SyncGroupRequest request;
    request.group_id = *o_.group;
    request.generation_id = generation_;
    request.member_id = member_id_;
    request.group_instance_id = o_.group_instance_id;
    request.protocol_type = "consumer";
    request.protocol_name = joined.protocol_name;
    if (joined.leader == member_id_) {
      auto assignments = assign(joined);
      if (!assignments) return assignments.error();
      request.assignments = std::move(*assignments);
    }
    auto response = call_coordinator<SyncGroupRequest, SyncGroupResponse>(request);
    if (!response) return response.error();
    if (!*response) return std::optional<Bytes>();
    if ((*response)->error_code == 0) return std::optional<Bytes>((*response)->assignment);
    if ((*response)->error_code == kUnknownMemberId) member_id_.clear();
    BULWARK_TRY(group_error((*response)->error_code, "sync with"));
    return std::optional<Bytes>();
  }

  // As the group's leader: the range assignment of every member's subscription.
  Result<std::vector<SyncGroupRequest::SyncGroupRequestAssignment>> assign(const JoinGroupResponse& joined) {
    if (joined.protocol_name && *joined.protocol_name != kAssignor)
      return fatal(fmt::format("group {} chose assignor {}, which bulwark consume does not implement", *o_.group,
                               *joined.protocol_name));
    std::vector<MemberSubscription> members;
    std::vector<std::string> topics;
    for (const auto& m : joined.members) {
      auto subscribed = decode_subscription(m.metadata);
      MemberSubscription member{m.member_id, m.group_instance_id, subscribed ? *subscribed : std::vector<std::string>{}};
      topics.insert(topics.end(), member.topics.begin(), member.topics.end());
      members.push_back(std::move(member));
    }
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    auto metadata = cluster_.refresh_metadata(topics);
    if (!metadata) return metadata.error();
    std::map<std::string, std::int32_t> counts;
    for (const auto& t : metadata->topics)
      if (t.error_code == 0 && t.name) counts[*t.name] = static_cast<std::int32_t>(t.partitions.size());
    std::vector<SyncGroupRequest::SyncGroupRequestAssignment> out;
    for (const auto& [member, assignment] : range_assign(members, counts))
      out.push_back({member, encode_assignment(assignment), {}});
    return out;
  }

  Status take_assignment(const Bytes& bytes) {
    auto assignment = decode_assignment(bytes);
    if (!assignment) return fatal(fmt::format("group {}: {}", *o_.group, assignment.error().message));
    positions_.clear();
    for (const auto& tp : *assignment)
      if (tp.topic == o_.topic)
        for (auto p : tp.partitions) positions_.push_back(Position{p});
    BULWARK_TRY(fetch_committed());
    return start_uncommitted();
  }

  Status fetch_committed() {
    if (positions_.empty()) return Status::success();
    OffsetFetchRequest request;
    request.group_id = *o_.group;  // v0-7 ask at the top level, v8+ per group
    OffsetFetchRequest::OffsetFetchRequestTopic topic{o_.topic, {}, {}};
    for (const auto& p : positions_) topic.partition_indexes.push_back(p.partition);
    request.topics = std::vector<OffsetFetchRequest::OffsetFetchRequestTopic>{topic};
    OffsetFetchRequest::OffsetFetchRequestGroup group;
    group.group_id = *o_.group;
    group.topics = std::vector<OffsetFetchRequest::OffsetFetchRequestTopics>{{o_.topic, topic.partition_indexes, {}}};
    request.groups.push_back(std::move(group));
    auto response = call_coordinator<OffsetFetchRequest, OffsetFetchResponse>(request);
    if (!response) return response.error();
    if (!*response) return fatal(fmt::format("the coordinator of group {} moved while we read its offsets", *o_.group));
    const auto& r = **response;
    std::int16_t error = r.groups.empty() ? r.error_code : r.groups.front().error_code;
    if (error != 0) return group_error(error, "read the offsets of");
    auto found = [&](std::int32_t partition, std::int64_t offset) {
      for (auto& p : positions_)
        if (p.partition == partition && offset >= 0) p.next = p.committed = offset;
    };
    for (const auto& t : r.topics)
      for (const auto& p : t.partitions) found(p.partition_index, p.error_code == 0 ? p.committed_offset : -1);
    for (const auto& g : r.groups)
      for (const auto& t : g.topics)
        for (const auto& p : t.partitions) found(p.partition_index, p.error_code == 0 ? p.committed_offset : -1);
    return Status::success();
  }

  Status start_uncommitted() {
    for (const auto& p : positions_) {
      if (p.next >= 0) continue;
      auto point = reset_point(p);
      if (!point) return point.error();
      BULWARK_TRY(resolve(*point));
      break;  // resolve() fills every unknown position
    }
    return Status::success();
  }

  // Heartbeats, periodic commits and rejoining when the group rebalances.
  Status keep_membership() {
    const auto now = Clock::now();
    if (o_.enable_auto_commit && now >= next_commit_) {
      commit();
      next_commit_ = now + o_.auto_commit_interval;
    }
    if (!rejoin_ && now >= next_heartbeat_) {
      heartbeat();
      next_heartbeat_ = now + o_.heartbeat_interval;
    }
    if (!rejoin_) return Status::success();
    if (o_.enable_auto_commit) commit();  // eager protocol: everything is revoked
    return join();
  }

  void heartbeat() {
    HeartbeatRequest request;
    request.group_id = *o_.group;
    request.generation_id = generation_;
    request.member_id = member_id_;
    request.group_instance_id = o_.group_instance_id;
    auto response = call_coordinator<HeartbeatRequest, HeartbeatResponse>(request);
    if (!response || !*response) return;  // a moved coordinator: found again next time
    const std::int16_t error = (*response)->error_code;
    if (error == kUnknownMemberId) member_id_.clear();
    rejoin_ = error == kRebalanceInProgress || error == kIllegalGeneration || error == kUnknownMemberId;
  }

  void commit() {
    OffsetCommitRequest request;
    request.group_id = *o_.group;
    request.generation_id_or_member_epoch = generation_;
    request.member_id = member_id_;
    request.group_instance_id = o_.group_instance_id;
    OffsetCommitRequest::OffsetCommitRequestTopic topic;
    topic.name = o_.topic;
    for (const auto& p : positions_) {
      if (p.next < 0 || p.next == p.committed) continue;
      OffsetCommitRequest::OffsetCommitRequestPartition part;
      part.partition_index = p.partition;
      part.committed_offset = p.next;
      topic.partitions.push_back(part);
    }
    if (topic.partitions.empty()) return;
    std::map<std::int32_t, std::int64_t> sent;
    for (const auto& part : topic.partitions) sent[part.partition_index] = part.committed_offset;
    request.topics.push_back(std::move(topic));
    auto response = call_coordinator<OffsetCommitRequest, OffsetCommitResponse>(request);
    if (!response || !*response) {
      std::fprintf(err_, "warning: offsets of group %s not committed: %s\n", o_.group->c_str(),
                   response ? "the coordinator moved" : response.error().message.c_str());
      return;
    }
    for (const auto& t : (*response)->topics) {
      for (const auto& r : t.partitions) {
        auto it = std::find_if(positions_.begin(), positions_.end(),
                               [&](const Position& p) { return p.partition == r.partition_index; });
        if (it == positions_.end()) continue;
        if (r.error_code == 0 && sent.contains(r.partition_index)) {
          it->committed = sent[r.partition_index];
          continue;
        }
        std::fprintf(err_, "warning: offset of %s-%d not committed for group %s: %s\n", o_.topic.c_str(),
                     r.partition_index, o_.group->c_str(), error_name(r.error_code).c_str());
        if (r.error_code == kRebalanceInProgress || r.error_code == kIllegalGeneration) rejoin_ = true;
      }
    }
  }

  void finish_group() {
    if (member_id_.empty()) return;
    if (o_.enable_auto_commit) commit();
    if (o_.group_instance_id) return;  // a static member keeps its place, as Kafka's consumer does
    LeaveGroupRequest request;
    request.group_id = *o_.group;
    request.member_id = member_id_;  // v0-2
    request.members.push_back({member_id_, std::nullopt, std::string("the consumer is closing"), {}});
    auto response = call_coordinator<LeaveGroupRequest, LeaveGroupResponse>(request);
    if (response && *response && (*response)->error_code != 0)
      std::fprintf(err_, "warning: leaving group %s: %s\n", o_.group->c_str(),
                   error_name((*response)->error_code).c_str());
  }

  // Group errors that end the tool; the others (a rebalance, a moved coordinator) mean try again.
  Status group_error(std::int16_t code, std::string_view what) {
    switch (code) {
      case kCoordinatorNotAvailable:
      case kNotCoordinator:
      case kCoordinatorLoadInProgress:
        coordinator_.reset();
        [[fallthrough]];
      case kRebalanceInProgress:
      case kIllegalGeneration:
      case kUnknownMemberId:
      case kMemberIdRequired:
        return Status::success();
      case kGroupAuthorizationFailed:
        return make_error(ErrorKind::unauthenticated,
                          fmt::format("{} is not allowed to {} group {} (GROUP_AUTHORIZATION_FAILED): an ACL granting "
                                      "READ on the group is missing",
                                      identity(), what, *o_.group));
      default:
        return fatal(fmt::format("could not {} group {}: {}", what, *o_.group, error_name(code)));
    }
  }

  // ---- Round trips -------------------------------------------------------------------------------

  const std::string& identity() { return cluster_.any().identity(); }

  // A call to broker `node`; an I/O error drops the connection (and the coordinator, which may be it).
  template <class Request, class Response>
  Result<Response> call(std::int32_t node, const Request& request) {
    auto connection = cluster_.broker(node);
    if (!connection) return connection.error();
    auto response = (*connection)->template call<Request, Response>(request);
    if (!response && response.error().kind == ErrorKind::io) drop(node);
    return response;
  }

  // A call to the group coordinator; nullopt when it failed in a way worth another try.
  template <class Request, class Response>
  Result<std::optional<Response>> call_coordinator(const Request& request) {
    if (!coordinator_) {
      auto found = cluster_.group_coordinator(*o_.group);
      if (!found) return found.error();
      coordinator_ = cluster_.node_of(*found);
      if (!coordinator_) return fatal(fmt::format("the coordinator of group {} is not a known broker", *o_.group));
    }
    auto connection = cluster_.broker(*coordinator_);
    if (!connection) return connection.error();
    auto response = (*connection)->template call<Request, Response>(request);
    if (response) return std::optional<Response>(std::move(*response));
    if (response.error().kind != ErrorKind::io) return response.error();
    drop(*coordinator_);
    return std::optional<Response>();
  }

  void drop(std::int32_t node) {
    if (coordinator_ == node) coordinator_.reset();
    cluster_.drop_connection(node);
  }

  ClusterClient& cluster_;
  const ConsumerOptions& o_;
  std::FILE* out_;
  std::FILE* err_;
  const std::atomic<bool>& stop_;
  ConsumeStats& stats_;
  TopicInfo topic_;
  std::vector<Position> positions_;
  bool done_ = false;
  Clock::time_point last_record_;

  std::optional<std::int32_t> coordinator_;  // the node; connections are looked up per call
  std::string member_id_;
  std::int32_t generation_ = -1;
  bool rejoin_ = false;
  Clock::time_point next_heartbeat_;
  Clock::time_point next_commit_;
};

}  // namespace

Status run_console_consumer(ClusterClient& cluster, const ConsumerOptions& options, std::FILE* out, std::FILE* err,
                            const std::atomic<bool>& stop, ConsumeStats& stats) {
  ConsoleConsumer consumer(cluster, options, out, err, stop, stats);
  return consumer.run();
}

}  // namespace bulwark::client
