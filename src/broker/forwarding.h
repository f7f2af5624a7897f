// Forwarding what only the controller decides: the part of a request the broker did not answer
// itself goes to the active controller, and the client hears back once the outcome is in this node's
// image (so it can use what it changed here right after the answer).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "base/log.h"
#include "broker/state.h"

namespace bulwark::broker {

// Forwards `forwarded`, merges the controller's results into `response` with `merge` (failure says
// why there is no answer), waits for `visible` on the local image, then answers.
template <class Request, class Response>
void forward_and_answer(BrokerState& state, Call& call, const Request& forwarded, Response response,
                        std::chrono::milliseconds timeout,
                        std::function<void(Response&, std::optional<Response>, const std::string& failure)> merge,
                        std::function<ImageWaiters::Predicate(const Response&)> visible) {
  DeferredReply reply{call.header, call.responder};
  const auto version = call.header.api_version;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  state.forward_to_controller(
      call, call.header.api_key, version, wire::encode_message(forwarded, version), timeout,
      [&state, reply, version, deadline, response = std::move(response), merge, visible](Result<Bytes> answer) mutable {
        std::optional<Response> decoded;
        std::string failure;
        if (!answer.ok()) failure = answer.error().message;
        else if (!(decoded = wire::decode_message<Response>(*answer, version))) failure = "malformed answer from the controller";
        if (!failure.empty()) log::warn("forwarding to the controller failed: {}", failure);
        merge(response, std::move(decoded), failure);
        auto predicate = visible(response);
        state.image_waiters.wait(state.image(), std::move(predicate), deadline,
                                 [reply, response](bool) mutable { reply.send(response); });
      });
}


}  // namespace bulwark::broker
