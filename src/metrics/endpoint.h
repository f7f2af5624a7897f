// The metrics listener: `metrics.listener=http://HOST:PORT` (Bulwark's key; default
// http://127.0.0.1:9404, loopback only; empty turns it off). GET /metrics answers the exposition;
// anything else gets 404 or 405. One thread; a connection that does not send its request within 2 s
// is dropped, so a stuck scraper holds nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace bulwark::metrics {

struct ListenerAddress {
  std::string host;
  std::uint16_t port = 0;
};
// "http://127.0.0.1:9404" -> {127.0.0.1, 9404}; an error names what is wrong.
Result<ListenerAddress> parse_listener(std::string_view url);

class Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> start(const ListenerAddress& address, std::function<std::string()> render);
  ~Endpoint();
  std::uint16_t port() const;

 private:
  struct Impl;
  explicit Endpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::metrics
