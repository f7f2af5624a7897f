// The active controller's decisions (KIP-631), after Kafka's ClusterControlManager,
// ReplicationControlManager (with PartitionChangeBuilder's election rules), AclControlManager,
// ScramControlManager and ProducerIdControlManager. Validation first, records after.
#include "cluster/controller.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <variant>

#include "security/authorizer.h"
#include "security/sasl.h"

namespace bulwark::cluster {

namespace {

namespace msg = wire::msg;

// Kafka's error codes (the subset the controller answers with).
enum Code : std::int16_t {
  kNone = 0,
  kUnknownTopicOrPartition = 3,
  kInvalidTopic = 17,
  kUnsupportedSaslMechanism = 33,
  kUnsupportedVersion = 35,
  kTopicAlreadyExists = 36,
  kInvalidPartitions = 37,
  kInvalidReplicationFactor = 38,
  kInvalidReplicaAssignment = 39,
  kInvalidConfig = 40,
  kNotControllerCode = 41,  // controller_service.h names its kNotController
  kInvalidRequest = 42,
  kOperationNotAttempted = 55,
  kUnknownServerError = -1,
  kFencedLeaderEpoch = 74,
  kStaleBrokerEpoch = 77,
  kPreferredLeaderNotAvailable = 80,
  kInvalidUpdateVersion = 82,
  kEligibleLeadersNotAvailable = 83,
  kElectionNotNeeded = 84,
  kNoReassignmentInProgress = 85,
  kResourceNotFound = 91,
  kDuplicateResource = 92,
  kUnacceptableCredential = 93,
  kUnknownTopicId = 100,
  kDuplicateBrokerRegistration = 101,
  kBrokerIdNotRegistered = 102,
  kIneligibleReplica = 107,
};

constexpr std::int32_t kMaxPartitions = 100000;        // Bulwark's limit, as the single-node broker's
constexpr std::int16_t kScramMinMetadataVersion = 11;  // 3.5-IV2: Kafka's isScramSupported
constexpr int kMaxIdDraws = 64;                        // new ids that collide are drawn again, this many times at most

constexpr std::string_view kUnknownTopicMessage = "This server does not host this topic-partition.";
constexpr std::string_view kUnknownTopicIdMessage = "This server does not host this topic ID.";

std::string str(std::int64_t v) { return std::to_string(v); }

bool contains(const std::vector<std::int32_t>& v, std::int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Kafka's ClusterControlManager.isActive: registered, unfenced and not in controlled shutdown.
bool is_active(const MetadataImage& image, std::int32_t id) {
  const BrokerRegistration* b = image.broker(id);
  return b != nullptr && !b->fenced && !b->in_controlled_shutdown;
}

// ---- Partition leadership (PartitionChangeBuilder with no unclean election, metadata.version >= 3.6) -----

// The leader Kafka's electAnyLeader picks: the current one while it stays acceptable and in the ISR,
// otherwise the first replica (in preferred order) that is in the ISR and acceptable, otherwise none.
template <class Acceptable>
std::int32_t elect_leader(const PartitionState& p, const std::vector<std::int32_t>& isr, Acceptable acceptable) {
  if (p.leader >= 0 && contains(isr, p.leader) && acceptable(p.leader)) return p.leader;
  for (std::int32_t r : p.replicas) {
    if (contains(isr, r) && acceptable(r)) return r;
  }
  return kNoLeader;
}

// The change for a partition when `broker` leaves it (fenced or shutting down): out of the ISR unless it
// is the last member (Kafka keeps that one), and a new leader when it led. nullopt when nothing changes.
std::optional<AnyRecord> without_broker(const MetadataImage& image, const Uuid& topic_id, const PartitionState& p,
                                        std::int32_t broker) {
  std::vector<std::int32_t> isr;
  for (std::int32_t r : p.isr) {
    if (r != broker) isr.push_back(r);
  }
  if (isr.empty()) isr = p.isr;
  const std::int32_t leader = elect_leader(p, isr, [&](std::int32_t r) { return r != broker && is_active(image, r); });
  rec::PartitionChangeRecord change;
  change.topic_id = topic_id;
  change.partition_id = p.partition;
  if (isr != p.isr) change.isr = isr;
  if (leader != p.leader) change.leader = leader;  // the delta bumps the leader epoch
  if (!change.isr && change.leader == kNoLeaderChange) return std::nullopt;
  return make_record(std::move(change));
}

// Every partition `broker` leads or is in the ISR of, moved off it, in topic name and partition order.
std::vector<AnyRecord> move_off_broker(const MetadataImage& image, std::int32_t broker) {
  std::vector<AnyRecord> records;
  for (const TopicImage* topic : image.topics()) {
    for (const auto& [index, p] : topic->partitions) {
      if (p.leader != broker && !contains(p.isr, broker)) continue;
      if (auto change = without_broker(image, topic->id, p, broker)) records.push_back(std::move(*change));
    }
  }
  return records;
}

bool leads_any(const MetadataImage& image, std::int32_t broker) {
  for (const TopicImage* topic : image.topics()) {
    for (const auto& [index, p] : topic->partitions) {
      if (p.leader == broker) return true;
    }
  }
  return false;
}

// ---- Placement --------------------------------------------------------------------------------------------

// The usable brokers interleaved by rack (Kafka's getRackAlternatedBrokerList: racks in name order,
// brokers by id within a rack, one from each rack in turn). No rack and "" are one rack.
struct Arrangement {
  std::vector<std::int32_t> brokers;
  std::map<std::int32_t, std::string> rack_of;
  std::size_t rack_count = 0;
};

Arrangement arrange_usable_brokers(const MetadataImage& image) {
  Arrangement out;
  std::map<std::string, std::vector<std::int32_t>> by_rack;
  for (const auto& [id, b] : image.brokers()) {
    if (b.fenced || b.in_controlled_shutdown) continue;
    const std::string rack = b.rack.value_or("");
    by_rack[rack].push_back(id);  // brokers() is in id order
    out.rack_of[id] = rack;
  }
  out.rack_count = by_rack.size();
  for (std::size_t round = 0; out.brokers.size() < out.rack_of.size(); ++round) {
    for (const auto& [rack, ids] : by_rack) {
      if (round < ids.size()) out.brokers.push_back(ids[round]);
    }
  }
  return out;
}

std::string replication_error(std::int64_t factor, std::string_view why) {
  return "Unable to replicate the partition " + str(factor) + " time(s): " + std::string(why);
}

// Kafka's rack-aware AdminUtils assignment, which the striped placer follows in spirit: partition p's
// leader is the (p + start)-th broker of the arrangement (so leadership is spread evenly), its followers
// come after it shifted by a step that grows every full round, skipping racks (then brokers) that
// already hold a replica while there are others.
Result<std::vector<std::vector<std::int32_t>>> place(const MetadataImage& image, std::int32_t first_partition,
                                                     std::int32_t partitions, std::int16_t replication_factor,
                                                     std::uint32_t start) {
  if (replication_factor <= 0) {
    return make_error(ErrorKind::invalid_argument,
                      replication_error(replication_factor, "the replication factor must be positive."));
  }
  if (partitions < 0) return make_error(ErrorKind::invalid_argument, "cannot place " + str(partitions) + " partitions");
  const Arrangement arrangement = arrange_usable_brokers(image);
  const auto n = static_cast<std::int64_t>(arrangement.brokers.size());
  if (replication_factor > n) {
    return make_error(
        ErrorKind::invalid_argument,
        replication_error(replication_factor, "The target replication factor of " + str(replication_factor) +
                                                  " cannot be reached because only " + str(n) +
                                                  " broker(s) are registered."));
  }
  const std::int64_t start_index = start % static_cast<std::uint64_t>(n);
  std::int64_t shift = start_index;
  std::vector<std::vector<std::int32_t>> out;
  out.reserve(static_cast<std::size_t>(partitions));
  for (std::int64_t pid = first_partition; pid < static_cast<std::int64_t>(first_partition) + partitions; ++pid) {
    if (pid > 0 && pid % n == 0) ++shift;
    const std::int64_t first = (pid + start_index) % n;
    std::vector<std::int32_t> replicas{arrangement.brokers[static_cast<std::size_t>(first)]};
    std::set<std::string> racks{arrangement.rack_of.at(replicas[0])};
    // Each step visits another slot; within 2(n - 1) steps every replica has found its broker.
    for (std::int64_t k = 0; static_cast<std::int64_t>(replicas.size()) < replication_factor; ++k) {
      if (k > 2 * n * replication_factor) {
        return make_error(ErrorKind::internal, "replica placement found no broker for partition " + str(pid));
      }
      // replicaIndex: never the leader's slot, every other slot once per n - 1 steps.
      const std::int64_t slot =
          (first + 1 + (shift * static_cast<std::int64_t>(arrangement.rack_count) + k) % (n - 1)) % n;
      const std::int32_t broker = arrangement.brokers[static_cast<std::size_t>(slot)];
      const std::string& rack = arrangement.rack_of.at(broker);
      const bool rack_ok = !racks.contains(rack) || racks.size() == arrangement.rack_count;
      if (rack_ok && !contains(replicas, broker)) {
        replicas.push_back(broker);
        racks.insert(rack);
      }
    }
    out.push_back(std::move(replicas));
  }
  return out;
}

// ---- Topics -----------------------------------------------------------------------------------------------

// Kafka's Topic.unifyCollisionChars: '.' and '_' may collide in metric names.
std::string unify_collision_chars(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '.', '_');
  return out;
}

struct TopicError {
  std::int16_t code = kNone;
  std::string message;
};

std::optional<TopicError> collision(const MetadataImage& image, const std::set<std::string>& also_taken,
                                    const std::string& name) {
  if (name.find_first_of("._") == std::string::npos) return std::nullopt;
  const std::string unified = unify_collision_chars(name);
  auto collides = [&](const std::string& other) { return other != name && unify_collision_chars(other) == unified; };
  for (const TopicImage* t : image.topics()) {
    if (collides(t->name))
      return TopicError{kInvalidTopic, "Topic '" + name + "' collides with existing topic: " + t->name};
  }
  for (const std::string& other : also_taken) {
    if (collides(other))
      return TopicError{kInvalidTopic, "Topic '" + name + "' collides with existing topic: " + other};
  }
  return std::nullopt;
}

// A fresh id: not zero, not in use, not already drawn for this decision.
std::optional<Uuid> draw_id(const IdSource& ids, auto&& in_use) {
  for (int i = 0; i < kMaxIdDraws; ++i) {
    Uuid id = ids.new_uuid();
    if (id != Uuid{} && !in_use(id)) return id;
  }
  return std::nullopt;
}

struct PlannedPartition {
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
};

AnyRecord partition_record(const Uuid& topic_id, std::int32_t index, const PlannedPartition& p) {
  rec::PartitionRecord r;
  r.topic_id = topic_id;
  r.partition_id = index;
  r.replicas = p.replicas;
  r.isr = p.isr;
  r.leader = p.isr.front();
  r.leader_epoch = 0;
  r.partition_epoch = 0;
  return make_record(std::move(r));
}

// Kafka's validateManualPartitionAssignment, then the ISR (the active replicas) of one assignment.
Result<PlannedPartition> plan_manual(const MetadataImage& image, const std::vector<std::int32_t>& replicas,
                                     std::optional<std::size_t> replication_factor, std::int64_t partition_index) {
  auto bad = [](std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); };
  if (replicas.empty()) return bad("The manual partition assignment includes an empty replica list.");
  std::vector<std::int32_t> sorted = replicas;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (image.broker(sorted[i]) == nullptr) {
      return bad("The manual partition assignment includes broker " + str(sorted[i]) +
                 ", but no such broker is registered.");
    }
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      return bad("The manual partition assignment includes the broker " + str(sorted[i]) + " more than once.");
    }
  }
  if (replication_factor && sorted.size() != *replication_factor) {
    return bad("The manual partition assignment includes a partition with " +
               str(static_cast<std::int64_t>(sorted.size())) +
               " replica(s), but this is not consistent with previous partitions, which have " +
               str(static_cast<std::int64_t>(*replication_factor)) + " replica(s).");
  }
  PlannedPartition plan{replicas, {}};
  for (std::int32_t r : replicas) {
    if (is_active(image, r)) plan.isr.push_back(r);
  }
  if (plan.isr.empty()) {
    return bad("All brokers specified in the manual partition assignment for partition " + str(partition_index) +
               " are fenced or in controlled shutdown.");
  }
  return plan;
}

