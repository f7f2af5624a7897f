// The broker's net::RequestHandler: decodes the request header, checks the API and version against
// what Bulwark serves and hands the call to the API's handler. Unknown APIs, unsupported versions and
// malformed requests close the connection (as Kafka does), except ApiVersions, which always answers.
#pragma once

#include "broker/state.h"
#include "net/server.h"

namespace bulwark::broker {

class Router : public net::RequestHandler {
 public:
  explicit Router(BrokerState& state) : state_(state) {}
  void on_request(net::RequestContext& ctx, Bytes frame, net::Responder responder) override;

 private:
  BrokerState& state_;
};

struct ServedApi {
  std::int16_t api_key;
  std::int16_t min_version;
  std::int16_t max_version;
  void (*handler)(BrokerState&, Call&);
};
// What ApiVersions advertises on broker listeners.
std::span<const ServedApi> served_apis();

}  // namespace bulwark::broker
