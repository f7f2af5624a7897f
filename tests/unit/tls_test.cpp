#include "tls/tls.h"

#include <gtest/gtest.h>

#include <tuple>

#include "tls_test_certs.h"

namespace bulwark::tls {
namespace {

using namespace bulwark::testing;


TEST(TlsSubject, Rfc2253LikeJava) {
  const auto& p = test_pki();
  EXPECT_EQ(subject_rfc2253(p.client.get()), "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");
  EXPECT_EQ(subject_rfc2253(p.server.get()), "CN=broker-1,O=Bulwark Test");
  EXPECT_EQ(subject_rfc2253(nullptr), "");
}

TEST(TlsSubject, EscapesSpecialCharactersButKeepsUtf8) {
  const auto& p = test_pki();
  X509Ptr cert = make_cert({{"O", "A, B+C"}, {"CN", "caf\xc3\xa9"}}, p.client_key.get(), p.ca.get(), p.ca_key.get(),
                           false, 77);
  EXPECT_EQ(subject_rfc2253(cert.get()), "CN=caf\xc3\xa9,O=A\\, B\\+C");
}

TEST(TlsSubject, MatchesOpensslReqSubject) {
  // openssl req -subj builds the same DER order as keytool -dname "CN=admin-1, OU=DevOps, ..., C=IR".
  TempDir dir;
  const auto key = dir.path() / "k.pem";
  const auto crt = dir.path() / "c.pem";
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -keyout " +
                          key.string() + " -out " + crt.string() +
                          " -subj '/C=IR/ST=Tehran/L=Tehran/O=SLS/OU=DevOps/CN=admin-1' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  BioPtr bio(BIO_new_file(crt.c_str(), "r"));
  ASSERT_TRUE(bio);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(cert);
  EXPECT_EQ(subject_rfc2253(cert.get()), "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");
}

TEST(TlsCiphers, MapsIanaNames) {
  auto a = map_cipher_suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->openssl_name, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_FALSE(a->tls13);
  auto b = map_cipher_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->openssl_name, "ECDHE-RSA-CHACHA20-POLY1305");
  auto c = map_cipher_suite("TLS_AES_256_GCM_SHA384");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tls13);
  auto bad = map_cipher_suite("TLS_MADE_UP_SUITE");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("TLS_MADE_UP_SUITE"), std::string::npos);
}

TEST(TlsContext, RefusesOldProtocols) {
  auto settings = server_settings();
  settings.enabled_protocols = {"TLSv1.1", "TLSv1.2"};
  auto ctx = make_server_context(settings);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.error().message.find("TLSv1.1"), std::string::npos) << ctx.error().message;
  EXPECT_NE(ctx.error().message.find("TLSv1.2 and TLSv1.3"), std::string::npos) << ctx.error().message;
  settings.enabled_protocols = {"TLSv9"};
  EXPECT_FALSE(make_server_context(settings).ok());
}

TEST(TlsContext, NeedsKeyAndTruststoreForClientAuth) {
  TlsSettings no_key;
  auto a = make_server_context(no_key);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("no private key"), std::string::npos);
  auto settings = server_settings(ClientAuth::required);
  settings.truststore = {};
  auto b = make_server_context(settings);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("truststore"), std::string::npos);
  settings.client_auth = ClientAuth::none;
  EXPECT_TRUE(make_server_context(settings).ok());
}

TEST(TlsContext, MismatchedKeyIsRefused) {
  auto settings = server_settings();
  settings.keystore.keys[0].key = share(test_pki().client_key.get());
  auto ctx = make_server_context(settings);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.error().message.find("does not match"), std::string::npos) << ctx.error().message;
}

TEST(TlsContext, ReloadSwapsOnlyOnSuccess) {
  auto ctx = make_server_context(server_settings());
  ASSERT_TRUE(ctx.ok());
  auto first = (*ctx)->current();
  ASSERT_TRUE((*ctx)->reload(server_settings(ClientAuth::required)).ok());
  auto second = (*ctx)->current();
  EXPECT_NE(first.get(), second.get());
  EXPECT_EQ((*ctx)->client_auth(), ClientAuth::required);
  TlsSettings broken;
  EXPECT_FALSE((*ctx)->reload(broken).ok());
  EXPECT_EQ((*ctx)->current().get(), second.get());
  // The first context is still usable by whoever holds it (an established connection).
  SslPtr ssl(SSL_new(first.get()));
  EXPECT_TRUE(ssl);
}

