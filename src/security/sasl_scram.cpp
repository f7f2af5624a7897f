// SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka's ScramSaslServer, ScramSaslClient, ScramMessages
// and ScramFormatter speak it: no channel binding, RFC 5802 username escapes, passwords used as
// their UTF-8 bytes (Kafka applies no SASLprep).
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <mutex>

#include "base/openssl.h"
#include "security/sasl.h"
#include "security/sasl_internal.h"

namespace bulwark::security::sasl {
namespace {

using internal::base64_decode;
using internal::base64_encode;
using internal::digest_size;

// Longest SCRAM message either side accepts; real ones are under 300 bytes.
constexpr std::size_t kMaxMessageBytes = 8192;
// Salt length for credentials made here (Kafka's ScramFormatter makes about 32 random bytes).
constexpr std::size_t kSaltBytes = 32;

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }
Error unauthenticated(std::string message) { return make_error(ErrorKind::unauthenticated, std::move(message)); }

const EVP_MD* digest_of(Mechanism mechanism) {
  switch (mechanism) {
    case Mechanism::scram_sha_256: return EVP_sha256();
    case Mechanism::scram_sha_512: return EVP_sha512();
    case Mechanism::plain: return nullptr;
  }
  return nullptr;
}

Result<const EVP_MD*> scram_digest(Mechanism mechanism) {
  const EVP_MD* md = digest_of(mechanism);
  if (md == nullptr) return invalid(std::string(name_of(mechanism)) + " is not a SCRAM mechanism");
  return md;
}

Status check_iterations(Mechanism mechanism, int iterations) {
  if (iterations < kMinScramIterations || iterations > kMaxScramIterations)
    return invalid("SCRAM iterations for " + std::string(name_of(mechanism)) + " must be between " +
                   std::to_string(kMinScramIterations) + " and " + std::to_string(kMaxScramIterations) +
                   ", got " + std::to_string(iterations));
  return Status::success();
}

Bytes hmac(const EVP_MD* md, ByteView key, ByteView data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(), &length) == nullptr)
    return {};
  out.resize(length);
  return out;
}

Bytes hash(const EVP_MD* md, ByteView data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &length, md, nullptr) != 1) return {};
  out.resize(length);
  return out;
}

Bytes xor_of(ByteView a, ByteView b) {
  Bytes out(a.size());
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

Result<Bytes> random_bytes(std::size_t n) {
  Bytes out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1)
    return make_error(ErrorKind::internal, "the system random generator failed " + openssl_errors());
  return out;
}

Result<Bytes> pbkdf2(const EVP_MD* md, std::string_view password, ByteView salt, int iterations) {
  Bytes out(static_cast<std::size_t>(EVP_MD_get_size(md)));
  static const char kEmpty[] = "";
  const char* pass = password.empty() ? kEmpty : password.data();
  if (PKCS5_PBKDF2_HMAC(pass, static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                        iterations, md, static_cast<int>(out.size()), out.data()) != 1)
    return make_error(ErrorKind::internal, "PBKDF2 failed " + openssl_errors());
  return out;
}

// ---- message parsing helpers ------------------------------------------------------------------

// Kafka's PRINTABLE: %x21-7E except ','.
bool is_printable_nonce(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

// Kafka's VALUE: %x01-7F except ','.
bool is_value(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x01 || u > 0x7f || c == ',') return false;
  }
  return true;
}

// A user name after unescaping: Kafka's SASLNAME admits %x01-7F ('=' and ',' only escaped).
bool is_ascii_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x01 || u > 0x7f) return false;
  }
  return true;
}

bool is_alpha_key(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  return true;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
}

// "k=value" with the given one-letter key; the value (possibly empty) or nullopt.
std::optional<std::string_view> attribute(std::string_view part, char key) {
  if (part.size() < 2 || part[0] != key || part[1] != '=') return std::nullopt;
  return part.substr(2);
}

using Extensions = std::vector<std::pair<std::string_view, std::string_view>>;

