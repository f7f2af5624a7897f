#include "net/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "net_test_support.h"
#include "tls_test_certs.h"

namespace bulwark::net {
namespace {

using namespace bulwark::testing;
using namespace std::chrono_literals;

using namespace test_support;

// ---- fixture: one server with one listener of the parameter's protocol ----

class NetTest : public ::testing::TestWithParam<SecurityProtocol> {
 protected:
  void start(ServerOptions options = {}, tls::ClientAuth auth = tls::ClientAuth::none) {
    options.threads = 2;
    server_ = std::make_unique<Server>(options, handler_);
    ListenerSpec spec{"TEST", "127.0.0.1", 0, GetParam(), nullptr};
    if (uses_tls(GetParam())) {
      auto ctx = tls::make_server_context(server_settings(auth));
      ASSERT_TRUE(ctx.ok()) << ctx.error().message;
      spec.tls = *ctx;
    }
    ASSERT_TRUE(server_->add_listener(std::move(spec)).ok());
    ASSERT_TRUE(server_->start().ok());
    port_ = server_->bound_port("TEST");
    ASSERT_NE(port_, 0);
  }
  std::unique_ptr<Client> connect(ClientCert cert = ClientCert::none) {
    auto c = uses_tls(GetParam()) ? Client::connect_tls(port_, cert) : Client::connect_to(port_);
    EXPECT_TRUE(c);
    if (c) {
      EXPECT_EQ(c->handshake_error, "");
    }
    return c;
  }
  void TearDown() override {
    if (server_) server_->stop();
    handler_.join();
  }

  TestHandler handler_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

TEST_P(NetTest, EchoesOneRequest) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send_frame("echo:hello"));
  EXPECT_EQ(c->read_frame(), "olleh");
  ASSERT_TRUE(c->send_frame("echo:"));  // one-byte-less bodies are fine; empty answers too
  EXPECT_EQ(c->read_frame(), "");
}

TEST_P(NetTest, PipelinedResponsesKeepRequestOrder) {
  start();
  auto c = connect();
  // The first request finishes last (another thread, 300 ms later); answers still come in order.
  std::string batch = Client::frame("delay:300:first") + Client::frame("delay:100:second") +
                      Client::frame("echo:third") + Client::frame("delay:0:fourth") + Client::frame("echo:fifth");
  ASSERT_TRUE(c->send_raw(batch));
  EXPECT_EQ(c->read_frame(), "tsrif");
  EXPECT_EQ(c->read_frame(), "dnoces");
  EXPECT_EQ(c->read_frame(), "driht");
  EXPECT_EQ(c->read_frame(), "htruof");
  EXPECT_EQ(c->read_frame(), "htfif");
}

TEST_P(NetTest, RespondNoneFreesTheSlot) {
  ServerOptions options;
  options.max_in_flight_per_connection = 2;
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send_raw(Client::frame("none:") + Client::frame("none:") + Client::frame("none:") +
                          Client::frame("echo:ab")));
  EXPECT_EQ(c->read_frame(), "ba");  // no bytes for the three acks=0 style requests
  EXPECT_TRUE(c->silent_for(100ms));
  ASSERT_TRUE(c->send_frame("echo:cd"));
  EXPECT_EQ(c->read_frame(), "dc");
}

// Quota throttling (KIP-219): the answer goes out at once; the next request waits out the mute.
TEST_P(NetTest, MutedConnectionAnswersThenReadsNothingForTheMute) {
  start();
  auto c = connect();
  auto other = connect();
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(c->send_frame("mute:400:ab"));
  EXPECT_EQ(c->read_frame(), "ba");
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 300ms);
  ASSERT_TRUE(c->send_frame("echo:cd"));
  ASSERT_TRUE(other->send_frame("echo:xy"));  // other connections are not muted
  EXPECT_EQ(other->read_frame(), "yx");
  EXPECT_TRUE(c->silent_for(250ms));
  EXPECT_EQ(c->read_frame(), "dc");
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 390ms);
  ASSERT_TRUE(c->send_frame("echo:ef"));  // and afterwards it reads as before
  EXPECT_EQ(c->read_frame(), "fe");
}

