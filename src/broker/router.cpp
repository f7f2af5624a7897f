#include "broker/router.h"

#include <algorithm>

#include "base/log.h"
#include "broker/access.h"
#include "broker/quotas.h"
#include "wire/generated/api_versions.h"

namespace bulwark::broker {
namespace {

void handle_api_versions(BrokerState&, Call&);

// Version ranges: the old versions real clients still send (kafka-python: Metadata v0, ListOffsets v1,
// Fetch v4; see FACTS.md) up to the newest ones whose semantics Bulwark implements.
constexpr ServedApi kServed[] = {
    {0, 0, 10, handle_produce, true},     // Produce: v0-v2 message sets are converted to batch v2; v10 hints leaders (KIP-951)
    {1, 4, 16, handle_fetch},             // Fetch: v0-v3 need down-conversion to v0/v1; v13+ by topic id; v16 hints leaders
    {2, 1, 8, handle_list_offsets},       // ListOffsets: v7 max timestamp (KIP-734), v8 local log start (KIP-405)
    {3, 0, 12, handle_metadata},          // Metadata
    {8, 0, 9, handle_offset_commit, true},  // OffsetCommit: v9 checks a consumer group member's epoch (KIP-848)
    {9, 0, 9, handle_offset_fetch},       // OffsetFetch: v9 likewise
    {10, 0, 4, handle_find_coordinator},  // FindCoordinator
    {11, 0, 9, handle_join_group, true},  // JoinGroup (stores the group)
    {12, 0, 4, handle_heartbeat},         // Heartbeat
    {13, 0, 5, handle_leave_group, true},  // LeaveGroup
    {14, 0, 5, handle_sync_group, true},  // SyncGroup
    {15, 0, 5, handle_describe_groups},   // DescribeGroups
    {16, 0, 4, handle_list_groups},       // ListGroups
    {17, 0, 1, handle_sasl_handshake},    // SaslHandshake: v0 = bare tokens follow, v1 = SaslAuthenticate
    {18, 0, 3, handle_api_versions},      // ApiVersions
    {19, 0, 7, handle_create_topics},     // CreateTopics
    {20, 0, 6, handle_delete_topics},     // DeleteTopics
    {21, 0, 2, handle_delete_records, true},  // DeleteRecords (checkpoints the log start)
    {22, 0, 4, handle_init_producer_id, true},  // InitProducerId (a transactional id's is written to its log)
    {23, 0, 4, handle_offset_for_leader_epoch},  // OffsetForLeaderEpoch
    {24, 0, 4, handle_add_partitions_to_txn, true},  // AddPartitionsToTxn: v4 = brokers' batched form, verify_only (KIP-890)
    {25, 0, 3, handle_add_offsets_to_txn, true},  // AddOffsetsToTxn
    {26, 0, 3, handle_end_txn, true},     // EndTxn: v4 is transactions v2 (KIP-890 part 2)
    {27, 0, 1, handle_write_txn_markers, true},  // WriteTxnMarkers (from the transaction coordinator)
    {28, 0, 3, handle_txn_offset_commit, true},  // TxnOffsetCommit (KIP-98/447: pending until the marker)
    {29, 0, 3, handle_describe_acls},     // DescribeAcls
    {30, 0, 3, handle_create_acls},       // CreateAcls
    {31, 0, 3, handle_delete_acls},       // DeleteAcls
    {32, 0, 4, handle_describe_configs},  // DescribeConfigs
    {33, 0, 2, handle_alter_configs},     // AlterConfigs
    {35, 0, 4, handle_describe_log_dirs},  // DescribeLogDirs (KIP-113)
    {36, 0, 2, handle_sasl_authenticate}, // SaslAuthenticate
    {37, 0, 3, handle_create_partitions}, // CreatePartitions
    {42, 0, 2, handle_delete_groups, true},  // DeleteGroups
    {43, 0, 2, handle_elect_leaders},     // ElectLeaders
    {44, 0, 1, handle_incremental_alter_configs},  // IncrementalAlterConfigs
    {45, 0, 0, handle_alter_partition_reassignments},  // AlterPartitionReassignments
    {46, 0, 0, handle_list_partition_reassignments},   // ListPartitionReassignments
    {47, 0, 0, handle_offset_delete, true},  // OffsetDelete
    {48, 0, 1, handle_describe_client_quotas},  // DescribeClientQuotas
    {49, 0, 1, handle_alter_client_quotas},     // AlterClientQuotas
    {50, 0, 0, handle_describe_user_scram_credentials},  // DescribeUserScramCredentials
    {51, 0, 0, handle_alter_user_scram_credentials},     // AlterUserScramCredentials
    {55, 0, 1, handle_describe_quorum},   // DescribeQuorum
    {60, 0, 1, handle_describe_cluster},  // DescribeCluster
    {61, 0, 0, handle_describe_producers},  // DescribeProducers (KIP-664)
    {65, 0, 0, handle_describe_transactions},  // DescribeTransactions
    {66, 0, 0, handle_list_transactions},      // ListTransactions: v1 adds the duration filter
    // KIP-848: listed always, as Kafka 3.7 lists them; UNSUPPORTED_VERSION unless the consumer protocol is on.
    {68, 0, 0, handle_consumer_group_heartbeat},  // ConsumerGroupHeartbeat
    {69, 0, 0, handle_consumer_group_describe},   // ConsumerGroupDescribe
};

const ServedApi* find_served(std::int16_t key) {
  for (const auto& api : kServed)
    if (api.api_key == key) return &api;
  return nullptr;
}

void handle_api_versions(BrokerState&, Call& call) {
  wire::msg::ApiVersionsResponse response;
  for (const auto& api : kServed) response.api_keys.push_back({api.api_key, api.min_version, api.max_version, {}});
  const auto* served = find_served(call.header.api_key);
  if (call.header.api_version > served->max_version) {
    // A version we do not know: answer in v0 form with the full list, so the client retries lower.
    response.error_code = code(KafkaError::unsupported_version);
    send_response_bytes(call, [&](ByteWriter& w) { response.encode(w, 0); });
    return;
  }
  wire::msg::ApiVersionsRequest request;
  if (!request.decode(call.body, call.header.api_version)) {
    response.error_code = code(KafkaError::invalid_request);
  }
  respond(call, response);
}

bool is_controller_listener(const BrokerState& state, const std::string& listener) {
  const auto& names = state.config.controller_listener_names;
  return std::find(names.begin(), names.end(), listener) != names.end();
}

}  // namespace

std::span<const ServedApi> served_apis() { return kServed; }

// The requests a SASL connection may send before it has logged in (Kafka's SaslServerAuthenticator).
static bool allowed_before_login(std::int16_t api_key) { return api_key == 18 || api_key == 17 || api_key == 36; }
// Before login net caps frames at sasl.server.max.receive.size, checked at each frame's size header
// (ServerOptions::max_frame_bytes_before_login); once logged in, socket.request.max.bytes applies.
static void lift_frame_limit_after_login(net::RequestContext& ctx, const Session& session) {
  if (session.authenticated()) ctx.frame_limit = SIZE_MAX;
}

// Kafka's request quota (request_percentage, a share of one request thread's time) covers every API.
// Produce and Fetch record it themselves, with their byte rates, and answer with the throttle; for the
// others the handler's time is recorded here and a client over its quota is muted, as Kafka mutes it
// (their answers carry no throttle time yet). SASL has no principal yet; WriteTxnMarkers is a broker's.
static bool charged_here(std::int16_t api_key) { return api_key != 0 && api_key != 1 && api_key != 17 && api_key != 36 && api_key != 27; }

static void charge_request_time(BrokerState& state, Call& call, std::chrono::steady_clock::duration busy) {
  if (!state.quotas || !charged_here(call.header.api_key)) return;
  const auto image = state.image();
  const auto& quotas = image->client_quotas();
  if (quotas.empty()) return;
  const auto& user = session_of(call).principal.name;
  const auto client_id = call.header.client_id.value_or("");
  const auto percent = thread_time_percent(std::chrono::duration_cast<std::chrono::nanoseconds>(busy).count());
  const auto throttle = state.quotas->record(QuotaKind::request, quotas, user, client_id, percent, state.now_ms());
  if (throttle <= 0) return;
  state.metrics.throttled("request", user, client_id, throttle);
  call.ctx.loop.mute_connection(call.ctx.peer.connection_id, std::chrono::milliseconds(throttle));
}

void Router::handle(const ServedApi& api, Call& call) {
  const auto started = std::chrono::steady_clock::now();
  api.handler(state_, call);
  charge_request_time(state_, call, std::chrono::steady_clock::now() - started);
}

Router::Router(BrokerState& state) : state_(state), pool_(std::max(state.config.num_io_threads, 1)) {}

// What a request on the pool sees of its connection: a copy taken when it arrived (the connection may
// close, or a SASL re-login change its session, while the request waits).
struct PooledRequest {
  PooledRequest(net::RequestContext& ctx, const Session& session, Bytes request_frame, net::Responder r)
      : peer(copy_peer(ctx.peer)), loop(ctx.loop), frame(std::move(request_frame)), responder(std::move(r)) {
    auto copy = std::make_unique<Session>();
    copy->principal = session.principal;
    copy->mechanism = session.mechanism;
    state = std::move(copy);
  }
  static net::PeerInfo copy_peer(const net::PeerInfo& p) {
    net::PeerInfo out{p.connection_id, p.listener, p.protocol, p.remote_address, p.remote_port, nullptr, p.client_subject};
    if (p.client_certificate) out.client_certificate = share(p.client_certificate.get());
    return out;
  }
  net::PeerInfo peer;
  std::unique_ptr<net::ConnectionState> state;
  net::EventLoop& loop;
  std::size_t frame_limit = SIZE_MAX;
  Bytes frame;
  net::Responder responder;
};

void Router::run_on_pool(net::RequestContext& ctx, Bytes frame, net::Responder responder, const ServedApi& api) {
  auto& session = static_cast<Session&>(*ctx.state);
  auto request = std::make_shared<PooledRequest>(ctx, session, std::move(frame), std::move(responder));
  auto on_pool = session.requests_on_pool;
  on_pool->fetch_add(1);
  pool_.submit(ctx.peer.connection_id, [this, request, on_pool, &api] {
    net::RequestContext pooled{request->peer, request->state, request->loop, request->frame_limit};
    ByteReader reader(request->frame);
    auto header = wire::decode_request_header(reader);  // decoded once already: cannot fail
    Call call{pooled, *header, reader, request->responder};
    handle(api, call);
    on_pool->fetch_sub(1);
  });
}

void Router::on_request(net::RequestContext& ctx, Bytes frame, net::Responder responder) {
  if (!ctx.state) {
    auto session = open_session(state_, ctx.peer);
    if (!session.ok()) {
      log::warn("closing connection {} from {}: authentication failed: {}", ctx.peer.connection_id,
                ctx.peer.remote_address, session.error().message);
      responder.close_connection();
      return;
    }
    ctx.state = std::move(*session);
  }
  auto& session = static_cast<Session&>(*ctx.state);
  if (session.sasl_stage == Session::SaslStage::failed) {
    responder.close_connection();
    return;
  }
  if (session.sasl_stage == Session::SaslStage::awaiting_raw_token) {
    handle_raw_sasl_token(state_, ctx, std::move(frame), std::move(responder));
    lift_frame_limit_after_login(ctx, session);
    return;
  }
  ByteReader reader(frame);
  auto header = wire::decode_request_header(reader);
  if (!header.ok()) {
    log::warn("closing connection {} from {}: unreadable request header ({})", ctx.peer.connection_id,
              ctx.peer.remote_address, header.error().message);
    responder.close_connection();
    return;
  }
  Call call{ctx, *header, reader, std::move(responder)};
  if (is_controller_listener(state_, ctx.peer.listener) && session.authenticated() &&
      handle_controller_listener(state_, call))
    return;
  const auto* served = find_served(call.header.api_key);
  const bool api_versions = call.header.api_key == 18;
  // The controller listener carries only the controller quorum's APIs, none of the client ones.
  if (!served || (is_controller_listener(state_, ctx.peer.listener) && !api_versions)) {
    log::warn("closing connection {} from {}: API key {} is not served on listener {}", ctx.peer.connection_id,
              ctx.peer.remote_address, call.header.api_key, ctx.peer.listener);
    call.responder.close_connection();
    return;
  }
  if (!session.authenticated() && !allowed_before_login(call.header.api_key)) {
    log::warn("closing connection {} from {}: {} before SASL authentication completed (only ApiVersions, "
              "SaslHandshake and SaslAuthenticate may come first)",
              ctx.peer.connection_id, ctx.peer.remote_address, wire::find_api(call.header.api_key)->name);
    call.responder.close_connection();
    return;
  }
  if (!api_versions && (call.header.api_version < served->min_version || call.header.api_version > served->max_version)) {
    log::warn("closing connection {} from {}: {} v{} is not supported (Bulwark serves v{}..v{})",
              ctx.peer.connection_id, ctx.peer.remote_address, wire::find_api(call.header.api_key)->name,
              call.header.api_version, served->min_version, served->max_version);
    call.responder.close_connection();
    return;
  }
  // A connection's requests are processed in the order it sent them, as in Kafka: once one of them is
  // on the pool, the ones after it follow it there (the same worker, in order) until it is done. SASL
  // requests change the connection's own session, so they stay here.
  const bool sasl = call.header.api_key == 17 || call.header.api_key == 36;
  if (!sasl && (served->writes_storage || session.requests_on_pool->load() > 0)) {
    run_on_pool(ctx, std::move(frame), std::move(call.responder), *served);
    return;
  }
  handle(*served, call);
  lift_frame_limit_after_login(ctx, session);
}

}  // namespace bulwark::broker
