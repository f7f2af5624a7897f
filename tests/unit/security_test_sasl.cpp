// SASL mechanics: PLAIN tokens, JAAS strings, SCRAM-SHA-256/512 on both sides (RFC 7677's vector,
// round trips, tampering, malformed input), the durable credential document and --add-scram.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>
#include <map>
#include <optional>
#include <string>

#include "security/sasl.h"
#include "security/sasl_internal.h"

namespace bulwark::security::sasl {
namespace {

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string text_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

// ---- names ------------------------------------------------------------------------------------------

TEST(SaslMechanism, NamesAndWireTypes) {
  for (Mechanism m : {Mechanism::plain, Mechanism::scram_sha_256, Mechanism::scram_sha_512}) {
    auto back = mechanism_from(name_of(m));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, m);
  }
  EXPECT_FALSE(mechanism_from("scram-sha-256").ok());  // Kafka compares names exactly
  EXPECT_FALSE(mechanism_from("GSSAPI").ok());
  EXPECT_TRUE(is_scram(Mechanism::scram_sha_512));
  EXPECT_FALSE(is_scram(Mechanism::plain));
  EXPECT_EQ(scram_wire_type(Mechanism::scram_sha_256), 1);
  EXPECT_EQ(scram_wire_type(Mechanism::scram_sha_512), 2);
  EXPECT_EQ(*scram_mechanism_from_wire(2), Mechanism::scram_sha_512);
  EXPECT_FALSE(scram_mechanism_from_wire(0).ok());
  EXPECT_FALSE(scram_mechanism_from_wire(3).ok());
}

TEST(SaslMechanism, ConstantTimeEqual) {
  Bytes a = bytes_of("secret-1"), b = bytes_of("secret-2"), c = bytes_of("secret-1");
  EXPECT_TRUE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, bytes_of("secret-")));
  EXPECT_TRUE(constant_time_equal(Bytes{}, Bytes{}));
}

TEST(SaslBase64, StrictDecoding) {
  using internal::base64_decode;
  using internal::base64_encode;
  for (std::string s : {"", "a", "ab", "abc", "abcd", "abcde"}) {
    auto decoded = base64_decode(base64_encode(bytes_of(s)));
    ASSERT_TRUE(decoded.has_value()) << s;
    EXPECT_EQ(text_of(*decoded), s);
  }
  EXPECT_EQ(base64_encode(bytes_of("n,,")), "biws");
  EXPECT_FALSE(base64_decode("YQ").has_value());         // padding required by default
  EXPECT_TRUE(base64_decode("YQ", true).has_value());    // ... but optional for --add-scram
  EXPECT_FALSE(base64_decode("YR==").has_value());       // non-zero unused bits
  EXPECT_FALSE(base64_decode("Y===").has_value());
  EXPECT_FALSE(base64_decode("YWJj ").has_value());
  EXPECT_FALSE(base64_decode("YW-j").has_value());
}

// ---- PLAIN ------------------------------------------------------------------------------------------

TEST(SaslPlain, ParsesKafkaTokens) {
  auto parsed = parse_plain_token(plain_token("alice", "alice-secret"));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->authorization_id, "");
  EXPECT_EQ(parsed->username, "alice");
  EXPECT_EQ(parsed->password, "alice-secret");

  Bytes with_authzid = bytes_of(std::string("alice\0alice\0pw", 14));
  auto same = parse_plain_token(with_authzid);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->authorization_id, "alice");
}

TEST(SaslPlain, RejectsBadTokens) {
  struct Case {
    std::string token;
    std::string words;
  };
  const Case cases[] = {
      {std::string("alice\0pw", 8), "expected 3 tokens, got 2"},
      {std::string("", 0), "expected 3 tokens, got 1"},
      {std::string("\0alice\0pw\0x", 11), "expected 3 tokens, got 4"},
      {std::string("\0\0pw", 4), "username not specified"},
      {std::string("\0alice\0", 7), "password not specified"},
      {std::string("bob\0alice\0pw", 12), "authorization id that is different"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_plain_token(bytes_of(c.token));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().kind, ErrorKind::invalid_argument);
    EXPECT_NE(parsed.error().message.find(c.words), std::string::npos) << parsed.error().message;
    EXPECT_EQ(parsed.error().message.find("pw"), std::string::npos);
  }
}

// ---- JAAS -------------------------------------------------------------------------------------------

TEST(SaslJaas, ParsesPlainLoginModuleUsers) {
  auto config = parse_jaas_config(
      "org.apache.kafka.common.security.plain.PlainLoginModule required user_consumer=\"pw4consumer\" "
      "user_producer=\"pw4producer\";");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->login_module, "org.apache.kafka.common.security.plain.PlainLoginModule");
  EXPECT_EQ(config->control_flag, "required");
  auto users = plain_users(*config);
  EXPECT_EQ(users, (std::map<std::string, std::string>{{"consumer", "pw4consumer"}, {"producer", "pw4producer"}}));
}