TEST_P(NetTest, FramesSplitIntoTinyWritesAndManyFramesInOneWrite) {
  start();
  auto c = connect();
  const std::string one = Client::frame("echo:split into single bytes");
  for (char ch : one) {
    ASSERT_TRUE(c->send_raw(std::string_view(&ch, 1)));
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(c->read_frame(), "setyb elgnis otni tilps");
  std::string many;
  for (int i = 0; i < 300; ++i) many += Client::frame("echo:" + std::to_string(i));
  ASSERT_TRUE(c->send_raw(many));
  for (int i = 0; i < 300; ++i) {
    std::string expect = std::to_string(i);
    std::reverse(expect.begin(), expect.end());
    ASSERT_EQ(c->read_frame(), expect) << i;
  }
}

TEST_P(NetTest, LargeFramesBothWays) {
  start();
  auto c = connect();
  std::string big(3 * 1024 * 1024 + 7, 'x');
  for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  // Sent whole before reading: the server answers only once the frame is complete, and one SSL object
  // must not be written and read from two threads at once.
  ASSERT_TRUE(c->send_frame("echo:" + big));
  auto answer = c->read_frame();
  std::reverse(big.begin(), big.end());
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(*answer == big);
}

TEST_P(NetTest, InvalidSizesCloseTheConnection) {
  ServerOptions options;
  options.max_frame_bytes = 1024;
  start(options);
  for (std::uint32_t size : {1025u, 0xffffffffu /* -1 */, 0u, 0x80000000u}) {
    auto c = connect();
    std::string h = {static_cast<char>(size >> 24), static_cast<char>(size >> 16), static_cast<char>(size >> 8),
                     static_cast<char>(size)};
    ASSERT_TRUE(c->send_raw(h + "abcd"));
    EXPECT_TRUE(c->closed_by_server()) << size;
  }
  auto ok = connect();  // the server is fine
  ASSERT_TRUE(ok->send_frame("echo:x"));
  EXPECT_EQ(ok->read_frame(), "x");
  EXPECT_TRUE(handler_.wait_closed(4));
}

TEST_P(NetTest, CloseConnectionAfterEarlierAnswers) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send_raw(Client::frame("delay:100:ok") + Client::frame("close:") + Client::frame("echo:never")));
  EXPECT_EQ(c->read_frame(), "ko");
  EXPECT_TRUE(c->closed_by_server());
}

TEST_P(NetTest, MaxConnectionsEnforcedAtAccept) {
  ServerOptions options;
  options.max_connections = 2;
  start(options);
  auto a = connect();
  auto b = connect();
  ASSERT_TRUE(a->send_frame("echo:a"));
  ASSERT_TRUE(b->send_frame("echo:b"));
  EXPECT_EQ(a->read_frame(), "a");
  EXPECT_EQ(b->read_frame(), "b");
  auto third = Client::connect_to(port_);  // TCP connects (the kernel accepts), then the server closes it
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->closed_by_server());
  a.reset();
  ASSERT_TRUE(handler_.wait_closed(1));
  for (int i = 0; i < 100 && server_->connection_count() >= 2; ++i) std::this_thread::sleep_for(20ms);
  auto d = connect();
  ASSERT_TRUE(d->send_frame("echo:d"));
  EXPECT_EQ(d->read_frame(), "d");
}

