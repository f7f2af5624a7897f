// Network layer numbers, printed for humans (not a timed test):
//  1. request/response echo throughput over PLAINTEXT and SSL in the same run, with the ratio;
//  2. server memory per idle connection (TLS and plaintext), with the clients in a child process so
//     only the server's memory is counted.
// Usage: net_bench [idle_connections=2000]
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "bench_certs.h"
#include "net/server.h"

using namespace bulwark;
using bench::make_cert;
using Clock = std::chrono::steady_clock;

namespace {

struct Pki {
  EvpPkeyPtr ca_key, server_key;
  X509Ptr ca, server;
};

Pki make_pki() {
  Pki p;
  p.ca_key.reset(EVP_EC_gen("P-256"));
  p.server_key.reset(EVP_EC_gen("P-256"));
  p.ca = make_cert("Bench CA", p.ca_key.get(), nullptr, nullptr, 1, nullptr);
  p.server = make_cert("bench-broker", p.server_key.get(), p.ca.get(), p.ca_key.get(), 2, "IP:127.0.0.1");
  return p;
}

tls::TlsSettings server_settings(const Pki& p) {
  tls::TlsSettings s;
  keystore::PrivateKeyEntry e;
  e.alias = "broker";
  e.key = share(p.server_key.get());
  e.chain.push_back(share(p.server.get()));
  e.chain.push_back(share(p.ca.get()));
  s.keystore.keys.push_back(std::move(e));
  return s;
}

tls::TlsSettings client_settings(const Pki& p) {
  tls::TlsSettings s;
  s.truststore.trusted.push_back({"ca", share(p.ca.get())});
  return s;
}

class Echo : public net::RequestHandler {
 public:
  void on_request(net::RequestContext&, Bytes frame, net::Responder responder) override {
    responder.respond(std::move(frame));
  }
};

// A blocking client connection, TLS or not.
struct Conn {
  int fd = -1;
  SslPtr ssl;
  ~Conn() {
    ssl.reset();
    if (fd >= 0) ::close(fd);
  }
  bool open(std::uint16_t port, const tls::ClientTlsContext* ctx) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx) {
      auto s = ctx->new_ssl("127.0.0.1");
      if (!s.ok()) return false;
      ssl = std::move(s.value());
      SSL_set_fd(ssl.get(), fd);
      if (SSL_connect(ssl.get()) != 1) return false;
    }
    return true;
  }
  bool write_all(const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      long r = ssl ? SSL_write(ssl.get(), p, static_cast<int>(n)) : ::send(fd, p, n, MSG_NOSIGNAL);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  // Buffered reads on both paths (plaintext here, TLS via read_ahead) so the client does not spend two
  // syscalls per small response and the comparison measures the server.
  std::vector<std::uint8_t> rbuf = std::vector<std::uint8_t>(256 * 1024);
  std::size_t rpos = 0, rlen = 0;
  bool read_all(std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      if (rpos == rlen) {
        long r = ssl ? SSL_read(ssl.get(), rbuf.data(), static_cast<int>(rbuf.size()))
                     : ::recv(fd, rbuf.data(), rbuf.size(), 0);
        if (r <= 0) return false;
        rpos = 0;
        rlen = static_cast<std::size_t>(r);
      }
      const std::size_t take = std::min(n, rlen - rpos);
      std::memcpy(p, rbuf.data() + rpos, take);
      rpos += take;
      p += take;
      n -= take;
    }
    return true;
  }
};

struct Throughput {
  double mb_per_s = 0, requests_per_s = 0;
};

// One connection, a writer thread pipelining `count` requests of `size` bytes, this thread reading the
// echoes. The server's max_in_flight and TCP flow control bound the pipeline.
Throughput run_echo(std::uint16_t port, const tls::ClientTlsContext* ctx, std::size_t size, std::size_t count) {
  Conn c;
  if (!c.open(port, ctx)) {
    std::fprintf(stderr, "connect failed\n");
    std::exit(1);
  }
  std::vector<std::uint8_t> frame(size + 4, 'x');
  frame[0] = static_cast<std::uint8_t>(size >> 24);
  frame[1] = static_cast<std::uint8_t>(size >> 16);
  frame[2] = static_cast<std::uint8_t>(size >> 8);
  frame[3] = static_cast<std::uint8_t>(size);
  // Batch small frames into one write so the client is not the bottleneck.
  // At most ~2 MiB outstanding: this blocking client does not read while it writes, so more could fill
  // both directions' socket buffers and deadlock against the server's backpressure.
  const std::size_t window = std::max<std::size_t>(2, 2 * 1024 * 1024 / frame.size());
  const std::size_t per_write = std::min(window, std::max<std::size_t>(1, 64 * 1024 / frame.size()));
  std::vector<std::uint8_t> batch;
  for (std::size_t i = 0; i < per_write; ++i) batch.insert(batch.end(), frame.begin(), frame.end());
  // Same pattern for both protocols (an SSL object cannot be read and written from two threads): keep
  // up to `window` requests outstanding, write them in large batches, read half the window back.
  const auto begin = Clock::now();
  std::vector<std::uint8_t> in(frame.size());
  std::size_t sent = 0, received = 0;
  while (received < count) {
    while (sent < count && sent - received < window) {
      const std::size_t n = std::min({per_write, count - sent, window - (sent - received)});
      if (!c.write_all(batch.data(), n * frame.size())) std::exit(1);
      sent += n;
    }
    const std::size_t to_read = std::max<std::size_t>(1, std::min(window / 2, sent - received));
    for (std::size_t i = 0; i < to_read; ++i) {
      if (!c.read_all(in.data(), in.size())) std::exit(1);
    }
    received += to_read;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  return Throughput{2.0 * static_cast<double>(size * count) / seconds / 1e6, static_cast<double>(count) / seconds};
}

struct Memory {
  long rss_kib = 0;
  std::size_t heap_bytes = 0;
};

Memory memory_now() {
  Memory m;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_kib = std::atol(line.c_str() + 6);
  }
  struct mallinfo2 mi = mallinfo2();
  m.heap_bytes = mi.uordblks + mi.hblkhd;
  return m;
}