TEST(SaslJaas, ParsesScramLoginModuleAndValueForms) {
  auto config = parse_jaas_config(
      "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"alice-secret\";");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->options.at("username"), "alice");
  EXPECT_EQ(config->options.at("password"), "alice-secret");
  EXPECT_TRUE(plain_users(*config).empty());

  // Bare values, single quotes, escapes, comments, other flags in any case, newlines.
  auto mixed = parse_jaas_config(
      "  com.example.Module\n  SUFFICIENT /* note */ a=bare-value_1.x b='single \"q\"' // comment\n"
      "  c=\"esc \\\"q\\\" \\\\ \\n\\101\" user_=\"x\" $d=\"\";  ");
  ASSERT_TRUE(mixed.ok()) << mixed.error().message;
  EXPECT_EQ(mixed->control_flag, "sufficient");
  EXPECT_EQ(mixed->options.at("a"), "bare-value_1.x");
  EXPECT_EQ(mixed->options.at("b"), "single \"q\"");
  EXPECT_EQ(mixed->options.at("c"), "esc \"q\" \\ \nA");
  EXPECT_EQ(mixed->options.at("$d"), "");
  EXPECT_TRUE(plain_users(*mixed).empty());  // "user_" alone names no user

  EXPECT_EQ(parse_jaas_config("\"quoted.Module\" required;")->login_module, "quoted.Module");
  for (const char* flag : {"required", "requisite", "sufficient", "optional", "Optional"})
    EXPECT_TRUE(parse_jaas_config(std::string("M ") + flag + ";").ok()) << flag;
}

TEST(SaslJaas, ErrorsNeverShowValues) {
  const std::string secret = "S3cr3tPassw0rd";
  const std::string cases[] = {
      "M required password=\"" + secret + "\"",                       // no ';'
      "M required password=\"" + secret + "\"; N required x=\"y\";",  // two entries
      "M required password=\"" + secret,                              // unterminated quote
      "M required password=" + secret + "!;",                         // stray character after a bare value
      "M mandatory password=\"" + secret + "\";",                     // bad flag
      "M required password=\"" + secret + "\" password=\"" + secret + "\";",  // duplicate key
      "M required password;",
      "M required password=\"x\" " + secret + ";",  // a stray word may be a password too
      "M required password=;",
      "M required password=\"" + secret + "\" /* open comment",
      "M",
      "",
      "   // only a comment",
  };
  for (const auto& text : cases) {
    auto config = parse_jaas_config(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.error().kind, ErrorKind::invalid_argument);
    EXPECT_EQ(config.error().message.find(secret), std::string::npos) << config.error().message;
    EXPECT_EQ(config.error().message.find("S3cr"), std::string::npos) << config.error().message;
  }
  auto missing_semicolon = parse_jaas_config("M required a=\"b\"");
  EXPECT_NE(missing_semicolon.error().message.find("';'"), std::string::npos);
  auto two = parse_jaas_config("M required; N required;");
  EXPECT_NE(two.error().message.find("exactly one"), std::string::npos);
}

// ---- SCRAM ------------------------------------------------------------------------------------------

