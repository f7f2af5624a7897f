// The network layer: epoll event loops (one per thread), listeners, connections with Kafka framing
// (4-byte big-endian size, then the request), TLS on the same nonblocking sockets, and responses written
// strictly in request order.
//
// Threading: every connection lives on one event loop thread; RequestHandler methods run on that
// thread. A Responder may be used from any thread, exactly once per request (later calls are ignored),
// and is a harmless no-op once its connection closed or the server stopped. EventLoop::post,
// run_after and cancel are safe from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/openssl.h"
#include "base/result.h"
#include "net/limits.h"
#include "tls/tls.h"

namespace bulwark::net {

enum class SecurityProtocol { plaintext, ssl, sasl_plaintext, sasl_ssl };
std::string_view to_string(SecurityProtocol protocol);
inline bool uses_tls(SecurityProtocol p) { return p == SecurityProtocol::ssl || p == SecurityProtocol::sasl_ssl; }

struct ListenerSpec {
  std::string name;
  std::string host;  // "" or "0.0.0.0" = every IPv4 address, "::" = every address
  std::uint16_t port = 0;  // 0 = any free port (see Server::bound_port)
  SecurityProtocol protocol = SecurityProtocol::plaintext;
  std::shared_ptr<tls::ServerTlsContext> tls;  // null for plaintext
  std::size_t max_connections = SIZE_MAX;        // listener.name.<l>.max.connections
  // Kafka exempts the inter-broker (and controller) listener from the broker-wide max.connections.
  bool counts_toward_broker_limit = true;
};

struct PeerInfo {
  std::uint64_t connection_id = 0;
  std::string listener;
  SecurityProtocol protocol = SecurityProtocol::plaintext;
  std::string remote_address;
  std::uint16_t remote_port = 0;
  X509Ptr client_certificate;  // null if none
  std::string client_subject;  // RFC 2253, empty if none
};

class EventLoop;
namespace detail {
struct LoopShared;
struct LoopImpl;
struct ServerImpl;
}  // namespace detail

class Responder {  // copyable handle; safe to call from any thread, exactly once per request
 public:
  Responder() = default;
  void respond(Bytes frame_without_length_prefix);  // response bytes; the server adds the 4-byte size
  void respond_none();                              // e.g. Produce acks=0: no bytes, but frees the ordering slot
  // Quota throttling (KIP-219): answers, then reads no new request from this connection for `mute`.
  void respond(Bytes frame_without_length_prefix, std::chrono::milliseconds mute);
  void respond_none(std::chrono::milliseconds mute);
  void close_connection();                          // answer nothing more and close (protocol violations)

 private:
  friend class Connection;
  enum class Kind : std::uint8_t { bytes, none, close };
  void complete(Kind kind, Bytes data, std::chrono::milliseconds mute = {});
  Responder(std::shared_ptr<detail::LoopShared> loop, std::uint64_t connection_id, std::uint64_t sequence)
      : loop_(std::move(loop)), connection_id_(connection_id), sequence_(sequence) {}
  std::shared_ptr<detail::LoopShared> loop_;
  std::uint64_t connection_id_ = 0;
  std::uint64_t sequence_ = 0;
};

class ConnectionState {
 public:
  virtual ~ConnectionState() = default;
};  // the broker's per-connection data

struct RequestContext {
  const PeerInfo& peer;
  std::unique_ptr<ConnectionState>& state;
  EventLoop& loop;
  // The largest frame this connection may send from the next one on, checked when its 4-byte size
  // arrives. It starts at ServerOptions::max_frame_bytes_before_login on SASL listeners; the handler
  // raises it (e.g. to SIZE_MAX) once the client has logged in. socket.request.max.bytes always applies.
  std::size_t& frame_limit;
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual void on_request(RequestContext& ctx, Bytes frame, Responder responder) = 0;  // frame = request bytes after the size prefix
  virtual void on_connection_closed(const PeerInfo&, ConnectionState*) {}
};

struct ServerOptions {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::size_t max_frame_bytes = 100 * 1024 * 1024;  // socket.request.max.bytes
  // sasl.server.max.receive.size: frames on SASL listeners before login (see RequestContext::frame_limit).
  std::size_t max_frame_bytes_before_login = 524288;
  std::size_t max_in_flight_per_connection = 100;
  std::size_t max_connections = 10000;         // max.connections, over listeners that count toward it
  std::size_t max_connections_per_ip = SIZE_MAX;  // max.connections.per.ip
  // max.connections.per.ip.overrides: host (IP address or name, resolved at start()) -> limit.
  std::vector<std::pair<std::string, std::size_t>> max_connections_per_ip_overrides;
  std::chrono::milliseconds idle_timeout{600000};  // connections.max.idle.ms
  // bulwark.request.receive.timeout.ms: a request whose first byte arrived must arrive in full within
  // this time, and a TLS handshake must finish within it (slow-loris guard; Kafka has no such key).
  std::chrono::milliseconds request_receive_timeout{30000};
  // queued.max.request.bytes: connections stop starting new requests while the bytes of requests read
  // but not yet answered exceed this; -1 = unlimited.
  std::int64_t max_queued_request_bytes = -1;
  // Limits that were hit are logged at most once per this interval each, with their count.
  std::chrono::milliseconds limit_log_interval{5000};
  // Observers (on the connection's loop thread; keep them cheap): a request answered, from when it had
  // arrived in full to its answer; a TLS handshake that failed, with its short class (tls::failure_class).
  std::function<void(const std::string& listener, std::int16_t api_key, std::chrono::microseconds)> on_request_done;
  std::function<void(const std::string& listener, std::string_view failure_class)> on_handshake_failed;
};

using TimerId = std::uint64_t;

class EventLoop {
 public:
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs fn on this loop's thread soon. Dropped if the loop has stopped.
  void post(std::function<void()> fn);
  // Runs fn on this loop's thread after delay (unless cancelled first).
  TimerId run_after(std::chrono::milliseconds delay, std::function<void()> fn);
  void cancel(TimerId id);
  bool in_loop_thread() const;
  // Quota throttling of a request already answered (request_percentage of an API whose response has
  // no throttle of its own yet): reads no new request from the connection for `mute`. Any thread.
  void mute_connection(std::uint64_t connection_id, std::chrono::milliseconds mute);

  // Internal: made by Server only.
  explicit EventLoop(std::unique_ptr<detail::LoopImpl> impl);
  detail::LoopImpl& impl() const { return *impl_; }

 private:
  std::unique_ptr<detail::LoopImpl> impl_;
};

class Server {
 public:
  Server(ServerOptions options, RequestHandler& handler);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens now (so bound_port works before start); accepting begins at start().
  Status add_listener(ListenerSpec spec);
  Status start();
  // Closes every connection (on_connection_closed runs for each) and joins the threads. Idempotent.
  void stop();
  std::uint16_t bound_port(const std::string& listener) const;  // for port 0
  std::size_t connection_count() const;
  // Open connections per listener name.
  std::vector<std::pair<std::string, std::size_t>> connections_per_listener() const;
  // How often `kind` of limit was hit since start() (see net/limits.h).
  std::uint64_t limit_hits(LimitKind kind) const;

 private:
  std::unique_ptr<detail::ServerImpl> impl_;
};

}  // namespace bulwark::net
