// The network layer's limits with real sockets on loopback: frame sizes checked at the header (before
// and after login), the deadline for a started request, connection limits at accept (broker, listener,
// per IP with overrides), queued.max.request.bytes, and the counting limit log.
#include <gtest/gtest.h>

#include <regex>

#include "net/limits.h"
#include "net/server.h"
#include "net_test_support.h"

namespace bulwark::net {
namespace {

using namespace bulwark::testing;
using namespace test_support;
using namespace std::chrono_literals;

using Clock = std::chrono::steady_clock;

class LimitsTest : public ::testing::TestWithParam<SecurityProtocol> {
 protected:
  void start(ServerOptions options, ListenerSpec spec = {}) {
    options.threads = 2;
    server_ = std::make_unique<Server>(options, handler_);
    if (spec.name.empty()) spec.name = "TEST";
    spec.host = "127.0.0.1";
    spec.protocol = GetParam();
    if (uses_tls(GetParam())) {
      auto ctx = tls::make_server_context(server_settings(tls::ClientAuth::none));
      ASSERT_TRUE(ctx.ok()) << ctx.error().message;
      spec.tls = *ctx;
    }
    ASSERT_TRUE(server_->add_listener(std::move(spec)).ok());
    ASSERT_TRUE(server_->start().ok());
    port_ = server_->bound_port("TEST");
  }
  std::unique_ptr<Client> connect(const char* source = nullptr) {
    if (!uses_tls(GetParam())) return Client::connect_to(port_, source);
    auto c = Client::connect_tls(port_, ClientCert::none, nullptr, source);
    EXPECT_TRUE(c && c->handshake_error.empty());
    return c;
  }
  // A client answered within `limit`: the listener still accepts and serves.
  void expect_probe_answered(std::chrono::milliseconds limit) {
    const auto begin = Clock::now();
    auto probe = connect();
    ASSERT_TRUE(probe);
    ASSERT_TRUE(probe->send_frame("echo:probe"));
    EXPECT_EQ(probe->read_frame(), "eborp");
    EXPECT_LT(Clock::now() - begin, limit);
  }
  static std::string header(std::uint32_t size) {
    return {static_cast<char>(size >> 24), static_cast<char>(size >> 16), static_cast<char>(size >> 8),
            static_cast<char>(size)};
  }
  void TearDown() override {
    if (server_) server_->stop();
    handler_.join();
  }

