#include "net/server.h"
#include "net/tls_write_bio.h"
#include "tls/certificates.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <pthread.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "base/log.h"

namespace bulwark::net {

using Clock = std::chrono::steady_clock;

namespace detail {
// What outlives a loop: Responders and posters hold it, so calls after stop() find `stopped` and do
// nothing instead of touching freed memory.
struct LoopShared {
  std::mutex mutex;
  std::vector<std::function<void()>> tasks;
  bool stopped = false;
  int wake_fd = -1;
  std::atomic<std::thread::id> thread_id{};
  EventLoop* loop = nullptr;  // valid while !stopped
};
}  // namespace detail

namespace {

constexpr std::size_t kScratchBytes = 64 * 1024;
constexpr std::size_t kBodyJumpBytes = 4 * 1024 * 1024;  // see append_body
constexpr std::size_t kTlsStageBytes = 256 * 1024;
// A frame this large (a fetch answer) is encrypted from its own body, not copied into the stage first:
// the copy would cost as much as a fifth of the encryption.
constexpr std::size_t kDirectTlsFrameBytes = 64 * 1024;
constexpr int kMaxIov = 64;

// A frame's 4-byte big-endian size, which precedes its body on the wire.
std::array<std::uint8_t, 4> size_header(std::size_t body_size) {
  const auto size = static_cast<std::uint32_t>(body_size);
  return {static_cast<std::uint8_t>(size >> 24), static_cast<std::uint8_t>(size >> 16),
          static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)};
}
// Past this much unwritten output a connection stops reading requests until the client reads.
constexpr std::size_t kMaxBufferedOutput = 4 * 1024 * 1024;

// TLS records are gathered and handed to the kernel in writes of up to 256 KiB (one send per ~16
// records instead of one write() per 16 KiB record), by a BIO that holds a buffer only while it has
// bytes to send (tls_write_bio.h). OpenSSL flushes it itself at the end of each handshake flight and
// after alerts; flush_tls flushes after application data. Reads stay on the socket BIO.
bool gather_tls_writes(SSL* ssl, int fd) {
  BIO* gather = new_gathering_socket_bio(fd);
  if (gather == nullptr) return false;
  SSL_set0_wbio(ssl, gather);
  return true;
}

// After a connection storm the allocator keeps the freed per-connection TLS state (tens of KiB each,
// spread over the loops' arenas) unless asked to give it back: once enough connections have closed and
// closing has paused for a second (or, under steady churn, every few thousand closes), malloc_trim
// returns the free pages to the system. It walks the heap, so it runs at most once per second.
class HeapReturner {
 public:
  void connection_closed() {
    closed_.fetch_add(1, std::memory_order_relaxed);
    last_close_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  }

  void maybe_trim(Clock::time_point now) {
    const std::uint64_t closed = closed_.load(std::memory_order_relaxed);
    const Clock::time_point last_close{Clock::duration(last_close_.load(std::memory_order_relaxed))};
    const bool storm_over = closed >= kAfterClosed && now - last_close >= std::chrono::seconds(1);
    if (!(storm_over || closed >= kDuringChurn) || now - last_trim_ < std::chrono::seconds(1)) return;
    closed_.fetch_sub(closed, std::memory_order_relaxed);
    last_trim_ = now;
#ifdef __GLIBC__
    malloc_trim(0);
    log::debug("returned free heap to the system after {} connections closed ({} ms)", closed,
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - now).count());
#endif
  }

 private:
  static constexpr std::uint64_t kAfterClosed = 256;
  static constexpr std::uint64_t kDuringChurn = 4096;
  std::atomic<std::uint64_t> closed_{0};
  std::atomic<Clock::rep> last_close_{0};
  Clock::time_point last_trim_{};  // only the first loop trims
};

// At most `per_second` lines a second per limiter; the rest are counted and reported once.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(int per_second) : per_second_(per_second) {}
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) {
    std::uint64_t suppressed = 0;
    {
      std::lock_guard lock(mutex_);
      auto now = Clock::now();
      if (now - window_start_ >= std::chrono::seconds(1)) {
        suppressed = suppressed_;
        suppressed_ = 0;
        count_ = 0;
        window_start_ = now;
      }
      if (count_ >= per_second_) {
        ++suppressed_;
        return;
      }
      ++count_;
    }
    if (suppressed > 0) log::info("({} similar connection log lines suppressed in the last second)", suppressed);
    log::info(f, std::forward<Args>(args)...);
  }

 private:
  std::mutex mutex_;
  Clock::time_point window_start_{};
  int per_second_;
  int count_ = 0;
  std::uint64_t suppressed_ = 0;
};

struct Pollable {
  virtual ~Pollable() = default;
  virtual void on_event(std::uint32_t events) = 0;
};

std::string errno_text(int err) { return std::strerror(err); }

void format_address(const sockaddr_storage& addr, std::string& host, std::uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    port = ntohs(a.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    port = ntohs(a.sin6_port);
  }
  host = buf;
}

}  // namespace

std::string_view to_string(SecurityProtocol protocol) {
  switch (protocol) {
    case SecurityProtocol::plaintext: return "PLAINTEXT";
    case SecurityProtocol::ssl: return "SSL";
    case SecurityProtocol::sasl_plaintext: return "SASL_PLAINTEXT";
    case SecurityProtocol::sasl_ssl: return "SASL_SSL";
  }
  return "PLAINTEXT";
}

class Connection;
struct ListenerState;

struct detail::LoopImpl {
  detail::ServerImpl* server = nullptr;
  EventLoop* self = nullptr;
  int epoll_fd = -1;
  std::shared_ptr<detail::LoopShared> shared = std::make_shared<detail::LoopShared>();
  std::thread thread;
  bool running = true;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections;
  std::vector<std::unique_ptr<Connection>> graveyard;  // closed during this iteration; freed after it
  std::vector<Connection*> dirty;                      // completed responses to flush after this iteration
  // Timers; guarded by shared->mutex because any thread may add or cancel.
  std::multimap<Clock::time_point, TimerId> timer_order;
  std::unordered_map<TimerId, std::pair<Clock::time_point, std::function<void()>>> timers;
  TimerId next_timer = 1;
  Bytes scratch = Bytes(kScratchBytes);

  void run();
  void complete(std::uint64_t connection_id, std::uint64_t sequence, int kind, Bytes data,
                std::chrono::milliseconds mute);
  std::vector<std::uint64_t> memory_waiters;  // connections waiting for queued request bytes to drain

  void close_all();
  void limits_scan();
  void resume_memory_waiters();
};

