// DescribeClientQuotas (answered from the image) and AlterClientQuotas (forwarded to the controller,
// which writes ClientQuotaRecords), authorized as Kafka does: DESCRIBE_CONFIGS / ALTER_CONFIGS on the
// cluster. The rules are cluster/client_quotas.h's; enforcement is broker/quotas.h's.
#include "broker/forwarding.h"
#include "broker/state.h"
#include "cluster/client_quotas.h"

namespace bulwark::broker {

using security::Operation;

void handle_describe_client_quotas(BrokerState& state, Call& call) {
  wire::msg::DescribeClientQuotasRequest request;
  if (!decode_request(call, request)) return;
  if (!authorized_cluster(state, call, Operation::describe_configs)) {
    wire::msg::DescribeClientQuotasResponse response;
    response.error_code = code(KafkaError::cluster_authorization_failed);
    response.error_message = "Cluster authorization failed.";
    response.entries = std::nullopt;
    return respond(call, response);
  }
  respond(call, cluster::describe_client_quotas(*state.image(), request));
}

void handle_alter_client_quotas(BrokerState& state, Call& call) {
  using Response = wire::msg::AlterClientQuotasResponse;
  wire::msg::AlterClientQuotasRequest request;
  if (!decode_request(call, request)) return;
  // What is answered here when the controller is not asked or does not answer: every entry alike.
  auto answer_all = [request](Response& out, std::int16_t error, const std::string& message) {
    out.entries.clear();
    for (const auto& entry : request.entries) {
      auto& result = out.entries.emplace_back();
      for (const auto& e : entry.entity) result.entity.push_back({e.entity_type, e.entity_name, {}});
      result.error_code = error;
      result.error_message = message;
    }
  };
  if (!authorized_cluster(state, call, Operation::alter_configs)) {
    Response response;
    answer_all(response, code(KafkaError::cluster_authorization_failed), "Cluster authorization failed.");
    return respond(call, response);
  }
  forward_and_answer<wire::msg::AlterClientQuotasRequest, Response>(
      state, call, request, Response{}, std::chrono::seconds(30),
      [answer_all](Response& out, std::optional<Response> decoded, const std::string& failure) {
        if (decoded) out = std::move(*decoded);
        else answer_all(out, code(KafkaError::request_timed_out), failure);
      },
      [request](const Response& response) -> ImageWaiters::Predicate {
        return [request, response](const cluster::MetadataImage& image) {
          return cluster::image_has_client_quotas(image, request, response);
        };
      });
}

}  // namespace bulwark::broker
