// One blocking connection to one broker: TCP connect with a timeout, TLS handshake, framing with a
// poll() deadline on every wait, ApiVersions negotiation.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "client/client.h"
#include "wire/generated/api_versions.h"

namespace bulwark::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int32_t kMaxResponseBytes = 100 * 1024 * 1024;
constexpr std::int16_t kUnsupportedVersion = 35;

Error io_error(std::string message) { return make_error(ErrorKind::io, std::move(message)); }

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits until fd is readable/writable; false on timeout.
Status wait_fd(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int ms = remaining_ms(deadline);
    if (ms == 0) return io_error(fmt::format("timed out while {}", what));
    int n = ::poll(&p, 1, ms);
    if (n > 0) return Status::success();
    if (n == 0) return io_error(fmt::format("timed out while {}", what));
    if (errno != EINTR) return io_error(fmt::format("poll failed while {}: {}", what, std::strerror(errno)));
  }
}

Result<int> connect_tcp(const HostPort& server, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(server.port);
  if (int rc = ::getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return io_error(fmt::format("cannot resolve {}: {}", server.host, ::gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      auto waited = wait_fd(fd, POLLOUT, deadline, "connecting");
      if (!waited.ok()) {
        last_error = "connection timed out";
        ::close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::freeaddrinfo(found);
    return fd;
  }
  ::freeaddrinfo(found);
  return io_error(fmt::format("cannot connect: {}", last_error));
}

std::string verify_detail(long verify_result) {
  if (verify_result == X509_V_OK) return {};
  return fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify_result));
}

}  // namespace

struct AdminConnection::Socket {
  int fd = -1;
  SslPtr ssl;
  tls::HandshakeNotes notes;
  std::chrono::milliseconds timeout{30000};
  std::string peer;  // host:port for messages

  ~Socket() {
    if (ssl) SSL_shutdown(ssl.get());  // best effort close_notify; never waits
    if (fd >= 0) ::close(fd);
  }

  // Why a TLS operation failed, in plain words, with OpenSSL's own words appended.
  std::string explain_tls(int ssl_error, int saved_errno) {
    tls::HandshakeFailure failure;
    failure.server_side = false;
    failure.ssl_error = ssl_error;
    failure.error_code = ERR_peek_error();
    failure.sys_errno = saved_errno;
    failure.verify_result = SSL_get_verify_result(ssl.get());
    failure.own_certificate = SSL_get_certificate(ssl.get());
    failure.notes = &notes;
    const int reason = failure.error_code != 0 ? ERR_GET_REASON(failure.error_code) : 0;
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING && notes.verify_error == X509_V_OK) {
      ERR_clear_error();
      return "the broker closed the connection in the middle of the TLS handshake (is this a PLAINTEXT or "
             "SASL_PLAINTEXT listener? Then drop --ca and the ssl.* settings)";
    }
    std::string text = tls::explain_handshake_failure(failure);
    // explain_handshake_failure starts some sentences with "the TLS handshake failed:"; we say that already.
    constexpr std::string_view kPrefix = "the TLS handshake failed: ";
    if (std::string_view(text).starts_with(kPrefix)) text.erase(0, kPrefix.size());
    std::string detail = verify_detail(notes.verify_error != X509_V_OK ? notes.verify_error : failure.verify_result);
    if (detail.empty() && failure.error_code != 0) {
      const char* reason = ERR_reason_error_string(failure.error_code);
      if (reason != nullptr) detail = reason;
    }
    ERR_clear_error();
    if (!detail.empty() && text.find(detail) == std::string::npos) text += " (" + detail + ")";
    return text;
  }

  Status handshake(const tls::ClientTlsContext& context, const std::string& host, bool verify_hostname) {
    auto ssl_or = context.new_ssl(host);
    if (!ssl_or) return ssl_or.error();
    ssl = std::move(*ssl_or);
    if (!verify_hostname) {
      // ssl.endpoint.identification.algorithm= (empty): the chain is verified, the name is not.
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
      X509_VERIFY_PARAM_set1_host(param, nullptr, 0);
      X509_VERIFY_PARAM_set1_ip(param, nullptr, 0);
    }
    tls::attach_notes(ssl.get(), &notes);
    SSL_set_fd(ssl.get(), fd);
    const auto deadline = Clock::now() + timeout;
    ERR_clear_error();
    for (;;) {
      int rc = SSL_connect(ssl.get());
      if (rc == 1) return Status::success();
      int saved_errno = errno;
      int err = SSL_get_error(ssl.get(), rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        BULWARK_TRY(wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "in the TLS handshake"));
        continue;
      }
      return make_error(ErrorKind::unauthenticated,
                        "TLS handshake failed: " + explain_tls(err, saved_errno));
    }
  }

  Status write_all(ByteView data, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < data.size()) {
      if (ssl) {
        ERR_clear_error();
        int n = SSL_write(ssl.get(), data.data() + done, static_cast<int>(data.size() - done));
        if (n > 0) {
          done += static_cast<std::size_t>(n);
          continue;
        }
        int saved_errno = errno;
        int err = SSL_get_error(ssl.get(), n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          BULWARK_TRY(wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "sending a request"));
          continue;
        }
        return io_error(fmt::format("sending to {} failed: {}", peer, explain_tls(err, saved_errno)));
      }
      ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        BULWARK_TRY(wait_fd(fd, POLLOUT, deadline, "sending a request"));
      } else if (n < 0 && errno != EINTR) {
        return io_error(fmt::format("sending to {} failed: {}", peer, std::strerror(errno)));
      }
    }
    return Status::success();
  }

  Status read_exact(std::uint8_t* out, std::size_t size, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < size) {
      if (ssl) {
        ERR_clear_error();
        int n = SSL_read(ssl.get(), out + done, static_cast<int>(size - done));
        if (n > 0) {
          done += static_cast<std::size_t>(n);
          continue;
        }
        int saved_errno = errno;
        int err = SSL_get_error(ssl.get(), n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          BULWARK_TRY(wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "waiting for a response"));
          continue;
        }
        if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && saved_errno == 0)) {
          return io_error(fmt::format("{} closed the connection", peer));
        }
        // With TLS 1.3 the broker judges our certificate after our side finished the handshake, so
        // its verdict (an alert) arrives here.
        return io_error(fmt::format("reading from {} failed: {}", peer, explain_tls(err, saved_errno)));
      }
      ssize_t n = ::recv(fd, out + done, size - done, 0);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n == 0) {
        return io_error(fmt::format("{} closed the connection", peer));
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        BULWARK_TRY(wait_fd(fd, POLLIN, deadline, "waiting for a response"));
      } else if (errno != EINTR) {
        return io_error(fmt::format("reading from {} failed: {}", peer, std::strerror(errno)));
      }
    }
    return Status::success();
  }
};