struct detail::ServerImpl {
  ServerOptions options;
  RequestHandler* handler = nullptr;
  std::vector<std::unique_ptr<EventLoop>> loops;
  std::vector<std::unique_ptr<ListenerState>> listeners;
  std::unique_ptr<ConnectionLimits> limits;  // made by start()
  std::unique_ptr<LimitReporter> reporter;
  std::unique_ptr<HandshakeFailureLog> handshake_failures;
  // Bytes of requests read (in full or in part) but not yet answered, over every connection; only
  // counted when queued.max.request.bytes is set.
  std::atomic<std::int64_t> queued_request_bytes{0};
  std::atomic<std::uint64_t> next_connection_id{1};
  std::size_t next_loop = 0;
  bool started = false;
  bool stopped = false;
  RateLimitedLog conn_log{20};
  HeapReturner heap;
  std::mutex stop_mutex;

  void accept_on(ListenerState& listener);
  void refuse(const ListenerState& listener, const PeerInfo& peer, const std::string& address, Refusal why);
  bool counts_queued_bytes() const { return options.max_queued_request_bytes >= 0; }
  bool over_queued_limit() const {
    return counts_queued_bytes() && queued_request_bytes.load() > options.max_queued_request_bytes;
  }
  void unqueue(std::size_t bytes) {
    const auto n = static_cast<std::int64_t>(bytes);
    const std::int64_t before = queued_request_bytes.fetch_sub(n);
    const std::int64_t limit = options.max_queued_request_bytes;
    if (before > limit && before - n <= limit) {
      // Back under the limit: every loop resumes the connections it stopped.
      for (auto& loop : loops) {
        detail::LoopImpl* impl = &loop->impl();
        loop->post([impl] { impl->resume_memory_waiters(); });
      }
    }
  }
};

struct ListenerState : Pollable {
  detail::ServerImpl* server = nullptr;
  detail::LoopImpl* loop = nullptr;
  ListenerSpec spec;
  int fd = -1;
  std::uint16_t port = 0;
  std::size_t limit_index = 0;  // in ServerImpl::limits
  bool paused = false;
  ~ListenerState() override {
    if (fd >= 0) ::close(fd);
  }
  void on_event(std::uint32_t) override { server->accept_on(*this); }
};

// One client connection, owned by its loop and touched only on the loop's thread.
class Connection : public Pollable {
 public:
  // `limit_index` and `address_key` are what ServerImpl::limits counted this connection under.
  Connection(detail::LoopImpl& loop, int fd, PeerInfo peer, SslPtr ssl, std::shared_ptr<const tls::ServerTlsContext> tls,
             std::size_t limit_index, std::string address_key, std::size_t frame_limit)
      : loop_(loop), fd_(fd), peer_(std::move(peer)), ssl_(std::move(ssl)), tls_(std::move(tls)),
        client_auth_(tls_ ? tls_->client_auth() : tls::ClientAuth::none), limit_index_(limit_index), address_key_(std::move(address_key)), frame_limit_(frame_limit) {
    last_activity_ = Clock::now();
    created_ = last_activity_;
    if (ssl_) {
      notes_ = std::make_unique<tls::HandshakeNotes>();
      tls::attach_notes(ssl_.get(), notes_.get());
    }
  }
  ~Connection() override {
    if (fd_ >= 0) ::close(fd_);
    loop_.server->limits->release(limit_index_, address_key_);
  }

  Status register_fd() {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = static_cast<Pollable*>(this);
    events_ = EPOLLIN;
    if (epoll_ctl(loop_.epoll_fd, EPOLL_CTL_ADD, fd_, &ev) != 0) {
      return make_error(ErrorKind::io, "epoll_ctl: " + errno_text(errno));
    }
    return Status::success();
  }

  void on_event(std::uint32_t events) override {
    if (closed_) return;
    if (ssl_ && !handshake_done_) {
      handshake();
      return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      if (write_wants_read_) flush();
      if (!closed_) read_some();
    }
    if (!closed_ && (events & EPOLLOUT)) {
      if (read_wants_write_) {
        read_wants_write_ = false;
        read_some();
      }
      if (!closed_) flush();
      maybe_resume();
    }
    if (!closed_) update_interest();
  }

  // No new request is read before `how_long` has passed (quota throttling).
  void mute_for(std::chrono::milliseconds how_long) {
    if (how_long.count() <= 0) return;
    muted_until_ = std::max(muted_until_, Clock::now() + how_long);
    throttled_ = true;
  }

