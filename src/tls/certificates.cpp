#include "tls/certificates.h"

#include <arpa/inet.h>
#include <openssl/pem.h>

#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/files.h"

namespace bulwark::tls {
namespace {

constexpr std::int64_t kDay = 24 * 3600;

std::int64_t epoch_of(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::vector<std::string> sans_of(const X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* dns = name->d.dNSName;
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                         static_cast<std::size_t>(ASN1_STRING_length(dns))));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : -1;
      if (family != -1 && inet_ntop(family, ip->data, text, sizeof text) != nullptr) out.push_back("IP:" + std::string(text));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string serial_of(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return "?";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "?";
  OPENSSL_free(hex);
  return out;
}

// What a certificate is called in a message: its subject and serial.
std::string label(const CertificateFacts& facts) { return fmt::format("{} (serial {})", facts.subject, facts.serial); }

// Verifies `chain` (leaf first) against the anchors of `truststore` at `now`; "" when it verifies.
std::string verify_chain(const std::vector<X509Ptr>& chain, const keystore::KeyStore& truststore, std::int64_t now) {
  X509StorePtr store(X509_STORE_new());
  for (const X509* anchor : trust_anchors(truststore)) X509_STORE_add_cert(store.get(), const_cast<X509*>(anchor));
  ERR_clear_error();
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  std::string error;
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), untrusted) != 1) {
    error = "cannot set up the verification";
  } else {
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(now));
    if (X509_verify_cert(ctx.get()) != 1) error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }
  sk_X509_free(untrusted);
  ERR_clear_error();
  return error;
}

const std::vector<X509Ptr>* served_chain(const TlsSettings& settings) {
  if (settings.keystore.keys.empty() || settings.keystore.keys.front().chain.empty()) return nullptr;
  return &settings.keystore.keys.front().chain;
}

void check_expiry(std::vector<ValidityFinding>& out, const X509* cert, std::string_view role, std::int64_t now,
                  int warn_days) {
  const auto facts = certificate_facts(cert);
  const std::int64_t days_left = (facts.not_after - now) / kDay;
  if (facts.not_after <= now) {
    out.push_back({Severity::warning, fmt::format("{} {} expired on {}", role, label(facts), format_utc(facts.not_after))});
  } else if (days_left < warn_days) {
    out.push_back({Severity::warning, fmt::format("{} {} expires in {} day(s), on {}", role, label(facts), days_left,
                                                  format_utc(facts.not_after))});
  }
}

}  // namespace

CertificateFacts certificate_facts(const X509* cert) {
  CertificateFacts facts;
  if (cert == nullptr) return facts;
  facts.subject = subject_rfc2253(cert);
  facts.issuer = name_rfc2253(X509_get_issuer_name(cert));
  facts.serial = serial_of(X509_get0_serialNumber(cert));
  facts.sans = sans_of(cert);
  facts.not_before = epoch_of(X509_get0_notBefore(cert));
  facts.not_after = epoch_of(X509_get0_notAfter(cert));
  return facts;
}

std::string format_utc(std::int64_t epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::vector<const X509*> trust_anchors(const keystore::KeyStore& truststore) {
  std::vector<const X509*> out;
  for (const auto& entry : truststore.trusted)
    if (entry.cert) out.push_back(entry.cert.get());
  for (const auto& entry : truststore.keys)
    for (const auto& cert : entry.chain) out.push_back(cert.get());
  return out;
}

const X509* served_certificate(const TlsSettings& settings) {
  const auto* chain = served_chain(settings);
  return chain == nullptr ? nullptr : chain->front().get();
}

Status check_replacement(const TlsSettings& in_force, const TlsSettings& next, const ReplacementRules& rules,
                         std::int64_t now) {
  const X509* old_leaf = served_certificate(in_force);
  const X509* new_leaf = served_certificate(next);
  if (old_leaf != nullptr && new_leaf != nullptr && X509_cmp(old_leaf, new_leaf) != 0) {
    const auto before = certificate_facts(old_leaf), after = certificate_facts(new_leaf);
    if (!rules.allow_dn_changes && X509_NAME_cmp(X509_get_subject_name(old_leaf), X509_get_subject_name(new_leaf)) != 0)
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("the new certificate's subject {} differs from the one in force, {} (a running "
                                    "listener keeps its subject, as Kafka's; set ssl.allow.dn.changes=true to allow it)",
                                    after.subject, before.subject));
    std::vector<std::string> dropped;
    for (const auto& san : before.sans)
      if (std::find(after.sans.begin(), after.sans.end(), san) == after.sans.end()) dropped.push_back(san);
    if (!rules.allow_san_changes && !dropped.empty())
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("the new certificate lacks {} of the one in force (clients that dial those names "
                                    "would fail; set ssl.allow.san.changes=true to allow it)",
                                    fmt::join(dropped, ", ")));
  }
  if (!rules.peers_must_verify) return Status::success();
  const auto* new_chain = served_chain(next);
  if (new_chain != nullptr && !trust_anchors(in_force.truststore).empty()) {
    if (auto why = verify_chain(*new_chain, in_force.truststore, now); !why.empty())
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("the other nodes could not verify the new certificate (issuer {}: {}); put its CA "
                                    "into every truststore first (pki rotate-ca --phase 1)",
                                    certificate_facts(new_chain->front().get()).issuer, why));
  }
  const auto* old_chain = served_chain(in_force);
  if (old_chain != nullptr && !trust_anchors(next.truststore).empty()) {
    if (auto why = verify_chain(*old_chain, next.truststore, now); !why.empty())
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("the new truststore would not verify the certificates the other nodes still use "
                                    "(issuer {}: {}); keep their CA in it until every node has its new certificate",
                                    certificate_facts(old_chain->front().get()).issuer, why));
  }
  return Status::success();
}