TEST(TlsContext, CipherSuitesRestrictTheHandshake) {
  auto server = server_settings();
  server.cipher_suites = {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"};
  server.enabled_protocols = {"TLSv1.2"};
  auto sctx = make_server_context(server);
  ASSERT_TRUE(sctx.ok()) << sctx.error().message;
  auto cctx = make_client_context(client_settings());
  ASSERT_TRUE(cctx.ok());
  SslPtr s(SSL_new((*sctx)->current().get()));
  auto c = (*cctx)->new_ssl("127.0.0.1");
  ASSERT_TRUE(c.ok());
  auto r = handshake_pair(s.get(), c->get());
  ASSERT_TRUE(r.ok);
  EXPECT_STREQ(SSL_get_cipher_name(s.get()), "ECDHE-ECDSA-AES256-GCM-SHA384");
  EXPECT_STREQ(SSL_get_version(s.get()), "TLSv1.2");
}

TEST(TlsHandshake, ClientVerifiesIpAndName) {
  auto sctx = make_server_context(server_settings());
  ASSERT_TRUE(sctx.ok());
  auto cctx = make_client_context(client_settings());
  ASSERT_TRUE(cctx.ok());
  for (const char* host : {"127.0.0.1", "localhost"}) {
    SslPtr s(SSL_new((*sctx)->current().get()));
    auto c = (*cctx)->new_ssl(host);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(handshake_pair(s.get(), c->get()).ok) << host;
  }
  for (const char* host : {"10.1.2.3", "kafka-9"}) {
    SslPtr s(SSL_new((*sctx)->current().get()));
    auto c = (*cctx)->new_ssl(host);
    ASSERT_TRUE(c.ok());
    HandshakeNotes notes;
    attach_notes(c->get(), &notes);
    auto r = handshake_pair(s.get(), c->get());
    EXPECT_FALSE(r.ok) << host;
    EXPECT_NE(r.client_error, 0);
    HandshakeFailure f;
    f.server_side = false;
    f.ssl_error = r.client_error;
    f.error_code = r.client_code;
    f.verify_result = SSL_get_verify_result(c->get());
    f.notes = &notes;
    EXPECT_NE(explain_handshake_failure(f).find("does not name the host"), std::string::npos)
        << explain_handshake_failure(f);
  }
}

TEST(TlsHandshake, ClientAuthOutcomesAreExplained) {
  struct Case {
    ClientAuth auth;
    ClientCert cert;
    bool ok;
    const char* why;
  };
  const Case cases[] = {
      {ClientAuth::none, ClientCert::none, true, ""},
      {ClientAuth::requested, ClientCert::none, true, ""},
      {ClientAuth::requested, ClientCert::good, true, ""},
      {ClientAuth::required, ClientCert::good, true, ""},
      {ClientAuth::required, ClientCert::none, false, "the client sent no certificate but ssl.client.auth=required"},
      {ClientAuth::required, ClientCert::other_ca, false,
       "the client's certificate (CN=intruder,O=Elsewhere) was issued by CN=Other CA,O=Elsewhere, which is not in the "
       "truststore"},
      {ClientAuth::requested, ClientCert::other_ca, false, "which is not in the truststore"},
  };
  for (const auto& c : cases) {
    for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
      auto settings = server_settings(c.auth);
      settings.enabled_protocols = {version};
      auto sctx = make_server_context(settings);
      ASSERT_TRUE(sctx.ok());
      auto cctx = make_client_context(client_settings(c.cert));
      ASSERT_TRUE(cctx.ok());
      SslPtr s(SSL_new((*sctx)->current().get()));
      HandshakeNotes notes;
      attach_notes(s.get(), &notes);
      auto client = (*cctx)->new_ssl("127.0.0.1");
      ASSERT_TRUE(client.ok());
      auto r = handshake_pair(s.get(), client->get());
      const std::string label = std::string(to_string(c.auth)) + "/" + version + "/cert " +
                                std::to_string(static_cast<int>(c.cert));
      EXPECT_EQ(r.ok, c.ok) << label;
      if (c.ok) {
        X509Ptr peer(SSL_get1_peer_certificate(s.get()));
        EXPECT_EQ(peer != nullptr, c.cert == ClientCert::good) << label;
        if (peer) {
          EXPECT_EQ(subject_rfc2253(peer.get()), "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR");
        }
      } else {
        HandshakeFailure f;
        f.ssl_error = r.server_error;
        f.error_code = r.server_code;
        f.verify_result = SSL_get_verify_result(s.get());
        f.client_auth = c.auth;
        f.notes = &notes;
        EXPECT_NE(explain_handshake_failure(f).find(c.why), std::string::npos)
            << label << ": " << explain_handshake_failure(f);
      }
    }
  }
}

