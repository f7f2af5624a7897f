// When a certificate is due for renewal: two thirds into its lifetime, or inside the window an ACME
// server's renewalInfo (ARI, RFC 9773) suggests. Pure functions; internal to src/acme.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "base/openssl.h"
#include "base/result.h"

namespace bulwark::acme {

// "2025-01-02 04:00:00Z", as the renewal messages print times.
std::string utc(std::time_t when);

// not_before + 2/3 of the lifetime.
std::time_t two_thirds_point(std::time_t not_before, std::time_t not_after);

struct RenewalWindow {
  std::time_t start = 0;
  std::time_t end = 0;
};

struct RenewalDecision {
  bool due = false;
  std::time_t renew_at = 0;  // when it becomes (or became) due
  std::string reason;        // plain words for the log
};
// Due from now on when `now` has reached the ARI window's start, else two thirds into the lifetime.
RenewalDecision renewal_decision(std::time_t not_before, std::time_t not_after, std::time_t now,
                                 const std::optional<RenewalWindow>& ari_window = std::nullopt);

// RFC 3339 "2025-01-02T04:00:00Z" or with an offset/fraction, as seconds since the epoch.
Result<std::time_t> parse_rfc3339(std::string_view text);
// {"suggestedWindow": {"start": ..., "end": ...}} of a renewalInfo response.
Result<RenewalWindow> parse_renewal_info(std::string_view body);
// RFC 9773 section 4.1: base64url(authority key identifier) "." base64url(serial's DER content bytes).
Result<std::string> ari_certificate_id(X509* cert);

}  // namespace bulwark::acme