struct Store {
  std::map<std::string, ScramCredential> users;
  ScramServer::CredentialLookup lookup() {
    return [this](const std::string& name) -> std::optional<ScramCredential> {
      auto it = users.find(name);
      if (it == users.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(Scram, Rfc7677Sha256TestVector) {
  auto salt = internal::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  ASSERT_TRUE(salt.has_value());
  auto credential = make_scram_credential(Mechanism::scram_sha_256, "pencil", 4096, *salt);
  ASSERT_TRUE(credential.ok()) << credential.error().message;
  Store store;
  store.users["user"] = *credential;

  ScramClient client(Mechanism::scram_sha_256, "user", "pencil");
  ScramServer server(Mechanism::scram_sha_256, store.lookup());
  Bytes client_first;
  {
    internal::ScopedNonceForTesting nonce("rOprNGfwEbeRWgbNEkqO");
    client_first = client.first_message();
  }
  EXPECT_EQ(text_of(client_first), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  Result<Bytes> server_first = Error{};
  {
    internal::ScopedNonceForTesting nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    server_first = server.step(client_first);
  }
  ASSERT_TRUE(server_first.ok()) << server_first.error().message;
  EXPECT_EQ(text_of(*server_first),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  auto client_final = client.final_message(*server_first);
  ASSERT_TRUE(client_final.ok()) << client_final.error().message;
  EXPECT_EQ(text_of(*client_final),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  auto server_final = server.step(*client_final);
  ASSERT_TRUE(server_final.ok()) << server_final.error().message;
  EXPECT_EQ(text_of(*server_final), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_TRUE(server.complete());
  EXPECT_EQ(server.username(), "user");
  EXPECT_TRUE(client.verify_server_final(*server_final).ok());
  // A step after completion is refused.
  EXPECT_FALSE(server.step(*client_final).ok());
}

// No RFC vector exists for SHA-512: these messages come from kafka-python 2.0.2's own ScramClient
// (kafka/scram.py) with its nonce fixed, so the server is checked against a real client's bytes.
TEST(Scram, Sha512VectorFromKafkaPython) {
  const std::string client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
  const std::string server_first_text =
      "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=a2Fma2EtcHl0aG9uLXNhbHQtMDEyMzQ1Njc4OQ==,i=8192";
  const std::string client_final_text =
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
      "p=0sYsN1ue34maR/09Bh+cTZtji4O32nbmkvMZJDlEu4Y8VcmnHAmBQaiywverGN/BF9+FxYotFlzUjGKrgyDIgg==";
  const std::string server_final_text =
      "v=p+A1W4Gk0oyN9waSg2fh7MbP8a+O8qTJhITWcT5z5OdbYgOzohIVK0j/yy9S/TzUxAdy/P8Pax2uALVjqewbAQ==";
  Store store;
  store.users["alice"] =
      *make_scram_credential(Mechanism::scram_sha_512, "alice-secret", 8192, bytes_of("kafka-python-salt-0123456789"));

  ScramServer server(Mechanism::scram_sha_512, store.lookup());
  Result<Bytes> server_first = Error{};
  {
    internal::ScopedNonceForTesting nonce("3rfcNHYJY1ZVvWVs7j");
    server_first = server.step(bytes_of("n,,n=alice,r=" + client_nonce));
  }
  ASSERT_TRUE(server_first.ok()) << server_first.error().message;
  EXPECT_EQ(text_of(*server_first), server_first_text);
  auto server_final = server.step(bytes_of(client_final_text));
  ASSERT_TRUE(server_final.ok()) << server_final.error().message;
  EXPECT_EQ(text_of(*server_final), server_final_text);

  // Our client produces the same bytes as kafka-python's.
  ScramClient client(Mechanism::scram_sha_512, "alice", "alice-secret");
  {
    internal::ScopedNonceForTesting nonce(client_nonce);
    EXPECT_EQ(text_of(client.first_message()), "n,,n=alice,r=" + client_nonce);
  }
  auto client_final = client.final_message(bytes_of(server_first_text));
  ASSERT_TRUE(client_final.ok()) << client_final.error().message;
  EXPECT_EQ(text_of(*client_final), client_final_text);
  EXPECT_TRUE(client.verify_server_final(bytes_of(server_final_text)).ok());
}

// Run a shell command, return its stdout (nullopt if it failed).
std::optional<std::string> run(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buffer[512];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  if (pclose(pipe) != 0) return std::nullopt;
  return out;
}

// Live interop with a real client: kafka-python's ScramClient answers our server's random
// server-first (fresh salt and server nonce each run); the server must accept its proof and send the
// signature kafka-python expects.
TEST(Scram, LiveKafkaPythonClientAgainstOurServer) {
  if (!run("/usr/bin/python3 -c 'import kafka.scram' 2>/dev/null"))
    GTEST_SKIP() << "kafka-python (python3-kafka) is not installed";
  for (Mechanism m : {Mechanism::scram_sha_256, Mechanism::scram_sha_512}) {
    Store store;
    store.users["alice"] = *make_scram_credential(m, "p@ss word", 4096);
    ScramServer server(m, store.lookup());
    const std::string client_nonce = "kp" + internal::random_nonce();
    auto server_first = server.step(bytes_of("n,,n=alice,r=" + client_nonce));
    ASSERT_TRUE(server_first.ok()) << server_first.error().message;
    const std::string script =
        "import sys, base64\n"
        "from kafka.scram import ScramClient\n"
        "c = ScramClient('alice', 'p@ss word', sys.argv[1])\n"
        "c.nonce = sys.argv[2]\n"
        "c.first_message()\n"
        "c.process_server_first_message(sys.argv[3])\n"
        "print(c.final_message())\n"
        "print('v=' + base64.b64encode(c.server_signature).decode())\n";
    auto output = run("/usr/bin/python3 -c \"" + script + "\" '" + std::string(name_of(m)) + "' '" + client_nonce +
                      "' '" + text_of(*server_first) + "'");
    ASSERT_TRUE(output.has_value());
    const std::string client_final = output->substr(0, output->find('\n'));
    const std::string expected_server_final = output->substr(client_final.size() + 1, output->rfind('\n') - client_final.size() - 1);
    auto server_final = server.step(bytes_of(client_final));
    ASSERT_TRUE(server_final.ok()) << server_final.error().message << " for " << client_final;
    EXPECT_EQ(text_of(*server_final), expected_server_final);
    EXPECT_EQ(server.username(), "alice");
  }
}

// A SCRAM client written here from RFC 5802 with OpenSSL directly (not through the library), so
// the server can be fed what ScramClient never sends: an "n,a=<user>," header, or librdkafka's
// client-final nonce. Returns the client-final message and the server-final it expects.
struct HandRolledFinal {
  std::string client_final;
  std::string expected_server_final;
};
HandRolledFinal hand_rolled_final(Mechanism m, const std::string& password, const std::string& header,
                                  const std::string& bare, const std::string& server_first,
                                  const std::string& nonce_to_send) {
  const EVP_MD* md = m == Mechanism::scram_sha_256 ? EVP_sha256() : EVP_sha512();
  auto mac = [md](const Bytes& key, std::string_view data) {
    Bytes out(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out.data(), &n);
    out.resize(n);
    return out;
  };
  const auto s_at = server_first.find(",s="), i_at = server_first.find(",i=");
  const Bytes salt = internal::base64_decode(server_first.substr(s_at + 3, i_at - s_at - 3)).value_or(Bytes{});
  const int iterations = std::stoi(server_first.substr(i_at + 3));
  Bytes salted(static_cast<std::size_t>(EVP_MD_get_size(md)));
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                    iterations, md, static_cast<int>(salted.size()), salted.data());
  const std::string without_proof = "c=" + internal::base64_encode(bytes_of(header)) + ",r=" + nonce_to_send;
  const std::string auth_message = bare + "," + server_first + "," + without_proof;
  Bytes client_key = mac(salted, "Client Key");
  Bytes stored_key(static_cast<std::size_t>(EVP_MD_get_size(md)));
  unsigned int n = 0;
  EVP_Digest(client_key.data(), client_key.size(), stored_key.data(), &n, md, nullptr);
  Bytes proof = mac(stored_key, auth_message);
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] ^= client_key[i];
  return {without_proof + ",p=" + internal::base64_encode(proof),
          "v=" + internal::base64_encode(mac(mac(salted, "Server Key"), auth_message))};
}

TEST(Scram, AuthorizationIdHeaderWithHandRolledClient) {
  for (Mechanism m : {Mechanism::scram_sha_256, Mechanism::scram_sha_512}) {
    Store store;
    store.users["bob=1"] = *make_scram_credential(m, "bob-pw", 4096);
    ScramServer server(m, store.lookup());
    const std::string header = "n,a=bob=3D1,";
    const std::string bare = "n=bob=3D1,r=handrolled";
    auto server_first = server.step(bytes_of(header + bare));
    ASSERT_TRUE(server_first.ok()) << server_first.error().message;
    const std::string sf = text_of(*server_first);
    const std::string nonce = sf.substr(2, sf.find(",s=") - 2);
    auto final_message = hand_rolled_final(m, "bob-pw", header, bare, sf, nonce);
    auto server_final = server.step(bytes_of(final_message.client_final));
    ASSERT_TRUE(server_final.ok()) << server_final.error().message;
    EXPECT_EQ(text_of(*server_final), final_message.expected_server_final);
    EXPECT_EQ(server.username(), "bob=1");
  }
}

// librdkafka (rdkafka_sasl_scram.c) sends "r=" + its own nonce + the whole combined nonce in the
// client-final; Kafka's ScramSaslServer accepts any nonce that ends with the combined one.
TEST(Scram, LibrdkafkaClientFinalNonceIsAccepted) {
  Store store;
  store.users["alice"] = *make_scram_credential(Mechanism::scram_sha_256, "alice-secret", 4096);
  ScramServer server(Mechanism::scram_sha_256, store.lookup());
  const std::string client_nonce = "rdkafkaNonce0123";
  const std::string bare = "n=alice,r=" + client_nonce;
  auto server_first = server.step(bytes_of("n,," + bare));
  ASSERT_TRUE(server_first.ok());
  const std::string sf = text_of(*server_first);
  const std::string combined = sf.substr(2, sf.find(",s=") - 2);
  auto final_message = hand_rolled_final(Mechanism::scram_sha_256, "alice-secret", "n,,", bare, sf,
                                         client_nonce + combined);
  auto server_final = server.step(bytes_of(final_message.client_final));
  ASSERT_TRUE(server_final.ok()) << server_final.error().message;
  EXPECT_EQ(text_of(*server_final), final_message.expected_server_final);
}

// One full login; returns the server's error (or nullopt on success).
std::optional<Error> login(Mechanism mechanism, Store& store, const std::string& user, const std::string& password) {
  ScramClient client(mechanism, user, password);
  ScramServer server(mechanism, store.lookup());
  auto server_first = server.step(client.first_message());
  if (!server_first.ok()) return server_first.error();
  auto client_final = client.final_message(*server_first);
  if (!client_final.ok()) return client_final.error();
  auto server_final = server.step(*client_final);
  if (!server_final.ok()) return server_final.error();
  EXPECT_TRUE(server.complete());
  EXPECT_EQ(server.username(), user);
  auto verified = client.verify_server_final(*server_final);
  if (!verified.ok()) return verified.error();
  return std::nullopt;
}

class ScramBoth : public ::testing::TestWithParam<Mechanism> {};
INSTANTIATE_TEST_SUITE_P(Mechanisms, ScramBoth, ::testing::Values(Mechanism::scram_sha_256, Mechanism::scram_sha_512),
                         [](const auto& info) { return info.param == Mechanism::scram_sha_256 ? "Sha256" : "Sha512"; });

TEST_P(ScramBoth, RoundTripWrongPasswordUnknownUser) {
  const Mechanism m = GetParam();
  Store store;
  auto credential = make_scram_credential(m, "alice-secret", 8192);
  ASSERT_TRUE(credential.ok()) << credential.error().message;
  EXPECT_EQ(credential->stored_key.size(), internal::digest_size(m));
  EXPECT_EQ(credential->iterations, 8192);
  EXPECT_FALSE(credential->salt.empty());
  store.users["alice"] = *credential;

  EXPECT_EQ(login(m, store, "alice", "alice-secret"), std::nullopt);

  auto wrong = login(m, store, "alice", "alice-secreT");
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->kind, ErrorKind::unauthenticated);
  EXPECT_EQ(wrong->message, internal::kInvalidCredentials);

  auto unknown = login(m, store, "mallory", "alice-secret");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->kind, ErrorKind::unauthenticated);
  EXPECT_EQ(unknown->message, wrong->message);

  // A credential made for the other mechanism does not log in with this one.
  Mechanism other = m == Mechanism::scram_sha_256 ? Mechanism::scram_sha_512 : Mechanism::scram_sha_256;
  ScramClient client(other, "alice", "alice-secret");
  ScramServer server(m, store.lookup());
  auto first = server.step(client.first_message());
  ASSERT_TRUE(first.ok());
  auto final_message = client.final_message(*first);
  ASSERT_TRUE(final_message.ok());
  EXPECT_FALSE(server.step(*final_message).ok());
}

TEST_P(ScramBoth, UnknownUserLooksLikeAKnownOne) {
  Store store;
  ScramServer a(GetParam(), store.lookup()), b(GetParam(), store.lookup());
  ScramClient client(GetParam(), "ghost", "pw");
  Bytes first = client.first_message();
  auto first_a = a.step(first);
  auto first_b = b.step(first);
  ASSERT_TRUE(first_a.ok());
  ASSERT_TRUE(first_b.ok());
  // Same salt and a plausible iteration count on every probe.
  auto salt_of = [](const Bytes& m) {
    std::string s = text_of(m);
    auto start = s.find(",s=");
    return s.substr(start, s.find(",i=") - start);
  };
  EXPECT_EQ(salt_of(*first_a), salt_of(*first_b));
  EXPECT_NE(text_of(*first_a).find(",i=4096"), std::string::npos);
}

TEST_P(ScramBoth, EscapedUsernames) {
  const Mechanism m = GetParam();
  Store store;
  store.users["a,b=c"] = *make_scram_credential(m, "pw", 4096);
  ScramClient client(m, "a,b=c", "pw");
  Bytes first = client.first_message();
  EXPECT_EQ(text_of(first).substr(0, 16), "n,,n=a=2Cb=3Dc,r");
  EXPECT_EQ(login(m, store, "a,b=c", "pw"), std::nullopt);

  // "a=2Cb" on the wire is the user "a,b".
  store.users["a,b"] = *make_scram_credential(m, "pw2", 4096);
  ScramServer server(m, store.lookup());
  ASSERT_TRUE(server.step(bytes_of("n,,n=a=2Cb,r=abcdef")).ok());
  EXPECT_EQ(server.username(), "a,b");

  for (const char* bad : {"n,,n=a=2cb,r=abc", "n,,n=a=b,r=abc", "n,,n=a=,r=abc", "n,,n==3,r=abc"}) {
    ScramServer s(m, store.lookup());
    auto result = s.step(bytes_of(bad));
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.error().kind, ErrorKind::invalid_argument) << bad;
  }
}

TEST(Scram, AuthorizationIdAndChannelBinding) {
  const Mechanism m = Mechanism::scram_sha_256;
  Store store;
  store.users["alice"] = *make_scram_credential(m, "pw", 4096);

  // "n,a=alice," is accepted when it names the user; the client-final must then bind that header.
  ScramServer server(m, store.lookup());
  auto first = server.step(bytes_of("n,a=alice,n=alice,r=clientnonce"));
  ASSERT_TRUE(first.ok()) << first.error().message;

  ScramServer other(m, store.lookup());
  auto mismatch = other.step(bytes_of("n,a=bob,n=alice,r=clientnonce"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().kind, ErrorKind::unauthenticated);

  for (const char* header : {"y,,n=alice,r=abc", "p=tls-unique,,n=alice,r=abc"}) {
    ScramServer s(m, store.lookup());
    auto refused = s.step(bytes_of(header));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, ErrorKind::unsupported);
  }
  ScramServer token(m, store.lookup());
  auto tokenauth = token.step(bytes_of("n,,n=alice,r=abc,tokenauth=true"));
  ASSERT_FALSE(tokenauth.ok());
  EXPECT_EQ(tokenauth.error().kind, ErrorKind::unsupported);
  ScramServer ignored(m, store.lookup());
  EXPECT_TRUE(ignored.step(bytes_of("n,,n=alice,r=abc,someext=1")).ok());  // Kafka ignores unknown extensions
  ScramServer mandatory(m, store.lookup());
  EXPECT_FALSE(mandatory.step(bytes_of("n,,m=x,n=alice,r=abc")).ok());
}

// A server after client-first, the client that sent it, and the valid client-final.
struct Exchange {
  Store store;
  ScramClient client{Mechanism::scram_sha_256, "alice", "alice-secret"};
  ScramServer server{Mechanism::scram_sha_256, nullptr};
  Bytes client_first, server_first, client_final;

  Exchange() {
    store.users["alice"] = *make_scram_credential(Mechanism::scram_sha_256, "alice-secret", 4096);
    server = ScramServer(Mechanism::scram_sha_256, store.lookup());
    client_first = client.first_message();
    server_first = *server.step(client_first);
    client_final = *client.final_message(server_first);
  }
};

TEST(Scram, TamperedFinalMessagesFail) {
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  {
    Exchange e;
    // The nonce's last character changed: it no longer ends with the server's nonce.
    std::string tampered = text_of(e.client_final);
    const auto nonce_end = tampered.find(",p=") - 1;
    tampered[nonce_end] = tampered[nonce_end] == 'Q' ? 'R' : 'Q';
    auto result = e.server.step(bytes_of(tampered));
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().message.find("nonce"), std::string::npos) << result.error().message;
    EXPECT_FALSE(e.server.complete());
    EXPECT_FALSE(e.server.step(e.client_final).ok());  // a failed exchange stays failed
  }
  {
    Exchange e;
    // c= claims an authorization id the client-first did not carry.
    std::string tampered = replace(text_of(e.client_final), "c=biws", "c=" + internal::base64_encode(bytes_of("n,a=alice,")));
    auto result = e.server.step(bytes_of(tampered));
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().message.find("channel binding"), std::string::npos);
  }
  {
    Exchange e;
    std::string tampered = replace(text_of(e.client_final), "c=biws", "c=eSws");  // "y,,"
    EXPECT_FALSE(e.server.step(bytes_of(tampered)).ok());
  }
  {
    Exchange e;
    // Flip one proof bit (re-encoded so the base64 stays valid).
    std::string text = text_of(e.client_final);
    auto p = text.find(",p=");
    auto proof = *internal::base64_decode(text.substr(p + 3));
    proof[5] ^= 1;
    auto result = e.server.step(bytes_of(text.substr(0, p + 3) + internal::base64_encode(proof)));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().kind, ErrorKind::unauthenticated);
    EXPECT_EQ(result.error().message, internal::kInvalidCredentials);
  }
  {
    // The server's signature is checked by the client.
    Exchange e;
    auto server_final = e.server.step(e.client_final);
    ASSERT_TRUE(server_final.ok());
    std::string text = text_of(*server_final);
    auto signature = *internal::base64_decode(text.substr(2));
    signature[0] ^= 0x80;
    auto verified = e.client.verify_server_final(bytes_of("v=" + internal::base64_encode(signature)));
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(verified.error().kind, ErrorKind::unauthenticated);
    auto refused = e.client.verify_server_final(bytes_of("e=invalid-proof"));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, ErrorKind::unauthenticated);
    EXPECT_NE(refused.error().message.find("invalid-proof"), std::string::npos);
    EXPECT_TRUE(e.client.verify_server_final(*server_final).ok());
  }
}

