// Reload checks, validity findings, CRLs (in the handshake and after resumption) and the classes of
// failed handshakes, on certificates made in memory.
#include "tls/certificates.h"

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>

#include "tls_test_certs.h"

namespace bulwark::tls {
namespace {

using namespace bulwark::testing;

constexpr std::int64_t kDay = 24 * 3600;
std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// A leaf from the test CA with its own subject, SANs and validity (seconds from now).
X509Ptr leaf(const char* cn, const char* san, long valid_from, long valid_to, long serial, EVP_PKEY* key,
             X509* ca = test_pki().ca.get(), EVP_PKEY* ca_key = test_pki().ca_key.get()) {
  auto cert = make_cert({{"O", "Bulwark Test"}, {"CN", cn}}, key, ca, ca_key, false, serial, san);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), valid_from);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_to);
  EXPECT_GT(X509_sign(cert.get(), ca_key, EVP_sha256()), 0);
  return cert;
}

TlsSettings serving(X509* cert, EVP_PKEY* key, X509* trusted = test_pki().ca.get()) {
  TlsSettings s;
  s.keystore = key_store(key, {cert, test_pki().ca.get()});
  s.truststore = trust_store(trusted);
  return s;
}

X509CrlPtr make_crl(X509* issuer, EVP_PKEY* issuer_key, std::vector<long> serials, long next_update = 7 * kDay) {
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  ASN1_TIME* t = ASN1_TIME_adj(nullptr, std::time(nullptr), 0, -3600);
  X509_CRL_set1_lastUpdate(crl.get(), t);
  ASN1_TIME_adj(t, std::time(nullptr), 0, next_update);
  X509_CRL_set1_nextUpdate(crl.get(), t);
  for (long serial : serials) {
    X509_REVOKED* entry = X509_REVOKED_new();
    ASN1_INTEGER* number = ASN1_INTEGER_new();
    ASN1_INTEGER_set(number, serial);
    X509_REVOKED_set_serialNumber(entry, number);
    ASN1_TIME_adj(t, std::time(nullptr), 0, -60);
    X509_REVOKED_set_revocationDate(entry, t);
    X509_CRL_add0_revoked(crl.get(), entry);
    ASN1_INTEGER_free(number);
  }
  ASN1_TIME_free(t);
  X509_CRL_sort(crl.get());
  EXPECT_GT(X509_CRL_sign(crl.get(), issuer_key, EVP_sha256()), 0);
  return crl;
}

TEST(TlsCertificateFacts, SerialSansAndValidity) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto cert = leaf("kafka-1", "DNS:kafka-1,IP:127.0.0.1,IP:::1", -60, 10 * kDay, 0x1A2B, key.get());
  auto facts = certificate_facts(cert.get());
  EXPECT_EQ(facts.subject, "CN=kafka-1,O=Bulwark Test");
  EXPECT_EQ(facts.issuer, "CN=Test CA,O=Bulwark Test");
  EXPECT_EQ(facts.serial, "1A2B");
  EXPECT_EQ(facts.sans, (std::vector<std::string>{"DNS:kafka-1", "IP:127.0.0.1", "IP:::1"}));
  EXPECT_NEAR(static_cast<double>(facts.not_after - now()), 10.0 * kDay, 5);
  EXPECT_EQ(format_utc(0), "1970-01-01 00:00 UTC");
}

