// bulwark probe: each step of a client's connection, observed and explained (see client/probe.h).
#include "client/probe.h"

#include <arpa/inet.h>
#include <errno.h>
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

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstring>
#include <ctime>
#include <optional>

#include "security/authorizer.h"
#include "security/principal.h"
#include "tls/certificates.h"
#include "wire/generated/api_versions.h"
#include "wire/generated/describe_cluster.h"
#include "wire/generated/metadata.h"
#include "wire/generated/sasl_handshake.h"
#include "wire/protocol.h"

namespace bulwark::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int16_t kUnknownTopicOrPartition = 3;
constexpr std::int16_t kTopicAuthorizationFailed = 29;
constexpr std::int16_t kUnsupportedSaslMechanism = 33;
constexpr std::int16_t kIllegalSaslState = 34;
constexpr std::int16_t kUnsupportedVersion = 35;
constexpr std::int32_t kMaxResponseBytes = 100 * 1024 * 1024;
constexpr std::int64_t kExpiryWarningDays = 30;

// The report's lines, in this order.
enum Step {
  tcp_step,
  tls_step,
  certificate_step,
  host_step,
  client_cert_step,
  api_versions_step,
  sasl_step,
  metadata_step,
  principal_step,
  step_count
};
constexpr std::array<const char*, step_count> kStepNames = {
    "TCP", "TLS", "certificate", "host name", "client cert", "ApiVersions", "SASL", "Metadata", "principal"};

std::string join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
  return out;
}

std::string ms_text(Clock::time_point start) {
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return ms < 10 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.0f} ms", ms);
}

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// False on timeout (or a poll failure, which the next read or write reports).
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ms = remaining_ms(deadline);
    if (ms == 0) return false;
    const int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

bool is_ip_literal(std::string_view host) {
  const std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

// "the server" in tls::explain_handshake_failure's words is the broker here.
std::string in_broker_words(std::string text) {
  constexpr std::string_view kPrefix = "the TLS handshake failed: ";
  if (std::string_view(text).starts_with(kPrefix)) text.erase(0, kPrefix.size());
  for (std::string_view from : {"the server", "The server"}) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
      text.replace(at, from.size(), from[0] == 't' ? "the broker" : "The broker");
    }
  }
  return text;
}

// ---- TCP -----------------------------------------------------------------------------------------

struct TcpOutcome {
  int fd = -1;
  std::string address;  // the numeric address connected to (or last tried)
  std::string problem;
  std::string fix;
};

std::string numeric_address(const addrinfo* ai) {
  char host[NI_MAXHOST] = {};
  if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return "?";
  return host;
}

