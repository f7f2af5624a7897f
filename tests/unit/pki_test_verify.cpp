// pki::verify against certificates built here with OpenSSL, one per failure mode.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <ctime>
#include <string>
#include <vector>

#include "pki/verify.h"
#include "security/keystore.h"

namespace bulwark::pki {
namespace {

using ::testing::HasSubstr;

constexpr long kDay = 86400;

EvpPkeyPtr ec_key(const char* curve = "P-256") { return EvpPkeyPtr(EVP_EC_gen(curve)); }
EvpPkeyPtr rsa_key(unsigned bits) { return EvpPkeyPtr(EVP_RSA_gen(bits)); }

struct CertOptions {
  std::string cn;
  std::string san;  // "DNS:a,IP:1.2.3.4"; empty: no SAN extension
  long not_before = -kDay;       // seconds from now
  long not_after = 365 * kDay;   // seconds from now
  bool ca = false;
  std::string eku = "serverAuth,clientAuth";  // empty: no EKU extension
  std::string key_usage;                      // empty: the usual one for a CA or a leaf
  const EVP_MD* md = EVP_sha256();
};

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value << ": " << openssl_errors();
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr: self-signed with `key`.
X509Ptr make_cert(const CertOptions& o, EVP_PKEY* key, X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
  static long serial = 1;
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(o.cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), o.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), o.not_after);
  X509_set_pubkey(cert.get(), key);
  X509* signer = issuer ? issuer : cert.get();
  add_ext(cert.get(), signer, NID_basic_constraints, o.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
  add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  std::string ku = !o.key_usage.empty() ? o.key_usage
                   : o.ca               ? "critical,keyCertSign,cRLSign"
                                        : "critical,digitalSignature,keyEncipherment";
  add_ext(cert.get(), signer, NID_key_usage, ku);
  if (!o.eku.empty() && !o.ca) add_ext(cert.get(), signer, NID_ext_key_usage, o.eku);
  if (!o.san.empty()) add_ext(cert.get(), signer, NID_subject_alt_name, o.san);
  EVP_PKEY* sign_key = issuer_key ? issuer_key : key;
  bool no_digest = EVP_PKEY_get_base_id(sign_key) == EVP_PKEY_ED25519;
  EXPECT_GT(X509_sign(cert.get(), sign_key, no_digest ? nullptr : o.md), 0) << openssl_errors();
  return cert;
}

X509Ptr copy(const X509Ptr& c) { return share(c.get()); }

// A root, an intermediate and a leaf for kafka-1 / 127.0.0.1, all good.
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now = std::time(nullptr);
    root_key = ec_key();
    root = make_cert({.cn = "Test Root CA", .not_before = -10 * kDay, .not_after = 3650 * kDay, .ca = true},
                     root_key.get());
    int_key = ec_key();
    intermediate = make_cert({.cn = "Test Intermediate CA", .not_before = -10 * kDay, .not_after = 1825 * kDay,
                              .ca = true},
                             int_key.get(), root.get(), root_key.get());
    leaf_key = ec_key();
  }

  X509Ptr leaf(CertOptions o) { return make_cert(o, leaf_key.get(), intermediate.get(), int_key.get()); }
  static CertOptions good() { return {.cn = "kafka-1", .san = "DNS:kafka-1,IP:127.0.0.1"}; }

  VerifyInput input_for(X509Ptr cert, bool with_intermediate = true) {
    VerifyInput in;
    in.chain.push_back(std::move(cert));
    if (with_intermediate) in.chain.push_back(copy(intermediate));
    in.anchors.push_back(copy(root));
    in.anchors_source = "ca.pem";
    in.at = now;
    return in;
  }

  std::time_t now = 0;
  EvpPkeyPtr root_key, int_key, leaf_key;
  X509Ptr root, intermediate;
};

std::vector<Finding> of(const std::vector<Finding>& findings, const std::string& check) {
  std::vector<Finding> out;
  for (const auto& f : findings)
    if (f.check == check) out.push_back(f);
  return out;
}

