// The RFC 8555 protocol: directory, nonces, signed requests (with badNonce retries), accounts and
// polling that honours Retry-After. Internal to src/acme; the order flow is in acme.cpp.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "acme/http.h"
#include "acme/jws.h"
#include "base/openssl.h"
#include "base/result.h"

namespace bulwark::acme {

struct Directory {
  std::string new_nonce, new_account, new_order;
  std::string renewal_info;  // ARI (RFC 9773); empty when the server has none
  std::string terms_of_service;
};

struct Reply {
  HttpResponse http;
  json body;  // null unless the answer was JSON
};

// "the ACME server refused ...: TYPE: DETAIL" from a problem document (RFC 7807), with subproblems.
std::string problem_text(const json& problem);
// Retry-After of a reply, clamped to [1 s, 1 min]; `fallback` when absent.
std::chrono::seconds retry_delay(const HttpResponse& http, std::chrono::seconds fallback);

class AcmeClient {
 public:
  AcmeClient(HttpClient& http, EVP_PKEY* account_key) : http_(http), key_(account_key) {}

  Status fetch_directory(const std::string& url);
  const Directory& directory() const { return directory_; }

  // newAccount with termsOfServiceAgreed (and contact mailto:email); the server answers 200 with the
  // existing account for a key it knows. Returns the account URL, used as "kid" from then on.
  Result<std::string> register_account(const std::optional<std::string>& email);

  // A request signed with the account's kid; no payload is POST-as-GET. 4xx/5xx become errors that
  // quote the server's problem document; `what` says what was being done.
  Result<Reply> post(const std::string& url, const std::optional<json>& payload, const std::string& what,
                     const std::string& accept = {});

  // POST-as-GET `url` until its "status" leaves `waiting` (e.g. "pending", "processing"), sleeping
  // as Retry-After says; gives up at the deadline.
  Result<json> poll(const std::string& url, const std::vector<std::string>& waiting, const std::string& what,
                    std::chrono::steady_clock::time_point deadline);

  Result<std::string> thumbprint() const;

 private:
  Result<Reply> signed_post(const std::string& url, const std::string& payload, bool with_jwk,
                            const std::string& what, const std::string& accept);
  Result<std::string> take_nonce();

  HttpClient& http_;
  EVP_PKEY* key_;
  Directory directory_;
  std::string kid_;
  std::string nonce_;
};

}  // namespace bulwark::acme