// 0 when connected, else the errno (ETIMEDOUT on our own deadline).
int connect_one(int fd, const addrinfo* ai, Clock::time_point deadline) {
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  if (!wait_fd(fd, POLLOUT, deadline)) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

TcpOutcome connect_tcp(const HostPort& server, std::chrono::milliseconds timeout) {
  TcpOutcome out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(server.port);
  if (int rc = ::getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    out.problem = fmt::format("cannot resolve {}: {}", server.host, ::gai_strerror(rc));
    out.fix = "check the host name (DNS, /etc/hosts), or give the broker's IP address";
    return out;
  }
  const auto deadline = Clock::now() + timeout;
  int last_error = 0;
  for (addrinfo* ai = found; ai != nullptr && out.fd < 0; ai = ai->ai_next) {
    out.address = numeric_address(ai);
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    last_error = connect_one(fd, ai, deadline);
    if (last_error == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      out.fd = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (out.fd >= 0) return out;
  if (last_error == ECONNREFUSED) {
    out.problem = fmt::format("{} port {}: connection refused, nothing listens there", out.address, server.port);
    out.fix = "check that the broker runs and that its listeners= has this host and port";
  } else if (last_error == ETIMEDOUT) {
    out.problem = fmt::format("{} port {}: no answer within {} ms", out.address, server.port, timeout.count());
    out.fix = "a firewall may drop the packets, or the host is down or not the broker";
  } else {
    out.problem = fmt::format("{} port {}: {}", out.address, server.port, std::strerror(last_error));
    out.fix = "check the address and the network route to it";
  }
  return out;
}

// ---- The probe's own connection ------------------------------------------------------------------

// Why a read, write or handshake on the probe's connection failed, kept for the explanations.
struct Trouble {
  std::string what;
  int ssl_error = 0;
  unsigned long error_code = 0;  // OpenSSL's first error code
  int sys_errno = 0;
  bool closed = false;      // the broker hung up
  bool tls_answer = false;  // a plaintext request got TLS bytes back
  bool timed_out = false;
};

// What the handshake showed of the broker: its chain and every verification problem (the probe's
// verify callback lets the handshake go on so that all of them are seen), and whether it asked for a
// client certificate.
struct VerifyProblem {
  int error = X509_V_OK;
  int depth = 0;
  tls::CertificateFacts facts;  // of the certificate the problem is about
};
struct TlsObservation {
  std::vector<X509Ptr> sent_chain;         // what the broker sent, leaf first
  std::vector<std::string> verified_path;  // subjects of the chain built against our trust, leaf first
  std::vector<VerifyProblem> problems;
  bool certificate_requested = false;
  std::vector<std::string> accepted_client_cas;  // the CA names the broker listed in its request
};

int observation_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void record_verification(TlsObservation& seen, int preverify_ok, X509_STORE_CTX* store) {
  if (seen.sent_chain.empty()) {
    if (STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(store)) {
      for (int i = 0; i < sk_X509_num(sent); ++i) seen.sent_chain.push_back(share(sk_X509_value(sent, i)));
    } else if (X509* leaf = X509_STORE_CTX_get0_cert(store)) {
      seen.sent_chain.push_back(share(leaf));
    }
  }
  seen.verified_path.clear();
  if (STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store)) {
    for (int i = 0; i < sk_X509_num(chain); ++i)
      seen.verified_path.push_back(tls::subject_rfc2253(sk_X509_value(chain, i)));
  }
  if (preverify_ok) return;
  VerifyProblem problem;
  problem.error = X509_STORE_CTX_get_error(store);
  problem.depth = X509_STORE_CTX_get_error_depth(store);
  if (X509* cert = X509_STORE_CTX_get_current_cert(store)) problem.facts = tls::certificate_facts(cert);
  for (const auto& p : seen.problems)
    if (p.error == problem.error && p.depth == problem.depth) return;
  seen.problems.push_back(std::move(problem));
}

// Accepts every chain, so the handshake gets as far as it can; the probe judges the chain afterwards
// and sends nothing that matters on a connection whose broker did not verify.
int observe_verification(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* seen = ssl != nullptr ? static_cast<TlsObservation*>(SSL_get_ex_data(ssl, observation_index())) : nullptr;
  if (seen == nullptr) return preverify_ok;
  record_verification(*seen, preverify_ok, store);
  return 1;
}

// Called by OpenSSL only when the broker sends a CertificateRequest.
int note_certificate_request(SSL* ssl, void* arg) {
  auto* seen = static_cast<TlsObservation*>(arg);
  seen->certificate_requested = true;
  if (const STACK_OF(X509_NAME)* names = SSL_get0_peer_CA_list(ssl)) {
    seen->accepted_client_cas.clear();
    for (int i = 0; i < sk_X509_NAME_num(names); ++i) {
      seen->accepted_client_cas.push_back(tls::name_rfc2253(sk_X509_NAME_value(names, i)));
    }
  }
  return 1;
}

struct ProbeWire {
  int fd = -1;
  SslPtr ssl;
  std::chrono::milliseconds timeout{30000};
  std::string client_id;
  std::int32_t next_correlation_id = 1;

  ProbeWire() = default;
  ProbeWire(const ProbeWire&) = delete;
  ProbeWire& operator=(const ProbeWire&) = delete;
  ~ProbeWire() { close(); }

  void close() {
    if (ssl) SSL_shutdown(ssl.get());  // best effort close_notify; never waits
    ssl.reset();
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void note_tls_failure(int rc, Trouble& t) {
    t.sys_errno = errno;
    t.ssl_error = SSL_get_error(ssl.get(), rc);
    t.error_code = ERR_peek_error();
    t.closed = t.ssl_error == SSL_ERROR_ZERO_RETURN || (t.ssl_error == SSL_ERROR_SYSCALL && t.error_code == 0) ||
               (t.error_code != 0 && ERR_GET_REASON(t.error_code) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
    ERR_clear_error();
  }

  bool timed_out(Trouble& t) const {
    t.timed_out = true;
    t.what = fmt::format("no answer within {} ms", timeout.count());
    return false;
  }

  // True when the TLS operation should be retried after waiting; false with `t` filled on failure.
  bool wait_for_tls(int rc, Clock::time_point deadline, Trouble& t) {
    const int err = SSL_get_error(ssl.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      return wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) || timed_out(t);
    }
    note_tls_failure(rc, t);
    return false;
  }

  bool handshake(Trouble& t) {
    const auto deadline = Clock::now() + timeout;
    ERR_clear_error();
    for (;;) {
      const int rc = SSL_connect(ssl.get());
      if (rc == 1) return true;
      if (!wait_for_tls(rc, deadline, t)) return false;
    }
  }

  bool write_all(ByteView data, Clock::time_point deadline, Trouble& t) {
    std::size_t done = 0;
    while (done < data.size()) {
      if (ssl) {
        ERR_clear_error();
        const int n = SSL_write(ssl.get(), data.data() + done, static_cast<int>(data.size() - done));
        if (n > 0)
          done += static_cast<std::size_t>(n);
        else if (!wait_for_tls(n, deadline, t))
          return false;
        continue;
      }
      const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait_fd(fd, POLLOUT, deadline)) return timed_out(t);
      } else if (n < 0 && errno != EINTR) {
        t.sys_errno = errno;
        t.closed = errno == EPIPE || errno == ECONNRESET;
        return false;
      }
    }
    return true;
  }

  bool read_exact(std::uint8_t* out, std::size_t size, Clock::time_point deadline, Trouble& t) {
    std::size_t done = 0;
    while (done < size) {
      if (ssl) {
        ERR_clear_error();
        const int n = SSL_read(ssl.get(), out + done, static_cast<int>(size - done));
        if (n > 0)
          done += static_cast<std::size_t>(n);
        else if (!wait_for_tls(n, deadline, t))
          return false;
        continue;
      }
      const ssize_t n = ::recv(fd, out + done, size - done, 0);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n == 0) {
        t.closed = true;
        return false;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_fd(fd, POLLIN, deadline)) return timed_out(t);
      } else if (errno != EINTR) {
        t.sys_errno = errno;
        t.closed = errno == ECONNRESET;
        return false;
      }
    }
    return true;
  }

  // One request/response round trip; the response body without its header.
  std::optional<Bytes> exchange(std::int16_t api_key, std::int16_t version, const Bytes& body, Trouble& t) {
    const std::int32_t correlation_id = next_correlation_id++;
    const Bytes frame = frame_request(api_key, version, correlation_id, client_id, body);
    const auto deadline = Clock::now() + timeout;
    std::uint8_t size_bytes[4];
    if (!write_all(frame, deadline, t) || !read_exact(size_bytes, 4, deadline, t)) return std::nullopt;
    if (!ssl && (size_bytes[0] == 0x15 || size_bytes[0] == 0x16) && size_bytes[1] == 0x03) {
      t.tls_answer = true;  // a TLS alert or handshake record where a Kafka response should be
      return std::nullopt;
    }
    const std::uint32_t size = std::uint32_t{size_bytes[0]} << 24 | std::uint32_t{size_bytes[1]} << 16 |
                               std::uint32_t{size_bytes[2]} << 8 | size_bytes[3];
    if (size < 4 || size > static_cast<std::uint32_t>(kMaxResponseBytes)) {
      t.what = fmt::format("the answer is not a Kafka response (a frame of {} bytes)", size);
      return std::nullopt;
    }
    Bytes response(size);
    if (!read_exact(response.data(), response.size(), deadline, t)) return std::nullopt;
    ByteReader reader(response);
    auto got = wire::decode_response_header(reader, api_key, version);
    if (!got || *got != correlation_id) {
      t.what = "the response header does not match the request";
      return std::nullopt;
    }
    return Bytes(response.begin() + static_cast<std::ptrdiff_t>(reader.position()), response.end());
  }
};

// ---- Classifying TLS failures --------------------------------------------------------------------

enum class TlsTrouble { not_tls, wants_certificate, refused_certificate, timed_out, other };

int reason_of(const Trouble& t) { return t.error_code != 0 ? ERR_GET_REASON(t.error_code) : 0; }

bool is_alert_about_a_certificate(int reason) {
  return reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN || reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE ||
         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED || reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED ||
         reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR;
}

bool is_not_tls(const Trouble& t) {
  const int reason = reason_of(t);
  return t.closed || t.sys_errno == ECONNRESET || reason == SSL_R_WRONG_VERSION_NUMBER ||
         reason == SSL_R_PACKET_LENGTH_TOO_LONG || reason == SSL_R_UNKNOWN_PROTOCOL || reason == SSL_R_HTTP_REQUEST ||
         reason == SSL_R_RECORD_LENGTH_MISMATCH;
}

