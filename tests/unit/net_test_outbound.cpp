// The outbound client against real loopback sockets: net::Server (plaintext and mTLS) and a raw test
// server that misbehaves on purpose (out-of-order answers, oversized or malformed frames, silence).
#include "net/outbound.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "tls_test_certs.h"
#include "wire/protocol.h"

namespace bulwark::net {
namespace {

using namespace bulwark::testing;
using namespace std::chrono_literals;

constexpr std::int16_t kMetadata = 3;      // v1: request header v1, response header v0
constexpr std::int16_t kApiVersions = 18;  // v3: request header v2, response header v0 (always)

OutboundRequest request(std::string_view body, std::int16_t api_key = kMetadata, std::int16_t version = 1) {
  OutboundRequest r;
  r.api_key = api_key;
  r.api_version = version;
  r.body = Bytes(body.begin(), body.end());
  return r;
}

std::string text(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Responses as they arrive, from whatever thread runs the callbacks.
class Collector {
 public:
  ResponseCallback callback() {
    return [this](OutboundResponse r) {
      std::lock_guard lock(mutex_);
      got_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return got_.size();
  }
  OutboundResponse at(std::size_t i) {
    std::lock_guard lock(mutex_);
    return got_.at(i);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<OutboundResponse> got_;
};

// Drives a client on the test thread until pred() holds (real time limit).
template <class Pred>
bool poll_until(OutboundClient& client, Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    client.poll(10ms);
  }
  return true;
}

// ---- net::Server that echoes bodies (or holds them unanswered) ----

class EchoHandler : public RequestHandler {
 public:
  void on_request(RequestContext& ctx, Bytes frame, Responder responder) override {
    ByteReader reader(frame);
    auto header = wire::decode_request_header(reader);
    ASSERT_TRUE(header.ok());
    std::lock_guard lock(mutex_);
    headers.push_back(*header);
    subjects.push_back(ctx.peer.client_subject);
    if (hold) {
      held.push_back(responder);
    } else {
      ByteWriter w;
      wire::encode_response_header(w, header->api_key, header->api_version, header->correlation_id);
      w.write_bytes(reader.rest());
      responder.respond(w.take());
    }
    cv_.notify_all();
  }
  bool wait_requests(std::size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 10s, [&] { return headers.size() >= n; });
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<wire::RequestHeader> headers;
  std::vector<std::string> subjects;
  std::vector<Responder> held;
  bool hold = false;
};

std::unique_ptr<Server> start_server(RequestHandler& handler, std::uint16_t port = 0,
                                     std::shared_ptr<tls::ServerTlsContext> tls = nullptr) {
  ServerOptions options;
  options.threads = 1;
  auto server = std::make_unique<Server>(options, handler);
  ListenerSpec spec;
  spec.name = "test";
  spec.host = "127.0.0.1";
  spec.port = port;
  spec.protocol = tls ? SecurityProtocol::ssl : SecurityProtocol::plaintext;
  spec.tls = std::move(tls);
  auto added = server->add_listener(spec);
  EXPECT_TRUE(added.ok()) << added.error().message;
  EXPECT_TRUE(server->start().ok());
  return server;
}

// ---- a raw server: one scripted session per accepted connection ----

class RawServer {
 public:
  explicit RawServer(std::function<void(int)> session) : session_(std::move(session)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        ++accepted;
        session_(client);
        ::close(client);
      }
    });
  }
  ~RawServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  std::atomic<int> accepted{0};