// Extensions ("key=value", ALPHA key, VALUE value) as Kafka's ScramMessages accept them.
Result<Extensions> parse_extensions(std::span<const std::string_view> parts, std::string_view message) {
  Extensions out;
  for (std::string_view part : parts) {
    std::size_t eq = part.find('=');
    if (eq == std::string_view::npos || !is_alpha_key(part.substr(0, eq)) || !is_value(part.substr(eq + 1)))
      return invalid("malformed SCRAM " + std::string(message) + ": an extension is not key=value");
    out.emplace_back(part.substr(0, eq), part.substr(eq + 1));
  }
  return out;
}

Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string_view as_text(ByteView b) { return std::string_view(reinterpret_cast<const char*>(b.data()), b.size()); }

// ---- unknown users --------------------------------------------------------------------------------

// A stand-in credential for a user that does not exist, so the exchange runs to the proof check and
// fails there with the same words as a wrong password (RFC 5802 section 9). The salt is a keyed hash
// of the name, so repeated probes see a stable salt as for a real user; the keys are random, so no
// proof can match them.
Result<ScramCredential> decoy_credential(Mechanism mechanism, const EVP_MD* md, const std::string& username) {
  static std::once_flag once;
  static std::array<std::uint8_t, 32> secret{};
  static bool secret_ok = false;
  std::call_once(once, [] { secret_ok = RAND_bytes(secret.data(), static_cast<int>(secret.size())) == 1; });
  if (!secret_ok) return make_error(ErrorKind::internal, "the system random generator failed");
  std::string input = std::string(name_of(mechanism)) + '\0' + username;
  ScramCredential credential;
  credential.salt = hmac(EVP_sha256(), secret, as_bytes(input));
  credential.iterations = kMinScramIterations;
  auto stored = random_bytes(static_cast<std::size_t>(EVP_MD_get_size(md)));
  if (!stored.ok()) return stored.error();
  auto server = random_bytes(static_cast<std::size_t>(EVP_MD_get_size(md)));
  if (!server.ok()) return server.error();
  credential.stored_key = std::move(*stored);
  credential.server_key = std::move(*server);
  if (credential.salt.empty()) return make_error(ErrorKind::internal, "HMAC failed");
  return credential;
}

thread_local std::optional<std::string> nonce_override;

}  // namespace

// ---- internal helpers -------------------------------------------------------------------------------
namespace internal {

std::string base64_encode(ByteView data) {
  if (data.empty()) return {};
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<Bytes> base64_decode(std::string_view text, bool padding_optional) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  std::string_view body = text.substr(0, text.size() - padding);
  if (padding > 0 && text.size() % 4 != 0) return std::nullopt;
  if (padding == 0 && body.size() % 4 != 0 && !padding_optional) return std::nullopt;
  if (body.size() % 4 == 1) return std::nullopt;
  if (padding > 0 && (body.size() % 4) + padding != 4) return std::nullopt;
  Bytes out;
  out.reserve(body.size() * 3 / 4);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (char c : body) {
    int v = value_of(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out.push_back(static_cast<std::uint8_t>(bits >> bit_count));
      bits &= (1u << bit_count) - 1;
    }
  }
  if (bits != 0) return std::nullopt;  // non-zero unused bits: not the canonical encoding
  return out;
}

std::size_t digest_size(Mechanism mechanism) {
  const EVP_MD* md = digest_of(mechanism);
  return md == nullptr ? 0 : static_cast<std::size_t>(EVP_MD_get_size(md));
}

std::string escape_username(std::string_view username) {
  std::string out;
  out.reserve(username.size());
  for (char c : username) {
    if (c == '=')
      out += "=3D";
    else if (c == ',')
      out += "=2C";
    else
      out += c;
  }
  return out;
}

std::optional<std::string> unescape_username(std::string_view saslname) {
  std::string out;
  out.reserve(saslname.size());
  for (std::size_t i = 0; i < saslname.size(); ++i) {
    char c = saslname[i];
    if (c == ',') return std::nullopt;
    if (c != '=') {
      out += c;
      continue;
    }
    std::string_view escape = saslname.substr(i, 3);
    if (escape == "=2C")
      out += ',';
    else if (escape == "=3D")
      out += '=';
    else
      return std::nullopt;
    i += 2;
  }
  return out;
}

std::string random_nonce() {
  if (nonce_override) return *nonce_override;
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::array<std::uint8_t, 32> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) return {};
  std::string out;
  out.reserve(raw.size());
  for (std::uint8_t b : raw) out += kAlphabet[b & 63];  // 64 symbols: uniform, 192 bits in all
  return out;
}

