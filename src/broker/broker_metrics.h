// What the broker measures, named as the JMX exporter names Kafka's MBeans so that Kafka dashboards and
// alerts apply (docs/operations.md lists every series). Hot-path updates are lock-free after the
// first use of a label set; partition, lag, connection and certificate figures are read at scrape time.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/metrics.h"
#include "security/authorizer.h"

namespace bulwark::net {
class Server;
}

namespace bulwark::broker {

struct BrokerState;
class TlsReloader;

// Kafka's name of an API ("Produce", "Fetch", ...), "Unknown" for keys it does not name.
std::string_view api_name(std::int16_t api_key);

class BrokerMetrics {
 public:
  BrokerMetrics();
  metrics::Registry& registry() { return registry_; }

  void request_done(std::int16_t api_key, std::chrono::microseconds elapsed);
  void produced(const std::string& topic, std::size_t bytes, std::int64_t records);
  void fetched(const std::string& topic, std::size_t bytes);
  void authentication(const std::string& listener, bool succeeded);
  void handshake_failed(const std::string& listener, std::string_view failure_class);
  void denied(security::Operation operation, security::ResourceType resource_type);
  void isr_changed(bool shrunk);
  // A client throttled by its quota (quota_type: "produce", "fetch", "request"), as Kafka's per-user
  // and per-client-id throttle-time sensors.
  void throttled(std::string_view quota_type, const std::string& user, const std::string& client_id, std::int64_t ms);

 private:
  metrics::Registry registry_;
  std::array<metrics::Histogram*, 128> request_time_{};  // by API key, made up front
  std::array<metrics::Counter*, 128> requests_{};
  metrics::Counter* bytes_in_ = nullptr;
  metrics::Counter* bytes_out_ = nullptr;
  metrics::Counter* messages_in_ = nullptr;
  metrics::Counter* isr_shrinks_ = nullptr;
  metrics::Counter* isr_expands_ = nullptr;
};

// The scrape-time figures: partitions (count, leaders, under-replicated, offline), the active
// controller, log start and end offsets, consumer-group lag, connections per listener, request latency
// quantiles, and the seconds until every keystore certificate and trusted CA expires.
void add_broker_collectors(BrokerMetrics& metrics, BrokerState& state, net::Server& server, TlsReloader& tls);

}  // namespace bulwark::broker
