#include "pki/verify.h"

#include <arpa/inet.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "base/files.h"
#include "security/keystore.h"

namespace bulwark::pki {
namespace {

constexpr std::time_t kDay = 86400;
// Chains longer than this are not real; it also bounds the work on crafted input.
constexpr std::size_t kMaxCertificates = 64;
constexpr std::uintmax_t kMaxInputBytes = 16u << 20;

Finding ok(std::string check, std::string message) { return {Severity::ok, std::move(check), std::move(message)}; }
Finding warning(std::string check, std::string message) {
  return {Severity::warning, std::move(check), std::move(message)};
}
Finding error(std::string check, std::string message) {
  return {Severity::error, std::move(check), std::move(message)};
}

std::string name_text(const X509_NAME* name) {
  if (name == nullptr) return "(no name)";
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return "(unprintable name)";
  // RFC 2253 as Kafka prints principals, but keep UTF-8 readable instead of escaping it.
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  std::string text(data, static_cast<std::size_t>(size > 0 ? size : 0));
  return text.empty() ? "(empty name)" : text;
}

std::string common_name(X509* cert) {
  const X509_NAME* name = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int size = ASN1_STRING_to_UTF8(&utf8, value);
  if (size < 0) return {};
  std::string text(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(size));
  OPENSSL_free(utf8);
  return text;
}

std::optional<std::time_t> to_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
  return timegm(&tm);
}

std::string format_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// "N days" in words, rounding toward zero, with hours under a day.
std::string span_text(std::time_t seconds) {
  if (seconds < 0) seconds = -seconds;
  std::time_t days = seconds / kDay;
  if (days == 0) {
    std::time_t hours = seconds / 3600;
    if (hours == 0) return "less than an hour";
    return fmt::format("{} hour{}", hours, hours == 1 ? "" : "s");
  }
  return fmt::format("{} day{}", days, days == 1 ? "" : "s");
}

bool self_signed(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0; }
// An X.509 v1 certificate has no extensions; self-signed, it is a legal root (RFC 5280 6.1: a trust
// anchor needs no basicConstraints), and OpenSSL and Java accept it as a CA, as seed 002's recipe makes.
bool is_v1_root(X509* cert) { return X509_get_version(cert) == X509_VERSION_1 && self_signed(cert); }
bool is_ca(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0 || is_v1_root(cert); }

bool same_cert(X509* a, X509* b) { return X509_cmp(a, b) == 0; }

bool contains(const std::vector<X509Ptr>& certs, X509* cert) {
  return std::any_of(certs.begin(), certs.end(), [&](const X509Ptr& c) { return same_cert(c.get(), cert); });
}

X509* find_by_subject(const std::vector<X509Ptr>& certs, const X509_NAME* name) {
  for (const auto& c : certs)
    if (X509_NAME_cmp(X509_get_subject_name(c.get()), name) == 0) return c.get();
  return nullptr;
}

// ---- SANs ----------------------------------------------------------------------------------------

struct Sans {
  bool present = false;  // the extension exists
  std::vector<std::string> dns;
  std::vector<Bytes> ips;  // 4 or 16 bytes
  std::vector<std::string> ip_texts;
};

std::string ip_text(const unsigned char* data, int size) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (size == 4) inet_ntop(AF_INET, data, buf, sizeof buf);
  else if (size == 16) inet_ntop(AF_INET6, data, buf, sizeof buf);
  else return "(malformed IP)";
  return buf;
}

Sans sans_of(X509* cert) {
  Sans sans;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return sans;
  sans.present = true;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      sans.dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_STRING* s = name->d.iPAddress;
      const unsigned char* data = ASN1_STRING_get0_data(s);
      int size = ASN1_STRING_length(s);
      sans.ips.emplace_back(data, data + size);
      sans.ip_texts.push_back(ip_text(data, size));
    }
  }
  GENERAL_NAMES_free(names);
  return sans;
}

