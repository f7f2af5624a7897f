#include "net/outbound.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "wire/generated/api_table.h"
#include "wire/protocol.h"

namespace bulwark::net {

using std::chrono::milliseconds;
using TimePoint = Clock::time_point;

SteadyClock& SteadyClock::instance() {
  static SteadyClock clock;
  return clock;
}

std::string_view to_string(RequestError error) {
  switch (error) {
    case RequestError::none: return "none";
    case RequestError::timed_out: return "timed_out";
    case RequestError::disconnected: return "disconnected";
    case RequestError::unreachable: return "unreachable";
    case RequestError::tls_failed: return "tls_failed";
    case RequestError::malformed_response: return "malformed_response";
    case RequestError::too_many_requests: return "too_many_requests";
    case RequestError::unknown_node: return "unknown_node";
    case RequestError::shut_down: return "shut_down";
  }
  return "unknown";
}

std::string_view to_string(PeerState state) {
  switch (state) {
    case PeerState::disconnected: return "disconnected";
    case PeerState::backing_off: return "backing_off";
    case PeerState::connecting: return "connecting";
    case PeerState::tls_handshake: return "tls_handshake";
    case PeerState::ready: return "ready";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadRounds = 64;  // per event: at most 4 MiB before other peers get their turn
constexpr std::size_t kCompactAfter = 1024 * 1024;

std::string api_name(std::int16_t api_key) {
  const auto* info = wire::find_api(api_key);
  return info != nullptr ? std::string(info->name) : fmt::format("API {}", api_key);
}

long long ms_between(TimePoint from, TimePoint to) {
  return std::chrono::duration_cast<milliseconds>(to - from).count();
}

// Why a TLS operation failed, in plain words (we are the client; the peer is the server).
std::string explain_tls(SSL* ssl, const tls::HandshakeNotes* notes, int ssl_error, int saved_errno,
                        const std::string& host) {
  tls::HandshakeFailure failure;
  failure.server_side = false;
  failure.ssl_error = ssl_error;
  failure.error_code = ERR_peek_error();
  failure.sys_errno = saved_errno;
  failure.verify_result = SSL_get_verify_result(ssl);
  failure.own_certificate = SSL_get_certificate(ssl);
  failure.notes = notes;
  const int reason = failure.error_code != 0 ? ERR_GET_REASON(failure.error_code) : 0;
  const long verify =
      notes != nullptr && notes->verify_error != X509_V_OK ? notes->verify_error : failure.verify_result;
  std::string text;
  if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING && verify == X509_V_OK) {
    text = "the peer closed the connection in the middle of the TLS handshake (is it a PLAINTEXT listener?)";
  } else {
    text = tls::explain_handshake_failure(failure);
    constexpr std::string_view kPrefix = "the TLS handshake failed: ";
    if (std::string_view(text).starts_with(kPrefix)) text.erase(0, kPrefix.size());
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      text += fmt::format(" (we dialled {}; ssl.endpoint.identification.algorithm=https)", host);
    }
  }
  ERR_clear_error();
  return text;
}

// One request from send() to its callback.
struct Pending {
  std::int32_t correlation_id = -1;
  OutboundRequest request;
  TimePoint deadline{};
  ResponseCallback callback;
};

struct Connection {
  std::uint64_t id = 0;
  int fd = -1;
  SslPtr ssl;
  std::unique_ptr<tls::HandshakeNotes> notes;
  TimePoint setup_deadline{};
  std::string address;  // the numeric address we dialled, for messages
  Bytes out;            // framed requests not yet written
  std::size_t out_used = 0;
  std::uint64_t bytes_queued = 0;   // total ever appended to out
  std::uint64_t bytes_written = 0;  // total ever written
  Bytes in;                         // received bytes not yet parsed
  std::size_t in_used = 0;
  bool received_response = false;
  bool more_to_read = false;      // TLS may hold decrypted bytes epoll cannot see
  bool read_wants_write = false;  // SSL_read must write first (e.g. a KeyUpdate answer) and the socket is full
  std::uint32_t interest = 0;

  ~Connection() {
    if (ssl) SSL_shutdown(ssl.get());  // best effort close_notify; never waits
    if (fd >= 0) ::close(fd);
  }
  bool write_pending() const { return out_used < out.size(); }
};

struct Peer {
  std::int32_t node_id = -1;
  std::string host;
  std::uint16_t port = 0;
  std::string where;  // "node 2 at 127.0.0.1:9093"
  PeerState state = PeerState::disconnected;
  std::unique_ptr<Connection> conn;
  int failures = 0;
  RequestError last_error_kind = RequestError::unreachable;
  std::string last_error;
  TimePoint next_attempt{};
  milliseconds last_backoff{0};
  std::uint64_t attempts = 0;
  std::deque<Pending> queued;
  std::map<std::int32_t, Pending> in_flight;                 // written, awaiting a response
  std::deque<std::pair<std::uint64_t, Pending>> unanswered;  // expects_response=false: end offset in stream
  // Log rate limit.
  std::optional<TimePoint> last_logged;
  std::uint64_t unlogged_failures = 0;
  bool failure_logged = false;