TEST_P(NetTest, BackpressureStopsReadingAtMaxInFlight) {
  ServerOptions options;
  options.max_in_flight_per_connection = 4;
  start(options);
  auto c = connect();
  // One client thread writes and reads without blocking (an SSL object must not be used from two
  // threads at once). It sends far more than socket buffers hold; the writes must stall because the
  // server stops reading at max_in_flight.
  c->set_nonblocking();
  const std::string one = Client::frame("hold:" + std::string(1000, 'p'));
  const std::size_t total = 20000;  // ~20 MB
  std::size_t sent = 0, offset = 0, answers = 0;
  std::string inbox;
  bool failed = false;
  // One step of writing; true when it moved bytes. A retried SSL_write gets the same buffer, as OpenSSL asks.
  auto write_step = [&] {
    if (sent == total) return false;
    const long n = c->write_some(one.data() + offset, one.size() - offset);
    if (n < 0) failed = true;
    if (n <= 0) return false;
    offset += static_cast<std::size_t>(n);
    if (offset == one.size()) {
      offset = 0;
      ++sent;
    }
    return true;
  };
  auto read_step = [&] {
    char buffer[65536];
    const long n = c->read_some(buffer, sizeof buffer);
    if (n < 0) failed = true;
    if (n <= 0) return false;
    inbox.append(buffer, static_cast<std::size_t>(n));
    while (inbox.size() >= 4) {
      const auto* h = reinterpret_cast<const unsigned char*>(inbox.data());
      const std::size_t len = static_cast<std::size_t>(h[0]) << 24 | h[1] << 16 | h[2] << 8 | h[3];
      if (inbox.size() < 4 + len) break;
      inbox.erase(0, 4 + len);
      ++answers;
    }
    return true;
  };
  // Phase 1: write until nothing moves for 500 ms.
  auto last_progress = std::chrono::steady_clock::now();
  while (!failed && sent < total && std::chrono::steady_clock::now() - last_progress < 500ms) {
    if (write_step()) {
      last_progress = std::chrono::steady_clock::now();
    } else {
      pollfd p{c->fd(), POLLOUT, 0};
      ::poll(&p, 1, 10);
    }
  }
  ASSERT_FALSE(failed);
  ASSERT_TRUE(handler_.wait_requests(4));
  EXPECT_EQ(handler_.requests(), 4) << "the server must stop reading at max_in_flight";
  EXPECT_LT(sent, total / 2) << "the client should be held back by TCP flow control";
  // Phase 2: answer everything from now on; every request arrives and every answer comes back, in order.
  handler_.answer_held_later_ = false;
  std::atomic<bool> stop_answering{false};
  std::thread answerer([&] {
    while (!stop_answering) {
      for (auto& r : handler_.take_held()) r.respond(Bytes{'k'});
      std::this_thread::sleep_for(1ms);
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!failed && answers < total && std::chrono::steady_clock::now() < deadline) {
    const bool wrote = write_step();  // both steps run every time (no short circuit)
    const bool moved = read_step() || wrote;
    if (!moved) {
      pollfd p{c->fd(), static_cast<short>(POLLIN | (sent < total ? POLLOUT : 0)), 0};
      ::poll(&p, 1, 10);
    }
  }
  stop_answering = true;
  answerer.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(sent, total);
  EXPECT_EQ(answers, total);
  EXPECT_EQ(handler_.requests(), static_cast<int>(total));
}

TEST_P(NetTest, StopClosesOpenConnectionsAndLateRespondersAreHarmless) {
  start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connect());
    ASSERT_TRUE(clients.back()->send_frame("hold:x"));
  }
  ASSERT_TRUE(handler_.wait_requests(3));
  server_->stop();
  EXPECT_EQ(handler_.closed(), 3);
  for (auto& c : clients) EXPECT_TRUE(c->closed_by_server());
  for (auto& r : handler_.take_held()) {
    Responder copy = r;
    r.respond(Bytes{'l', 'a', 't', 'e'});
    copy.respond_none();
  }
  server_.reset();  // responders outliving the server are still harmless
}

