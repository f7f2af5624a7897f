#include "cluster/controller_service.h"

#include <algorithm>

#include "base/log.h"
#include "cluster/client_quotas.h"
#include "config/config.h"
#include "wire/generated/envelope.h"
#include "wire/protocol.h"

namespace bulwark::cluster {
namespace {

namespace msg = wire::msg;

Error not_controller_error() { return make_error(ErrorKind::unavailable, "this node is not the active controller"); }

template <class Request>
Result<Request> decode_body(ByteView body, std::int16_t version) {
  if (version < Request::lowest_supported_version || version > Request::highest_supported_version)
    return make_error(ErrorKind::unsupported, "controller: unsupported version " + std::to_string(version) +
                                                  " of api " + std::to_string(Request::api_key));
  auto request = wire::decode_message<Request>(body, version, /*strict=*/true);
  if (!request)
    return make_error(ErrorKind::corrupt, "controller: malformed request of api " + std::to_string(Request::api_key));
  return std::move(*request);
}

// The records with positions following `base`, for the working image (offsets are where they will land).
std::vector<PositionedRecord> positioned(const std::vector<AnyRecord>& records, std::int64_t first_offset,
                                         std::int32_t epoch) {
  std::vector<PositionedRecord> out;
  out.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i)
    out.push_back({records[i], {first_offset + static_cast<std::int64_t>(i), epoch}});
  return out;
}

}  // namespace

ControllerService::ControllerService(ControllerSettings settings, std::int32_t node_id, QuorumDriver& driver,
                                     MetadataLoader& loader)
    : settings_(std::move(settings)), node_id_(node_id), driver_(driver), loader_(loader) {}

ControllerService::~ControllerService() { stop(); }

void ControllerService::start() {
  timer_ = std::thread([this] { run_timer(); });
}