std::vector<Finding> with(const std::vector<Finding>& findings, Severity severity) {
  std::vector<Finding> out;
  for (const auto& f : findings)
    if (f.severity == severity) out.push_back(f);
  return out;
}

std::string dump(const std::vector<Finding>& findings) {
  std::string out;
  for (const auto& f : findings)
    out += std::string(severity_name(f.severity)) + " " + f.check + ": " + f.message + "\n";
  return out;
}

// The single finding of `severity` for `check`; fails the test when there is not exactly one.
Finding only(const std::vector<Finding>& findings, const std::string& check, Severity severity) {
  auto matching = with(of(findings, check), severity);
  EXPECT_EQ(matching.size(), 1u) << dump(findings);
  return matching.empty() ? Finding{} : matching[0];
}

TEST_F(VerifyTest, GoodChainHasOnlyOkFindings) {
  auto in = input_for(leaf(good()));
  in.key = share(leaf_key.get());
  in.hosts = {"kafka-1", "127.0.0.1", "KAFKA-1."};
  auto findings = verify(in);
  EXPECT_TRUE(with(findings, Severity::warning).empty()) << dump(findings);
  EXPECT_TRUE(with(findings, Severity::error).empty()) << dump(findings);
  EXPECT_FALSE(has_error(findings));
  for (const char* check : {"chain", "validity", "host", "usage", "key", "strength"})
    EXPECT_FALSE(of(findings, check).empty()) << "no finding for " << check << "\n" << dump(findings);
  EXPECT_EQ(of(findings, "host").size(), 3u);
  EXPECT_THAT(of(findings, "chain")[0].message, HasSubstr("CN=kafka-1 -> CN=Test Intermediate CA -> CN=Test Root CA"));
}

TEST_F(VerifyTest, Expired) {
  auto o = good();
  o.not_before = -400 * kDay;
  o.not_after = -10 * kDay - 60;
  auto findings = verify(input_for(leaf(o)));
  auto f = only(findings, "validity", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("expired on"));
  EXPECT_THAT(f.message, HasSubstr("10 days ago"));
  // The leaf's dates are reported once, by the validity check, not again by the chain check.
  EXPECT_TRUE(with(of(findings, "chain"), Severity::error).empty()) << dump(findings);
  EXPECT_TRUE(has_error(findings));
}

TEST_F(VerifyTest, NotYetValid) {
  auto o = good();
  o.not_before = 5 * kDay + 60;
  auto f = only(verify(input_for(leaf(o))), "validity", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("not yet valid"));
  EXPECT_THAT(f.message, HasSubstr("in 5 days"));
}

TEST_F(VerifyTest, ExpiringSoonIsAWarning) {
  auto o = good();
  o.not_after = 10 * kDay + 60;
  auto findings = verify(input_for(leaf(o)));
  EXPECT_THAT(only(findings, "validity", Severity::warning).message, HasSubstr("in 10 days"));
  EXPECT_FALSE(has_error(findings)) << dump(findings);
}

TEST_F(VerifyTest, AtMovesTheClock) {
  auto in = input_for(leaf(good()));
  in.at = now + 400 * kDay;
  auto findings = verify(in);
  EXPECT_THAT(only(findings, "validity", Severity::error).message, HasSubstr("expired"));
}

TEST_F(VerifyTest, WrongHost) {
  auto in = input_for(leaf(good()));
  in.hosts = {"kafka-2", "10.0.0.9"};
  auto findings = verify(in);
  auto errors = with(of(findings, "host"), Severity::error);
  ASSERT_EQ(errors.size(), 2u) << dump(findings);
  EXPECT_THAT(errors[0].message, HasSubstr("the certificate has no SAN for kafka-2; clients that verify host names "
                                           "will refuse it"));
  EXPECT_THAT(errors[0].message, HasSubstr("DNS:kafka-1, IP:127.0.0.1"));
  EXPECT_THAT(errors[1].message, HasSubstr("the certificate has no SAN for 10.0.0.9"));
}