std::vector<PlannedPartition> plan_placed(const std::vector<std::vector<std::int32_t>>& placement) {
  std::vector<PlannedPartition> out;
  for (const auto& replicas : placement) out.push_back({replicas, replicas});  // placement uses active brokers only
  return out;
}

struct TopicPlan {
  std::vector<PlannedPartition> partitions;  // by index from 0
  std::int16_t replication_factor = 0;
  std::map<std::string, std::string> configs;
};

Result<TopicPlan> plan_topic(const MetadataImage& image, const msg::CreateTopicsRequest::CreatableTopic& topic,
                             const ControllerSettings& settings, const IdSource& ids, TopicError& error) {
  auto fail = [&](std::int16_t code, std::string message) {
    error = {code, message};
    return make_error(ErrorKind::invalid_argument, std::move(message));
  };
  TopicPlan plan;
  for (const auto& c : topic.configs) {
    if (!c.value) return fail(kInvalidConfig, "Null value not supported for topic configs: " + c.name);
    if (settings.topic_config_error) {
      if (auto why = settings.topic_config_error(c.name, *c.value)) return fail(kInvalidConfig, *why);
    }
    plan.configs[c.name] = *c.value;
  }
  if (!topic.assignments.empty()) {
    if (topic.replication_factor != -1) {
      return fail(kInvalidRequest,
                  "A manual partition assignment was specified, but replication factor was not set to -1.");
    }
    if (topic.num_partitions != -1) {
      return fail(kInvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1.");
    }
    if (topic.assignments.size() > static_cast<std::size_t>(kMaxPartitions)) {
      return fail(kInvalidPartitions, "Number of partitions is above Bulwark's limit of " + str(kMaxPartitions) + ".");
    }
    std::map<std::int32_t, PlannedPartition> by_index;
    std::optional<std::size_t> factor;
    for (const auto& a : topic.assignments) {
      if (by_index.contains(a.partition_index)) {
        return fail(kInvalidReplicaAssignment,
                    "Found multiple manual partition assignments for partition " + str(a.partition_index));
      }
      auto planned = plan_manual(image, a.broker_ids, factor, a.partition_index);
      if (!planned.ok()) return fail(kInvalidReplicaAssignment, planned.error().message);
      factor = a.broker_ids.size();
      by_index[a.partition_index] = std::move(*planned);
    }
    for (std::int32_t i = 0; i < static_cast<std::int32_t>(by_index.size()); ++i) {
      if (!by_index.contains(i)) {
        return fail(kInvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence");
      }
      plan.partitions.push_back(std::move(by_index.at(i)));
    }
    plan.replication_factor = static_cast<std::int16_t>(*factor);
    return plan;
  }
  if (topic.replication_factor < -1 || topic.replication_factor == 0) {
    return fail(kInvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.");
  }
  if (topic.num_partitions < -1 || topic.num_partitions == 0) {
    return fail(kInvalidPartitions, "Number of partitions was set to an invalid non-positive value.");
  }
  const std::int32_t partitions = topic.num_partitions == -1 ? settings.default_partitions : topic.num_partitions;
  const std::int16_t factor =
      topic.replication_factor == -1 ? settings.default_replication_factor : topic.replication_factor;
  if (partitions <= 0) return fail(kInvalidPartitions, "Number of partitions must be larger than 0.");
  if (partitions > kMaxPartitions) {
    return fail(kInvalidPartitions, "Number of partitions is above Bulwark's limit of " + str(kMaxPartitions) + ".");
  }
  const std::uint32_t usable = static_cast<std::uint32_t>(std::max<std::size_t>(1, image.live_brokers().size()));
  auto placement = place_replicas(image, partitions, factor, ids.pick ? ids.pick(usable) : 0);
  if (!placement.ok()) return fail(kInvalidReplicationFactor, placement.error().message);
  plan.partitions = plan_placed(*placement);
  plan.replication_factor = factor;
  return plan;
}

// Names given more than once in one request (Kafka's ControllerApis answers them "Duplicate topic name.").
std::set<std::string> duplicated(const std::vector<std::string>& names) {
  std::set<std::string> seen;
  std::set<std::string> twice;
  for (const auto& n : names) {
    if (!seen.insert(n).second) twice.insert(n);
  }
  return twice;
}

// ---- ACLs -------------------------------------------------------------------------------------------------

security::AclBinding binding_of(const AclEntry& acl) {
  return security::AclBinding{static_cast<security::ResourceType>(acl.resource_type),
                              acl.resource_name,
                              static_cast<security::PatternType>(acl.pattern_type),
                              acl.principal,
                              acl.host,
                              static_cast<security::Operation>(acl.operation),
                              static_cast<security::Permission>(acl.permission)};
}

Result<security::AclBinding> binding_from(const msg::CreateAclsRequest::AclCreation& c) {
  auto type = security::resource_type_from_code(c.resource_type);
  auto pattern = security::pattern_type_from_code(c.resource_pattern_type);
  auto op = security::operation_from_code(c.operation);
  auto perm = security::permission_from_code(c.permission_type);
  if (!type || !pattern || !op || !perm) {
    return make_error(ErrorKind::invalid_argument, "unknown resource type, pattern type, operation or permission code");
  }
  security::AclBinding binding{*type, c.resource_name, *pattern, c.principal, c.host, *op, *perm};
  if (Status valid = security::validate_acl_binding(binding); !valid.ok()) return valid.error();
  return binding;
}

}  // namespace

std::optional<std::string> invalid_topic_name_reason(const std::string& name) {
  if (name.empty()) return "Topic name is illegal, it can't be empty";
  if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
  if (name.size() > 249) return "Topic name is illegal, it can't be longer than 249 characters, topic name: " + name;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return "Topic name \"" + name +
             "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
    }
  }
  return std::nullopt;
}