  std::size_t slots_used() const { return in_flight.size() + unanswered.size(); }
};

std::string format_where(std::int32_t node_id, const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return v6 ? fmt::format("node {} at [{}]:{}", node_id, host, port)
            : fmt::format("node {} at {}:{}", node_id, host, port);
}

}  // namespace

struct OutboundClient::Impl {
  OutboundOptions options;
  Clock* clock = nullptr;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::mt19937_64 random;

  // Submissions from any thread.
  std::mutex task_mutex;
  std::vector<std::function<void()>> tasks;
  bool stopped = false;  // under task_mutex

  // Loop-thread state.
  std::unordered_map<std::int32_t, Peer> peers;
  std::unordered_map<std::uint64_t, std::int32_t> connection_owner;
  std::uint64_t next_connection_id = 1;
  std::int32_t next_correlation_id = 1;
  std::vector<std::pair<ResponseCallback, OutboundResponse>> completions;
  Bytes scratch = Bytes(kReadChunk);

  mutable std::mutex status_mutex;
  std::unordered_map<std::int32_t, PeerStatus> status;

  std::thread thread;
  std::atomic<bool> stop_requested{false};
  std::mutex driver_mutex;  // held by whoever is inside poll(), so stop() waits for it

  ~Impl() {
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  // ---- plumbing ----

  void post(std::function<void()> task) {
    {
      std::lock_guard lock(task_mutex);
      tasks.push_back(std::move(task));
    }
    wake();
  }
  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  void log_line(bool warning, const std::string& line) {
    if (options.log_sink) {
      options.log_sink(line);
    } else if (warning) {
      log::warn("{}", line);
    } else {
      log::info("{}", line);
    }
  }

  void complete(Pending& p, std::int32_t node_id, RequestError error, std::string message, Bytes body = {}) {
    OutboundResponse r;
    r.error = error;
    r.message = std::move(message);
    r.node_id = node_id;
    r.correlation_id = p.correlation_id;
    r.body = std::move(body);
    completions.emplace_back(std::move(p.callback), std::move(r));
  }

  // Status first, so a callback (or a thread it wakes) already sees the state that produced it.
  void run_completions() {
    if (!completions.empty()) publish_status();
    while (!completions.empty()) {
      auto batch = std::move(completions);
      completions.clear();
      for (auto& [callback, response] : batch) {
        if (callback) callback(std::move(response));
      }
    }
  }

  void set_interest(Connection& c, std::uint32_t events) {
    if (c.interest == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    ::epoll_ctl(epoll_fd, c.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
    c.interest = events;
  }

  // ---- backoff ----

  milliseconds backoff_after(int failures) {
    const double base = static_cast<double>(options.reconnect_backoff.count());
    const double cap = static_cast<double>(std::max(options.reconnect_backoff_max, options.reconnect_backoff).count());
    const int exponent = std::clamp(failures - 1, 0, 30);
    double value = std::min(cap, base * static_cast<double>(1ull << exponent));
    if (options.reconnect_jitter > 0) {
      std::uniform_real_distribution<double> factor(1.0 - options.reconnect_jitter, 1.0 + options.reconnect_jitter);
      value *= factor(random);
    }
    return milliseconds(static_cast<long long>(value));
  }

  // ---- failing things ----

  void fail_all(Peer& peer, RequestError error, const std::string& message) {
    for (auto& [id, p] : peer.in_flight) complete(p, peer.node_id, error, message);
    peer.in_flight.clear();
    for (auto& [end, p] : peer.unanswered) complete(p, peer.node_id, error, message);
    peer.unanswered.clear();
    for (auto& p : peer.queued) complete(p, peer.node_id, error, message);
    peer.queued.clear();
  }

  void drop_connection(Peer& peer) {
    if (!peer.conn) return;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, peer.conn->fd, nullptr);
    connection_owner.erase(peer.conn->id);
    peer.conn.reset();
  }

  // The connection (or the attempt) failed: every request of this peer fails, the next attempt waits.
  void connection_failed(Peer& peer, RequestError error, const std::string& reason) {
    const std::string message = fmt::format("{}: {}", peer.where, reason);
    drop_connection(peer);
    fail_all(peer, error, message);
    ++peer.failures;
    peer.last_error_kind = error;
    peer.last_error = reason;
    peer.last_backoff = backoff_after(peer.failures);
    peer.next_attempt = clock->now() + peer.last_backoff;
    peer.state = PeerState::backing_off;
    log_failure(peer, message);
  }

  void log_failure(Peer& peer, const std::string& message) {
    const TimePoint now = clock->now();
    if (peer.last_logged && now - *peer.last_logged < options.failure_log_interval) {
      ++peer.unlogged_failures;
      return;
    }
    std::string line = message;
    if (peer.unlogged_failures > 0) {
      line += fmt::format(" ({} more failures since the last report)", peer.unlogged_failures);
    }
    line += fmt::format("; retrying in {} ms", peer.last_backoff.count());
    peer.last_logged = now;
    peer.unlogged_failures = 0;
    peer.failure_logged = true;
    log_line(true, line);
  }

  // ---- connecting ----

  struct Target {
    sockaddr_storage address{};
    socklen_t length = 0;
    std::string text;  // the numeric address, for messages
  };

  // Host names are resolved synchronously on the driving thread (peers are normally IP literals or
  // names in /etc/hosts). Successive failed attempts rotate through the addresses, as Kafka does.
  Result<Target> resolve(const Peer& peer) const {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(peer.port);
    if (int rc = ::getaddrinfo(peer.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return make_error(ErrorKind::io, fmt::format("cannot resolve {}: {}", peer.host, ::gai_strerror(rc)));
    }
    std::vector<addrinfo*> addresses;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) addresses.push_back(ai);
    const addrinfo* ai = addresses[static_cast<std::size_t>(peer.failures) % addresses.size()];
    Target target;
    std::memcpy(&target.address, ai->ai_addr, ai->ai_addrlen);
    target.length = ai->ai_addrlen;
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = ai->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    inet_ntop(ai->ai_family, raw, text, sizeof text);
    target.text = text;
    ::freeaddrinfo(found);
    return target;
  }

  // "cannot connect: Connection refused", naming the address when the peer is known by a name.
  static std::string connect_error(const Peer& peer, const std::string& address, int err) {
    if (address.empty() || address == peer.host) return fmt::format("cannot connect: {}", std::strerror(err));
    return fmt::format("cannot connect to {}: {}", address, std::strerror(err));
  }

  void start_connect(Peer& peer) {
    ++peer.attempts;
    auto target = resolve(peer);
    if (!target.ok()) {
      connection_failed(peer, RequestError::unreachable, target.error().message);
      return;
    }
    auto conn = std::make_unique<Connection>();
    conn->id = next_connection_id++;
    conn->address = target->text;
    conn->fd = ::socket(target->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = -1;
    int err = errno;
    if (conn->fd >= 0) {
      rc = ::connect(conn->fd, reinterpret_cast<const sockaddr*>(&target->address), target->length);
      err = errno;
    }
    if (rc != 0 && err != EINPROGRESS) {
      connection_failed(peer, RequestError::unreachable, connect_error(peer, conn->address, err));
      return;
    }
    int one = 1;
    ::setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn->setup_deadline = clock->now() + options.connect_timeout;
    connection_owner[conn->id] = peer.node_id;
    peer.conn = std::move(conn);
    peer.state = PeerState::connecting;
    set_interest(*peer.conn, EPOLLOUT);
    if (rc == 0) tcp_connected(peer);
  }

  void on_connecting_event(Peer& peer) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(peer.conn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      connection_failed(peer, RequestError::unreachable, connect_error(peer, peer.conn->address, err));
      return;
    }
    tcp_connected(peer);
  }

  void tcp_connected(Peer& peer) {
    Connection& c = *peer.conn;
    if (options.protocol == SecurityProtocol::plaintext) {
      became_ready(peer);
      return;
    }
    auto ssl = options.tls->new_ssl(peer.host);
    if (!ssl.ok()) {
      connection_failed(peer, RequestError::tls_failed, "TLS handshake failed: " + ssl.error().message);
      return;
    }
    c.ssl = std::move(ssl.value());
    if (!options.verify_hostname) {
      X509_VERIFY_PARAM* param = SSL_get0_param(c.ssl.get());
      X509_VERIFY_PARAM_set1_host(param, nullptr, 0);
      X509_VERIFY_PARAM_set1_ip(param, nullptr, 0);
    }
    c.notes = std::make_unique<tls::HandshakeNotes>();
    tls::attach_notes(c.ssl.get(), c.notes.get());
    SSL_set_fd(c.ssl.get(), c.fd);
    peer.state = PeerState::tls_handshake;
    continue_handshake(peer);
  }

  void continue_handshake(Peer& peer) {
    Connection& c = *peer.conn;
    ERR_clear_error();
    errno = 0;
    const int rc = SSL_connect(c.ssl.get());
    if (rc == 1) {
      became_ready(peer);
      return;
    }
    const int saved_errno = errno;
    const int err = SSL_get_error(c.ssl.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      set_interest(c, err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
      return;
    }
    connection_failed(peer, RequestError::tls_failed,
                      "TLS handshake failed: " + explain_tls(c.ssl.get(), c.notes.get(), err, saved_errno, peer.host));
  }

  void became_ready(Peer& peer) {
    peer.state = PeerState::ready;
    set_interest(*peer.conn, EPOLLIN);
    dispatch(peer);
  }

  // ---- sending ----

  std::int32_t take_correlation_id() {
    const std::int32_t id = next_correlation_id;
    next_correlation_id = next_correlation_id == INT32_MAX ? 1 : next_correlation_id + 1;
    return id;
  }

  void append_frame(Connection& c, const Pending& p) {
    const std::size_t start = c.out.size();
    ByteWriter w(c.out);
    w.write_i32(0);
    wire::RequestHeader header{p.request.api_key, p.request.api_version, p.correlation_id, options.client_id};
    wire::encode_request_header(w, header);
    w.write_bytes(p.request.body);
    w.patch_u32(start, static_cast<std::uint32_t>(c.out.size() - start - 4));
    c.bytes_queued += c.out.size() - start;
  }

  // Moves queued requests onto the connection while there are free in-flight slots.
  void dispatch(Peer& peer) {
    if (peer.state != PeerState::ready) return;
    Connection& c = *peer.conn;
    while (!peer.queued.empty() && peer.slots_used() < options.max_in_flight_per_connection) {
      Pending p = std::move(peer.queued.front());
      peer.queued.pop_front();
      p.correlation_id = take_correlation_id();
      append_frame(c, p);
      p.request.body = Bytes();
      if (p.request.expects_response) {
        const std::int32_t id = p.correlation_id;
        peer.in_flight.emplace(id, std::move(p));
      } else {
        peer.unanswered.emplace_back(c.bytes_queued, std::move(p));
      }
    }
    flush(peer);
  }

  void flush(Peer& peer) {
    Connection& c = *peer.conn;
    while (c.write_pending()) {
      const std::size_t left = c.out.size() - c.out_used;
      long n;
      if (c.ssl) {
        ERR_clear_error();
        errno = 0;
        const int chunk = static_cast<int>(std::min<std::size_t>(left, INT_MAX));
        n = SSL_write(c.ssl.get(), c.out.data() + c.out_used, chunk);
        if (n <= 0) {
          const int saved_errno = errno;
          const int err = SSL_get_error(c.ssl.get(), static_cast<int>(n));
          if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
          read_failed(peer, err, saved_errno);
          return;
        }
      } else {
        n = ::send(c.fd, c.out.data() + c.out_used, left, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          connection_failed(peer, RequestError::disconnected,
                            fmt::format("the connection broke while sending: {}", std::strerror(errno)));
          return;
        }
      }
      c.out_used += static_cast<std::size_t>(n);
      c.bytes_written += static_cast<std::uint64_t>(n);
    }
    while (!peer.unanswered.empty() && peer.unanswered.front().first <= c.bytes_written) {
      complete(peer.unanswered.front().second, peer.node_id, RequestError::none, {});
      peer.unanswered.pop_front();
    }
    if (!c.write_pending()) {
      c.out.clear();
      c.out_used = 0;
    } else if (c.out_used >= kCompactAfter) {
      c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_used));
      c.out_used = 0;
    }
    set_interest(c, EPOLLIN | (c.write_pending() || c.read_wants_write ? EPOLLOUT : 0u));
    dispatch_if_room(peer);
  }

  void dispatch_if_room(Peer& peer) {
    if (!peer.queued.empty() && peer.slots_used() < options.max_in_flight_per_connection) dispatch(peer);
  }

  // ---- receiving ----

  void read_failed(Peer& peer, int ssl_error, int saved_errno) {
    Connection& c = *peer.conn;
    const bool midway = c.in.size() > c.in_used;
    if (ssl_error == SSL_ERROR_ZERO_RETURN ||
        (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && saved_errno == 0) ||
        (ssl_error == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
      ERR_clear_error();
      peer_closed(peer, midway);
      return;
    }
    if (ssl_error == SSL_ERROR_SSL && !c.received_response) {
      // TLS 1.3: the server judges our certificate after our side finished the handshake, so its
      // verdict (an alert) arrives with the first read.
      connection_failed(
          peer, RequestError::tls_failed,
          "TLS handshake failed: " + explain_tls(c.ssl.get(), c.notes.get(), ssl_error, saved_errno, peer.host));
      return;
    }
    std::string why =
        ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0 ? std::strerror(saved_errno) : openssl_errors();
    ERR_clear_error();
    connection_failed(peer, RequestError::disconnected, fmt::format("the TLS connection broke: {}", why));
  }

  void peer_closed(Peer& peer, bool midway) {
    // A used connection closed while idle (the peer's connections.max.idle.ms, a restart between
    // requests) is not a failure: the next request reconnects at once, without backoff or a warning.
    if (!midway && peer.conn->received_response && peer.in_flight.empty() && peer.unanswered.empty() &&
        peer.queued.empty()) {
      log::debug("{}: the peer closed the idle connection", peer.where);
      drop_connection(peer);
      peer.state = PeerState::disconnected;
      return;
    }
    connection_failed(
        peer, RequestError::disconnected,
        midway ? "the peer closed the connection in the middle of a response" : "the peer closed the connection");
  }

  void on_ready_event(Peer& peer) {
    Connection* c = peer.conn.get();
    c->more_to_read = false;
    c->read_wants_write = false;
    for (int round = 0; round < kMaxReadRounds; ++round) {
      long n;
      if (c->ssl) {
        ERR_clear_error();
        errno = 0;
        n = SSL_read(c->ssl.get(), scratch.data(), static_cast<int>(scratch.size()));
        if (n <= 0) {
          const int saved_errno = errno;
          const int err = SSL_get_error(c->ssl.get(), static_cast<int>(n));
          if (err == SSL_ERROR_WANT_READ) break;
          if (err == SSL_ERROR_WANT_WRITE) {
            c->read_wants_write = true;
            break;
          }
          read_failed(peer, err, saved_errno);
          return;
        }
      } else {
        n = ::recv(c->fd, scratch.data(), scratch.size(), 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          connection_failed(peer, RequestError::disconnected,
                            fmt::format("the connection broke: {}", std::strerror(errno)));
          return;
        }
        if (n == 0) {
          peer_closed(peer, c->in.size() > c->in_used);
          return;
        }
      }
      c->in.insert(c->in.end(), scratch.begin(), scratch.begin() + n);
      if (!parse_frames(peer)) return;  // the connection was closed
      c = peer.conn.get();
      if (round == kMaxReadRounds - 1) c->more_to_read = true;
    }
    if (c->ssl && SSL_has_pending(c->ssl.get())) c->more_to_read = true;
    flush(peer);
  }

  // Handles every complete frame in the input; false when the connection was closed.
  bool parse_frames(Peer& peer) {
    Connection& c = *peer.conn;
    while (c.in.size() - c.in_used >= 4) {
      const std::uint8_t* h = c.in.data() + c.in_used;
      const std::uint32_t size = static_cast<std::uint32_t>(h[0]) << 24 | static_cast<std::uint32_t>(h[1]) << 16 |
                                 static_cast<std::uint32_t>(h[2]) << 8 | h[3];
      if (size > INT32_MAX) {
        connection_failed(peer, RequestError::malformed_response,
                          fmt::format("the peer sent a negative response frame size ({}) (is it a Kafka broker, and "
                                      "does the security protocol match its listener?)",
                                      static_cast<std::int32_t>(size)));
        return false;
      }
      if (size > options.max_response_bytes) {
        connection_failed(peer, RequestError::malformed_response,
                          fmt::format("the peer sent a response frame of {} bytes, more than the limit of {} bytes "
                                      "(is it a Kafka broker, and does the security protocol match its listener?)",
                                      size, options.max_response_bytes));
        return false;
      }
      if (size < 4) {
        connection_failed(
            peer, RequestError::malformed_response,
            fmt::format("the peer sent a response frame of {} bytes, too short for a correlation id", size));
        return false;
      }
      if (c.in.size() - c.in_used - 4 < size) break;
      ByteView frame(c.in.data() + c.in_used + 4, size);
      c.in_used += 4 + size;
      if (!handle_response(peer, frame)) return false;
    }
    if (c.in_used == c.in.size()) {
      c.in.clear();
      c.in_used = 0;
    } else if (c.in_used >= kCompactAfter) {
      c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(c.in_used));
      c.in_used = 0;
    }
    return true;
  }

  bool handle_response(Peer& peer, ByteView frame) {
    const std::int32_t correlation_id = static_cast<std::int32_t>(static_cast<std::uint32_t>(frame[0]) << 24 |
                                                                  static_cast<std::uint32_t>(frame[1]) << 16 |
                                                                  static_cast<std::uint32_t>(frame[2]) << 8 | frame[3]);
    auto it = peer.in_flight.find(correlation_id);
    if (it == peer.in_flight.end()) {
      connection_failed(
          peer, RequestError::malformed_response,
          fmt::format("the peer answered correlation id {}, which no request in flight carries", correlation_id));
      return false;
    }
    const OutboundRequest& request = it->second.request;
    ByteReader reader(frame);
    auto header = wire::decode_response_header(reader, request.api_key, request.api_version);
    if (!header.ok()) {
      connection_failed(peer, RequestError::malformed_response,
                        fmt::format("the response header to {} v{} (correlation id {}) does not decode",
                                    api_name(request.api_key), request.api_version, correlation_id));
      return false;
    }
    ByteView rest = reader.rest();
    Pending p = std::move(it->second);
    peer.in_flight.erase(it);
    complete(p, peer.node_id, RequestError::none, {}, Bytes(rest.begin(), rest.end()));
    Connection& c = *peer.conn;
    if (!c.received_response) {
      c.received_response = true;
      if (peer.failure_logged) {
        log_line(false, fmt::format("{}: connected again after {} failed attempt{}", peer.where, peer.failures,
                                    peer.failures == 1 ? "" : "s"));
      }
      peer.failures = 0;  // as Kafka resets the backoff once a connection is usable
      peer.failure_logged = false;
      peer.last_logged.reset();
      peer.unlogged_failures = 0;
    }
    return true;
  }

  // ---- events, deadlines, submissions ----

  void on_event(std::uint64_t connection_id, std::uint32_t) {
    auto owner = connection_owner.find(connection_id);
    if (owner == connection_owner.end()) return;
    auto found = peers.find(owner->second);
    if (found == peers.end() || !found->second.conn || found->second.conn->id != connection_id) return;
    Peer& peer = found->second;
    switch (peer.state) {
      case PeerState::connecting: on_connecting_event(peer); break;
      case PeerState::tls_handshake: continue_handshake(peer); break;
      case PeerState::ready: on_ready_event(peer); break;
      default: break;
    }
  }

  void expire(Peer& peer, TimePoint now) {
    if (peer.state == PeerState::backing_off && now >= peer.next_attempt) peer.state = PeerState::disconnected;
    if ((peer.state == PeerState::connecting || peer.state == PeerState::tls_handshake) &&
        now >= peer.conn->setup_deadline) {
      const bool tls = peer.state == PeerState::tls_handshake;
      const auto limit = options.connect_timeout.count();
      connection_failed(peer, tls ? RequestError::tls_failed : RequestError::unreachable,
                        tls ? fmt::format("TLS handshake failed: it did not complete within {} ms (does the peer "
                                          "speak TLS on this port?)",
                                          limit)
                            : fmt::format("cannot connect: no answer within {} ms", limit));
      return;
    }
    // Queued requests waited too long for a connection or a slot.
    for (auto it = peer.queued.begin(); it != peer.queued.end();) {
      if (now < it->deadline) {
        ++it;
        continue;
      }
      const std::string why = peer.state == PeerState::ready ? "every in-flight slot stayed busy"
                                                             : fmt::format("the peer is {}", to_string(peer.state));
      complete(*it, peer.node_id, RequestError::timed_out,
               fmt::format("{}: {} v{} was not sent within {} ms: {}", peer.where, api_name(it->request.api_key),
                           it->request.api_version, timeout_of(it->request).count(), why));
      it = peer.queued.erase(it);
    }
    // A request in flight that timed out: like Kafka, give up on the connection (it may be half-open).
    for (auto it = peer.in_flight.begin(); it != peer.in_flight.end(); ++it) {
      Pending& p = it->second;
      if (now < p.deadline) continue;
      const std::string what =
          fmt::format("{} v{} (correlation id {})", api_name(p.request.api_key), p.request.api_version, it->first);
      complete(p, peer.node_id, RequestError::timed_out,
               fmt::format("{}: no response to {} within {} ms", peer.where, what, timeout_of(p.request).count()));
      peer.in_flight.erase(it);
      connection_failed(peer, RequestError::disconnected, fmt::format("connection closed because {} timed out", what));
      return;
    }
    // A request without response whose bytes could not be written in time: the peer stopped reading.
    if (!peer.unanswered.empty() && now >= peer.unanswered.front().second.deadline) {
      Pending& p = peer.unanswered.front().second;
      const std::string what = fmt::format("{} v{} (correlation id {})", api_name(p.request.api_key),
                                           p.request.api_version, p.correlation_id);
      complete(
          p, peer.node_id, RequestError::timed_out,
          fmt::format("{}: {} could not be written within {} ms", peer.where, what, timeout_of(p.request).count()));
      peer.unanswered.pop_front();
      connection_failed(peer, RequestError::disconnected, fmt::format("connection closed because {} timed out", what));
    }
  }

  milliseconds timeout_of(const OutboundRequest& r) const { return r.timeout.value_or(options.request_timeout); }

  std::optional<TimePoint> next_deadline() const {
    std::optional<TimePoint> next;
    auto consider = [&](TimePoint t) {
      if (!next || t < *next) next = t;
    };
    for (const auto& [id, peer] : peers) {
      if (peer.state == PeerState::backing_off) consider(peer.next_attempt);
      if (peer.conn && peer.state != PeerState::ready) consider(peer.conn->setup_deadline);
      for (const auto& p : peer.queued) consider(p.deadline);
      for (const auto& [cid, p] : peer.in_flight) consider(p.deadline);
      if (!peer.unanswered.empty()) consider(peer.unanswered.front().second.deadline);
      if (peer.conn && peer.conn->more_to_read) consider(TimePoint::min());
    }
    return next;
  }

  void do_send(std::int32_t node_id, Pending p) {
    auto found = peers.find(node_id);
    if (found == peers.end()) {
      complete(p, node_id, RequestError::unknown_node, fmt::format("node {}: no address is known for it", node_id));
      return;
    }
    Peer& peer = found->second;
    const TimePoint now = clock->now();
    if (peer.state == PeerState::backing_off && now >= peer.next_attempt) peer.state = PeerState::disconnected;
    if (peer.state == PeerState::backing_off) {
      complete(p, node_id, peer.last_error_kind,
               fmt::format("{}: {} (next attempt in {} ms)", peer.where, peer.last_error,
                           std::max(0ll, ms_between(now, peer.next_attempt))));
      return;
    }
    if (peer.queued.size() >= options.max_queued_requests) {
      complete(p, node_id, RequestError::too_many_requests,
               fmt::format("{}: {} requests are already waiting", peer.where, peer.queued.size()));
      return;
    }
    p.deadline = now + timeout_of(p.request);
    peer.queued.push_back(std::move(p));
    if (peer.state == PeerState::disconnected) {
      start_connect(peer);
    } else {
      dispatch(peer);
    }
  }

  void do_set_peer(std::int32_t node_id, std::string host, std::uint16_t port) {
    auto [it, added] = peers.try_emplace(node_id);
    Peer& peer = it->second;
    if (!added && peer.host == host && peer.port == port) return;
    const std::string old_where = peer.where;
    peer.node_id = node_id;
    peer.host = std::move(host);
    peer.port = port;
    peer.where = format_where(node_id, peer.host, peer.port);
    if (!added) {
      drop_connection(peer);
      fail_all(peer, RequestError::disconnected,
               fmt::format("{}: the node's address changed to {}:{}", old_where, peer.host, peer.port));
      peer.state = PeerState::disconnected;
      peer.failures = 0;
      peer.last_error.clear();
      peer.attempts = 0;
    }
  }

  void do_remove_peer(std::int32_t node_id) {
    auto it = peers.find(node_id);
    if (it == peers.end()) return;
    drop_connection(it->second);
    fail_all(it->second, RequestError::unknown_node, fmt::format("{}: the node was removed", it->second.where));
    peers.erase(it);
    std::lock_guard lock(status_mutex);
    status.erase(node_id);
  }

  void run_tasks() {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard lock(task_mutex);
      batch.swap(tasks);
    }
    for (auto& task : batch) task();
  }