std::string sans_text(const Sans& sans) {
  std::string out;
  for (const auto& d : sans.dns) out += (out.empty() ? "" : ", ") + ("DNS:" + d);
  for (const auto& ip : sans.ip_texts) out += (out.empty() ? "" : ", ") + ("IP:" + ip);
  return out.empty() ? "none" : out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string strip_dot(std::string text) {
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// The IP address in `host` ("10.0.0.1", "::1", "[::1]"), or nullopt for a DNS name.
std::optional<Bytes> parse_ip(std::string_view host) {
  std::string text(host);
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return Bytes(buf, buf + 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return Bytes(buf, buf + 16);
  return std::nullopt;
}

// RFC 6125 section 6.4.3 as clients apply it today: a wildcard only as the whole left-most label,
// standing for exactly one non-empty label, and never for a label right under a top-level domain.
bool dns_matches(std::string_view pattern_in, std::string_view host_in) {
  std::string pattern = strip_dot(lower(pattern_in));
  std::string host = strip_dot(lower(host_in));
  if (pattern.empty() || host.empty()) return false;
  if (pattern.rfind("*.", 0) != 0) return pattern == host && pattern.find('*') == std::string::npos;
  std::string rest = pattern.substr(2);
  if (rest.find('.') == std::string::npos || rest.find('*') != std::string::npos) return false;
  auto dot = host.find('.');
  if (dot == 0 || dot == std::string::npos) return false;
  return host.substr(dot + 1) == rest;
}

// ---- Checks --------------------------------------------------------------------------------------

struct ChainError {
  int code = 0;
  int depth = 0;
  X509Ptr cert;
};

int collect_errors(int preverify_ok, X509_STORE_CTX* ctx) {
  if (preverify_ok) return 1;
  auto* errors = static_cast<std::vector<ChainError>*>(X509_STORE_CTX_get_app_data(ctx));
  int code = X509_STORE_CTX_get_error(ctx);
  int depth = X509_STORE_CTX_get_error_depth(ctx);
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  bool seen = std::any_of(errors->begin(), errors->end(),
                          [&](const ChainError& e) { return e.code == code && e.depth == depth; });
  if (!seen && errors->size() < 32) errors->push_back({code, depth, cert ? share(cert) : nullptr});
  // Keep going, so one run reports every problem instead of the first.
  return 1;
}

std::string ca_label(X509* cert, bool anchor) {
  return fmt::format("{} CA {}", anchor ? "the trusted" : "the", name_text(X509_get_subject_name(cert)));
}

// The plain-words reading of one X509_V_ERR code.
std::optional<Finding> explain_chain_error(const ChainError& e, const VerifyInput& input, X509* leaf,
                                           std::time_t now) {
  X509* cert = e.cert ? e.cert.get() : leaf;
  std::string subject = name_text(X509_get_subject_name(cert));
  std::string issuer = name_text(X509_get_issuer_name(cert));
  bool cert_is_anchor = contains(input.anchors, cert);
  switch (e.code) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED: {
      if (e.depth == 0) return std::nullopt;  // the validity check reports the leaf's own dates
      if (e.code == X509_V_ERR_CERT_HAS_EXPIRED) {
        auto end = to_time(X509_get0_notAfter(cert)).value_or(now);
        return error("chain", fmt::format("{} in the chain expired on {} ({} ago); every certificate it signed "
                                          "is refused until the chain is renewed",
                                          ca_label(cert, cert_is_anchor), format_date(end), span_text(now - end)));
      }
      auto start = to_time(X509_get0_notBefore(cert)).value_or(now);
      return error("chain", fmt::format("{} in the chain is not valid until {} (in {}); check the clock",
                                        ca_label(cert, cert_is_anchor), format_date(start), span_text(start - now)));
    }
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return error("chain", fmt::format("self-signed certificate not in the trust bundle (subject: {}); add it "
                                        "to the trust bundle or use a certificate issued by a trusted CA",
                                        subject));
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: {
      X509* same_name = find_by_subject(input.anchors, X509_get_subject_name(cert));
      if (same_name != nullptr)
        return error("chain", fmt::format("the certificate was signed by a CA that is not in the trust bundle "
                                          "(issuer: {}): the bundle has a CA with that name but a different key, "
                                          "so the CA was probably re-created; use the current CA bundle or "
                                          "reissue the certificate",
                                          subject));
      return error("chain", fmt::format("the certificate was signed by a CA that is not in the trust bundle "
                                        "(issuer: {}); the file carries that root, but clients trust only "
                                        "their own bundle",
                                        subject));
    }
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: {
      const X509_NAME* issuer_name = X509_get_issuer_name(cert);
      if (cert_is_anchor)
        return warning("chain", fmt::format("the trust bundle holds {} but not the root CA that signed it ({}); "
                                            "Java clients accept such a bundle, OpenSSL-based clients (librdkafka, "
                                            "kcat) do not: add the root",
                                            subject, issuer));
      if (find_by_subject(input.anchors, issuer_name) != nullptr)
        return error("chain", fmt::format("the certificate was signed by a CA that is not in the trust bundle "
                                          "(issuer: {}): the bundle has a CA with that name but a different key, "
                                          "so the CA was probably re-created; use the current CA bundle or "
                                          "reissue the certificate",
                                          issuer));
      // CAs we know of but must not use to build the chain tell a missing intermediate from a foreign root.
      if (X509* known = find_by_subject(input.known_cas, issuer_name)) {
        if (!self_signed(known))
          return error("chain", fmt::format("the chain is missing the intermediate CA {}; serve the full chain "
                                            "(leaf, then intermediates, as in chain.pem)",
                                            issuer));
        return error("chain", fmt::format("the certificate was signed by a CA that is not in the trust bundle "
                                          "(issuer: {}); add that CA to the bundle or use a certificate issued "
                                          "by a CA the bundle trusts",
                                          issuer));
      }
      if (e.depth == 0)
        return error("chain", fmt::format("the chain is missing the intermediate CA {0}, or the certificate was "
                                          "signed by a CA that is not in the trust bundle (issuer: {0}); if {0} is "
                                          "an intermediate, serve the full chain (leaf, then intermediates, as in "
                                          "chain.pem); otherwise add its root CA to the trust bundle",
                                          issuer));
      return error("chain", fmt::format("the certificate was signed by a CA that is not in the trust bundle "
                                        "(issuer: {}, which signed the intermediate {}); the chain is missing "
                                        "that CA, or the trust bundle belongs to a different PKI",
                                        issuer, subject));
    }
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return error("chain", fmt::format("the signature on {} does not verify with the key of its issuer {}: the "
                                        "certificate was altered, or it was signed by a different CA with the "
                                        "same name",
                                        subject, issuer));
    case X509_V_ERR_INVALID_CA:
      return error("chain", fmt::format("{} signed a certificate in the chain but is not a CA (it lacks "
                                        "basicConstraints CA:TRUE), so clients refuse the chain",
                                        subject));
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return error("chain", fmt::format("the chain is longer than the pathLenConstraint of {} allows", subject));
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
      return error("chain", fmt::format("the CA {} may not sign certificates: its keyUsage lacks keyCertSign",
                                        subject));
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
      return error("chain", fmt::format("{} has a critical extension that clients do not understand, so they "
                                        "refuse it",
                                        subject));
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return error("chain", fmt::format("the public key of {} cannot be read, so nothing it signed can be checked",
                                        issuer));
    default:
      return error("chain", fmt::format("the chain does not verify at {} (depth {}): {}", subject, e.depth,
                                        X509_verify_cert_error_string(e.code)));
  }
}

struct ChainResult {
  std::vector<X509Ptr> built;  // leaf first, as far as it could be built
  std::vector<Finding> findings;
};

ChainResult check_chain(const VerifyInput& input, X509* leaf, std::time_t now) {
  ChainResult result;
  if (input.anchors.empty()) {
    result.findings.push_back(error("chain", "cannot check the chain: there are no trust anchors (give --ca with "
                                             "the CA bundle your clients use, or --dir with a Bulwark PKI)"));
    for (const auto& c : input.chain) result.built.push_back(share(c.get()));
    return result;
  }
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  if (!store || !ctx || untrusted == nullptr) {
    sk_X509_free(untrusted);
    result.findings.push_back(error("chain", "out of memory while checking the chain"));
    return result;
  }
  for (const auto& a : input.anchors) X509_STORE_add_cert(store.get(), a.get());
  for (std::size_t i = 1; i < input.chain.size(); ++i) sk_X509_push(untrusted, input.chain[i].get());
  for (const auto& u : input.untrusted) sk_X509_push(untrusted, u.get());
  ERR_clear_error();

  std::vector<ChainError> errors;
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted) != 1) {
    sk_X509_free(untrusted);
    result.findings.push_back(error("chain", "could not set up the chain check: " + openssl_errors()));
    return result;
  }
  X509_STORE_CTX_set_app_data(ctx.get(), &errors);
  X509_STORE_CTX_set_verify_cb(ctx.get(), collect_errors);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), now);
  int verified = X509_verify_cert(ctx.get());
  if (verified != 1 && errors.empty()) {
    // A failure the callback did not see (e.g. out of memory).
    errors.push_back({X509_STORE_CTX_get_error(ctx.get()), X509_STORE_CTX_get_error_depth(ctx.get()), nullptr});
  }
  if (STACK_OF(X509)* chain = X509_STORE_CTX_get1_chain(ctx.get())) {
    for (int i = 0; i < sk_X509_num(chain); ++i) result.built.push_back(share(sk_X509_value(chain, i)));
    sk_X509_pop_free(chain, X509_free);
  }
  X509_STORE_CTX_cleanup(ctx.get());
  sk_X509_free(untrusted);
  ERR_clear_error();

  // "Unable to verify the first certificate" only repeats a missing issuer already reported.
  if (errors.size() > 1)
    std::erase_if(errors, [](const ChainError& e) { return e.code == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE; });
  bool any_error = false;
  for (const auto& e : errors) {
    if (auto finding = explain_chain_error(e, input, leaf, now)) {
      any_error = any_error || finding->severity == Severity::error;
      result.findings.push_back(std::move(*finding));
    }
  }
  if (!any_error && result.findings.empty() && !result.built.empty()) {
    std::string path;
    for (const auto& c : result.built) path += (path.empty() ? "" : " -> ") + name_text(X509_get_subject_name(c.get()));
    std::string source = input.anchors_source.empty() ? "the trust bundle" : input.anchors_source;
    result.findings.push_back(ok("chain", fmt::format("the chain verifies: {} (trusted via {})", path, source)));
    // Intermediates that came from elsewhere (the PKI directory) and not from the file: a peer sends
    // only what is in its file, so the other side would not find them.
    for (std::size_t i = 1; i < result.built.size(); ++i) {
      X509* c = result.built[i].get();
      if (contains(input.anchors, c) || contains(input.chain, c)) continue;
      result.findings.push_back(warning(
          "chain", fmt::format("the file does not include the intermediate CA {}; it verified only because "
                               "that CA was found elsewhere. A broker or client sends only its file, so serve "
                               "the full chain (leaf, then intermediates, as in chain.pem)",
                               name_text(X509_get_subject_name(c)))));
    }
  }
  // CAs close to their end take every certificate they signed with them.
  const auto leaf_end = to_time(X509_get0_notAfter(leaf));
  for (std::size_t i = 1; i < result.built.size(); ++i) {
    X509* c = result.built[i].get();
    auto end = to_time(X509_get0_notAfter(c));
    if (end && leaf_end && *leaf_end > *end)
      result.findings.push_back(warning("chain", fmt::format("the certificate is valid until {}, but {} expires on {}: "
                                                             "from then on clients refuse it; renew that CA first, or "
                                                             "reissue the certificate to end before it",
                                                             format_date(*leaf_end),
                                                             ca_label(c, contains(input.anchors, c)), format_date(*end))));
    if (end && *end >= now && *end - now < static_cast<std::time_t>(input.expiry_warning_days) * kDay)
      result.findings.push_back(warning("chain", fmt::format("{} expires on {}, in {}; renew the CA before then",
                                                             ca_label(c, contains(input.anchors, c)),
                                                             format_date(*end), span_text(*end - now))));
  }
  return result;
}