// ---- Brokers ----------------------------------------------------------------------------------------------

Decision<msg::BrokerRegistrationResponse> register_broker(const MetadataImage& image,
                                                          const msg::BrokerRegistrationRequest& request,
                                                          bool session_expired) {
  Decision<msg::BrokerRegistrationResponse> out;
  auto refuse = [&](std::int16_t code) {
    out.response.error_code = code;
    return out;
  };
  if (request.broker_id < 0) return refuse(kInvalidRequest);
  std::set<std::string_view> listeners;
  for (const auto& l : request.listeners) {
    if (!listeners.insert(l.name).second) return refuse(kInvalidRequest);  // the image refuses it too
  }
  if (const BrokerRegistration* existing = image.broker(request.broker_id)) {
    if (existing->incarnation_id != request.incarnation_id && !session_expired) {
      return refuse(kDuplicateBrokerRegistration);  // "Another broker is registered with that broker id."
    }
  }
  // Every finalized feature must be in the broker's supported range (metadata.version's default is 1).
  for (const auto& feature : image.features()) {
    const std::string& name = feature.first;
    const std::int16_t level = feature.second;
    auto f =
        std::find_if(request.features.begin(), request.features.end(), [&](const auto& x) { return x.name == name; });
    const std::int16_t min = f != request.features.end() ? f->min_supported_version : std::int16_t{0};
    const std::int16_t absent_max = name == kMetadataVersionFeature ? 1 : 0;
    const std::int16_t max = f != request.features.end() ? f->max_supported_version : absent_max;
    if (level < min || level > max) return refuse(kUnsupportedVersion);
  }
  rec::RegisterBrokerRecord r;
  r.broker_id = request.broker_id;
  r.is_migrating_zk_broker = request.is_migrating_zk_broker;
  r.incarnation_id = request.incarnation_id;
  r.broker_epoch = -1;  // assign_broker_epoch: the record's offset
  for (const auto& l : request.listeners) r.end_points.push_back({l.name, l.host, l.port, l.security_protocol, {}});
  for (const auto& f : request.features)
    r.features.push_back({f.name, f.min_supported_version, f.max_supported_version, {}});
  r.rack = request.rack;
  r.fenced = true;
  r.in_controlled_shutdown = false;
  r.log_dirs = request.log_dirs;
  out.records.push_back(make_record(std::move(r)));
  return out;
}

void assign_broker_epoch(Decision<msg::BrokerRegistrationResponse>& decision, std::int64_t offset) {
  for (AnyRecord& record : decision.records) {
    if (auto* r = std::get_if<rec::RegisterBrokerRecord>(&record.record)) {
      r->broker_epoch = offset;
      decision.response.broker_epoch = offset;
    }
  }
}

std::vector<AnyRecord> fence_broker(const MetadataImage& image, std::int32_t broker_id) {
  const BrokerRegistration* b = image.broker(broker_id);
  if (b == nullptr) return {};
  std::vector<AnyRecord> records;
  rec::FenceBrokerRecord fence;
  fence.id = broker_id;
  fence.epoch = b->epoch;
  records.push_back(make_record(fence));
  for (AnyRecord& change : move_off_broker(image, broker_id)) records.push_back(std::move(change));
  return records;
}

std::vector<AnyRecord> elect_leaders(const MetadataImage& image) {
  std::vector<AnyRecord> records;
  auto active = [&](std::int32_t r) { return is_active(image, r); };
  for (const TopicImage* topic : image.topics()) {
    for (const auto& [index, p] : topic->partitions) {
      if (p.leader >= 0 && active(p.leader)) continue;
      const std::int32_t leader = elect_leader(p, p.isr, active);
      if (leader == kNoLeader || leader == p.leader) continue;
      rec::PartitionChangeRecord change;
      change.topic_id = topic->id;
      change.partition_id = index;
      change.leader = leader;
      records.push_back(make_record(std::move(change)));
    }
  }
  return records;
}

namespace {
// A request naming a broker and its epoch: BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH, or 0.
std::int16_t registration_error(const BrokerRegistration* broker, std::int64_t broker_epoch) {
  if (broker == nullptr) return kBrokerIdNotRegistered;
  if (broker->epoch != broker_epoch) return kStaleBrokerEpoch;
  return 0;
}
}  // namespace

Decision<msg::BrokerHeartbeatResponse> broker_heartbeat(const MetadataImage& image,
                                                        const msg::BrokerHeartbeatRequest& request) {
  Decision<msg::BrokerHeartbeatResponse> out;
  const BrokerRegistration* b = image.broker(request.broker_id);
  if (auto error = registration_error(b, request.broker_epoch)) {
    out.response.error_code = error;
    return out;
  }
  auto& response = out.response;
  response.is_caught_up = request.current_metadata_offset >= b->epoch;
  auto shut_down_now = [&] {
    if (!b->fenced) out.records = fence_broker(image, b->id);
    response.is_fenced = true;
    response.should_shut_down = true;
    return out;
  };
  auto stay = [&](bool fenced) {
    response.is_fenced = fenced;
    return out;
  };
  // The state Kafka's BrokerHeartbeatManager keeps, read from the registration.
  if (b->in_controlled_shutdown) {
    if (b->fenced) return shut_down_now();  // finished: it has nothing left to do but stop
    if (leads_any(image, b->id)) {
      out.records = move_off_broker(image, b->id);  // leaderships placed on it since: move them too
      return stay(false);
    }
    return shut_down_now();
  }
  if (b->fenced) {
    if (request.want_shut_down) return shut_down_now();
    if (!request.want_fence && response.is_caught_up) {
      rec::UnfenceBrokerRecord unfence;
      unfence.id = b->id;
      unfence.epoch = b->epoch;
      out.records.push_back(make_record(unfence));
      return stay(false);
    }
    return stay(true);
  }
  if (request.want_fence) {
    if (request.want_shut_down) return shut_down_now();
    out.records = fence_broker(image, b->id);
    return stay(true);
  }
  if (request.want_shut_down) {
    if (!leads_any(image, b->id)) return shut_down_now();
    rec::BrokerRegistrationChangeRecord change;
    change.broker_id = b->id;
    change.broker_epoch = b->epoch;
    change.in_controlled_shutdown = 1;
    out.records.push_back(make_record(change));
    // Moved as if it were already in controlled shutdown: it is not an acceptable leader any more.
    for (AnyRecord& move : move_off_broker(image, b->id)) out.records.push_back(std::move(move));
    return stay(false);
  }
  return stay(false);
}

// ---- Partitions -------------------------------------------------------------------------------------------

namespace {

enum class ElectionType : std::int8_t { preferred = 0, unclean = 1 };

// One partition's election: the record, or the error code that says why there is none.
std::variant<AnyRecord, std::int16_t> elect_one(const MetadataImage& image, const Uuid& topic_id, const PartitionState& p,
                                               ElectionType type) {
  auto active = [&](std::int32_t r) { return is_active(image, r); };
  rec::PartitionChangeRecord change;
  change.topic_id = topic_id;
  change.partition_id = p.partition;
  if (type == ElectionType::preferred) {
    const std::int32_t preferred = p.replicas.empty() ? kNoLeader : p.replicas.front();
    if (p.leader == preferred) return kElectionNotNeeded;
    if (preferred == kNoLeader || !contains(p.isr, preferred) || !active(preferred)) return kPreferredLeaderNotAvailable;
    change.leader = preferred;  // the delta bumps the leader epoch
    return make_record(std::move(change));
  }
  if (p.leader >= 0 && active(p.leader)) return kElectionNotNeeded;
  std::int32_t leader = elect_leader(p, p.isr, active);
  if (leader == kNoLeader) {
    // Unclean: any live replica, which then is the whole ISR (what it has is all there is).
    auto live = std::find_if(p.replicas.begin(), p.replicas.end(), active);
    if (live == p.replicas.end()) return kEligibleLeadersNotAvailable;
    leader = *live;
    change.isr = std::vector<std::int32_t>{leader};
  }
  change.leader = leader;
  return make_record(std::move(change));
}

}  // namespace