// Child: opens n connections (TLS when tls), does one echo on each so the server finished the
// handshake, reports on the pipe, waits for the parent to finish measuring, exits.
[[noreturn]] void idle_clients(int port_pipe, int ready_pipe, int done_pipe, const Pki& pki) {
  std::uint16_t port = 0;
  bool tls = false;
  int n = 0;
  if (read(port_pipe, &port, sizeof port) != sizeof port || read(port_pipe, &tls, sizeof tls) != sizeof tls ||
      read(port_pipe, &n, sizeof n) != sizeof n) {
    _exit(1);
  }
  std::shared_ptr<tls::ClientTlsContext> ctx;
  if (tls) ctx = tls::make_client_context(client_settings(pki)).value();
  std::vector<std::unique_ptr<Conn>> conns;
  const std::uint8_t ping[5] = {0, 0, 0, 1, 'p'};
  std::uint8_t pong[5];
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<Conn>();
    if (!c->open(port, ctx.get()) || !c->write_all(ping, 5) || !c->read_all(pong, 5)) _exit(2);
    conns.push_back(std::move(c));
  }
  char ok = 1;
  if (write(ready_pipe, &ok, 1) != 1) _exit(3);
  if (read(done_pipe, &ok, 1) != 1) _exit(4);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int idle = argc > 1 ? std::atoi(argv[1]) : 2000;
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  log::set_level(log::Level::warn);
  const Pki pki = make_pki();

  // Fork the idle-connection client before any thread exists.
  int to_child[2], from_child[2], done[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0 || pipe(done) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) idle_clients(to_child[0], from_child[1], done[0], pki);

  Echo echo;
  net::ServerOptions options;
  options.threads = 1;  // one loop thread; the client uses the other core
  net::Server server(options, echo);
  auto ctx = tls::make_server_context(server_settings(pki));
  if (!ctx.ok()) {
    std::fprintf(stderr, "%s\n", ctx.error().message.c_str());
    return 1;
  }
  if (!server.add_listener({"PLAIN", "127.0.0.1", 0, net::SecurityProtocol::plaintext, nullptr}).ok() ||
      !server.add_listener({"TLS", "127.0.0.1", 0, net::SecurityProtocol::ssl, *ctx}).ok() || !server.start().ok()) {
    return 1;
  }
  auto client_ctx = tls::make_client_context(client_settings(pki)).value();
  SSL_CTX_set_read_ahead(client_ctx->current().get(), 1);

  // --- memory per idle connection (before the throughput runs grow the heap) ---
  auto measure_idle = [&](const char* name, std::uint16_t port, bool tls) {
    const Memory before = memory_now();
    if (write(to_child[1], &port, sizeof port) != sizeof port || write(to_child[1], &tls, sizeof tls) != sizeof tls ||
        write(to_child[1], &idle, sizeof idle) != sizeof idle) {
      std::exit(1);
    }
    char ok = 0;
    if (read(from_child[0], &ok, 1) != 1) {
      std::fprintf(stderr, "idle clients failed\n");
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const Memory after = memory_now();
    std::printf("idle %-9s connections: %d open (server has %zu); RSS +%ld KiB = %.1f KiB/conn; heap +%zu KiB = %.1f KiB/conn\n",
                name, idle, server.connection_count(), after.rss_kib - before.rss_kib,
                static_cast<double>(after.rss_kib - before.rss_kib) / idle, (after.heap_bytes - before.heap_bytes) / 1024,
                static_cast<double>(after.heap_bytes - before.heap_bytes) / 1024.0 / idle);
  };
  measure_idle("TLS", server.bound_port("TLS"), true);
  char go = 1;
  if (write(done[1], &go, 1) != 1) return 1;
  int status = 0;
  waitpid(child, &status, 0);
  for (int i = 0; i < 200 && server.connection_count() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  // --- throughput ---
  struct Case {
    std::size_t size, count;
  };
  for (Case c : {Case{100, 300000}, Case{1024, 200000}, Case{16 * 1024, 40000}, Case{256 * 1024, 2500}}) {
    const Throughput plain = run_echo(server.bound_port("PLAIN"), nullptr, c.size, c.count);
    const Throughput tls = run_echo(server.bound_port("TLS"), client_ctx.get(), c.size, c.count);
    std::printf("echo %7zu B x %6zu: PLAINTEXT %8.1f MB/s %9.0f req/s | SSL %8.1f MB/s %9.0f req/s | SSL/PLAINTEXT %.2f\n",
                c.size, c.count, plain.mb_per_s, plain.requests_per_s, tls.mb_per_s, tls.requests_per_s,
                tls.mb_per_s / plain.mb_per_s);
  }
  server.stop();
  return 0;
}