TEST(Scram, ClientChecksServerFirst) {
  ScramClient fresh(Mechanism::scram_sha_256, "alice", "pw");
  EXPECT_FALSE(fresh.final_message(bytes_of("r=abc,s=QUJD,i=4096")).ok());  // no first_message yet

  ScramClient client(Mechanism::scram_sha_256, "alice", "pw");
  std::string first = text_of(client.first_message());
  std::string nonce = first.substr(first.find(",r=") + 3);
  const std::string salt = internal::base64_encode(bytes_of("salty"));
  EXPECT_TRUE(client.final_message(bytes_of("r=" + nonce + "S,s=" + salt + ",i=4096")).ok());
  struct Case {
    std::string message;
    std::string words;
  };
  const Case cases[] = {
      {"r=other" + nonce + ",s=" + salt + ",i=4096", "nonce"},
      {"r=" + nonce + ",s=" + salt + ",i=4096", "nonce"},  // not extended
      {"r=" + nonce + "S,s=" + salt + ",i=4095", "minimum"},
      {"r=" + nonce + "S,s=" + salt + ",i=999999999", "maximum"},
      {"r=" + nonce + "S,s=" + salt + ",i=-4096", "iteration"},
      {"r=" + nonce + "S,s=,i=4096", "salt"},
      {"r=" + nonce + "S,s=" + salt, "expected"},
      {"e=other-error", "other-error"},
  };
  for (const auto& c : cases) {
    auto result = client.final_message(bytes_of(c.message));
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_NE(result.error().message.find(c.words), std::string::npos) << result.error().message;
  }
}

