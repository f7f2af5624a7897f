// The broker's net::RequestHandler: decodes the request header, checks the API and version against
// what Bulwark serves and hands the call to the API's handler. Unknown APIs, unsupported versions and
// malformed requests close the connection (as Kafka does), except ApiVersions, which always answers.
#pragma once

#include "broker/request_pool.h"
#include "broker/state.h"
#include "net/server.h"

namespace bulwark::broker {

struct ServedApi {
  std::int16_t api_key;
  std::int16_t min_version;
  std::int16_t max_version;
  void (*handler)(BrokerState&, Call&);
  bool writes_storage = false;  // runs on the request pool (num.io.threads), not on a network thread
};

class Router : public net::RequestHandler {
 public:
  explicit Router(BrokerState& state);
  void on_request(net::RequestContext& ctx, Bytes frame, net::Responder responder) override;
  // Joins the request pool; requests still queued there get no answer (call after the server stopped).
  void stop() { pool_.stop(); }

 private:
  void run_on_pool(net::RequestContext& ctx, Bytes frame, net::Responder responder, const ServedApi& api);
  // Runs the handler and charges its time to the client's request quota.
  void handle(const ServedApi& api, Call& call);

  BrokerState& state_;
  RequestPool pool_;
};

// What ApiVersions advertises on broker listeners.
std::span<const ServedApi> served_apis();

}  // namespace bulwark::broker
