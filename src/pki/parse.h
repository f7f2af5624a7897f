// Parsing and validation of what users type into `bulwark pki`: key types, subjects, SANs, names, and
// the random serial numbers the CA gives out. Pure functions, no files, so they are unit tested alone.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace bulwark::pki {

enum class KeyType { ec_p256, ec_p384, rsa_2048, rsa_4096, ed25519 };

// "rsa:2048", "rsa:4096", "ec:p256", "ec:p384", "ed25519" (case-insensitive; "ec:prime256v1",
// "ec:secp384r1", "rsa" = rsa:2048 and "ec" = ec:p256 are accepted too).
Result<KeyType> parse_key_type(std::string_view text);
std::string key_type_name(KeyType type);

// One relative distinguished name, e.g. {"O", "SLS"}.
struct SubjectField {
  std::string type;
  std::string value;
  bool operator==(const SubjectField&) const = default;
};

// Reads "O=SLS,OU=DevOps,L=Tehran,C=IR" (the way keytool -dname and Kafka print a DN: most specific
// first) or OpenSSL's "/C=IR/L=Tehran/O=SLS" (least specific first). Returns fields most specific
// first in both cases. `\,` escapes a comma inside a value. Known types: CN, OU, O, L, ST, C, DC,
// STREET, emailAddress. C must be two letters.
Result<std::vector<SubjectField>> parse_subject(std::string_view text);
// Back to the comma form parse_subject reads ("O=SLS,OU=DevOps").
std::string format_subject(const std::vector<SubjectField>& fields);

// True when text is an IPv4 or IPv6 address.
bool is_ip_address(std::string_view text);
// The canonical text of an IP address ("::0001" -> "::1"), or a plain-words error.
Result<std::string> normalize_ip(std::string_view text);
// A host name for a DNS SAN: labels of letters, digits and '-', 1..63 characters each, at most 253 in
// all, an optional leading "*." wildcard. An IP address is refused with a hint to use --ip.
Status validate_dns_name(std::string_view text);

struct SanList {
  std::vector<std::string> dns;
  std::vector<std::string> ips;  // canonical text
  bool empty() const { return dns.empty() && ips.empty(); }
};
// Validates --dns and --ip values (each may also be a comma-separated list); removes duplicates and
// keeps the order given.
Result<SanList> parse_sans(const std::vector<std::string>& dns, const std::vector<std::string>& ips);
// For bootstrap's "kafka-1=kafka-1,192.168.9.194": each value becomes an IP SAN when it is an IP
// address, a DNS SAN otherwise.
Result<SanList> classify_sans(std::string_view comma_separated);

// Names of issued certificates double as directory names, file names and keystore aliases.
Status validate_cert_name(std::string_view name);

// A bootstrap --broker value: "NAME=SAN,SAN" or just "NAME" (then the SAN is DNS:NAME).
struct BrokerSpec {
  std::string name;
  SanList sans;
};
Result<BrokerSpec> parse_broker_spec(std::string_view text);

// A new random serial: 16 bytes, positive (top bit clear, first byte non-zero so it stays 16 bytes in
// DER), as upper-case hex, never one of `taken`. `random_bytes` fills a buffer (RAND_bytes by default;
// tests pass their own).
using RandomBytes = std::function<bool(std::uint8_t* out, std::size_t size)>;
Result<std::string> new_serial(const std::set<std::string>& taken, const RandomBytes& random_bytes = {});

// CRL revocation reasons (RFC 5280 names, case-insensitive, '-' and '_' ignored).
Result<int> parse_revocation_reason(std::string_view text);
std::string revocation_reason_name(int code);

}  // namespace bulwark::pki
