// Connection limits checked at accept (Kafka's max.connections, listener.name.<l>.max.connections,
// max.connections.per.ip and its overrides) and the log of limits that were hit: counted, and written
// at most once per interval per limit with the count since the previous line.
//
// Threading: both classes are safe to use from every event loop thread at once.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace bulwark::net {

constexpr std::size_t kUnlimited = SIZE_MAX;

enum class Refusal { none, broker_limit, listener_limit, per_ip_limit };

struct ConnectionLimitSettings {
  std::size_t max_connections = kUnlimited;         // max.connections (listeners that count toward it)
  std::size_t max_connections_per_ip = kUnlimited;  // max.connections.per.ip
  // max.connections.per.ip.overrides: host (an IP address or a name, resolved once) -> its own limit.
  std::vector<std::pair<std::string, std::size_t>> per_ip_overrides;
};

class ConnectionLimits {
 public:
  // Resolves the host names of the overrides; a name that does not resolve is an error (as in Kafka).
  static Result<std::unique_ptr<ConnectionLimits>> create(ConnectionLimitSettings settings);

  // Registers a listener; returns its index for acquire/release. limit = kUnlimited for none.
  std::size_t add_listener(std::size_t limit, bool counts_toward_broker_limit);
  // Counts a new connection, or says which limit refuses it (then nothing is counted).
  Refusal try_acquire(std::size_t listener, const std::string& address);
  void release(std::size_t listener, const std::string& address);

  std::size_t total() const { return total_.load(); }
  std::size_t limit_for_address(const std::string& address) const;
  std::size_t broker_limit() const { return settings_.max_connections; }
  std::size_t listener_limit(std::size_t listener) const;
  std::size_t listener_open(std::size_t listener) const;

  // "::ffff:1.2.3.4" -> "1.2.3.4", other addresses in inet_ntop's form; what per-IP limits key on.
  static std::string canonical_address(const std::string& address);

 private:
  explicit ConnectionLimits(ConnectionLimitSettings settings) : settings_(std::move(settings)) {}
  struct Listener {
    std::size_t limit = kUnlimited;
    bool counts_toward_broker_limit = true;
    std::size_t open = 0;
  };
  ConnectionLimitSettings settings_;
  std::map<std::string, std::size_t> overrides_;  // canonical address -> limit
  mutable std::mutex mutex_;
  std::vector<Listener> listeners_;
  std::map<std::string, std::size_t> per_address_;  // canonical address -> open connections
  std::size_t counted_toward_broker_ = 0;
  std::atomic<std::size_t> total_{0};
};

enum class LimitKind : std::uint8_t {
  broker_connections,
  listener_connections,
  per_ip_connections,
  frame_too_large,
  frame_too_large_before_login,
  request_deadline,
  idle,
  queued_request_bytes,
};
constexpr std::size_t kLimitKinds = 8;

class LimitReporter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LimitReporter(std::chrono::milliseconds interval) : interval_(interval) {}

  // Counts one hit. The first hit after a quiet interval is logged at once; later ones wait for flush.
  // `detail` names the latest case (listener, peer, values) and appears in the line.
  void hit(LimitKind kind, std::string detail);
  // Logs every limit with hits not yet reported whose interval has passed. Call regularly.
  void flush(Clock::time_point now = Clock::now());
  std::uint64_t hits(LimitKind kind) const;  // all hits since start

  static std::string_view describe(LimitKind kind);

 private:
  struct Entry {
    std::uint64_t total = 0;
    std::uint64_t unreported = 0;
    Clock::time_point last_line{};
    std::string detail;
  };
  void write_line(LimitKind kind, Entry& entry, Clock::time_point now);

  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::array<Entry, kLimitKinds> entries_{};
};

// Failed TLS handshakes, logged once per client address and reason per interval: a client retrying
// with a wrong configuration every 100 ms writes one line per interval, with a count of the attempts
// left out, instead of one per attempt.
class HandshakeFailureLog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit HandshakeFailureLog(std::chrono::milliseconds interval) : interval_(interval) {}

  // `line` is the full message for this failure (listener, peer, explanation).
  void failed(const std::string& address, const std::string& reason, std::string line, Clock::time_point now = Clock::now());
  // Logs the counts left out whose interval has passed, and forgets quiet addresses. Call regularly.
  void flush(Clock::time_point now = Clock::now());
  std::size_t tracked() const;  // address and reason pairs remembered now

 private:
  struct Entry {
    Clock::time_point last_line{};
    std::uint64_t left_out = 0;
    std::string latest;  // the latest line left out
  };
  void write(Entry& entry, Clock::time_point now);

  const std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;
};

}  // namespace bulwark::net