TEST(TlsHandshake, VerifiedClientChainsAreRememberedButFailuresNever) {
  auto sctx = make_server_context(server_settings(ClientAuth::required));
  ASSERT_TRUE(sctx.ok());
  auto good = make_client_context(client_settings(ClientCert::good));
  auto intruder = make_client_context(client_settings(ClientCert::other_ca));
  ASSERT_TRUE(good.ok() && intruder.ok());
  auto connect = [&](const ClientTlsContext& client, HandshakeNotes* notes) {
    SslPtr s(SSL_new((*sctx)->current().get()));
    if (notes != nullptr) attach_notes(s.get(), notes);
    auto c = client.new_ssl("127.0.0.1");
    const bool ok = c.ok() && handshake_pair(s.get(), c->get()).ok;
    X509Ptr peer(SSL_get1_peer_certificate(s.get()));
    return std::make_tuple(ok, SSL_get_verify_result(s.get()), peer ? subject_rfc2253(peer.get()) : std::string());
  };
  SSL_CTX* ctx = (*sctx)->current().get();
  EXPECT_EQ(remembered_client_chains(ctx), 0u);
  for (int i = 0; i < 3; ++i) {
    auto [ok, verify, subject] = connect(**good, nullptr);
    EXPECT_TRUE(ok) << i;
    EXPECT_EQ(verify, X509_V_OK) << i;
    EXPECT_EQ(subject, "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR") << i;
    EXPECT_EQ(remembered_client_chains(ctx), 1u) << i;  // verified once, remembered, then served from memory
  }
  for (int i = 0; i < 2; ++i) {
    HandshakeNotes notes;
    auto [ok, verify, subject] = connect(**intruder, &notes);
    EXPECT_FALSE(ok) << i;
    EXPECT_NE(verify, X509_V_OK) << i;
    EXPECT_NE(notes.verify_error, X509_V_OK) << i;  // explained every time: failures are not cached
    EXPECT_EQ(remembered_client_chains(ctx), 1u) << i;
  }
  // New trust, new context, nothing remembered.
  ASSERT_TRUE((*sctx)->reload(server_settings(ClientAuth::required)).ok());
  EXPECT_EQ(remembered_client_chains((*sctx)->current().get()), 0u);
  EXPECT_TRUE(std::get<0>(connect(**good, nullptr)));
}

TEST(TlsExplain, FirstBytesTellPlaintextAndHttp) {
  auto with_bytes = [](std::string_view bytes) {
    HandshakeNotes notes;
    notes.first_bytes_len = static_cast<std::uint8_t>(std::min<std::size_t>(bytes.size(), sizeof notes.first_bytes));
    std::memcpy(notes.first_bytes, bytes.data(), notes.first_bytes_len);
    HandshakeFailure f;
    f.ssl_error = SSL_ERROR_SSL;
    f.notes = &notes;
    return explain_handshake_failure(f);
  };
  EXPECT_EQ(with_bytes("GET / HTTP/1.1\r\n"), "the peer sent an HTTP request to a TLS port (it speaks plain HTTP, not TLS)");
  EXPECT_NE(with_bytes(std::string("\0\0\0\x15\0\x12\0\x03\0\0\0", 11)).find("plaintext on a TLS port"),
            std::string::npos);
  EXPECT_NE(with_bytes("\x01garbage").find("not a TLS handshake"), std::string::npos);
  // A TLS 1.1 ClientHello: record 16 03 01, handshake type 1, client_version 03 02.
  HandshakeNotes notes;
  const std::uint8_t hello[11] = {0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x02};
  std::memcpy(notes.first_bytes, hello, sizeof hello);
  notes.first_bytes_len = sizeof hello;
  HandshakeFailure f;
  f.ssl_error = SSL_ERROR_SSL;
  f.error_code = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL);
  f.notes = &notes;
  EXPECT_EQ(explain_handshake_failure(f),
            "no shared TLS version: the client offered only TLSv1.1 (Bulwark accepts TLSv1.2 and TLSv1.3)");
}

TEST(TlsSettingsFiles, LoadsPemKeystoreAndTruststore) {
  const auto& p = test_pki();
  TempDir dir;
  auto ks = keystore::encode_pem(key_store(p.server_key.get(), {p.server.get(), p.ca.get()}), "keypass");
  ASSERT_TRUE(ks.ok());
  auto ts = keystore::encode_pem(trust_store(p.ca.get()));
  ASSERT_TRUE(ts.ok());
  TlsFileSettings files;
  files.keystore_location = dir.write("server.pem", *ks);
  files.keystore_type = keystore::Format::pem;
  files.key_password = "keypass";
  files.truststore_location = dir.write("trust.pem", *ts);
  files.client_auth = ClientAuth::required;
  auto settings = load_tls_settings(files);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->keystore.keys.size(), 1u);
  EXPECT_EQ(settings->truststore.trusted.size(), 1u);
  EXPECT_TRUE(make_server_context(*settings).ok());
  files.key_password = "wrong";
  EXPECT_FALSE(load_tls_settings(files).ok());
  EXPECT_EQ(parse_client_auth("Required").value(), ClientAuth::required);
  EXPECT_FALSE(parse_client_auth("maybe").ok());
}

}  // namespace
}  // namespace bulwark::tls