 private:
  std::function<void(int)> session_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

bool read_exact(int fd, std::uint8_t* out, std::size_t n, int timeout_ms) {
  std::size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    const ssize_t r = ::recv(fd, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

// Reads and drops whatever arrives until the peer closes (or timeout_ms of silence).
void drain_until_closed(int fd, int timeout_ms) {
  std::uint8_t buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0 || ::recv(fd, buf, sizeof buf, 0) <= 0) return;
  }
}

struct RawRequest {
  wire::RequestHeader header;
  std::string body;
};

std::optional<RawRequest> read_request(int fd, int timeout_ms = 5000) {
  std::uint8_t h[4];
  if (!read_exact(fd, h, 4, timeout_ms)) return std::nullopt;
  const std::uint32_t size = static_cast<std::uint32_t>(h[0]) << 24 | h[1] << 16 | h[2] << 8 | h[3];
  Bytes frame(size);
  if (!read_exact(fd, frame.data(), size, timeout_ms)) return std::nullopt;
  ByteReader reader(frame);
  auto header = wire::decode_request_header(reader);
  if (!header.ok()) return std::nullopt;
  return RawRequest{*header, std::string(as_chars(reader.rest()))};
}

void write_all(int fd, const Bytes& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// A response frame with header v0 (the correlation id only).
Bytes response_frame(std::int32_t correlation_id, std::string_view body) {
  ByteWriter w;
  w.write_u32(static_cast<std::uint32_t>(4 + body.size()));
  w.write_i32(correlation_id);
  w.write_bytes(body);
  return w.take();
}

// A port nothing listens on (just released by the kernel).
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::unique_ptr<OutboundClient> make_client(OutboundOptions options) {
  if (options.client_id == "bulwark") options.client_id = "bulwark-test";
  auto client = OutboundClient::create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.error().message;
  return client.ok() ? std::move(client.value()) : nullptr;
}

// ---- plaintext ----

TEST(OutboundClient, PlaintextRequestsWithBothHeaderVersions) {
  EchoHandler handler;
  auto server = start_server(handler);
  auto client = make_client({});
  client->set_peer(2, "127.0.0.1", server->bound_port("test"));
  ASSERT_TRUE(client->start().ok());
  Collector got;
  client->send(2, request("metadata v1"), got.callback());
  client->send(2, request("metadata v12", kMetadata, 12), got.callback());       // flexible: headers v2 / v1
  client->send(2, request("api versions v3", kApiVersions, 3), got.callback());  // response header v0
  ASSERT_TRUE(got.wait_for(3));
  std::set<std::string> bodies;
  std::set<std::int32_t> ids;
  for (std::size_t i = 0; i < 3; ++i) {
    auto r = got.at(i);
    EXPECT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.node_id, 2);
    bodies.insert(text(r.body));
    ids.insert(r.correlation_id);
  }
  EXPECT_EQ(bodies, (std::set<std::string>{"metadata v1", "metadata v12", "api versions v3"}));
  EXPECT_EQ(ids.size(), 3u);
  ASSERT_TRUE(handler.wait_requests(3));
  for (const auto& h : handler.headers) EXPECT_EQ(h.client_id.value_or(""), "bulwark-test");
  auto status = client->peer_status(2);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state, PeerState::ready);
  EXPECT_EQ(status->connect_attempts, 1u);
}

TEST(OutboundClient, PipelinesUpToTheCapAndMatchesOutOfOrderAnswers) {
  constexpr int kCap = 4;
  constexpr int kRounds = 5;
  std::atomic<int> extra_frame_seen{0};
  RawServer server([&](int fd) {
    for (int round = 0; round < kRounds; ++round) {
      std::vector<RawRequest> batch;
      for (int i = 0; i < kCap; ++i) {
        auto r = read_request(fd);
        if (!r) return;
        batch.push_back(*r);
      }
      // The cap holds: nothing more arrives while these are unanswered.
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) ++extra_frame_seen;
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        write_all(fd, response_frame(it->header.correlation_id, "re:" + it->body));
      }
    }
  });
  OutboundOptions options;
  options.max_in_flight_per_connection = kCap;
  auto client = make_client(options);
  client->set_peer(1, "127.0.0.1", server.port());
  ASSERT_TRUE(client->start().ok());
  std::mutex mutex;
  std::map<std::string, std::string> answers;  // request body -> response body
  std::atomic<int> done{0};
  for (int i = 0; i < kCap * kRounds; ++i) {
    const std::string body = "request " + std::to_string(i);
    client->send(1, request(body), [&, body](OutboundResponse r) {
      std::lock_guard lock(mutex);
      answers[body] = r.ok() ? text(r.body) : "error: " + r.message;
      ++done;
    });
  }
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (done < kCap * kRounds && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(done.load(), kCap * kRounds);
  for (const auto& [body, answer] : answers) EXPECT_EQ(answer, "re:" + body);
  EXPECT_EQ(extra_frame_seen.load(), 0);
  EXPECT_EQ(server.accepted.load(), 1);
}