TEST(TlsReplacement, KafkasRulesForDnAndSans) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto old_cert = leaf("kafka-1", "DNS:kafka-1,IP:127.0.0.1", -60, 30 * kDay, 10, key.get());
  auto renewed = leaf("kafka-1", "DNS:kafka-1,IP:127.0.0.1,DNS:kafka-1.example", -60, 90 * kDay, 11, key.get());
  auto other_dn = leaf("kafka-2", "DNS:kafka-1,IP:127.0.0.1", -60, 90 * kDay, 12, key.get());
  auto fewer_sans = leaf("kafka-1", "DNS:kafka-1", -60, 90 * kDay, 13, key.get());
  const auto in_force = serving(old_cert.get(), key.get());
  ReplacementRules rules;
  EXPECT_TRUE(check_replacement(in_force, serving(renewed.get(), key.get()), rules, now()).ok());
  auto dn = check_replacement(in_force, serving(other_dn.get(), key.get()), rules, now());
  ASSERT_FALSE(dn.ok());
  EXPECT_NE(dn.error().message.find("ssl.allow.dn.changes"), std::string::npos) << dn.error().message;
  auto sans = check_replacement(in_force, serving(fewer_sans.get(), key.get()), rules, now());
  ASSERT_FALSE(sans.ok());
  EXPECT_NE(sans.error().message.find("lacks IP:127.0.0.1"), std::string::npos) << sans.error().message;
  rules.allow_dn_changes = rules.allow_san_changes = true;
  EXPECT_TRUE(check_replacement(in_force, serving(other_dn.get(), key.get()), rules, now()).ok());
  EXPECT_TRUE(check_replacement(in_force, serving(fewer_sans.get(), key.get()), rules, now()).ok());
}

TEST(TlsReplacement, PeersMustStillVerifyOnInterBrokerListeners) {
  const auto& p = test_pki();
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto old_cert = leaf("kafka-1", "DNS:kafka-1", -60, 30 * kDay, 20, key.get());
  // The same subject, now issued by another CA (a CA rotation done in one step).
  auto from_other_ca = leaf("kafka-1", "DNS:kafka-1", -60, 30 * kDay, 21, key.get(), p.other_ca.get(), p.other_ca_key.get());
  ReplacementRules rules;
  rules.peers_must_verify = true;
  const auto in_force = serving(old_cert.get(), key.get());
  TlsSettings jumped;
  jumped.keystore = key_store(key.get(), {from_other_ca.get()});
  jumped.truststore = trust_store(p.other_ca.get());
  auto refused = check_replacement(in_force, jumped, rules, now());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("other nodes could not verify the new certificate"), std::string::npos)
      << refused.error().message;
  rules.peers_must_verify = false;
  EXPECT_TRUE(check_replacement(in_force, jumped, rules, now()).ok());

  // Phase 1 (both CAs trusted) makes the new certificate acceptable; dropping the old CA while the old
  // certificate is still in force is refused.
  rules.peers_must_verify = true;
  TlsSettings both = serving(old_cert.get(), key.get());
  both.truststore.trusted.push_back({"new", share(p.other_ca.get())});
  ASSERT_TRUE(check_replacement(in_force, both, rules, now()).ok());
  TlsSettings only_new = serving(old_cert.get(), key.get(), p.other_ca.get());
  auto dropped = check_replacement(in_force, only_new, rules, now());
  ASSERT_FALSE(dropped.ok());
  EXPECT_NE(dropped.error().message.find("new truststore would not verify"), std::string::npos) << dropped.error().message;
  jumped.truststore.trusted.push_back({"old", share(p.ca.get())});
  EXPECT_TRUE(check_replacement(both, jumped, rules, now()).ok());
}