  // A responder finished request `sequence`.
  void complete(std::uint64_t sequence, int kind_value, Bytes data, std::chrono::milliseconds mute) {
    const auto kind = static_cast<Responder::Kind>(kind_value);
    if (closed_ || sequence < first_seq_ || sequence - first_seq_ >= slots_.size()) return;
    Slot& slot = slots_[sequence - first_seq_];
    if (slot.done) return;  // a second answer to the same request is ignored
    slot.done = true;
    mute_for(mute);
    if (const auto& observe = loop_.server->options.on_request_done)
      observe(peer_.listener, slot.api_key,
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - slot.received));
    unqueue(std::exchange(slot.request_bytes, 0));
    slot.kind = kind;
    slot.data = std::move(data);
    // Release every answered request at the front, in order.
    while (!slots_.empty() && slots_.front().done) {
      Slot& front = slots_.front();
      if (front.kind == Responder::Kind::bytes && !closing_) {
        out_.push_back(OutFrame{std::move(front.data), 0});
        out_bytes_ += out_.back().body.size() + 4;
      } else if (front.kind == Responder::Kind::close) {
        closing_ = true;
      }
      slots_.pop_front();
      ++first_seq_;
    }
    mark_dirty();
  }

  // Runs after the loop's events: writes what completed, resumes reading when slots freed up.
  void after_completions() {
    dirty_ = false;
    if (closed_) return;
    flush();
    if (closed_) return;
    maybe_resume();
    if (closed_) return;
    finish_if_done();
    if (!closed_) update_interest();
  }

  void close(bool notify = true) {
    if (closed_) return;
    closed_ = true;
    unqueue(queued_held_);
    epoll_ctl(loop_.epoll_fd, EPOLL_CTL_DEL, fd_, nullptr);
    if (ssl_ && handshake_done_) {
      SSL_shutdown(ssl_.get());  // best effort close_notify; the socket is nonblocking
      ERR_clear_error();
    }
    ::shutdown(fd_, SHUT_RDWR);
    loop_.server->heap.connection_closed();
    if (notify) loop_.server->handler->on_connection_closed(peer_, state_.get());
    state_.reset();
    auto it = loop_.connections.find(peer_.connection_id);
    if (it != loop_.connections.end()) {
      loop_.graveyard.push_back(std::move(it->second));
      loop_.connections.erase(it);
    }
  }

  // Connections the server stopped reading are neither idle nor late: the wait is the server's.
  bool idle_for(Clock::time_point now, std::chrono::milliseconds limit) const {
    return !paused_ && slots_.empty() && out_.empty() && now - last_activity_ >= limit;
  }
  // A TLS handshake, or a request whose first byte arrived, that is not complete within `limit`.
  bool receive_overdue(Clock::time_point now, std::chrono::milliseconds limit) const {
    if (paused_) return false;
    if (ssl_ && !handshake_done_) return now - created_ >= limit;
    return frame_open() && now - frame_started_ >= limit;
  }
  std::string receive_state() const {
    if (ssl_ && !handshake_done_) return "TLS handshake not finished";
    return fmt::format("{} of {} request bytes", in_body_ ? body_.size() : 0,
                       in_body_ ? std::to_string(body_size_) : "(size unknown)");
  }
  // queued.max.request.bytes allows new requests again.
  void memory_available() {
    waiting_for_memory_ = false;
    if (closed_) return;
    maybe_resume();
    if (!closed_) update_interest();
  }
  const PeerInfo& peer() const { return peer_; }

 private:
  struct Slot {
    bool done = false;
    std::int16_t api_key = -1;
    Clock::time_point received;   // when the whole request had arrived (for ServerOptions::on_request_done)
    std::size_t request_bytes = 0;  // counted in ServerImpl::queued_request_bytes until answered
    Responder::Kind kind = Responder::Kind::none;
    Bytes data;
  };
  struct OutFrame {
    Bytes body;
    std::size_t written = 0;  // of header + body
  };

  void mark_dirty() {
    if (!dirty_) {
      dirty_ = true;
      loop_.dirty.push_back(this);
    }
  }

  const std::string& where() const { return peer_.listener; }

  void handshake() {
    if (!peeked_) {
      // Keep the first bytes so a failure can tell plaintext or HTTP from TLS.
      ssize_t n = ::recv(fd_, notes_->first_bytes, sizeof notes_->first_bytes, MSG_PEEK);
      if (n == 0) {
        log::debug("listener {}: {}:{} closed before the TLS handshake", where(), peer_.remote_address, peer_.remote_port);
        close();
        return;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        close();
        return;
      }
      notes_->first_bytes_len = static_cast<std::uint8_t>(n);
      peeked_ = true;
    }
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
      handshake_done_ = true;
      last_activity_ = Clock::now();
      tls::attach_notes(ssl_.get(), nullptr);
      notes_.reset();
      if (X509* cert = SSL_get1_peer_certificate(ssl_.get())) {
        peer_.client_certificate.reset(cert);
        peer_.client_subject = tls::subject_rfc2253(cert);
        // A resumed session skipped verification: its certificate may have been revoked since.
        if (SSL_session_reused(ssl_.get()) && tls_->revoked(cert)) {
          const auto facts = tls::certificate_facts(cert);
          if (const auto& observe = loop_.server->options.on_handshake_failed) observe(peer_.listener, "revoked");
          loop_.server->handshake_failures->failed(
              peer_.remote_address, where() + "revoked",
              fmt::format("listener {}: TLS session resumed by {}:{} refused: the client's certificate ({}, serial {}) "
                          "is revoked: the CRL of {} lists it, so the client needs a new certificate",
                          where(), peer_.remote_address, peer_.remote_port, facts.subject, facts.serial, facts.issuer));
          close();
          return;
        }
      }
      log::debug("listener {}: TLS with {}:{} established ({}, {}), client {}", where(), peer_.remote_address,
                 peer_.remote_port, SSL_get_version(ssl_.get()), SSL_get_cipher_name(ssl_.get()),
                 peer_.client_subject.empty() ? "without certificate" : peer_.client_subject);
      read_some();
      if (!closed_) update_interest();
      return;
    }
    const int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_WANT_READ) {
      set_interest(EPOLLIN);
      return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      set_interest(EPOLLOUT);
      return;
    }
    tls::HandshakeFailure failure;
    failure.server_side = true;
    failure.ssl_error = err;
    failure.error_code = ERR_peek_error();
    failure.sys_errno = errno;
    failure.verify_result = SSL_get_verify_result(ssl_.get());
    failure.client_auth = client_auth_;
    failure.notes = notes_.get();
    failure.own_certificate = SSL_get_certificate(ssl_.get());
    const std::string why = tls::explain_handshake_failure(failure);
    if (const auto& observe = loop_.server->options.on_handshake_failed) observe(peer_.listener, tls::failure_class(failure));
    ERR_clear_error();
    loop_.server->handshake_failures->failed(
        peer_.remote_address, where() + why,
        fmt::format("listener {}: TLS handshake with {}:{} failed: {}", where(), peer_.remote_address, peer_.remote_port, why));
    close();
  }

  // Requests still unanswered or answered but not yet written both count: a client that sends without
  // reading must not make the server buffer responses without bound.
  // A connection that was throttled once is served as Kafka serves every connection: one request at a
  // time, so requests pipelined behind a throttled one wait in the socket instead of adding to the
  // client's excess.
  bool paused_for_in_flight() const {
    const std::size_t limit = throttled_ ? 1 : loop_.server->options.max_in_flight_per_connection;
    return slots_.size() + out_.size() >= limit ||
           out_bytes_ + (tls_stage_.size() - tls_stage_used_) >= kMaxBufferedOutput;
  }

  bool frame_open() const { return header_got_ > 0 || in_body_; }

  // Whether a new request may not start yet: too many in flight, or queued.max.request.bytes exceeded
  // (then the loop resumes this connection once the queued bytes drain).
  bool must_wait_before_next_frame() {
    if (paused_for_in_flight() || muted()) return true;
    if (!loop_.server->over_queued_limit()) return false;
    if (!waiting_for_memory_) {
      waiting_for_memory_ = true;
      loop_.memory_waiters.push_back(peer_.connection_id);
      report(LimitKind::queued_request_bytes,
             fmt::format("listener {}, {}:{}: {} bytes queued, queued.max.request.bytes={}", where(),
                         peer_.remote_address, peer_.remote_port, loop_.server->queued_request_bytes.load(),
                         loop_.server->options.max_queued_request_bytes));
    }
    return true;
  }

  void report(LimitKind kind, std::string detail) { loop_.server->reporter->hit(kind, std::move(detail)); }

  // Throttled (Responder::respond with a mute): true until the mute ends, when a timer resumes reading.
  bool muted() {
    const auto now = Clock::now();
    if (muted_until_ <= now) return false;
    if (!unmute_timer_) {
      unmute_timer_ = true;
      detail::LoopImpl* loop = &loop_;
      const std::uint64_t id = peer_.connection_id;
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(muted_until_ - now);
      loop_.self->run_after(wait, [loop, id] {
        if (auto it = loop->connections.find(id); it != loop->connections.end()) it->second->mute_ended();
      });
    }
    return true;
  }

 public:
  void mute_ended() {
    unmute_timer_ = false;
    if (closed_) return;
    maybe_resume();
    if (!closed_) update_interest();
  }

 private:

  void queue(std::size_t bytes) {
    if (!loop_.server->counts_queued_bytes()) return;
    queued_held_ += bytes;
    loop_.server->queued_request_bytes.fetch_add(static_cast<std::int64_t>(bytes));
  }
  void unqueue(std::size_t bytes) {
    if (bytes == 0 || !loop_.server->counts_queued_bytes()) return;
    queued_held_ -= bytes;
    loop_.server->unqueue(bytes);
  }

  void maybe_resume() {
    if (closed_ || closing_ || eof_ || !paused_ || must_wait_before_next_frame()) return;
    paused_ = false;
    read_some();
  }

  void read_some() {
    if (closed_ || closing_ || eof_) return;
    if (!stash_.empty()) {
      std::size_t used = feed(ByteView(stash_).subspan(stash_used_));
      stash_used_ += used;
      if (closed_) return;
      if (stash_used_ < stash_.size()) {
        paused_ = true;
        return;
      }
      Bytes().swap(stash_);
      stash_used_ = 0;
    }
    for (int round = 0; round < 16; ++round) {
      if (!frame_open() && must_wait_before_next_frame()) {
        paused_ = true;
        return;
      }
      ssize_t n;
      if (ssl_) {
        ERR_clear_error();
        const int r = SSL_read(ssl_.get(), loop_.scratch.data(), static_cast<int>(loop_.scratch.size()));
        if (r <= 0) {
          const int err = SSL_get_error(ssl_.get(), r);
          if (err == SSL_ERROR_WANT_READ) return;
          if (err == SSL_ERROR_WANT_WRITE) {
            read_wants_write_ = true;  // e.g. answering a KeyUpdate while the socket is full
            return;
          }
          if (err == SSL_ERROR_ZERO_RETURN) {
            on_eof();
            return;
          }
          log::debug("listener {}: TLS read from {}:{} failed: {}", where(), peer_.remote_address, peer_.remote_port,
                     openssl_errors());
          close();
          return;
        }
        n = r;
      } else {
        n = ::read(fd_, loop_.scratch.data(), loop_.scratch.size());
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) return;
          if (errno == EINTR) continue;
          log::debug("listener {}: read from {}:{} failed: {}", where(), peer_.remote_address, peer_.remote_port,
                     errno_text(errno));
          close();
          return;
        }
        if (n == 0) {
          on_eof();
          return;
        }
      }
      last_activity_ = Clock::now();
      ByteView data(loop_.scratch.data(), static_cast<std::size_t>(n));
      std::size_t used = feed(data);
      if (closed_ || closing_) return;
      if (used < data.size()) {
        // Too many requests in flight: keep the rest (at most one read) until some are answered.
        stash_.assign(data.begin() + static_cast<std::ptrdiff_t>(used), data.end());
        stash_used_ = 0;
        paused_ = true;
        return;
      }
    }
    // Still more to read: come back after other connections had their turn. TLS may hold decrypted
    // bytes that epoll cannot see, so ask for another round explicitly.
    if (ssl_ && SSL_has_pending(ssl_.get())) {
      std::uint64_t id = peer_.connection_id;
      detail::LoopImpl* loop = &loop_;
      loop_.self->post([loop, id] {
        auto it = loop->connections.find(id);
        if (it != loop->connections.end()) it->second->on_event(EPOLLIN);
      });
    }
  }

  // The client closed its side: like Kafka, drop the connection and whatever it still waits for
  // (a client that half-closes cannot be told apart from one that is gone, and nothing should hold a
  // connection open on behalf of a peer that left).
  void on_eof() {
    eof_ = true;
    close();
  }

  // Closes once a half-closed or closing connection has nothing more to write.
  void finish_if_done() {
    if (closed_) return;
    if (closing_ && out_.empty() && tls_stage_.empty() && !tls_output_buffered()) {
      close();
    } else if (eof_ && slots_.empty() && out_.empty() && tls_stage_.empty() && !tls_output_buffered()) {
      close();
    }
  }

  // Consumes framed requests from data; returns how much was used (less when a new request must wait).
  std::size_t feed(ByteView data) {
    std::size_t pos = 0;
    while (pos < data.size() && !closed_ && !closing_) {
      if (!in_body_) {
        if (header_got_ == 0) {
          if (must_wait_before_next_frame()) break;
          frame_started_ = Clock::now();
        }
        while (header_got_ < 4 && pos < data.size()) header_[header_got_++] = data[pos++];
        if (header_got_ < 4) break;
        if (!start_body()) return pos;
      }
      pos += append_body(data.subspan(pos));
      if (body_.size() < body_size_) break;
      in_body_ = false;
      header_got_ = 0;
      dispatch(std::exchange(body_, Bytes()));
    }
    return pos;
  }

  // Checks the size in the 4-byte header against this connection's limit before anything is buffered;
  // closes the connection (false) when it is out of range.
  bool start_body() {
    const auto& options = loop_.server->options;
    const std::int32_t size = static_cast<std::int32_t>(static_cast<std::uint32_t>(header_[0]) << 24 |
                                                        static_cast<std::uint32_t>(header_[1]) << 16 |
                                                        static_cast<std::uint32_t>(header_[2]) << 8 | header_[3]);
    const std::size_t limit = std::min(frame_limit_, options.max_frame_bytes);
    if (size > 0 && static_cast<std::size_t>(size) <= limit) {
      body_size_ = static_cast<std::size_t>(size);
      in_body_ = true;
      return true;
    }
    const bool before_login = size > 0 && static_cast<std::size_t>(size) <= options.max_frame_bytes;
    const char* hint = header_[0] == 'G' || header_[0] == 'P' || header_[0] == 'H' ? " - is this an HTTP client?"
                       : header_[0] == 0x16 ? " - is this a TLS client on a plaintext port?"
                                            : "";
    report(before_login ? LimitKind::frame_too_large_before_login : LimitKind::frame_too_large,
           fmt::format("listener {}, {}:{}: request size {}, limit {}{}", where(), peer_.remote_address,
                       peer_.remote_port, size, limit, hint));
    close();
    return false;
  }

  // Appends what belongs to the current request. The buffer grows with the bytes that arrive, never past
  // the announced size, so announcing a large size pins no memory by itself. Past the first 64 KiB it
  // jumps to 4 MiB (or the whole request) and doubles from there: a 1 MiB produce request is copied
  // once more, not four times over (64 -> 128 -> ... -> 1024 KiB), and a client must send 64 KiB to
  // pin 4 MiB.
  std::size_t append_body(ByteView data) {
    const std::size_t take = std::min(body_size_ - body_.size(), data.size());
    if (body_.size() + take > body_.capacity()) {
      const std::size_t grown = body_.size() >= kScratchBytes ? std::max(body_.capacity() * 2, kBodyJumpBytes)
                                                              : body_.capacity() * 2;
      body_.reserve(std::min(body_size_, std::max(body_.size() + take, grown)));
    }
    body_.insert(body_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    queue(take);
    return take;
  }

  void dispatch(Bytes frame) {
    const std::uint64_t seq = first_seq_ + slots_.size();
    slots_.emplace_back();
    if (frame.size() >= 2) slots_.back().api_key = static_cast<std::int16_t>(frame[0] << 8 | frame[1]);
    slots_.back().received = Clock::now();
    if (loop_.server->counts_queued_bytes()) slots_.back().request_bytes = frame.size();  // counted in append_body
    Responder responder(loop_.shared, peer_.connection_id, seq);
    RequestContext ctx{peer_, state_, *loop_.self, frame_limit_};
    loop_.server->handler->on_request(ctx, std::move(frame), std::move(responder));
  }

  void flush() {
    write_wants_read_ = false;
    if (ssl_) {
      flush_tls();
    } else {
      flush_plain();
    }
    if (!closed_ && out_.empty() && tls_stage_.empty()) finish_if_done();
  }

  void flush_plain() {
    while (!out_.empty()) {
      iovec iov[kMaxIov];
      std::array<std::uint8_t, 4> headers[kMaxIov / 2];
      int count = 0;
      for (std::size_t i = 0; i < out_.size() && i < kMaxIov / 2; ++i) {
        OutFrame& f = out_[i];
        if (f.written < 4) {
          headers[i] = size_header(f.body.size());
          iov[count++] = iovec{headers[i].data() + f.written, 4 - f.written};
          iov[count++] = iovec{f.body.data(), f.body.size()};
        } else {
          iov[count++] = iovec{f.body.data() + (f.written - 4), f.body.size() - (f.written - 4)};
        }
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(count);
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        log::debug("listener {}: write to {}:{} failed: {}", where(), peer_.remote_address, peer_.remote_port,
                   errno_text(errno));
        close();
        return;
      }
      last_activity_ = Clock::now();
      consume_written(static_cast<std::size_t>(n));
    }
  }

  void consume_written(std::size_t n) {
    while (n > 0 && !out_.empty()) {
      OutFrame& f = out_.front();
      const std::size_t left = f.body.size() + 4 - f.written;
      if (n < left) {
        f.written += n;
        out_bytes_ -= n;
        return;
      }
      n -= left;
      out_bytes_ -= left;
      out_.pop_front();
    }
  }

  // Records the buffering write BIO holds but the socket has not taken yet.
  bool tls_output_buffered() const { return ssl_ && BIO_wpending(SSL_get_wbio(ssl_.get())) > 0; }

  void flush_tls() {
    write_tls_records();
    if (closed_ || !tls_output_buffered()) return;
    ERR_clear_error();
    if (BIO_flush(SSL_get_wbio(ssl_.get())) <= 0 && !BIO_should_retry(SSL_get_wbio(ssl_.get()))) {
      log::debug("listener {}: TLS write to {}:{} failed: {}", where(), peer_.remote_address, peer_.remote_port,
                 openssl_errors());
      close();
    }
  }

  // Encrypts queued frames into the write BIO (which passes them to the socket as it fills).
  void write_tls_records() {
    for (;;) {
      if (tls_stage_used_ == tls_stage_.size() && !out_.empty() && out_.front().body.size() >= kDirectTlsFrameBytes) {
        if (!write_tls_frame_directly()) return;
        continue;
      }
      if (tls_stage_used_ == tls_stage_.size()) {
        // Batch frames into large SSL_write calls: fewer, fuller TLS records. The buffer is kept while
        // more output is queued (no allocation churn under load) and released once the connection is idle.
        tls_stage_used_ = 0;
        if (out_.empty()) {
          Bytes().swap(tls_stage_);
          return;
        }
        tls_stage_.clear();
        std::size_t want = 0;
        for (const auto& f : out_) {
          if (want > 0 && (want + f.body.size() + 4 > kTlsStageBytes || f.body.size() >= kDirectTlsFrameBytes)) break;
          want += f.body.size() + 4;
        }
        tls_stage_.reserve(want);
        while (!out_.empty() && tls_stage_.size() + out_.front().body.size() + 4 <= std::max(want, std::size_t{4})) {
          OutFrame& f = out_.front();
          const auto h = size_header(f.body.size());
          tls_stage_.insert(tls_stage_.end(), h.begin(), h.end());
          tls_stage_.insert(tls_stage_.end(), f.body.begin(), f.body.end());
          out_bytes_ -= f.body.size() + 4;
          out_.pop_front();
        }
      }
      const int r = ssl_write(tls_stage_.data() + tls_stage_used_, tls_stage_.size() - tls_stage_used_);
      if (r <= 0) return;
      tls_stage_used_ += static_cast<std::size_t>(r);
    }
  }

  // The front frame, straight from its body: its 4-byte size goes in a small record of its own. False
  // when the socket is full or the connection failed.
  bool write_tls_frame_directly() {
    OutFrame& f = out_.front();
    int r;
    if (f.written < 4) {
      const auto h = size_header(f.body.size());
      r = ssl_write(h.data() + f.written, 4 - f.written);
    } else {
      r = ssl_write(f.body.data() + (f.written - 4), f.body.size() + 4 - f.written);
    }
    if (r <= 0) return false;
    consume_written(static_cast<std::size_t>(r));
    return true;
  }

  // One SSL_write (partial writes are on): the bytes taken, or 0 when the socket is full or the
  // connection failed (and is closed).
  int ssl_write(const std::uint8_t* data, std::size_t size) {
    ERR_clear_error();
    const int r = SSL_write(ssl_.get(), data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (r > 0) {
      last_activity_ = Clock::now();
      return r;
    }
    const int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_WANT_READ) write_wants_read_ = true;
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return 0;
    log::debug("listener {}: TLS write to {}:{} failed: {}", where(), peer_.remote_address, peer_.remote_port,
               openssl_errors());
    close();
    return 0;
  }

  void update_interest() {
    std::uint32_t want = 0;
    const bool pending_out = !out_.empty() || tls_stage_used_ < tls_stage_.size() || tls_output_buffered();
    if (pending_out || read_wants_write_) want |= EPOLLOUT;
    if ((!paused_ && !eof_ && !closing_) || write_wants_read_) want |= EPOLLIN;
    set_interest(want);
  }

  void set_interest(std::uint32_t want) {
    if (closed_ || want == events_) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = static_cast<Pollable*>(this);
    if (epoll_ctl(loop_.epoll_fd, EPOLL_CTL_MOD, fd_, &ev) == 0) events_ = want;
  }

  detail::LoopImpl& loop_;
  int fd_;
  PeerInfo peer_;
  std::unique_ptr<ConnectionState> state_;
  SslPtr ssl_;
  std::shared_ptr<const tls::ServerTlsContext> tls_;  // the listener's, for the CRL in force
  tls::ClientAuth client_auth_;
  std::unique_ptr<tls::HandshakeNotes> notes_;
  std::size_t limit_index_;
  std::string address_key_;
  std::size_t frame_limit_;  // see RequestContext::frame_limit
  Clock::time_point created_;
  Clock::time_point last_activity_;
  Clock::time_point frame_started_;  // first byte of the request being read
  std::size_t queued_held_ = 0;      // this connection's share of ServerImpl::queued_request_bytes
  bool waiting_for_memory_ = false;  // listed in LoopImpl::memory_waiters
  Clock::time_point muted_until_{};  // no new request is read before then (quota throttling)
  bool unmute_timer_ = false;
  bool throttled_ = false;           // muted once: one request in flight from then on
  std::uint32_t events_ = 0;
  bool closed_ = false, closing_ = false, eof_ = false, paused_ = false, dirty_ = false;
  bool handshake_done_ = false, peeked_ = false, read_wants_write_ = false, write_wants_read_ = false;
  // Framing of the request being read.
  std::uint8_t header_[4] = {};
  std::uint8_t header_got_ = 0;
  bool in_body_ = false;
  std::size_t body_size_ = 0;
  Bytes body_;
  Bytes stash_;  // read but not yet framed while in-flight was full
  std::size_t stash_used_ = 0;
  // Ordering: slots_[i] is request first_seq_ + i.
  std::deque<Slot> slots_;
  std::uint64_t first_seq_ = 0;
  std::deque<OutFrame> out_;
  std::size_t out_bytes_ = 0;
  Bytes tls_stage_;
  std::size_t tls_stage_used_ = 0;
};