TEST_F(VerifyTest, IpListedAsDnsName) {
  auto o = good();
  o.san = "DNS:kafka-1,DNS:127.0.0.1";
  auto in = input_for(leaf(o));
  in.hosts = {"127.0.0.1"};
  auto f = only(verify(in), "host", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("the certificate lists 127.0.0.1 as a DNS name, not as an IP address; clients "
                                   "that verify host names will refuse it"));
}

TEST_F(VerifyTest, Ipv6AddressesCompareAsBytes) {
  auto o = good();
  o.san = "IP:::1";
  auto in = input_for(leaf(o));
  in.hosts = {"0:0:0:0:0:0:0:1", "[::1]"};
  auto findings = verify(in);
  EXPECT_EQ(with(of(findings, "host"), Severity::ok).size(), 2u) << dump(findings);
}

TEST_F(VerifyTest, WildcardsFollowRfc6125) {
  auto o = good();
  o.san = "DNS:*.kafka.example.com";
  auto in = input_for(leaf(o));
  in.hosts = {"b1.kafka.example.com", "kafka.example.com", "a.b1.kafka.example.com", ".kafka.example.com"};
  auto hosts = of(verify(in), "host");
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(hosts[0].severity, Severity::ok);
  EXPECT_EQ(hosts[1].severity, Severity::error);
  EXPECT_THAT(hosts[1].message, HasSubstr("exactly one label"));
  EXPECT_EQ(hosts[2].severity, Severity::error);
  EXPECT_EQ(hosts[3].severity, Severity::error);
}

TEST_F(VerifyTest, WildcardUnderTopLevelDomainAndPartialWildcardDoNotMatch) {
  auto o = good();
  o.san = "DNS:*.com,DNS:b*.example.com";
  auto in = input_for(leaf(o));
  in.hosts = {"example.com", "b1.example.com"};
  auto hosts = of(verify(in), "host");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].severity, Severity::error);
  EXPECT_EQ(hosts[1].severity, Severity::error);
  EXPECT_THAT(hosts[1].message, HasSubstr("partial wildcards"));
}

TEST_F(VerifyTest, CommonNameWithoutSan) {
  auto o = good();
  o.san.clear();
  auto in = input_for(leaf(o));
  in.hosts = {"kafka-1", "127.0.0.1"};
  auto findings = verify(in);
  auto hosts = of(findings, "host");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].severity, Severity::warning);
  EXPECT_THAT(hosts[0].message, HasSubstr("modern clients ignore the CN"));
  EXPECT_EQ(hosts[1].severity, Severity::error);
  EXPECT_THAT(hosts[1].message, HasSubstr("no SAN for 127.0.0.1"));
}

TEST_F(VerifyTest, NoSanWithoutHostIsAWarningForServers) {
  auto o = good();
  o.san.clear();
  auto in = input_for(leaf(o));
  EXPECT_THAT(only(verify(in), "host", Severity::warning).message, HasSubstr("no SAN"));
  in = input_for(leaf(o));
  in.purpose = Purpose::client;
  EXPECT_TRUE(of(verify(in), "host").empty());
}

TEST_F(VerifyTest, MissingServerAuthForServerPurpose) {
  auto o = good();
  o.eku = "clientAuth";
  auto in = input_for(leaf(o));
  in.purpose = Purpose::server;
  EXPECT_THAT(only(verify(in), "usage", Severity::error).message, HasSubstr("lacks serverAuth"));
  in = input_for(leaf(o));
  in.purpose = Purpose::client;
  EXPECT_FALSE(has_error(verify(in)));
  in = input_for(leaf(o));
  in.purpose = Purpose::any;
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings));
  EXPECT_THAT(dump(of(findings, "usage")), HasSubstr("client certificate only"));
}

