// AdminConnection against a scripted fake broker on loopback: ApiVersions fallback when the broker
// does not know v3, version choice from what it listed, timeouts, a broker that hangs up.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <thread>

#include "client/client.h"
#include "wire/generated/api_versions.h"
#include "wire/generated/describe_acls.h"

namespace bulwark::client {
namespace {

// One connection, answered by `script(header, body)`; an empty reply means "say nothing".
class FakeBroker {
 public:
  using Script = std::function<Bytes(const wire::RequestHeader&, ByteReader&)>;
  explicit FakeBroker(Script script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(::listen(listener_, 1), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeBroker() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::int16_t> versions_seen;  // api versions of the requests, in order

 private:
  static bool read_exact(int fd, std::uint8_t* out, std::size_t n) {
    while (n > 0) {
      ssize_t got = ::recv(fd, out, n, 0);
      if (got <= 0) return false;
      out += got;
      n -= static_cast<std::size_t>(got);
    }
    return true;
  }
  void serve() {
    int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    for (;;) {
      std::uint8_t size_bytes[4];
      if (!read_exact(fd, size_bytes, 4)) break;
      std::uint32_t size = static_cast<std::uint32_t>(size_bytes[0] << 24 | size_bytes[1] << 16 | size_bytes[2] << 8 |
                                                      size_bytes[3]);
      Bytes frame(size);
      if (!read_exact(fd, frame.data(), frame.size())) break;
      ByteReader reader(frame);
      auto header = wire::decode_request_header(reader);
      if (!header.ok()) break;
      versions_seen.push_back(header->api_version);
      Bytes reply = script_(*header, reader);
      if (reply.empty()) {
        // Hold the connection open without answering until the client gives up.
        std::uint8_t ignored;
        (void)::recv(fd, &ignored, 1, 0);
        break;
      }
      ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      if (reply.size() < 4) break;  // a torn frame, then hang up
    }
    ::close(fd);
  }

  Script script_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// A response frame: size, response header (v0 for ApiVersions), body.
template <class Message>
Bytes response_frame(const wire::RequestHeader& h, const Message& message, std::int16_t body_version) {
  ByteWriter w;
  w.write_i32(0);
  wire::encode_response_header(w, h.api_key, h.api_version, h.correlation_id);
  message.encode(w, body_version);
  w.patch_u32(0, static_cast<std::uint32_t>(w.size() - 4));
  return w.take();
}

wire::msg::ApiVersionsResponse versions(std::int16_t error, std::vector<std::array<std::int16_t, 3>> apis) {
  wire::msg::ApiVersionsResponse r;
  r.error_code = error;
  for (auto [key, min, max] : apis) r.api_keys.push_back({key, min, max, {}});
  return r;
}

ClientSettings settings_for(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  ClientSettings s;
  s.bootstrap_servers = {{"127.0.0.1", port}};
  s.timeout = timeout;
  return s;
}

TEST(ClientConnection, FallsBackWhenTheBrokerDoesNotKnowApiVersionsV3) {
  FakeBroker broker([](const wire::RequestHeader& h, ByteReader& body) -> Bytes {
    if (h.api_key == 18 && h.api_version == 3) {
      // An older broker: UNSUPPORTED_VERSION in v0 form, listing ApiVersions up to v2.
      return response_frame(h, versions(35, {{18, 0, 2}}), 0);
    }
    if (h.api_key == 18) return response_frame(h, versions(0, {{18, 0, 2}, {29, 0, 1}, {30, 0, 1}}), h.api_version);
    if (h.api_key == 29) {
      wire::msg::DescribeAclsRequest request;
      EXPECT_TRUE(request.decode(body, h.api_version));
      EXPECT_EQ(request.resource_name_filter, "orders");
      wire::msg::DescribeAclsResponse response;
      response.resources.push_back({2, "orders", 3, {{"User:alice", "*", 3, 3, {}}}, {}});
      return response_frame(h, response, h.api_version);
    }
    return {};
  });
  auto connection = AdminConnection::connect(settings_for(broker.port()));
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  EXPECT_EQ((*connection)->broker_versions().at(29).max, 1);
  EXPECT_EQ(*(*connection)->negotiate(30, 0, 3), 1);
  EXPECT_FALSE((*connection)->negotiate(51, 0, 0).ok());
  EXPECT_NE((*connection)->negotiate(51, 0, 0).error().message.find("does not support AlterUserScramCredentials"),
            std::string::npos);

  wire::msg::DescribeAclsRequest request;
  request.resource_type_filter = 2;
  request.resource_name_filter = "orders";
  auto response = (*connection)->call<wire::msg::DescribeAclsRequest, wire::msg::DescribeAclsResponse>(request);
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->resources.size(), 1u);
  EXPECT_EQ(response->resources[0].acls[0].principal, "User:alice");
  connection->reset();
  EXPECT_EQ(broker.versions_seen, (std::vector<std::int16_t>{3, 2, 1}));  // ApiVersions v3, v2, DescribeAcls v1
}

TEST(ClientConnection, TimesOutWhenTheBrokerSaysNothing) {
  FakeBroker broker([](const wire::RequestHeader&, ByteReader&) { return Bytes{}; });
  auto started = std::chrono::steady_clock::now();
  auto connection = AdminConnection::connect(settings_for(broker.port(), std::chrono::milliseconds(300)));
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.error().kind, ErrorKind::io);
  EXPECT_NE(connection.error().message.find("timed out while waiting for a response"), std::string::npos)
      << connection.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(ClientConnection, ExplainsAHangUpAndTriesTheNextServer) {
  FakeBroker hangs_up([](const wire::RequestHeader&, ByteReader&) -> Bytes { return {0}; });  // 1 byte, then close
  FakeBroker good([](const wire::RequestHeader& h, ByteReader&) -> Bytes {
    return response_frame(h, versions(0, {{18, 0, 3}}), h.api_version);
  });
  ClientSettings s = settings_for(hangs_up.port());
  s.bootstrap_servers.push_back({"127.0.0.1", good.port()});
  auto connection = AdminConnection::connect(s);
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  EXPECT_EQ((*connection)->broker().port, good.port());

  FakeBroker hangs_up_again([](const wire::RequestHeader&, ByteReader&) -> Bytes { return {0}; });
  auto failed = AdminConnection::connect(settings_for(hangs_up_again.port()));
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("the broker closed the connection"), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("is this a TLS listener?"), std::string::npos) << failed.error().message;
}

TEST(ClientConnection, RefusedConnectionNamesTheServer) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::uint16_t closed_port = ntohs(addr.sin_port);
  // Bound but not listening: connections to it are refused while we hold it.
  auto failed = AdminConnection::connect(settings_for(closed_port));
  ::close(fd);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("127.0.0.1:" + std::to_string(closed_port) + ": cannot connect"),
            std::string::npos)
      << failed.error().message;
}

}  // namespace
}  // namespace bulwark::client