// ---- Responder ----

void Responder::respond(Bytes frame) { complete(Kind::bytes, std::move(frame)); }
void Responder::respond_none() { complete(Kind::none, {}); }
void Responder::respond(Bytes frame, std::chrono::milliseconds mute) { complete(Kind::bytes, std::move(frame), mute); }
void Responder::respond_none(std::chrono::milliseconds mute) { complete(Kind::none, {}, mute); }
void Responder::close_connection() { complete(Kind::close, {}); }

void Responder::complete(Kind kind, Bytes data, std::chrono::milliseconds mute) {
  if (!loop_) return;
  auto shared = std::move(loop_);  // exactly once: later calls on this copy do nothing
  if (shared->thread_id.load() == std::this_thread::get_id()) {
    shared->loop->impl().complete(connection_id_, sequence_, static_cast<int>(kind), std::move(data), mute);
    return;
  }
  std::lock_guard lock(shared->mutex);
  if (shared->stopped) return;
  EventLoop* loop = shared->loop;
  shared->tasks.push_back([loop, id = connection_id_, seq = sequence_, kind, d = std::move(data), mute]() mutable {
    loop->impl().complete(id, seq, static_cast<int>(kind), std::move(d), mute);
  });
  std::uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(shared->wake_fd, &one, sizeof one);
}

