#include "broker/quotas.h"

#include <algorithm>
#include <cmath>

namespace bulwark::broker {
namespace {

constexpr std::int64_t kIdleRateExpiryMs = 3'600'000;  // Kafka drops a client's quota sensors after an idle hour

using Part = std::optional<std::optional<std::string>>;  // absent / the default (nullopt) / a name

cluster::ClientQuotaEntity entity_of(const Part& user, const Part& client) {
  cluster::ClientQuotaEntity entity;  // sorted by type: "client-id" < "user"
  if (client) entity.emplace_back("client-id", *client);
  if (user) entity.emplace_back("user", *user);
  return entity;
}

}  // namespace

std::string_view quota_key(QuotaKind kind) {
  switch (kind) {
    case QuotaKind::produce: return "producer_byte_rate";
    case QuotaKind::fetch: return "consumer_byte_rate";
    case QuotaKind::request: return "request_percentage";
  }
  return "";
}

void SampledRate::purge_obsolete(std::int64_t now_ms) {
  const std::int64_t expire_age = config_.samples * config_.window_ms;
  for (auto& s : samples_)
    if (now_ms - s.start_ms >= expire_age) s = Sample{0, now_ms};
}

void SampledRate::record(double value, std::int64_t now_ms) {
  last_record_ms_ = now_ms;
  if (samples_.empty()) samples_.push_back({0, now_ms});
  if (now_ms - samples_[current_].start_ms >= config_.window_ms) {  // the current sample is complete
    current_ = (current_ + 1) % static_cast<std::size_t>(config_.samples);
    if (current_ >= samples_.size()) samples_.push_back({0, now_ms});
    else samples_[current_] = Sample{0, now_ms};
  }
  samples_[current_].value += value;
}

std::int64_t SampledRate::window_size_ms(std::int64_t now_ms) {
  purge_obsolete(now_ms);
  if (samples_.empty()) samples_.push_back({0, now_ms});
  std::int64_t oldest = samples_.front().start_ms;
  for (const auto& s : samples_) oldest = std::min(oldest, s.start_ms);
  std::int64_t elapsed = now_ms - oldest;
  const std::int64_t full_windows = elapsed / config_.window_ms;
  const std::int64_t min_full_windows = config_.samples - 1;
  if (full_windows < min_full_windows) elapsed += (min_full_windows - full_windows) * config_.window_ms;
  return std::max<std::int64_t>(elapsed, 1);
}

double SampledRate::measure(std::int64_t now_ms) {
  purge_obsolete(now_ms);
  double total = 0;
  for (const auto& s : samples_) total += s.value;
  return total / (static_cast<double>(window_size_ms(now_ms)) / 1000.0);
}

std::int64_t throttle_time_ms(double observed, double bound, std::int64_t window_ms, std::int64_t zero_quota_ms) {
  if (observed <= bound) return 0;
  if (bound <= 0) return zero_quota_ms;
  const double ms = (observed - bound) / bound * static_cast<double>(window_ms);
  return static_cast<std::int64_t>(std::llround(std::min(ms, double{INT32_MAX})));  // throttle_time_ms is an int32
}

std::optional<ResolvedQuota> resolve_quota(const ClientQuotaMap& quotas, std::string_view key, const std::string& user,
                                           const std::string& client_id) {
  const Part named_user{user}, default_user{std::optional<std::string>{}}, no_user;
  const Part named_client{client_id}, default_client{std::optional<std::string>{}}, no_client;
  struct Level {
    const Part& user;
    const Part& client;
  };
  const Level levels[] = {
      {named_user, named_client},   {named_user, default_client},   {named_user, no_client},
      {default_user, named_client}, {default_user, default_client}, {default_user, no_client},
      {no_user, named_client},      {no_user, default_client},
  };
  for (const auto& level : levels) {
    auto entity = quotas.find(entity_of(level.user, level.client));
    if (entity == quotas.end()) continue;
    auto value = entity->second.find(std::string(key));
    if (value == entity->second.end()) continue;
    return ResolvedQuota{value->second, level.user ? user : "", level.client ? client_id : ""};
  }
  return std::nullopt;
}

SampledRate& ClientQuotaManager::rate_locked(const Key& key) {
  auto it = rates_.find(key);
  if (it == rates_.end()) it = rates_.emplace(key, SampledRate(config_)).first;
  return it->second;
}

void ClientQuotaManager::expire_idle_locked(std::int64_t now_ms) {
  if (now_ms - last_expiry_ms_ < 60'000) return;
  last_expiry_ms_ = now_ms;
  std::erase_if(rates_, [now_ms](const auto& entry) { return now_ms - entry.second.last_record_ms() > kIdleRateExpiryMs; });
}

std::int64_t ClientQuotaManager::record(QuotaKind kind, const ClientQuotaMap& quotas, const std::string& user,
                                        const std::string& client_id, double value, std::int64_t now_ms) {
  auto quota = resolve_quota(quotas, quota_key(kind), user, client_id);
  if (!quota) return 0;
  std::lock_guard lock(mu_);
  expire_idle_locked(now_ms);
  auto& rate = rate_locked({kind, quota->user_tag, quota->client_tag});
  rate.record(value, now_ms);
  const double observed = rate.measure(now_ms);
  return throttle_time_ms(observed, quota->bound, rate.window_size_ms(now_ms), zero_quota_throttle_ms());
}

std::optional<double> ClientQuotaManager::max_value_in_window(QuotaKind kind, const ClientQuotaMap& quotas,
                                                              const std::string& user,
                                                              const std::string& client_id) const {
  auto quota = resolve_quota(quotas, quota_key(kind), user, client_id);
  if (!quota) return std::nullopt;
  return quota->bound * static_cast<double>(config_.samples - 1) * static_cast<double>(config_.window_ms) / 1000.0;
}

void ClientQuotaManager::unrecord(QuotaKind kind, const ClientQuotaMap& quotas, const std::string& user,
                                  const std::string& client_id, double value, std::int64_t now_ms) {
  auto quota = resolve_quota(quotas, quota_key(kind), user, client_id);
  if (!quota) return;
  std::lock_guard lock(mu_);
  rate_locked({kind, quota->user_tag, quota->client_tag}).record(-value, now_ms);
}

}  // namespace bulwark::broker
