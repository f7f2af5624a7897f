// Client quotas (KIP-13 byte rates, KIP-55 user quotas, KIP-124 request rates, KIP-219 throttling), as
// Kafka 3.7's ClientQuotaManager has them: the quota a request falls under is the most specific entity
// of the metadata image's client quotas (KIP-546) that matches its user and client id; its rate is
// measured over quota.window.num samples of quota.window.size.seconds; a client over its quota hears
// throttle_time_ms = (observed - quota) / quota * window and its connection is muted that long.
//
// Time comes in as arguments (milliseconds), so tests drive the windows with a fake clock.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "cluster/image.h"

namespace bulwark::broker {

enum class QuotaKind { produce, fetch, request };
// The quota's key in ClientQuotaRecords: producer_byte_rate, consumer_byte_rate, request_percentage.
std::string_view quota_key(QuotaKind kind);

struct QuotaWindowConfig {
  int samples = 11;               // quota.window.num
  std::int64_t window_ms = 1000;  // quota.window.size.seconds, in ms
};

// Kafka's Rate over a SampledStat of windowed sums (org.apache.kafka.common.metrics.stats.Rate).
class SampledRate {
 public:
  explicit SampledRate(QuotaWindowConfig config) : config_(config) {}
  void record(double value, std::int64_t now_ms);
  double measure(std::int64_t now_ms);  // per second
  // The time the rate divides by: the retained samples' span, at least samples - 1 whole windows.
  std::int64_t window_size_ms(std::int64_t now_ms);
  std::int64_t last_record_ms() const { return last_record_ms_; }

 private:
  struct Sample {
    double value = 0;
    std::int64_t start_ms = 0;
  };
  void purge_obsolete(std::int64_t now_ms);
  QuotaWindowConfig config_;
  std::vector<Sample> samples_;
  std::size_t current_ = 0;
  std::int64_t last_record_ms_ = 0;
};

// Kafka's QuotaUtils.throttleTime: round((observed - bound) / bound * window), unbounded as in Kafka's
// ClientQuotaManager; 0 when within the bound, `zero_quota_ms` for a bound of 0.
std::int64_t throttle_time_ms(double observed, double bound, std::int64_t window_ms, std::int64_t zero_quota_ms);

using ClientQuotaMap = std::map<cluster::ClientQuotaEntity, std::map<std::string, double>>;

// The quota that applies to (user, client_id) for `key`, in Kafka's order of precedence:
// /users/<user>/clients/<client>, /users/<user>/clients/<default>, /users/<user>,
// /users/<default>/clients/<client>, /users/<default>/clients/<default>, /users/<default>,
// /clients/<client>, /clients/<default>. The metric tags say whose usage it counts together: the user
// (or "") and the client id (or "") that the matched entity names or defaults.
struct ResolvedQuota {
  double bound = 0;
  std::string user_tag;
  std::string client_tag;
  bool operator==(const ResolvedQuota&) const = default;
};
std::optional<ResolvedQuota> resolve_quota(const ClientQuotaMap& quotas, std::string_view key, const std::string& user,
                                           const std::string& client_id);

// Whom a request counts against: its principal's name and its header's client id.
struct QuotaClient {
  std::string user;
  std::string client_id;
};

// Kafka's request-time unit: percent of one thread over a second (nanosToPercentage).
inline double thread_time_percent(std::int64_t nanos) { return static_cast<double>(nanos) * 100.0 / 1e9; }

// Every client's rates, one per quota kind and metric tags. Thread-safe.
class ClientQuotaManager {
 public:
  explicit ClientQuotaManager(QuotaWindowConfig config) : config_(config) {}
  // Records `value` (bytes; for request quotas percent-seconds of one thread) and returns the throttle
  // time in ms (0 when within the quota or none applies).
  std::int64_t record(QuotaKind kind, const ClientQuotaMap& quotas, const std::string& user, const std::string& client_id,
                      double value, std::int64_t now_ms);
  // Takes back a recorded value (a throttled fetch answers without data, as Kafka's unrecordQuotaSensor).
  void unrecord(QuotaKind kind, const ClientQuotaMap& quotas, const std::string& user, const std::string& client_id,
                double value, std::int64_t now_ms);
  // The most one response may carry under the quota (Kafka's getMaxValueInQuotaWindow: the quota times
  // samples - 1 windows), so that a fetch larger than the window never has to be refused forever.
  std::optional<double> max_value_in_window(QuotaKind kind, const ClientQuotaMap& quotas, const std::string& user,
                                            const std::string& client_id) const;
  // What a zero quota throttles for (Kafka's formula divides by the bound).
  std::int64_t zero_quota_throttle_ms() const { return config_.window_ms * config_.samples; }

 private:
  using Key = std::tuple<QuotaKind, std::string, std::string>;
  SampledRate& rate_locked(const Key& key);
  void expire_idle_locked(std::int64_t now_ms);
  QuotaWindowConfig config_;
  std::mutex mu_;
  std::map<Key, SampledRate> rates_;
  std::int64_t last_expiry_ms_ = 0;
};

}  // namespace bulwark::broker
