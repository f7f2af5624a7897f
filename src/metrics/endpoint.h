// The metrics listener: `metrics.listener=http://HOST:PORT` or `https://HOST:PORT` (Bulwark's key;
// default http://127.0.0.1:9404, loopback only; empty turns it off). GET /metrics answers the
// exposition; anything else gets 404 or 405. One thread; a connection that does not finish its
// handshake and request within 2 s each is dropped, so a stuck scraper holds nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "tls/tls.h"

namespace bulwark::metrics {

struct ListenerAddress {
  std::string host;
  std::uint16_t port = 0;
  bool https = false;
};
// "http://127.0.0.1:9404" -> {127.0.0.1, 9404}; an error names what is wrong.
Result<ListenerAddress> parse_listener(std::string_view url);

// HTTPS serves with a broker listener's material: the endpoint builds its own context from what that
// listener's context holds (rebuilt when a reload swaps it), so a renewed keystore reaches metrics
// too, while scrapers are asked for certificates as client_auth says, whatever the listener asks.
struct EndpointTls {
  std::shared_ptr<tls::ServerTlsContext> listener;
  tls::ClientAuth client_auth = tls::ClientAuth::none;
};

class Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> start(const ListenerAddress& address, std::function<std::string()> render,
                                                 std::optional<EndpointTls> tls = std::nullopt);
  ~Endpoint();
  std::uint16_t port() const;

 private:
  struct Impl;
  explicit Endpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::metrics