TEST_P(NetTest, RespondersAfterClientLeftAreHarmless) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send_frame("hold:x"));
  ASSERT_TRUE(handler_.wait_requests(1));
  c.reset();
  ASSERT_TRUE(handler_.wait_closed(1));
  for (auto& r : handler_.take_held()) r.respond(Bytes{'z'});
  auto d = connect();
  ASSERT_TRUE(d->send_frame("echo:still fine"));
  EXPECT_EQ(d->read_frame(), "enif llits");
}

TEST_P(NetTest, IdleConnectionsAreClosed) {
  ServerOptions options;
  options.idle_timeout = 300ms;
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send_frame("echo:x"));
  EXPECT_EQ(c->read_frame(), "x");
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(c->closed_by_server());
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 250ms);
}

TEST_P(NetTest, ManyConnectionsAcrossLoops) {
  start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(connect());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(clients[i]->send_frame("delay:5:" + std::to_string(i * 11)));
  for (int i = 0; i < 20; ++i) {
    std::string expect = std::to_string(i * 11);
    std::reverse(expect.begin(), expect.end());
    EXPECT_EQ(clients[i]->read_frame(), expect);
  }
}

INSTANTIATE_TEST_SUITE_P(Protocols, NetTest, ::testing::Values(SecurityProtocol::plaintext, SecurityProtocol::ssl),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// ---- TLS-only behaviour ----

class NetTlsTest : public NetTest {};

TEST_P(NetTlsTest, GarbageAndHttpOnTheTlsPortAreExplained) {
  start();
  ::testing::internal::CaptureStderr();
  {
    auto http = Client::connect_to(port_);
    ASSERT_TRUE(http->send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(http->closed_by_server());
    auto kafka = Client::connect_to(port_);
    // An ApiVersions v3 request header, as a PLAINTEXT client would send it.
    ASSERT_TRUE(kafka->send_raw(Client::frame(std::string("\x00\x12\x00\x03\x00\x00\x00\x01\x00\x04kcat\x00", 15))));
    EXPECT_TRUE(kafka->closed_by_server());
    auto garbage = Client::connect_to(port_);
    ASSERT_TRUE(garbage->send_raw(std::string(5000, '\x7f')));
    EXPECT_TRUE(garbage->closed_by_server());
    ASSERT_TRUE(handler_.wait_closed(0));
  }
  std::this_thread::sleep_for(200ms);  // the log lines are written by the loop threads
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("sent an HTTP request to a TLS port"), std::string::npos) << log;
  EXPECT_NE(log.find("first bytes are a Kafka request"), std::string::npos) << log;
  EXPECT_NE(log.find("first byte is 0x7f"), std::string::npos) << log;
  auto ok = connect();
  ASSERT_TRUE(ok->send_frame("echo:alive"));
  EXPECT_EQ(ok->read_frame(), "evila");
}

TEST_P(NetTlsTest, ClientAuthRequired) {
  start({}, tls::ClientAuth::required);
  auto good = Client::connect_tls(port_, ClientCert::good);
  ASSERT_EQ(good->handshake_error, "");
  ASSERT_TRUE(good->send_frame("whoami"));
  EXPECT_EQ(good->read_frame(), "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");

  ::testing::internal::CaptureStderr();
  // TLS 1.3 clients finish before the server checks their certificate: the refusal shows on first use.
  auto none = Client::connect_tls(port_, ClientCert::none);
  if (none->handshake_error.empty()) {
    none->send_frame("whoami");
    EXPECT_EQ(none->read_frame(), std::nullopt);
  }
  auto other = Client::connect_tls(port_, ClientCert::other_ca);
  if (other->handshake_error.empty()) {
    other->send_frame("whoami");
    EXPECT_EQ(other->read_frame(), std::nullopt);
  }
  std::this_thread::sleep_for(200ms);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("the client sent no certificate but ssl.client.auth=required"), std::string::npos) << log;
  EXPECT_NE(log.find("was issued by CN=Other CA,O=Elsewhere, which is not in the truststore"), std::string::npos)
      << log;
  EXPECT_EQ(handler_.requests(), 1);
}

