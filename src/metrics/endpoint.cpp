#include "metrics/endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/log.h"
#include "base/openssl.h"

namespace bulwark::metrics {
namespace {

Error bad(std::string_view url, std::string why) {
  return make_error(ErrorKind::invalid_argument,
                    fmt::format("metrics.listener={}: {} (expected http://HOST:PORT or https://HOST:PORT, e.g. "
                                "http://127.0.0.1:9404)",
                                url, why));
}

// One scrape's bytes: the socket itself, or TLS over it.
struct Stream {
  int fd = -1;
  SSL* ssl = nullptr;

  ssize_t read(char* buf, std::size_t size) const {
    if (ssl) return SSL_read(ssl, buf, static_cast<int>(size));
    return ::recv(fd, buf, size, 0);
  }
  void write_all(std::string_view data) const {
    while (!data.empty()) {
      const ssize_t n = ssl ? SSL_write(ssl, data.data(), static_cast<int>(data.size()))
                            : ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
};

std::string peer_address(int fd) {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  char host[NI_MAXHOST] = "?";
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0)
    ::getnameinfo(reinterpret_cast<sockaddr*>(&peer), length, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
  return host;
}

std::string response(int status, const char* reason, std::string_view type, std::string_view body) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", status,
                     reason, type, body.size(), body);
}

}  // namespace

Result<ListenerAddress> parse_listener(std::string_view url) {
  ListenerAddress address;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
    address.https = true;
  } else {
    return bad(url, "it must start with http:// or https://");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return bad(url, "the port is missing");
  address.host = std::string(rest.substr(0, colon));
  if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']')
    address.host = address.host.substr(1, address.host.size() - 2);
  const auto port_text = rest.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return bad(url, "the port is not a number from 0 to 65535");
  address.port = static_cast<std::uint16_t>(port);
  return address;
}

struct Endpoint::Impl {
  int listen_fd = -1;
  int wake_fd = -1;
  std::uint16_t port = 0;
  std::function<std::string()> render;
  std::optional<EndpointTls> tls;
  std::shared_ptr<const tls::TlsSettings> tls_built_from;  // the listener's settings `tls_context` was made from
  std::shared_ptr<tls::ServerTlsContext> tls_context;
  std::thread thread;

  // Makes the scrapers' context from the listener's settings, with our own client auth.
  Status build_tls_context(std::shared_ptr<const tls::TlsSettings> settings) {
    tls_built_from = settings;
    tls::TlsSettings own = tls::share_settings(*settings);
    own.client_auth = tls->client_auth;
    auto made = tls::make_server_context(own);
    if (!made.ok()) return made.error();
    tls_context = std::move(*made);
    return Status::success();
  }

  // The context for the next scrape, made again when the listener's material was reloaded. The
  // listener refuses bad material, so this fails only on what it accepts but metrics cannot use
  // (client auth without a truststore); the previous context stays then.
  std::shared_ptr<tls::ServerTlsContext> current_tls_context() {
    auto settings = tls->listener->settings();
    if (settings == tls_built_from) return tls_context;
    if (auto built = build_tls_context(settings); !built.ok())
      log::warn("metrics: cannot serve HTTPS with the reloaded material: {}", built.error().message);
    return tls_context;
  }

