#include "acme/client.h"

#include <algorithm>
#include <thread>

#include "base/log.h"

namespace bulwark::acme {
namespace {

constexpr int kNonceRetries = 10;

bool is_json(const HttpResponse& http) {
  const std::string type = http.header("content-type");
  return type.find("json") != std::string::npos;
}

}  // namespace

std::string problem_text(const json& problem) {
  if (!problem.is_object()) return "no problem document";
  std::string text = problem.value("type", "about:blank");
  if (auto detail = problem.value("detail", ""); !detail.empty()) text += ": " + detail;
  if (problem.contains("subproblems") && problem["subproblems"].is_array()) {
    for (const auto& sub : problem["subproblems"]) {
      std::string who;
      if (sub.contains("identifier") && sub["identifier"].is_object()) who = sub["identifier"].value("value", "") + ": ";
      text += "; " + who + sub.value("type", "") + (sub.value("detail", "").empty() ? "" : ": " + sub.value("detail", ""));
    }
  }
  return text;
}

std::chrono::seconds retry_delay(const HttpResponse& http, std::chrono::seconds fallback) {
  auto parsed = parse_retry_after(http.header("retry-after"), std::time(nullptr));
  auto delay = parsed.value_or(fallback);
  return std::clamp(delay, std::chrono::seconds(1), std::chrono::seconds(60));
}

Status AcmeClient::fetch_directory(const std::string& url) {
  auto response = http_.get(url);
  if (!response) return response.error();
  auto doc = json::parse(response->body, nullptr, false);
  if (response->status != 200 || doc.is_discarded() || !doc.is_object())
    return make_error(ErrorKind::unavailable, url + " is not an ACME directory (HTTP " +
                                                  std::to_string(response->status) + ")");
  directory_.new_nonce = doc.value("newNonce", "");
  directory_.new_account = doc.value("newAccount", "");
  directory_.new_order = doc.value("newOrder", "");
  directory_.renewal_info = doc.value("renewalInfo", "");
  if (doc.contains("meta") && doc["meta"].is_object()) directory_.terms_of_service = doc["meta"].value("termsOfService", "");
  if (directory_.new_nonce.empty() || directory_.new_account.empty() || directory_.new_order.empty())
    return make_error(ErrorKind::unavailable, url + " lacks newNonce, newAccount or newOrder: not an RFC 8555 directory");
  return Status::success();
}

Result<std::string> AcmeClient::take_nonce() {
  if (!nonce_.empty()) return std::exchange(nonce_, {});
  auto response = http_.head(directory_.new_nonce);
  if (!response) return response.error();
  std::string nonce = response->header("replay-nonce");
  if (nonce.empty())
    return make_error(ErrorKind::unavailable, "the ACME server gave no Replay-Nonce (HTTP " +
                                                  std::to_string(response->status) + " from newNonce)");
  return nonce;
}

Result<Reply> AcmeClient::signed_post(const std::string& url, const std::string& payload, bool with_jwk,
                                      const std::string& what, const std::string& accept) {
  for (int attempt = 0;; ++attempt) {
    auto nonce = take_nonce();
    if (!nonce) return nonce.error();
    json header = {{"alg", "ES256"}, {"nonce", *nonce}, {"url", url}};
    if (with_jwk) {
      auto jwk = public_jwk(key_);
      if (!jwk) return jwk.error();
      header["jwk"] = *jwk;
    } else {
      header["kid"] = kid_;
    }
    auto body = sign_jws(key_, header, payload);
    if (!body) return body.error();
    auto response = http_.post(url, *body, accept);
    if (!response) return make_error(response.error().kind, what + ": " + response.error().message);
    nonce_ = response->header("replay-nonce");
    Reply reply{std::move(*response), nullptr};
    if (is_json(reply.http)) reply.body = json::parse(reply.http.body, nullptr, false);
    if (reply.body.is_discarded()) reply.body = nullptr;
    if (reply.http.status < 400) return reply;
    const std::string type = reply.body.is_object() ? reply.body.value("type", "") : "";
    if (type == "urn:ietf:params:acme:error:badNonce" && attempt < kNonceRetries) {
      log::debug("acme: the server refused our nonce for {}; retrying with a fresh one", url);
      continue;
    }
    std::string text = reply.body.is_object() ? problem_text(reply.body) : reply.http.body.substr(0, 300);
    ErrorKind kind = reply.http.status >= 500 ? ErrorKind::unavailable : ErrorKind::invalid_argument;
    if (type == "urn:ietf:params:acme:error:unauthorized") kind = ErrorKind::unauthenticated;
    return make_error(kind, what + ": the ACME server answered HTTP " + std::to_string(reply.http.status) + ", " + text);
  }
}

Result<std::string> AcmeClient::register_account(const std::optional<std::string>& email) {
  json payload = {{"termsOfServiceAgreed", true}};
  if (email) payload["contact"] = json::array({"mailto:" + *email});
  auto reply = signed_post(directory_.new_account, payload.dump(), true, "registering the ACME account", {});
  if (!reply) return reply.error();
  std::string kid = reply->http.header("location");
  if (kid.empty()) return make_error(ErrorKind::unavailable, "the ACME server gave the account no URL (Location)");
  if (reply->body.is_object() && reply->body.value("status", "valid") != "valid")
    return make_error(ErrorKind::unauthenticated, "the ACME account " + kid + " is " + reply->body.value("status", ""));
  kid_ = kid;
  return kid;
}

Result<Reply> AcmeClient::post(const std::string& url, const std::optional<json>& payload, const std::string& what,
                               const std::string& accept) {
  return signed_post(url, payload ? payload->dump() : std::string(), false, what, accept);
}

Result<json> AcmeClient::poll(const std::string& url, const std::vector<std::string>& waiting, const std::string& what,
                              std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto reply = post(url, std::nullopt, what);
    if (!reply) return reply.error();
    if (!reply->body.is_object()) return make_error(ErrorKind::unavailable, what + ": the answer is not JSON");
    std::string status = reply->body.value("status", "");
    if (std::find(waiting.begin(), waiting.end(), status) == waiting.end()) return reply->body;
    auto delay = retry_delay(reply->http, std::chrono::seconds(2));
    if (std::chrono::steady_clock::now() + delay > deadline)
      return make_error(ErrorKind::unavailable, what + ": still \"" + status + "\" at the deadline (--timeout)");
    log::debug("acme: {} is {}; asking again in {} s", url, status, delay.count());
    std::this_thread::sleep_for(delay);
  }
}

Result<std::string> AcmeClient::thumbprint() const {
  auto jwk = public_jwk(key_);
  if (!jwk) return jwk.error();
  return jwk_thumbprint(*jwk);
}

}  // namespace bulwark::acme