ScopedNonceForTesting::ScopedNonceForTesting(std::string nonce) : previous_(nonce_override) {
  nonce_override = std::move(nonce);
}
ScopedNonceForTesting::~ScopedNonceForTesting() { nonce_override = previous_; }

}  // namespace internal

// ---- credentials --------------------------------------------------------------------------------------

Result<Bytes> scram_salted_password(Mechanism mechanism, std::string_view password, std::span<const std::uint8_t> salt,
                                    int iterations) {
  auto md = scram_digest(mechanism);
  if (!md.ok()) return md.error();
  BULWARK_TRY(check_iterations(mechanism, iterations));
  if (salt.empty()) return invalid("SCRAM salt must not be empty");
  return pbkdf2(*md, password, salt, iterations);
}

Result<ScramCredential> scram_credential_from_salted_password(Mechanism mechanism,
                                                              std::span<const std::uint8_t> salted_password,
                                                              std::span<const std::uint8_t> salt, int iterations) {
  auto md = scram_digest(mechanism);
  if (!md.ok()) return md.error();
  BULWARK_TRY(check_iterations(mechanism, iterations));
  if (salt.empty()) return invalid("SCRAM salt must not be empty");
  if (salted_password.size() != digest_size(mechanism))
    return invalid("a salted password for " + std::string(name_of(mechanism)) + " must be " +
                   std::to_string(digest_size(mechanism)) + " bytes, got " + std::to_string(salted_password.size()));
  ScramCredential credential;
  credential.salt.assign(salt.begin(), salt.end());
  credential.iterations = iterations;
  Bytes client_key = hmac(*md, salted_password, as_bytes("Client Key"));
  credential.stored_key = hash(*md, client_key);
  credential.server_key = hmac(*md, salted_password, as_bytes("Server Key"));
  if (client_key.empty() || credential.stored_key.empty() || credential.server_key.empty())
    return make_error(ErrorKind::internal, "HMAC failed " + openssl_errors());
  return credential;
}

Result<ScramCredential> make_scram_credential(Mechanism mechanism, std::string_view password, int iterations,
                                              std::span<const std::uint8_t> salt) {
  BULWARK_TRY(scram_digest(mechanism));
  BULWARK_TRY(check_iterations(mechanism, iterations));
  if (password.empty()) return invalid("a SCRAM password must not be empty");
  Bytes salt_bytes(salt.begin(), salt.end());
  if (salt_bytes.empty()) {
    auto fresh = random_bytes(kSaltBytes);
    if (!fresh.ok()) return fresh.error();
    salt_bytes = std::move(*fresh);
  }
  auto salted = scram_salted_password(mechanism, password, salt_bytes, iterations);
  if (!salted.ok()) return salted.error();
  auto credential = scram_credential_from_salted_password(mechanism, *salted, salt_bytes, iterations);
  OPENSSL_cleanse(salted->data(), salted->size());
  return credential;
}

// ---- server ----------------------------------------------------------------------------------------------

ScramServer::ScramServer(Mechanism mechanism, CredentialLookup lookup)
    : mechanism_(mechanism), lookup_(std::move(lookup)) {}

namespace {

// What the server keeps between the two messages lives in ScramServer's members; these stages name
// the values of stage_.
constexpr int kAwaitClientFirst = 0;
constexpr int kAwaitClientFinal = 1;
constexpr int kDone = 2;
constexpr int kFailed = 3;

// The gs2 header ("n,," or "n,a=<saslname>,") is the part of a client-first message up to its
// second comma; a saslname never holds a raw comma.
std::size_t gs2_header_length(std::string_view client_first) {
  std::size_t first = client_first.find(',');
  if (first == std::string_view::npos) return std::string_view::npos;
  std::size_t second = client_first.find(',', first + 1);
  return second == std::string_view::npos ? std::string_view::npos : second + 1;
}

}  // namespace