  TestHandler handler_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

class SaslLimitsTest : public LimitsTest {};

TEST_P(SaslLimitsTest, OversizedFrameBeforeLoginClosesAtItsHeader) {
  ServerOptions options;
  options.max_frame_bytes_before_login = 1000;
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send_frame("echo:" + std::string(900, 'a')));  // within the limit
  EXPECT_EQ(c->read_frame()->size(), 900u);
  // Only the 4-byte size of a 100 MiB frame: the server closes without waiting for (or buffering) it.
  const auto begin = Clock::now();
  ASSERT_TRUE(c->send_raw(header(100 << 20)));
  EXPECT_TRUE(c->closed_by_server());
  EXPECT_LT(Clock::now() - begin, 5s);
  EXPECT_EQ(handler_.requests(), 1);
  EXPECT_EQ(server_->limit_hits(LimitKind::frame_too_large_before_login), 1u);
}

TEST_P(SaslLimitsTest, LoginRaisesTheLimitToSocketRequestMaxBytes) {
  ServerOptions options;
  options.max_frame_bytes_before_login = 1000;
  options.max_frame_bytes = 64 * 1024;
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send_frame("login:"));
  EXPECT_EQ(c->read_frame(), "ko");
  ASSERT_TRUE(c->send_frame("echo:" + std::string(20000, 'b')));
  EXPECT_EQ(c->read_frame()->size(), 20000u);
  ASSERT_TRUE(c->send_raw(header(64 * 1024 + 1)));  // socket.request.max.bytes still applies
  EXPECT_TRUE(c->closed_by_server());
  EXPECT_EQ(server_->limit_hits(LimitKind::frame_too_large), 1u);
  EXPECT_EQ(server_->limit_hits(LimitKind::frame_too_large_before_login), 0u);
}

INSTANTIATE_TEST_SUITE_P(Sasl, SaslLimitsTest,
                         ::testing::Values(SecurityProtocol::sasl_plaintext, SecurityProtocol::sasl_ssl),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST_P(LimitsTest, NoPreLoginLimitWithoutSasl) {
  ServerOptions options;
  options.max_frame_bytes_before_login = 1000;
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send_frame("echo:" + std::string(5000, 'c')));
  EXPECT_EQ(c->read_frame()->size(), 5000u);
}

TEST_P(LimitsTest, StartedRequestMustArriveWithinTheDeadline) {
  ServerOptions options;
  options.request_receive_timeout = 400ms;
  start(options);
  // A complete request that takes a while to start is fine: the clock starts at its first byte.
  auto patient = connect();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(patient->send_frame("echo:late"));
  EXPECT_EQ(patient->read_frame(), "etal");
  // A header and then one byte every 50 ms: activity, but the request never completes.
  auto slow = connect();
  const auto begin = Clock::now();
  ASSERT_TRUE(slow->send_raw(header(100)));
  bool closed = false;
  while (!closed && Clock::now() - begin < 5s) {
    std::this_thread::sleep_for(50ms);
    closed = !slow->send_raw("x") || !slow->silent_for(1ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(slow->closed_by_server());
  const auto took = Clock::now() - begin;
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(server_->limit_hits(LimitKind::request_deadline), 1u);
  expect_probe_answered(2s);
}

TEST_P(LimitsTest, ManyHalfSentFramesDoNotStopTheListener) {
  ServerOptions options;
  options.request_receive_timeout = 1s;
  start(options);
  std::vector<std::unique_ptr<Client>> stuck;
  for (int i = 0; i < 40; ++i) {
    stuck.push_back(connect());
    ASSERT_TRUE(stuck.back());
    ASSERT_TRUE(stuck.back()->send_raw(header(1000) + "half"));
  }
  expect_probe_answered(2s);
  for (auto& c : stuck) EXPECT_TRUE(c->closed_by_server());
  EXPECT_EQ(server_->limit_hits(LimitKind::request_deadline), 40u);
}

TEST_P(LimitsTest, PerIpLimitWithAnOverride) {
  ServerOptions options;
  options.max_connections_per_ip = 2;
  options.max_connections_per_ip_overrides = {{"127.0.0.2", 3}};
  start(options);
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 2; ++i) open.push_back(connect());
  auto refused = Client::connect_to(port_);  // TCP connects (the kernel accepts), then the server closes it
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->closed_by_server());
  for (int i = 0; i < 3; ++i) open.push_back(connect("127.0.0.2"));
  auto refused_too = Client::connect_to(port_, "127.0.0.2");
  ASSERT_TRUE(refused_too);
  EXPECT_TRUE(refused_too->closed_by_server());
  for (auto& c : open) {
    ASSERT_TRUE(c->send_frame("echo:ok"));
    EXPECT_EQ(c->read_frame(), "ko");
  }
  EXPECT_EQ(server_->limit_hits(LimitKind::per_ip_connections), 2u);
  // A closed connection frees its address's slot.
  open.erase(open.begin());
  for (int i = 0; i < 100 && server_->connection_count() >= 5; ++i) std::this_thread::sleep_for(20ms);
  auto again = connect();
  ASSERT_TRUE(again->send_frame("echo:again"));
  EXPECT_EQ(again->read_frame(), "niaga");
}

TEST_P(LimitsTest, ListenerLimit) {
  ServerOptions options;
  ListenerSpec spec;
  spec.max_connections = 1;
  start(options, std::move(spec));
  auto first = connect();
  ASSERT_TRUE(first->send_frame("echo:1"));
  EXPECT_EQ(first->read_frame(), "1");
  auto second = Client::connect_to(port_);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->closed_by_server());
  EXPECT_EQ(server_->limit_hits(LimitKind::listener_connections), 1u);
}