  // The TLS handshake of one scrape; null (after a log line) when it failed.
  SslPtr accept_tls(int fd) {
    auto context = current_tls_context();
    if (!context) return nullptr;
    SslPtr ssl(SSL_new(context->current().get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return nullptr;
    tls::HandshakeNotes notes;
    tls::attach_notes(ssl.get(), &notes);
    ERR_clear_error();
    const int rc = SSL_accept(ssl.get());
    tls::HandshakeFailure failure;
    failure.ssl_error = SSL_get_error(ssl.get(), rc);
    failure.error_code = ERR_peek_error();
    failure.sys_errno = errno;
    failure.verify_result = SSL_get_verify_result(ssl.get());
    failure.client_auth = tls->client_auth;
    failure.notes = &notes;
    failure.own_certificate = SSL_get_certificate(ssl.get());
    tls::attach_notes(ssl.get(), nullptr);
    if (rc != 1) {
      log::info("metrics: TLS handshake from {} failed: {}", peer_address(fd), tls::explain_handshake_failure(failure));
      return nullptr;
    }
    // A resumed session skipped verification: its certificate may have been revoked since.
    const X509* cert = SSL_get0_peer_certificate(ssl.get());
    if (SSL_session_reused(ssl.get()) && cert && context->revoked(cert)) {
      log::info("metrics: {} resumed a TLS session with a revoked certificate", peer_address(fd));
      return nullptr;
    }
    return ssl;
  }

  void serve(int fd) {
    timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    SslPtr ssl;
    if (tls) {
      ssl = accept_tls(fd);
      if (!ssl) return;
    }
    const Stream stream{fd, ssl.get()};
    answer(stream);
    if (ssl) SSL_shutdown(ssl.get());
  }

  void answer(const Stream& stream) {
    std::string request;
    char buf[2048];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
      const ssize_t n = stream.read(buf, sizeof buf);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
    const auto line_end = request.find("\r\n");
    const std::string line = request.substr(0, line_end);
    if (!line.starts_with("GET ")) {
      stream.write_all(response(405, "Method Not Allowed", "text/plain", "only GET /metrics\n"));
      return;
    }
    const auto path_end = line.find(' ', 4);
    const std::string path = line.substr(4, path_end == std::string::npos ? std::string::npos : path_end - 4);
    if (path != "/metrics" && !path.starts_with("/metrics?")) {
      stream.write_all(response(404, "Not Found", "text/plain", "metrics are at /metrics\n"));
      return;
    }
    stream.write_all(response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render()));
  }

  void run() {
    for (;;) {
      pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents & POLLIN) return;
      if (!(fds[0].revents & POLLIN)) continue;
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      serve(fd);
      ::close(fd);
    }
  }
};

Endpoint::Endpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Endpoint>> Endpoint::start(const ListenerAddress& address, std::function<std::string()> render,
                                                   std::optional<EndpointTls> tls) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (int rc = ::getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return make_error(ErrorKind::invalid_argument, "metrics listener host " + address.host + ": " + gai_strerror(rc));
  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  if (address.https != tls.has_value()) {
    ::freeaddrinfo(found);
    return make_error(ErrorKind::invalid_argument, address.https ? "an https:// metrics listener needs TLS material"
                                                                 : "TLS material given for an http:// metrics listener");
  }
  impl->tls = std::move(tls);
  if (impl->tls) {
    if (auto built = impl->build_tls_context(impl->tls->listener->settings()); !built.ok()) {
      ::freeaddrinfo(found);
      return make_error(ErrorKind::invalid_argument, "metrics listener: " + built.error().message);
    }
  }
  impl->listen_fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(impl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool bound = impl->listen_fd >= 0 && ::bind(impl->listen_fd, found->ai_addr, found->ai_addrlen) == 0 &&
                     ::listen(impl->listen_fd, 16) == 0;
  const int err = errno;
  ::freeaddrinfo(found);
  if (!bound) {
    if (impl->listen_fd >= 0) ::close(impl->listen_fd);
    return make_error(ErrorKind::io, fmt::format("cannot listen on {}:{} for metrics: {}", address.host, address.port,
                                                 std::strerror(err)));
  }
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  ::getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&local), &length);
  impl->port = ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  impl->wake_fd = ::eventfd(0, EFD_CLOEXEC);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "bw-metrics");
    raw->run();
  });
  return std::unique_ptr<Endpoint>(new Endpoint(std::move(impl)));
}

Endpoint::~Endpoint() {
  const std::uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  ::close(impl_->listen_fd);
  ::close(impl_->wake_fd);
}

std::uint16_t Endpoint::port() const { return impl_->port; }

}  // namespace bulwark::metrics
