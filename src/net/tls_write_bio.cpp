#include "net/tls_write_bio.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace bulwark::net {
namespace {

using Buffer = std::unique_ptr<unsigned char[]>;

// A few buffers per thread cover the connections that are sending at the same moment; more would only
// be memory that nobody uses between bursts.
constexpr std::size_t kPooledPerThread = 4;

std::atomic<std::size_t> in_use{0};
thread_local std::vector<Buffer> pool;

Buffer take_buffer() {
  in_use.fetch_add(1, std::memory_order_relaxed);
  if (pool.empty()) return std::make_unique_for_overwrite<unsigned char[]>(kGatherBufferBytes);
  Buffer b = std::move(pool.back());
  pool.pop_back();
  return b;
}

void give_back(Buffer& b) {
  if (!b) return;
  in_use.fetch_sub(1, std::memory_order_relaxed);
  if (pool.size() < kPooledPerThread) pool.push_back(std::move(b));
  b.reset();
}

struct Gather {
  int fd = -1;
  Buffer buf;
  std::size_t begin = 0, end = 0;  // unsent bytes are buf[begin, end)

  std::size_t pending() const { return end - begin; }

  // Sends what is gathered: 1 when all of it went, 0 when the socket is full, -1 on an error (errno set).
  int send_out() {
    while (begin < end) {
      const ssize_t n = ::send(fd, buf.get() + begin, end - begin, MSG_NOSIGNAL);
      if (n > 0) {
        begin += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return 0;
      } else {
        return -1;
      }
    }
    begin = end = 0;
    return 1;
  }

  void compact() {
    if (begin == 0) return;
    std::memmove(buf.get(), buf.get() + begin, end - begin);
    end -= begin;
    begin = 0;
  }
};

Gather& state(BIO* b) { return *static_cast<Gather*>(BIO_get_data(b)); }

int gather_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  Gather& g = state(b);
  const auto want = static_cast<std::size_t>(len);
  if (g.buf && kGatherBufferBytes - g.end < want) {
    if (g.send_out() < 0) return -1;
    g.compact();
  }
  if (!g.buf) g.buf = take_buffer();
  const std::size_t room = kGatherBufferBytes - g.end;
  if (room == 0) {
    BIO_set_retry_write(b);  // the socket is full and so is the buffer: OpenSSL retries on EPOLLOUT
    return -1;
  }
  const std::size_t n = std::min(room, want);  // OpenSSL handles short writes
  std::memcpy(g.buf.get() + g.end, data, n);
  g.end += n;
  return static_cast<int>(n);
}

long gather_flush(BIO* b, Gather& g) {
  if (!g.buf) return 1;
  const int r = g.send_out();
  if (r == 1) {
    give_back(g.buf);
    return 1;
  }
  if (r == 0) BIO_set_retry_write(b);
  return r;
}

long gather_ctrl(BIO* b, int cmd, long num, void* ptr) {
  Gather& g = state(b);
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      BIO_clear_retry_flags(b);
      return gather_flush(b, g);
    case BIO_CTRL_WPENDING: return static_cast<long>(g.pending());
    case BIO_CTRL_PENDING: return 0;
    case BIO_C_GET_FD:
      if (ptr != nullptr) *static_cast<int*>(ptr) = g.fd;
      return g.fd;
    case BIO_CTRL_GET_CLOSE: return BIO_NOCLOSE;
    case BIO_CTRL_SET_CLOSE: return num == BIO_NOCLOSE ? 1 : 0;  // the connection owns the socket
    default: return 0;
  }
}

int gather_create(BIO* b) {
  BIO_set_data(b, new Gather);
  BIO_set_init(b, 1);
  return 1;
}

int gather_destroy(BIO* b) {
  if (b == nullptr) return 0;
  auto* g = static_cast<Gather*>(BIO_get_data(b));
  if (g != nullptr) give_back(g->buf);
  delete g;
  BIO_set_data(b, nullptr);
  return 1;
}

BIO_METHOD* gather_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bulwark gathering socket");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, gather_write);
    BIO_meth_set_ctrl(m, gather_ctrl);
    BIO_meth_set_create(m, gather_create);
    BIO_meth_set_destroy(m, gather_destroy);
    return m;
  }();
  return method;
}

}  // namespace

BIO* new_gathering_socket_bio(int fd) {
  BIO_METHOD* m = gather_method();
  if (m == nullptr) return nullptr;
  BIO* b = BIO_new(m);
  if (b != nullptr) state(b).fd = fd;
  return b;
}

std::size_t gather_buffers_in_use() { return in_use.load(std::memory_order_relaxed); }
std::size_t gather_buffers_pooled() { return pool.size(); }

}  // namespace bulwark::net