// `broker_answered`: the broker's certificate arrived, so it speaks TLS; `sent`: we sent a certificate.
TlsTrouble classify(const Trouble& t, bool broker_answered, bool requested, bool sent) {
  const int reason = reason_of(t);
  if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) return TlsTrouble::wants_certificate;
  if (is_alert_about_a_certificate(reason))
    return sent ? TlsTrouble::refused_certificate : TlsTrouble::wants_certificate;
  // TLS 1.2: a broker requiring a certificate answers a missing one with a handshake_failure alert.
  if (reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE && requested && !sent) return TlsTrouble::wants_certificate;
  if (t.timed_out) return TlsTrouble::timed_out;
  if (!broker_answered && is_not_tls(t)) return TlsTrouble::not_tls;
  return TlsTrouble::other;
}

std::string tls_fix_for(const Trouble& t) {
  const int reason = reason_of(t);
  if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_VERSION_TOO_LOW ||
      reason == SSL_R_NO_PROTOCOLS_AVAILABLE || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) {
    return "make ssl.enabled.protocols overlap with the broker's (Bulwark speaks TLSv1.2 and TLSv1.3)";
  }
  if (reason == SSL_R_NO_SHARED_CIPHER || reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) {
    return "make ssl.cipher.suites overlap with the broker's (or leave it unset for the defaults)";
  }
  return "the broker's log says why it ended the handshake";
}

// Whether a TLS hello on a new connection gets a TLS answer: a handshake that completes, or an alert.
// Nothing is verified or sent beyond the hello; this only tells a TLS port from a plaintext one.
bool port_speaks_tls(const HostPort& server, std::chrono::milliseconds timeout) {
  auto tcp = connect_tcp(server, timeout);
  if (tcp.fd < 0) return false;
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  ProbeWire wire;
  wire.fd = tcp.fd;
  wire.timeout = timeout;
  if (!ctx) return false;
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  wire.ssl.reset(SSL_new(ctx.get()));
  if (!wire.ssl) return false;
  SSL_set_fd(wire.ssl.get(), wire.fd);
  Trouble t;
  if (wire.handshake(t)) return true;
  return reason_of(t) >= SSL_AD_REASON_OFFSET && !t.closed;  // the SSL_R_*_ALERT_* reasons
}

std::string certificate_words(const tls::CertificateFacts& facts) {
  return fmt::format("{}, serial {}", facts.subject, facts.serial);
}

}  // namespace

// ---- Pure pieces ---------------------------------------------------------------------------------

std::string_view probe_status_word(ProbeStatus status) {
  switch (status) {
    case ProbeStatus::ok:
      return "ok";
    case ProbeStatus::warn:
      return "warn";
    case ProbeStatus::fail:
      return "FAIL";
    case ProbeStatus::skip:
      return "skip";
  }
  return "?";
}

int ProbeReport::exit_code() const {
  for (const auto& step : steps)
    if (step.status == ProbeStatus::fail) return static_cast<int>(step.failure);
  return 0;
}

