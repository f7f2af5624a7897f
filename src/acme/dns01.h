// Who puts the DNS-01 TXT records in place: an exec hook (lego's `exec` contract) or an RFC 2136
// update to an authoritative server. Internal to src/acme.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"

namespace bulwark::acme {

struct Dns01Record {
  std::string fqdn;   // "_acme-challenge.kafka-1.example.com." (trailing dot)
  std::string value;  // base64url(SHA-256(key authorization))
};

class Dns01Responder {
 public:
  virtual ~Dns01Responder() = default;
  virtual Status present(const Dns01Record& record) = 0;
  virtual Status cleanup(const Dns01Record& record) = 0;
  virtual std::string describe() const = 0;
};

// Runs `PROGRAM present FQDN VALUE` and `PROGRAM cleanup FQDN VALUE`; a non-zero exit is an error.
std::unique_ptr<Dns01Responder> make_hook_responder(std::filesystem::path program);

// Signed RFC 2136 updates to server (HOST:PORT) with the tsig-keygen key in key_file; the zone is
// asked of the server (its SOA) unless given.
Result<std::unique_ptr<Dns01Responder>> make_rfc2136_responder(const std::string& server,
                                                               const std::filesystem::path& key_file,
                                                               std::optional<std::string> zone);

// "_acme-challenge." + the domain without a wildcard's "*." + ".".
std::string challenge_fqdn(std::string_view domain);

}  // namespace bulwark::acme