// ---- EventLoop ----

EventLoop::EventLoop(std::unique_ptr<detail::LoopImpl> impl) : impl_(std::move(impl)) { impl_->self = this; }

EventLoop::~EventLoop() {
  if (impl_) {
    {
      std::lock_guard lock(impl_->shared->mutex);
      impl_->shared->stopped = true;
      impl_->shared->tasks.clear();
      if (impl_->shared->wake_fd >= 0) ::close(impl_->shared->wake_fd);
      impl_->shared->wake_fd = -1;
    }
    if (impl_->epoll_fd >= 0) ::close(impl_->epoll_fd);
  }
}

void EventLoop::post(std::function<void()> fn) {
  std::lock_guard lock(impl_->shared->mutex);
  if (impl_->shared->stopped) return;
  impl_->shared->tasks.push_back(std::move(fn));
  std::uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(impl_->shared->wake_fd, &one, sizeof one);
}

TimerId EventLoop::run_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  std::lock_guard lock(impl_->shared->mutex);
  const TimerId id = impl_->next_timer++;
  const auto when = Clock::now() + delay;
  impl_->timers.emplace(id, std::make_pair(when, std::move(fn)));
  impl_->timer_order.emplace(when, id);
  std::uint64_t one = 1;
  if (!impl_->shared->stopped) {
    [[maybe_unused]] auto w = ::write(impl_->shared->wake_fd, &one, sizeof one);
  }
  return id;
}