TEST(Scram, MalformedMessagesNeverCrash) {
  Exchange reference;
  const std::string first = text_of(reference.client_first);
  const std::string final_message = text_of(reference.client_final);
  const std::size_t nonce_start = first.find(",r=") + 3;
  const char replacements[] = {'\0', ',', '=', 'y', 'A', '\x7f', '\xff', '/'};

  // client-first: every prefix and every one-byte change.
  for (std::size_t n = 0; n < first.size(); ++n) {
    Exchange e;
    ScramServer server(Mechanism::scram_sha_256, e.store.lookup());
    auto result = server.step(bytes_of(first.substr(0, n)));
    if (n <= nonce_start) {
      EXPECT_FALSE(result.ok()) << n;  // nothing valid before the nonce starts
    }
  }
  int first_failures = 0;
  for (std::size_t i = 0; i < first.size(); ++i)
    for (char r : replacements) {
      if (first[i] == r) continue;
      std::string mutated = first;
      mutated[i] = r;
      Exchange e;
      ScramServer server(Mechanism::scram_sha_256, e.store.lookup());
      auto result = server.step(bytes_of(mutated));
      if (!result.ok()) {
        ++first_failures;
        EXPECT_FALSE(result.error().message.empty());
      }
    }
  EXPECT_GT(first_failures, 0);

  // client-final: every prefix and every one-byte change is refused.
  for (std::size_t n = 0; n < final_message.size(); ++n) {
    Exchange e;
    auto result = e.server.step(bytes_of(final_message.substr(0, n)));
    EXPECT_FALSE(result.ok()) << n;
    EXPECT_FALSE(e.server.complete());
  }
  for (std::size_t i = 0; i < final_message.size(); ++i)
    for (char r : replacements) {
      if (final_message[i] == r) continue;
      std::string mutated = final_message;
      mutated[i] = r;
      Exchange e;
      auto result = e.server.step(bytes_of(mutated));
      EXPECT_FALSE(result.ok()) << i << " " << int(r);
      EXPECT_FALSE(e.server.complete());
    }
  // And the client facing broken server messages.
  const std::string server_first = text_of(reference.server_first);
  for (std::size_t i = 0; i < server_first.size(); ++i)
    for (char r : replacements) {
      std::string mutated = server_first;
      mutated[i] = r;
      ScramClient client(Mechanism::scram_sha_256, "alice", "alice-secret");
      (void)client.first_message();
      EXPECT_FALSE(client.final_message(bytes_of(mutated)).ok());  // its nonce never extends this one
      (void)client.verify_server_final(bytes_of(mutated));
    }
  ScramClient client(Mechanism::scram_sha_256, "alice", "pw");
  EXPECT_FALSE(client.verify_server_final(Bytes{}).ok());
}

