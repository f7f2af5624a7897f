// TLS handshakes and reloads, in memory (BIO pairs, one thread doing both sides):
//   BM_FullMtlsHandshake/<key>  a full TLS 1.3 handshake with a client certificate (ssl.client.auth=
//                               required), ECDSA P-256 and RSA-2048 keys on both sides; the server's
//                               share of the CPU is what a broker core spends per new client
//   BM_FullMtlsServerSide/<c>   the same handshake, timed on the server's calls only (its thread CPU);
//                               c = 1: both sides send root, intermediate and leaf (bulwark pki's chains):
//                               what OpenSSL alone costs a broker per new mTLS client, the floor that
//                               bench/broker_bench.py sets the broker's handshakes per CPU-second against
//   BM_IdleServerConnectionHeap/<c> 1,000 server connections kept after their mTLS handshake (ticket sent,
//                               buffers released, as the broker's context sets them): OpenSSL's heap per
//                               idle connection (counter kib_per_connection, from mallinfo2), the floor
//                               under the broker's memory per idle mTLS connection
//   BM_Resumption               the same client resuming with its session ticket (no certificates)
//   BM_ReloadFromFiles          what a changed keystore costs the broker: read the PKCS12 keystore and
//                               the truststore, build the new context, one handshake on it. A watched
//                               file adds the watcher's quiet time (250 ms) before this starts.
// The ratios worth reading are in bench/README.md: handshakes per second per core against the
// issue's goal of 2,000, and resumption against a full handshake.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bench_certs.h"
#include "security/keystore.h"
#include "tls/tls.h"

using namespace bulwark;