TEST(TlsValidity, ExpiredAndNotYetValidAreErrorsNearExpiryWarns) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto expired = leaf("kafka-1", nullptr, -10 * kDay, -kDay, 30, key.get());
  auto future = leaf("kafka-1", nullptr, 2 * kDay, 30 * kDay, 31, key.get());
  auto soon = leaf("kafka-1", nullptr, -kDay, 5 * kDay + 3600, 32, key.get());
  auto fine = leaf("kafka-1", nullptr, -kDay, 300 * kDay, 33, key.get());
  auto findings = [&](X509* cert, int warn_days) { return check_validity(serving(cert, key.get()), now(), warn_days); };

  auto e = findings(expired.get(), 30);
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].severity, Severity::error);
  EXPECT_NE(e[0].message.find("expired on"), std::string::npos) << e[0].message;
  auto f = findings(future.get(), 30);
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0].severity, Severity::error);
  EXPECT_NE(f[0].message.find("is not valid until"), std::string::npos) << f[0].message;
  auto s = findings(soon.get(), 30);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].severity, Severity::warning);
  EXPECT_NE(s[0].message.find("expires in 5 day(s)"), std::string::npos) << s[0].message;
  EXPECT_TRUE(findings(soon.get(), 5).empty() || findings(soon.get(), 5)[0].severity != Severity::error);
  // The test CA lives 30 days: with 31 warning days it is reported too, as a warning.
  for (const auto& finding : findings(fine.get(), 31)) EXPECT_EQ(finding.severity, Severity::warning) << finding.message;
  EXPECT_TRUE(findings(fine.get(), 29).empty());
}

TEST(TlsCrl, LoadsPemAndDerAndChecksTheSignature) {
  const auto& p = test_pki();
  auto crl = make_crl(p.ca.get(), p.ca_key.get(), {3});
  const std::string dir = ::testing::TempDir();
  BioPtr pem(BIO_new_file((dir + "/crl.pem").c_str(), "w"));
  PEM_write_bio_X509_CRL(pem.get(), crl.get());
  pem.reset();
  BioPtr der(BIO_new_file((dir + "/crl.der").c_str(), "w"));
  i2d_X509_CRL_bio(der.get(), crl.get());
  der.reset();
  for (const char* name : {"/crl.pem", "/crl.der"}) {
    auto loaded = load_crls(dir + name);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    ASSERT_EQ(loaded->size(), 1u);
    EXPECT_TRUE(is_revoked(*loaded, p.client.get()));
    EXPECT_FALSE(is_revoked(*loaded, p.server.get()));
    EXPECT_FALSE(is_revoked(*loaded, p.other_client.get()));  // another issuer's serial
  }
  std::ofstream(dir + "/not-a-crl.pem") << "hello";
  auto bad = load_crls(dir + "/not-a-crl.pem");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("holds no CRL"), std::string::npos);

  // A CRL naming our CA but signed by another key is refused.
  auto forged = make_crl(p.ca.get(), p.other_ca_key.get(), {2});
  auto settings = server_settings(ClientAuth::required);
  settings.crls.push_back(std::move(forged));
  auto made = make_server_context(settings);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message.find("not signed by that CA's key"), std::string::npos) << made.error().message;
}

TEST(TlsCrl, RevokedClientIsRefusedAndExplainedOthersPass) {
  const auto& p = test_pki();
  auto settings = server_settings(ClientAuth::required);
  settings.crls.push_back(make_crl(p.ca.get(), p.ca_key.get(), {3}));  // admin-1
  auto sctx = make_server_context(settings);
  ASSERT_TRUE(sctx.ok()) << sctx.error().message;
  EXPECT_TRUE((*sctx)->revoked(p.client.get()));

  auto revoked_client = make_client_context(client_settings(ClientCert::good));
  ASSERT_TRUE(revoked_client.ok());
  SslPtr s(SSL_new((*sctx)->current().get()));
  HandshakeNotes notes;
  attach_notes(s.get(), &notes);
  auto c = (*revoked_client)->new_ssl("127.0.0.1");
  ASSERT_TRUE(c.ok());
  auto r = handshake_pair(s.get(), c->get());
  ASSERT_FALSE(r.ok);
  HandshakeFailure f;
  f.ssl_error = r.server_error;
  f.error_code = r.server_code;
  f.verify_result = SSL_get_verify_result(s.get());
  f.notes = &notes;
  const auto why = explain_handshake_failure(f);
  EXPECT_NE(why.find("serial 03) is revoked"), std::string::npos) << why;

  // A client of a CA with no CRL here is not refused for that (the server certificate's CA has one).
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto other = leaf("client-2", nullptr, -60, kDay, 40, key.get());
  TlsSettings client_two;
  client_two.keystore = key_store(key.get(), {other.get()});
  client_two.truststore = trust_store(p.ca.get());
  auto fine = make_client_context(client_two);
  ASSERT_TRUE(fine.ok());
  SslPtr s2(SSL_new((*sctx)->current().get()));
  auto c2 = (*fine)->new_ssl("127.0.0.1");
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(handshake_pair(s2.get(), c2->get()).ok);
  EXPECT_FALSE((*sctx)->revoked(other.get()));
}