void check_validity(X509* cert, std::time_t now, int warn_days, const std::string& what, std::vector<Finding>& out) {
  auto start = to_time(X509_get0_notBefore(cert));
  auto end = to_time(X509_get0_notAfter(cert));
  if (!start || !end) {
    out.push_back(error("validity", what + " has unreadable validity dates"));
    return;
  }
  if (now < *start) {
    out.push_back(error("validity", fmt::format("{} is not yet valid: it becomes valid on {}, in {}; clients refuse "
                                                "it until then (check the clock of the machine that issued it)",
                                                what, format_date(*start), span_text(*start - now))));
  } else if (now > *end) {
    out.push_back(error("validity", fmt::format("{} expired on {}, {} ago; clients refuse it: renew it", what,
                                                format_date(*end), span_text(now - *end))));
  } else if (*end - now < static_cast<std::time_t>(warn_days) * kDay) {
    out.push_back(warning("validity", fmt::format("{} expires soon: on {}, in {}; renew it before then", what,
                                                  format_date(*end), span_text(*end - now))));
  } else {
    out.push_back(ok("validity", fmt::format("valid from {} to {} ({} left)", format_date(*start), format_date(*end),
                                             span_text(*end - now))));
  }
}

void check_hosts(X509* leaf, const VerifyInput& input, bool server_use, std::vector<Finding>& out) {
  Sans sans = sans_of(leaf);
  std::string cn = common_name(leaf);
  bool no_sans = sans.dns.empty() && sans.ips.empty();
  if (input.hosts.empty()) {
    if (!no_sans)
      out.push_back(ok("host", fmt::format("no --host given; the certificate names {}", sans_text(sans))));
    else if (server_use)
      out.push_back(warning("host", fmt::format("the certificate has no SAN (only CN={}); modern clients ignore the "
                                                "CN, so clients that verify host names will refuse it as a server "
                                                "certificate",
                                                cn.empty() ? "none" : cn)));
    return;
  }
  for (const auto& host : input.hosts) {
    if (auto ip = parse_ip(host)) {
      std::string text = ip_text(ip->data(), static_cast<int>(ip->size()));
      auto it = std::find(sans.ips.begin(), sans.ips.end(), *ip);
      if (it != sans.ips.end()) {
        out.push_back(ok("host", fmt::format("{} matches the IP SAN {}", host, text)));
        continue;
      }
      bool as_dns = std::any_of(sans.dns.begin(), sans.dns.end(), [&](const std::string& d) {
        auto dns_ip = parse_ip(d);
        return (dns_ip && *dns_ip == *ip) || lower(d) == lower(host);
      });
      if (as_dns) {
        out.push_back(error("host", fmt::format("the certificate lists {} as a DNS name, not as an IP address; "
                                                "clients that verify host names will refuse it (reissue it with "
                                                "an IP SAN, e.g. --ip {})",
                                                host, text)));
      } else {
        out.push_back(error("host", fmt::format("the certificate has no SAN for {}; clients that verify host names "
                                                "will refuse it (its SANs: {})",
                                                host, sans_text(sans))));
      }
      continue;
    }
    auto match = std::find_if(sans.dns.begin(), sans.dns.end(),
                              [&](const std::string& d) { return dns_matches(d, host); });
    if (match != sans.dns.end()) {
      out.push_back(ok("host", *match == host ? fmt::format("{} matches the DNS SAN", host)
                                              : fmt::format("{} matches the DNS SAN {}", host, *match)));
    } else if (no_sans && !cn.empty() && dns_matches(cn, host)) {
      out.push_back(warning("host", fmt::format("the certificate has no SAN; its CN {} matches {}, but modern "
                                                "clients ignore the CN and check only SANs, so they will refuse "
                                                "it; reissue it with a DNS SAN for {}",
                                                cn, host, host)));
    } else {
      std::string hint;
      bool partial = std::any_of(sans.dns.begin(), sans.dns.end(), [](const std::string& d) {
        auto star = d.find('*');
        return star != std::string::npos && d.rfind("*.", 0) != 0;
      });
      if (partial) hint = "; partial wildcards such as f*.example.com are not honoured by clients";
      else if (std::any_of(sans.dns.begin(), sans.dns.end(), [&](const std::string& d) {
                 return d.rfind("*.", 0) == 0 && strip_dot(lower(host)) == strip_dot(lower(d.substr(2)));
               }))
        hint = "; a wildcard covers exactly one label, so *.example.com does not match example.com";
      out.push_back(error("host", fmt::format("the certificate has no SAN for {}; clients that verify host names "
                                              "will refuse it (its SANs: {}{})",
                                              host, sans_text(sans), hint)));
    }
  }
}

