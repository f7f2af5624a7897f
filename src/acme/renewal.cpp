#include "acme/renewal.h"

#include <cstdio>
#include <ctime>

#include "acme/jws.h"

namespace bulwark::acme {

std::string utc(std::time_t when) {
  std::tm tm{};
  gmtime_r(&when, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%SZ", &tm);
  return text;
}

std::time_t two_thirds_point(std::time_t not_before, std::time_t not_after) {
  return not_before + (not_after - not_before) * 2 / 3;
}

RenewalDecision renewal_decision(std::time_t not_before, std::time_t not_after, std::time_t now,
                                 const std::optional<RenewalWindow>& ari_window) {
  RenewalDecision decision;
  if (ari_window) {
    decision.renew_at = ari_window->start;
    decision.due = now >= ari_window->start;
    decision.reason = "the server's renewal window (ARI) is " + utc(ari_window->start) + " to " + utc(ari_window->end);
    return decision;
  }
  decision.renew_at = two_thirds_point(not_before, not_after);
  decision.due = now >= decision.renew_at;
  decision.reason = "two thirds of its lifetime (" + utc(not_before) + " to " + utc(not_after) + ") pass at " +
                    utc(decision.renew_at);
  return decision;
}

Result<std::time_t> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  int consumed = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &consumed) != 6 &&
      std::sscanf(s.c_str(), "%4d-%2d-%2dt%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return make_error(ErrorKind::corrupt, "\"" + s + "\" is not an RFC 3339 time");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t when = timegm(&tm);
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {  // fractions of a second do not matter here
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') rest.remove_prefix(1);
  }
  if (rest == "Z" || rest == "z") return when;
  int hours = 0, minutes = 0;
  char sign = 0;
  if (rest.size() == 6 && std::sscanf(std::string(rest).c_str(), "%c%2d:%2d", &sign, &hours, &minutes) == 3 &&
      (sign == '+' || sign == '-')) {
    std::time_t offset = hours * 3600 + minutes * 60;
    return sign == '+' ? when - offset : when + offset;
  }
  return make_error(ErrorKind::corrupt, "\"" + s + "\" is not an RFC 3339 time (no zone)");
}

Result<RenewalWindow> parse_renewal_info(std::string_view body) {
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("suggestedWindow") || !doc["suggestedWindow"].is_object())
    return make_error(ErrorKind::corrupt, "the renewalInfo answer has no suggestedWindow");
  const auto& window = doc["suggestedWindow"];
  auto start = parse_rfc3339(window.value("start", ""));
  if (!start) return start.error();
  auto end = parse_rfc3339(window.value("end", ""));
  if (!end) return end.error();
  if (*end < *start) return make_error(ErrorKind::corrupt, "the renewalInfo window ends before it starts");
  return RenewalWindow{*start, *end};
}

Result<std::string> ari_certificate_id(X509* cert) {
  const ASN1_OCTET_STRING* key_id = X509_get0_authority_key_id(cert);
  if (!key_id) return make_error(ErrorKind::not_found, "the certificate has no authority key identifier");
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  // The DER content octets of the serial: i2d gives tag, length, content.
  unsigned char* der = nullptr;
  int length = i2d_ASN1_INTEGER(serial, &der);
  if (length < 3) {
    OPENSSL_free(der);
    return make_error(ErrorKind::corrupt, "cannot encode the certificate's serial");
  }
  std::string encoded(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  std::size_t header = 2;
  if (static_cast<unsigned char>(encoded[1]) & 0x80) header += static_cast<unsigned char>(encoded[1]) & 0x7f;
  std::string aki(reinterpret_cast<const char*>(ASN1_STRING_get0_data(key_id)), static_cast<std::size_t>(ASN1_STRING_length(key_id)));
  return base64url(aki) + "." + base64url(encoded.substr(header));
}

}  // namespace bulwark::acme