TEST_F(VerifyTest, MissingClientAuth) {
  auto o = good();
  o.eku = "serverAuth";
  auto in = input_for(leaf(o));
  in.purpose = Purpose::client;
  EXPECT_THAT(only(verify(in), "usage", Severity::error).message, HasSubstr("lacks clientAuth"));
  in = input_for(leaf(o));
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
  auto f = only(findings, "usage", Severity::warning);
  EXPECT_THAT(f.message, HasSubstr("clientAuth"));
  EXPECT_THAT(f.message, HasSubstr("brokers are clients of each other"));
}

TEST_F(VerifyTest, NeitherServerNorClientAuth) {
  auto o = good();
  o.eku = "codeSigning";
  EXPECT_THAT(only(verify(input_for(leaf(o))), "usage", Severity::error).message, HasSubstr("neither"));
}

TEST_F(VerifyTest, KeyUsageWithoutDigitalSignature) {
  auto o = good();
  o.key_usage = "critical,keyAgreement";
  EXPECT_THAT(only(verify(input_for(leaf(o))), "usage", Severity::error).message, HasSubstr("digitalSignature"));
}

TEST_F(VerifyTest, RsaKeyWithoutKeyEnciphermentIsOnlyAWarning) {
  auto rsa = rsa_key(2048);
  auto o = good();
  o.key_usage = "critical,digitalSignature";
  auto in = input_for(make_cert(o, rsa.get(), intermediate.get(), int_key.get()));
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
  EXPECT_THAT(only(findings, "usage", Severity::warning).message, HasSubstr("keyEncipherment"));
}

TEST_F(VerifyTest, CaCertificateUsedAsLeaf) {
  auto o = good();
  o.ca = true;
  o.key_usage = "critical,digitalSignature,keyCertSign";
  auto findings = verify(input_for(leaf(o)));
  EXPECT_THAT(dump(with(of(findings, "usage"), Severity::error)), HasSubstr("CA:TRUE"));
}

TEST_F(VerifyTest, Rsa1024IsAnError) {
  auto small = rsa_key(1024);
  auto in = input_for(make_cert(good(), small.get(), intermediate.get(), int_key.get()));
  auto f = only(verify(in), "strength", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("1024-bit RSA"));
  EXPECT_THAT(f.message, HasSubstr("2048"));
}

TEST_F(VerifyTest, UnusualCurveIsAWarning) {
  auto k1 = ec_key("secp256k1");
  auto findings = verify(input_for(make_cert(good(), k1.get(), intermediate.get(), int_key.get())));
  EXPECT_THAT(only(findings, "strength", Severity::warning).message, HasSubstr("secp256k1"));
}

TEST_F(VerifyTest, Ed25519LeafIsFine) {
  EvpPkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_TRUE(ed);
  auto in = input_for(make_cert(good(), ed.get(), intermediate.get(), int_key.get()));
  in.key = share(ed.get());
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
  EXPECT_TRUE(with(of(findings, "strength"), Severity::warning).empty()) << dump(findings);
}

TEST_F(VerifyTest, Sha1SignatureIsAnError) {
  auto o = good();
  o.md = EVP_sha1();
  auto f = only(verify(input_for(leaf(o))), "strength", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("SHA-1"));
  EXPECT_THAT(f.message, HasSubstr("the certificate"));
}

TEST_F(VerifyTest, Sha1OnTheSelfSignedAnchorIsNotChecked) {
  auto old_root_key = rsa_key(2048);
  auto old_root = make_cert({.cn = "Old Root", .ca = true, .md = EVP_sha1()}, old_root_key.get());
  auto int2 = make_cert({.cn = "Int 2", .ca = true}, int_key.get(), old_root.get(), old_root_key.get());
  VerifyInput in;
  in.chain.push_back(make_cert(good(), leaf_key.get(), int2.get(), int_key.get()));
  in.chain.push_back(copy(int2));
  in.anchors.push_back(copy(old_root));
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);

  // A SHA-1 intermediate is checked.
  auto int3 = make_cert({.cn = "Int 3", .ca = true, .md = EVP_sha1()}, int_key.get(), root.get(), root_key.get());
  VerifyInput in3;
  in3.chain.push_back(make_cert(good(), leaf_key.get(), int3.get(), int_key.get()));
  in3.chain.push_back(copy(int3));
  in3.anchors.push_back(copy(root));
  EXPECT_THAT(only(verify(in3), "strength", Severity::error).message, HasSubstr("CN=Int 3 is signed with SHA-1"));
}