void EventLoop::cancel(TimerId id) {
  std::lock_guard lock(impl_->shared->mutex);
  impl_->timers.erase(id);  // its timer_order entry is skipped when it comes due
}

bool EventLoop::in_loop_thread() const { return impl_->shared->thread_id.load() == std::this_thread::get_id(); }

void EventLoop::mute_connection(std::uint64_t connection_id, std::chrono::milliseconds mute) {
  post([impl = impl_.get(), connection_id, mute] {
    if (auto it = impl->connections.find(connection_id); it != impl->connections.end()) it->second->mute_for(mute);
  });
}

void detail::LoopImpl::complete(std::uint64_t connection_id, std::uint64_t sequence, int kind, Bytes data,
                                std::chrono::milliseconds mute) {
  auto it = connections.find(connection_id);
  if (it == connections.end()) return;  // closed meanwhile: nothing to do
  it->second->complete(sequence, kind, std::move(data), mute);
}

void detail::LoopImpl::close_all() {
  while (!connections.empty()) connections.begin()->second->close();
  graveyard.clear();
}

void detail::LoopImpl::limits_scan() {
  const auto& options = server->options;
  const auto now = Clock::now();
  std::vector<std::pair<Connection*, LimitKind>> doomed;
  for (auto& [id, conn] : connections) {
    if (conn->receive_overdue(now, options.request_receive_timeout)) {
      doomed.emplace_back(conn.get(), LimitKind::request_deadline);
    } else if (conn->idle_for(now, options.idle_timeout)) {
      doomed.emplace_back(conn.get(), LimitKind::idle);
    }
  }
  for (auto [conn, kind] : doomed) {
    const auto& peer = conn->peer();
    const auto limit = kind == LimitKind::idle ? options.idle_timeout : options.request_receive_timeout;
    server->reporter->hit(kind, fmt::format("listener {}, {}:{}: {} ms{}", peer.listener, peer.remote_address,
                                            peer.remote_port, limit.count(),
                                            kind == LimitKind::idle ? "" : ", " + conn->receive_state()));
    conn->close();
  }
  resume_memory_waiters();  // also here, in case a wake-up was missed
  if (this == &server->loops.front()->impl()) {
    server->reporter->flush(now);
    server->handshake_failures->flush(now);
    server->heap.maybe_trim(now);
  }
}