TEST(TlsCrl, ExpiredCrlStillRevokesAndIsReported) {
  const auto& p = test_pki();
  auto settings = server_settings(ClientAuth::required);
  settings.crls.push_back(make_crl(p.ca.get(), p.ca_key.get(), {3}, -60));
  bool reported = false;
  for (const auto& finding : check_validity(settings, now(), 0))
    reported = reported || finding.message.find("was due for renewal") != std::string::npos;
  EXPECT_TRUE(reported);
  auto sctx = make_server_context(settings);
  ASSERT_TRUE(sctx.ok());
  auto revoked_client = make_client_context(client_settings(ClientCert::good));
  SslPtr s(SSL_new((*sctx)->current().get()));
  auto c = (*revoked_client)->new_ssl("127.0.0.1");
  EXPECT_FALSE(handshake_pair(s.get(), c->get()).ok);
}

TEST(TlsExplain, AlertsAboutOurCertificateGetTheirOwnAdvice) {
  const auto& p = test_pki();
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto expired = leaf("broker-1", "IP:127.0.0.1", -10 * kDay, -kDay, 50, key.get());
  auto explain = [&](int reason, const X509* own) {
    HandshakeFailure f;
    f.ssl_error = SSL_ERROR_SSL;
    f.error_code = ERR_PACK(ERR_LIB_SSL, 0, reason);
    f.own_certificate = own;
    return explain_handshake_failure(f);
  };
  EXPECT_NE(explain(SSL_R_TLSV1_ALERT_UNKNOWN_CA, p.server.get()).find("the CA that issued our certificate"),
            std::string::npos);
  EXPECT_NE(explain(SSL_R_TLSV1_ALERT_UNKNOWN_CA, expired.get()).find("which expired on"), std::string::npos)
      << explain(SSL_R_TLSV1_ALERT_UNKNOWN_CA, expired.get());
  EXPECT_NE(explain(SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, p.server.get()).find("check the client's clock"),
            std::string::npos);
  EXPECT_NE(explain(SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, p.server.get()).find("is revoked"), std::string::npos);
  const auto unknown = explain(SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, p.server.get());
  EXPECT_NE(unknown.find("not among our SANs (IP:127.0.0.1, DNS:localhost)"), std::string::npos) << unknown;
}

TEST(TlsExplain, RealHandshakeWithAnExpiredServerCertificate) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  auto expired = leaf("broker-1", "IP:127.0.0.1", -10 * kDay, -kDay, 51, key.get());
  auto sctx = make_server_context(serving(expired.get(), key.get()));
  ASSERT_TRUE(sctx.ok());
  auto cctx = make_client_context(client_settings());
  SslPtr s(SSL_new((*sctx)->current().get()));
  auto c = (*cctx)->new_ssl("127.0.0.1");
  ASSERT_FALSE(handshake_pair(s.get(), c->get()).ok);
  // The client gave up first; the server now reads its alert.
  const int step = SSL_do_handshake(s.get());
  HandshakeFailure f;
  f.ssl_error = SSL_get_error(s.get(), step);
  f.error_code = ERR_peek_error();
  f.own_certificate = SSL_get_certificate(s.get());
  const auto why = explain_handshake_failure(f);
  EXPECT_NE(why.find("which expired on"), std::string::npos) << why;
  EXPECT_EQ(why.find("add our CA"), std::string::npos) << why;
}

}  // namespace
}  // namespace bulwark::tls