Decision<msg::ElectLeadersResponse> elect_leaders_request(const MetadataImage& image, const msg::ElectLeadersRequest& request) {
  Decision<msg::ElectLeadersResponse> out;
  const auto type = static_cast<ElectionType>(request.election_type);
  if (type != ElectionType::preferred && type != ElectionType::unclean) {
    out.response.error_code = kInvalidRequest;
    return out;
  }
  auto elect = [&](msg::ElectLeadersResponse::ReplicaElectionResult& result, const TopicImage* topic,
                   std::int32_t index, bool report_all) {
    const auto* p = topic ? topic->partition(index) : nullptr;
    if (!p) {
      result.partition_result.push_back({index, kUnknownTopicOrPartition, "This server does not host this topic-partition.", {}});
      return;
    }
    auto outcome = elect_one(image, topic->id, *p, type);
    if (auto* record = std::get_if<AnyRecord>(&outcome)) {
      out.records.push_back(std::move(*record));
      result.partition_result.push_back({index, kNone, std::nullopt, {}});
    } else if (report_all) {
      result.partition_result.push_back({index, std::get<std::int16_t>(outcome), std::nullopt, {}});
    }
  };
  if (!request.topic_partitions) {
    for (const TopicImage* topic : image.topics()) {
      msg::ElectLeadersResponse::ReplicaElectionResult result;
      result.topic = topic->name;
      for (const auto& [index, _] : topic->partitions) elect(result, topic, index, false);
      if (!result.partition_result.empty()) out.response.replica_election_results.push_back(std::move(result));
    }
    return out;
  }
  for (const auto& named : *request.topic_partitions) {
    auto& result = out.response.replica_election_results.emplace_back();
    result.topic = named.topic;
    for (auto index : named.partitions) elect(result, image.topic(named.topic), index, true);
  }
  return out;
}

std::vector<AnyRecord> rebalance_leaders(const MetadataImage& image, std::int32_t imbalance_percent) {
  // Per preferred broker: how many of its partitions it does not lead (Kafka's checkAndTriggerAutoLeaderRebalance).
  std::map<std::int32_t, std::pair<int, int>> share;  // broker -> (preferred partitions, led elsewhere)
  for (const TopicImage* topic : image.topics())
    for (const auto& [index, p] : topic->partitions) {
      if (p.replicas.empty()) continue;
      auto& [total, elsewhere] = share[p.replicas.front()];
      ++total;
      elsewhere += p.leader != p.replicas.front();
    }
  std::vector<AnyRecord> records;
  for (const TopicImage* topic : image.topics())
    for (const auto& [index, p] : topic->partitions) {
      if (p.replicas.empty()) continue;
      const auto [total, elsewhere] = share[p.replicas.front()];
      if (elsewhere * 100 <= imbalance_percent * total) continue;
      auto outcome = elect_one(image, topic->id, p, ElectionType::preferred);
      if (auto* record = std::get_if<AnyRecord>(&outcome)) records.push_back(std::move(*record));
    }
  return records;
}

namespace {

// A partition's replicas become `target` (no reassignment in progress after it), its ISR what of
// `isr` is in the target, and a leader not in the target hands over to the first target replica in
// that ISR. False, and `change` untouched, when no target replica is in sync and live.
bool settle_replicas(const MetadataImage& image, const PartitionState& p, const std::vector<std::int32_t>& target,
                     const std::vector<std::int32_t>& isr, rec::PartitionChangeRecord& change) {
  std::vector<std::int32_t> target_isr;
  for (std::int32_t r : isr)
    if (contains(target, r)) target_isr.push_back(r);
  PartitionState next = p;
  next.replicas = target;
  const std::int32_t leader = elect_leader(next, target_isr, [&](std::int32_t r) { return is_active(image, r); });
  if (target_isr.empty() || leader == kNoLeader) return false;
  change.replicas = target;
  if (target_isr != p.isr) change.isr = target_isr;
  change.adding_replicas = std::vector<std::int32_t>{};
  change.removing_replicas = std::vector<std::int32_t>{};
  if (leader != p.leader) change.leader = leader;  // the delta bumps the leader epoch
  return true;
}

// The end of a reassignment once every adding replica is in `isr` (Kafka's
// PartitionReassignmentReplicas.maybeCompleteReassignment): the replicas become the target, without
// the removing ones.
bool complete_reassignment(const MetadataImage& image, const PartitionState& p, const std::vector<std::int32_t>& isr,
                           rec::PartitionChangeRecord& change) {
  if (p.adding_replicas.empty() && p.removing_replicas.empty()) return false;
  for (std::int32_t r : p.adding_replicas)
    if (!contains(isr, r)) return false;
  std::vector<std::int32_t> target;
  for (std::int32_t r : p.replicas)
    if (!contains(p.removing_replicas, r)) target.push_back(r);
  return settle_replicas(image, p, target, isr, change);
}

using AlterPartitionData = msg::AlterPartitionRequest::PartitionData;
using AlterPartitionResult = msg::AlterPartitionResponse::PartitionData;

constexpr std::int8_t kRecovered = 0;
constexpr std::int8_t kRecovering = 1;

// The requested ISR with broker epochs: v3's NewIsrWithEpochs, or NewIsr with -1 (no epoch check).
std::vector<msg::AlterPartitionRequest::BrokerState> requested_isr(const AlterPartitionData& data,
                                                                   std::int16_t version) {
  if (version >= 3) return data.new_isr_with_epochs;
  std::vector<msg::AlterPartitionRequest::BrokerState> out;
  for (std::int32_t id : data.new_isr) out.push_back({id, -1, {}});
  return out;
}

// Kafka's Replicas.validateIsr: distinct, non-negative members that are all replicas.
bool isr_within_replicas(const std::vector<std::int32_t>& replicas, const std::vector<std::int32_t>& isr) {
  std::set<std::int32_t> seen;
  for (std::int32_t id : isr) {
    if (id < 0 || !contains(replicas, id) || !seen.insert(id).second) return false;
  }
  return true;
}

// Kafka's ineligibleReplicasForIsr: only a registered, unfenced broker that is not shutting down (with
// the epoch the leader saw, when it sent one) may be in an ISR.
bool eligible_for_isr(const MetadataImage& image, const msg::AlterPartitionRequest::BrokerState& member) {
  const BrokerRegistration* b = image.broker(member.broker_id);
  if (b == nullptr || b->in_controlled_shutdown || b->fenced) return false;
  return member.broker_epoch == -1 || member.broker_epoch == b->epoch;
}

// Kafka's validateAlterPartitionData, in its order; kNone when the change may be made.
std::int16_t alter_partition_error(const MetadataImage& image, std::int32_t broker_id, const PartitionState& p,
                                   const AlterPartitionData& data, std::int16_t version) {
  if (data.leader_epoch > p.leader_epoch || data.partition_epoch > p.partition_epoch) return kNotControllerCode;
  if (data.leader_epoch < p.leader_epoch) return kFencedLeaderEpoch;
  if (broker_id != p.leader) return kInvalidRequest;
  if (data.partition_epoch < p.partition_epoch) return kInvalidUpdateVersion;
  const auto members = requested_isr(data, version);
  std::vector<std::int32_t> isr;
  for (const auto& m : members) isr.push_back(m.broker_id);
  if (!isr_within_replicas(p.replicas, isr) || !contains(isr, p.leader)) return kInvalidRequest;
  const std::int8_t recovery = data.leader_recovery_state;
  if (recovery != kRecovered && recovery != kRecovering) return kInvalidRequest;
  if (recovery == kRecovering && isr.size() > 1) return kInvalidRequest;
  if (p.leader_recovery_state == kRecovered && recovery == kRecovering) return kInvalidRequest;
  for (const auto& m : members) {
    if (!eligible_for_isr(image, m)) return version > 1 ? kIneligibleReplica : kOperationNotAttempted;
  }
  return kNone;
}

// A validated change: the record when the ISR or recovery state changes, and the state it leaves.
AlterPartitionResult apply_alter_partition(const MetadataImage& image, const Uuid& topic_id, const PartitionState& p,
                                           const AlterPartitionData& data, std::int16_t version,
                                           std::vector<AnyRecord>& records) {
  std::vector<std::int32_t> isr;
  for (const auto& m : requested_isr(data, version)) isr.push_back(m.broker_id);
  AlterPartitionResult result;
  result.partition_index = p.partition;
  result.leader_id = p.leader;
  result.leader_epoch = p.leader_epoch;  // no bump on an ISR change from metadata.version 3.6
  result.isr = isr;
  result.leader_recovery_state = data.leader_recovery_state;
  result.partition_epoch = p.partition_epoch;
  rec::PartitionChangeRecord change;
  change.topic_id = topic_id;
  change.partition_id = p.partition;
  if (isr != p.isr) change.isr = isr;  // order matters, as in Kafka's list comparison
  if (data.leader_recovery_state != p.leader_recovery_state) change.leader_recovery_state = data.leader_recovery_state;
  if (complete_reassignment(image, p, isr, change)) {
    if (change.isr) result.isr = *change.isr;
    if (change.leader != kNoLeaderChange) {
      result.leader_id = change.leader;
      result.leader_epoch = p.leader_epoch + 1;
    }
  }
  if (!change.isr && change.leader_recovery_state == -1) return result;
  records.push_back(make_record(std::move(change)));
  result.partition_epoch = p.partition_epoch + 1;  // what the delta makes of the record
  return result;
}

}  // namespace

