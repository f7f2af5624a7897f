#include "net/limits.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include "base/log.h"

namespace bulwark::net {
namespace {

std::string numeric_host(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

// Every address a host (numeric or a name) stands for.
Result<std::vector<std::string>> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("max.connections.per.ip.overrides: cannot resolve host \"{}\": {}", host,
                                  gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    std::string text = ConnectionLimits::canonical_address(numeric_host(a->ai_addr));
    if (!text.empty() && std::find(out.begin(), out.end(), text) == out.end()) out.push_back(std::move(text));
  }
  freeaddrinfo(found);
  return out;
}

}  // namespace

std::string ConnectionLimits::canonical_address(const std::string& address) {
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      inet_ntop(AF_INET, &v6.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &v6, buf, sizeof buf);
    }
    return buf;
  }
  return address;
}

Result<std::unique_ptr<ConnectionLimits>> ConnectionLimits::create(ConnectionLimitSettings settings) {
  std::unique_ptr<ConnectionLimits> limits(new ConnectionLimits(std::move(settings)));
  for (const auto& [host, limit] : limits->settings_.per_ip_overrides) {
    auto addresses = resolve(host);
    if (!addresses.ok()) return addresses.error();
    for (const auto& address : *addresses) limits->overrides_[address] = limit;
  }
  return limits;
}

std::size_t ConnectionLimits::add_listener(std::size_t limit, bool counts_toward_broker_limit) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(Listener{limit, counts_toward_broker_limit, 0});
  return listeners_.size() - 1;
}

std::size_t ConnectionLimits::limit_for_address(const std::string& address) const {
  auto it = overrides_.find(address);
  return it != overrides_.end() ? it->second : settings_.max_connections_per_ip;
}

std::size_t ConnectionLimits::listener_limit(std::size_t listener) const {
  std::lock_guard lock(mutex_);
  return listener < listeners_.size() ? listeners_[listener].limit : kUnlimited;
}

std::size_t ConnectionLimits::listener_open(std::size_t listener) const {
  std::lock_guard lock(mutex_);
  return listener < listeners_.size() ? listeners_[listener].open : 0;
}

Refusal ConnectionLimits::try_acquire(std::size_t listener, const std::string& address) {
  std::lock_guard lock(mutex_);
  Listener& l = listeners_.at(listener);
  if (l.counts_toward_broker_limit && counted_toward_broker_ >= settings_.max_connections) return Refusal::broker_limit;
  if (l.open >= l.limit) return Refusal::listener_limit;
  auto& from_address = per_address_[address];
  if (from_address >= limit_for_address(address)) {
    if (from_address == 0) per_address_.erase(address);
    return Refusal::per_ip_limit;
  }
  ++from_address;
  ++l.open;
  if (l.counts_toward_broker_limit) ++counted_toward_broker_;
  total_.fetch_add(1);
  return Refusal::none;
}

void ConnectionLimits::release(std::size_t listener, const std::string& address) {
  std::lock_guard lock(mutex_);
  Listener& l = listeners_.at(listener);
  if (l.open > 0) --l.open;
  if (l.counts_toward_broker_limit && counted_toward_broker_ > 0) --counted_toward_broker_;
  if (auto it = per_address_.find(address); it != per_address_.end() && --it->second == 0) per_address_.erase(it);
  total_.fetch_sub(1);
}

// ---- LimitReporter ----

std::string_view LimitReporter::describe(LimitKind kind) {
  switch (kind) {
    case LimitKind::broker_connections: return "new connections refused at max.connections";
    case LimitKind::listener_connections: return "new connections refused at listener.name.<listener>.max.connections";
    case LimitKind::per_ip_connections: return "new connections refused at max.connections.per.ip or its override";
    case LimitKind::frame_too_large:
      return "connections closed for a request size outside 1..socket.request.max.bytes";
    case LimitKind::frame_too_large_before_login:
      return "connections closed for a request larger than sasl.server.max.receive.size before SASL login";
    case LimitKind::request_deadline:
      return "connections closed because a started request or TLS handshake did not arrive in full within "
             "bulwark.request.receive.timeout.ms";
    case LimitKind::idle: return "connections closed after connections.max.idle.ms without traffic";
    case LimitKind::queued_request_bytes:
      return "times a connection stopped reading because queued requests exceeded queued.max.request.bytes";
  }
  return "limit hits";
}

void LimitReporter::hit(LimitKind kind, std::string detail) {
  std::lock_guard lock(mutex_);
  Entry& e = entries_[static_cast<std::size_t>(kind)];
  ++e.total;
  ++e.unreported;
  e.detail = std::move(detail);
  const auto now = Clock::now();
  if (e.total > 1 && now - e.last_line < interval_) return;  // counted; flush reports it
  write_line(kind, e, now);
}

void LimitReporter::flush(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < kLimitKinds; ++i) {
    Entry& e = entries_[i];
    if (e.unreported > 0 && now - e.last_line >= interval_) write_line(static_cast<LimitKind>(i), e, now);
  }
}

std::uint64_t LimitReporter::hits(LimitKind kind) const {
  std::lock_guard lock(mutex_);
  return entries_[static_cast<std::size_t>(kind)].total;
}

void LimitReporter::write_line(LimitKind kind, Entry& e, Clock::time_point now) {
  // Under the lock, so lines of one kind keep their order and counts add up; it is one short line
  // per limit and interval, never per event.
  const bool first = e.total == e.unreported;
  const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.last_line).count();
  if (first) {
    log::info("limit: {} {} (first since start; latest: {})", e.unreported, describe(kind), e.detail);
  } else {
    log::info("limit: {} {} in the last {} ms (latest: {})", e.unreported, describe(kind), since, e.detail);
  }
  e.unreported = 0;
  e.last_line = now;
}

void HandshakeFailureLog::failed(const std::string& address, const std::string& reason, std::string line,
                                 Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = entries_.try_emplace({address, reason});
  Entry& e = it->second;
  if (!fresh && now - e.last_line < interval_) {
    ++e.left_out;
    e.latest = std::move(line);
    return;
  }
  e.latest = std::move(line);
  write(e, now);
}

void HandshakeFailureLog::flush(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (now - e.last_line < interval_) {
      ++it;
    } else if (e.left_out > 0) {
      write(e, now);
      ++it;
    } else {
      it = entries_.erase(it);  // quiet for a whole interval: its next failure is news again
    }
  }
}

std::size_t HandshakeFailureLog::tracked() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void HandshakeFailureLog::write(Entry& e, Clock::time_point now) {
  if (e.left_out == 0) {
    log::info("{}", e.latest);
  } else {
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.last_line).count();
    log::info("{} ({} more like it from this address in the last {} ms)", e.latest, e.left_out, since);
  }
  e.left_out = 0;
  e.last_line = now;
}

}  // namespace bulwark::net