bool certificate_names_host(const X509* cert, std::string_view host) {
  if (cert == nullptr) return false;
  auto* x = const_cast<X509*>(cert);  // OpenSSL's check functions do not modify the certificate
  const std::string h(host);
  if (is_ip_literal(host)) return X509_check_ip_asc(x, h.c_str(), 0) == 1;
  return X509_check_host(x, h.data(), h.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
}

ProbeStep judge_host_name(const X509* leaf, std::string_view host, bool verify_hostname) {
  ProbeStep step{kStepNames[host_step], ProbeStatus::ok, {}, {}, ProbeFailure::none};
  const auto facts = tls::certificate_facts(leaf);
  const std::string sans = facts.sans.empty() ? "no SAN at all" : join(facts.sans);
  const char* option = is_ip_literal(host) ? "--ip" : "--dns";
  if (!verify_hostname) {
    step.status = ProbeStatus::warn;
    step.message =
        fmt::format("not checked (ssl.endpoint.identification.algorithm is empty); the certificate names {}", sans);
    step.fix =
        "set ssl.endpoint.identification.algorithm=https, or any certificate our CA issued could stand in for "
        "this broker";
    return step;
  }
  if (certificate_names_host(leaf, host)) {
    step.message = fmt::format("the certificate names {} (SANs: {})", host, sans);
    return step;
  }
  step.status = ProbeStatus::fail;
  step.failure = ProbeFailure::tls;
  step.message = fmt::format("the broker's certificate ({}) names {}, not {}", facts.subject, sans, host);
  step.fix = facts.sans.empty()
                 ? fmt::format("reissue it with SANs (clients ignore the CN): bulwark pki issue broker NAME {} {}",
                               option, host)
                 : fmt::format(
                       "dial one of the names it has, or reissue it with this one: bulwark pki issue broker NAME "
                       "{} {} (and keep the others)",
                       option, host);
  return step;
}

std::string render_authorized_operations(std::int32_t bits) {
  std::vector<std::string> names;
  for (int code = static_cast<int>(security::Operation::read);
       code <= static_cast<int>(security::Operation::describe_tokens); ++code) {
    if ((static_cast<std::uint32_t>(bits) >> code & 1U) == 0) continue;
    if (auto op = security::operation_from_code(static_cast<std::int8_t>(code)))
      names.emplace_back(security::name_of(*op));
  }
  return names.empty() ? "none" : join(names);
}

namespace {

// ---- The probe -----------------------------------------------------------------------------------

class Prober {
 public:
  Prober(const ProbeOptions& options, security::PrincipalMappingRules rules)
      : options_(options),
        settings_(options.settings),
        server_(options.settings.bootstrap_servers.front()),
        rules_(std::move(rules)) {
    wire_.timeout = settings_.timeout;
    wire_.client_id = settings_.client_id;
  }

  Status prepare() {
    if (!config::uses_tls(settings_.protocol)) return Status::success();
    auto material = load_tls_material(settings_.tls);
    if (!material) return material.error();
    auto context = tls::make_client_context(*material);
    if (!context) return context.error();
    context_ = std::move(*context);
    for (const X509* anchor : tls::trust_anchors(material->truststore))
      trusted_.push_back(tls::subject_rfc2253(anchor));
    return Status::success();
  }

  ProbeReport run() {
    report_.broker = server_.to_string();
    if (tcp() && tls() && api_versions() && sasl() && metadata()) principal();
    for (int i = 0; i < step_count; ++i) {
      if (!steps_[i]) steps_[i] = ProbeStep{kStepNames[i], ProbeStatus::skip, stop_reason_, {}, ProbeFailure::none};
      report_.steps.push_back(std::move(*steps_[i]));
    }
    return std::move(report_);
  }

 private:
  void add(Step step, ProbeStatus status, std::string message, std::string fix = {},
           ProbeFailure failure = ProbeFailure::none) {
    steps_[step] = ProbeStep{kStepNames[step], status, std::move(message), std::move(fix), failure};
  }
  bool fail(Step step, ProbeFailure failure, std::string message, std::string fix, std::string stop_reason) {
    add(step, ProbeStatus::fail, std::move(message), std::move(fix), failure);
    stop_reason_ = std::move(stop_reason);
    return false;
  }
  bool uses_tls() const { return config::uses_tls(settings_.protocol); }
  std::string protocol_name() const { return std::string(config::to_string(settings_.protocol)); }
  bool sent_certificate() const { return own_certificate_ && seen_.certificate_requested; }

  bool tcp() {
    const auto start = Clock::now();
    auto outcome = connect_tcp(server_, settings_.timeout);
    if (outcome.fd < 0) {
      return fail(tcp_step, ProbeFailure::tcp, outcome.problem, outcome.fix, "not tried: no TCP connection");
    }
    wire_.fd = outcome.fd;
    const std::string via = outcome.address == server_.host ? "" : fmt::format(" ({})", outcome.address);
    add(tcp_step, ProbeStatus::ok, fmt::format("{}{} connected in {}", server_.to_string(), via, ms_text(start)));
    return true;
  }

  // ---- TLS ----

  bool tls() {
    if (!uses_tls()) {
      const std::string why = fmt::format("not used (security.protocol={})", protocol_name());
      for (Step s : {tls_step, certificate_step, host_step, client_cert_step}) add(s, ProbeStatus::skip, why);
      return true;
    }
    const auto start = Clock::now();
    Trouble trouble;
    if (!start_tls(trouble)) {
      return fail(tls_step, ProbeFailure::tls, trouble.what, "check the TLS settings", "not tried: TLS did not start");
    }
    const bool done = wire_.handshake(trouble);
    const std::string took = ms_text(start);
    if (X509* own = SSL_get_certificate(wire_.ssl.get())) own_certificate_ = share(own);
    if (done) {
      add(tls_step, ProbeStatus::ok, negotiated() + ", handshake in " + took);
      return judge_broker();
    }
    const auto kind = classify(trouble, !seen_.sent_chain.empty(), seen_.certificate_requested, sent_certificate());
    if (kind == TlsTrouble::not_tls) return not_a_tls_port(trouble);
    if (kind == TlsTrouble::wants_certificate || kind == TlsTrouble::refused_certificate) {
      // TLS 1.2: the broker judged our certificate inside the handshake. What came before still counts.
      add(tls_step, ProbeStatus::ok, negotiated() + ", up to the client certificate");
      if (!judge_broker()) return false;
      return refused_our_certificate(kind, trouble);
    }
    const std::string what =
        kind == TlsTrouble::timed_out
            ? fmt::format("the broker did not finish the TLS handshake within {} ms", settings_.timeout.count())
            : "the TLS handshake failed: " + explain(trouble);
    const std::string fix = kind == TlsTrouble::timed_out ? "is this a TLS port? A plaintext listener waits for a "
                                                            "Kafka request and never answers a TLS hello"
                                                          : tls_fix_for(trouble);
    add(tls_step, ProbeStatus::fail, what, fix, ProbeFailure::tls);
    if (!seen_.sent_chain.empty()) judge_broker();
    stop_reason_ = "not tried: the TLS handshake failed";
    return false;
  }

  bool start_tls(Trouble& trouble) {
    auto ssl = context_->new_ssl(server_.host);
    if (!ssl) {
      trouble.what = ssl.error().message;
      return false;
    }
    wire_.ssl = std::move(*ssl);
    SSL* s = wire_.ssl.get();
    if (!settings_.tls.verify_hostname) {
      // ssl.endpoint.identification.algorithm= (empty): the chain is verified, the name is not.
      X509_VERIFY_PARAM* param = SSL_get0_param(s);
      X509_VERIFY_PARAM_set1_host(param, nullptr, 0);
      X509_VERIFY_PARAM_set1_ip(param, nullptr, 0);
    }
    SSL_set_ex_data(s, observation_index(), &seen_);
    SSL_set_verify(s, SSL_VERIFY_PEER, observe_verification);
    SSL_set_cert_cb(s, note_certificate_request, &seen_);
    SSL_set_fd(s, wire_.fd);
    return true;
  }

  std::string negotiated() const {
    const SSL_CIPHER* cipher = SSL_get_current_cipher(wire_.ssl.get());
    const char* name = cipher != nullptr ? SSL_CIPHER_standard_name(cipher) : nullptr;
    return fmt::format("{}, cipher {}", SSL_get_version(wire_.ssl.get()), name != nullptr ? name : "?");
  }

  std::string explain(const Trouble& t) const {
    tls::HandshakeFailure failure;
    failure.server_side = false;
    failure.ssl_error = t.ssl_error;
    failure.error_code = t.error_code;
    failure.sys_errno = t.sys_errno;
    failure.verify_result = X509_V_OK;  // the broker's chain is judged on its own line
    failure.own_certificate = own_certificate_.get();
    return in_broker_words(tls::explain_handshake_failure(failure));
  }

  bool not_a_tls_port(const Trouble& t) {
    const std::string what = t.closed ? "the broker closed the connection instead of answering the TLS handshake"
                                      : "the broker does not answer in TLS (" + explain(t) + ")";
    return fail(tls_step, ProbeFailure::tls, what,
                "this looks like a PLAINTEXT or SASL_PLAINTEXT listener: use security.protocol=PLAINTEXT (or "
                "SASL_PLAINTEXT) without --ca and ssl.* settings, or the broker's TLS port",
                "not tried: TLS did not start");
  }

  // The certificate and host-name steps; false when either fails (a client stops there).
  bool judge_broker() {
    if (seen_.sent_chain.empty()) {
      return fail(certificate_step, ProbeFailure::tls, "the broker sent no certificate", "the broker's log says why",
                  "not tried: the broker's certificate is unknown");
    }
    const X509* leaf = seen_.sent_chain.front().get();
    const bool chain_ok = judge_chain(tls::certificate_facts(leaf));
    steps_[host_step] = judge_host_name(leaf, server_.host, settings_.tls.verify_hostname);
    const bool host_ok = steps_[host_step]->status != ProbeStatus::fail;
    if (chain_ok && host_ok) return true;
    stop_reason_ = "not tried: a client stops when the broker's certificate does not verify, and sends it no request";
    return false;
  }

  bool judge_chain(const tls::CertificateFacts& leaf) {
    std::vector<const VerifyProblem*> problems;
    for (const auto& p : seen_.problems)
      if (p.error != X509_V_ERR_HOSTNAME_MISMATCH && p.error != X509_V_ERR_IP_ADDRESS_MISMATCH) problems.push_back(&p);
    if (problems.empty()) return chain_verified(leaf);
    std::string fix;
    std::string message = explain_chain_problem(*problems.front(), leaf, fix);
    for (std::size_t i = 1; i < problems.size(); ++i) {
      message += fmt::format("; also: {}", X509_verify_cert_error_string(problems[i]->error));
    }
    add(certificate_step, ProbeStatus::fail, message, fix, ProbeFailure::tls);
    return false;
  }

  bool chain_verified(const tls::CertificateFacts& leaf) {
    const std::string path = join(seen_.verified_path, " <- ");
    const std::int64_t days_left = (leaf.not_after - now_seconds()) / 86400;
    const std::string what = fmt::format("{}, issued by {}, valid until {}; chain {} verified against our truststore",
                                         certificate_words(leaf), leaf.issuer, tls::format_utc(leaf.not_after), path);
    if (days_left < kExpiryWarningDays) {
      add(certificate_step, ProbeStatus::warn, fmt::format("{}, but it expires in {} day(s)", what, days_left),
          "renew it soon (bulwark pki renew NAME, then export the keystore again: the broker reloads it)");
    } else {
      add(certificate_step, ProbeStatus::ok, what);
    }
    return true;
  }

  std::string explain_chain_problem(const VerifyProblem& p, const tls::CertificateFacts& leaf, std::string& fix) const {
    const auto& cert = p.depth == 0 || p.facts.subject.empty() ? leaf : p.facts;
    const std::string whose = p.depth == 0 ? "the broker's certificate" : "the CA certificate";
    const std::string in_chain = p.depth == 0 ? "" : " in the broker's chain";
    switch (p.error) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
        fix = p.depth == 0
                  ? "renew it on the broker (bulwark pki renew NAME, then export the keystore again: the broker "
                    "reloads it); if that date is still ahead, set this machine's clock"
                  : "renew that CA and reissue the broker's certificate from it";
        return fmt::format("{} ({}){} expired on {}", whose, certificate_words(cert), in_chain,
                           tls::format_utc(cert.not_after));
      case X509_V_ERR_CERT_NOT_YET_VALID:
        fix = "check the clocks of this machine and of the CA that issued it";
        return fmt::format("{} ({}){} is not valid until {} (it is {} here)", whose, certificate_words(cert), in_chain,
                           tls::format_utc(cert.not_before), tls::format_utc(now_seconds()));
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        fix =
            "give the CA that signed the broker's certificate: --ca FILE or ssl.truststore.location (with bulwark "
            "pki, DIR/ca/root.crt)";
        return untrusted_issuer(leaf, p.facts.issuer.empty() ? leaf.issuer : p.facts.issuer);
      default:
        fix = "look at the chain the broker serves: openssl s_client -connect HOST:PORT -showcerts";
        return fmt::format("{} ({}){} does not verify: {}", whose, certificate_words(cert), in_chain,
                           X509_verify_cert_error_string(p.error));
    }
  }

  std::string untrusted_issuer(const tls::CertificateFacts& leaf, const std::string& issuer) const {
    const std::string held = trusted_.empty() ? "nothing" : join(trusted_, "; ");
    if (std::find(trusted_.begin(), trusted_.end(), issuer) != trusted_.end()) {
      // Two `pki init`s give CAs of the same name: only the key tells them apart.
      return fmt::format(
          "the broker's certificate ({}) comes from a CA named {}, but not the one our truststore holds "
          "(same name, another key: another PKI)",
          certificate_words(leaf), issuer);
    }
    return fmt::format("the broker's certificate ({}) comes from {}, which our truststore does not hold (it holds: {})",
                       certificate_words(leaf), issuer, held);
  }

  // ---- Client certificate ----

  std::string accepted_cas_text() const {
    return seen_.accepted_client_cas.empty()
               ? std::string()
               : " (it accepts certificates issued by " + join(seen_.accepted_client_cas, "; ") + ")";
  }

  bool refused_our_certificate(TlsTrouble kind, const Trouble& t) {
    const std::string stop = "not tried: the broker refused the TLS connection";
    if (kind == TlsTrouble::wants_certificate) {
      return fail(client_cert_step, ProbeFailure::client_certificate,
                  "the broker requires a client certificate (ssl.client.auth=required) and we sent none",
                  "give --cert FILE --key FILE (or ssl.keystore.location) with a certificate from a CA the broker "
                  "trusts" +
                      accepted_cas_text(),
                  stop);
    }
    const auto own = tls::certificate_facts(own_certificate_.get());
    const int reason = reason_of(t);
    std::string fix;
    if (own.not_after <= now_seconds() || reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED) {
      fix = "renew our certificate (bulwark pki renew NAME) and export it again";
    } else if (reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED) {
      fix = "the broker's ssl.crl.location lists it: get a new certificate (bulwark pki renew NAME, export it again)";
    } else if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA) {
      fix = fmt::format(
          "use a certificate from a CA the broker trusts{}, or add {} to the broker's ssl.truststore.location",
          accepted_cas_text(), own.issuer);
    } else {
      fix = "the broker's log says why it refused the certificate";
    }
    return fail(client_cert_step, ProbeFailure::client_certificate, explain(t), fix, stop);
  }

  void certificate_accepted() {
    if (!uses_tls()) return;
    const auto own = tls::certificate_facts(own_certificate_.get());
    if (!seen_.certificate_requested && !own_certificate_) {
      add(client_cert_step, ProbeStatus::ok, "the broker does not ask for one (ssl.client.auth=none)");
    } else if (!seen_.certificate_requested) {
      add(client_cert_step, ProbeStatus::warn,
          fmt::format("the broker does not ask for one, so ours ({}) is not sent and does not make our principal",
                      own.subject),
          "for mutual TLS use a listener with ssl.client.auth=required");
    } else if (!own_certificate_) {
      add(client_cert_step, ProbeStatus::ok,
          "the broker asks for one but does not require it (ssl.client.auth=requested); we sent none");
    } else {
      add(client_cert_step, ProbeStatus::ok,
          fmt::format("the broker accepted ours: {}, issued by {}, valid until {}", certificate_words(own), own.issuer,
                      tls::format_utc(own.not_after)));
    }
  }

  // ---- ApiVersions ----

  std::optional<BrokerVersions> ask_api_versions(Trouble& t) {
    using wire::msg::ApiVersionsRequest;
    using wire::msg::ApiVersionsResponse;
    ApiVersionsRequest request;
    request.client_software_name = "bulwark-probe";
    request.client_software_version = "1.0";
    std::int16_t version = ApiVersionsRequest::highest_supported_version;
    for (int attempt = 0; attempt < 2; ++attempt) {
      ByteWriter body;
      request.encode(body, version);
      auto reply = wire_.exchange(ApiVersionsRequest::api_key, version, body.buffer(), t);
      if (!reply) return std::nullopt;
      ByteReader peek(*reply);
      std::int16_t error_code = 0;
      ByteReader reader(*reply);
      ApiVersionsResponse response;
      // An UNSUPPORTED_VERSION answer comes in v0 form.
      if (!peek.read_i16(error_code) || !response.decode(reader, error_code == kUnsupportedVersion ? 0 : version)) {
        t.what = "the ApiVersions response does not decode";
        return std::nullopt;
      }
      BrokerVersions versions;
      for (const auto& api : response.api_keys) versions[api.api_key] = {api.min_version, api.max_version};
      if (error_code == 0) return versions;
      if (error_code != kUnsupportedVersion || attempt > 0) break;
      version = choose_version(versions, ApiVersionsRequest::api_key, 0, version).value_or(0);
      t.what = fmt::format("the broker answered ApiVersions with {}", error_name(error_code));
    }
    if (t.what.empty()) t.what = "the broker refused ApiVersions";
    return std::nullopt;
  }

  std::string versions_text() const {
    std::vector<std::string> parts;
    for (std::int16_t key : {wire::msg::MetadataRequest::api_key, wire::msg::SaslHandshakeRequest::api_key,
                             wire::msg::DescribeClusterRequest::api_key}) {
      auto it = versions_.find(key);
      const auto* info = wire::find_api(key);
      if (it != versions_.end() && info != nullptr)
        parts.push_back(fmt::format("{} v{}..{}", info->name, it->second.min, it->second.max));
    }
    return fmt::format("{} APIs served ({})", versions_.size(), join(parts));
  }

  bool api_versions() {
    const auto start = Clock::now();
    Trouble t;
    auto versions = ask_api_versions(t);
    const std::string took = ms_text(start);
    if (!versions) return api_versions_failed(t);
    versions_ = std::move(*versions);
    certificate_accepted();
    if (!versions_.contains(wire::msg::MetadataRequest::api_key)) {
      return fail(api_versions_step, ProbeFailure::kafka, "the broker does not list Metadata",
                  "is this a Kafka broker?", "not tried: the broker serves no Metadata");
    }
    add(api_versions_step, ProbeStatus::ok, fmt::format("{}, answered in {}", versions_text(), took));
    return true;
  }

  bool api_versions_failed(const Trouble& t) {
    const std::string stop = "not tried: ApiVersions failed";
    if (uses_tls()) {
      const auto kind = classify(t, true, seen_.certificate_requested, sent_certificate());
      // TLS 1.3: the broker's verdict on our certificate arrives after our side finished the handshake.
      if (kind == TlsTrouble::wants_certificate || kind == TlsTrouble::refused_certificate) {
        return refused_our_certificate(kind, t);
      }
      add(client_cert_step, ProbeStatus::skip, "the broker's verdict is unknown: the connection failed first");
      const std::string what = t.ssl_error != 0 && !t.closed ? explain(t) : failure_words(t);
      return fail(api_versions_step, ProbeFailure::kafka, "no answer to ApiVersions: " + what,
                  "the broker's log says why it closed the connection", stop);
    }
    if (t.tls_answer) {
      return fail(api_versions_step, ProbeFailure::tls,
                  "the broker answered in TLS: this is a TLS listener (SSL or SASL_SSL)",
                  "use security.protocol=SSL (or SASL_SSL) and give --ca FILE or ssl.truststore.location", stop);
    }
    if (t.closed && port_speaks_tls(server_, settings_.timeout)) {
      return fail(api_versions_step, ProbeFailure::tls,
                  "the broker closed the connection without answering ApiVersions, and this port answers a TLS "
                  "handshake: it is a TLS listener (SSL or SASL_SSL)",
                  "use security.protocol=SSL (or SASL_SSL) and give --ca FILE or ssl.truststore.location", stop);
    }
    if (t.closed) {
      return fail(api_versions_step, ProbeFailure::kafka,
                  "the broker closed the connection without answering ApiVersions",
                  "the broker's log says why it closed the connection", stop);
    }
    return fail(api_versions_step, ProbeFailure::kafka, "no answer to ApiVersions: " + failure_words(t),
                "is this the port of a Kafka listener?", stop);
  }

  std::string failure_words(const Trouble& t) const {
    if (!t.what.empty()) return t.what;
    if (t.timed_out) return fmt::format("nothing within {} ms", settings_.timeout.count());
    if (t.closed) return "the broker closed the connection";
    if (t.sys_errno != 0) return std::strerror(t.sys_errno);
    return "the connection failed";
  }

  // ---- SASL ----

  std::optional<wire::msg::SaslHandshakeResponse> ask_sasl_mechanisms(const std::string& mechanism, Trouble& t) {
    using wire::msg::SaslHandshakeRequest;
    auto version = choose_version(versions_, SaslHandshakeRequest::api_key, 0, 1);
    if (!version) return std::nullopt;
    SaslHandshakeRequest request;
    request.mechanism = mechanism;
    ByteWriter body;
    request.encode(body, *version);
    auto reply = wire_.exchange(SaslHandshakeRequest::api_key, *version, body.buffer(), t);
    if (!reply) return std::nullopt;
    ByteReader reader(*reply);
    wire::msg::SaslHandshakeResponse response;
    if (!response.decode(reader, *version)) return std::nullopt;
    return response;
  }

  bool sasl() {
    const bool configured = config::uses_sasl(settings_.protocol);
    const std::string mechanism =
        configured ? std::string(security::sasl::name_of(settings_.sasl->mechanism)) : "PLAIN";
    Trouble t;
    // Asking for a mechanism sends no credential: the listing is safe to ask for on any listener.
    auto handshake = ask_sasl_mechanisms(mechanism, t);
    wire_.close();
    const bool sasl_listener = handshake && handshake->error_code != kIllegalSaslState;
    const std::string offered = handshake ? join(handshake->mechanisms) : std::string();
    const std::string stop = "not tried: the SASL step failed";
    if (!configured) {
      if (sasl_listener) {
        return fail(sasl_step, ProbeFailure::sasl,
                    fmt::format("this listener wants a SASL login (it offers {}) but security.protocol is {}",
                                offered.empty() ? "no mechanism" : offered, protocol_name()),
                    fmt::format("use security.protocol={} with sasl.mechanism and sasl.jaas.config",
                                uses_tls() ? "SASL_SSL" : "SASL_PLAINTEXT"),
                    stop);
      }
      add(sasl_step, ProbeStatus::skip,
          fmt::format("not used (security.protocol={}), and the listener does not ask for it", protocol_name()));
      return connect_admin();
    }
    if (!handshake) {
      return fail(sasl_step, ProbeFailure::sasl, "the broker did not answer SaslHandshake: " + failure_words(t),
                  "is this a SASL listener?", stop);
    }
    if (!sasl_listener) {
      return fail(sasl_step, ProbeFailure::sasl,
                  "this listener does not speak SASL (SaslHandshake: ILLEGAL_SASL_STATE)",
                  fmt::format("use security.protocol={} without sasl.* settings, or the broker's SASL port",
                              uses_tls() ? "SSL" : "PLAINTEXT"),
                  stop);
    }
    if (handshake->error_code == kUnsupportedSaslMechanism) {
      return fail(
          sasl_step, ProbeFailure::sasl,
          fmt::format("the listener does not offer {}; it offers {}", mechanism, offered.empty() ? "none" : offered),
          "set sasl.mechanism to one of those (PLAIN with PlainLoginModule, SCRAM-SHA-* with ScramLoginModule)", stop);
    }
    if (handshake->error_code != 0) {
      return fail(sasl_step, ProbeFailure::sasl, "SaslHandshake failed: " + error_name(handshake->error_code),
                  "the broker's log says why", stop);
    }
    return log_in(mechanism, offered);
  }

  bool log_in(const std::string& mechanism, const std::string& offered) {
    const std::string& user = settings_.sasl->username;
    auto admin = AdminConnection::connect(settings_);
    if (!admin) {
      std::string said = admin.error().message;
      if (const std::string prefix = server_.to_string() + ": "; said.starts_with(prefix)) said.erase(0, prefix.size());
      const std::string fix =
          settings_.sasl->mechanism == security::sasl::Mechanism::plain
              ? fmt::format(
                    "check the password in sasl.jaas.config: the broker's JAAS login for this listener "
                    "(listener.name.<listener>.plain.sasl.jaas.config) must hold user_{} with the same one",
                    user)
              : fmt::format("check the password, and that the broker has {} credentials for {} (bulwark scram list)",
                            mechanism, user);
      return fail(sasl_step, ProbeFailure::sasl, fmt::format("{} login as {} refused: {}", mechanism, user, said), fix,
                  "not tried: the SASL login failed");
    }
    admin_ = std::move(*admin);
    add(sasl_step, ProbeStatus::ok,
        fmt::format("{} login as {} accepted (the listener offers {})", mechanism, user, offered));
    return true;
  }

  bool connect_admin() {
    auto admin = AdminConnection::connect(settings_);
    if (!admin) {
      return fail(metadata_step, ProbeFailure::kafka, "a second connection failed: " + admin.error().message,
                  "the broker's log says why", "not tried: no connection");
    }
    admin_ = std::move(*admin);
    return true;
  }

  // ---- Metadata ----

  bool metadata() {
    derive_principal();
    wire::msg::MetadataRequest request;
    request.allow_auto_topic_creation = false;  // a probe creates nothing
    if (options_.topics.empty()) {
      request.topics = std::nullopt;
    } else {
      request.topics.emplace();
      for (const auto& name : options_.topics) request.topics->push_back({wire::Uuid{}, name, {}});
    }
    const auto start = Clock::now();
    auto response = admin_->call<wire::msg::MetadataRequest, wire::msg::MetadataResponse>(request);
    if (!response) {
      return fail(metadata_step, ProbeFailure::kafka, "Metadata failed: " + response.error().message,
                  "the broker's log says why", "not tried: Metadata failed");
    }
    return judge_metadata(*response, ms_text(start));
  }

  bool judge_metadata(const wire::msg::MetadataResponse& response, const std::string& took) {
    std::vector<std::string> denied, missing, other;
    for (const auto& topic : response.topics) {
      const std::string name = topic.name.value_or("?");
      if (topic.error_code == kTopicAuthorizationFailed)
        denied.push_back(name);
      else if (topic.error_code == kUnknownTopicOrPartition)
        missing.push_back(name);
      else if (topic.error_code != 0)
        other.push_back(fmt::format("{}: {}", name, error_name(topic.error_code)));
    }
    std::vector<std::string> brokers;
    for (const auto& b : response.brokers) brokers.push_back(fmt::format("{} at {}:{}", b.node_id, b.host, b.port));
    const std::size_t found = response.topics.size() - denied.size() - missing.size() - other.size();
    const std::string topics = options_.topics.empty()
                                   ? fmt::format("{} topic(s) visible", found)
                                   : fmt::format("{} of {} topic(s) found", found, response.topics.size());
    std::string what = fmt::format("cluster {}, controller {}, broker(s) on this listener: {}; {}, in {}",
                                   response.cluster_id.value_or("?"), response.controller_id,
                                   brokers.empty() ? "none" : join(brokers), topics, took);
    if (!denied.empty()) {
      const std::string who = report_.principal.empty() ? "our principal" : report_.principal;
      add(metadata_step, ProbeStatus::fail,
          fmt::format("{} may not Describe topic {} (TOPIC_AUTHORIZATION_FAILED); {}", who, join(denied), what),
          fmt::format("a super user grants it: bulwark acl add --allow-principal {} --operation Describe --topic {}",
                      report_.principal.empty() ? "User:NAME" : report_.principal, denied.front()),
          ProbeFailure::authorization);
      stop_reason_ = "not reached";
      principal();  // still worth saying who we are
      return false;
    }
    if (!missing.empty() || !other.empty()) {
      std::vector<std::string> notes = other;
      if (!missing.empty()) notes.insert(notes.begin(), "no topic " + join(missing));
      add(metadata_step, ProbeStatus::warn, fmt::format("{}; {}", what, join(notes, "; ")),
          "check the topic names (the probe never creates topics)");
      return true;
    }
    if (const auto unnamed = advertised_hosts_not_named(response); !unnamed.empty()) {
      add(metadata_step, ProbeStatus::warn,
          fmt::format("{}; the broker's certificate does not name the advertised {}", what, join(unnamed)),
          "clients reconnect to the advertised address and check its name: fix advertised.listeners or the SANs");
      return true;
    }
    if (options_.topics.empty() && response.topics.empty()) {
      what +=
          fmt::format(" (none: there are none, or {} may Describe none; --topic NAME checks one)", report_.principal);
    }
    add(metadata_step, brokers.empty() ? ProbeStatus::warn : ProbeStatus::ok, what,
        brokers.empty() ? "the broker advertises no address for this listener: check advertised.listeners" : "");
    return true;
  }

  std::vector<std::string> advertised_hosts_not_named(const wire::msg::MetadataResponse& response) const {
    std::vector<std::string> out;
    if (!uses_tls() || !settings_.tls.verify_hostname || seen_.sent_chain.empty()) return out;
    for (const auto& b : response.brokers) {
      if (!certificate_names_host(seen_.sent_chain.front().get(), b.host)) out.push_back(b.host);
    }
    return out;
  }

  // ---- Principal ----

  void derive_principal() {
    if (config::uses_sasl(settings_.protocol)) {
      report_.principal = "User:" + settings_.sasl->username;
      report_.principal_source = "derived from the SASL username (the broker reports no principal)";
      return;
    }
    if (!sent_certificate()) {
      report_.principal = security::kAnonymousPrincipal.to_string();
      report_.principal_source = "no SASL login and no client certificate sent";
      return;
    }
    const std::string subject = tls::subject_rfc2253(own_certificate_.get());
    auto principal = security::principal_for_tls(subject, rules_);
    if (!principal) {
      principal_problem_ = principal.error().message;
      return;
    }
    report_.principal = principal->to_string();
    report_.principal_source = fmt::format(
        "derived from our certificate subject {} with ssl.principal.mapping.rules {} "
        "(the broker reports no principal)",
        subject, rules_.to_string());
  }

  void principal() {
    if (!principal_problem_.empty()) {
      add(principal_step, ProbeStatus::warn, "our certificate maps to no principal: " + principal_problem_,
          "the broker refuses a certificate its ssl.principal.mapping.rules do not map; give the broker's rules "
          "with --principal-mapping-rules, or fix them");
      return;
    }
    std::string what = fmt::format("{}, {}", report_.principal, report_.principal_source);
    if (auto operations = cluster_operations()) what += "; on the cluster it may: " + *operations;
    add(principal_step, ProbeStatus::ok, what);
  }

  std::optional<std::string> cluster_operations() {
    if (!admin_ || !versions_.contains(wire::msg::DescribeClusterRequest::api_key)) return std::nullopt;
    wire::msg::DescribeClusterRequest request;
    request.include_cluster_authorized_operations = true;
    auto response = admin_->call<wire::msg::DescribeClusterRequest, wire::msg::DescribeClusterResponse>(request);
    if (!response || response->error_code != 0 || response->cluster_authorized_operations == INT32_MIN) {
      return std::nullopt;
    }
    return render_authorized_operations(response->cluster_authorized_operations);
  }

  const ProbeOptions& options_;
  const ClientSettings& settings_;
  const HostPort& server_;
  security::PrincipalMappingRules rules_;
  std::shared_ptr<tls::ClientTlsContext> context_;
  std::vector<std::string> trusted_;  // subjects of our trust anchors
  ProbeWire wire_;
  TlsObservation seen_;
  X509Ptr own_certificate_;
  BrokerVersions versions_;
  std::unique_ptr<AdminConnection> admin_;
  std::string principal_problem_;
  std::array<std::optional<ProbeStep>, step_count> steps_;
  std::string stop_reason_ = "not reached";
  ProbeReport report_;
};