Decision<msg::AlterPartitionResponse> alter_partition(const MetadataImage& image,
                                                      const msg::AlterPartitionRequest& request, std::int16_t version) {
  Decision<msg::AlterPartitionResponse> out;
  const BrokerRegistration* requester = image.broker(request.broker_id);
  if (requester == nullptr || requester->epoch != request.broker_epoch) {
    out.response.error_code = kStaleBrokerEpoch;  // Kafka's checkBrokerEpoch: unknown brokers too
    return out;
  }
  for (const auto& topic_data : request.topics) {
    auto& answer = out.response.topics.emplace_back();
    answer.topic_name = topic_data.topic_name;
    answer.topic_id = topic_data.topic_id;
    const TopicImage* topic = version >= 2 ? image.topic(topic_data.topic_id) : image.topic(topic_data.topic_name);
    for (const auto& data : topic_data.partitions) {
      const PartitionState* p = topic != nullptr ? topic->partition(data.partition_index) : nullptr;
      std::int16_t error = kNone;
      if (topic == nullptr) {
        error = version >= 2 ? kUnknownTopicId : kUnknownTopicOrPartition;
      } else if (p == nullptr) {
        error = kUnknownTopicOrPartition;
      } else {
        error = alter_partition_error(image, request.broker_id, *p, data, version);
      }
      if (error != kNone) {
        AlterPartitionResult refused;
        refused.partition_index = data.partition_index;
        refused.error_code = error;
        answer.partitions.push_back(std::move(refused));
        continue;
      }
      answer.partitions.push_back(apply_alter_partition(image, topic->id, *p, data, version, out.records));
    }
  }
  return out;
}

// ---- Reassignments ----------------------------------------------------------------------------------------

namespace {

using Refusal = std::pair<std::int16_t, std::string>;

// One partition's reassignment to `target` (nullopt: cancel) as a PartitionChangeRecord (none when it
// is there already), or the refusal.
std::variant<std::optional<AnyRecord>, Refusal> reassign_one(const MetadataImage& image, const Uuid& topic_id,
                                                             const PartitionState& p,
                                                             const std::optional<std::vector<std::int32_t>>& target) {
  const bool in_progress = !p.adding_replicas.empty() || !p.removing_replicas.empty();
  std::vector<std::int32_t> original;  // the replicas before any reassignment in progress
  for (std::int32_t r : p.replicas)
    if (!contains(p.adding_replicas, r)) original.push_back(r);
  if (!target && !in_progress) return Refusal{kNoReassignmentInProgress, "No reassignment is in progress for this partition."};
  const std::vector<std::int32_t> wanted = target ? *target : original;
  if (wanted.empty()) return Refusal{kInvalidReplicaAssignment, "The replica list is empty."};
  if (std::set<std::int32_t>(wanted.begin(), wanted.end()).size() != wanted.size())
    return Refusal{kInvalidReplicaAssignment, "The replica list has duplicates."};
  for (std::int32_t r : wanted)
    if (image.broker(r) == nullptr) return Refusal{kInvalidReplicaAssignment, "Broker " + str(r) + " is not registered."};
  if (wanted == original && !in_progress) return std::optional<AnyRecord>{};
  std::vector<std::int32_t> adding, removing;
  for (std::int32_t r : wanted)
    if (!contains(original, r)) adding.push_back(r);
  for (std::int32_t r : original)
    if (!contains(wanted, r)) removing.push_back(r);
  rec::PartitionChangeRecord change;
  change.topic_id = topic_id;
  change.partition_id = p.partition;
  if (adding.empty()) {  // nothing to copy (a shrink, a reordering, a cancel): done at once
    if (!settle_replicas(image, p, wanted, p.isr, change))
      return Refusal{kInvalidReplicaAssignment, "None of the target replicas is in sync and live."};
    return std::optional<AnyRecord>{make_record(std::move(change))};
  }
  std::vector<std::int32_t> replicas = wanted;  // the target first, then what leaves once it is in sync
  replicas.insert(replicas.end(), removing.begin(), removing.end());
  std::vector<std::int32_t> isr;  // a replaced reassignment's additions leave the ISR with it
  for (std::int32_t r : p.isr)
    if (contains(replicas, r)) isr.push_back(r);
  if (isr.empty()) return Refusal{kInvalidReplicaAssignment, "None of the current replicas in sync would stay."};
  change.replicas = replicas;
  change.adding_replicas = adding;
  change.removing_replicas = removing;
  if (isr != p.isr) change.isr = isr;
  return std::optional<AnyRecord>{make_record(std::move(change))};
}

}  // namespace

Decision<msg::AlterPartitionReassignmentsResponse> alter_partition_reassignments(
    const MetadataImage& image, const msg::AlterPartitionReassignmentsRequest& request) {
  Decision<msg::AlterPartitionReassignmentsResponse> out;
  out.response.error_message = std::nullopt;
  for (const auto& topic_request : request.topics) {
    auto& topic_out = out.response.responses.emplace_back();
    topic_out.name = topic_request.name;
    const TopicImage* topic = image.topic(topic_request.name);
    for (const auto& partition : topic_request.partitions) {
      auto& result = topic_out.partitions.emplace_back();
      result.partition_index = partition.partition_index;
      result.error_message = std::nullopt;
      const PartitionState* p = topic ? topic->partition(partition.partition_index) : nullptr;
      if (!p) {
        result.error_code = kUnknownTopicOrPartition;
        result.error_message = "This server does not host this topic-partition.";
        continue;
      }
      auto outcome = reassign_one(image, topic->id, *p, partition.replicas);
      if (auto* refusal = std::get_if<Refusal>(&outcome)) {
        result.error_code = refusal->first;
        result.error_message = refusal->second;
      } else if (auto& record = std::get<std::optional<AnyRecord>>(outcome)) {
        out.records.push_back(std::move(*record));
      }
    }
  }
  return out;
}

msg::ListPartitionReassignmentsResponse list_partition_reassignments(const MetadataImage& image,
                                                                     const msg::ListPartitionReassignmentsRequest& request) {
  msg::ListPartitionReassignmentsResponse out;
  out.error_message = std::nullopt;
  auto add_topic = [&](const TopicImage& topic, const std::vector<std::int32_t>* only) {
    msg::ListPartitionReassignmentsResponse::OngoingTopicReassignment topic_out;
    topic_out.name = topic.name;
    for (const auto& [index, p] : topic.partitions) {
      if (only && !contains(*only, index)) continue;
      if (p.adding_replicas.empty() && p.removing_replicas.empty()) continue;
      topic_out.partitions.push_back({index, p.replicas, p.adding_replicas, p.removing_replicas, {}});
    }
    if (!topic_out.partitions.empty()) out.topics.push_back(std::move(topic_out));
  };
  if (!request.topics) {
    for (const TopicImage* topic : image.topics()) add_topic(*topic, nullptr);
  } else {
    for (const auto& wanted : *request.topics)
      if (const TopicImage* topic = image.topic(wanted.name)) add_topic(*topic, &wanted.partition_indexes);
  }
  return out;
}