Result<Bytes> ScramServer::step(std::span<const std::uint8_t> client_message) {
  auto md_result = scram_digest(mechanism_);
  if (!md_result.ok()) return md_result.error();
  const EVP_MD* md = *md_result;
  if (stage_ == kDone) return invalid("the SCRAM exchange is already complete");
  if (stage_ == kFailed) return invalid("the SCRAM exchange already failed");
  const std::string_view message = as_text(client_message);
  const int stage = stage_;
  stage_ = kFailed;  // until this step succeeds
  if (message.size() > kMaxMessageBytes) return invalid("SCRAM message too long");

  if (stage == kAwaitClientFirst) {
    // client-first = gs2-header client-first-bare; gs2-header = "n," [ "a=" saslname ] ","
    if (message.starts_with("y,") || message.starts_with("p="))
      return make_error(ErrorKind::unsupported, "SCRAM channel binding is not supported");
    if (!message.starts_with("n,")) return invalid("malformed SCRAM client-first message: bad gs2 header");
    std::size_t header_length = gs2_header_length(message);
    if (header_length == std::string_view::npos)
      return invalid("malformed SCRAM client-first message: bad gs2 header");
    std::string_view authzid_part = message.substr(2, header_length - 3);
    std::optional<std::string> authzid;
    if (!authzid_part.empty()) {
      auto value = attribute(authzid_part, 'a');
      if (!value || value->empty()) return invalid("malformed SCRAM client-first message: bad authorization id");
      authzid = internal::unescape_username(*value);
      if (!authzid || !is_ascii_name(*authzid))
        return invalid("malformed SCRAM client-first message: bad authorization id");
    }
    std::string_view bare = message.substr(header_length);
    auto parts = split_commas(bare);
    if (!parts.empty() && attribute(parts[0], 'm'))
      return make_error(ErrorKind::unsupported, "SCRAM mandatory extensions (m=) are not supported");
    if (parts.size() < 2) return invalid("malformed SCRAM client-first message: expected n=<user>,r=<nonce>");
    auto saslname = attribute(parts[0], 'n');
    auto client_nonce = attribute(parts[1], 'r');
    if (!saslname || saslname->empty()) return invalid("malformed SCRAM client-first message: missing user name");
    if (!client_nonce || !is_printable_nonce(*client_nonce))
      return invalid("malformed SCRAM client-first message: missing or bad nonce");
    auto username = internal::unescape_username(*saslname);
    // Kafka's SASLNAME: %x01-7F except '=' and ',' (escaped).
    if (!username || !is_ascii_name(*username))
      return invalid("malformed SCRAM client-first message: bad user name (use =2C for ',' and =3D for '=')");
    auto extensions = parse_extensions(std::span(parts).subspan(2), "client-first message");
    if (!extensions.ok()) return extensions.error();
    for (const auto& [key, value] : *extensions) {
      // Kafka: tokenauth=true means a delegation token; other extensions are ignored.
      if (key == "tokenauth" && (value == "true" || value == "TRUE" || value == "True"))
        return make_error(ErrorKind::unsupported, "SCRAM delegation token authentication is not supported");
    }
    username_ = *username;
    if (authzid && *authzid != username_)
      return unauthenticated("Authentication failed: Client requested an authorization id that is different from username");

    std::optional<ScramCredential> credential = lookup_ ? lookup_(username_) : std::nullopt;
    if (credential) {
      const std::size_t size = digest_size(mechanism_);
      if (credential->salt.empty() || credential->stored_key.size() != size || credential->server_key.size() != size ||
          credential->iterations < kMinScramIterations || credential->iterations > kMaxScramIterations)
        return make_error(ErrorKind::internal, "the stored " + std::string(name_of(mechanism_)) +
                                                   " credential of user '" + username_ + "' is unusable");
    } else {
      auto decoy = decoy_credential(mechanism_, md, username_);
      if (!decoy.ok()) return decoy.error();
      credential = std::move(*decoy);
    }
    std::string server_nonce = internal::random_nonce();
    if (server_nonce.empty()) return make_error(ErrorKind::internal, "the system random generator failed");
    nonce_ = std::string(*client_nonce) + server_nonce;
    // Only the full client-first message is kept: the gs2 header is needed again to check the
    // client's channel binding attribute, and the bare part follows it.
    client_first_bare_ = std::string(message);
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(credential->salt) + ",i=" +
                    std::to_string(credential->iterations);
    credential_ = std::move(credential);
    stage_ = kAwaitClientFinal;
    return to_bytes(server_first_);
  }

  // client-final = "c=" base64(gs2-header) ",r=" nonce [ "," extensions ] ",p=" proof
  auto parts = split_commas(message);
  if (parts.size() < 3) return invalid("malformed SCRAM client-final message: expected c=,r=,p=");
  auto binding = attribute(parts[0], 'c');
  auto nonce = attribute(parts[1], 'r');
  auto proof_text = attribute(parts.back(), 'p');
  if (!binding || !nonce || !proof_text) return invalid("malformed SCRAM client-final message: expected c=,r=,p=");
  auto extensions = parse_extensions(std::span(parts).subspan(2, parts.size() - 3), "client-final message");
  if (!extensions.ok()) return extensions.error();
  auto binding_bytes = base64_decode(*binding);
  auto proof = base64_decode(*proof_text);
  if (!binding_bytes) return invalid("malformed SCRAM client-final message: channel binding is not base64");
  if (!proof) return invalid("malformed SCRAM client-final message: proof is not base64");
  const std::string_view client_first = client_first_bare_;
  const std::size_t header_length = gs2_header_length(client_first);
  if (as_text(*binding_bytes) != client_first.substr(0, header_length))
    return invalid("SCRAM channel binding does not match the client-first message's gs2 header");
  // Kafka's ScramSaslServer checks endsWith, not equality: librdkafka (up to 2.x) sends its own nonce
  // followed by the whole combined nonce, and Kafka accepts that.
  if (!nonce->ends_with(nonce_)) return invalid("SCRAM nonce in the client-final message does not match the server's");
  const std::size_t size = digest_size(mechanism_);
  if (proof->size() != size) return unauthenticated(std::string(internal::kInvalidCredentials));

  const std::string_view without_proof = message.substr(0, message.size() - parts.back().size() - 1);
  std::string auth_message;
  auth_message.reserve(client_first.size() + server_first_.size() + without_proof.size() + 2);
  auth_message.append(client_first.substr(header_length)).append(",").append(server_first_).append(",").append(without_proof);
  Bytes client_signature = hmac(md, credential_->stored_key, as_bytes(auth_message));
  Bytes client_key = xor_of(*proof, client_signature);
  Bytes computed_stored_key = hash(md, client_key);
  if (client_signature.empty() || computed_stored_key.empty())
    return make_error(ErrorKind::internal, "HMAC failed " + openssl_errors());
  if (!constant_time_equal(computed_stored_key, credential_->stored_key))
    return unauthenticated(std::string(internal::kInvalidCredentials));
  Bytes server_signature = hmac(md, credential_->server_key, as_bytes(auth_message));
  if (server_signature.empty()) return make_error(ErrorKind::internal, "HMAC failed " + openssl_errors());
  credential_.reset();  // Kafka clears the credential once used
  complete_ = true;
  stage_ = kDone;
  return to_bytes("v=" + base64_encode(server_signature));
}