TEST_F(VerifyTest, WrongKey) {
  auto in = input_for(leaf(good()));
  auto other = ec_key();
  in.key = std::move(other);
  EXPECT_THAT(only(verify(in), "key", Severity::error).message, HasSubstr("does not belong"));
}

TEST_F(VerifyTest, UntrustedIssuer) {
  auto other_key = ec_key();
  auto other_root = make_cert({.cn = "Other Root CA", .ca = true}, other_key.get());
  VerifyInput in;
  in.chain.push_back(make_cert(good(), leaf_key.get(), other_root.get(), other_key.get()));
  in.chain.push_back(copy(other_root));
  in.anchors.push_back(copy(root));
  auto f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("signed by a CA that is not in the trust bundle (issuer: CN=Other Root CA)"));
}

TEST_F(VerifyTest, UntrustedIssuerKnownAsRoot) {
  auto other_key = ec_key();
  auto other_root = make_cert({.cn = "Other Root CA", .ca = true}, other_key.get());
  VerifyInput in;
  in.chain.push_back(make_cert(good(), leaf_key.get(), other_root.get(), other_key.get()));
  in.anchors.push_back(copy(root));
  in.known_cas.push_back(copy(other_root));
  auto f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("signed by a CA that is not in the trust bundle (issuer: CN=Other Root CA)"));
  EXPECT_THAT(f.message, Not(HasSubstr("missing")));
}

TEST_F(VerifyTest, MissingIntermediate) {
  auto in = input_for(leaf(good()), /*with_intermediate=*/false);
  auto f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("the chain is missing the intermediate CA CN=Test Intermediate CA"));
  EXPECT_THAT(f.message, HasSubstr("serve the full chain"));

  in = input_for(leaf(good()), false);
  in.known_cas.push_back(copy(intermediate));
  f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("the chain is missing the intermediate CA CN=Test Intermediate CA; serve the "
                                   "full chain"));
}

TEST_F(VerifyTest, IntermediateFoundOutsideTheFileIsAWarning) {
  auto in = input_for(leaf(good()), false);
  in.untrusted.push_back(copy(intermediate));
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
  EXPECT_THAT(only(findings, "chain", Severity::warning).message,
              HasSubstr("does not include the intermediate CA CN=Test Intermediate CA"));
}

TEST_F(VerifyTest, SelfSignedNotInBundle) {
  auto key = ec_key();
  VerifyInput in;
  in.chain.push_back(make_cert({.cn = "selfie", .san = "DNS:selfie"}, key.get()));
  in.anchors.push_back(copy(root));
  auto f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("self-signed certificate not in the trust bundle"));
  EXPECT_THAT(f.message, HasSubstr("CN=selfie"));
}

TEST_F(VerifyTest, SelfSignedInBundleVerifies) {
  auto key = ec_key();
  auto self = make_cert({.cn = "selfie", .san = "DNS:selfie"}, key.get());
  VerifyInput in;
  in.chain.push_back(copy(self));
  in.anchors.push_back(copy(self));
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
}

TEST_F(VerifyTest, RecreatedCaWithTheSameName) {
  auto new_root_key = ec_key();
  auto new_root = make_cert({.cn = "Test Root CA", .ca = true}, new_root_key.get());
  auto in = input_for(leaf(good()));
  in.anchors.clear();
  in.anchors.push_back(copy(new_root));
  auto f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("different key"));
}

TEST_F(VerifyTest, IntermediateAsTheOnlyAnchorIsAWarning) {
  auto in = input_for(leaf(good()), false);
  in.anchors.clear();
  in.anchors.push_back(copy(intermediate));
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
  auto chain = of(findings, "chain");
  ASSERT_EQ(chain.size(), 1u) << dump(findings);
  EXPECT_EQ(chain[0].severity, Severity::warning);
  EXPECT_THAT(chain[0].message, HasSubstr("not the root CA that signed it (CN=Test Root CA)"));
}