TEST(Scram, CredentialDerivation) {
  // Same password, salt and iterations give the same credential; the salted-password path agrees.
  Bytes salt = bytes_of("0123456789abcdef");
  auto a = make_scram_credential(Mechanism::scram_sha_512, "pw", 4096, salt);
  auto b = make_scram_credential(Mechanism::scram_sha_512, "pw", 4096, salt);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, *b);
  auto salted = scram_salted_password(Mechanism::scram_sha_512, "pw", salt, 4096);
  ASSERT_TRUE(salted.ok());
  EXPECT_EQ(salted->size(), 64u);
  EXPECT_EQ(*scram_credential_from_salted_password(Mechanism::scram_sha_512, *salted, salt, 4096), *a);
  // Fresh salts differ.
  EXPECT_NE(make_scram_credential(Mechanism::scram_sha_256, "pw", 4096)->salt,
            make_scram_credential(Mechanism::scram_sha_256, "pw", 4096)->salt);
  EXPECT_FALSE(make_scram_credential(Mechanism::scram_sha_256, "pw", 4095).ok());
  EXPECT_FALSE(make_scram_credential(Mechanism::scram_sha_256, "pw", 16385).ok());
  EXPECT_FALSE(make_scram_credential(Mechanism::plain, "pw", 4096).ok());
  EXPECT_FALSE(scram_credential_from_salted_password(Mechanism::scram_sha_256, *salted, salt, 4096).ok());
  EXPECT_FALSE(scram_salted_password(Mechanism::scram_sha_256, "pw", Bytes{}, 4096).ok());
}

