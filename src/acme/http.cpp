#include "acme/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>

#include "base/files.h"

namespace bulwark::acme {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<HttpResponse*>(user)->body.append(data, size * count);
  return size * count;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) response->headers.clear();  // a new response (after 100 Continue)
  if (auto colon = line.find(':'); colon != std::string_view::npos)
    response->headers.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return size * count;
}

// The default bundle libcurl was built with, e.g. /etc/ssl/certs/ca-certificates.crt on Debian.
std::string system_ca_bundle() {
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  const char* path = info && info->cainfo ? info->cainfo : "/etc/ssl/certs/ca-certificates.crt";
  auto text = read_file(path);
  return text ? *text : std::string();
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  std::string wanted = lower(name);
  for (auto it = headers.rbegin(); it != headers.rend(); ++it)
    if (it->first == wanted) return it->second;
  return {};
}

std::vector<std::string> HttpResponse::links(std::string_view rel) const {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers) {
    if (name != "link") continue;
    auto open = value.find('<'), close = value.find('>');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::string params = lower(value.substr(close + 1));
    if (params.find("rel=\"" + lower(rel) + "\"") != std::string::npos || params.find("rel=" + lower(rel)) != std::string::npos)
      out.push_back(value.substr(open + 1, close - open - 1));
  }
  return out;
}

HttpClient::HttpClient(std::optional<std::filesystem::path> extra_ca) : extra_ca_(std::move(extra_ca)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpResponse> HttpClient::get(const std::string& url) { return perform("GET", url, nullptr, {}); }
Result<HttpResponse> HttpClient::head(const std::string& url) { return perform("HEAD", url, nullptr, {}); }
Result<HttpResponse> HttpClient::post(const std::string& url, const std::string& body, const std::string& accept) {
  return perform("POST", url, &body, accept);
}

Result<HttpResponse> HttpClient::perform(const std::string& method, const std::string& url, const std::string* body,
                                         const std::string& accept) {
  auto* curl = static_cast<CURL*>(curl_);
  if (!curl) return make_error(ErrorKind::internal, "libcurl could not start");
  if (extra_ca_ && !ca_loaded_) {
    auto extra = read_file(*extra_ca_);
    if (!extra) return make_error(extra.error().kind, "cannot read --server-ca: " + extra.error().message);
    ca_bundle_ = system_ca_bundle() + "\n" + *extra;
    ca_loaded_ = true;
  }
  curl_easy_reset(curl);
  HttpResponse response;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "bulwark-acme/1 (libcurl)");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  curl_blob ca_blob{ca_bundle_.data(), ca_bundle_.size(), CURL_BLOB_NOCOPY};
  if (ca_loaded_) curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca_blob);
  curl_slist* headers = nullptr;
  if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (body) {
    headers = curl_slist_append(headers, "Content-Type: application/jose+json");
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  }
  if (!accept.empty()) headers = curl_slist_append(headers, ("Accept: " + accept).c_str());
  if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    std::string detail = error_text[0] ? error_text : curl_easy_strerror(code);
    std::string hint;
    if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE)
      hint = " (is the server's CA trusted? give it with --server-ca FILE)";
    return make_error(ErrorKind::unavailable, method + " " + url + " failed: " + detail + hint);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long long seconds = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  // IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (the obsolete RFC 850 and asctime forms are not sent
  // by ACME servers).
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  std::time_t when = timegm(&tm);
  return std::chrono::seconds(when > now ? when - now : 0);
}

}  // namespace bulwark::acme