void detail::LoopImpl::resume_memory_waiters() {
  if (memory_waiters.empty() || server->over_queued_limit()) return;
  for (std::uint64_t id : std::exchange(memory_waiters, {})) {
    if (auto it = connections.find(id); it != connections.end()) it->second->memory_available();
  }
}

void detail::LoopImpl::run() {
  shared->thread_id.store(std::this_thread::get_id());
  epoll_event events[256];
  std::vector<std::function<void()>> tasks;
  const auto shortest = std::min(server->options.idle_timeout, server->options.request_receive_timeout);
  const auto scan_every = std::clamp(std::min(shortest / 4, server->options.limit_log_interval),
                                     std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  auto next_scan = Clock::now() + scan_every;
  while (running) {
    int timeout_ms = static_cast<int>(scan_every.count());
    {
      std::lock_guard lock(shared->mutex);
      auto now = Clock::now();
      auto next = next_scan;
      if (!timer_order.empty()) next = std::min(next, timer_order.begin()->first);
      timeout_ms = next <= now ? 0
                               : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1);
      if (!shared->tasks.empty()) timeout_ms = 0;
    }
    const int n = epoll_wait(epoll_fd, events, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        std::uint64_t value;
        [[maybe_unused]] auto r = ::read(shared->wake_fd, &value, sizeof value);
        continue;
      }
      static_cast<Pollable*>(events[i].data.ptr)->on_event(events[i].events);
    }
    {
      std::lock_guard lock(shared->mutex);
      tasks.swap(shared->tasks);
    }
    for (auto& task : tasks) task();
    tasks.clear();
    // Due timers, run without the lock so they may add or cancel timers.
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard lock(shared->mutex);
        if (timer_order.empty() || timer_order.begin()->first > Clock::now()) break;
        const TimerId id = timer_order.begin()->second;
        timer_order.erase(timer_order.begin());
        auto it = timers.find(id);
        if (it == timers.end()) continue;
        fn = std::move(it->second.second);
        timers.erase(it);
      }
      fn();
    }
    if (Clock::now() >= next_scan) {
      limits_scan();
      next_scan = Clock::now() + scan_every;
    }
    // Flush completed responses, batching everything completed in this iteration per connection.
    for (std::size_t i = 0; i < dirty.size(); ++i) dirty[i]->after_completions();
    dirty.clear();
    graveyard.clear();
  }
  close_all();
  std::lock_guard lock(shared->mutex);
  shared->stopped = true;
  shared->thread_id.store(std::thread::id());
  shared->tasks.clear();
  timers.clear();
  timer_order.clear();
}

// ---- Server ----

Server::Server(ServerOptions options, RequestHandler& handler) : impl_(std::make_unique<detail::ServerImpl>()) {
  impl_->options = options;
  if (impl_->options.threads < 1) impl_->options.threads = 1;
  if (impl_->options.max_in_flight_per_connection < 1) impl_->options.max_in_flight_per_connection = 1;
  impl_->options.request_receive_timeout = std::max(impl_->options.request_receive_timeout, std::chrono::milliseconds(1));
  impl_->options.idle_timeout = std::max(impl_->options.idle_timeout, std::chrono::milliseconds(1));
  impl_->reporter = std::make_unique<LimitReporter>(impl_->options.limit_log_interval);
  impl_->handshake_failures = std::make_unique<HandshakeFailureLog>(impl_->options.limit_log_interval);
  impl_->handler = &handler;
}

Server::~Server() { stop(); }

