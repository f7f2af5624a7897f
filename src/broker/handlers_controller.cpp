// The controller listener: KRaft's quorum RPCs (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch,
// FetchSnapshot, DescribeQuorum) go to the quorum driver; the brokers' requests to the active controller
// (BrokerRegistration, BrokerHeartbeat, AllocateProducerIds, and Envelope around the client requests
// brokers forward) go to the controller service. Only a principal with ClusterAction on the cluster
// (in practice: a super user, i.e. another node) may use it.
#include "base/log.h"
#include "broker/state.h"
#include "cluster/controller_service.h"
#include "cluster/quorum_driver.h"
#include "broker/controller_channel.h"
#include "cluster/raft_wire.h"
#include "wire/generated/describe_quorum.h"

namespace bulwark::broker {
namespace {

bool is_quorum_api(std::int16_t api_key) { return cluster::is_raft_api(api_key) || api_key == 55; }

// Envelope, BrokerRegistration, BrokerHeartbeat, AlterPartition, AllocateProducerIds: what brokers send the controller.
bool is_controller_api(std::int16_t api_key) {
  return api_key == 58 || api_key == 62 || api_key == 63 || api_key == 56 || api_key == 67;
}

// Rate-limited: a node that is kept out retries every few hundred milliseconds.
void log_refused_peer(const Call& call, const std::string& principal) {
  static std::mutex mu;
  static std::map<std::string, std::chrono::steady_clock::time_point> last;
  std::lock_guard lock(mu);
  auto now = std::chrono::steady_clock::now();
  auto& at = last[principal];
  if (at != std::chrono::steady_clock::time_point{} && now - at < std::chrono::seconds(30)) return;
  at = now;
  log::warn("controller listener: {} from {} may not take part in the quorum: it lacks ClusterAction on the "
            "cluster (name it in super.users); its connections are closed",
            principal, call.ctx.peer.remote_address);
}

}  // namespace

bool handle_controller_listener(BrokerState& state, Call& call) {
  const auto key = call.header.api_key;
  if (!is_quorum_api(key) && !is_controller_api(key)) return false;
  if (state.acls && !authorized(state, call, security::Operation::cluster_action, security::ResourceType::cluster,
                                security::kClusterResourceName, false)) {
    log_refused_peer(call, session_of(call).principal.to_string());
    call.responder.close_connection();
    return true;
  }
  Bytes body(call.body.rest().begin(), call.body.rest().end());
  auto reply = [header = call.header, responder = call.responder](Result<Bytes> response) mutable {
    if (!response.ok()) {
      log::warn("controller listener: closing a connection after api {} v{}: {}", header.api_key, header.api_version,
                response.error().message);
      responder.close_connection();
      return;
    }
    responder.respond(encode_response_frame(header, [&](ByteWriter& w) { w.write_bytes(*response); }));
  };
  if (is_quorum_api(key)) {
    if (!state.quorum) return reply(make_error(ErrorKind::unavailable, "no quorum on this node")), true;
    state.quorum->handle_request(key, call.header.api_version, std::move(body), std::move(reply));
    return true;
  }
  if (!state.controller_service) return reply(make_error(ErrorKind::unavailable, "this node is not a controller")), true;
  state.controller_service->handle(key, call.header.api_version, body, std::move(reply));
  return true;
}

// DescribeQuorum on a broker listener (kafka-metadata-quorum.sh --bootstrap-server, `bulwark quorum
// describe`): DESCRIBE on the cluster, then the quorum leader answers it, as Kafka's brokers forward it.
void handle_describe_quorum(BrokerState& state, Call& call) {
  if (!authorized_cluster(state, call, security::Operation::describe)) {
    wire::msg::DescribeQuorumResponse response;
    response.error_code = code(KafkaError::cluster_authorization_failed);
    return respond(call, response);
  }
  if (!state.controller) return call.responder.close_connection();
  Bytes body(call.body.rest().begin(), call.body.rest().end());
  DeferredReply reply{call.header, call.responder};
  state.controller->send(call.header.api_key, call.header.api_version, std::move(body),
                         std::chrono::steady_clock::now() + std::chrono::seconds(10),
                         [reply](Result<Bytes> answer) mutable {
                           if (!answer.ok()) {
                             wire::msg::DescribeQuorumResponse response;
                             response.error_code = code(KafkaError::request_timed_out);
                             return reply.send(response);
                           }
                           reply.responder.respond(encode_response_frame(
                               reply.header, [&](ByteWriter& w) { w.write_bytes(*answer); }));
                         });
}

}  // namespace bulwark::broker
