// Test helpers shared by the net unit tests: a blocking client (plaintext or TLS) over real loopback
// sockets and a RequestHandler driven by text commands.
#pragma once

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
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/server.h"
#include "tls_test_certs.h"

namespace bulwark::net::test_support {

using namespace bulwark::testing;
using namespace std::chrono_literals;

// ---- a blocking test client (plaintext or TLS) ----

class Client {
 public:
  ~Client() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  // source: the local address to connect from ("127.0.0.2" is loopback too), nullptr = the kernel's choice.
  static std::unique_ptr<Client> connect_to(std::uint16_t port, const char* source = nullptr) {
    auto c = std::make_unique<Client>();
    c->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      inet_pton(AF_INET, source, &local.sin_addr);
      if (::bind(c->fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return nullptr;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return nullptr;
    timeval tv{20, 0};  // generous: a loaded 2-core machine
    setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
  }

  // TLS over a fresh connection; handshake_error says why it failed ("" when it worked).
  static std::unique_ptr<Client> connect_tls(std::uint16_t port, ClientCert cert = ClientCert::none,
                                             SSL_CTX* custom_ctx = nullptr, const char* source = nullptr) {
    auto c = connect_to(port, source);
    if (!c) return nullptr;
    SSL_CTX* ctx = custom_ctx;
    if (ctx == nullptr) {
      auto made = tls::make_client_context(client_settings(cert));
      if (!made.ok()) {
        ADD_FAILURE() << made.error().message;
        return nullptr;
      }
      c->ctx_ = *made;
      auto ssl = c->ctx_->new_ssl("127.0.0.1");
      c->ssl_ = std::move(ssl.value());
    } else {
      c->ssl_.reset(SSL_new(ctx));
    }
    SSL_set_fd(c->ssl_.get(), c->fd_);
    if (SSL_connect(c->ssl_.get()) != 1) {
      c->handshake_error = openssl_errors();
      if (c->handshake_error.empty()) c->handshake_error = "handshake failed";
    }
    return c;
  }

  bool send_raw(std::string_view data) {
    std::size_t done = 0;
    while (done < data.size()) {
      long n = ssl_ ? SSL_write(ssl_.get(), data.data() + done, static_cast<int>(data.size() - done))
                    : ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  static std::string frame(std::string_view body) {
    std::string out(4, '\0');
    const auto n = static_cast<std::uint32_t>(body.size());
    out[0] = static_cast<char>(n >> 24);
    out[1] = static_cast<char>(n >> 16);
    out[2] = static_cast<char>(n >> 8);
    out[3] = static_cast<char>(n);
    return out + std::string(body);
  }
  bool send_frame(std::string_view body) { return send_raw(frame(body)); }

  // Reads exactly n bytes; false on EOF, error or timeout.
  bool read_exact(char* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      long r = ssl_ ? SSL_read(ssl_.get(), out + got, static_cast<int>(n - got)) : ::recv(fd_, out + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

  std::optional<std::string> read_frame() {
    unsigned char h[4];
    if (!read_exact(reinterpret_cast<char*>(h), 4)) return std::nullopt;
    const std::uint32_t n = static_cast<std::uint32_t>(h[0]) << 24 | h[1] << 16 | h[2] << 8 | h[3];
    std::string body(n, '\0');
    if (!read_exact(body.data(), n)) return std::nullopt;
    return body;
  }

  // True when the server closed the connection (EOF or reset) within the receive timeout.
  bool closed_by_server() {
    char byte;
    for (;;) {
      long r = ssl_ ? SSL_read(ssl_.get(), &byte, 1) : ::recv(fd_, &byte, 1, 0);
      if (r > 0) continue;  // drain whatever came before the close
      if (r == 0) return true;
      if (!ssl_) return errno == ECONNRESET || errno == EPIPE;
      const int err = SSL_get_error(ssl_.get(), static_cast<int>(r));
      ERR_clear_error();
      return err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SSL || (err == SSL_ERROR_SYSCALL && errno != EAGAIN);
    }
  }

  // Nothing arrives within `wait` (the connection is open and silent).
  bool silent_for(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (ssl_ && SSL_pending(ssl_.get()) > 0) return false;
    return ::poll(&p, 1, static_cast<int>(wait.count())) == 0;
  }

  // Non-blocking use from ONE thread (an SSL object must never be read and written concurrently):
  // > 0 bytes moved, 0 would block, < 0 the connection failed.
  void set_nonblocking() { ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK); }
  long write_some(const char* data, std::size_t n) { return io_result(ssl_ ? SSL_write(ssl_.get(), data, static_cast<int>(n)) : ::send(fd_, data, n, MSG_NOSIGNAL)); }
  long read_some(char* out, std::size_t n) { return io_result(ssl_ ? SSL_read(ssl_.get(), out, static_cast<int>(n)) : ::recv(fd_, out, n, 0)); }

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_.get(); }
  std::string handshake_error;

 private:
  long io_result(long r) {
    if (r > 0) return r;
    if (ssl_) {
      const int err = SSL_get_error(ssl_.get(), static_cast<int>(r));
      ERR_clear_error();
      return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
  }

  int fd_ = -1;
  std::shared_ptr<tls::ClientTlsContext> ctx_;
  SslPtr ssl_;
};

// ---- the test handler ----
// Frames are text commands: "echo:X" answers X reversed, "delay:MS:X" answers X reversed from another
// thread after MS ms, "none:" answers nothing (respond_none), "close:" closes, "hold:" keeps the
// responder unanswered, "whoami" answers the client's RFC 2253 subject, "login:" lifts the connection's
// frame limit (RequestContext::frame_limit) and answers "ko".
class TestHandler : public RequestHandler {
 public:
  ~TestHandler() override { join(); }

  void on_request(RequestContext& ctx, Bytes frame, Responder responder) override {
    std::string text(frame.begin(), frame.end());
    {
      std::lock_guard lock(mutex_);
      ++requests_;
      if (!ctx.state) ctx.state = std::make_unique<ConnectionState>();
    }
    cv_.notify_all();
    auto reversed = [](std::string s) {
      std::reverse(s.begin(), s.end());
      return Bytes(s.begin(), s.end());
    };
    if (text.rfind("echo:", 0) == 0) {
      responder.respond(reversed(text.substr(5)));
    } else if (text.rfind("delay:", 0) == 0) {
      const auto colon = text.find(':', 6);
      const int ms = std::stoi(text.substr(6, colon - 6));
      Bytes answer = reversed(text.substr(colon + 1));
      std::lock_guard lock(mutex_);
      threads_.emplace_back([responder, answer, ms]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        responder.respond(std::move(answer));
      });
    } else if (text.rfind("mute:", 0) == 0) {  // mute:<ms>:<text>: answers, then reads nothing for <ms>
      const auto colon = text.find(':', 5);
      responder.respond(reversed(text.substr(colon + 1)), std::chrono::milliseconds(std::stoi(text.substr(5, colon - 5))));
    } else if (text == "none:") {
      responder.respond_none();
    } else if (text == "login:") {
      ctx.frame_limit = SIZE_MAX;  // as the broker does once a SASL client has logged in
      responder.respond(Bytes{'k', 'o'});
    } else if (text == "close:") {
      responder.close_connection();
    } else if (text == "whoami") {
      const std::string s = ctx.peer.client_subject.empty() ? "(none)" : ctx.peer.client_subject;
      responder.respond(Bytes(s.begin(), s.end()));
    } else if (text.rfind("hold:", 0) == 0 || answer_held_later_) {
      std::lock_guard lock(mutex_);
      held_.push_back(responder);
    } else {
      responder.close_connection();
    }
  }

  void on_connection_closed(const PeerInfo&, ConnectionState*) override {
    std::lock_guard lock(mutex_);
    ++closed_;
    cv_.notify_all();
  }

  bool wait_requests(int n, std::chrono::milliseconds limit = 20s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return requests_ >= n; });
  }
  bool wait_closed(int n, std::chrono::milliseconds limit = 20s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return closed_ >= n; });
  }
  int requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int closed() {
    std::lock_guard lock(mutex_);
    return closed_;
  }
  std::vector<Responder> take_held() {
    std::lock_guard lock(mutex_);
    return std::exchange(held_, {});
  }
  void join() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  bool answer_held_later_ = false;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int requests_ = 0;
  int closed_ = 0;
  std::vector<Responder> held_;
  std::vector<std::thread> threads_;
};

}  // namespace bulwark::net::test_support