TEST_F(VerifyTest, CaCertificateCheckedAsCa) {
  VerifyInput in;
  in.chain.push_back(copy(intermediate));
  in.anchors.push_back(copy(root));
  in.hosts = {"kafka-1"};
  auto findings = verify_ca(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
  EXPECT_THAT(only(findings, "usage", Severity::ok).message, HasSubstr("a CA certificate"));
  EXPECT_THAT(only(findings, "host", Severity::warning).message, HasSubstr("not checked"));
  EXPECT_TRUE(only_ca_certificates(in.chain));
  std::vector<X509Ptr> mixed;
  mixed.push_back(leaf(good()));
  mixed.push_back(copy(intermediate));
  EXPECT_FALSE(only_ca_certificates(mixed));

  auto no_sign_key = ec_key();
  auto no_sign = make_cert({.cn = "No Sign CA", .ca = true, .key_usage = "critical,digitalSignature"},
                           no_sign_key.get(), root.get(), root_key.get());
  VerifyInput bad;
  bad.chain.push_back(copy(no_sign));
  bad.anchors.push_back(copy(root));
  EXPECT_THAT(only(verify_ca(bad), "usage", Severity::error).message, HasSubstr("keyCertSign"));
}

TEST_F(VerifyTest, NoTrustAnchors) {
  auto in = input_for(leaf(good()));
  in.anchors.clear();
  EXPECT_THAT(only(verify(in), "chain", Severity::error).message, HasSubstr("no trust anchors"));
}

TEST_F(VerifyTest, ExpiredIntermediate) {
  auto old_int = make_cert({.cn = "Old Intermediate", .not_before = -100 * kDay, .not_after = -kDay, .ca = true},
                           int_key.get(), root.get(), root_key.get());
  VerifyInput in;
  in.chain.push_back(make_cert(good(), leaf_key.get(), old_int.get(), int_key.get()));
  in.chain.push_back(copy(old_int));
  in.anchors.push_back(copy(root));
  auto f = only(verify(in), "chain", Severity::error);
  EXPECT_THAT(f.message, HasSubstr("CN=Old Intermediate"));
  EXPECT_THAT(f.message, HasSubstr("expired"));
}

TEST_F(VerifyTest, IntermediateNotMarkedAsCa) {
  auto fake_int = make_cert({.cn = "Not A CA", .eku = ""}, int_key.get(), root.get(), root_key.get());
  VerifyInput in;
  in.chain.push_back(make_cert(good(), leaf_key.get(), fake_int.get(), int_key.get()));
  in.chain.push_back(copy(fake_int));
  in.anchors.push_back(copy(root));
  EXPECT_THAT(dump(with(of(verify(in), "chain"), Severity::error)), HasSubstr("is not a CA"));
}

TEST_F(VerifyTest, TrustedCertificateChecks) {
  auto good_findings = verify_trusted_certificate(root.get(), "trusted entry 'root'", now);
  EXPECT_FALSE(has_error(good_findings)) << dump(good_findings);
  auto old_key = ec_key();
  auto old = make_cert({.cn = "Old Root", .not_before = -100 * kDay, .not_after = -2 * kDay, .ca = true},
                       old_key.get());
  auto findings = verify_trusted_certificate(old.get(), "trusted entry 'old'", now);
  EXPECT_THAT(only(findings, "validity", Severity::error).message, HasSubstr("expired"));
  auto not_ca = verify_trusted_certificate(leaf(good()).get(), "trusted entry 'leaf'", now);
  EXPECT_THAT(only(not_ca, "trust", Severity::warning).message, HasSubstr("not a CA"));
}

// ---- Loading -------------------------------------------------------------------------------------

std::string pem_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* key, const char* password = nullptr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (password)
    PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), password, static_cast<int>(strlen(password)),
                                  nullptr, nullptr);
  else
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