// ---- client ----------------------------------------------------------------------------------------------

ScramClient::ScramClient(Mechanism mechanism, std::string username, std::string password)
    : mechanism_(mechanism), username_(std::move(username)), password_(std::move(password)) {}

Bytes ScramClient::first_message() {
  client_nonce_ = internal::random_nonce();
  server_signature_.clear();
  client_first_bare_ = "n=" + internal::escape_username(username_) + ",r=" + client_nonce_;
  return to_bytes("n,," + client_first_bare_);
}

Result<Bytes> ScramClient::final_message(std::span<const std::uint8_t> server_first) {
  auto md_result = scram_digest(mechanism_);
  if (!md_result.ok()) return md_result.error();
  const EVP_MD* md = *md_result;
  if (client_nonce_.empty())
    return invalid("SCRAM client: first_message() must come before final_message() (or the random generator failed)");
  const std::string_view message = as_text(server_first);
  if (message.size() > kMaxMessageBytes) return invalid("SCRAM server-first message too long");
  if (message.starts_with("e=")) return unauthenticated("SCRAM server refused the login: " + std::string(message.substr(2)));
  if (message.starts_with("m="))
    return make_error(ErrorKind::unsupported, "SCRAM server-first message has a mandatory extension (m=)");
  auto parts = split_commas(message);
  if (parts.size() < 3) return invalid("malformed SCRAM server-first message: expected r=,s=,i=");
  auto nonce = attribute(parts[0], 'r');
  auto salt_text = attribute(parts[1], 's');
  auto iterations_text = attribute(parts[2], 'i');
  if (!nonce || !salt_text || !iterations_text)
    return invalid("malformed SCRAM server-first message: expected r=,s=,i=");
  auto extensions = parse_extensions(std::span(parts).subspan(3), "server-first message");
  if (!extensions.ok()) return extensions.error();
  if (!is_printable_nonce(*nonce) || !nonce->starts_with(client_nonce_) || nonce->size() == client_nonce_.size())
    return invalid("SCRAM server-first message: the server's nonce does not extend the client's");
  auto salt = base64_decode(*salt_text);
  if (!salt || salt->empty()) return invalid("malformed SCRAM server-first message: bad salt");
  int iterations = 0;
  const char* begin = iterations_text->data();
  const char* end = begin + iterations_text->size();
  auto [ptr, ec] = std::from_chars(begin, end, iterations);
  if (iterations_text->empty() || ec != std::errc() || ptr != end || (*iterations_text)[0] == '-')
    return invalid("malformed SCRAM server-first message: bad iteration count");
  if (iterations < kMinScramIterations)
    return invalid("SCRAM server asks for " + std::to_string(iterations) + " iterations, below the minimum " +
                   std::to_string(kMinScramIterations));
  if (iterations > kMaxScramIterations)
    return invalid("SCRAM server asks for " + std::to_string(iterations) + " iterations, above the maximum " +
                   std::to_string(kMaxScramIterations));

  auto salted = pbkdf2(md, password_, *salt, iterations);
  if (!salted.ok()) return salted.error();
  Bytes client_key = hmac(md, *salted, as_bytes("Client Key"));
  Bytes stored_key = hash(md, client_key);
  Bytes server_key = hmac(md, *salted, as_bytes("Server Key"));
  OPENSSL_cleanse(salted->data(), salted->size());
  const std::string without_proof = "c=biws,r=" + std::string(*nonce);  // biws = base64("n,,")
  const std::string auth_message = client_first_bare_ + "," + std::string(message) + "," + without_proof;
  Bytes client_signature = hmac(md, stored_key, as_bytes(auth_message));
  server_signature_ = hmac(md, server_key, as_bytes(auth_message));
  if (client_key.empty() || stored_key.empty() || server_key.empty() || client_signature.empty() ||
      server_signature_.empty())
    return make_error(ErrorKind::internal, "HMAC failed " + openssl_errors());
  Bytes proof = xor_of(client_key, client_signature);
  OPENSSL_cleanse(client_key.data(), client_key.size());
  return to_bytes(without_proof + ",p=" + base64_encode(proof));
}

Status ScramClient::verify_server_final(std::span<const std::uint8_t> server_final) {
  const std::string_view message = as_text(server_final);
  if (message.size() > kMaxMessageBytes) return invalid("SCRAM server-final message too long");
  auto parts = split_commas(message);
  if (auto error = attribute(parts[0], 'e'))
    return unauthenticated("SCRAM server refused the login: " + std::string(*error));
  if (server_signature_.empty())
    return invalid("SCRAM client: final_message() must come before verify_server_final()");
  auto signature_text = attribute(parts[0], 'v');
  if (!signature_text) return invalid("malformed SCRAM server-final message: expected v= or e=");
  auto extensions = parse_extensions(std::span(parts).subspan(1), "server-final message");
  if (!extensions.ok()) return extensions.error();
  auto signature = base64_decode(*signature_text);
  if (!signature) return invalid("malformed SCRAM server-final message: signature is not base64");
  if (!constant_time_equal(*signature, server_signature_))
    return unauthenticated("SCRAM server signature is wrong: the server does not know this user's credential");
  return Status::success();
}

}  // namespace bulwark::security::sasl
