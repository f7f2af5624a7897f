#include "pki/parse.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace bulwark::pki {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  auto end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

// Canonical spelling of a subject attribute type, or "" when unknown.
std::string canonical_field_type(std::string_view type) {
  static const char* const kKnown[] = {"CN", "OU", "O", "L", "ST", "C", "DC", "STREET", "emailAddress"};
  auto wanted = lower(type);
  for (const char* known : kKnown)
    if (lower(known) == wanted) return known;
  if (wanted == "s") return "ST";
  return {};
}

// Splits on `separator`, honouring backslash escapes.
std::vector<std::string> split_escaped(std::string_view text, char separator) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      parts.back() += text[++i];
    } else if (c == separator) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  for (auto& part : split_escaped(text, ',')) {
    auto item = trim(part);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

Result<KeyType> parse_key_type(std::string_view text) {
  auto name = lower(trim(text));
  if (name == "rsa:2048" || name == "rsa") return KeyType::rsa_2048;
  if (name == "rsa:4096") return KeyType::rsa_4096;
  if (name == "ec:p256" || name == "ec" || name == "ec:prime256v1" || name == "ec:p-256" || name == "ec:secp256r1")
    return KeyType::ec_p256;
  if (name == "ec:p384" || name == "ec:secp384r1" || name == "ec:p-384") return KeyType::ec_p384;
  if (name == "ed25519") return KeyType::ed25519;
  return invalid("unknown key type \"" + std::string(text) +
                 "\": use one of rsa:2048, rsa:4096, ec:p256, ec:p384, ed25519");
}

std::string key_type_name(KeyType type) {
  switch (type) {
    case KeyType::ec_p256: return "ec:p256";
    case KeyType::ec_p384: return "ec:p384";
    case KeyType::rsa_2048: return "rsa:2048";
    case KeyType::rsa_4096: return "rsa:4096";
    case KeyType::ed25519: return "ed25519";
  }
  return "unknown";
}

Result<std::vector<SubjectField>> parse_subject(std::string_view text) {
  auto whole = trim(text);
  std::vector<SubjectField> fields;
  if (whole.empty()) return fields;
  bool slash_form = whole.front() == '/';
  auto parts = slash_form ? split_escaped(std::string_view(whole).substr(1), '/') : split_escaped(whole, ',');
  for (auto& raw : parts) {
    auto part = trim(raw);
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos)
      return invalid("subject part \"" + part + "\" has no '=': write it as TYPE=VALUE, e.g. O=SLS,OU=DevOps,C=IR");
    auto type = canonical_field_type(trim(std::string_view(part).substr(0, eq)));
    auto value = trim(std::string_view(part).substr(eq + 1));
    if (type.empty())
      return invalid("unknown subject field \"" + trim(std::string_view(part).substr(0, eq)) +
                     "\": use CN, OU, O, L, ST, C, DC, STREET or emailAddress");
    if (value.empty()) return invalid("subject field " + type + " has an empty value");
    if (value.size() > 64) return invalid("subject field " + type + " is longer than 64 characters");
    if (type == "C" && (value.size() != 2 || !std::isalpha(static_cast<unsigned char>(value[0])) ||
                        !std::isalpha(static_cast<unsigned char>(value[1]))))
      return invalid("subject field C=" + value + " must be a two-letter country code, e.g. C=IR");
    fields.push_back({type, value});
  }
  // The slash form lists the least specific part first; keep one order inside: most specific first.
  if (slash_form) std::reverse(fields.begin(), fields.end());
  return fields;
}

