// SCRAM credential administration as kafka-configs.sh --entity-type users does it (KIP-554): the
// client salts and hashes the password itself and sends only salt + SaltedPassword.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "client/client.h"
#include "security/sasl.h"
#include "wire/generated/alter_user_scram_credentials.h"

namespace bulwark::client {

struct ScramUpsert {
  std::string user;
  security::sasl::Mechanism mechanism = security::sasl::Mechanism::scram_sha_256;
  int iterations = security::sasl::kMinScramIterations;
  std::string password;  // never printed
};
struct ScramDelete {
  std::string user;
  security::sasl::Mechanism mechanism = security::sasl::Mechanism::scram_sha_256;
};

// The upsertion Kafka's AlterUserScramCredentials carries: a fresh random salt and the salted password.
// Errors: not a SCRAM mechanism, iterations outside Kafka's [4096, 16384], empty user or password.
Result<wire::msg::AlterUserScramCredentialsRequest::ScramCredentialUpsertion> make_upsertion(const ScramUpsert& upsert);

struct ScramResult {
  std::string user;
  std::int16_t error_code = 0;
  std::optional<std::string> error_message;
};
Result<std::vector<ScramResult>> alter_scram_credentials(AdminConnection& connection,
                                                         const std::vector<ScramUpsert>& upserts,
                                                         const std::vector<ScramDelete>& deletes);

struct ScramUserInfo {
  std::string user;
  std::int16_t error_code = 0;
  std::optional<std::string> error_message;
  struct Credential {
    std::int8_t mechanism = 0;  // Kafka's wire code: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512
    std::int32_t iterations = 0;
  };
  std::vector<Credential> credentials;
};
// Empty `users` describes every user with credentials.
Result<std::vector<ScramUserInfo>> describe_scram_credentials(AdminConnection& connection,
                                                              const std::vector<std::string>& users);

// A SCRAM error from the broker in plain words (RESOURCE_NOT_FOUND: the user has no such credential ...).
std::string explain_scram_error(std::int16_t code, const std::optional<std::string>& message, std::string_view user,
                                std::string_view identity);

}  // namespace bulwark::client