TEST(OutboundClient, RequestWithoutResponseCompletesOnceWritten) {
  std::mutex mutex;
  std::vector<std::string> seen;
  RawServer server([&](int fd) {
    while (auto r = read_request(fd)) {
      {
        std::lock_guard lock(mutex);
        seen.push_back(r->body);
      }
      if (r->body == "answer me") write_all(fd, response_frame(r->header.correlation_id, "answered"));
    }
  });
  auto client = make_client({});
  client->set_peer(1, "127.0.0.1", server.port());
  Collector got;
  OutboundRequest fire = request("fire and forget", 0, 3);  // Produce v3, as with acks=0
  fire.expects_response = false;
  client->send(1, std::move(fire), got.callback());
  client->send(1, request("answer me"), got.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return got.size() == 2; }));
  EXPECT_TRUE(got.at(0).ok()) << got.at(0).message;
  EXPECT_TRUE(got.at(0).body.empty());
  EXPECT_TRUE(got.at(1).ok()) << got.at(1).message;
  EXPECT_EQ(text(got.at(1).body), "answered");
  std::lock_guard lock(mutex);
  EXPECT_EQ(seen, (std::vector<std::string>{"fire and forget", "answer me"}));
}

TEST(OutboundClient, PeerClosingAnIdleConnectionIsNotAFailure) {
  RawServer server([&](int fd) {
    if (auto r = read_request(fd)) write_all(fd, response_frame(r->header.correlation_id, "one"));
  });  // then closes: an idle timeout on the peer's side
  std::vector<std::string> log;
  OutboundOptions options;
  options.reconnect_backoff = 10s;  // a failure would make the second request fail fast
  options.log_sink = [&](std::string_view line) { log.emplace_back(line); };
  auto client = make_client(options);
  client->set_peer(1, "127.0.0.1", server.port());
  Collector first;
  client->send(1, request("first"), first.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return first.size() == 1; }));
  ASSERT_TRUE(first.at(0).ok()) << first.at(0).message;
  ASSERT_TRUE(poll_until(*client, [&] { return client->peer_status(1)->state == PeerState::disconnected; }));
  Collector second;
  client->send(1, request("second"), second.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return second.size() == 1; }));
  ASSERT_TRUE(second.at(0).ok()) << second.at(0).message;
  EXPECT_EQ(client->peer_status(1)->connect_attempts, 2u);
  EXPECT_EQ(client->peer_status(1)->consecutive_failures, 0);
  EXPECT_TRUE(log.empty()) << log.front();
}

TEST(OutboundClient, AddressChangeAndRemovalFailWhatIsPending) {
  std::atomic<int> held{0};
  RawServer old_home([&](int fd) {
    if (read_request(fd)) ++held;
    drain_until_closed(fd, 5000);  // never answers
  });
  RawServer new_home([&](int fd) {
    while (auto r = read_request(fd)) write_all(fd, response_frame(r->header.correlation_id, "new home"));
  });
  auto client = make_client({});
  client->set_peer(2, "127.0.0.1", old_home.port());
  Collector first;
  client->send(2, request("to the old address"), first.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return held.load() == 1; }));
  client->set_peer(2, "127.0.0.1", new_home.port());
  Collector second;
  client->send(2, request("to the new address"), second.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return first.size() == 1 && second.size() == 1; }));
  EXPECT_EQ(first.at(0).error, RequestError::disconnected);
  EXPECT_NE(first.at(0).message.find(fmt::format("the node's address changed to 127.0.0.1:{}", new_home.port())),
            std::string::npos)
      << first.at(0).message;
  ASSERT_TRUE(second.at(0).ok()) << second.at(0).message;
  EXPECT_EQ(text(second.at(0).body), "new home");

  client->remove_peer(2);
  Collector third;
  client->send(2, request("to nowhere"), third.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return third.size() == 1; }));
  EXPECT_EQ(third.at(0).error, RequestError::unknown_node);
  EXPECT_FALSE(client->peer_status(2).has_value());
}