// ---- Topics -----------------------------------------------------------------------------------------------

Result<std::vector<std::vector<std::int32_t>>> place_replicas(const MetadataImage& image, std::int32_t partitions,
                                                              std::int16_t replication_factor, std::uint32_t start) {
  return place(image, 0, partitions, replication_factor, start);
}

Decision<msg::CreateTopicsResponse> create_topics(const MetadataImage& image, const msg::CreateTopicsRequest& request,
                                                  std::int16_t request_version, const ControllerSettings& settings,
                                                  const IdSource& ids) {
  Decision<msg::CreateTopicsResponse> out;
  std::vector<std::string> names;
  for (const auto& t : request.topics) names.push_back(t.name);
  const std::set<std::string> twice = duplicated(names);
  std::set<std::string> answered;
  std::set<std::string> created;  // earlier in this request
  std::set<Uuid> new_ids;
  std::vector<AnyRecord> records;
  for (const auto& topic : request.topics) {
    if (!answered.insert(topic.name).second) continue;  // one answer per name
    msg::CreateTopicsResponse::CreatableTopicResult result;
    result.name = topic.name;
    result.error_message = std::nullopt;
    auto refuse = [&](std::int16_t code, std::string message) {
      result.error_code = code;
      result.error_message = std::move(message);
      out.response.topics.push_back(result);
    };
    if (twice.contains(topic.name)) {
      refuse(kInvalidRequest, "Duplicate topic name.");
      continue;
    }
    if (auto why = invalid_topic_name_reason(topic.name)) {
      refuse(kInvalidTopic, *why);
      continue;
    }
    if (image.topic(topic.name) != nullptr) {
      refuse(kTopicAlreadyExists, "Topic '" + topic.name + "' already exists.");
      continue;
    }
    if (auto collides = collision(image, created, topic.name)) {
      refuse(collides->code, collides->message);
      continue;
    }
    TopicError error;
    auto plan = plan_topic(image, topic, settings, ids, error);
    if (!plan.ok()) {
      refuse(error.code, error.message);
      continue;
    }
    Uuid id{};
    if (!request.validate_only) {
      auto drawn = draw_id(ids, [&](const Uuid& u) { return image.topic(u) != nullptr || new_ids.contains(u); });
      if (!drawn) {
        refuse(kUnknownServerError, "could not draw an unused topic id");
        continue;
      }
      id = *drawn;
      new_ids.insert(id);
      rec::TopicRecord t;
      t.name = topic.name;
      t.topic_id = id;
      records.push_back(make_record(std::move(t)));
      for (const auto& [key, value] : plan->configs) {
        rec::ConfigRecord c;
        c.resource_type = static_cast<std::int8_t>(ConfigResourceType::topic);
        c.resource_name = topic.name;
        c.name = key;
        c.value = value;
        records.push_back(make_record(std::move(c)));
      }
      for (std::size_t i = 0; i < plan->partitions.size(); ++i) {
        records.push_back(partition_record(id, static_cast<std::int32_t>(i), plan->partitions[i]));
      }
    }
    created.insert(topic.name);
    result.topic_id = id;
    result.error_code = kNone;
    if (request_version >= 5) {
      result.num_partitions = static_cast<std::int32_t>(plan->partitions.size());
      result.replication_factor = plan->replication_factor;
      std::vector<msg::CreateTopicsResponse::CreatableTopicConfigs> configs;
      for (const auto& [key, value] : plan->configs) {
        msg::CreateTopicsResponse::CreatableTopicConfigs c;
        c.name = key;
        c.value = value;
        c.config_source = 1;  // DYNAMIC_TOPIC_CONFIG
        configs.push_back(std::move(c));
      }
      result.configs = std::move(configs);
    }
    out.response.topics.push_back(std::move(result));
  }
  if (!request.validate_only) out.records = std::move(records);
  return out;
}

Decision<msg::DeleteTopicsResponse> delete_topics(const MetadataImage& image, const msg::DeleteTopicsRequest& request,
                                                  std::int16_t request_version) {
  Decision<msg::DeleteTopicsResponse> out;
  struct Ref {
    std::optional<std::string> name;
    Uuid id{};
  };
  std::vector<Ref> refs;
  if (request_version >= 6) {
    for (const auto& t : request.topics) refs.push_back({t.name, t.topic_id});
  } else {
    for (const auto& n : request.topic_names) refs.push_back({n, Uuid{}});
  }
  std::map<std::string, int> name_count;
  std::map<Uuid, int> id_count;
  for (const Ref& r : refs) {
    if (r.name && r.id == Uuid{}) ++name_count[*r.name];
    if (!r.name && r.id != Uuid{}) ++id_count[r.id];
  }
  std::set<std::string> answered_names;
  std::set<Uuid> answered_ids;
  std::set<Uuid> removed;
  for (const Ref& r : refs) {
    msg::DeleteTopicsResponse::DeletableTopicResult result;
    result.name = r.name;
    result.topic_id = r.id;
    auto answer = [&](std::int16_t code, std::optional<std::string> message) {
      result.error_code = code;
      result.error_message = std::move(message);
      out.response.responses.push_back(result);
    };
    if (!r.name && r.id == Uuid{}) {
      answer(kInvalidRequest, "Neither topic name nor id were specified.");
      continue;
    }
    if (r.name && r.id != Uuid{}) {
      answer(kInvalidRequest, "You may not specify both topic name and topic id.");
      continue;
    }
    const TopicImage* topic = nullptr;
    if (r.name) {
      if (!answered_names.insert(*r.name).second) continue;
      if (name_count[*r.name] > 1) {
        answer(kInvalidRequest, "Duplicate topic name.");
        continue;
      }
      topic = image.topic(*r.name);
      if (topic == nullptr) {
        answer(kUnknownTopicOrPartition, std::string(kUnknownTopicMessage));
        continue;
      }
    } else {
      if (!answered_ids.insert(r.id).second) continue;
      if (id_count[r.id] > 1) {
        answer(kInvalidRequest, "Duplicate topic id.");
        continue;
      }
      topic = image.topic(r.id);
      if (topic == nullptr) {
        answer(kUnknownTopicId, std::string(kUnknownTopicIdMessage));
        continue;
      }
    }
    result.name = topic->name;
    result.topic_id = topic->id;
    if (removed.insert(topic->id).second) {  // by name and by id in one request: removed once
      rec::RemoveTopicRecord remove;
      remove.topic_id = topic->id;
      out.records.push_back(make_record(remove));
    }
    answer(kNone, std::nullopt);
  }
  return out;
}