std::string format_subject(const std::vector<SubjectField>& fields) {
  std::string out;
  for (const auto& field : fields) {
    if (!out.empty()) out += ',';
    out += field.type + '=';
    for (char c : field.value) {
      if (c == ',' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out;
}

bool is_ip_address(std::string_view text) { return normalize_ip(text).ok(); }

Result<std::string> normalize_ip(std::string_view text) {
  std::string input = trim(text);
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, input.c_str(), buf) == 1) {
    inet_ntop(AF_INET, buf, out, sizeof out);
    return std::string(out);
  }
  if (inet_pton(AF_INET6, input.c_str(), buf) == 1) {
    inet_ntop(AF_INET6, buf, out, sizeof out);
    return std::string(out);
  }
  return invalid(input + " is not an IPv4 or IPv6 address");
}

Status validate_dns_name(std::string_view text) {
  std::string name(text);
  if (name.empty()) return invalid("empty DNS name");
  if (is_ip_address(name))
    return invalid(name + " is an IP address; pass it with --ip so it is an IP SAN");
  auto bad = [&](const std::string& why) { return invalid(name + " is not a valid DNS name: " + why); };
  if (name.size() > 253) return bad("longer than 253 characters");
  std::string_view rest = name;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  std::size_t start = 0;
  std::string last_label;
  while (true) {
    auto dot = rest.find('.', start);
    auto label = rest.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return bad("empty label (two dots in a row, or a leading or trailing dot)");
    if (label.size() > 63) return bad("a label is longer than 63 characters");
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
        return bad(std::string("'") + c + "' is not allowed (use letters, digits, '-' and '.')");
    if (label.front() == '-' || label.back() == '-') return bad("a label starts or ends with '-'");
    last_label = std::string(label);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (rest.find('.') != std::string_view::npos &&
      std::all_of(last_label.begin(), last_label.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return bad("the last label is all digits (if it is an IP address, pass the full address with --ip)");
  return Status::success();
}

Result<SanList> parse_sans(const std::vector<std::string>& dns, const std::vector<std::string>& ips) {
  SanList sans;
  for (const auto& arg : dns) {
    for (auto& value : split_commas(arg)) {
      BULWARK_TRY(validate_dns_name(value));
      auto name = lower(value);
      if (std::find(sans.dns.begin(), sans.dns.end(), name) == sans.dns.end()) sans.dns.push_back(name);
    }
  }
  for (const auto& arg : ips) {
    for (auto& value : split_commas(arg)) {
      auto ip = normalize_ip(value);
      if (!ip) return invalid("--ip " + value + ": not an IPv4 or IPv6 address");
      if (std::find(sans.ips.begin(), sans.ips.end(), *ip) == sans.ips.end()) sans.ips.push_back(*ip);
    }
  }
  return sans;
}

Result<SanList> classify_sans(std::string_view comma_separated) {
  std::vector<std::string> dns, ips;
  for (auto& value : split_commas(comma_separated)) (is_ip_address(value) ? ips : dns).push_back(value);
  return parse_sans(dns, ips);
}

Status validate_cert_name(std::string_view name) {
  if (name.empty()) return invalid("the certificate name is empty");
  if (name.size() > 64) return invalid("certificate name \"" + std::string(name) + "\" is longer than 64 characters");
  if (name.front() == '.' || name.front() == '-')
    return invalid("certificate name \"" + std::string(name) + "\" must not start with '.' or '-'");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return invalid("certificate name \"" + std::string(name) +
                     "\" may only hold letters, digits, '-', '_' and '.' (it names files and keystore aliases)");
  return Status::success();
}

Result<BrokerSpec> parse_broker_spec(std::string_view text) {
  BrokerSpec spec;
  auto eq = text.find('=');
  spec.name = trim(text.substr(0, eq));
  BULWARK_TRY(validate_cert_name(spec.name));
  if (eq == std::string_view::npos || trim(text.substr(eq + 1)).empty()) {
    auto sans = classify_sans(spec.name);
    if (!sans) return invalid("--broker " + std::string(text) + ": " + sans.error().message);
    spec.sans = std::move(*sans);
  } else {
    auto sans = classify_sans(text.substr(eq + 1));
    if (!sans) return invalid("--broker " + std::string(text) + ": " + sans.error().message);
    spec.sans = std::move(*sans);
  }
  return spec;
}

Result<std::string> new_serial(const std::set<std::string>& taken, const RandomBytes& random_bytes) {
  RandomBytes source = random_bytes ? random_bytes : RandomBytes([](std::uint8_t* out, std::size_t size) {
    return RAND_bytes(out, static_cast<int>(size)) == 1;
  });
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::uint8_t bytes[16];
    if (!source(bytes, sizeof bytes)) return make_error(ErrorKind::internal, "the random number generator failed");
    bytes[0] &= 0x7f;                 // positive
    if (bytes[0] == 0) bytes[0] = 1;  // and a full 16 bytes long
    std::string hex;
    for (auto b : bytes) {
      char two[3];
      std::snprintf(two, sizeof two, "%02X", b);
      hex += two;
    }
    if (!taken.contains(hex)) return hex;
  }
  return make_error(ErrorKind::internal, "could not draw a serial number not used before (random source broken?)");
}

namespace {
struct ReasonName {
  int code;
  const char* name;
};
constexpr ReasonName kReasons[] = {
    {0, "unspecified"},          {1, "keyCompromise"},        {2, "cACompromise"},      {3, "affiliationChanged"},
    {4, "superseded"},           {5, "cessationOfOperation"}, {6, "certificateHold"},   {9, "privilegeWithdrawn"},
};
std::string squash(std::string_view text) {
  std::string out;
  for (char c : text)
    if (c != '-' && c != '_' && c != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

Result<int> parse_revocation_reason(std::string_view text) {
  for (const auto& reason : kReasons)
    if (squash(reason.name) == squash(text)) return reason.code;
  return invalid("unknown revocation reason \"" + std::string(text) +
                 "\": use unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
                 "cessationOfOperation, certificateHold or privilegeWithdrawn");
}

std::string revocation_reason_name(int code) {
  for (const auto& reason : kReasons)
    if (reason.code == code) return reason.name;
  return "unspecified";
}

}  // namespace bulwark::pki