void ControllerService::stop() {
  {
    std::lock_guard lock(timer_mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  std::vector<Done> failed;
  {
    std::lock_guard lock(mu_);
    deactivate_locked(failed);
  }
  for (auto& done : failed) done(not_controller_error());
}

bool ControllerService::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

std::int64_t ControllerService::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

IdSource ControllerService::ids() {
  // Called under mu_: the generator is the controller's own.
  IdSource source;
  source.new_uuid = [this] {
    Uuid id{};
    do {
      for (auto& byte : id) byte = static_cast<std::uint8_t>(rng_());
    } while (id == Uuid{});
    return id;
  };
  source.pick = [this](std::uint32_t n) { return n == 0 ? 0u : static_cast<std::uint32_t>(rng_() % n); };
  return source;
}

// ---- Requests -------------------------------------------------------------------------------------

void ControllerService::handle(std::int16_t api_key, std::int16_t api_version, ByteView body, Done done) {
  switch (api_key) {
    case msg::BrokerRegistrationRequest::api_key: return handle_registration(api_version, body, std::move(done));
    case msg::BrokerHeartbeatRequest::api_key: return handle_heartbeat(api_version, body, std::move(done));
    case msg::AlterPartitionRequest::api_key: return handle_alter_partition(api_version, body, std::move(done));
    case msg::EnvelopeRequest::api_key: break;
    case 55:  // DescribeQuorum, forwarded by a broker: the quorum's own answer
      return driver_.handle_request(api_key, api_version, Bytes(body.begin(), body.end()), std::move(done));
    default: return handle_enveloped(api_key, api_version, body, std::move(done));
  }
  auto envelope = decode_body<msg::EnvelopeRequest>(body, api_version);
  if (!envelope.ok()) return done(envelope.error());
  ByteReader r(envelope->request_data);
  auto header = wire::decode_request_header(r);
  if (!header.ok()) return done(header.error());
  auto inner = *header;
  Bytes inner_body(r.rest().begin(), r.rest().end());
  auto wrap = [inner, done = std::move(done)](Result<Bytes> response) {
    msg::EnvelopeResponse out;
    if (response.ok()) {
      ByteWriter w;
      wire::encode_response_header(w, inner.api_key, inner.api_version, inner.correlation_id);
      w.write_bytes(*response);
      out.response_data = w.take();
    } else if (response.error().kind == ErrorKind::unavailable) {
      out.response_data = std::nullopt;
      out.error_code = kNotController;
    } else {
      return done(response.error());
    }
    done(wire::encode_message(out, 0));
  };
  handle_enveloped(inner.api_key, inner.api_version, inner_body, std::move(wrap));
}

// The APIs a broker forwards. Each decision fills `response`; the encoder reads it once committed.
void ControllerService::handle_enveloped(std::int16_t api_key, std::int16_t version, ByteView body, Done done) {
  auto run = [&]<class Request, class Response>(auto decide_fn) {
    auto request = decode_body<Request>(body, version);
    if (!request.ok()) return done(request.error());
    auto response = std::make_shared<Response>();
    submit(
        [request = std::move(*request), response, decide_fn, version](const MetadataImage& image) {
          auto decision = decide_fn(image, request, version);
          *response = std::move(decision.response);
          return std::move(decision.records);
        },
        [response, version] { return wire::encode_message(*response, version); }, std::move(done), nullptr);
  };
  switch (api_key) {
    case msg::CreateTopicsRequest::api_key:
      return run.template operator()<msg::CreateTopicsRequest, msg::CreateTopicsResponse>(
          [this](const MetadataImage& image, const msg::CreateTopicsRequest& request, std::int16_t v) {
            return create_topics(image, request, v, settings_, ids());
          });
    case msg::DeleteTopicsRequest::api_key:
      return run.template operator()<msg::DeleteTopicsRequest, msg::DeleteTopicsResponse>(
          [](const MetadataImage& image, const msg::DeleteTopicsRequest& request, std::int16_t v) {
            return delete_topics(image, request, v);
          });
    case msg::CreatePartitionsRequest::api_key:
      return run.template operator()<msg::CreatePartitionsRequest, msg::CreatePartitionsResponse>(
          [this](const MetadataImage& image, const msg::CreatePartitionsRequest& request, std::int16_t) {
            return create_partitions(image, request, ids());
          });
    case msg::IncrementalAlterConfigsRequest::api_key:
      return run.template operator()<msg::IncrementalAlterConfigsRequest, msg::IncrementalAlterConfigsResponse>(
          [this](const MetadataImage& image, const msg::IncrementalAlterConfigsRequest& request, std::int16_t) {
            return incremental_alter_configs(image, request, settings_);
          });
    case msg::AlterConfigsRequest::api_key:
      return run.template operator()<msg::AlterConfigsRequest, msg::AlterConfigsResponse>(
          [this](const MetadataImage& image, const msg::AlterConfigsRequest& request, std::int16_t) {
            return alter_configs(image, request, settings_);
          });
    case msg::CreateAclsRequest::api_key:
      return run.template operator()<msg::CreateAclsRequest, msg::CreateAclsResponse>(
          [this](const MetadataImage& image, const msg::CreateAclsRequest& request, std::int16_t) {
            return create_acls(image, request, ids());
          });
    case msg::DeleteAclsRequest::api_key:
      return run.template operator()<msg::DeleteAclsRequest, msg::DeleteAclsResponse>(
          [](const MetadataImage& image, const msg::DeleteAclsRequest& request, std::int16_t) {
            return delete_acls(image, request);
          });
    case msg::AlterUserScramCredentialsRequest::api_key:
      return run.template operator()<msg::AlterUserScramCredentialsRequest, msg::AlterUserScramCredentialsResponse>(
          [](const MetadataImage& image, const msg::AlterUserScramCredentialsRequest& request, std::int16_t) {
            return alter_scram_credentials(image, request);
          });
    case msg::AlterClientQuotasRequest::api_key:
      return run.template operator()<msg::AlterClientQuotasRequest, msg::AlterClientQuotasResponse>(
          [](const MetadataImage& image, const msg::AlterClientQuotasRequest& request, std::int16_t) {
            return alter_client_quotas(image, request);
          });
    case msg::ElectLeadersRequest::api_key:
      return run.template operator()<msg::ElectLeadersRequest, msg::ElectLeadersResponse>(
          [](const MetadataImage& image, const msg::ElectLeadersRequest& request, std::int16_t) {
            return elect_leaders_request(image, request);
          });
    case msg::AlterPartitionReassignmentsRequest::api_key:
      return run.template operator()<msg::AlterPartitionReassignmentsRequest, msg::AlterPartitionReassignmentsResponse>(
          [](const MetadataImage& image, const msg::AlterPartitionReassignmentsRequest& request, std::int16_t) {
            return alter_partition_reassignments(image, request);
          });
    case msg::AllocateProducerIdsRequest::api_key:
      return run.template operator()<msg::AllocateProducerIdsRequest, msg::AllocateProducerIdsResponse>(
          [this](const MetadataImage& image, const msg::AllocateProducerIdsRequest& request, std::int16_t) {
            return allocate_producer_ids(image, request, settings_);
          });
    default:
      return done(make_error(ErrorKind::unsupported, "the controller does not serve api " + std::to_string(api_key)));
  }
}

void ControllerService::handle_registration(std::int16_t version, ByteView body, Done done) {
  auto request = decode_body<msg::BrokerRegistrationRequest>(body, version);
  if (!request.ok()) return done(request.error());
  auto response = std::make_shared<msg::BrokerRegistrationResponse>();
  auto not_controller = [version] {
    msg::BrokerRegistrationResponse out;
    out.error_code = kNotController;
    return wire::encode_message(out, version);
  };
  submit(
      [this, request = std::move(*request), response](const MetadataImage& image) {
        auto last = last_heartbeat_ms_.find(request.broker_id);
        // This node's own broker shares the controller's process: a registration of it is always the
        // current incarnation (the earlier one died with the process; the log dir lock keeps out twins).
        // A fenced registration has no session either (as in Kafka): a broker that shut down cleanly
        // registers again at once.
        const auto* existing = image.broker(request.broker_id);
        bool expired = request.broker_id == node_id_ || (existing && existing->fenced) ||
                       last == last_heartbeat_ms_.end() || now_ms() - last->second > settings_.session_timeout_ms;
        auto decision = register_broker(image, request, expired);
        *response = std::move(decision.response);
        // The broker epoch is the offset of its RegisterBrokerRecord, which is where our next proposal lands.
        for (auto& record : decision.records)
          if (auto* reg = std::get_if<rec::RegisterBrokerRecord>(&record.record)) {
            reg->broker_epoch = next_offset_;
            response->broker_epoch = next_offset_;
            last_heartbeat_ms_[request.broker_id] = now_ms();
          }
        return std::move(decision.records);
      },
      [response, version] { return wire::encode_message(*response, version); }, std::move(done), not_controller);
}

void ControllerService::handle_heartbeat(std::int16_t version, ByteView body, Done done) {
  auto request = decode_body<msg::BrokerHeartbeatRequest>(body, version);
  if (!request.ok()) return done(request.error());
  auto response = std::make_shared<msg::BrokerHeartbeatResponse>();
  auto not_controller = [version] {
    msg::BrokerHeartbeatResponse out;
    out.error_code = kNotController;
    return wire::encode_message(out, version);
  };
  submit(
      [this, request = std::move(*request), response](const MetadataImage& image) {
        auto decision = broker_heartbeat(image, request);
        *response = std::move(decision.response);
        if (response->error_code == 0) last_heartbeat_ms_[request.broker_id] = now_ms();
        // A broker done with its controlled shutdown may register again at once when it restarts.
        if (response->should_shut_down) last_heartbeat_ms_.erase(request.broker_id);
        if (decision.records.empty()) return std::move(decision.records);
        // An unfence may let partitions without a leader elect one.
        auto after = apply_records(working_, positioned(decision.records, next_offset_, leader_epoch_));
        if (after.ok())
          for (auto& record : elect_leaders(**after)) decision.records.push_back(std::move(record));
        return std::move(decision.records);
      },
      [response, version] { return wire::encode_message(*response, version); }, std::move(done), not_controller);
}

void ControllerService::handle_alter_partition(std::int16_t version, ByteView body, Done done) {
  auto request = decode_body<msg::AlterPartitionRequest>(body, version);
  if (!request.ok()) return done(request.error());
  auto response = std::make_shared<msg::AlterPartitionResponse>();
  auto not_controller = [version] {
    msg::AlterPartitionResponse out;
    out.error_code = kNotController;
    return wire::encode_message(out, version);
  };
  submit(
      [request = std::move(*request), response, version](const MetadataImage& image) {
        auto decision = alter_partition(image, request, version);
        *response = std::move(decision.response);
        return std::move(decision.records);
      },
      [response, version] { return wire::encode_message(*response, version); }, std::move(done), not_controller);
}

void ControllerService::submit(std::function<std::vector<AnyRecord>(const MetadataImage&)> decide, Encoder encode,
                               Done done, std::function<Bytes()> not_controller) {
  std::unique_lock lock(mu_);
  if (!active_) {
    lock.unlock();
    if (not_controller) return done(not_controller());
    return done(not_controller_error());
  }
  auto records = decide(*working_);
  if (records.empty()) {
    lock.unlock();
    return done(encode());
  }
  Pending pending;
  pending.done = [encode = std::move(encode), done = std::move(done)](Result<Bytes> committed) {
    if (!committed.ok()) return done(committed.error());
    done(encode());
  };
  auto proposed = propose_locked(std::move(records), pending);
  lock.unlock();
  if (!proposed.ok()) pending.done(proposed.error());
}

// Applies the records to the working image and proposes them; the answer waits for their commit. On
// failure `pending` is left to the caller to answer (outside the lock).
Status ControllerService::propose_locked(std::vector<AnyRecord> records, Pending& pending) {
  const auto first = next_offset_;
  auto after = apply_records(working_, positioned(records, first, leader_epoch_));
  if (!after.ok()) {
    // The logic promised records that apply; one that does not is a bug. Refuse the request, keep serving.
    log::error("controller: a decision's records do not apply to the working image: {}", after.error().message);
    return make_error(ErrorKind::internal, "controller: " + after.error().message);
  }
  working_ = *after;
  next_offset_ += static_cast<std::int64_t>(records.size());
  pending.last_offset = next_offset_ - 1;
  const auto epoch = leader_epoch_;
  pending_.emplace(pending.last_offset, std::move(pending));
  pending = Pending{};
  std::vector<Bytes> payloads;
  payloads.reserve(records.size());
  for (const auto& record : records) payloads.push_back(encode_record(record));
  driver_.propose(std::move(payloads), [this, first, epoch](raft::ProposeResult result) {
    if (result.error == raft::ErrorCode::none && result.first_offset == first) return;
    std::vector<Done> failed;
    {
      std::lock_guard lock(mu_);
      if (leader_epoch_ != epoch) return;  // already deactivated
      if (result.error == raft::ErrorCode::none)
        log::error("controller: proposal landed at offset {}, expected {}; stepping down as controller",
                   result.first_offset, first);
      deactivate_locked(failed);
    }
    for (auto& done : failed) done(not_controller_error());
  });
  return Status::success();
}

// ---- Driver hooks ---------------------------------------------------------------------------------

void ControllerService::on_change(const QuorumStatus& status) {
  std::vector<Done> failed;
  {
    std::lock_guard lock(mu_);
    latest_epoch_ = std::max(latest_epoch_, status.epoch);
    const bool still_leading = status.is_leader() && status.epoch == leader_epoch_;
    if (leader_epoch_ >= 0 && !still_leading) deactivate_locked(failed);
  }
  for (auto& done : failed) done(not_controller_error());
}

// Active once the LeaderChange entry of an epoch this node leads is committed: everything earlier
// leaders committed is then in the image. (The entry itself says who leads; no newer epoch may be known.)
void ControllerService::on_committed(const std::vector<raft::LogEntry>& entries) {
  std::vector<Done> failed;
  {
    std::lock_guard lock(mu_);
    for (const auto& entry : entries) {
      if (entry.kind != raft::EntryKind::leader_change) continue;
      raft::LeaderChange change;
      if (!raft::decode_leader_change(entry.payload, change) || change.leader_id != node_id_) continue;
      if (entry.epoch < latest_epoch_ || entry.epoch == leader_epoch_) continue;
      deactivate_locked(failed);  // an earlier term's requests, if any
      leader_epoch_ = entry.epoch;
      latest_epoch_ = entry.epoch;
      activate_locked(entry.offset);
    }
  }
  for (auto& done : failed) done(not_controller_error());
  if (!entries.empty()) complete_applied(entries.back().offset);
}

void ControllerService::activate_locked(std::int64_t leader_change_offset) {
  active_ = true;
  working_ = loader_.image();
  next_offset_ = leader_change_offset + 1;
  // Every registered broker gets a full session from now: heartbeats went to the old controller.
  last_heartbeat_ms_.clear();
  next_rebalance_ms_ = 0;  // the first rebalance check comes one interval from now
  const auto now = now_ms();
  for (const auto& [id, broker] : working_->brokers()) last_heartbeat_ms_[id] = now;
  log::info("controller {} active in epoch {} at offset {} ({} brokers registered)", node_id_, leader_epoch_,
            leader_change_offset, working_->brokers().size());
  if (auto bootstrap = bootstrap_records(*working_); !bootstrap.empty()) {
    if (first_records_) {
      auto bootstrapped = apply_records(working_, positioned(bootstrap, next_offset_, leader_epoch_));
      if (bootstrapped.ok())
        for (auto& record : first_records_(**bootstrapped)) bootstrap.push_back(std::move(record));
    }
    Pending pending;
    pending.done = [](Result<Bytes>) {};
    (void)propose_locked(std::move(bootstrap), pending);
  }
}

void ControllerService::deactivate_locked(std::vector<Done>& failed) {
  if (active_) log::info("controller {} no longer active (epoch {})", node_id_, leader_epoch_);
  active_ = false;
  leader_epoch_ = -1;
  working_.reset();
  for (auto& [offset, pending] : pending_) failed.push_back(std::move(pending.done));
  pending_.clear();
}

void ControllerService::complete_applied(std::int64_t applied_offset) {
  std::vector<Done> ready;
  {
    std::lock_guard lock(mu_);
    while (!pending_.empty() && pending_.begin()->first <= applied_offset) {
      ready.push_back(std::move(pending_.begin()->second.done));
      pending_.erase(pending_.begin());
    }
  }
  for (auto& done : ready) done(Bytes{});
}

// ---- Sessions -------------------------------------------------------------------------------------

void ControllerService::expire_sessions() {
  std::lock_guard lock(mu_);
  if (!active_) return;
  const auto now = now_ms();
  for (const auto& [id, broker] : working_->brokers()) {
    if (broker.fenced) continue;
    auto last = last_heartbeat_ms_.find(id);
    if (last != last_heartbeat_ms_.end() && now - last->second <= settings_.session_timeout_ms) continue;
    auto records = fence_broker(*working_, id);
    if (records.empty()) continue;
    log::warn("controller: broker {} missed its heartbeats for {} ms (broker.session.timeout.ms); fencing it", id,
              settings_.session_timeout_ms);
    Pending pending;
    pending.done = [](Result<Bytes>) {};
    (void)propose_locked(std::move(records), pending);
    return;  // working_ changed: the next round looks at the others
  }
}

// auto.leader.rebalance.enable: every leader.imbalance.check.interval.seconds, leadership goes back to
// preferred replicas where a broker's imbalance is above leader.imbalance.per.broker.percentage.
void ControllerService::rebalance_leaders_if_due() {
  std::lock_guard lock(mu_);
  if (!active_ || !settings_.auto_leader_rebalance) return;
  const auto now = now_ms();
  if (next_rebalance_ms_ == 0) next_rebalance_ms_ = now + settings_.leader_imbalance_check_interval_ms;
  if (now < next_rebalance_ms_) return;
  next_rebalance_ms_ = now + settings_.leader_imbalance_check_interval_ms;
  auto records = rebalance_leaders(*working_, settings_.leader_imbalance_percent);
  if (records.empty()) return;
  log::info("controller: moving {} partition leadership(s) back to their preferred replicas", records.size());
  Pending pending;
  pending.done = [](Result<Bytes>) {};
  (void)propose_locked(std::move(records), pending);
}

void ControllerService::run_timer() {
  std::unique_lock lock(timer_mu_);
  while (!stopping_) {
    timer_cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) break;
    lock.unlock();
    expire_sessions();
    rebalance_leaders_if_due();
    lock.lock();
  }
}

}  // namespace bulwark::cluster