// Returns whether the certificate can act as a TLS server (for the host checks).
bool check_usage(X509* leaf, const VerifyInput& input, std::vector<Finding>& out) {
  std::uint32_t flags = X509_get_extension_flags(leaf);
  if (flags & EXFLAG_INVALID)
    out.push_back(error("usage", "the certificate has malformed or duplicate extensions; clients refuse it"));
  if (flags & EXFLAG_CA)
    out.push_back(error("usage", "the certificate is a CA certificate (basicConstraints CA:TRUE); a broker or "
                                 "client must use a leaf certificate issued by the CA, not a CA certificate"));

  bool has_eku = (flags & EXFLAG_XKUSAGE) != 0;
  std::uint32_t eku = X509_get_extended_key_usage(leaf);
  bool any_eku = (eku & XKU_ANYEKU) != 0;
  bool server = !has_eku || any_eku || (eku & XKU_SSL_SERVER);
  bool client = !has_eku || any_eku || (eku & XKU_SSL_CLIENT);
  switch (input.purpose) {
    case Purpose::server:
      if (server) out.push_back(ok("usage", "usable as a TLS server certificate (serverAuth)"));
      else
        out.push_back(error("usage", "the extended key usage lacks serverAuth, so clients will refuse it as a "
                                     "server (broker) certificate"));
      break;
    case Purpose::client:
      if (client) out.push_back(ok("usage", "usable as a TLS client certificate (clientAuth)"));
      else
        out.push_back(error("usage", "the extended key usage lacks clientAuth, so brokers that require client "
                                     "certificates (ssl.client.auth=required) will refuse it"));
      break;
    case Purpose::any:
      if (server && client) {
        out.push_back(ok("usage", has_eku && !any_eku
                                      ? "usable as a TLS server and client certificate (serverAuth, clientAuth)"
                                      : "usable as a TLS server and client certificate (no extended key usage "
                                        "restricts it)"));
      } else if (server) {
        out.push_back(warning("usage", "usable as a TLS server certificate only (serverAuth, no clientAuth); a "
                                       "broker certificate needs clientAuth too, because brokers are clients of "
                                       "each other on inter-broker and controller listeners with mTLS"));
      } else if (client) {
        out.push_back(ok("usage", "usable as a TLS client certificate only (clientAuth): right for a Kafka "
                                  "client, not for a broker"));
      } else {
        out.push_back(error("usage", "the extended key usage allows neither TLS server (serverAuth) nor TLS client "
                                     "(clientAuth) use"));
      }
      break;
  }

  if (flags & EXFLAG_KUSAGE) {
    std::uint32_t ku = X509_get_key_usage(leaf);
    if (!(ku & KU_DIGITAL_SIGNATURE))
      out.push_back(error("usage", "the keyUsage lacks digitalSignature; TLS 1.3 and ECDHE handshakes sign with "
                                   "the key, so peers will refuse it"));
    EVP_PKEY* pub = X509_get0_pubkey(leaf);
    if (pub != nullptr && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA && !(ku & KU_KEY_ENCIPHERMENT))
      out.push_back(warning("usage", "the keyUsage lacks keyEncipherment; fine for TLS 1.3 and ECDHE, but a TLS "
                                     "1.2 peer using RSA key exchange will refuse it"));
    if ((ku & KU_DIGITAL_SIGNATURE) && !(flags & EXFLAG_CA))
      out.push_back(ok("usage", "the keyUsage allows TLS handshakes (digitalSignature)"));
  }
  return server;
}