// ---- Rendering -----------------------------------------------------------------------------------

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else
          out += c;
    }
  }
  return out + "\"";
}

}  // namespace

Result<ClientSettings> probe_settings_from_flags(ConnectionFlags flags) {
  struct PemKey {
    std::string_view key;
    std::filesystem::path ConnectionFlags::*flag;
    std::string_view flag_name;
  };
  static constexpr PemKey kPemKeys[] = {{"ssl.ca.location", &ConnectionFlags::ca, "--ca"},
                                        {"ssl.certificate.location", &ConnectionFlags::cert, "--cert"},
                                        {"ssl.key.location", &ConnectionFlags::key, "--key"}};
  std::vector<std::string> honoured;
  if (!flags.command_config.empty()) {
    auto properties = config::load_properties(flags.command_config);
    if (!properties) return properties.error();
    for (const auto& pem : kPemKeys) {
      const config::Property* p = properties->find(pem.key);
      if (p == nullptr) continue;
      if (!(flags.*pem.flag).empty()) {
        return make_error(ErrorKind::invalid_argument, fmt::format("{}: {}: give either {} or this key, not both",
                                                                   properties->where(*p), pem.key, pem.flag_name));
      }
      std::string_view value = p->value;
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
      flags.*pem.flag = std::filesystem::path(value);
      honoured.push_back(fmt::format("{}: {}:", properties->where(*p), pem.key));
    }
  }
  auto settings = settings_from_flags(flags);
  if (!settings) return settings.error();
  // settings_from_flags notes these keys as unknown; here they were used.
  std::erase_if(settings->notes, [&](const std::string& note) {
    return std::any_of(honoured.begin(), honoured.end(), [&](const std::string& h) { return note.starts_with(h); });
  });
  return settings;
}

