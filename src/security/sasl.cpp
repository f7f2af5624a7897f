// Mechanism names, PLAIN (Kafka's PlainSaslServer rules), the durable SCRAM credential document and
// Kafka's --add-scram syntax. SCRAM itself is in sasl_scram.cpp, JAAS in sasl_jaas.cpp.
#include <openssl/crypto.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "security/sasl.h"
#include "security/sasl_internal.h"

namespace bulwark::security::sasl {
namespace {

using json = nlohmann::json;

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }
Error corrupt(std::string message) { return make_error(ErrorKind::corrupt, std::move(message)); }

// Java's String.trim(): strips every char <= ' '.
std::string_view java_trim(std::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view name_of(Mechanism mechanism) {
  switch (mechanism) {
    case Mechanism::plain: return "PLAIN";
    case Mechanism::scram_sha_256: return "SCRAM-SHA-256";
    case Mechanism::scram_sha_512: return "SCRAM-SHA-512";
  }
  return "UNKNOWN";
}

Result<Mechanism> mechanism_from(std::string_view name) {
  for (Mechanism m : {Mechanism::plain, Mechanism::scram_sha_256, Mechanism::scram_sha_512})
    if (name == name_of(m)) return m;
  return make_error(ErrorKind::unsupported, "unsupported SASL mechanism '" + std::string(name) +
                                                "' (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)");
}

bool is_scram(Mechanism m) { return m == Mechanism::scram_sha_256 || m == Mechanism::scram_sha_512; }

std::int8_t scram_wire_type(Mechanism m) {
  switch (m) {
    case Mechanism::scram_sha_256: return 1;
    case Mechanism::scram_sha_512: return 2;
    case Mechanism::plain: return 0;  // Kafka's ScramMechanism.UNKNOWN
  }
  return 0;
}

Result<Mechanism> scram_mechanism_from_wire(std::int8_t type) {
  if (type == 1) return Mechanism::scram_sha_256;
  if (type == 2) return Mechanism::scram_sha_512;
  return make_error(ErrorKind::unsupported, "unknown SCRAM mechanism type " + std::to_string(type) +
                                                " (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512)");
}

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;  // lengths are public (they follow the hash)
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- PLAIN -------------------------------------------------------------------------------------------

Result<PlainCredentials> parse_plain_token(std::span<const std::uint8_t> token) {
  const std::string_view text(reinterpret_cast<const char*>(token.data()), token.size());
  // Kafka's extractTokens: up to 4 pieces split on NUL; exactly 3 are required.
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    std::size_t nul = text.find('\0', start);
    if (nul == std::string_view::npos) {
      parts.push_back(text.substr(start));
      break;
    }
    parts.push_back(text.substr(start, nul - start));
    start = nul + 1;
  }
  if (parts.size() != 3)
    return invalid("Invalid SASL/PLAIN response: expected 3 tokens, got " + std::to_string(parts.size()));
  PlainCredentials credentials{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
  if (credentials.username.empty()) return invalid("Authentication failed: username not specified");
  if (credentials.password.empty()) return invalid("Authentication failed: password not specified");
  if (!credentials.authorization_id.empty() && credentials.authorization_id != credentials.username)
    return invalid("Authentication failed: Client requested an authorization id that is different from username");
  return credentials;
}

Bytes plain_token(std::string_view username, std::string_view password) {
  Bytes out;
  out.reserve(username.size() + password.size() + 2);
  out.push_back(0);  // no authorization id, as Kafka's clients send it
  out.insert(out.end(), username.begin(), username.end());
  out.push_back(0);
  out.insert(out.end(), password.begin(), password.end());
  return out;
}

// ---- durable credentials -------------------------------------------------------------------------------

std::string encode_scram_credentials(const ScramCredentials& credentials) {
  json users = json::object();
  for (const auto& [user, by_mechanism] : credentials) {
    json entry = json::object();
    for (const auto& [mechanism, credential] : by_mechanism) {
      if (!is_scram(mechanism)) continue;
      entry[std::string(name_of(mechanism))] = {
          {"salt", internal::base64_encode(credential.salt)},
          {"stored_key", internal::base64_encode(credential.stored_key)},
          {"server_key", internal::base64_encode(credential.server_key)},
          {"iterations", credential.iterations},
      };
    }
    if (!entry.empty()) users[user] = std::move(entry);
  }
  json document = {{"version", 1}, {"users", std::move(users)}};
  // Names that are not valid UTF-8 cannot appear in JSON; replacing (rather than throwing) keeps this
  // infallible. Names reach here from Kafka's wire strings and --add-scram, both UTF-8.
  return document.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<ScramCredentials> decode_scram_credentials(std::string_view text) {
  json document = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return corrupt("SCRAM credentials: not valid JSON");
  if (!document.is_object()) return corrupt("SCRAM credentials: the document is not a JSON object");
  auto version = document.find("version");
  if (version == document.end() || !version->is_number_integer())
    return corrupt("SCRAM credentials: missing or non-integer \"version\"");
  if (version->get<std::int64_t>() != 1)
    return corrupt("SCRAM credentials: unsupported version " + version->dump() + " (expected 1)");
  auto users = document.find("users");
  if (users == document.end() || !users->is_object()) return corrupt("SCRAM credentials: missing \"users\" object");
  for (const auto& [key, value] : document.items())
    if (key != "version" && key != "users") return corrupt("SCRAM credentials: unknown top-level field \"" + key + "\"");

  ScramCredentials out;
  for (const auto& [user, mechanisms] : users->items()) {
    const std::string where_user = "SCRAM credentials of user '" + user + "'";
    if (user.empty()) return corrupt("SCRAM credentials: a user has an empty name");
    if (!mechanisms.is_object()) return corrupt(where_user + ": not a JSON object");
    auto& by_mechanism = out[user];
    for (const auto& [mechanism_name, fields] : mechanisms.items()) {
      auto mechanism = mechanism_from(mechanism_name);
      if (!mechanism.ok() || !is_scram(*mechanism))
        return corrupt(where_user + ": unknown mechanism \"" + mechanism_name + "\"");
      const std::string where = where_user + ", " + mechanism_name;
      if (!fields.is_object()) return corrupt(where + ": not a JSON object");
      for (const auto& [field, ignored] : fields.items())
        if (field != "salt" && field != "stored_key" && field != "server_key" && field != "iterations")
          return corrupt(where + ": unknown field \"" + field + "\"");
      // fields is a structured binding: Clang 14 cannot capture one implicitly, hence the init-capture.
      auto bytes_field = [&, &fields = fields](const char* name, Bytes& target) -> Status {
        auto it = fields.find(name);
        if (it == fields.end() || !it->is_string()) return corrupt(where + ": missing or non-string \"" + name + "\"");
        auto decoded = internal::base64_decode(it->get_ref<const std::string&>());
        if (!decoded) return corrupt(where + ": \"" + name + "\" is not valid base64");
        target = std::move(*decoded);
        return Status::success();
      };
      ScramCredential credential;
      BULWARK_TRY(bytes_field("salt", credential.salt));
      BULWARK_TRY(bytes_field("stored_key", credential.stored_key));
      BULWARK_TRY(bytes_field("server_key", credential.server_key));
      if (credential.salt.empty()) return corrupt(where + ": \"salt\" is empty");
      const std::size_t size = internal::digest_size(*mechanism);
      if (credential.stored_key.size() != size)
        return corrupt(where + ": \"stored_key\" is " + std::to_string(credential.stored_key.size()) +
                       " bytes, expected " + std::to_string(size));
      if (credential.server_key.size() != size)
        return corrupt(where + ": \"server_key\" is " + std::to_string(credential.server_key.size()) +
                       " bytes, expected " + std::to_string(size));
      auto iterations = fields.find("iterations");
      if (iterations == fields.end() || !iterations->is_number_integer())
        return corrupt(where + ": missing or non-integer \"iterations\"");
      const auto count = iterations->get<std::int64_t>();
      if (count < kMinScramIterations || count > kMaxScramIterations)
        return corrupt(where + ": \"iterations\" " + std::to_string(count) + " is outside " +
                       std::to_string(kMinScramIterations) + ".." + std::to_string(kMaxScramIterations));
      credential.iterations = static_cast<int>(count);
      by_mechanism[*mechanism] = std::move(credential);
    }
  }
  return out;
}

// ---- --add-scram ----------------------------------------------------------------------------------------

// Kafka's ScramParser (kafka-storage format --add-scram): MECH=[key=value,...] with keys name,
// password, saltedpassword, salt, iterations; a value wrapped in double quotes loses them. Unlike
// Kafka, a quoted value may contain ',' (Kafka splits on every comma first, so password="a,b" fails
// there); every input Kafka accepts parses the same here. Kafka's error texts echo values; these
// never do, as a value may be a password.
Result<ScramSpec> parse_add_scram(std::string_view text) {
  text = java_trim(text);
  const std::size_t equals = text.find('=');
  if (equals == std::string_view::npos)
    return invalid("--add-scram: expected MECHANISM=[name=...,password=...], e.g. "
                   "SCRAM-SHA-256=[name=alice,password=alice-secret]; found no '='");
  const std::string_view mechanism_name = text.substr(0, equals);
  auto mechanism = mechanism_from(mechanism_name);
  if (!mechanism.ok() || !is_scram(*mechanism))
    return invalid("--add-scram: mechanism '" + std::string(mechanism_name) +
                   "' is not supported (use SCRAM-SHA-256 or SCRAM-SHA-512)");
  std::string_view config = text.substr(equals + 1);
  if (!config.starts_with('[')) return invalid("--add-scram: expected the configuration to start with [");
  if (!config.ends_with(']') || config.size() < 2) return invalid("--add-scram: expected the configuration to end with ]");
  config = config.substr(1, config.size() - 2);
  // Java's split(",") drops trailing empty pieces, so Kafka accepts "[name=a,password=b,]".
  while (config.ends_with(',')) config.remove_suffix(1);

  std::map<std::string, std::string> components;
  std::size_t position = 0;
  int index = 0;
  while (position <= config.size()) {
    ++index;
    const std::size_t key_end = config.find_first_of("=,", position);
    if (key_end == std::string_view::npos || config[key_end] == ',')
      return invalid("--add-scram: component " + std::to_string(index) +
                     " has no '=' (a value holding ',' must be quoted, e.g. password=\"a,b\")");
    std::string key(config.substr(position, key_end - position));
    std::size_t value_start = key_end + 1;
    std::size_t value_end;
    std::size_t next;
    // A value that opens with '"' runs to a '"' followed by ',' or the end, so it may hold commas.
    std::size_t closing = std::string_view::npos;
    if (value_start < config.size() && config[value_start] == '"') {
      for (std::size_t i = value_start + 1; i < config.size(); ++i)
        if (config[i] == '"' && (i + 1 == config.size() || config[i + 1] == ',')) {
          closing = i;
          break;
        }
    }
    if (closing != std::string_view::npos) {
      value_end = closing + 1;
    } else {
      value_end = config.find(',', value_start);
      if (value_end == std::string_view::npos) value_end = config.size();
    }
    std::string_view value = config.substr(value_start, value_end - value_start);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    next = value_end + 1;
    if (components.contains(key)) return invalid("--add-scram: '" + key + "' is given more than once");
    components.emplace(std::move(key), std::string(value));
    position = next;
  }

  auto take = [&](const char* key) -> std::optional<std::string> {
    auto it = components.find(key);
    if (it == components.end()) return std::nullopt;
    std::string value = std::move(it->second);
    components.erase(it);
    return value;
  };
  ScramSpec spec;
  spec.mechanism = *mechanism;
  auto name = take("name");
  auto salt_text = take("salt");
  auto iterations_text = take("iterations");
  auto password = take("password");
  auto salted_text = take("saltedpassword");
  auto wipe = [](std::optional<std::string>& secret) {
    if (secret && !secret->empty()) OPENSSL_cleanse(secret->data(), secret->size());
  };
  auto fail = [&](std::string message) -> Result<ScramSpec> {
    wipe(password);
    wipe(salted_text);
    return invalid("--add-scram: " + message);
  };
  if (!components.empty()) {
    std::string keys;
    for (const auto& [key, ignored] : components) keys += (keys.empty() ? "" : ", ") + key;
    return fail("unknown SCRAM configurations: " + keys + " (known: name, password, saltedpassword, salt, iterations)");
  }
  if (!name) return fail("you must supply 'name'");
  if (name->empty()) return fail("'name' is empty");
  spec.username = *name;

  Bytes salt;
  if (salt_text) {
    auto decoded = internal::base64_decode(*salt_text, /*padding_optional=*/true);
    if (!decoded) return fail("failed to decode the given salt (expected base64)");
    if (decoded->empty()) return fail("the given salt is empty");
    salt = std::move(*decoded);
  }
  int iterations = 4096;  // Kafka's default for --add-scram
  if (iterations_text) {
    std::string_view digits = *iterations_text;
    if (digits.starts_with('+')) digits.remove_prefix(1);  // Java's Integer.parseInt allows a sign
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), iterations);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size())
      return fail("failed to parse the iterations count '" + *iterations_text + "'");
  }
  if (iterations < kMinScramIterations)
    return fail("the 'iterations' value must be >= " + std::to_string(kMinScramIterations) + " for " +
                std::string(name_of(*mechanism)));
  if (iterations > kMaxScramIterations)
    return fail("the 'iterations' value must be <= " + std::to_string(kMaxScramIterations) + " for " +
                std::string(name_of(*mechanism)));

  if (password && salted_text) return fail("give either 'password' or 'saltedpassword', not both");
  if (password) {
    if (password->empty()) return fail("'password' is empty");
    auto credential = make_scram_credential(*mechanism, *password, iterations, salt);
    wipe(password);
    if (!credential.ok()) return credential.error();
    spec.credential = std::move(*credential);
    return spec;
  }
  if (!salted_text) return fail("you must supply one of 'password' or 'saltedpassword'");
  if (salt.empty()) return fail("you must supply 'salt' with 'saltedpassword'");
  auto salted = internal::base64_decode(*salted_text, /*padding_optional=*/true);
  wipe(salted_text);
  if (!salted) return fail("failed to decode the given saltedpassword (expected base64)");
  auto credential = scram_credential_from_salted_password(*mechanism, *salted, salt, iterations);
  OPENSSL_cleanse(salted->data(), salted->size());
  if (!credential.ok()) return invalid("--add-scram: " + credential.error().message);
  spec.credential = std::move(*credential);
  return spec;
}

}  // namespace bulwark::security::sasl