Decision<msg::CreatePartitionsResponse> create_partitions(const MetadataImage& image,
                                                          const msg::CreatePartitionsRequest& request,
                                                          const IdSource& ids) {
  Decision<msg::CreatePartitionsResponse> out;
  std::vector<std::string> names;
  for (const auto& t : request.topics) names.push_back(t.name);
  const std::set<std::string> twice = duplicated(names);
  std::set<std::string> answered;
  std::vector<AnyRecord> records;
  for (const auto& topic : request.topics) {
    if (!answered.insert(topic.name).second) continue;
    msg::CreatePartitionsResponse::CreatePartitionsTopicResult result;
    result.name = topic.name;
    auto answer = [&](std::int16_t code, std::optional<std::string> message) {
      result.error_code = code;
      result.error_message = std::move(message);
      out.response.results.push_back(result);
    };
    if (twice.contains(topic.name)) {
      answer(kInvalidRequest, "Duplicate topic name.");
      continue;
    }
    const TopicImage* info = image.topic(topic.name);
    if (info == nullptr) {
      answer(kUnknownTopicOrPartition, std::string(kUnknownTopicMessage));
      continue;
    }
    const auto current = static_cast<std::int32_t>(info->partitions.size());
    if (topic.count == current) {
      answer(kInvalidPartitions, "Topic already has " + str(current) + " partition(s).");
      continue;
    }
    if (topic.count < current) {
      answer(kInvalidPartitions, "The topic " + topic.name + " currently has " + str(current) + " partition(s); " +
                                     str(topic.count) + " would not be an increase.");
      continue;
    }
    if (topic.count > kMaxPartitions) {
      answer(kInvalidPartitions, "Number of partitions is above Bulwark's limit of " + str(kMaxPartitions) + ".");
      continue;
    }
    if (info->partitions.empty() || info->partitions.rbegin()->first != current - 1) {
      answer(kUnknownServerError,
             "Invalid state: topic " + topic.name + " has partitions that are not 0.." + str(current - 1));
      continue;
    }
    const std::int32_t additional = topic.count - current;
    const auto factor = static_cast<std::int16_t>(info->partitions.begin()->second.replicas.size());
    std::vector<PlannedPartition> planned;
    if (topic.assignments) {
      if (topic.assignments->size() != static_cast<std::size_t>(additional)) {
        answer(kInvalidReplicaAssignment,
               "Attempted to add " + str(additional) + " additional partition(s), but only " +
                   str(static_cast<std::int64_t>(topic.assignments->size())) + " assignment(s) were specified.");
        continue;
      }
      std::optional<std::string> bad;
      for (std::size_t i = 0; i < topic.assignments->size() && !bad; ++i) {
        auto plan = plan_manual(image, (*topic.assignments)[i].broker_ids, static_cast<std::size_t>(factor),
                                current + static_cast<std::int64_t>(i));
        if (!plan.ok()) {
          bad = plan.error().message;
        } else {
          planned.push_back(std::move(*plan));
        }
      }
      if (bad) {
        answer(kInvalidReplicaAssignment, *bad);
        continue;
      }
    } else {
      const std::uint32_t usable = static_cast<std::uint32_t>(std::max<std::size_t>(1, image.live_brokers().size()));
      auto placement = place(image, current, additional, factor, ids.pick ? ids.pick(usable) : 0);
      if (!placement.ok()) {
        answer(kInvalidReplicationFactor, placement.error().message);
        continue;
      }
      planned = plan_placed(*placement);
    }
    for (std::size_t i = 0; i < planned.size(); ++i) {
      records.push_back(partition_record(info->id, current + static_cast<std::int32_t>(i), planned[i]));
    }
    answer(kNone, std::nullopt);
  }
  if (!request.validate_only) out.records = std::move(records);
  return out;
}

// ---- Configs ----------------------------------------------------------------------------------------------