void check_key_match(X509* leaf, EVP_PKEY* key, std::vector<Finding>& out) {
  EVP_PKEY* pub = X509_get0_pubkey(leaf);
  if (pub == nullptr) {
    out.push_back(error("key", "the certificate's public key cannot be read"));
    return;
  }
  if (EVP_PKEY_eq(pub, key) == 1) {
    out.push_back(ok("key", "the private key belongs to the certificate"));
  } else {
    out.push_back(error("key", "the private key does not belong to the certificate (its public key is "
                               "different); a peer using this pair fails the handshake"));
  }
  ERR_clear_error();
}

// Key strength of one certificate; empty when fine.
std::optional<Finding> key_strength(X509* cert, const std::string& what) {
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  if (pub == nullptr) return error("strength", what + " has a public key that cannot be read");
  int id = EVP_PKEY_get_base_id(pub);
  int bits = EVP_PKEY_get_bits(pub);
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
    if (bits < 2048)
      return error("strength", fmt::format("{} has a {}-bit RSA key; use at least 2048 bits (clients at OpenSSL "
                                           "security level 2 and current Java refuse smaller keys)",
                                           what, bits));
    return std::nullopt;
  }
  if (id == EVP_PKEY_EC) {
    char group[80] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(pub, group, sizeof group, &len) != 1) {
      ERR_clear_error();
      return warning("strength", what + " has an EC key on an unnamed curve; clients may refuse it");
    }
    std::string name(group, len);
    if (name == "prime256v1" || name == "secp384r1" || name == "secp521r1") return std::nullopt;
    return warning("strength", fmt::format("{} has an EC key on the curve {}; TLS clients support P-256, P-384 "
                                           "and P-521 (and Ed25519), others may refuse it",
                                           what, name));
  }
  if (id == EVP_PKEY_ED25519) return std::nullopt;
  if (id == EVP_PKEY_DSA)
    return error("strength", what + " has a DSA key; TLS 1.3 does not allow DSA and most clients refuse it");
  return warning("strength", fmt::format("{} has a {} key, which TLS clients may not support", what,
                                         OBJ_nid2sn(id)));
}

std::optional<Finding> signature_strength(X509* cert, const std::string& what) {
  int md = NID_undef, pk = NID_undef, secbits = 0;
  std::uint32_t sig_flags = 0;
  if (X509_get_signature_info(cert, &md, &pk, &secbits, &sig_flags) != 1) {
    ERR_clear_error();
    int nid = X509_get_signature_nid(cert);
    return warning("strength", fmt::format("{} uses a signature algorithm clients may not know ({})", what,
                                           nid == NID_undef ? "unknown" : OBJ_nid2ln(nid)));
  }
  if (md == NID_md5 || md == NID_md5_sha1 || md == NID_md4 || md == NID_md2 || md == NID_sha1) {
    const char* hash = md == NID_sha1 ? "SHA-1" : "MD5";
    if (md == NID_md4) hash = "MD4";
    if (md == NID_md2) hash = "MD2";
    return error("strength", fmt::format("{} is signed with {} ({}); clients refuse {} signatures: reissue it with "
                                         "SHA-256",
                                         what, hash, OBJ_nid2ln(X509_get_signature_nid(cert)), hash));
  }
  return std::nullopt;
}

std::string key_description(X509* cert) {
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  if (pub == nullptr) return "unknown key";
  int id = EVP_PKEY_get_base_id(pub);
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) return fmt::format("RSA {}", EVP_PKEY_get_bits(pub));
  if (id == EVP_PKEY_EC) {
    char group[80] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(pub, group, sizeof group, &len) == 1) {
      std::string name(group, len);
      if (name == "prime256v1") return "EC P-256";
      if (name == "secp384r1") return "EC P-384";
      if (name == "secp521r1") return "EC P-521";
      return "EC " + name;
    }
    ERR_clear_error();
    return "EC";
  }
  return OBJ_nid2sn(id);
}

void check_strength(const std::vector<X509Ptr>& chain, const VerifyInput& input, std::vector<Finding>& out) {
  std::size_t before = out.size();
  for (std::size_t i = 0; i < chain.size(); ++i) {
    X509* c = chain[i].get();
    std::string what = i == 0 ? "the certificate"
                              : fmt::format("the CA certificate {}", name_text(X509_get_subject_name(c)));
    if (auto f = key_strength(c, what)) out.push_back(std::move(*f));
    // The anchor's own signature is never checked by clients (they trust its key directly).
    bool anchor = i > 0 && self_signed(c) && contains(input.anchors, c);
    if (!anchor)
      if (auto f = signature_strength(c, what)) out.push_back(std::move(*f));
  }
  if (out.size() == before && !chain.empty()) {
    X509* leaf = chain[0].get();
    out.push_back(ok("strength", fmt::format("keys and signatures are strong ({} key, signed with {})",
                                             key_description(leaf), OBJ_nid2ln(X509_get_signature_nid(leaf)))));
  }
}

// ---- Loading -------------------------------------------------------------------------------------

int pem_password(char* buf, int size, int /*rwflag*/, void* user) {
  auto* password = static_cast<std::string_view*>(user);
  if (password == nullptr || password->empty() || password->size() > static_cast<std::size_t>(size)) return -1;
  std::memcpy(buf, password->data(), password->size());
  return static_cast<int>(password->size());
}