TEST(OutboundClient, RequestTimeoutFailsItAndClosesTheConnection) {
  std::atomic<int> received{0};
  RawServer server([&](int fd) {
    while (read_request(fd, 10000)) ++received;  // never answers
  });
  ManualClock clock;
  OutboundOptions options;
  options.clock = &clock;
  options.request_timeout = 1000ms;
  auto client = make_client(options);
  client->set_peer(3, "127.0.0.1", server.port());
  Collector got;
  client->send(3, request("slow"), got.callback());
  OutboundRequest patient = request("patient");
  patient.timeout = 5000ms;
  client->send(3, std::move(patient), got.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return received.load() == 2; }));
  clock.advance(999ms);
  client->poll(0ms);
  EXPECT_EQ(got.size(), 0u);
  clock.advance(2ms);
  ASSERT_TRUE(poll_until(*client, [&] { return got.size() == 2; }));
  EXPECT_EQ(got.at(0).error, RequestError::timed_out);
  EXPECT_NE(got.at(0).message.find("node 3 at 127.0.0.1:"), std::string::npos) << got.at(0).message;
  EXPECT_NE(got.at(0).message.find("no response to Metadata v1"), std::string::npos) << got.at(0).message;
  EXPECT_NE(got.at(0).message.find("within 1000 ms"), std::string::npos) << got.at(0).message;
  EXPECT_EQ(got.at(1).error, RequestError::disconnected);
  EXPECT_NE(got.at(1).message.find("timed out"), std::string::npos) << got.at(1).message;
  EXPECT_EQ(client->peer_status(3)->state, PeerState::backing_off);
}

// One bad answer each; every one must be a connection error with a clear message, never a crash.
struct BadAnswer {
  const char* name;
  std::function<void(int fd, std::int32_t correlation_id)> answer;
  RequestError error;
  const char* message;
};

class OutboundBadAnswers : public ::testing::TestWithParam<BadAnswer> {};

TEST_P(OutboundBadAnswers, AreConnectionErrors) {
  const BadAnswer& bad = GetParam();
  std::atomic<bool> answered_well{false};
  RawServer server([&](int fd) {
    auto r = read_request(fd);
    if (!r) return;
    if (answered_well) {  // the reconnected session behaves
      write_all(fd, response_frame(r->header.correlation_id, "fine"));
      read_request(fd, 2000);
      return;
    }
    answered_well = true;
    bad.answer(fd, r->header.correlation_id);
  });
  OutboundOptions options;
  options.max_response_bytes = 1024 * 1024;
  options.reconnect_backoff = 1ms;
  options.reconnect_backoff_max = 1ms;
  auto client = make_client(options);
  client->set_peer(4, "127.0.0.1", server.port());
  ASSERT_TRUE(client->start().ok());
  Collector got;
  client->send(4, request("x"), got.callback());
  ASSERT_TRUE(got.wait_for(1));
  EXPECT_EQ(got.at(0).error, bad.error) << got.at(0).message;
  EXPECT_NE(got.at(0).message.find(bad.message), std::string::npos) << got.at(0).message;
  // The client reconnects afterwards (the failure may still be backing off for a millisecond).
  for (int attempt = 0; attempt < 100; ++attempt) {
    Collector retry;
    client->send(4, request("y"), retry.callback());
    ASSERT_TRUE(retry.wait_for(1));
    if (retry.at(0).ok()) {
      EXPECT_EQ(text(retry.at(0).body), "fine");
      return;
    }
    std::this_thread::sleep_for(5ms);
  }
  FAIL() << "never reconnected";
}

