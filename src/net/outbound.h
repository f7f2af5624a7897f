// Outbound connections from this node to its peers (Raft voters, the controller, partition leaders):
// one nonblocking connection per peer node id, Kafka framing, pipelined requests matched to their
// responses by correlation id, per-request timeouts, reconnects with exponential backoff and jitter,
// PLAINTEXT or TLS (mTLS: our keystore is the client certificate, the truststore verifies the peer,
// and the peer's SAN must name the host we dialled unless verify_hostname is off).
//
// Not done here: SASL login (SASL_PLAINTEXT / SASL_SSL are refused by create()), and ApiVersions
// negotiation: the caller picks the API version of every request (inter-broker peers run our own code).
//
// Threading. One thread drives the client: either the client's own thread (start()) or a caller that
// calls poll() in a loop (never both). Every callback (ResponseCallback, OutboundOptions::log_sink)
// runs on that driving thread, never inside send(). send(), set_peer(), remove_peer(), peer_status()
// and wake() are safe from any thread, including from inside a callback. stop() and the destructor must
// not be called from a callback; they fail whatever is still pending with RequestError::shut_down (the
// callbacks then run on the stopping thread).
//
// Time. Every deadline (connect timeout, request timeout, backoff, log rate limit) is decided with
// OutboundOptions::clock, so tests can step a ManualClock and call poll(0ms) deterministically.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "net/server.h"
#include "tls/tls.h"

namespace bulwark::net {

// ---- Time ----------------------------------------------------------------------------------------

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  static SteadyClock& instance();
};

// For tests: time moves only when advance() is called. Safe from any thread.
class ManualClock final : public Clock {
 public:
  time_point now() const override { return time_point(std::chrono::nanoseconds(ns_.load())); }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

 private:
  std::atomic<std::int64_t> ns_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
};

// ---- Requests and responses ----------------------------------------------------------------------

enum class RequestError {
  none,
  timed_out,           // no response within the request's timeout (the connection is closed, as Kafka does)
  disconnected,        // the connection broke (or was closed) after the request was written
  unreachable,         // the peer could not be connected to: refused, connect timeout, resolution failed
  tls_failed,          // the TLS handshake failed (untrusted certificate, host name mismatch, ...)
  malformed_response,  // the peer sent a frame we could not accept; the connection was closed
  too_many_requests,   // the peer's queue is full (OutboundOptions::max_queued_requests)
  unknown_node,        // no address was set for this node id
  shut_down,           // stop() or the destructor ran first
};
std::string_view to_string(RequestError error);

struct OutboundRequest {
  std::int16_t api_key = 0;
  std::int16_t api_version = 0;
  Bytes body;  // the request body, without size prefix or header
  // No response expected (Produce with acks=0): the callback runs once the bytes are handed to the socket.
  bool expects_response = true;
  std::optional<std::chrono::milliseconds> timeout;  // default OutboundOptions::request_timeout
};

struct OutboundResponse {
  RequestError error = RequestError::none;
  // Plain words, naming the peer: "node 2 at 127.0.0.1:9093: TLS handshake failed: ...".
  std::string message;
  std::int32_t node_id = -1;
  std::int32_t correlation_id = -1;  // -1 if the request never got one (it was never sent)
  Bytes body;                        // the response body after its header; empty on error
  bool ok() const { return error == RequestError::none; }
};

using ResponseCallback = std::function<void(OutboundResponse)>;

// ---- Configuration -------------------------------------------------------------------------------

struct OutboundOptions {
  std::string client_id = "bulwark";
  SecurityProtocol protocol = SecurityProtocol::plaintext;  // plaintext or ssl
  std::shared_ptr<tls::ClientTlsContext> tls;               // required for ssl
  // ssl.endpoint.identification.algorithm: "https" (true, Kafka's default) checks that the peer's
  // certificate names the dialled host in its SAN (an IP SAN for IP literals); "" (false) checks only
  // that the chain is trusted.
  bool verify_hostname = true;

  // TCP connect plus TLS handshake (socket.connection.setup.timeout.ms).
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};  // request.timeout.ms
  // reconnect.backoff.ms / reconnect.backoff.max.ms: after the n-th consecutive failure the next attempt
  // waits min(max, base * 2^(n-1)) scaled by a random factor in [1 - jitter, 1 + jitter] (Kafka: 0.2).
  std::chrono::milliseconds reconnect_backoff{50};
  std::chrono::milliseconds reconnect_backoff_max{1000};
  double reconnect_jitter = 0.2;
  std::uint64_t jitter_seed = 0;  // 0 = random

  std::size_t max_in_flight_per_connection = 5;        // max.in.flight.requests.per.connection
  std::size_t max_queued_requests = 1000;              // per peer, waiting for a connection or an in-flight slot
  std::size_t max_response_bytes = 100 * 1024 * 1024;  // larger frames are a connection error

  // Connection failures are logged once, then at most once per interval per peer (with a count).
  std::chrono::milliseconds failure_log_interval{10000};
  std::function<void(std::string_view)> log_sink;  // default: log::warn
  Clock* clock = nullptr;                          // default: SteadyClock::instance(); must outlive the client
};

enum class PeerState { disconnected, backing_off, connecting, tls_handshake, ready };
std::string_view to_string(PeerState state);

struct PeerStatus {
  std::int32_t node_id = -1;
  std::string host;
  std::uint16_t port = 0;
  PeerState state = PeerState::disconnected;
  int consecutive_failures = 0;
  std::string last_error;                         // why the last attempt or connection failed, "" if it never did
  std::optional<Clock::time_point> next_attempt;  // while backing_off
  std::chrono::milliseconds last_backoff{0};
  std::uint64_t connect_attempts = 0;  // since the peer was set
  std::size_t in_flight = 0;
  std::size_t queued = 0;
};

// ---- The client ----------------------------------------------------------------------------------

class OutboundClient {
 public:
  // Fails for SASL protocols (not supported) or ssl without a TLS context.
  static Result<std::unique_ptr<OutboundClient>> create(OutboundOptions options);
  ~OutboundClient();  // stop()
  OutboundClient(const OutboundClient&) = delete;
  OutboundClient& operator=(const OutboundClient&) = delete;

  // Adds or changes a peer's address. A changed address closes the old connection (its in-flight
  // requests fail with disconnected) and resets the backoff.
  void set_peer(std::int32_t node_id, std::string host, std::uint16_t port);
  // Forgets a peer: its connection closes, its requests fail with unknown_node.
  void remove_peer(std::int32_t node_id);

  // Queues a request; the callback runs exactly once, on the driving thread. Connects on demand. A peer
  // that is backing off after a failure fails the request at once with that failure's error value and
  // reason (callers retry after their own backoff, as Kafka's inter-broker senders do). Requests waiting for a
  // connection fail with the reason if the attempt fails; requests already written fail with
  // disconnected if the connection breaks. Responses are matched by correlation id, not by order.
  void send(std::int32_t node_id, OutboundRequest request, ResponseCallback callback);

  std::optional<PeerStatus> peer_status(std::int32_t node_id) const;

  // Runs the client on its own thread until stop().
  Status start();
  // One round: waits up to max_wait for I/O (less if a deadline comes sooner), then handles sockets,
  // submissions, timeouts and reconnects. For callers that drive the client themselves.
  void poll(std::chrono::milliseconds max_wait);
  // Makes a poll() that is waiting return soon (e.g. after a ManualClock step).
  void wake();
  // Stops the thread (if started), closes every connection and fails every pending request. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit OutboundClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::net
