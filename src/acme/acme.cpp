#include "acme/acme.h"

#include <openssl/pem.h>

#include <algorithm>
#include <thread>

#include "acme/client.h"
#include "acme/dns01.h"
#include "acme/http.h"
#include "acme/jws.h"
#include "acme/renewal.h"
#include "base/files.h"
#include "base/log.h"

namespace bulwark::acme {
namespace {

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The account

struct Account {
  EvpPkeyPtr key;
  fs::path key_path, info_path;
  std::string kid;
};

Result<Account> load_or_create_account_key(const fs::path& dir, const std::string& server) {
  Account account;
  const fs::path folder = dir / "acme";
  const std::string id = hex(sha256(server)).substr(0, 16);
  account.key_path = folder / ("account-" + id + ".key");
  account.info_path = folder / ("account-" + id + ".json");
  BULWARK_TRY(make_directories(folder, 0700));
  std::error_code ec;
  if (fs::exists(account.key_path, ec)) {
    auto text = read_file(account.key_path);
    if (!text) return text.error();
    auto key = parse_p256_private_key(*text, account.key_path.string());
    if (!key) return key.error();
    account.key = std::move(*key);
    if (auto info = read_file(account.info_path)) {
      auto doc = json::parse(*info, nullptr, false);
      if (doc.is_object()) account.kid = doc.value("kid", "");
    }
    return account;
  }
  auto key = generate_p256_key();
  if (!key) return key.error();
  auto pem = private_key_pem(key->get());
  if (!pem) return pem.error();
  BULWARK_TRY(write_file_atomic(account.key_path, *pem, kPrivateFileMode, Overwrite::refuse));
  log::info("acme: made a new account key {} (P-256, mode 0600) for {}", account.key_path.string(), server);
  account.key = std::move(*key);
  return account;
}

Status save_account_info(const Account& account, const std::string& server, const std::optional<std::string>& email) {
  json info = {{"server", server}, {"kid", account.kid}};
  if (email) info["contact"] = json::array({"mailto:" + *email});
  return write_file_atomic(account.info_path, info.dump(2) + "\n", kPrivateFileMode, Overwrite::allow);
}

// ---------------------------------------------------------------------------------------------------
// The CSR: CN = the first domain, every domain a DNS SAN, signed by the new certificate key.

Result<std::string> make_csr_der(EVP_PKEY* key, const std::vector<std::string>& domains) {
  X509ReqPtr req(X509_REQ_new());
  X509NamePtr subject(X509_NAME_new());
  if (!req || !subject) return make_error(ErrorKind::internal, "out of memory");
  if (domains.front().size() <= 64)
    X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(domains.front().c_str()), -1, -1, 0);
  X509_REQ_set_subject_name(req.get(), subject.get());
  std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>> names(sk_GENERAL_NAME_new_null());
  for (const auto& domain : domains) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ASN1_STRING_set(text, domain.data(), static_cast<int>(domain.size()));
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  X509_EXTENSION* san = X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get());
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(extensions, san);
  const bool ok = X509_REQ_add_extensions(req.get(), extensions) == 1 && X509_REQ_set_pubkey(req.get(), key) == 1 &&
                  X509_REQ_sign(req.get(), key, EVP_sha256()) > 0;
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  if (!ok) return make_error(ErrorKind::internal, "cannot make the CSR: " + openssl_errors());
  unsigned char* der = nullptr;
  int length = i2d_X509_REQ(req.get(), &der);
  if (length <= 0) return make_error(ErrorKind::internal, "cannot encode the CSR: " + openssl_errors());
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// DNS-01

Result<std::unique_ptr<Dns01Responder>> make_responder(const Dns01Options& dns) {
  if (dns.hook && dns.rfc2136_server) return invalid("give either --dns-hook or --dns-rfc2136, not both");
  if (dns.hook) return make_hook_responder(*dns.hook);
  if (dns.rfc2136_server) {
    if (!dns.tsig_key) return invalid("--dns-rfc2136 needs --tsig-key FILE (made with `tsig-keygen -a hmac-sha256 NAME`)");
    return make_rfc2136_responder(*dns.rfc2136_server, *dns.tsig_key, dns.zone);
  }
  return invalid("say how to answer the DNS-01 challenge: --dns-hook PROGRAM or --dns-rfc2136 HOST:PORT --tsig-key FILE");
}

struct Challenge {
  std::string domain;
  std::string authorization_url;
  std::string url;
  Dns01Record record;
};

// The dns-01 challenges still to answer; authorizations already valid need none.
Result<std::vector<Challenge>> pending_challenges(AcmeClient& client, const json& order, const std::string& thumbprint) {
  std::vector<Challenge> out;
  for (const auto& url_value : order.value("authorizations", json::array())) {
    const std::string url = url_value.get<std::string>();
    auto reply = client.post(url, std::nullopt, "reading the authorization " + url);
    if (!reply) return reply.error();
    const json& authz = reply->body;
    const std::string domain = authz.contains("identifier") ? authz["identifier"].value("value", "") : "";
    const std::string status = authz.value("status", "");
    if (status == "valid") continue;
    if (status != "pending")
      return make_error(ErrorKind::unavailable, "the authorization for " + domain + " is " + status);
    std::optional<json> dns01;
    std::string offered;
    for (const auto& challenge : authz.value("challenges", json::array())) {
      offered += (offered.empty() ? "" : ", ") + challenge.value("type", "");
      if (challenge.value("type", "") == "dns-01") dns01 = challenge;
    }
    if (!dns01)
      return make_error(ErrorKind::unsupported, "the ACME server offers no dns-01 challenge for " + domain +
                                                    " (it offers " + offered + ")");
    const std::string name = authz.value("wildcard", false) ? "*." + domain : domain;
    Challenge c;
    c.domain = name;
    c.authorization_url = url;
    c.url = dns01->value("url", "");
    c.record.fqdn = challenge_fqdn(domain);
    c.record.value = dns01_txt_value(key_authorization(dns01->value("token", ""), thumbprint));
    out.push_back(std::move(c));
  }
  return out;
}

// Why an authorization failed, from the error of its dns-01 challenge.
std::string authorization_failure(const json& authz) {
  for (const auto& challenge : authz.value("challenges", json::array()))
    if (challenge.contains("error")) return problem_text(challenge["error"]);
  return "no reason given";
}

Status validate(AcmeClient& client, const std::vector<Challenge>& challenges,
                std::chrono::steady_clock::time_point deadline) {
  for (const auto& c : challenges) {
    auto reply = client.post(c.url, json::object(), "asking the ACME server to check the dns-01 record for " + c.domain);
    if (!reply) return reply.error();
  }
  for (const auto& c : challenges) {
    auto authz = client.poll(c.authorization_url, {"pending", "processing"}, "waiting for the validation of " + c.domain,
                             deadline);
    if (!authz) return authz.error();
    if (authz->value("status", "") != "valid")
      return make_error(ErrorKind::unauthenticated, "the ACME server could not validate " + c.domain + " (TXT " +
                                                        c.record.fqdn + "): " + authorization_failure(*authz));
    log::info("acme: {} validated", c.domain);
  }
  return Status::success();
}

// Presents every record, lets the server validate, and always cleans up what was presented.
Status prove_control(AcmeClient& client, Dns01Responder& responder, const std::vector<Challenge>& challenges,
                     const Dns01Options& dns, std::chrono::steady_clock::time_point deadline,
                     std::vector<std::string>& warnings) {
  std::vector<const Challenge*> presented;
  Status result = Status::success();
  for (const auto& c : challenges) {
    log::info("acme: presenting TXT {} through {}", c.record.fqdn, responder.describe());
    result = responder.present(c.record);
    presented.push_back(&c);  // cleaned up even when presenting failed: it may have got half-way
    if (!result) break;
  }
  if (result && dns.propagation_wait.count() > 0) {
    log::info("acme: waiting {} s for the TXT records to reach the DNS servers", dns.propagation_wait.count());
    std::this_thread::sleep_for(dns.propagation_wait);
  }
  if (result) result = validate(client, challenges, deadline);
  for (const Challenge* c : presented) {
    if (auto cleaned = responder.cleanup(c->record); !cleaned) {
      warnings.push_back("Warning: could not remove TXT " + c->record.fqdn + ": " + cleaned.error().message);
      log::warn("acme: could not remove TXT {}: {}", c->record.fqdn, cleaned.error().message);
    } else {
      log::info("acme: removed TXT {}", c->record.fqdn);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// One order, from newOrder to the filed certificate

Status check_domains(const std::vector<std::string>& domains) {
  if (domains.empty()) return invalid("give the certificate's names with --domain D (repeatable)");
  for (const auto& domain : domains) BULWARK_TRY(pki::validate_dns_name(domain));
  return Status::success();
}

Result<pki::Outcome> obtain(const Options& options, const std::vector<std::string>& domains, bool renewal) {
  BULWARK_TRY(pki::validate_cert_name(options.name));
  BULWARK_TRY(check_domains(domains));
  if (options.server.empty()) return invalid("give the ACME directory URL with --server URL");
  auto responder = make_responder(options.dns);
  if (!responder) return responder.error();
  auto account = load_or_create_account_key(options.dir, options.server);
  if (!account) return account.error();

  HttpClient http(options.server_ca);
  AcmeClient client(http, account->key.get());
  BULWARK_TRY(client.fetch_directory(options.server));
  auto kid = client.register_account(options.email);
  if (!kid) return kid.error();
  if (*kid != account->kid) {
    account->kid = *kid;
    BULWARK_TRY(save_account_info(*account, options.server, options.email));
    log::info("acme: account {} (key {})", *kid, account->key_path.string());
  }
  auto thumbprint = client.thumbprint();
  if (!thumbprint) return thumbprint.error();
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;

  json identifiers = json::array();
  for (const auto& domain : domains) identifiers.push_back({{"type", "dns"}, {"value", domain}});
  auto created = client.post(client.directory().new_order, json{{"identifiers", identifiers}}, "creating the order");
  if (!created) return created.error();
  const std::string order_url = created->http.header("location");
  if (order_url.empty()) return make_error(ErrorKind::unavailable, "the ACME server gave the order no URL (Location)");
  log::info("acme: order {} for {}", order_url, identifiers.dump());

  auto challenges = pending_challenges(client, created->body, *thumbprint);
  if (!challenges) return challenges.error();
  std::vector<std::string> warnings;
  BULWARK_TRY(prove_control(client, **responder, *challenges, options.dns, deadline, warnings));

  auto order = client.poll(order_url, {"pending"}, "waiting for the order to become ready", deadline);
  if (!order) return order.error();
  if (order->value("status", "") != "ready")
    return make_error(ErrorKind::unavailable, "the order is " + order->value("status", "") +
                                                  (order->contains("error") ? ": " + problem_text((*order)["error"]) : ""));
  auto key = generate_p256_key();
  if (!key) return key.error();
  auto csr = make_csr_der(key->get(), domains);
  if (!csr) return csr.error();
  auto finalized = client.post(order->value("finalize", ""), json{{"csr", base64url(*csr)}}, "finalizing the order");
  if (!finalized) return finalized.error();
  order = client.poll(order_url, {"ready", "processing"}, "waiting for the certificate", deadline);
  if (!order) return order.error();
  if (order->value("status", "") != "valid")
    return make_error(ErrorKind::unavailable, "the order ended " + order->value("status", "") +
                                                  (order->contains("error") ? ": " + problem_text((*order)["error"]) : ""));
  const std::string certificate_url = order->value("certificate", "");
  auto certificate = client.post(certificate_url, std::nullopt, "downloading the certificate",
                                 "application/pem-certificate-chain");
  if (!certificate) return certificate.error();

  auto key_pem = private_key_pem(key->get());
  if (!key_pem) return key_pem.error();
  pki::ExternalCertificate filed;
  filed.dir = options.dir;
  filed.name = options.name;
  filed.chain_pem = certificate->http.body;
  filed.key_pem = *key_pem;
  filed.marker_json = json{{"server", options.server},
                           {"domains", domains},
                           {"account", *kid},
                           {"order", order_url},
                           {"certificate", certificate_url},
                           {"issued_at", std::time(nullptr)}}
                          .dump(2) +
                      "\n";
  auto outcome = pki::record_external(filed);
  if (!outcome) return outcome.error();
  outcome->messages.insert(outcome->messages.begin(),
                           std::string(renewal ? "Renewed " : "Issued ") + options.name + " from " + options.server +
                               " for " + identifiers.dump() + " (dns-01 through " + (*responder)->describe() + ")");
  for (auto& warning : warnings) outcome->messages.push_back(std::move(warning));
  if (!options.export_to) {
    outcome->messages.push_back("Export it with `bulwark pki export " + options.name + " --dir " + options.dir.string() +
                                " ...` (again after each renewal, or give --export-format)");
  } else {
    pki::ExportOptions exporting;
    exporting.dir = options.dir;
    exporting.name = options.name;
    exporting.format = options.export_to->format;
    exporting.password = options.export_to->password;
    exporting.legacy_pkcs12 = options.export_to->legacy_pkcs12;
    exporting.out = options.export_to->out;
    exporting.force = true;
    auto exported = pki::export_credentials(exporting);
    if (!exported)
      return make_error(exported.error().kind, "the new certificate is stored, but exporting it failed: " +
                                                   exported.error().message);
    for (auto& line : exported->messages) outcome->messages.push_back(std::move(line));
  }
  return outcome;
}

// The protocol code reads answers with nlohmann::json, which throws on a member of an unexpected
// type (a server bug, or not an ACME server at all): that becomes an error value here.
Result<pki::Outcome> obtain_or_explain(const Options& options, const std::vector<std::string>& domains, bool renewal) {
  try {
    return obtain(options, domains, renewal);
  } catch (const json::exception& e) {
    return make_error(ErrorKind::unavailable, "the ACME server sent an answer of an unexpected shape: " + std::string(e.what()));
  }
}

// What renewing needs from the stored certificate and its acme.json.
struct Stored {
  X509Ptr cert;
  std::string server;
  std::vector<std::string> domains;
};

Result<Stored> read_stored(const Options& options) {
  const fs::path folder = options.dir / "issued" / options.name;
  auto marker = read_file(pki::external_marker(options.dir, options.name));
  if (!marker)
    return make_error(ErrorKind::not_found, "no ACME certificate named " + options.name + " in " + options.dir.string() +
                                                ": get one first with `bulwark pki acme issue " + options.name + " ...`");
  auto doc = json::parse(*marker, nullptr, false);
  if (!doc.is_object()) return make_error(ErrorKind::corrupt, pki::external_marker(options.dir, options.name).string() + " is not JSON");
  Stored stored;
  stored.server = doc.value("server", "");
  stored.domains = doc.value("domains", std::vector<std::string>{});
  auto text = read_file(folder / "cert.pem");
  if (!text) return text.error();
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  stored.cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!stored.cert) return make_error(ErrorKind::corrupt, (folder / "cert.pem").string() + " is not a PEM certificate");
  return stored;
}

std::time_t as_time_t(const ASN1_TIME* when) {
  std::tm tm{};
  ASN1_TIME_to_tm(when, &tm);
  return timegm(&tm);
}

// The server's suggested window, when it offers renewalInfo; nullopt (and a debug line) otherwise.
std::optional<RenewalWindow> ari_window(const Options& options, X509* cert) {
  HttpClient http(options.server_ca);
  AcmeClient client(http, nullptr);
  if (auto fetched = client.fetch_directory(options.server); !fetched) {
    log::warn("acme: cannot read the directory for renewalInfo: {}", fetched.error().message);
    return std::nullopt;
  }
  std::string base = client.directory().renewal_info;
  if (base.empty()) return std::nullopt;
  auto id = ari_certificate_id(cert);
  if (!id) return std::nullopt;
  if (!base.ends_with("/")) base += "/";
  auto response = http.get(base + *id);
  if (!response || response->status != 200) {
    log::warn("acme: renewalInfo for {} is unavailable; using the two-thirds rule", options.name);
    return std::nullopt;
  }
  auto window = parse_renewal_info(response->body);
  if (!window) {
    log::warn("acme: {}", window.error().message);
    return std::nullopt;
  }
  return *window;
}

}  // namespace

Result<pki::Outcome> issue(const Options& options) {
  BULWARK_TRY(pki::validate_cert_name(options.name));
  std::error_code ec;
  if (!options.force && fs::exists(options.dir / "issued" / options.name / "cert.pem", ec))
    return make_error(ErrorKind::already_exists,
                      "a certificate named " + options.name + " is already in " + options.dir.string() +
                          "; renew it with `bulwark pki acme renew " + options.name + "`, or replace it with --force");
  return obtain_or_explain(options, options.domains, false);
}

Result<pki::Outcome> renew(const Options& given) {
  auto stored = read_stored(given);
  if (!stored) return stored.error();
  Options options = given;
  if (options.server.empty()) options.server = stored->server;
  if (options.domains.empty()) options.domains = stored->domains;
  if (!options.force) {
    X509* cert = stored->cert.get();
    auto window = ari_window(options, cert);
    auto decision = renewal_decision(as_time_t(X509_get0_notBefore(cert)), as_time_t(X509_get0_notAfter(cert)),
                                     std::time(nullptr), window);
    if (!decision.due)
      return pki::Outcome{{options.name + " is not due for renewal until " + utc(decision.renew_at) + ": " +
                           decision.reason + " (use --force to renew now)"}};
    log::info("acme: {} is due for renewal: {}", options.name, decision.reason);
  }
  return obtain_or_explain(options, options.domains, true);
}

void watch(const Options& options, std::chrono::seconds interval,
           const std::function<void(const Result<pki::Outcome>&)>& report, const std::function<bool()>& should_stop) {
  Options current = options;
  for (;;) {
    auto outcome = renew(current);
    report(outcome);
    current.force = false;  // --force renews once, at the start
    auto wait = outcome ? interval : std::min(interval, std::chrono::seconds(15 * 60));
    for (auto slept = std::chrono::seconds(0); slept < wait; slept += std::chrono::seconds(1)) {
      if (should_stop()) return;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (should_stop()) return;
  }
}

}  // namespace bulwark::acme