INSTANTIATE_TEST_SUITE_P(
    Frames, OutboundBadAnswers,
    ::testing::Values(BadAnswer{"Oversized",
                                [](int fd, std::int32_t id) {
                                  ByteWriter w;
                                  w.write_u32(2 * 1024 * 1024);
                                  w.write_i32(id);
                                  write_all(fd, w.take());
                                },
                                RequestError::malformed_response,
                                "response frame of 2097152 bytes, more than the limit of 1048576"},
                      BadAnswer{"Negative",
                                [](int fd, std::int32_t id) {
                                  ByteWriter w;
                                  w.write_i32(-5);
                                  w.write_i32(id);
                                  write_all(fd, w.take());
                                },
                                RequestError::malformed_response, "negative response frame size (-5)"},
                      BadAnswer{"TooShort",
                                [](int fd, std::int32_t) {
                                  write_all(fd, Bytes{0, 0, 0, 2, 1, 2});
                                },
                                RequestError::malformed_response, "too short for a correlation id"},
                      BadAnswer{"UnknownCorrelationId",
                                [](int fd, std::int32_t id) { write_all(fd, response_frame(id + 1000, "?")); },
                                RequestError::malformed_response, "which no request in flight carries"},
                      BadAnswer{"ClosedMidResponse",
                                [](int fd, std::int32_t id) {
                                  Bytes frame = response_frame(id, "a response that is cut short");
                                  frame.resize(10);
                                  write_all(fd, frame);
                                },
                                RequestError::disconnected, "closed the connection in the middle of a response"},
                      BadAnswer{"ClosedWithoutAnswer", [](int, std::int32_t) {}, RequestError::disconnected,
                                "the peer closed the connection"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(OutboundClient, FlexibleResponseHeaderWithoutTaggedFieldsIsMalformed) {
  RawServer server([&](int fd) {
    auto r = read_request(fd);
    if (!r) return;
    write_all(fd, Bytes{0, 0, 0, 4, 0, 0, 0, static_cast<std::uint8_t>(r->header.correlation_id)});
    read_request(fd, 1000);
  });
  auto client = make_client({});
  client->set_peer(4, "127.0.0.1", server.port());
  ASSERT_TRUE(client->start().ok());
  Collector got;
  client->send(4, request("x", kMetadata, 12), got.callback());  // response header v1 expected
  ASSERT_TRUE(got.wait_for(1));
  EXPECT_EQ(got.at(0).error, RequestError::malformed_response);
  EXPECT_NE(got.at(0).message.find("response header to Metadata v12"), std::string::npos) << got.at(0).message;
}

// ---- connecting, backoff, reconnecting ----

TEST(OutboundClient, BackoffGrowsWhileThePeerIsDownThenConnects) {
  const std::uint16_t port = free_port();
  ManualClock clock;
  std::vector<std::string> log;
  OutboundOptions options;
  options.clock = &clock;
  options.reconnect_backoff = 100ms;
  options.reconnect_backoff_max = 800ms;
  options.reconnect_jitter = 0;
  options.log_sink = [&](std::string_view line) { log.emplace_back(line); };
  auto client = make_client(options);
  client->set_peer(5, "127.0.0.1", port);

  const std::vector<long long> expected_backoff{100, 200, 400, 800, 800};
  for (std::size_t attempt = 0; attempt < expected_backoff.size(); ++attempt) {
    Collector got;
    client->send(5, request("hello"), got.callback());
    ASSERT_TRUE(poll_until(*client, [&] { return got.size() == 1; }));
    EXPECT_EQ(got.at(0).error, RequestError::unreachable);
    EXPECT_NE(got.at(0).message.find(fmt::format("node 5 at 127.0.0.1:{}: cannot connect: Connection refused", port)),
              std::string::npos)
        << got.at(0).message;
    auto status = client->peer_status(5);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->state, PeerState::backing_off);
    EXPECT_EQ(status->consecutive_failures, static_cast<int>(attempt + 1));
    EXPECT_EQ(status->last_backoff.count(), expected_backoff[attempt]);
    EXPECT_EQ(status->connect_attempts, attempt + 1);
    // While backing off, a request fails at once with the reason, without a new attempt.
    clock.advance(std::chrono::milliseconds(expected_backoff[attempt] - 1));
    Collector early;
    client->send(5, request("too early"), early.callback());
    ASSERT_TRUE(poll_until(*client, [&] { return early.size() == 1; }));
    EXPECT_EQ(early.at(0).error, RequestError::unreachable);
    EXPECT_NE(early.at(0).message.find("next attempt in 1 ms"), std::string::npos) << early.at(0).message;
    EXPECT_EQ(client->peer_status(5)->connect_attempts, attempt + 1);
    clock.advance(1ms);
  }
  // Five failures within the log interval: one line.
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("Connection refused; retrying in 100 ms"), std::string::npos) << log[0];
  // The next failure after the interval is logged with the count of those left out.
  clock.advance(10s);
  Collector sixth;
  client->send(5, request("hello"), sixth.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return sixth.size() == 1; }));
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[1].find("Connection refused (4 more failures since the last report); retrying in 800 ms"),
            std::string::npos)
      << log[1];
  clock.advance(800ms);

  EchoHandler handler;
  auto server = start_server(handler, port);
  Collector got;
  client->send(5, request("at last"), got.callback());
  ASSERT_TRUE(poll_until(*client, [&] { return got.size() == 1; }));
  ASSERT_TRUE(got.at(0).ok()) << got.at(0).message;
  EXPECT_EQ(text(got.at(0).body), "at last");
  EXPECT_EQ(client->peer_status(5)->consecutive_failures, 0);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_NE(log[2].find("connected again after 6 failed attempts"), std::string::npos) << log[2];
}