namespace {

EvpPkeyPtr make_key(bool rsa) { return EvpPkeyPtr(rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256")); }

// Leaf certificates signed by the CA, or (with_intermediate) by an intermediate CA under it, with each
// side sending leaf, intermediate and root as `bulwark pki export` writes the chain.
struct Material {
  EvpPkeyPtr ca_key, server_key, client_key, intermediate_key;
  X509Ptr ca, server, client, intermediate;
  explicit Material(bool rsa, bool with_intermediate = false)
      : ca_key(make_key(rsa)), server_key(make_key(rsa)), client_key(make_key(rsa)) {
    ca = bench::make_cert("Bench CA", ca_key.get(), nullptr, nullptr, 1, nullptr);
    X509* issuer = ca.get();
    EVP_PKEY* issuer_key = ca_key.get();
    if (with_intermediate) {
      intermediate_key = make_key(rsa);
      intermediate = bench::make_cert("Bench Intermediate", intermediate_key.get(), ca.get(), ca_key.get(), 4, nullptr, true);
      issuer = intermediate.get();
      issuer_key = intermediate_key.get();
    }
    server = bench::make_cert("bench-broker", server_key.get(), issuer, issuer_key, 2, "IP:127.0.0.1");
    client = bench::make_cert("bench-client", client_key.get(), issuer, issuer_key, 3, "IP:127.0.0.1");
  }
  tls::TlsSettings side(EVP_PKEY* key, X509* cert) const {
    tls::TlsSettings s;
    s.keystore.keys.push_back({"key", share(key), {}});
    s.keystore.keys.back().chain.push_back(share(cert));
    if (intermediate) {
      s.keystore.keys.back().chain.push_back(share(intermediate.get()));
      s.keystore.keys.back().chain.push_back(share(ca.get()));
    }
    s.truststore.trusted.push_back({"ca", share(ca.get())});
    s.enabled_protocols = {"TLSv1.3"};
    return s;
  }
  tls::TlsSettings server_settings() const {
    auto s = side(server_key.get(), server.get());
    s.client_auth = tls::ClientAuth::required;
    return s;
  }
  tls::TlsSettings client_settings() const { return side(client_key.get(), client.get()); }
};

// Drives both ends over a BIO pair until both finished (and the server sent its ticket).
bool handshake(SSL* server, SSL* client) {
  BIO *server_bio = nullptr, *client_bio = nullptr;
  BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_accept_state(server);
  SSL_set_connect_state(client);
  bool server_done = false, client_done = false;
  for (int i = 0; i < 50 && !(server_done && client_done); ++i) {
    if (!client_done) client_done = SSL_do_handshake(client) == 1;
    if (!server_done) server_done = SSL_do_handshake(server) == 1;
  }
  // The TLS 1.3 ticket follows the handshake: one byte each way delivers it.
  char byte = 'x', in = 0;
  if (SSL_write(client, &byte, 1) != 1 || SSL_read(server, &in, 1) != 1) return false;
  if (SSL_write(server, &byte, 1) != 1 || SSL_read(client, &in, 1) != 1) return false;
  return server_done && client_done;
}

void BM_FullMtlsHandshake(benchmark::State& state) {
  const Material m(state.range(0) == 1);
  auto server = tls::make_server_context(m.server_settings()).value();
  auto client = tls::make_client_context(m.client_settings()).value();
  SSL_CTX_set_session_cache_mode(server->current().get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(server->current().get(), SSL_OP_NO_TICKET);
  for (auto _ : state) {
    SslPtr s(SSL_new(server->current().get()));
    auto c = client->new_ssl("127.0.0.1");
    if (!handshake(s.get(), c->get())) state.SkipWithError("handshake failed");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) == 1 ? "RSA-2048" : "ECDSA P-256");
}
BENCHMARK(BM_FullMtlsHandshake)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// handshake(), with the server's calls timed apart: the CPU seconds they took go to `server_cpu`.
bool timed_handshake(SSL* server, SSL* client, double& server_cpu) {
  BIO *server_bio = nullptr, *client_bio = nullptr;
  BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_accept_state(server);
  SSL_set_connect_state(client);
  auto on_server = [&](auto&& step) {
    const double t0 = thread_cpu_seconds();
    auto r = step();
    server_cpu += thread_cpu_seconds() - t0;
    return r;
  };
  bool server_done = false, client_done = false;
  for (int i = 0; i < 50 && !(server_done && client_done); ++i) {
    if (!client_done) client_done = SSL_do_handshake(client) == 1;
    if (!server_done) server_done = on_server([&] { return SSL_do_handshake(server) == 1; });
  }
  char byte = 'x', in = 0;
  if (SSL_write(client, &byte, 1) != 1 || on_server([&] { return SSL_read(server, &in, 1); }) != 1) return false;
  if (on_server([&] { return SSL_write(server, &byte, 1); }) != 1 || SSL_read(client, &in, 1) != 1) return false;
  return server_done && client_done;
}

void BM_FullMtlsServerSide(benchmark::State& state) {
  const Material m(false, state.range(0) == 1);
  auto server = tls::make_server_context(m.server_settings()).value();
  auto client = tls::make_client_context(m.client_settings()).value();
  SSL_CTX_set_session_cache_mode(server->current().get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(server->current().get(), SSL_OP_NO_TICKET);
  for (auto _ : state) {
    double server_cpu = 0;
    SslPtr s(SSL_new(server->current().get()));
    auto c = client->new_ssl("127.0.0.1");
    if (!timed_handshake(s.get(), c->get(), server_cpu)) state.SkipWithError("handshake failed");
    state.SetIterationTime(server_cpu);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) == 1 ? "ECDSA P-256, server side, root + intermediate + leaf chains"
                                     : "ECDSA P-256, server side, CA + leaf");
}
BENCHMARK(BM_FullMtlsServerSide)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_IdleServerConnectionHeap(benchmark::State& state) {
  constexpr int kConnections = 1000;
  const Material m(false, state.range(0) == 1);
  auto server = tls::make_server_context(m.server_settings()).value();
  auto client = tls::make_client_context(m.client_settings()).value();
  double kib_per_connection = 0;
  for (auto _ : state) {
    std::vector<SslPtr> kept;
    kept.reserve(kConnections);
    const auto before = mallinfo2().uordblks;
    for (int i = 0; i < kConnections; ++i) {
      SslPtr s(SSL_new(server->current().get()));
      {
        auto c = client->new_ssl("127.0.0.1");
        if (!handshake(s.get(), c->get())) return state.SkipWithError("handshake failed");
      }
      // The client and the BIO pair's buffers are gone; the server end keeps only what OpenSSL keeps.
      SSL_set_bio(s.get(), BIO_new(BIO_s_null()), nullptr);
      kept.push_back(std::move(s));
    }
    kib_per_connection = static_cast<double>(mallinfo2().uordblks - before) / kConnections / 1024.0;
  }
  state.counters["kib_per_connection"] = kib_per_connection;
  state.SetLabel(state.range(0) == 1 ? "ECDSA P-256, TLS 1.3, client chain root + intermediate + leaf, ticket sent"
                                     : "ECDSA P-256, TLS 1.3, client certificate, ticket sent");
}
BENCHMARK(BM_IdleServerConnectionHeap)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_Resumption(benchmark::State& state) {
  const Material m(false);
  auto server = tls::make_server_context(m.server_settings()).value();
  auto client = tls::make_client_context(m.client_settings()).value();
  SslPtr first_server(SSL_new(server->current().get()));
  auto first = client->new_ssl("127.0.0.1");
  if (!handshake(first_server.get(), first->get())) return state.SkipWithError("first handshake failed");
  SSL_SESSION* ticket = SSL_get1_session(first->get());
  benchmark::IterationCount resumed = 0;
  for (auto _ : state) {
    SslPtr s(SSL_new(server->current().get()));
    auto c = client->new_ssl("127.0.0.1");
    SSL_set_session(c->get(), ticket);
    if (!handshake(s.get(), c->get())) state.SkipWithError("resumption failed");
    resumed += SSL_session_reused(c->get()) ? 1 : 0;
  }
  SSL_SESSION_free(ticket);
  if (resumed != state.iterations()) state.SkipWithError("some handshakes did not resume");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Resumption)->Unit(benchmark::kMicrosecond);

void BM_ReloadFromFiles(benchmark::State& state) {
  const Material m(false);
  const auto dir = std::filesystem::temp_directory_path() / ("bulwark-tls-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto settings = m.server_settings();
  keystore::KeyStore trust;
  trust.trusted.push_back({"ca", share(m.ca.get())});
  auto write = [&](const std::filesystem::path& path, const Bytes& bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
  };
  write(dir / "keystore.p12", keystore::encode_pkcs12(settings.keystore, "bench-pw").value());
  write(dir / "truststore.p12", keystore::encode_pkcs12(trust, "bench-pw").value());
  tls::TlsFileSettings files;
  files.keystore_location = dir / "keystore.p12";
  files.keystore_password = "bench-pw";
  files.truststore_location = dir / "truststore.p12";
  files.truststore_password = "bench-pw";
  files.client_auth = tls::ClientAuth::required;
  files.enabled_protocols = {"TLSv1.3"};
  auto server = tls::make_server_context(settings).value();
  auto client = tls::make_client_context(m.client_settings()).value();
  for (auto _ : state) {
    auto loaded = tls::load_tls_settings(files);
    if (!loaded.ok() || !server->reload(*loaded).ok()) return state.SkipWithError("reload failed");
    SslPtr s(SSL_new(server->current().get()));
    auto c = client->new_ssl("127.0.0.1");
    if (!handshake(s.get(), c->get())) state.SkipWithError("handshake after reload failed");
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReloadFromFiles)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