Bytes frame_request(std::int16_t api_key, std::int16_t api_version, std::int32_t correlation_id,
                    const std::optional<std::string>& client_id, ByteView body) {
  ByteWriter w;
  w.write_i32(0);  // size, patched below
  wire::RequestHeader header{api_key, api_version, correlation_id, client_id};
  wire::encode_request_header(w, header);
  w.write_bytes(body);
  w.patch_u32(0, static_cast<std::uint32_t>(w.size() - 4));
  return w.take();
}

std::optional<std::int16_t> choose_version(const BrokerVersions& broker, std::int16_t api_key, std::int16_t our_min,
                                           std::int16_t our_max) {
  auto it = broker.find(api_key);
  if (it == broker.end()) return std::nullopt;
  const std::int16_t low = std::max(our_min, it->second.min);
  const std::int16_t high = std::min(our_max, it->second.max);
  if (low > high) return std::nullopt;
  return high;
}

AdminConnection::AdminConnection() = default;
AdminConnection::~AdminConnection() = default;

Error AdminConnection::undecodable(std::int16_t api_key, std::int16_t version) const {
  const auto* info = wire::find_api(api_key);
  return make_error(ErrorKind::corrupt, fmt::format("the {} v{} response from {} does not decode",
                                                    info ? info->name : "unknown", version, broker_.to_string()));
}

Result<std::int16_t> AdminConnection::negotiate(std::int16_t api_key, std::int16_t our_min, std::int16_t our_max) const {
  auto version = choose_version(versions_, api_key, our_min, our_max);
  if (version) return *version;
  const auto* info = wire::find_api(api_key);
  const char* name = info ? info->name : "unknown";
  auto it = versions_.find(api_key);
  if (it == versions_.end()) {
    return make_error(ErrorKind::unsupported,
                      fmt::format("the broker at {} does not support {} (API key {})", broker_.to_string(), name, api_key));
  }
  return make_error(ErrorKind::unsupported,
                    fmt::format("the broker at {} supports {} versions {}..{}, this client {}..{}", broker_.to_string(),
                                name, it->second.min, it->second.max, our_min, our_max));
}

Result<Bytes> AdminConnection::exchange(std::int16_t api_key, std::int16_t api_version, const Bytes& body) {
  const std::int32_t correlation_id = next_correlation_id_++;
  Bytes frame = frame_request(api_key, api_version, correlation_id, settings_.client_id, body);
  const auto deadline = Clock::now() + settings_.timeout;
  BULWARK_TRY(socket_->write_all(frame, deadline));
  std::uint8_t size_bytes[4];
  BULWARK_TRY(socket_->read_exact(size_bytes, 4, deadline));
  const std::int32_t size = static_cast<std::int32_t>(static_cast<std::uint32_t>(size_bytes[0]) << 24 |
                                                      static_cast<std::uint32_t>(size_bytes[1]) << 16 |
                                                      static_cast<std::uint32_t>(size_bytes[2]) << 8 | size_bytes[3]);
  if (size < 4 || size > kMaxResponseBytes) {
    return make_error(ErrorKind::corrupt, fmt::format("{} sent a response of impossible size {} (is it a Kafka broker, "
                                                      "and does the security protocol match the listener?)",
                                                      broker_.to_string(), size));
  }
  Bytes response(static_cast<std::size_t>(size));
  BULWARK_TRY(socket_->read_exact(response.data(), response.size(), deadline));
  ByteReader reader(response);
  auto got = wire::decode_response_header(reader, api_key, api_version);
  if (!got) return got.error();
  if (*got != correlation_id) {
    return make_error(ErrorKind::corrupt, fmt::format("{} answered correlation id {} to request {}",
                                                      broker_.to_string(), *got, correlation_id));
  }
  return Bytes(response.begin() + static_cast<std::ptrdiff_t>(reader.position()), response.end());
}

