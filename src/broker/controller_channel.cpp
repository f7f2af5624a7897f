#include "broker/controller_channel.h"

#include "base/log.h"
#include "wire/generated/allocate_producer_ids.h"
#include "wire/generated/broker_heartbeat.h"
#include "wire/generated/broker_registration.h"
#include "wire/generated/envelope.h"
#include "wire/protocol.h"

namespace bulwark::broker {
namespace {

namespace msg = wire::msg;

Error unavailable(const std::string& why) { return make_error(ErrorKind::unavailable, why); }

void write_compact_string(ByteWriter& w, const std::string& s) {
  w.write_unsigned_varint(s.size() + 1);
  w.write_bytes(std::string_view(s));
}

// The response as it is, unless its top-level error says "not the controller" (retry elsewhere).
template <class Response>
Result<Bytes> unless_not_controller(Bytes body, std::int16_t version) {
  auto response = wire::decode_message<Response>(body, version);
  if (!response) return make_error(ErrorKind::corrupt, "malformed controller response");
  if (response->error_code == cluster::kNotController) return unavailable("the node asked is not the active controller");
  return body;
}

std::function<Result<Bytes>(Bytes)> plain_unwrap(std::int16_t api_key, std::int16_t version) {
  return [api_key, version](Bytes body) -> Result<Bytes> {
    switch (api_key) {
      case msg::BrokerRegistrationResponse::api_key:
        return unless_not_controller<msg::BrokerRegistrationResponse>(std::move(body), version);
      case msg::BrokerHeartbeatResponse::api_key:
        return unless_not_controller<msg::BrokerHeartbeatResponse>(std::move(body), version);
      case msg::AllocateProducerIdsResponse::api_key:
        return unless_not_controller<msg::AllocateProducerIdsResponse>(std::move(body), version);
      default: return body;
    }
  };
}

// The inner response of an EnvelopeResponse (its header stripped), or unavailable for NOT_CONTROLLER.
std::function<Result<Bytes>(Bytes)> envelope_unwrap(std::int16_t api_key, std::int16_t version) {
  return [api_key, version](Bytes body) -> Result<Bytes> {
    auto envelope = wire::decode_message<msg::EnvelopeResponse>(body, 0);
    if (!envelope) return make_error(ErrorKind::corrupt, "malformed EnvelopeResponse");
    if (envelope->error_code == cluster::kNotController) return unavailable("the node asked is not the active controller");
    if (envelope->error_code != 0 || !envelope->response_data)
      return make_error(ErrorKind::internal, "the controller refused the forwarded request (error code " +
                                                 std::to_string(envelope->error_code) + ")");
    ByteReader inner(*envelope->response_data);
    auto correlation = wire::decode_response_header(inner, api_key, version);
    if (!correlation.ok()) return correlation.error();
    return Bytes(inner.rest().begin(), inner.rest().end());
  };
}

}  // namespace

Bytes serialize_principal(const std::string& type, const std::string& name) {
  ByteWriter w;
  w.write_i16(0);  // DefaultPrincipalData version
  write_compact_string(w, type);
  write_compact_string(w, name);
  w.write_u8(0);                 // TokenAuthenticated
  w.write_unsigned_varint(0);    // no tagged fields
  return w.take();
}

Result<std::unique_ptr<ControllerChannel>> ControllerChannel::create(Options options, cluster::QuorumDriver& quorum,
                                                                     cluster::ControllerService* local) {
  auto client = net::OutboundClient::create(options.outbound);
  if (!client.ok()) return client.error();
  for (const auto& voter : options.voters)
    if (voter.id != options.node_id) (*client)->set_peer(voter.id, voter.host, voter.port);
  BULWARK_TRY((*client)->start());
  std::unique_ptr<ControllerChannel> channel(new ControllerChannel(std::move(options), quorum, local, std::move(*client)));
  channel->thread_ = std::thread([c = channel.get()] { c->run(); });
  return channel;
}

ControllerChannel::ControllerChannel(Options options, cluster::QuorumDriver& quorum, cluster::ControllerService* local,
                                     std::unique_ptr<net::OutboundClient> client)
    : options_(std::move(options)), quorum_(quorum), local_(local), client_(std::move(client)) {}

ControllerChannel::~ControllerChannel() { stop(); }

void ControllerChannel::stop() {
  std::multimap<Clock::time_point, std::shared_ptr<Attempt>> dropped;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    dropped.swap(retries_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  client_->stop();
  for (auto& [when, a] : dropped) a->done(unavailable("shutting down"));
}

void ControllerChannel::send(std::int16_t api_key, std::int16_t api_version, Bytes body, Clock::time_point deadline,
                             Done done) {
  auto a = std::make_shared<Attempt>();
  a->api_key = a->local_key = api_key;
  a->api_version = a->local_version = api_version;
  a->local_body = body;
  a->body = std::move(body);
  a->deadline = deadline;
  a->done = std::move(done);
  a->unwrap = plain_unwrap(api_key, api_version);
  attempt(std::move(a));
}

void ControllerChannel::forward(std::int16_t api_key, std::int16_t api_version, Bytes body, Bytes principal,
                                Bytes client_address, Clock::time_point deadline, Done done) {
  msg::EnvelopeRequest envelope;
  ByteWriter inner;
  wire::RequestHeader header{api_key, api_version, 0, "bulwark-forwarding-" + std::to_string(options_.node_id)};
  wire::encode_request_header(inner, header);
  inner.write_bytes(body);
  envelope.request_data = inner.take();
  envelope.request_principal = std::move(principal);
  envelope.client_host_address = std::move(client_address);

  auto a = std::make_shared<Attempt>();
  a->api_key = msg::EnvelopeRequest::api_key;
  a->api_version = 0;
  a->body = wire::encode_message(envelope, 0);
  a->local_key = api_key;
  a->local_version = api_version;
  a->local_body = std::move(body);
  a->deadline = deadline;
  a->done = std::move(done);
  a->unwrap = envelope_unwrap(api_key, api_version);
  attempt(std::move(a));
}

void ControllerChannel::attempt(std::shared_ptr<Attempt> a) {
  if (Clock::now() >= a->deadline) return a->done(unavailable("no active controller answered in time"));
  const auto leader = quorum_.status().leader_id;
  if (leader < 0) return retry_later(std::move(a), "the quorum has no leader");
  if (leader == options_.node_id) {
    if (!local_) return retry_later(std::move(a), "this node leads the quorum but runs no controller");
    local_->handle(a->local_key, a->local_version, a->local_body, [this, a](Result<Bytes> response) {
      // A plain request's NOT_CONTROLLER is in its body (an enveloped one comes back as an error value).
      if (response.ok() && a->api_key != msg::EnvelopeRequest::api_key) response = a->unwrap(std::move(*response));
      if (!response.ok() && response.error().kind == ErrorKind::unavailable)
        return retry_later(a, response.error().message);
      a->done(std::move(response));
    });
    return;
  }
  net::OutboundRequest request;
  request.api_key = a->api_key;
  request.api_version = a->api_version;
  request.body = a->body;
  request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(a->deadline - Clock::now());
  client_->send(leader, std::move(request), [this, a](net::OutboundResponse response) {
    if (!response.ok()) return retry_later(a, response.message);
    auto unwrapped = a->unwrap(std::move(response.body));
    if (!unwrapped.ok() && unwrapped.error().kind == ErrorKind::unavailable)
      return retry_later(a, unwrapped.error().message);
    a->done(std::move(unwrapped));
  });
}

void ControllerChannel::retry_later(std::shared_ptr<Attempt> a, const std::string& why) {
  auto when = Clock::now() + options_.retry_backoff;
  if (when >= a->deadline) return a->done(unavailable("no active controller answered in time (last: " + why + ")"));
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      retries_.emplace(when, std::move(a));
      cv_.notify_all();
      return;
    }
  }
  a->done(unavailable("shutting down"));
}

void ControllerChannel::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (retries_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next = retries_.begin()->first;
    if (Clock::now() < next) {
      cv_.wait_until(lock, next);
      continue;
    }
    auto a = std::move(retries_.begin()->second);
    retries_.erase(retries_.begin());
    lock.unlock();
    attempt(std::move(a));
    lock.lock();
  }
}

}  // namespace bulwark::broker