bool looks_like_pem(std::string_view data) { return data.find("-----BEGIN ") != std::string_view::npos; }

struct PemContents {
  std::vector<X509Ptr> certs;
  std::vector<EvpPkeyPtr> keys;
};

Result<PemContents> parse_pem(std::string_view text, const std::string& source, std::string_view password) {
  PemContents contents;
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return make_error(ErrorKind::internal, "out of memory reading " + source);
  ERR_clear_error();
  for (std::size_t blocks = 0;; ++blocks) {
    char* name_raw = nullptr;
    char* header_raw = nullptr;
    unsigned char* data_raw = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len) != 1) {
      unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;
      return make_error(ErrorKind::corrupt,
                        fmt::format("{} has a damaged PEM block after block {} (bad base64 or a missing END line)",
                                    source, blocks));
    }
    std::string name(name_raw);
    std::string header(header_raw ? header_raw : "");
    Bytes der(data_raw, data_raw + len);
    OPENSSL_free(name_raw);
    OPENSSL_free(header_raw);
    OPENSSL_free(data_raw);
    if (blocks >= kMaxCertificates)
      return make_error(ErrorKind::invalid_argument, fmt::format("{} has more than {} PEM blocks", source,
                                                                 kMaxCertificates));

    if (name == "CERTIFICATE" || name == "X509 CERTIFICATE" || name == "TRUSTED CERTIFICATE") {
      const unsigned char* p = der.data();
      X509* cert = name == "TRUSTED CERTIFICATE" ? d2i_X509_AUX(nullptr, &p, static_cast<long>(der.size()))
                                                 : d2i_X509(nullptr, &p, static_cast<long>(der.size()));
      if (cert == nullptr) {
        ERR_clear_error();
        return make_error(ErrorKind::corrupt, fmt::format("{}: certificate number {} is not a valid X.509 "
                                                          "certificate",
                                                          source, contents.certs.size() + 1));
      }
      contents.certs.emplace_back(cert);
    } else if (name.size() >= 11 && name.compare(name.size() - 11, 11, "PRIVATE KEY") == 0) {
      bool encrypted = name == "ENCRYPTED PRIVATE KEY" || header.find("ENCRYPTED") != std::string::npos;
      if (encrypted && password.empty())
        return make_error(ErrorKind::invalid_argument,
                          fmt::format("the private key in {} is encrypted; give its password with --password or "
                                      "--password-file",
                                      source));
      // Re-wrap the block so OpenSSL's key reader handles every PEM key form and legacy encryption.
      BioPtr block(BIO_new(BIO_s_mem()));
      if (!block || PEM_write_bio(block.get(), name.c_str(), header.c_str(), der.data(),
                                  static_cast<long>(der.size())) <= 0)
        return make_error(ErrorKind::internal, "out of memory reading " + source);
      std::string_view pw = password;
      EVP_PKEY* key = PEM_read_bio_PrivateKey(block.get(), nullptr, pem_password, &pw);
      ERR_clear_error();
      if (key == nullptr) {
        if (encrypted)
          return make_error(ErrorKind::unauthenticated,
                            fmt::format("cannot decrypt the private key in {}: wrong password", source));
        return make_error(ErrorKind::corrupt, fmt::format("the private key in {} cannot be read", source));
      }
      contents.keys.emplace_back(key);
    } else if (name == "CERTIFICATE REQUEST" || name == "NEW CERTIFICATE REQUEST") {
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} holds a certificate request (CSR), not a certificate; have it signed "
                                    "first (bulwark pki issue --csr)",
                                    source));
    }
    // Other blocks (parameters, CRLs) are not ours to check.
  }
  return contents;
}

Result<X509Ptr> parse_der_certificate(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* start = p;
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(data.size()));
  ERR_clear_error();
  if (cert == nullptr) return make_error(ErrorKind::corrupt, "not a DER certificate");
  X509Ptr owned(cert);
  if (static_cast<std::size_t>(p - start) != data.size())
    return make_error(ErrorKind::corrupt, "trailing bytes after a DER certificate");
  return owned;
}

bool is_jks(std::string_view data) {
  return data.size() >= 4 && static_cast<unsigned char>(data[0]) == 0xFE &&
         static_cast<unsigned char>(data[1]) == 0xED && static_cast<unsigned char>(data[2]) == 0xFE &&
         static_cast<unsigned char>(data[3]) == 0xED;
}

Result<LoadedCertificates> from_keystore(keystore::KeyStore store, std::string format) {
  LoadedCertificates loaded;
  loaded.format = std::move(format);
  for (auto& entry : store.keys) {
    CertificateSet set;
    set.label = "entry '" + entry.alias + "'";
    set.chain = std::move(entry.chain);
    set.key = std::move(entry.key);
    if (!set.chain.empty()) order_leaf_first(set.chain, set.key.get());
    loaded.sets.push_back(std::move(set));
  }
  for (auto& entry : store.trusted) loaded.trusted.push_back({std::move(entry.alias), std::move(entry.cert)});
  return loaded;
}

Result<std::string> read_input(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return make_error(ErrorKind::not_found, fmt::format("{} does not exist", path.string()));
  if (std::filesystem::is_directory(path, ec))
    return make_error(ErrorKind::invalid_argument, fmt::format("{} is a directory, not a file", path.string()));
  // Certificates and keystores are a few KiB; refuse devices and absurd files instead of reading forever.
  if (!std::filesystem::is_regular_file(path, ec))
    return make_error(ErrorKind::invalid_argument, fmt::format("{} is not a regular file", path.string()));
  if (std::filesystem::file_size(path, ec) > kMaxInputBytes)
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("{} is larger than {} MiB: not a certificate or keystore", path.string(),
                                  kMaxInputBytes >> 20));
  return read_file(path);
}

}  // namespace