TEST_F(VerifyTest, ParsesPemKeyAndChainInAnyOrder) {
  auto cert = leaf(good());
  std::string text = pem_of(root.get()) + pem_of(intermediate.get()) + pem_of(leaf_key.get()) + pem_of(cert.get());
  auto loaded = parse_certificates(text, "chain.pem", "");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->format, "PEM");
  ASSERT_EQ(loaded->sets.size(), 1u);
  ASSERT_EQ(loaded->sets[0].chain.size(), 3u);
  EXPECT_EQ(X509_cmp(loaded->sets[0].chain[0].get(), cert.get()), 0);
  EXPECT_TRUE(loaded->sets[0].key);

  // Without a key, the leaf is the certificate that signed none of the others.
  text = pem_of(intermediate.get()) + pem_of(cert.get());
  loaded = parse_certificates(text, "chain.pem", "");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(X509_cmp(loaded->sets[0].chain[0].get(), cert.get()), 0);
}

TEST_F(VerifyTest, EncryptedKeyNeedsTheRightPassword) {
  auto cert = leaf(good());
  std::string text = pem_of(leaf_key.get(), "s3cret-pass") + pem_of(cert.get());
  auto none = parse_certificates(text, "kafka.pem", "");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message, HasSubstr("encrypted"));
  EXPECT_THAT(none.error().message, HasSubstr("--password"));
  auto wrong = parse_certificates(text, "kafka.pem", "nope-nope");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message, HasSubstr("wrong password"));
  EXPECT_THAT(wrong.error().message, Not(HasSubstr("nope-nope")));
  auto right = parse_certificates(text, "kafka.pem", "s3cret-pass");
  ASSERT_TRUE(right.ok()) << right.error().message;
  EXPECT_TRUE(right->sets[0].key);
}

TEST_F(VerifyTest, ParsesDerAndRefusesGarbage) {
  unsigned char* der = nullptr;
  int n = i2d_X509(root.get(), &der);
  ASSERT_GT(n, 0);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  auto loaded = parse_certificates(bytes, "root.der", "");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->format, "DER");

  auto garbage = parse_certificates("hello, world", "x.txt", "");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.error().message, HasSubstr("not a certificate"));
  auto truncated = parse_certificates(bytes.substr(0, bytes.size() / 2), "root.der", "");
  EXPECT_FALSE(truncated.ok());
  auto broken_pem = parse_certificates("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "x.pem", "");
  EXPECT_FALSE(broken_pem.ok());
  auto key_only = parse_certificates(pem_of(leaf_key.get()), "key.pem", "");
  ASSERT_FALSE(key_only.ok());
  EXPECT_THAT(key_only.error().message, HasSubstr("no certificate"));
  EXPECT_FALSE(parse_certificates("", "empty.pem", "").ok());
}

TEST_F(VerifyTest, ReadsKeystores) {
  keystore::KeyStore store;
  keystore::PrivateKeyEntry entry;
  entry.alias = "kafka-1";
  entry.key = share(leaf_key.get());
  entry.chain.push_back(leaf(good()));
  entry.chain.push_back(copy(intermediate));
  entry.chain.push_back(copy(root));
  store.keys.push_back(std::move(entry));
  store.trusted.push_back({"caroot", copy(root)});

  auto jks = keystore::encode_jks(store, "changeit");
  ASSERT_TRUE(jks.ok()) << jks.error().message;
  std::string jks_bytes(as_chars(*jks));
  auto loaded = parse_certificates(jks_bytes, "kafka.jks", "changeit");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->format, "JKS");
  ASSERT_EQ(loaded->sets.size(), 1u);
  EXPECT_EQ(loaded->sets[0].label, "entry 'kafka-1'");
  EXPECT_EQ(loaded->sets[0].chain.size(), 3u);
  ASSERT_EQ(loaded->trusted.size(), 1u);
  EXPECT_FALSE(parse_certificates(jks_bytes, "kafka.jks", "wrong-password").ok());
  auto no_password = parse_certificates(jks_bytes, "kafka.jks", "");
  ASSERT_FALSE(no_password.ok());
  EXPECT_THAT(no_password.error().message, HasSubstr("--password"));

  auto p12 = keystore::encode_pkcs12(store, "changeit");
  ASSERT_TRUE(p12.ok()) << p12.error().message;
  std::string p12_bytes(as_chars(*p12));
  loaded = parse_certificates(p12_bytes, "kafka.p12", "changeit");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->format, "PKCS12");
  ASSERT_EQ(loaded->sets.size(), 1u);
  EXPECT_TRUE(loaded->sets[0].key);
  EXPECT_FALSE(parse_certificates(p12_bytes, "kafka.p12", "wrong-password").ok());

  // The whole keystore entry verifies.
  VerifyInput in;
  in.chain = std::move(loaded->sets[0].chain);
  in.key = std::move(loaded->sets[0].key);
  in.anchors.push_back(copy(root));
  in.hosts = {"kafka-1"};
  auto findings = verify(in);
  EXPECT_FALSE(has_error(findings)) << dump(findings);
}