TEST_P(LimitsTest, QueuedRequestBytesStopReadingUntilTheyDrain) {
  ServerOptions options;
  options.max_queued_request_bytes = 1000;
  start(options);
  auto holder = connect();
  ASSERT_TRUE(holder->send_frame("hold:" + std::string(1500, 'h')));  // unanswered: 1505 bytes queued
  ASSERT_TRUE(handler_.wait_requests(1));
  auto other = connect();
  ASSERT_TRUE(other->send_frame("echo:waits"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(handler_.requests(), 1);  // not even read
  EXPECT_GE(server_->limit_hits(LimitKind::queued_request_bytes), 1u);
  for (auto& r : handler_.take_held()) r.respond(Bytes{'d', 'o', 'n', 'e'});
  EXPECT_EQ(holder->read_frame(), "done");
  EXPECT_EQ(other->read_frame(), "stiaw");
}

TEST_P(LimitsTest, LimitLinesCountInsteadOfRepeating) {
  ServerOptions options;
  options.max_connections_per_ip = 0;  // everyone is refused
  options.limit_log_interval = 300ms;
  ::testing::internal::CaptureStderr();
  start(options);
  for (int i = 0; i < 6; ++i) {
    auto c = Client::connect_to(port_);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->closed_by_server());
  }
  std::this_thread::sleep_for(1500ms);  // more than an interval: the rest is reported
  server_->stop();
  const std::string log = ::testing::internal::GetCapturedStderr();
  const std::regex line(R"(limit: (\d+) new connections refused at max\.connections\.per\.ip)");
  int lines = 0, counted = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    ++lines;
    counted += std::stoi((*it)[1]);
  }
  EXPECT_EQ(counted, 6) << log;
  EXPECT_GE(lines, 1);
  EXPECT_LE(lines, 3) << log;  // the first at once, then one per interval: never one per event
}