TEST(OutboundClient, BackoffJitterStaysWithinTwentyPercent) {
  const std::uint16_t port = free_port();
  ManualClock clock;
  OutboundOptions options;
  options.clock = &clock;
  options.reconnect_backoff = 100ms;
  options.reconnect_backoff_max = 1000ms;
  options.jitter_seed = 42;
  options.log_sink = [](std::string_view) {};
  auto client = make_client(options);
  client->set_peer(5, "127.0.0.1", port);
  bool varied = false;
  for (int attempt = 0; attempt < 8; ++attempt) {
    Collector got;
    client->send(5, request("hello"), got.callback());
    ASSERT_TRUE(poll_until(*client, [&] { return got.size() == 1; }));
    const long long nominal = std::min(1000, 100 << attempt);
    const long long backoff = client->peer_status(5)->last_backoff.count();
    EXPECT_GE(backoff, nominal * 8 / 10 - 1) << "attempt " << attempt;
    EXPECT_LE(backoff, nominal * 12 / 10) << "attempt " << attempt;
    varied = varied || backoff != nominal;
    clock.advance(std::chrono::milliseconds(backoff));
  }
  EXPECT_TRUE(varied);
}

TEST(OutboundClient, ServerKilledMidFlightFailsInFlightRequestsThenReconnects) {
  EchoHandler holding;
  holding.hold = true;
  EchoHandler echo;  // for the restarted server; declared first so it outlives that server
  auto server = start_server(holding);
  const std::uint16_t port = server->bound_port("test");
  OutboundOptions options;
  options.reconnect_backoff = 10ms;
  options.reconnect_backoff_max = 50ms;
  options.log_sink = [](std::string_view) {};
  auto client = make_client(options);
  client->set_peer(6, "127.0.0.1", port);
  ASSERT_TRUE(client->start().ok());
  Collector got;
  for (int i = 0; i < 3; ++i) client->send(6, request("held"), got.callback());
  ASSERT_TRUE(holding.wait_requests(3));
  server.reset();  // stops: closes every connection with requests unanswered
  ASSERT_TRUE(got.wait_for(3));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got.at(i).error, RequestError::disconnected) << got.at(i).message;
    EXPECT_NE(got.at(i).message.find("the peer closed the connection"), std::string::npos) << got.at(i).message;
  }
  server = start_server(echo, port);
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    Collector retry;
    client->send(6, request("again"), retry.callback());
    ASSERT_TRUE(retry.wait_for(1));
    if (retry.at(0).ok()) {
      EXPECT_EQ(text(retry.at(0).body), "again");
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  FAIL() << "never reconnected";
}