  void publish_status() {
    std::lock_guard lock(status_mutex);
    for (const auto& [id, peer] : peers) {
      PeerStatus& s = status[id];
      s.node_id = id;
      s.host = peer.host;
      s.port = peer.port;
      s.state = peer.state;
      s.consecutive_failures = peer.failures;
      s.last_error = peer.last_error;
      s.next_attempt =
          peer.state == PeerState::backing_off ? std::optional<TimePoint>(peer.next_attempt) : std::nullopt;
      s.last_backoff = peer.last_backoff;
      s.connect_attempts = peer.attempts;
      s.in_flight = peer.slots_used();
      s.queued = peer.queued.size();
    }
  }

  void poll_once(milliseconds max_wait) {
    int wait_ms = static_cast<int>(std::min<long long>(max_wait.count(), INT_MAX));
    {
      std::lock_guard lock(task_mutex);
      if (!tasks.empty()) wait_ms = 0;
    }
    if (auto next = next_deadline()) {
      const long long until = *next == TimePoint::min() ? 0 : ms_between(clock->now(), *next);
      // Round up so a deadline is not missed by a fraction of a millisecond.
      wait_ms = static_cast<int>(std::clamp<long long>(until + 1, 0, wait_ms));
    }
    epoll_event events[64];
    const int n = ::epoll_wait(epoll_fd, events, 64, wait_ms);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        std::uint64_t drained;
        [[maybe_unused]] ssize_t r = ::read(wake_fd, &drained, sizeof drained);
        continue;
      }
      on_event(events[i].data.u64, events[i].events);
      run_completions();
    }
    // TLS connections with decrypted bytes that epoll cannot see.
    for (auto& [id, peer] : peers) {
      if (peer.state == PeerState::ready && peer.conn->more_to_read) on_ready_event(peer);
    }
    run_completions();
    run_tasks();
    run_completions();
    const TimePoint now = clock->now();
    for (auto& [id, peer] : peers) expire(peer, now);
    run_completions();
    publish_status();
  }

  void shut_down() {
    {
      std::lock_guard lock(task_mutex);
      stopped = true;
    }
    run_tasks();  // submissions made before stop still get their answer
    for (auto& [id, peer] : peers) {
      drop_connection(peer);
      fail_all(peer, RequestError::shut_down, fmt::format("{}: the client is shutting down", peer.where));
      peer.state = PeerState::disconnected;
    }
    run_completions();
    publish_status();
  }
};

