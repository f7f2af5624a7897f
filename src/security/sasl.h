// SASL mechanics as Kafka speaks them, with no I/O: PLAIN (RFC 4616), SCRAM-SHA-256/512 (RFC 5802,
// RFC 7677) on both sides, salted credentials and their durable form, and Kafka's JAAS config
// strings (sasl.jaas.config / listener.name.<l>.<mech>.sasl.jaas.config).
//
// Secrets: passwords and keys pass through here but never into an Error message or a rendering;
// messages name users and mechanisms only.
//
// Thread safety: free functions are pure; one ScramServer/ScramClient serves one login on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace bulwark::security::sasl {

enum class Mechanism { plain, scram_sha_256, scram_sha_512 };
std::string_view name_of(Mechanism);                  // "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"
Result<Mechanism> mechanism_from(std::string_view);   // exact names as above (as Kafka compares them)
bool is_scram(Mechanism m);
// Kafka's ScramMechanism type codes on the wire (Describe/AlterUserScramCredentials): 1 = SHA-256, 2 = SHA-512.
std::int8_t scram_wire_type(Mechanism m);
Result<Mechanism> scram_mechanism_from_wire(std::int8_t type);

// Compares without an early exit, so the time taken does not reveal where two secrets differ.
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

// ---- PLAIN ---------------------------------------------------------------------------------------
struct PlainCredentials {
  std::string authorization_id;  // may be empty; Kafka accepts it only if equal to username
  std::string username;
  std::string password;
};
// "authzid NUL authcid NUL passwd". Errors (invalid_argument): wrong number of NULs, empty user or
// password, authzid given and different from the user (Kafka's PlainSaslServer rules).
Result<PlainCredentials> parse_plain_token(std::span<const std::uint8_t> token);
Bytes plain_token(std::string_view username, std::string_view password);

// ---- JAAS ----------------------------------------------------------------------------------------
// One login module entry: `<class> <flag> key="value" key2=value2;` (Kafka's JaasConfig parser:
// quoted or bare values, one entry, trailing ';' required).
struct JaasConfig {
  std::string login_module;  // e.g. org.apache.kafka.common.security.plain.PlainLoginModule
  std::string control_flag;  // required | requisite | sufficient | optional
  std::map<std::string, std::string> options;
};
// Errors name the position, never echo option values (they hold passwords).
Result<JaasConfig> parse_jaas_config(std::string_view text);
// PlainLoginModule's server-side users: every option user_<name>="<password>".
std::map<std::string, std::string> plain_users(const JaasConfig& config);

// ---- SCRAM ---------------------------------------------------------------------------------------
inline constexpr int kMinScramIterations = 4096;   // Kafka's ScramMechanism.minIterations
inline constexpr int kMaxScramIterations = 16384;  // Kafka's ScramMechanism.maxIterations

struct ScramCredential {
  Bytes salt;
  Bytes stored_key;  // H(ClientKey)
  Bytes server_key;  // HMAC(SaltedPassword, "Server Key")
  int iterations = kMinScramIterations;
  friend bool operator==(const ScramCredential&, const ScramCredential&) = default;
};

// Derives the stored form of a password (PBKDF2-HMAC with the mechanism's hash). An empty salt means
// a fresh random one. Errors: iterations out of [kMin, kMax], not a SCRAM mechanism.
Result<ScramCredential> make_scram_credential(Mechanism mechanism, std::string_view password, int iterations,
                                              std::span<const std::uint8_t> salt = {});
// SaltedPassword = Hi(password, salt, iterations) (RFC 5802); what AlterUserScramCredentials carries.
Result<Bytes> scram_salted_password(Mechanism mechanism, std::string_view password,
                                    std::span<const std::uint8_t> salt, int iterations);
// The credential from a salted password computed elsewhere (AlterUserScramCredentials sends
// salt + SaltedPassword, never the password).
Result<ScramCredential> scram_credential_from_salted_password(Mechanism mechanism,
                                                              std::span<const std::uint8_t> salted_password,
                                                              std::span<const std::uint8_t> salt, int iterations);

// Server side of one SCRAM exchange. Kafka's ScramSaslServer rules: gs2 header "n,," or "n,a=<user>,"
// only (no channel binding); usernames carry RFC 5802's "=2C"/"=3D" escapes; extensions other than
// none are refused; the client proof is checked in constant time.
class ScramServer {
 public:
  using CredentialLookup = std::function<std::optional<ScramCredential>(const std::string& username)>;
  ScramServer(Mechanism mechanism, CredentialLookup lookup);

  // Feed the client's message, get the server's reply. First call: client-first -> server-first.
  // Second call: client-final -> server-final, after which complete() is true.
  // Errors: unauthenticated "Authentication failed: Invalid user credentials" for an unknown user or
  // a wrong proof (the same words, so a client cannot probe which users exist); invalid_argument for
  // a malformed message or a step after completion.
  Result<Bytes> step(std::span<const std::uint8_t> client_message);
  bool complete() const { return complete_; }
  const std::string& username() const { return username_; }  // unescaped; valid once complete()

 private:
  Mechanism mechanism_;
  CredentialLookup lookup_;
  int stage_ = 0;
  bool complete_ = false;
  std::string username_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::optional<ScramCredential> credential_;
};

// Client side (used by `bulwark` commands that log in with SCRAM).
class ScramClient {
 public:
  ScramClient(Mechanism mechanism, std::string username, std::string password);
  Bytes first_message();
  // Errors: malformed server-first, a nonce that does not extend ours, iterations below kMin.
  Result<Bytes> final_message(std::span<const std::uint8_t> server_first);
  // Errors: unauthenticated when the server's signature is wrong or it sent "e=...".
  Status verify_server_final(std::span<const std::uint8_t> server_final);

 private:
  Mechanism mechanism_;
  std::string username_;
  std::string password_;
  std::string client_nonce_;
  std::string client_first_bare_;
  Bytes server_signature_;
};

// ---- Durable credentials -------------------------------------------------------------------------
// user -> mechanism -> credential.
using ScramCredentials = std::map<std::string, std::map<Mechanism, ScramCredential>>;
// JSON {"version":1,"users":{"alice":{"SCRAM-SHA-256":{"salt":"<b64>","stored_key":"<b64>",
// "server_key":"<b64>","iterations":4096}}}}. No password or salted password is ever stored.
std::string encode_scram_credentials(const ScramCredentials& credentials);
// Errors (corrupt) say which user and field is damaged.
Result<ScramCredentials> decode_scram_credentials(std::string_view text);

// Kafka's `kafka-storage.sh format --add-scram` / kafka-configs.sh value:
// "SCRAM-SHA-256=[name=alice,password=alice-secret]" or "...=[name=alice,iterations=8192,password=..]"
// (also "salt=<b64>" and "saltedpassword=<b64>" as Kafka accepts). Errors never echo the password.
struct ScramSpec {
  Mechanism mechanism = Mechanism::scram_sha_256;
  std::string username;
  ScramCredential credential;
};
Result<ScramSpec> parse_add_scram(std::string_view text);

}  // namespace bulwark::security::sasl