std::string_view severity_name(Severity severity) {
  switch (severity) {
    case Severity::ok: return "OK";
    case Severity::warning: return "WARNING";
    case Severity::error: return "ERROR";
  }
  return "?";
}

Result<Purpose> parse_purpose(std::string_view text) {
  std::string t = lower(text);
  if (t == "any") return Purpose::any;
  if (t == "server") return Purpose::server;
  if (t == "client") return Purpose::client;
  return make_error(ErrorKind::invalid_argument,
                    fmt::format("unknown purpose '{}': use server, client or any", std::string(text)));
}

bool has_error(const std::vector<Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(), [](const Finding& f) { return f.severity == Severity::error; });
}

std::string subject_of(X509* cert) { return name_text(X509_get_subject_name(cert)); }
std::string issuer_of(X509* cert) { return name_text(X509_get_issuer_name(cert)); }

std::vector<Finding> verify(const VerifyInput& input) {
  std::vector<Finding> out;
  if (input.chain.empty() || !input.chain[0]) {
    out.push_back(error("input", "there is no certificate to check"));
    return out;
  }
  std::time_t now = input.at.value_or(std::time(nullptr));
  X509* leaf = input.chain[0].get();

  ChainResult chain = check_chain(input, leaf, now);
  out.insert(out.end(), std::make_move_iterator(chain.findings.begin()), std::make_move_iterator(chain.findings.end()));
  check_validity(leaf, now, input.expiry_warning_days, "the certificate", out);
  std::vector<Finding> usage;
  bool server_use = check_usage(leaf, input, usage);
  check_hosts(leaf, input, server_use && input.purpose != Purpose::client, out);
  out.insert(out.end(), std::make_move_iterator(usage.begin()), std::make_move_iterator(usage.end()));
  if (input.key) check_key_match(leaf, input.key.get(), out);
  if (chain.built.empty()) chain.built.push_back(share(leaf));
  check_strength(chain.built, input, out);
  return out;
}

std::vector<Finding> verify_ca(const VerifyInput& input) {
  std::vector<Finding> out;
  if (input.chain.empty() || !input.chain[0]) {
    out.push_back(error("input", "there is no certificate to check"));
    return out;
  }
  std::time_t now = input.at.value_or(std::time(nullptr));
  X509* ca = input.chain[0].get();
  ChainResult chain = check_chain(input, ca, now);
  out.insert(out.end(), std::make_move_iterator(chain.findings.begin()), std::make_move_iterator(chain.findings.end()));
  check_validity(ca, now, input.expiry_warning_days, "the CA certificate", out);
  std::uint32_t flags = X509_get_extension_flags(ca);
  if (is_v1_root(ca))
    out.push_back(ok("usage", "an X.509 v1 self-signed root (it has no extensions, which RFC 5280 allows for a trust "
                              "anchor): it may sign certificates"));
  else if (!(flags & EXFLAG_CA))
    out.push_back(error("usage", "the certificate is not a CA (no basicConstraints CA:TRUE), so clients refuse "
                                 "what it signs"));
  else if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN))
    out.push_back(error("usage", "the CA's keyUsage lacks keyCertSign, so clients refuse what it signs"));
  else
    out.push_back(ok("usage", "a CA certificate: it may sign certificates (not for use as a broker or client "
                              "certificate)"));
  if (!input.hosts.empty())
    out.push_back(warning("host", "host names were not checked: this is a CA certificate, and clients check host "
                                  "names against the broker's own certificate"));
  if (input.key) check_key_match(ca, input.key.get(), out);
  if (chain.built.empty()) chain.built.push_back(share(ca));
  check_strength(chain.built, input, out);
  return out;
}

bool only_ca_certificates(const std::vector<X509Ptr>& certs) {
  return !certs.empty() && std::all_of(certs.begin(), certs.end(), [](const X509Ptr& c) { return is_ca(c.get()); });
}

std::vector<Finding> verify_trusted_certificate(X509* cert, const std::string& label, std::optional<std::time_t> at,
                                                int expiry_warning_days) {
  std::vector<Finding> out;
  std::time_t now = at.value_or(std::time(nullptr));
  std::string subject = name_text(X509_get_subject_name(cert));
  if (is_v1_root(cert))
    out.push_back(ok("trust", fmt::format("{}: X.509 v1 self-signed root {} (legal as a trust anchor)", label, subject)));
  else if (is_ca(cert))
    out.push_back(ok("trust", fmt::format("{}: CA certificate {}", label, subject)));
  else
    out.push_back(warning("trust", fmt::format("{}: {} is not a CA certificate (no basicConstraints CA:TRUE); as "
                                               "a trust anchor it trusts only itself, not certificates it signed",
                                               label, subject)));
  check_validity(cert, now, expiry_warning_days, label, out);
  std::size_t before = out.size();
  if (auto f = key_strength(cert, label)) out.push_back(std::move(*f));
  if (!self_signed(cert))
    if (auto f = signature_strength(cert, label)) out.push_back(std::move(*f));
  if (out.size() == before)
    out.push_back(ok("strength", fmt::format("{}: {} key", label, key_description(cert))));
  return out;
}

void order_leaf_first(std::vector<X509Ptr>& chain, EVP_PKEY* key) {
  if (chain.size() < 2) return;
  std::size_t leaf = 0;
  bool found = false;
  if (key != nullptr) {
    for (std::size_t i = 0; i < chain.size() && !found; ++i) {
      EVP_PKEY* pub = X509_get0_pubkey(chain[i].get());
      if (pub != nullptr && EVP_PKEY_eq(pub, key) == 1) {
        leaf = i;
        found = true;
      }
    }
    ERR_clear_error();
  }
  if (!found) {
    for (std::size_t i = 0; i < chain.size() && !found; ++i) {
      bool signed_another = false;
      for (std::size_t j = 0; j < chain.size() && !signed_another; ++j)
        if (i != j && X509_check_issued(chain[i].get(), chain[j].get()) == X509_V_OK) signed_another = true;
      if (!signed_another) {
        leaf = i;
        found = true;
      }
    }
  }
  if (found && leaf != 0) std::rotate(chain.begin(), chain.begin() + static_cast<long>(leaf),
                                      chain.begin() + static_cast<long>(leaf) + 1);
}