INSTANTIATE_TEST_SUITE_P(Protocols, LimitsTest, ::testing::Values(SecurityProtocol::plaintext, SecurityProtocol::ssl),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// ---- TLS handshakes have the same deadline ----

TEST(LimitsTlsTest, UnfinishedHandshakeIsClosedAtTheDeadline) {
  TestHandler handler;
  ServerOptions options;
  options.threads = 1;
  options.request_receive_timeout = 300ms;
  Server server(options, handler);
  auto ctx = tls::make_server_context(server_settings(tls::ClientAuth::none));
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE(server.add_listener({"TLS", "127.0.0.1", 0, SecurityProtocol::ssl, *ctx}).ok());
  ASSERT_TRUE(server.start().ok());
  auto c = Client::connect_to(server.bound_port("TLS"));
  ASSERT_TRUE(c->send_raw(std::string("\x16\x03\x01\x02\x00", 5)));  // a ClientHello record that never comes
  const auto begin = Clock::now();
  EXPECT_TRUE(c->closed_by_server());
  EXPECT_LT(Clock::now() - begin, 3s);
  EXPECT_EQ(server.limit_hits(LimitKind::request_deadline), 1u);
  server.stop();
}

// ---- broker-wide max.connections and exempt listeners ----

TEST(LimitsBrokerTest, MaxConnectionsSparesExemptListeners) {
  TestHandler handler;
  ServerOptions options;
  options.threads = 1;
  options.max_connections = 1;
  Server server(options, handler);
  ASSERT_TRUE(server.add_listener({"CLIENT", "127.0.0.1", 0, SecurityProtocol::plaintext, nullptr}).ok());
  ListenerSpec inter_broker{"BROKER", "127.0.0.1", 0, SecurityProtocol::plaintext, nullptr};
  inter_broker.counts_toward_broker_limit = false;
  ASSERT_TRUE(server.add_listener(std::move(inter_broker)).ok());
  ASSERT_TRUE(server.start().ok());
  auto a = Client::connect_to(server.bound_port("CLIENT"));
  ASSERT_TRUE(a->send_frame("echo:a"));
  EXPECT_EQ(a->read_frame(), "a");
  auto b = Client::connect_to(server.bound_port("CLIENT"));
  EXPECT_TRUE(b->closed_by_server());
  auto peer = Client::connect_to(server.bound_port("BROKER"));
  ASSERT_TRUE(peer->send_frame("echo:peer"));
  EXPECT_EQ(peer->read_frame(), "reep");
  EXPECT_EQ(server.limit_hits(LimitKind::broker_connections), 1u);
  server.stop();
}

// ---- ConnectionLimits on its own ----

TEST(ConnectionLimitsTest, CountsPerListenerAddressAndBroker) {
  auto made = ConnectionLimits::create({3, 2, {{"10.0.0.9", 0}, {"::ffff:10.0.0.8", 5}}});
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto& limits = **made;
  const auto a = limits.add_listener(kUnlimited, true);
  const auto b = limits.add_listener(1, true);
  const auto exempt = limits.add_listener(kUnlimited, false);
  EXPECT_EQ(limits.try_acquire(a, "10.0.0.1"), Refusal::none);
  EXPECT_EQ(limits.try_acquire(a, "10.0.0.1"), Refusal::none);
  EXPECT_EQ(limits.try_acquire(a, "10.0.0.1"), Refusal::per_ip_limit);
  EXPECT_EQ(limits.try_acquire(a, "10.0.0.9"), Refusal::per_ip_limit);  // override 0
  EXPECT_EQ(limits.try_acquire(b, "10.0.0.2"), Refusal::none);
  EXPECT_EQ(limits.try_acquire(b, "10.0.0.3"), Refusal::broker_limit);  // 3 counted
  EXPECT_EQ(limits.try_acquire(exempt, "10.0.0.8"), Refusal::none);
  EXPECT_EQ(limits.total(), 4u);
  limits.release(b, "10.0.0.2");
  EXPECT_EQ(limits.try_acquire(b, "10.0.0.3"), Refusal::none);
  EXPECT_EQ(limits.try_acquire(b, "10.0.0.4"), Refusal::broker_limit);
  limits.release(a, "10.0.0.1");
  EXPECT_EQ(limits.try_acquire(b, "10.0.0.4"), Refusal::listener_limit);
  EXPECT_EQ(limits.limit_for_address("10.0.0.8"), 5u);  // the override's IPv4-mapped form counts as IPv4
}

TEST(ConnectionLimitsTest, CanonicalAddresses) {
  EXPECT_EQ(ConnectionLimits::canonical_address("::ffff:127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(ConnectionLimits::canonical_address("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(ConnectionLimits::canonical_address("0:0::1"), "::1");
}

TEST(ConnectionLimitsTest, HostNameOverridesCoverEveryAddress) {
  auto made = ConnectionLimits::create({kUnlimited, 10, {{"localhost", 1}}});
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ((*made)->limit_for_address("127.0.0.1"), 1u);
  EXPECT_EQ((*made)->limit_for_address("127.0.0.3"), 10u);
}

}  // namespace
}  // namespace bulwark::net

namespace bulwark::net {
namespace {

// One line per client address and reason per interval, then the count of what was left out.
TEST(HandshakeFailureLog, OneLinePerAddressAndReasonPerInterval) {
  using namespace std::chrono_literals;
  HandshakeFailureLog failures(5000ms);
  const auto t0 = HandshakeFailureLog::Clock::now();
  ::testing::internal::CaptureStderr();
  failures.failed("10.0.0.1", "no certificate", "attempt 1 from 10.0.0.1", t0);
  for (int i = 2; i <= 30; ++i)
    failures.failed("10.0.0.1", "no certificate", "attempt " + std::to_string(i) + " from 10.0.0.1", t0 + i * 100ms);
  failures.failed("10.0.0.2", "no certificate", "attempt 1 from 10.0.0.2", t0 + 200ms);
  failures.failed("10.0.0.1", "unknown CA", "another reason from 10.0.0.1", t0 + 300ms);
  failures.flush(t0 + 1s);
  std::string early = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(early.find("attempt 1 from 10.0.0.1"), std::string::npos) << early;
  EXPECT_NE(early.find("attempt 1 from 10.0.0.2"), std::string::npos) << early;
  EXPECT_NE(early.find("another reason from 10.0.0.1"), std::string::npos) << early;
  EXPECT_EQ(early.find("attempt 2 "), std::string::npos) << "a repeat within the interval was logged";

  ::testing::internal::CaptureStderr();
  failures.flush(t0 + 6s);
  std::string later = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(later.find("attempt 30 from 10.0.0.1 (29 more like it from this address in the last 6000 ms)"),
            std::string::npos) << later;
  EXPECT_EQ(later.find("10.0.0.2"), std::string::npos) << "nothing was left out for 10.0.0.2";
  EXPECT_EQ(failures.tracked(), 1u) << "quiet addresses are forgotten";
  failures.flush(t0 + 12s);
  EXPECT_EQ(failures.tracked(), 0u);
}

}  // namespace
}  // namespace bulwark::net