Result<ProbeReport> run_probe(const ProbeOptions& options) {
  BULWARK_TRY(validate_settings(options.settings));
  if (options.settings.bootstrap_servers.size() != 1) {
    return make_error(ErrorKind::invalid_argument, "probe one broker at a time: give a single HOST:PORT");
  }
  auto rules = security::PrincipalMappingRules::parse(options.principal_mapping_rules);
  if (!rules) {
    return make_error(ErrorKind::invalid_argument, "--principal-mapping-rules: " + rules.error().message);
  }
  Prober prober(options, std::move(*rules));
  BULWARK_TRY(prober.prepare());
  return prober.run();
}

std::string render_probe_text(const ProbeReport& report) {
  std::string out;
  int failed = 0, warned = 0;
  for (const auto& step : report.steps) {
    out += fmt::format("{:<5} {:<12} {}", probe_status_word(step.status), step.name, step.message);
    if (!step.fix.empty()) out += " -> " + step.fix;
    out += "\n";
    failed += step.status == ProbeStatus::fail;
    warned += step.status == ProbeStatus::warn;
  }
  if (failed == 0) {
    out += fmt::format("probe of {}: every step works{}\n", report.broker,
                       warned == 0 ? "" : fmt::format(" ({} warning(s))", warned));
  } else {
    out += fmt::format("probe of {}: {} step(s) failed (exit code {})\n", report.broker, failed, report.exit_code());
  }
  return out;
}

std::string render_probe_json(const ProbeReport& report) {
  std::string out = fmt::format(
      "{{\"broker\": {}, \"exit_code\": {}, \"principal\": {}, \"principal_source\": {}, "
      "\"steps\": [",
      json_string(report.broker), report.exit_code(), report.principal.empty() ? "null" : json_string(report.principal),
      report.principal_source.empty() ? "null" : json_string(report.principal_source));
  for (std::size_t i = 0; i < report.steps.size(); ++i) {
    const auto& s = report.steps[i];
    out += fmt::format("{}\n  {{\"step\": {}, \"status\": {}, \"message\": {}, \"fix\": {}}}", i == 0 ? "" : ",",
                       json_string(s.name), json_string(probe_status_word(s.status)), json_string(s.message),
                       s.fix.empty() ? "null" : json_string(s.fix));
  }
  return out + "\n]}\n";
}

}  // namespace bulwark::client