Result<LoadedCertificates> parse_certificates(std::string_view data, const std::string& source,
                                              std::string_view password) {
  if (data.empty()) return make_error(ErrorKind::invalid_argument, source + " is empty");
  if (looks_like_pem(data)) {
    auto pem = parse_pem(data, source, password);
    if (!pem) return pem.error();
    if (pem->certs.empty())
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} holds no certificate{}", source,
                                    pem->keys.empty() ? "" : " (only a private key); give the certificate file"));
    if (pem->keys.size() > 1)
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} holds {} private keys; a PEM keystore holds one key with its chain", source,
                                    pem->keys.size()));
    CertificateSet set;
    set.chain = std::move(pem->certs);
    if (!pem->keys.empty()) set.key = std::move(pem->keys[0]);
    order_leaf_first(set.chain, set.key.get());
    LoadedCertificates loaded;
    loaded.format = "PEM";
    loaded.sets.push_back(std::move(set));
    return loaded;
  }
  ByteView bytes = as_bytes(data);
  if (is_jks(data)) {
    if (password.empty())
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} is a JKS keystore; give its password with --password or --password-file",
                                    source));
    auto store = keystore::decode_jks(bytes, password);
    if (!store) return make_error(store.error().kind, fmt::format("{}: {}", source, store.error().message));
    return from_keystore(std::move(*store), "JKS");
  }
  if (static_cast<unsigned char>(data[0]) == 0x30) {
    if (auto der = parse_der_certificate(data)) {
      LoadedCertificates loaded;
      loaded.format = "DER";
      CertificateSet set;
      set.chain.push_back(std::move(*der));
      loaded.sets.push_back(std::move(set));
      return loaded;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(data.size())));
    ERR_clear_error();
    if (p12) {
      auto store = keystore::decode_pkcs12(bytes, password);
      // OpenSSL can write PKCS12 files without a password; only ask for one when that did not work.
      if (!store && password.empty())
        return make_error(ErrorKind::invalid_argument,
                          fmt::format("{} is a PKCS12 keystore; give its password with --password or "
                                      "--password-file",
                                      source));
      if (!store) return make_error(store.error().kind, fmt::format("{}: {}", source, store.error().message));
      return from_keystore(std::move(*store), "PKCS12");
    }
  }
  return make_error(ErrorKind::invalid_argument,
                    fmt::format("{} is not a certificate: expected PEM, DER, or a JKS or PKCS12 keystore", source));
}

Result<LoadedCertificates> load_certificates(const std::filesystem::path& path, std::string_view password) {
  auto data = read_input(path);
  if (!data) return data.error();
  return parse_certificates(*data, path.string(), password);
}

Result<std::vector<X509Ptr>> load_trust_anchors(const std::filesystem::path& path, std::string_view password) {
  auto loaded = load_certificates(path, password);
  if (!loaded) return loaded.error();
  std::vector<X509Ptr> anchors;
  if (loaded->format == "PEM" || loaded->format == "DER") {
    for (auto& set : loaded->sets)
      for (auto& c : set.chain) anchors.push_back(std::move(c));
  } else {
    for (auto& t : loaded->trusted) anchors.push_back(std::move(t.cert));
    if (anchors.empty())
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} has no trusted certificate entries: it is a keystore, not a truststore",
                                    path.string()));
  }
  return anchors;
}

Result<EvpPkeyPtr> load_private_key(const std::filesystem::path& path, std::string_view password) {
  auto data = read_input(path);
  if (!data) return data.error();
  std::string source = path.string();
  if (looks_like_pem(*data)) {
    auto pem = parse_pem(*data, source, password);
    if (!pem) return pem.error();
    if (pem->keys.empty()) return make_error(ErrorKind::invalid_argument, source + " holds no private key");
    if (pem->keys.size() > 1)
      return make_error(ErrorKind::invalid_argument, source + " holds more than one private key");
    return std::move(pem->keys[0]);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(data->data());
  EVP_PKEY* key = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(data->size()));
  if (key == nullptr && !password.empty()) {
    BioPtr bio(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
    std::string_view pw = password;
    if (bio) key = d2i_PKCS8PrivateKey_bio(bio.get(), nullptr, pem_password, &pw);
  }
  ERR_clear_error();
  if (key == nullptr)
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("{} is not a private key in PEM or DER (or its password is wrong)", source));
  return EvpPkeyPtr(key);
}

Result<std::time_t> parse_time(std::string_view text) {
  std::string t(text);
  auto bad = [&] {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("cannot read the time '{}': use 2026-12-31, 2026-12-31T08:00:00Z or @<unix "
                                  "seconds>",
                                  t));
  };
  if (!t.empty() && t[0] == '@') {
    if (t.size() < 2 || t.size() > 13) return bad();
    std::time_t value = 0;
    for (std::size_t i = 1; i < t.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(t[i]))) return bad();
      value = value * 10 + (t[i] - '0');
    }
    return value;
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail[8] = {};
  int n = 0;
  if (t.size() == 10) {
    if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return bad();
  } else if (t.size() == 19 || t.size() == 20) {
    char sep = 0;
    if (std::sscanf(t.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &s, &n) != 7 || n != 19 ||
        (sep != 'T' && sep != ' '))
      return bad();
    if (t.size() == 20 && t[19] != 'Z') return bad();
  } else {
    return bad();
  }
  (void)tail;
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return bad();
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t value = timegm(&tm);
  std::tm check{};
  gmtime_r(&value, &check);
  if (check.tm_mday != d) return bad();  // 2026-02-31
  return value;
}

}  // namespace bulwark::pki