TEST(OutboundClient, ConnectTimeoutCoversTheTlsHandshake) {
  RawServer silent([](int fd) { drain_until_closed(fd, 3000); });  // accepts, never speaks TLS
  auto context = tls::make_client_context(client_settings(ClientCert::good));
  ASSERT_TRUE(context.ok());
  ManualClock clock;
  OutboundOptions options;
  options.protocol = SecurityProtocol::ssl;
  options.tls = *context;
  options.clock = &clock;
  options.connect_timeout = 500ms;
  options.log_sink = [](std::string_view) {};
  auto client = make_client(options);
  client->set_peer(7, "127.0.0.1", silent.port());
  Collector got;
  client->send(7, request("x"), got.callback());
  ASSERT_TRUE(poll_until(
      *client, [&] { return client->peer_status(7) && client->peer_status(7)->state == PeerState::tls_handshake; }));
  clock.advance(499ms);
  client->poll(0ms);
  EXPECT_EQ(got.size(), 0u);
  clock.advance(1ms);
  ASSERT_TRUE(poll_until(*client, [&] { return got.size() == 1; }));
  EXPECT_EQ(got.at(0).error, RequestError::tls_failed);
  EXPECT_NE(got.at(0).message.find("TLS handshake failed: it did not complete within 500 ms"), std::string::npos)
      << got.at(0).message;
}

TEST(OutboundClient, RefusesSaslAndAnswersUnknownNodesAndFullQueues) {
  OutboundOptions sasl;
  sasl.protocol = SecurityProtocol::sasl_ssl;
  auto refused = OutboundClient::create(sasl);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("not supported"), std::string::npos);
  OutboundOptions no_tls;
  no_tls.protocol = SecurityProtocol::ssl;
  EXPECT_FALSE(OutboundClient::create(no_tls).ok());

  RawServer silent([](int fd) { read_request(fd, 3000); });
  OutboundOptions options;
  options.max_in_flight_per_connection = 1;
  options.max_queued_requests = 2;
  auto client = make_client(options);
  Collector unknown;
  client->send(9, request("x"), unknown.callback());
  client->poll(0ms);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown.at(0).error, RequestError::unknown_node);

  client->set_peer(8, "127.0.0.1", silent.port());
  Collector got;
  for (int i = 0; i < 4; ++i) client->send(8, request("x"), got.callback());
  client->poll(0ms);  // one is connecting (queued), then the queue of 2 is full
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at(0).error, RequestError::too_many_requests);
  client->stop();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got.at(2).error, RequestError::shut_down);
  Collector late;
  client->send(8, request("x"), late.callback());
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late.at(0).error, RequestError::shut_down);
}

// ---- TLS ----

struct ServerCert {
  EvpPkeyPtr key;
  X509Ptr cert;
};

// A server certificate: from the test CA (or the other CA), with the given SAN.
ServerCert server_cert(bool other_ca, const char* san) {
  const TestPki& p = test_pki();
  ServerCert out;
  out.key.reset(EVP_EC_gen("P-256"));
  static std::atomic<long> serial{100};
  out.cert = make_cert({{"O", "Bulwark Test"}, {"CN", other_ca ? "rogue" : "broker-2"}}, out.key.get(),
                       other_ca ? p.other_ca.get() : p.ca.get(), other_ca ? p.other_ca_key.get() : p.ca_key.get(),
                       false, serial++, san);
  return out;
}