Result<std::unique_ptr<OutboundClient>> OutboundClient::create(OutboundOptions options) {
  if (options.protocol == SecurityProtocol::sasl_plaintext || options.protocol == SecurityProtocol::sasl_ssl) {
    return make_error(ErrorKind::unsupported,
                      fmt::format("outbound connections with {} are not supported (no SASL client login): use "
                                  "PLAINTEXT or SSL with a client certificate",
                                  to_string(options.protocol)));
  }
  if (options.protocol == SecurityProtocol::ssl && !options.tls) {
    return make_error(ErrorKind::invalid_argument, "outbound SSL needs a TLS client context (keystore and truststore)");
  }
  if (options.max_in_flight_per_connection == 0) options.max_in_flight_per_connection = 1;
  auto impl = std::make_unique<Impl>();
  impl->clock = options.clock != nullptr ? options.clock : &SteadyClock::instance();
  impl->random.seed(options.jitter_seed != 0 ? options.jitter_seed : std::random_device{}());
  impl->options = std::move(options);
  impl->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->epoll_fd < 0 || impl->wake_fd < 0) {
    return make_error(ErrorKind::io, fmt::format("cannot create the outbound event loop: {}", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // connection ids start at 1
  if (::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->wake_fd, &ev) != 0) {
    return make_error(ErrorKind::io, fmt::format("cannot create the outbound event loop: {}", std::strerror(errno)));
  }
  return std::unique_ptr<OutboundClient>(new OutboundClient(std::move(impl)));
}

OutboundClient::OutboundClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OutboundClient::~OutboundClient() { stop(); }

void OutboundClient::set_peer(std::int32_t node_id, std::string host, std::uint16_t port) {
  Impl* impl = impl_.get();
  impl->post(
      [impl, node_id, host = std::move(host), port]() mutable { impl->do_set_peer(node_id, std::move(host), port); });
}

void OutboundClient::remove_peer(std::int32_t node_id) {
  Impl* impl = impl_.get();
  impl->post([impl, node_id] { impl->do_remove_peer(node_id); });
}

void OutboundClient::send(std::int32_t node_id, OutboundRequest request, ResponseCallback callback) {
  Impl* impl = impl_.get();
  auto pending = std::make_shared<Pending>();
  pending->request = std::move(request);
  pending->callback = std::move(callback);
  {
    std::lock_guard lock(impl->task_mutex);
    if (!impl->stopped) {
      impl->tasks.push_back([impl, node_id, pending] { impl->do_send(node_id, std::move(*pending)); });
      pending.reset();
    }
  }
  if (!pending) {
    impl->wake();
    return;
  }
  OutboundResponse r;
  r.error = RequestError::shut_down;
  r.message = fmt::format("node {}: the client is shut down", node_id);
  r.node_id = node_id;
  if (pending->callback) pending->callback(std::move(r));
}

std::optional<PeerStatus> OutboundClient::peer_status(std::int32_t node_id) const {
  std::lock_guard lock(impl_->status_mutex);
  auto it = impl_->status.find(node_id);
  if (it == impl_->status.end()) return std::nullopt;
  return it->second;
}

Status OutboundClient::start() {
  if (impl_->thread.joinable())
    return make_error(ErrorKind::invalid_argument, "the outbound client is already running");
  Impl* impl = impl_.get();
  impl->thread = std::thread([impl] {
    while (!impl->stop_requested.load()) {
      std::lock_guard lock(impl->driver_mutex);
      impl->poll_once(milliseconds(1000));
    }
  });
  return Status::success();
}

void OutboundClient::poll(std::chrono::milliseconds max_wait) {
  std::lock_guard lock(impl_->driver_mutex);
  if (impl_->stop_requested.load()) return;
  impl_->poll_once(max_wait);
}

void OutboundClient::wake() { impl_->wake(); }

void OutboundClient::stop() {
  if (impl_->stop_requested.exchange(true)) return;
  impl_->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard lock(impl_->driver_mutex);
  impl_->shut_down();
}

}  // namespace bulwark::net