Status Server::add_listener(ListenerSpec spec) {
  if (impl_->started) return make_error(ErrorKind::invalid_argument, "add listeners before start()");
  if (uses_tls(spec.protocol) && !spec.tls) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("listener {} is {} but has no TLS context (set ssl.keystore.*)", spec.name,
                                  to_string(spec.protocol)));
  }
  for (const auto& l : impl_->listeners) {
    if (l->spec.name == spec.name) {
      return make_error(ErrorKind::already_exists, fmt::format("listener {} is defined twice", spec.name));
    }
  }
  std::string host = spec.host.empty() ? "0.0.0.0" : spec.host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(spec.port);
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("listener {}: cannot resolve host \"{}\": {}", spec.name, host, gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(ErrorKind::io, fmt::format("listener {}: socket: {}", spec.name, errno_text(errno)));
  auto listener = std::make_unique<ListenerState>();
  listener->fd = fd;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
    return make_error(ErrorKind::io, fmt::format("listener {}: cannot bind {}:{}: {}", spec.name, host, spec.port,
                                                 errno_text(errno)));
  }
  if (::listen(fd, 1024) != 0) {
    return make_error(ErrorKind::io, fmt::format("listener {}: listen: {}", spec.name, errno_text(errno)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  std::string bound_host;
  format_address(bound, bound_host, listener->port);
  listener->server = impl_.get();
  listener->spec = std::move(spec);
  log::info("listener {} ({}) bound to {}:{}", listener->spec.name, to_string(listener->spec.protocol), bound_host,
            listener->port);
  impl_->listeners.push_back(std::move(listener));
  return Status::success();
}

Status Server::start() {
  if (impl_->started) return make_error(ErrorKind::invalid_argument, "the server is already started");
  ConnectionLimitSettings limit_settings{impl_->options.max_connections, impl_->options.max_connections_per_ip,
                                         impl_->options.max_connections_per_ip_overrides};
  auto limits = ConnectionLimits::create(std::move(limit_settings));
  if (!limits.ok()) return limits.error();
  impl_->limits = std::move(*limits);
  for (auto& listener : impl_->listeners) {
    listener->limit_index =
        impl_->limits->add_listener(listener->spec.max_connections, listener->spec.counts_toward_broker_limit);
  }
  // Writes to a peer that went away must be an error value, not a process-killing signal (OpenSSL's
  // socket BIO uses write(), which cannot pass MSG_NOSIGNAL).
  ::signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < impl_->options.threads; ++i) {
    auto impl = std::make_unique<detail::LoopImpl>();
    impl->server = impl_.get();
    impl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    impl->shared->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl->epoll_fd < 0 || impl->shared->wake_fd < 0) {
      return make_error(ErrorKind::io, "cannot create an event loop: " + errno_text(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->shared->wake_fd, &ev);
    auto* raw = impl.get();
    impl_->loops.push_back(std::unique_ptr<EventLoop>(new EventLoop(std::move(impl))));
    raw->shared->loop = impl_->loops.back().get();
  }
  // One acceptor (loop 0) spreads connections round-robin over the loops.
  detail::LoopImpl* acceptor = &impl_->loops.front()->impl();
  for (auto& listener : impl_->listeners) {
    listener->loop = acceptor;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = static_cast<Pollable*>(listener.get());
    if (epoll_ctl(acceptor->epoll_fd, EPOLL_CTL_ADD, listener->fd, &ev) != 0) {
      return make_error(ErrorKind::io, "epoll_ctl(listener): " + errno_text(errno));
    }
  }
  impl_->started = true;
  for (std::size_t i = 0; i < impl_->loops.size(); ++i) {
    detail::LoopImpl* impl = &impl_->loops[i]->impl();
    impl->thread = std::thread([impl, name = "bw-net-" + std::to_string(i)] {
      pthread_setname_np(pthread_self(), name.c_str());  // what top -H and /proc/<pid>/task/*/comm show
      impl->run();
    });
  }
  return Status::success();
}

void detail::ServerImpl::accept_on(ListenerState& listener) {
  for (int accepted = 0; accepted < 256; ++accepted) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning on a readable socket.
        conn_log.info("listener {}: cannot accept: {}; pausing accepts for 100 ms", listener.spec.name,
                      errno_text(errno));
        epoll_ctl(listener.loop->epoll_fd, EPOLL_CTL_DEL, listener.fd, nullptr);
        ListenerState* l = &listener;
        listener.loop->self->run_after(std::chrono::milliseconds(100), [l] {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = static_cast<Pollable*>(l);
          epoll_ctl(l->loop->epoll_fd, EPOLL_CTL_ADD, l->fd, &ev);
        });
        return;
      }
      log::warn("listener {}: accept failed: {}", listener.spec.name, errno_text(errno));
      return;
    }
    PeerInfo peer;
    format_address(addr, peer.remote_address, peer.remote_port);
    std::string address_key = ConnectionLimits::canonical_address(peer.remote_address);
    if (Refusal refusal = limits->try_acquire(listener.limit_index, address_key); refusal != Refusal::none) {
      refuse(listener, peer, address_key, refusal);
      ::close(fd);  // as Kafka does: the new connection is closed, the listener keeps accepting
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peer.connection_id = next_connection_id.fetch_add(1);
    peer.listener = listener.spec.name;
    peer.protocol = listener.spec.protocol;
    const bool sasl = peer.protocol == SecurityProtocol::sasl_plaintext || peer.protocol == SecurityProtocol::sasl_ssl;
    const std::size_t frame_limit = sasl ? options.max_frame_bytes_before_login : SIZE_MAX;
    SslPtr ssl;
    if (uses_tls(listener.spec.protocol)) {
      ssl.reset(SSL_new(listener.spec.tls->current().get()));
      if (!ssl || SSL_set_fd(ssl.get(), fd) != 1 || !gather_tls_writes(ssl.get(), fd)) {
        log::warn("listener {}: cannot create a TLS session: {}", listener.spec.name, openssl_errors());
        ::close(fd);
        limits->release(listener.limit_index, address_key);
        continue;
      }
      SSL_set_accept_state(ssl.get());
    }
    detail::LoopImpl* target = &loops[next_loop++ % loops.size()]->impl();
    auto conn = std::make_shared<std::unique_ptr<Connection>>(
        std::make_unique<Connection>(*target, fd, std::move(peer), std::move(ssl), listener.spec.tls, listener.limit_index,
                                     std::move(address_key), frame_limit));
    auto adopt = [target, conn] {
      Connection* c = conn->get();
      if (Status s = c->register_fd(); !s.ok()) {
        log::warn("cannot watch a new connection: {}", s.error().message);
        return;  // the Connection destructor closes the socket
      }
      target->connections.emplace(c->peer().connection_id, std::move(*conn));
    };
    if (target == listener.loop) {
      adopt();
    } else {
      target->self->post(adopt);  // if the loop has stopped, the task is dropped and the socket closed
    }
  }
}

void detail::ServerImpl::refuse(const ListenerState& listener, const PeerInfo& peer, const std::string& address,
                                 Refusal why) {
  const std::string who = fmt::format("listener {}, {}:{}", listener.spec.name, peer.remote_address, peer.remote_port);
  switch (why) {
    case Refusal::broker_limit:
      reporter->hit(LimitKind::broker_connections, fmt::format("{}: max.connections={}", who, limits->broker_limit()));
      break;
    case Refusal::listener_limit:
      reporter->hit(LimitKind::listener_connections,
                    fmt::format("{}: listener limit {}", who, limits->listener_limit(listener.limit_index)));
      break;
    case Refusal::per_ip_limit:
      reporter->hit(LimitKind::per_ip_connections,
                    fmt::format("{}: {} connections allowed from {}", who, limits->limit_for_address(address), address));
      break;
    case Refusal::none: break;
  }
}

void Server::stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& loop : impl_->loops) {
    detail::LoopImpl* impl = &loop->impl();
    loop->post([impl] { impl->running = false; });
  }
  for (auto& loop : impl_->loops) {
    if (loop->impl().thread.joinable()) loop->impl().thread.join();
  }
  impl_->listeners.clear();
  impl_->loops.clear();
}

std::uint16_t Server::bound_port(const std::string& listener) const {
  for (const auto& l : impl_->listeners) {
    if (l->spec.name == listener) return l->port;
  }
  return 0;
}

std::size_t Server::connection_count() const { return impl_->limits ? impl_->limits->total() : 0; }

std::vector<std::pair<std::string, std::size_t>> Server::connections_per_listener() const {
  std::vector<std::pair<std::string, std::size_t>> out;
  if (!impl_->limits) return out;
  for (const auto& listener : impl_->listeners)
    out.emplace_back(listener->spec.name, impl_->limits->listener_open(listener->limit_index));
  return out;
}

std::uint64_t Server::limit_hits(LimitKind kind) const { return impl_->reporter->hits(kind); }

}  // namespace bulwark::net