namespace {

// IncrementalAlterConfigs' OpType.
enum ConfigOp : std::int8_t { kSet = 0, kDelete = 1, kAppend = 2, kSubtract = 3 };

struct ConfigEdit {
  const std::string& name;
  std::int8_t op;
  const std::optional<std::string>& value;
};

struct EditOutcome {
  std::int16_t error = kNone;
  std::string message;
  std::vector<AnyRecord> records;
};

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto end = comma == std::string_view::npos ? text.size() : comma;
    if (end > start) out.emplace_back(text.substr(start, end - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

// A list value after APPEND (the items not there yet) or SUBTRACT.
std::string edit_list(std::string_view current, std::string_view items, bool append) {
  auto list = split_list(current);
  for (const auto& item : split_list(items)) {
    auto at = std::find(list.begin(), list.end(), item);
    if (append && at == list.end()) list.push_back(item);
    if (!append && at != list.end()) list.erase(at);
  }
  std::string out;
  for (const auto& item : list) out += (out.empty() ? "" : ",") + item;
  return out;
}

// The ConfigRecords that make `edits` true of one resource, or why not (then no records).
// replace_all (AlterConfigs): the keys not edited are deleted.
EditOutcome edit_configs(const MetadataImage& image, std::int8_t type, const std::string& name,
                         const std::vector<ConfigEdit>& edits, bool replace_all, const ControllerSettings& settings) {
  EditOutcome out;
  auto fail = [&](std::int16_t code, std::string message) {
    out.error = code;
    out.message = std::move(message);
    out.records.clear();
    return out;
  };
  const bool topic = type == static_cast<std::int8_t>(ConfigResourceType::topic);
  const bool broker = type == static_cast<std::int8_t>(ConfigResourceType::broker);
  if (!topic && !broker) return fail(kInvalidRequest, "Bulwark alters topic and broker configs only");
  if (topic && image.topic(name) == nullptr) return fail(kUnknownTopicOrPartition, "The topic '" + name + "' does not exist.");
  if (broker && !name.empty() && name.find_first_not_of("0123456789") != std::string::npos)
    return fail(kInvalidRequest, "Invalid broker id " + name + " (a node id, or empty for the cluster default)");
  const ConfigMap* current = image.configs({topic ? ConfigResourceType::topic : ConfigResourceType::broker, name});
  auto current_value = [&](const std::string& key) -> std::optional<std::string> {
    if (current == nullptr) return std::nullopt;
    auto it = current->find(key);
    return it == current->end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  std::map<std::string, std::optional<std::string>> next;  // nullopt = delete
  for (const auto& edit : edits) {
    if (next.count(edit.name) != 0) return fail(kInvalidRequest, "Error due to duplicate config keys");
    std::optional<std::string> value;
    switch (edit.op) {
      case kSet:
        if (!edit.value) return fail(kInvalidRequest, "Null value not supported for : " + edit.name);
        value = *edit.value;
        break;
      case kDelete: break;
      case kAppend:
      case kSubtract:
        value = edit_list(current_value(edit.name).value_or(""), edit.value.value_or(""), edit.op == kAppend);
        break;
      default: return fail(kInvalidRequest, "Unknown config operation " + std::to_string(edit.op));
    }
    if (topic && value) {
      if (auto why = settings.topic_config_error(edit.name, *value)) return fail(kInvalidConfig, *why);
    }
    if (broker) {
      if (!settings.broker_config_error) return fail(kInvalidConfig, "Cannot update these configs dynamically: " + edit.name);
      if (auto why = settings.broker_config_error(edit.name, value, !name.empty())) return fail(kInvalidConfig, *why);
    }
    next[edit.name] = std::move(value);
  }
  if (replace_all && current != nullptr)
    for (const auto& [key, value] : *current) next.try_emplace(key, std::nullopt);
  for (auto& [key, value] : next) {
    if (current_value(key) == value) continue;
    rec::ConfigRecord c;
    c.resource_type = type;
    c.resource_name = name;
    c.name = key;
    c.value = std::move(value);
    out.records.push_back(make_record(std::move(c)));
  }
  return out;
}

template <class Request, class Response, class Op>
Decision<Response> decide_configs(const MetadataImage& image, const Request& request, const ControllerSettings& settings,
                                  bool replace_all, Op op_of) {
  Decision<Response> out;
  for (const auto& resource : request.resources) {
    std::vector<ConfigEdit> edits;
    for (const auto& config : resource.configs) edits.push_back({config.name, op_of(config), config.value});
    auto outcome = edit_configs(image, resource.resource_type, resource.resource_name, edits, replace_all, settings);
    typename Response::AlterConfigsResourceResponse answer;
    answer.error_code = outcome.error;
    answer.error_message = outcome.error == kNone ? std::nullopt : std::optional<std::string>(outcome.message);
    answer.resource_type = resource.resource_type;
    answer.resource_name = resource.resource_name;
    out.response.responses.push_back(std::move(answer));
    if (!request.validate_only)
      for (auto& record : outcome.records) out.records.push_back(std::move(record));
  }
  return out;
}

}  // namespace

Decision<msg::IncrementalAlterConfigsResponse> incremental_alter_configs(const MetadataImage& image,
                                                                         const msg::IncrementalAlterConfigsRequest& request,
                                                                         const ControllerSettings& settings) {
  return decide_configs<msg::IncrementalAlterConfigsRequest, msg::IncrementalAlterConfigsResponse>(
      image, request, settings, false, [](const auto& config) { return config.config_operation; });
}

Decision<msg::AlterConfigsResponse> alter_configs(const MetadataImage& image, const msg::AlterConfigsRequest& request,
                                                  const ControllerSettings& settings) {
  return decide_configs<msg::AlterConfigsRequest, msg::AlterConfigsResponse>(
      image, request, settings, true, [](const auto&) { return static_cast<std::int8_t>(kSet); });
}

// ---- Security ---------------------------------------------------------------------------------------------

Decision<msg::CreateAclsResponse> create_acls(const MetadataImage& image, const msg::CreateAclsRequest& request,
                                              const IdSource& ids) {
  Decision<msg::CreateAclsResponse> out;
  std::vector<security::AclBinding> existing;
  for (const AclEntry& acl : image.acls()) existing.push_back(binding_of(acl));
  std::vector<security::AclBinding> added;
  std::set<Uuid> new_ids;
  for (const auto& creation : request.creations) {
    msg::CreateAclsResponse::AclCreationResult result;
    result.error_message = std::nullopt;
    auto binding = binding_from(creation);
    if (!binding.ok()) {
      result.error_code = kInvalidRequest;
      result.error_message = "Invalid ACL: " + binding.error().message;
      out.response.results.push_back(std::move(result));
      continue;
    }
    const bool known = std::find(existing.begin(), existing.end(), *binding) != existing.end() ||
                       std::find(added.begin(), added.end(), *binding) != added.end();
    if (!known) {
      auto id = draw_id(ids, [&](const Uuid& u) { return image.acl(u) != nullptr || new_ids.contains(u); });
      if (!id) {
        result.error_code = kUnknownServerError;
        result.error_message = "could not draw an unused ACL id";
        out.response.results.push_back(std::move(result));
        continue;
      }
      new_ids.insert(*id);
      rec::AccessControlEntryRecord r;
      r.id = *id;
      r.resource_type = creation.resource_type;
      r.resource_name = creation.resource_name;
      r.pattern_type = creation.resource_pattern_type;
      r.principal = creation.principal;
      r.host = creation.host;
      r.operation = creation.operation;
      r.permission_type = creation.permission_type;
      out.records.push_back(make_record(std::move(r)));
      added.push_back(*binding);
    }
    out.response.results.push_back(std::move(result));
  }
  return out;
}

Decision<msg::DeleteAclsResponse> delete_acls(const MetadataImage& image, const msg::DeleteAclsRequest& request) {
  Decision<msg::DeleteAclsResponse> out;
  const std::vector<AclEntry> acls = image.acls();
  std::set<Uuid> removed;
  for (const auto& f : request.filters) {
    msg::DeleteAclsResponse::DeleteAclsFilterResult result;
    result.error_message = std::nullopt;
    auto type = security::resource_type_from_code(f.resource_type_filter);
    auto pattern = security::pattern_type_from_code(f.pattern_type_filter);
    auto op = security::operation_from_code(f.operation);
    auto perm = security::permission_from_code(f.permission_type);
    if (!type || !pattern || !op || !perm) {
      result.error_code = kInvalidRequest;
      result.error_message = "Invalid ACL filter: unknown resource type, pattern type, operation or permission code";
      out.response.filter_results.push_back(std::move(result));
      continue;
    }
    const security::AclBindingFilter filter{
        *type, f.resource_name_filter, *pattern, f.principal_filter, f.host_filter, *op, *perm};
    for (const AclEntry& acl : acls) {
      if (!filter.matches(binding_of(acl))) continue;
      msg::DeleteAclsResponse::DeleteAclsMatchingAcl match;
      match.error_message = std::nullopt;
      match.resource_type = acl.resource_type;
      match.resource_name = acl.resource_name;
      match.pattern_type = acl.pattern_type;
      match.principal = acl.principal;
      match.host = acl.host;
      match.operation = acl.operation;
      match.permission_type = acl.permission;
      result.matching_acls.push_back(std::move(match));
      if (removed.insert(acl.id).second) {  // two filters may match one ACL: it goes once
        rec::RemoveAccessControlEntryRecord remove;
        remove.id = acl.id;
        out.records.push_back(make_record(remove));
      }
    }
    out.response.filter_results.push_back(std::move(result));
  }
  return out;
}

Decision<msg::AlterUserScramCredentialsResponse> alter_scram_credentials(
    const MetadataImage& image, const msg::AlterUserScramCredentialsRequest& request) {
  namespace sasl = security::sasl;
  Decision<msg::AlterUserScramCredentialsResponse> out;
  // One alteration per user and mechanism per request (kafka-configs sets SHA-256 and SHA-512 of a user
  // in one request); a user with any error has none of its alterations applied.
  std::vector<std::string> order;                                      // users by first appearance
  std::map<std::string, std::pair<std::int16_t, std::string>> errors;  // first error wins
  std::map<std::pair<std::string, std::int8_t>, AnyRecord> pending;    // valid alterations by user, mechanism
  auto seen = [&](const std::string& user) {
    if (std::find(order.begin(), order.end(), user) == order.end()) order.push_back(user);
  };
  // The checks deletions and upsertions share; nullopt after recording the user's error.
  auto check_common = [&](const std::string& user, std::int8_t wire_mechanism) -> std::optional<sasl::Mechanism> {
    seen(user);
    if (errors.contains(user)) return std::nullopt;
    if (pending.erase({user, wire_mechanism}) > 0) {
      errors[user] = {kDuplicateResource, "A user credential cannot be altered twice in the same request"};
      return std::nullopt;
    }
    auto mechanism = sasl::scram_mechanism_from_wire(wire_mechanism);
    if (image.metadata_version() < kScramMinMetadataVersion) {
      errors[user] = {kUnsupportedVersion, "The current metadata.version does not support SCRAM"};
    } else if (user.empty()) {
      errors[user] = {kUnacceptableCredential, "Username must not be empty"};
    } else if (!mechanism.ok()) {
      errors[user] = {kUnsupportedSaslMechanism, "Unknown SCRAM mechanism"};
    } else {
      return *mechanism;
    }
    return std::nullopt;
  };
  for (const auto& d : request.deletions) {
    if (!check_common(d.name, d.mechanism)) continue;
    if (image.scram_credential(d.name, static_cast<ScramMechanism>(d.mechanism)) == nullptr) {
      errors[d.name] = {kResourceNotFound, "Attempt to delete a user credential that does not exist"};
      continue;
    }
    rec::RemoveUserScramCredentialRecord r;
    r.name = d.name;
    r.mechanism = d.mechanism;
    pending.emplace(std::make_pair(d.name, d.mechanism), make_record(std::move(r)));
  }
  for (const auto& u : request.upsertions) {
    auto mechanism = check_common(u.name, u.mechanism);
    if (!mechanism) continue;
    if (u.iterations < sasl::kMinScramIterations || u.iterations > sasl::kMaxScramIterations) {
      errors[u.name] = {kUnacceptableCredential, "Iterations must be between " + str(sasl::kMinScramIterations) +
                                                     " and " + str(sasl::kMaxScramIterations)};
      continue;
    }
    auto credential = sasl::scram_credential_from_salted_password(*mechanism, u.salted_password, u.salt, u.iterations);
    if (!credential.ok()) {
      errors[u.name] = {kUnacceptableCredential, credential.error().message};
      continue;
    }
    rec::UserScramCredentialRecord r;
    r.name = u.name;
    r.mechanism = u.mechanism;
    r.salt = credential->salt;
    r.stored_key = credential->stored_key;
    r.server_key = credential->server_key;
    r.iterations = u.iterations;
    pending.emplace(std::make_pair(u.name, u.mechanism), make_record(std::move(r)));
  }
  for (const std::string& user : order) {
    msg::AlterUserScramCredentialsResponse::AlterUserScramCredentialsResult result;
    result.user = user;
    result.error_message = std::nullopt;
    if (auto e = errors.find(user); e != errors.end()) {
      result.error_code = e->second.first;
      result.error_message = e->second.second;
    } else {
      for (const auto& [key, record] : pending)
        if (key.first == user) out.records.push_back(record);
    }
    out.response.results.push_back(std::move(result));
  }
  return out;
}

// ---- Producer ids -----------------------------------------------------------------------------------------

Decision<msg::AllocateProducerIdsResponse> allocate_producer_ids(const MetadataImage& image,
                                                                 const msg::AllocateProducerIdsRequest& request,
                                                                 const ControllerSettings& settings) {
  Decision<msg::AllocateProducerIdsResponse> out;
  if (auto error = registration_error(image.broker(request.broker_id), request.broker_epoch)) {
    out.response.error_code = error;
    return out;
  }
  const std::int64_t first = image.producer_ids().next_producer_id;
  const std::int32_t size = settings.producer_id_block_size;
  if (size <= 0 || first > std::numeric_limits<std::int64_t>::max() - size) {
    out.response.error_code = kUnknownServerError;  // Kafka: "Exhausted all producerIds ..."
    return out;
  }
  rec::ProducerIdsRecord r;
  r.broker_id = request.broker_id;
  r.broker_epoch = request.broker_epoch;
  r.next_producer_id = first + size;
  out.records.push_back(make_record(r));
  out.response.producer_id_start = first;
  out.response.producer_id_len = size;
  return out;
}

// ---- Bootstrap --------------------------------------------------------------------------------------------

std::vector<AnyRecord> bootstrap_records(const MetadataImage& image) {
  if (image.feature_level(kMetadataVersionFeature)) return {};
  rec::FeatureLevelRecord r;
  r.name = std::string(kMetadataVersionFeature);
  r.feature_level = kMetadataVersion;
  return {make_record(std::move(r))};
}

}  // namespace bulwark::cluster