std::shared_ptr<tls::ServerTlsContext> server_tls(const ServerCert& cert, tls::ClientAuth auth) {
  const TestPki& p = test_pki();
  tls::TlsSettings s;
  s.keystore = key_store(cert.key.get(), {cert.cert.get()});
  s.truststore = trust_store(p.ca.get());
  s.client_auth = auth;
  auto made = tls::make_server_context(s);
  EXPECT_TRUE(made.ok()) << made.error().message;
  return made.ok() ? *made : nullptr;
}

OutboundOptions tls_options(ClientCert cert = ClientCert::good) {
  OutboundOptions options;
  options.protocol = SecurityProtocol::ssl;
  auto context = tls::make_client_context(client_settings(cert));
  EXPECT_TRUE(context.ok());
  if (context.ok()) options.tls = *context;
  options.log_sink = [](std::string_view) {};
  return options;
}

// Sends one request to a TLS echo server and returns the outcome.
OutboundResponse tls_exchange(const ServerCert& cert, OutboundOptions options, EchoHandler& handler,
                              tls::ClientAuth auth = tls::ClientAuth::required) {
  auto server = start_server(handler, 0, server_tls(cert, auth));
  auto client = make_client(std::move(options));
  client->set_peer(2, "127.0.0.1", server->bound_port("test"));
  EXPECT_TRUE(client->start().ok());
  Collector got;
  client->send(2, request("over tls"), got.callback());
  EXPECT_TRUE(got.wait_for(1));
  return got.size() > 0 ? got.at(0) : OutboundResponse{};
}

TEST(OutboundClientTls, MutualTlsWorksAndPresentsOurCertificate) {
  EchoHandler handler;
  auto cert = server_cert(false, "IP:127.0.0.1");
  auto r = tls_exchange(cert, tls_options(), handler);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(text(r.body), "over tls");
  ASSERT_EQ(handler.subjects.size(), 1u);
  EXPECT_EQ(handler.subjects[0], "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");
}

TEST(OutboundClientTls, ServerFromAnotherCaIsRefusedInPlainWords) {
  EchoHandler handler;
  auto cert = server_cert(true, "IP:127.0.0.1");
  auto r = tls_exchange(cert, tls_options(), handler);
  EXPECT_EQ(r.error, RequestError::tls_failed);
  EXPECT_TRUE(r.message.starts_with("node 2 at 127.0.0.1:")) << r.message;
  EXPECT_NE(r.message.find(": TLS handshake failed: the server's certificate (CN=rogue,O=Bulwark Test) was issued by "
                           "CN=Other CA,O=Elsewhere, which is not in the truststore"),
            std::string::npos)
      << r.message;
  EXPECT_TRUE(handler.headers.empty());
}

TEST(OutboundClientTls, HostNameMismatchIsRefusedUnlessVerificationIsOff) {
  auto cert = server_cert(false, "DNS:broker-2.elsewhere.test");
  {
    EchoHandler handler;
    auto r = tls_exchange(cert, tls_options(), handler);
    EXPECT_EQ(r.error, RequestError::tls_failed);
    EXPECT_NE(r.message.find("TLS handshake failed: the server's certificate (CN=broker-2,O=Bulwark Test) does not "
                             "name the host that was dialled in its SAN (we dialled 127.0.0.1"),
              std::string::npos)
        << r.message;
  }
  {
    EchoHandler handler;
    OutboundOptions options = tls_options();
    options.verify_hostname = false;  // ssl.endpoint.identification.algorithm=
    auto r = tls_exchange(cert, options, handler);
    EXPECT_TRUE(r.ok()) << r.message;
  }
}

TEST(OutboundClientTls, ServerRejectingOurCertificateIsExplained) {
  EchoHandler handler;
  auto cert = server_cert(false, "IP:127.0.0.1");
  auto r = tls_exchange(cert, tls_options(ClientCert::other_ca), handler);
  EXPECT_EQ(r.error, RequestError::tls_failed) << r.message;
  EXPECT_NE(r.message.find("TLS handshake failed: the server does not trust CN=Other CA,O=Elsewhere, the CA that issued our certificate"), std::string::npos)
      << r.message;
}

}  // namespace
}  // namespace bulwark::net