TEST_P(NetTlsTest, ClientAuthRequestedAndNone) {
  start({}, tls::ClientAuth::requested);
  auto without = connect(ClientCert::none);
  ASSERT_TRUE(without->send_frame("whoami"));
  EXPECT_EQ(without->read_frame(), "(none)");
  auto with = connect(ClientCert::good);
  ASSERT_TRUE(with->send_frame("whoami"));
  EXPECT_EQ(with->read_frame(), "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");
}

TEST_P(NetTlsTest, ClientAuthNoneIgnoresClientCertificates) {
  start({}, tls::ClientAuth::none);
  auto with = connect(ClientCert::good);
  ASSERT_TRUE(with->send_frame("whoami"));
  EXPECT_EQ(with->read_frame(), "(none)");  // no CertificateRequest, so the client sends none
}

TEST_P(NetTlsTest, Tls11OnlyClientIsRefused) {
  start();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_security_level(ctx.get(), 0);
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_1_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), TLS1_1_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0") != 1) {
    GTEST_SKIP() << "this OpenSSL cannot make a TLSv1.1 client";
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  ::testing::internal::CaptureStderr();
  auto c = Client::connect_tls(port_, ClientCert::none, ctx.get());
  std::this_thread::sleep_for(200ms);
  const std::string log = ::testing::internal::GetCapturedStderr();
  if (c->handshake_error.find("no protocols available") != std::string::npos ||
      c->handshake_error.find("no ciphers available") != std::string::npos) {
    GTEST_SKIP() << "OpenSSL refused to send a TLSv1.1 ClientHello: " << c->handshake_error;
  }
  EXPECT_NE(c->handshake_error, "");
  EXPECT_NE(log.find("no shared TLS version: the client offered only TLSv1.1"), std::string::npos) << log;
}

TEST_P(NetTlsTest, ReloadAppliesToNewConnectionsOnly) {
  ServerOptions options;
  options.threads = 2;
  server_ = std::make_unique<Server>(options, handler_);
  auto ctx = tls::make_server_context(server_settings(tls::ClientAuth::none));
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE(server_->add_listener({"TEST", "127.0.0.1", 0, SecurityProtocol::ssl, *ctx}).ok());
  ASSERT_TRUE(server_->start().ok());
  port_ = server_->bound_port("TEST");
  auto before = connect(ClientCert::none);
  ASSERT_TRUE((*ctx)->reload(server_settings(tls::ClientAuth::required)).ok());
  ASSERT_TRUE(before->send_frame("echo:old"));
  EXPECT_EQ(before->read_frame(), "dlo");
  auto after = Client::connect_tls(port_, ClientCert::none);
  if (after->handshake_error.empty()) {
    after->send_frame("whoami");
    EXPECT_EQ(after->read_frame(), std::nullopt) << "the reloaded context requires a client certificate";
  }
  auto good = connect(ClientCert::good);
  ASSERT_TRUE(good->send_frame("whoami"));
  EXPECT_EQ(good->read_frame(), "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");
}

// The real openssl s_client against the server.
struct SClientResult {
  int status = -1;
  std::string output;
};

SClientResult s_client(std::uint16_t port, const std::string& args) {
  const std::string cmd = "timeout 30 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                          " -verify_return_error -verify_ip 127.0.0.1 " + args + " </dev/null 2>&1";
  SClientResult result;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return result;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) result.output.append(buf, n);
  result.status = ::pclose(p);
  return result;
}