Status AdminConnection::negotiate_versions() {
  using wire::msg::ApiVersionsRequest;
  using wire::msg::ApiVersionsResponse;
  ApiVersionsRequest request;
  request.client_software_name = "bulwark-admin";
  request.client_software_version = "1.0";
  std::int16_t version = ApiVersionsRequest::highest_supported_version;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ByteWriter body;
    request.encode(body, version);
    auto reply = exchange(ApiVersionsRequest::api_key, version, body.buffer());
    if (!reply) return reply.error();
    // The error code comes first in every version; an UNSUPPORTED_VERSION answer is in v0 form.
    ByteReader peek(*reply);
    std::int16_t error_code = 0;
    if (!peek.read_i16(error_code)) return undecodable(ApiVersionsRequest::api_key, version);
    const std::int16_t decode_version = error_code == kUnsupportedVersion ? 0 : version;
    ByteReader reader(*reply);
    ApiVersionsResponse response;
    if (!response.decode(reader, decode_version)) return undecodable(ApiVersionsRequest::api_key, decode_version);
    versions_.clear();
    for (const auto& api : response.api_keys) versions_[api.api_key] = {api.min_version, api.max_version};
    if (error_code == 0) return Status::success();
    if (error_code == kUnsupportedVersion && attempt == 0) {
      // Retry in the highest version the broker listed for ApiVersions itself (v0 if it listed none).
      auto retry = choose_version(versions_, ApiVersionsRequest::api_key, 0, version);
      version = retry.value_or(0);
      continue;
    }
    return make_error(ErrorKind::io, fmt::format("{} answered ApiVersions with {}", broker_.to_string(),
                                                 error_name(error_code)));
  }
  return make_error(ErrorKind::unsupported,
                    fmt::format("{} supports no ApiVersions version this client speaks", broker_.to_string()));
}

Result<std::unique_ptr<AdminConnection>> AdminConnection::connect(const ClientSettings& settings) {
  BULWARK_TRY(validate_settings(settings));
  std::shared_ptr<tls::ClientTlsContext> context;
  std::string certificate_subject;
  if (config::uses_tls(settings.protocol)) {
    auto material = load_tls_material(settings.tls);
    if (!material) return material.error();
    if (!material->keystore.keys.empty() && !material->keystore.keys.front().chain.empty()) {
      certificate_subject = tls::subject_rfc2253(material->keystore.keys.front().chain.front().get());
    }
    auto made = tls::make_client_context(*material);
    if (!made) return made.error();
    context = std::move(*made);
  }

  std::vector<std::string> failures;
  Error last{ErrorKind::io, ""};
  for (const auto& server : settings.bootstrap_servers) {
    std::unique_ptr<AdminConnection> connection(new AdminConnection());
    connection->settings_ = settings;
    connection->broker_ = server;
    connection->socket_ = std::make_unique<Socket>();
    connection->socket_->timeout = settings.timeout;
    connection->socket_->peer = "the broker";
    auto attempt = [&]() -> Status {
      auto fd = connect_tcp(server, Clock::now() + settings.timeout);
      if (!fd) return fd.error();
      connection->socket_->fd = *fd;
      if (context) BULWARK_TRY(connection->socket_->handshake(*context, server.host, settings.tls.verify_hostname));
      if (auto negotiated = connection->negotiate_versions(); !negotiated.ok()) {
        Error error = negotiated.error();
        // A plaintext client on a TLS port sees the broker hang up (or answer TLS bytes).
        if (!context && (error.kind == ErrorKind::io || error.kind == ErrorKind::corrupt)) {
          error.message += " (is this a TLS listener? Then give --ca or security.protocol=SSL with ssl.* settings)";
        }
        return error;
      }
      if (settings.sasl) BULWARK_TRY(connection->authenticate(*settings.sasl));
      return Status::success();
    };
    auto status = attempt();
    if (status.ok()) {
      if (settings.sasl) {
        connection->identity_ = "User:" + settings.sasl->username;
      } else if (!certificate_subject.empty()) {
        connection->identity_ = fmt::format("the principal of certificate `{}`", certificate_subject);
      }
      return connection;
    }
    last = status.error();
    failures.push_back(fmt::format("{}: {}", server.to_string(), status.error().message));
  }
  if (failures.size() == 1) {
    // The message already names the server in most cases; keep the kind (TLS, auth, io) for callers.
    last.message = failures.front();
    return last;
  }
  std::string joined = "could not use any bootstrap server:";
  for (const auto& f : failures) joined += "\n  " + f;
  return make_error(last.kind, std::move(joined));
}

}  // namespace bulwark::client