// Damaged inputs of every kind give an error or a certificate, never a crash (run under ASan too).
TEST_F(VerifyTest, DamagedInputsDoNotCrash) {
  keystore::KeyStore store;
  keystore::PrivateKeyEntry entry;
  entry.alias = "k";
  entry.key = share(leaf_key.get());
  entry.chain.push_back(leaf(good()));
  entry.chain.push_back(copy(intermediate));
  store.keys.push_back(std::move(entry));
  auto jks = keystore::encode_jks(store, "changeit");
  auto p12 = keystore::encode_pkcs12(store, "changeit");
  ASSERT_TRUE(jks.ok() && p12.ok());
  unsigned char* der = nullptr;
  int n = i2d_X509(intermediate.get(), &der);
  std::string der_text(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  std::vector<std::string> samples = {pem_of(leaf_key.get()) + pem_of(root.get()), der_text,
                                      std::string(as_chars(*jks)), std::string(as_chars(*p12))};
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (const auto& sample : samples) {
    for (int round = 0; round < 60; ++round) {
      std::string damaged = sample;
      if (round % 3 == 0) damaged.resize(next() % damaged.size());
      for (int flips = 0; flips < 1 + round % 4 && !damaged.empty(); ++flips)
        damaged[next() % damaged.size()] ^= static_cast<char>(1 + next() % 255);
      auto loaded = parse_certificates(damaged, "damaged", "changeit");
      if (!loaded.ok()) {
        EXPECT_FALSE(loaded.error().message.empty());
        continue;
      }
      for (auto& set : loaded->sets) {
        if (set.chain.empty()) continue;
        VerifyInput in;
        in.chain = std::move(set.chain);
        in.key = std::move(set.key);
        in.anchors.push_back(copy(root));
        in.hosts = {"kafka-1"};
        EXPECT_FALSE(verify(in).empty());
      }
    }
  }
}

TEST(VerifyParse, Purpose) {
  EXPECT_EQ(*parse_purpose("server"), Purpose::server);
  EXPECT_EQ(*parse_purpose("Client"), Purpose::client);
  EXPECT_EQ(*parse_purpose("any"), Purpose::any);
  EXPECT_FALSE(parse_purpose("broker").ok());
}

TEST(VerifyParse, Time) {
  EXPECT_EQ(*parse_time("1970-01-02"), 86400);
  EXPECT_EQ(*parse_time("2026-11-23T20:00:00Z"), 1795464000);
  EXPECT_EQ(*parse_time("2026-11-23 20:00:00"), 1795464000);
  EXPECT_EQ(*parse_time("@1795464000"), 1795464000);
  for (const char* bad : {"", "2026-02-31", "2026-13-01", "tomorrow", "@", "@12x", "2026-11-23T20:00:00+01"})
    EXPECT_FALSE(parse_time(bad).ok()) << bad;
}

}  // namespace
}  // namespace bulwark::pki