std::vector<ValidityFinding> check_validity(const TlsSettings& settings, std::int64_t now, int warn_days) {
  std::vector<ValidityFinding> out;
  if (const auto* chain = served_chain(settings)) {
    const auto leaf = certificate_facts(chain->front().get());
    if (leaf.not_before > now) {
      out.push_back({Severity::error, fmt::format("the certificate {} is not valid until {} (check this machine's clock, "
                                                  "or wait for it)",
                                                  label(leaf), format_utc(leaf.not_before))});
    } else if (leaf.not_after <= now) {
      out.push_back({Severity::error, fmt::format("the certificate {} expired on {}: renew it (bulwark pki renew) and "
                                                  "point the keystore at the new one",
                                                  label(leaf), format_utc(leaf.not_after))});
    } else {
      check_expiry(out, chain->front().get(), "the certificate", now, warn_days);
    }
    for (std::size_t i = 1; i < chain->size(); ++i) check_expiry(out, (*chain)[i].get(), "the chain's CA", now, warn_days);
  }
  for (const auto& entry : settings.truststore.trusted)
    if (entry.cert) check_expiry(out, entry.cert.get(), "the trusted CA", now, warn_days);
  for (const auto& crl : settings.crls) {
    const std::int64_t next_update = epoch_of(X509_CRL_get0_nextUpdate(crl.get()));
    if (next_update != 0 && next_update <= now)
      out.push_back({Severity::warning, fmt::format("the CRL of {} was due for renewal on {}: the revocations it lists "
                                                    "still hold, but publish a new one (bulwark pki crl)",
                                                    name_rfc2253(X509_CRL_get_issuer(crl.get())), format_utc(next_update))});
  }
  return out;
}

Result<std::vector<X509CrlPtr>> load_crls(const std::filesystem::path& path) {
  auto bytes = read_file(path);
  if (!bytes.ok()) return make_error(bytes.error().kind, "the CRL file " + path.string() + ": " + bytes.error().message);
  std::vector<X509CrlPtr> out;
  const std::string& text = *bytes;
  if (text.find("-----BEGIN X509 CRL-----") != std::string::npos) {
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(crl);
    ERR_clear_error();
  } else {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    if (X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(text.size()))) out.emplace_back(crl);
    ERR_clear_error();
  }
  if (out.empty())
    return make_error(ErrorKind::invalid_argument,
                      "the CRL file " + path.string() + " holds no CRL (expected PEM \"BEGIN X509 CRL\" blocks or one DER CRL)");
  return out;
}

Status check_crls_signed(const TlsSettings& settings) {
  // The CA that signs a CRL is often an intermediate that only our own chain holds.
  auto issuers = trust_anchors(settings.truststore);
  for (const auto& entry : settings.keystore.keys)
    for (const auto& cert : entry.chain) issuers.push_back(cert.get());
  for (const auto& crl : settings.crls) {
    const X509_NAME* crl_issuer = X509_CRL_get_issuer(crl.get());
    bool known = false, verified = false;
    for (const X509* issuer : issuers) {
      if (X509_NAME_cmp(X509_get_subject_name(issuer), crl_issuer) != 0) continue;
      known = true;
      verified = verified || X509_CRL_verify(crl.get(), X509_get0_pubkey(issuer)) == 1;
    }
    ERR_clear_error();
    // An issuer we do not hold is checked by OpenSSL against the chain each client sends.
    if (known && !verified)
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("the CRL of {} is not signed by that CA's key: it is refused", name_rfc2253(crl_issuer)));
  }
  return Status::success();
}

bool is_revoked(const std::vector<X509CrlPtr>& crls, const X509* cert) {
  for (const auto& crl : crls) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_issuer_name(cert)) != 0) continue;
    X509_REVOKED* entry = nullptr;
    if (X509_CRL_get0_by_cert(crl.get(), &entry, const_cast<X509*>(cert)) == 1) return true;
  }
  return false;
}

}  // namespace bulwark::tls