TEST_P(NetTlsTest, OpensslSClient) {
  const auto& p = test_pki();
  TempDir dir;
  const auto ca = dir.write("ca.pem", pem_cert(p.ca.get()));
  const auto other_ca = dir.write("other-ca.pem", pem_cert(p.other_ca.get()));
  const auto cert = dir.write("client.pem", pem_cert(p.client.get()));
  const auto key = dir.write("client.key", pem_key(p.client_key.get()));
  start({}, tls::ClientAuth::required);

  auto good = s_client(port_, "-CAfile " + ca.string() + " -cert " + cert.string() + " -key " + key.string());
  EXPECT_EQ(good.status, 0) << good.output;
  EXPECT_NE(good.output.find("Verify return code: 0 (ok)"), std::string::npos) << good.output;

  auto untrusted = s_client(port_, "-CAfile " + other_ca.string() + " -cert " + cert.string() + " -key " + key.string());
  EXPECT_NE(untrusted.status, 0) << untrusted.output;
  // The server sends its chain with the root, so s_client reports a self-signed root it does not trust.
  EXPECT_NE(untrusted.output.find("verify error:num="), std::string::npos) << untrusted.output;
  EXPECT_EQ(untrusted.output.find("Verify return code: 0 (ok)"), std::string::npos) << untrusted.output;

  // TLS 1.2 so the missing client certificate fails inside the handshake, where s_client reports it.
  auto no_cert = s_client(port_, "-tls1_2 -CAfile " + ca.string());
  EXPECT_NE(no_cert.status, 0) << no_cert.output;
  EXPECT_NE(no_cert.output.find("alert"), std::string::npos) << no_cert.output;
}

INSTANTIATE_TEST_SUITE_P(Tls, NetTlsTest, ::testing::Values(SecurityProtocol::ssl),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// ---- event loop timers and posts ----

TEST(EventLoopTest, PostAndTimersRunOnTheLoopThread) {
  struct Capture : RequestHandler {
    EventLoop* loop = nullptr;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> events;
    void on_request(RequestContext& ctx, Bytes, Responder responder) override {
      EventLoop& l = ctx.loop;
      const TimerId cancelled = l.run_after(50ms, [this] { add("cancelled timer ran"); });
      l.run_after(100ms, [this, &l, responder]() mutable {
        add(l.in_loop_thread() ? "timer on loop" : "timer elsewhere");
        responder.respond(Bytes{'t'});
      });
      l.cancel(cancelled);
      std::thread([this, &l] { l.post([this, &l] { add(l.in_loop_thread() ? "post on loop" : "post elsewhere"); }); })
          .join();
    }
    void add(std::string e) {
      std::lock_guard lock(m);
      events.push_back(std::move(e));
      cv.notify_all();
    }
  } handler;
  ServerOptions options;
  options.threads = 1;
  Server server(options, handler);
  ASSERT_TRUE(server.add_listener({"P", "127.0.0.1", 0, SecurityProtocol::plaintext, nullptr}).ok());
  ASSERT_TRUE(server.start().ok());
  auto c = Client::connect_to(server.bound_port("P"));
  ASSERT_TRUE(c->send_frame("go"));
  EXPECT_EQ(c->read_frame(), "t");
  std::this_thread::sleep_for(100ms);
  std::lock_guard lock(handler.m);
  EXPECT_EQ(handler.events, (std::vector<std::string>{"post on loop", "timer on loop"}));
}

TEST(ServerConfig, ListenerNeedsTlsContextAndUniqueName) {
  struct Nothing : RequestHandler {
    void on_request(RequestContext&, Bytes, Responder r) override { r.respond_none(); }
  } handler;
  Server server({}, handler);
  auto s = server.add_listener({"SSL", "127.0.0.1", 0, SecurityProtocol::ssl, nullptr});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no TLS context"), std::string::npos);
  ASSERT_TRUE(server.add_listener({"A", "127.0.0.1", 0, SecurityProtocol::plaintext, nullptr}).ok());
  EXPECT_FALSE(server.add_listener({"A", "127.0.0.1", 0, SecurityProtocol::plaintext, nullptr}).ok());
  auto busy = server.add_listener({"B", "127.0.0.1", server.bound_port("A"), SecurityProtocol::plaintext, nullptr});
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.error().message.find("cannot bind"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::net
