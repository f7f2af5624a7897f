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
#include <vector>

#include "base/bytes.h"
#include "base/openssl.h"
#include "base/result.h"
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
  void close_connection();                          // answer nothing more and close (protocol violations)

 private:
  friend class Connection;
  enum class Kind : std::uint8_t { bytes, none, close };
  void complete(Kind kind, Bytes data);
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
  std::size_t max_in_flight_per_connection = 100;
  std::size_t max_connections = 10000;
  std::chrono::milliseconds idle_timeout{600000};  // connections.max.idle.ms
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

 private:
  std::unique_ptr<detail::ServerImpl> impl_;
};

}  // namespace bulwark::net
