// HTTPS for the ACME client, through libcurl. Internal to src/acme.
#pragma once

#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace bulwark::acme {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in arrival order

  // The last value of a header, "" when absent.
  std::string header(std::string_view name) const;
  // The targets of Link headers with this rel (RFC 8288), e.g. rel="up" for alternate issuer chains.
  std::vector<std::string> links(std::string_view rel) const;
};

class HttpClient {
 public:
  // extra_ca: trusted for the server's TLS besides the system's CAs (e.g. pebble's own test CA).
  explicit HttpClient(std::optional<std::filesystem::path> extra_ca = std::nullopt);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> get(const std::string& url);
  Result<HttpResponse> head(const std::string& url);
  Result<HttpResponse> post(const std::string& url, const std::string& body, const std::string& accept = {});

 private:
  Result<HttpResponse> perform(const std::string& method, const std::string& url, const std::string* body,
                               const std::string& accept);
  std::optional<std::filesystem::path> extra_ca_;
  std::string ca_bundle_;  // system bundle + extra_ca_, loaded on first use
  bool ca_loaded_ = false;
  void* curl_ = nullptr;
};

// A Retry-After value (RFC 9110 section 10.2.3): delay seconds or an HTTP-date, as a wait from `now`
// (never negative). nullopt when it is neither.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now);

}  // namespace bulwark::acme