// The broker runs logins on several threads at once against one store; each exchange has its own
// ScramServer, and the shared pieces (decoy secret, nonce source) must not interfere.
TEST(Scram, ConcurrentLogins) {
  Store store;
  store.users["alice"] = *make_scram_credential(Mechanism::scram_sha_256, "alice-secret", 4096);
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const bool known = (i + t) % 2 == 0;
        auto error = login(Mechanism::scram_sha_256, store, known ? "alice" : "nobody" + std::to_string(t), "alice-secret");
        (error ? refused : ok)++;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(refused.load(), 20);
}

// ---- durable credentials --------------------------------------------------------------------------

TEST(ScramStore, RoundTripNeverHoldsPasswords) {
  ScramCredentials credentials;
  credentials["alice"][Mechanism::scram_sha_256] = *make_scram_credential(Mechanism::scram_sha_256, "alice-secret", 4096);
  credentials["alice"][Mechanism::scram_sha_512] = *make_scram_credential(Mechanism::scram_sha_512, "alice-secret", 8192);
  credentials["b\"ob,=x"][Mechanism::scram_sha_512] = *make_scram_credential(Mechanism::scram_sha_512, "bob-pw", 16384);
  std::string text = encode_scram_credentials(credentials);
  EXPECT_EQ(text.find("alice-secret"), std::string::npos);
  EXPECT_NE(text.find("\"version\": 1"), std::string::npos);
  auto decoded = decode_scram_credentials(text);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, credentials);
  auto empty = decode_scram_credentials(encode_scram_credentials({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ScramStore, CorruptDocumentsNameTheDamage) {
  ScramCredentials credentials;
  credentials["alice"][Mechanism::scram_sha_256] = *make_scram_credential(Mechanism::scram_sha_256, "pw", 4096);
  const std::string good = encode_scram_credentials(credentials);
  ASSERT_TRUE(decode_scram_credentials(good).ok());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::string& salt = internal::base64_encode(credentials["alice"][Mechanism::scram_sha_256].salt);
  struct Case {
    std::string text;
    std::string words;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"[]", "not a JSON object"},
      {good.substr(0, good.size() / 2), "not valid JSON"},
      {with("\"version\": 1", "\"version\": 2"), "version"},
      {with("\"version\": 1", "\"version\": \"1\""), "version"},
      {with("\"iterations\": 4096", "\"iterations\": 100"), "alice', SCRAM-SHA-256: \"iterations\""},
      {with("\"iterations\": 4096", "\"iterations\": 4096.5"), "\"iterations\""},
      {with("\"salt\": \"" + salt + "\"", "\"salt\": \"\""), "alice', SCRAM-SHA-256: \"salt\" is empty"},
      {with("\"salt\": \"" + salt + "\"", "\"salt\": \"***\""), "\"salt\" is not valid base64"},
      {with("\"salt\": \"" + salt + "\"", "\"salt\": 7"), "\"salt\""},
      {with("\"stored_key\": \"", "\"stored_key\": \"AAAA"), "\"stored_key\" is 35 bytes, expected 32"},
      {with("\"server_key\"", "\"server_kee\""), "server_kee"},
      {with("SCRAM-SHA-256", "SCRAM-SHA-1"), "unknown mechanism"},
      {with("SCRAM-SHA-256", "PLAIN"), "unknown mechanism"},
      {with("\"alice\"", "\"\""), "empty name"},
      {with("\"users\"", "\"people\""), "users"},
  };
  for (const auto& c : cases) {
    auto decoded = decode_scram_credentials(c.text);
    ASSERT_FALSE(decoded.ok()) << c.text;
    EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
    EXPECT_NE(decoded.error().message.find(c.words), std::string::npos) << decoded.error().message;
  }
}

// ---- --add-scram ----------------------------------------------------------------------------------------

TEST(ScramAddScram, KafkaExamples) {
  auto alice = parse_add_scram("SCRAM-SHA-256=[name=alice,password=alice-secret]");
  ASSERT_TRUE(alice.ok()) << alice.error().message;
  EXPECT_EQ(alice->mechanism, Mechanism::scram_sha_256);
  EXPECT_EQ(alice->username, "alice");
  EXPECT_EQ(alice->credential.iterations, 4096);
  Store alice_store{{{"alice", alice->credential}}};
  EXPECT_EQ(login(Mechanism::scram_sha_256, alice_store, "alice", "alice-secret"), std::nullopt);

  auto admin = parse_add_scram("  SCRAM-SHA-512=[name=scram-admin,iterations=8192,password=\"scram-user-secret\"] ");
  ASSERT_TRUE(admin.ok()) << admin.error().message;
  EXPECT_EQ(admin->mechanism, Mechanism::scram_sha_512);
  EXPECT_EQ(admin->username, "scram-admin");
  EXPECT_EQ(admin->credential.iterations, 8192);

  // Kafka's ScramParserTest vector: salt + saltedpassword give the same keys as the formatter.
  auto salted = parse_add_scram(
      "SCRAM-SHA-256=[name=alice,salt=\"MWx2NHBkbnc0ZndxN25vdGN4bTB5eTFrN3E=\","
      "saltedpassword=\"mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE=\"]");
  ASSERT_TRUE(salted.ok()) << salted.error().message;
  EXPECT_EQ(text_of(salted->credential.salt), "1lv4pdnw4fwq7notcxm0yy1k7q");
  auto expected = scram_credential_from_salted_password(
      Mechanism::scram_sha_256, *internal::base64_decode("mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE="),
      bytes_of("1lv4pdnw4fwq7notcxm0yy1k7q"), 4096);
  EXPECT_EQ(salted->credential, *expected);

  // A configured salt with a password is used as given.
  auto with_salt = parse_add_scram("SCRAM-SHA-512=[name=bob,password=my pass,salt=\"MWx2NHBkbnc0ZndxN25vdGN4bTB5eTFrN3E=\"]");
  ASSERT_TRUE(with_salt.ok()) << with_salt.error().message;
  EXPECT_EQ(with_salt->credential,
            *make_scram_credential(Mechanism::scram_sha_512, "my pass", 4096, bytes_of("1lv4pdnw4fwq7notcxm0yy1k7q")));

  // Java's split drops trailing empty pieces, so a trailing comma is accepted as Kafka does.
  EXPECT_TRUE(parse_add_scram("SCRAM-SHA-256=[name=alice,password=alice-secret,]").ok());

  // Quoted values may hold commas (and '=' and ']').
  auto quoted = parse_add_scram("SCRAM-SHA-256=[name=carol,password=\"a,b=c]\",iterations=4096]");
  ASSERT_TRUE(quoted.ok()) << quoted.error().message;
  Store store{{{"carol", quoted->credential}}};
  EXPECT_EQ(login(Mechanism::scram_sha_256, store, "carol", "a,b=c]"), std::nullopt);
}

TEST(ScramAddScram, ErrorsNeverEchoThePassword) {
  const std::string secret = "Sup3rS3cret";
  struct Case {
    std::string text;
    std::string words;
  };
  const Case cases[] = {
      {"SCRAM-SHA-256", "no '='"},
      {secret, "no '='"},
      {"SCRAM-SHA-1=[name=a,password=" + secret + "]", "not supported"},
      {"PLAIN=[name=a,password=" + secret + "]", "not supported"},
      {"SCRAM-SHA-256=name=a,password=" + secret, "start with ["},
      {"SCRAM-SHA-256=[name=a,password=" + secret, "end with ]"},
      {"SCRAM-SHA-256=[password=" + secret + "]", "'name'"},
      {"SCRAM-SHA-256=[name=a]", "one of 'password' or 'saltedpassword'"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",unknown=x,unknown2=y]", "unknown, unknown2"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",iterations=4095]", ">= 4096"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",iterations=16385]", "<= 16384"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",iterations=lots]", "iterations"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",salt=***]", "salt"},
      {"SCRAM-SHA-256=[name=a,saltedpassword=" + secret + "]", "'salt' with 'saltedpassword'"},
      {"SCRAM-SHA-256=[name=a,salt=QUJD,saltedpassword=" + secret + "!]", "decode the given saltedpassword"},
      {"SCRAM-SHA-256=[name=a,salt=QUJD,saltedpassword=QUJD]", "bytes"},
      {"SCRAM-SHA-256=[name=a,password=a," + secret + "]", "no '='"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",password=" + secret + "]", "more than once"},
      {"SCRAM-SHA-256=[name=a,password=]", "empty"},
      {"SCRAM-SHA-256=[name=,password=" + secret + "]", "empty"},
      {"SCRAM-SHA-256=[name=a,password=" + secret + ",salt=QUJD,saltedpassword=QUJD]", "not both"},
  };
  for (const auto& c : cases) {
    auto spec = parse_add_scram(c.text);
    ASSERT_FALSE(spec.ok()) << c.text;
    EXPECT_EQ(spec.error().kind, ErrorKind::invalid_argument) << c.text;
    EXPECT_NE(spec.error().message.find(c.words), std::string::npos) << spec.error().message;
    EXPECT_EQ(spec.error().message.find(secret), std::string::npos) << spec.error().message;
  }
}

}  // namespace
}  // namespace bulwark::security::sasl
