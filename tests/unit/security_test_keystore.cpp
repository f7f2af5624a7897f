// Keystore codecs: round trips in every format, wrong passwords, truncated and mutated input.
#include <openssl/pem.h>

#include <functional>
#include <random>

#include "security/keystore.h"
#include "security_test_keystore_fixtures.h"

namespace bulwark::keystore {
namespace {

using testing::expect_entry_matches;
using testing::keystore_with;
using testing::LeafKind;
using testing::pki;
using testing::TempDir;

constexpr std::string_view kPassword = "changeit-123";

struct FormatCase {
  std::string name;
  std::function<Result<Bytes>(const KeyStore&)> encode;
  std::function<Result<KeyStore>(ByteView, std::string_view password)> decode;
};

std::vector<FormatCase> binary_formats() {
  return {
      {"JKS", [](const KeyStore& s) { return encode_jks(s, kPassword); },
       [](ByteView d, std::string_view p) { return decode_jks(d, p); }},
      {"PKCS12-modern", [](const KeyStore& s) { return encode_pkcs12(s, kPassword, Pkcs12Style::modern); },
       [](ByteView d, std::string_view p) { return decode_pkcs12(d, p); }},
      {"PKCS12-legacy", [](const KeyStore& s) { return encode_pkcs12(s, kPassword, Pkcs12Style::legacy); },
       [](ByteView d, std::string_view p) { return decode_pkcs12(d, p); }},
  };
}

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// Any decoded store must be internally consistent, whatever bytes it came from.
void expect_consistent(const KeyStore& store) {
  for (const auto& entry : store.keys) {
    ASSERT_TRUE(entry.key);
    ASSERT_FALSE(entry.chain.empty());
    for (const auto& cert : entry.chain) ASSERT_TRUE(cert);
  }
  for (const auto& entry : store.trusted) ASSERT_TRUE(entry.cert);
}

TEST(KeystoreFormat, ParsesKafkaTypeNames) {
  EXPECT_EQ(*parse_format("JKS"), Format::jks);
  EXPECT_EQ(*parse_format("pkcs12"), Format::pkcs12);
  EXPECT_EQ(*parse_format("Pem"), Format::pem);
  auto bad = parse_format("JCEKS2");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("JCEKS2"), std::string::npos);
}

TEST(KeystoreFormat, DetectsEncodedStores) {
  const KeyStore store = keystore_with(LeafKind::ec);
  auto jks = encode_jks(store, kPassword);
  auto p12 = encode_pkcs12(store, kPassword);
  auto pem = encode_pem(store);
  ASSERT_TRUE(jks.ok() && p12.ok() && pem.ok());
  EXPECT_EQ(detect_format(*jks), Format::jks);
  EXPECT_EQ(detect_format(*p12), Format::pkcs12);
  EXPECT_EQ(detect_format(as_bytes(*pem)), Format::pem);
  EXPECT_EQ(detect_format(as_bytes("hello world")), std::nullopt);
  EXPECT_EQ(detect_format(ByteView{}), std::nullopt);
}

TEST(KeystoreRoundTrip, BinaryFormatsKeepKeyChainAndTrustedCerts) {
  for (const auto& format : binary_formats()) {
    for (LeafKind kind : {LeafKind::rsa, LeafKind::ec}) {
      SCOPED_TRACE(format.name + (kind == LeafKind::rsa ? " RSA" : " EC"));
      KeyStore store = keystore_with(kind);
      store.trusted.push_back(testing::trusted_root("ca-root"));
      auto encoded = format.encode(store);
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      auto decoded = format.decode(*encoded, kPassword);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      ASSERT_EQ(decoded->keys.size(), 1u);
      EXPECT_EQ(decoded->keys[0].alias, "broker");
      expect_entry_matches(decoded->keys[0], kind);
      ASSERT_EQ(decoded->trusted.size(), 1u);
      EXPECT_EQ(decoded->trusted[0].alias, "ca-root");
      EXPECT_EQ(X509_cmp(decoded->trusted[0].cert.get(), pki().root.get()), 0);
    }
  }
}

TEST(KeystoreRoundTrip, SeveralEntriesKeepTheirAliases) {
  for (const auto& format : binary_formats()) {
    SCOPED_TRACE(format.name);
    KeyStore store;
    store.keys.push_back(testing::key_entry(LeafKind::rsa, "rsa-entry"));
    store.keys.push_back(testing::key_entry(LeafKind::ec, "ec-entry"));
    store.trusted.push_back(testing::trusted_root("root"));
    store.trusted.push_back(TrustedCertEntry{"inter", share(pki().inter.get())});
    auto encoded = format.encode(store);
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    auto decoded = format.decode(*encoded, kPassword);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    ASSERT_EQ(decoded->keys.size(), 2u);
    for (const auto& entry : decoded->keys) {
      ASSERT_TRUE(entry.alias == "rsa-entry" || entry.alias == "ec-entry") << entry.alias;
      expect_entry_matches(entry, entry.alias == "rsa-entry" ? LeafKind::rsa : LeafKind::ec);
    }
    ASSERT_EQ(decoded->trusted.size(), 2u);
  }
}

TEST(KeystoreRoundTrip, JksLowercasesAliasesAsJavaDoes) {
  KeyStore store;
  store.keys.push_back(testing::key_entry(LeafKind::ec, "Kafka-Broker"));
  auto encoded = encode_jks(store, kPassword);
  ASSERT_TRUE(encoded.ok());
  auto decoded = decode_jks(*encoded, kPassword);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->keys.at(0).alias, "kafka-broker");

  store.trusted.push_back(testing::trusted_root("KAFKA-broker"));
  auto clash = encode_jks(store, kPassword);
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.error().message.find("twice"), std::string::npos);
}

TEST(KeystoreRoundTrip, JksNonAsciiAliasSurvives) {
  KeyStore store;
  store.trusted.push_back(testing::trusted_root("café-€-\xF0\x9F\x94\x91"));  // 2-, 3-byte and a surrogate pair
  auto encoded = encode_jks(store, kPassword);
  ASSERT_TRUE(encoded.ok());
  auto decoded = decode_jks(*encoded, kPassword);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->trusted.at(0).alias, "café-€-\xF0\x9F\x94\x91");
}

TEST(KeystoreRoundTrip, JksSeparateKeyPassword) {
  auto encoded = encode_jks(keystore_with(LeafKind::rsa), kPassword, "key-secret-9");
  ASSERT_TRUE(encoded.ok());
  auto decoded = decode_jks(*encoded, kPassword, "key-secret-9");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_entry_matches(decoded->keys.at(0), LeafKind::rsa);

  auto wrong = decode_jks(*encoded, kPassword);  // key password defaults to the store password
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::unauthenticated);
  EXPECT_NE(wrong.error().message.find("key password is incorrect"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("broker"), std::string::npos) << "names the entry";
  EXPECT_EQ(wrong.error().message.find("key-secret-9"), std::string::npos) << "never shows a password";
}

TEST(KeystoreRoundTrip, JksTruststoreWithoutPasswordSkipsIntegrityCheck) {
  auto encoded = encode_jks(testing::truststore(), kPassword);
  ASSERT_TRUE(encoded.ok());
  auto decoded = decode_jks(*encoded, "");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->trusted.size(), 1u);
}

TEST(KeystoreRoundTrip, Pkcs12OrdersChainByIssuerNotByFileOrder) {
  KeyStore store;
  PrivateKeyEntry entry = testing::key_entry(LeafKind::ec);
  std::swap(entry.chain[1], entry.chain[2]);  // leaf, root, intermediate in the file
  store.keys.push_back(std::move(entry));
  auto encoded = encode_pkcs12(store, kPassword);
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto decoded = decode_pkcs12(*encoded, kPassword);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_entry_matches(decoded->keys.at(0), LeafKind::ec);
  EXPECT_TRUE(decoded->trusted.empty()) << "chain certificates are not trust anchors";
}

TEST(KeystoreRoundTrip, PemPlainAndEncrypted) {
  for (LeafKind kind : {LeafKind::rsa, LeafKind::ec}) {
    for (std::string_view key_password : {std::string_view(), std::string_view("pem-key-pass")}) {
      SCOPED_TRACE(std::string(kind == LeafKind::rsa ? "RSA" : "EC") + (key_password.empty() ? " plain" : " encrypted"));
      KeyStore store = keystore_with(kind);
      store.trusted.push_back(TrustedCertEntry{"other", share(pki().ec_leaf.get() == testing::leaf_of(kind)
                                                                  ? pki().rsa_leaf.get()
                                                                  : pki().ec_leaf.get())});
      auto text = encode_pem(store, key_password);
      ASSERT_TRUE(text.ok()) << text.error().message;
      EXPECT_NE(text->find(key_password.empty() ? "BEGIN PRIVATE KEY" : "BEGIN ENCRYPTED PRIVATE KEY"),
                std::string::npos);
      auto decoded = decode_pem(*text, key_password);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      ASSERT_EQ(decoded->keys.size(), 1u);
      expect_entry_matches(decoded->keys[0], kind);
      ASSERT_EQ(decoded->trusted.size(), 1u);
    }
  }
}

TEST(KeystoreRoundTrip, PemAnyOrderAndTraditionalKeys) {
  for (LeafKind kind : {LeafKind::rsa, LeafKind::ec}) {
    for (bool encrypt : {false, true}) {
      SCOPED_TRACE(std::string(kind == LeafKind::rsa ? "RSA" : "EC") + (encrypt ? " encrypted" : " plain"));
      BioPtr bio(BIO_new(BIO_s_mem()));
      static const char kPass[] = "trad-pass";
      ASSERT_EQ(PEM_write_bio_PrivateKey_traditional(bio.get(), testing::key_of(kind),
                                                     encrypt ? EVP_aes_128_cbc() : nullptr,
                                                     reinterpret_cast<const unsigned char*>(kPass),
                                                     encrypt ? static_cast<int>(sizeof kPass - 1) : 0, nullptr, nullptr),
                1);
      char* data = nullptr;
      const long len = BIO_get_mem_data(bio.get(), &data);
      const std::string key_pem(data, static_cast<std::size_t>(len));
      EXPECT_NE(key_pem.find(kind == LeafKind::rsa ? "BEGIN RSA PRIVATE KEY" : "BEGIN EC PRIVATE KEY"),
                std::string::npos);
      // Root first, key in the middle, leaf last.
      const std::string text = "comment line\n" + testing::pem_of(pki().root.get()) + key_pem +
                               testing::pem_of(pki().inter.get()) + testing::pem_of(testing::leaf_of(kind));
      auto decoded = decode_pem(text, encrypt ? kPass : "");
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      ASSERT_EQ(decoded->keys.size(), 1u);
      expect_entry_matches(decoded->keys[0], kind);
      EXPECT_TRUE(decoded->trusted.empty());
      if (encrypt) {
        auto missing = decode_pem(text, "");
        ASSERT_FALSE(missing.ok());
        EXPECT_NE(missing.error().message.find("no key password"), std::string::npos) << missing.error().message;
        auto wrong = decode_pem(text, "not-it");
        ASSERT_FALSE(wrong.ok());
        EXPECT_NE(wrong.error().message.find("key password is incorrect"), std::string::npos)
            << wrong.error().message;
      }
    }
  }
}

TEST(KeystoreErrors, PemEncryptedKeyNeedsRightPassword) {
  auto text = encode_pem(keystore_with(LeafKind::ec), "right-pass");
  ASSERT_TRUE(text.ok());
  auto missing = decode_pem(*text, "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::unauthenticated);
  EXPECT_NE(missing.error().message.find("encrypted and no key password"), std::string::npos);
  auto wrong = decode_pem(*text, "wrong-pass");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::unauthenticated);
  EXPECT_NE(wrong.error().message.find("key password is incorrect"), std::string::npos);
  EXPECT_EQ(wrong.error().message.find("wrong-pass"), std::string::npos);
}

TEST(KeystoreErrors, PemKeyWithoutCertificate) {
  auto text = encode_pem(keystore_with(LeafKind::ec));
  ASSERT_TRUE(text.ok());
  const std::string key_only = text->substr(0, text->find("-----END PRIVATE KEY-----") + 25);
  auto decoded = decode_pem(key_only);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("no matching certificate"), std::string::npos);
}

TEST(KeystoreErrors, WrongStorePassword) {
  for (const auto& format : binary_formats()) {
    SCOPED_TRACE(format.name);
    auto encoded = format.encode(keystore_with(LeafKind::ec));
    ASSERT_TRUE(encoded.ok());
    auto decoded = format.decode(*encoded, "wrong-password");
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().kind, ErrorKind::unauthenticated);
    EXPECT_NE(decoded.error().message.find("password is incorrect"), std::string::npos) << decoded.error().message;
    EXPECT_EQ(decoded.error().message.find("wrong-password"), std::string::npos);
    EXPECT_EQ(decoded.error().message.find(kPassword), std::string::npos);
  }
}

TEST(KeystoreErrors, EncodersRejectInconsistentEntries) {
  KeyStore mismatched;
  PrivateKeyEntry entry = testing::key_entry(LeafKind::ec);
  entry.key = share(pki().rsa_key.get());
  mismatched.keys.push_back(std::move(entry));
  KeyStore no_chain;
  no_chain.keys.push_back(testing::key_entry(LeafKind::ec));
  no_chain.keys[0].chain.clear();
  for (const KeyStore* store : {&mismatched, &no_chain}) {
    EXPECT_FALSE(encode_jks(*store, kPassword).ok());
    EXPECT_FALSE(encode_pkcs12(*store, kPassword).ok());
    EXPECT_FALSE(encode_pem(*store).ok());
  }
  EXPECT_FALSE(encode_jks(keystore_with(LeafKind::ec), "").ok()) << "JKS needs a store password";
}

TEST(KeystoreErrors, TruncatedBinaryStoresAlwaysFail) {
  for (const auto& format : binary_formats()) {
    SCOPED_TRACE(format.name);
    auto encoded = format.encode(keystore_with(LeafKind::ec));
    ASSERT_TRUE(encoded.ok());
    for (std::size_t len = 0; len < encoded->size(); ++len) {
      auto decoded = format.decode(ByteView(encoded->data(), len), kPassword);
      ASSERT_FALSE(decoded.ok()) << "a prefix of " << len << " bytes decoded";
      ASSERT_FALSE(decoded.error().message.empty());
    }
  }
}

TEST(KeystoreErrors, TruncatedPemNeverCrashes) {
  auto text = encode_pem(keystore_with(LeafKind::ec), "pem-pass");
  ASSERT_TRUE(text.ok());
  for (std::size_t len = 0; len < text->size(); ++len) {
    auto decoded = decode_pem(std::string_view(*text).substr(0, len), "pem-pass");
    if (decoded.ok()) expect_consistent(*decoded);
  }
}

TEST(KeystoreErrors, JksCorruptCountsAndLengthsAreRejected) {
  auto encoded = encode_jks(keystore_with(LeafKind::ec), kPassword);
  ASSERT_TRUE(encoded.ok());
  Bytes huge_count = *encoded;
  huge_count[8] = huge_count[9] = huge_count[10] = huge_count[11] = 0xff;  // 4 billion entries
  auto decoded = decode_jks(huge_count, kPassword);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
  // First entry: tag(4) alias-length(2) "broker"(6) date(8), then the key length.
  Bytes huge_key = *encoded;
  const std::size_t key_len_at = 12 + 4 + 2 + 6 + 8;
  for (std::size_t i = 0; i < 4; ++i) huge_key[key_len_at + i] = 0xff;
  decoded = decode_jks(huge_key, kPassword);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("truncated or corrupt"), std::string::npos) << decoded.error().message;
  Bytes jceks = *encoded;
  jceks[0] = jceks[1] = jceks[2] = jceks[3] = 0xCE;
  decoded = decode_jks(jceks, kPassword);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("JCEKS"), std::string::npos);
}

// A brief in-test fuzz loop; the libFuzzer targets go further. Every mutation must give an error value
// or a consistent store, never a crash (this binary also runs under ASan/UBSan).
void fuzz_mutations(const Bytes& original, int rounds, std::uint32_t seed,
                    const std::function<Result<KeyStore>(ByteView)>& decode) {
  std::mt19937 rng(seed);
  for (int round = 0; round < rounds; ++round) {
    Bytes mutated = original;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % mutated.size();
      switch (rng() % 4) {
        case 0: mutated[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
        case 1: mutated[at] = static_cast<std::uint8_t>(rng()); break;
        case 2: mutated[at] = (rng() % 2) ? 0xff : 0x00; break;
        case 3: mutated.resize(at + 1); break;
      }
    }
    auto decoded = decode(mutated);
    if (decoded.ok()) {
      expect_consistent(*decoded);
    } else {
      ASSERT_FALSE(decoded.error().message.empty());
    }
  }
}

TEST(KeystoreFuzz, JksMutationsNeverCrash) {
  KeyStore store = keystore_with(LeafKind::ec);
  store.trusted.push_back(testing::trusted_root());
  auto encoded = encode_jks(store, kPassword);
  ASSERT_TRUE(encoded.ok());
  fuzz_mutations(*encoded, 2000, 1234, [](ByteView d) { return decode_jks(d, kPassword); });
  // Without a store password the integrity check is skipped, so the mutations reach the entry parser.
  fuzz_mutations(*encoded, 2000, 5678, [](ByteView d) { return decode_jks(d, ""); });
}

TEST(KeystoreFuzz, Pkcs12MutationsNeverCrash) {
  KeyStore store = keystore_with(LeafKind::ec);
  store.trusted.push_back(testing::trusted_root());
  auto encoded = encode_pkcs12(store, kPassword);
  ASSERT_TRUE(encoded.ok());
  fuzz_mutations(*encoded, 1500, 4321, [](ByteView d) { return decode_pkcs12(d, kPassword); });
}

// Rewrites a JKS trailer for the mutated bytes, so mutations get past the integrity check and reach
// the entry parser and the key protector. Computed here independently of the library.
Bytes with_fresh_jks_digest(Bytes data, std::string_view password) {
  if (data.size() < 20) return data;
  data.resize(data.size() - 20);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_DigestInit_ex(md.get(), EVP_sha1(), nullptr);
  for (char c : password) {
    const unsigned char utf16be[2] = {0, static_cast<unsigned char>(c)};  // ASCII passwords only
    EVP_DigestUpdate(md.get(), utf16be, 2);
  }
  EVP_DigestUpdate(md.get(), "Mighty Aphrodite", 16);
  EVP_DigestUpdate(md.get(), data.data(), data.size());
  unsigned char digest[20];
  unsigned len = 0;
  EVP_DigestFinal_ex(md.get(), digest, &len);
  data.insert(data.end(), digest, digest + 20);
  return data;
}

TEST(KeystoreFuzz, JksDigestIsSha1OfPasswordWhitenerAndBody) {
  auto encoded = encode_jks(keystore_with(LeafKind::ec), kPassword);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(with_fresh_jks_digest(*encoded, kPassword), *encoded);
}

TEST(KeystoreFuzz, JksMutationsBehindAValidDigestNeverCrash) {
  KeyStore store = keystore_with(LeafKind::ec);
  store.trusted.push_back(testing::trusted_root());
  auto encoded = encode_jks(store, kPassword);
  ASSERT_TRUE(encoded.ok());
  fuzz_mutations(*encoded, 2000, 2468,
                 [](ByteView d) { return decode_jks(with_fresh_jks_digest(Bytes(d.begin(), d.end()), kPassword), kPassword); });
}

TEST(KeystoreFuzz, Pkcs12WithoutMacMutationsNeverCrash) {
  // No MAC, so mutations reach the bag parser, attributes and decryption.
  STACK_OF(X509)* cas = sk_X509_new_null();
  sk_X509_push(cas, pki().inter.get());
  sk_X509_push(cas, pki().root.get());
  const std::string password(kPassword);
  Pkcs12Ptr p12(PKCS12_create_ex(password.c_str(), "fuzz", testing::key_of(LeafKind::ec), testing::leaf_of(LeafKind::ec),
                                 cas, NID_aes_256_cbc, NID_aes_256_cbc, 1000, -1, 0, nullptr, nullptr));
  sk_X509_free(cas);
  ASSERT_TRUE(p12);
  unsigned char* der = nullptr;
  const int len = i2d_PKCS12(p12.get(), &der);
  ASSERT_GT(len, 0);
  const Bytes encoded(der, der + len);
  OPENSSL_free(der);
  auto decoded = decode_pkcs12(encoded, kPassword);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_entry_matches(decoded->keys.at(0), LeafKind::ec);
  fuzz_mutations(encoded, 1500, 1357, [](ByteView d) { return decode_pkcs12(d, kPassword); });
}

TEST(KeystoreFuzz, PemMutationsNeverCrash) {
  KeyStore store = keystore_with(LeafKind::ec);
  store.trusted.push_back(testing::trusted_root());
  auto text = encode_pem(store);
  ASSERT_TRUE(text.ok());
  fuzz_mutations(to_bytes(*text), 1000, 99, [](ByteView d) { return decode_pem(as_chars(d)); });
}

TEST(KeystoreLoad, DetectsFormatAndNamesTheFile) {
  TempDir dir;
  const KeyStore store = keystore_with(LeafKind::rsa);
  auto jks = encode_jks(store, kPassword);
  auto p12 = encode_pkcs12(store, kPassword);
  auto pem = encode_pem(store, "pem-key");
  ASSERT_TRUE(jks.ok() && p12.ok() && pem.ok());
  testing::write_bytes(dir / "k.jks", as_chars(*jks));
  testing::write_bytes(dir / "k.p12", as_chars(*p12));
  testing::write_bytes(dir / "k.pem", *pem);

  for (const char* name : {"k.jks", "k.p12"}) {
    auto loaded = load(dir / name, std::nullopt, kPassword);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    expect_entry_matches(loaded->keys.at(0), LeafKind::rsa);
    auto wrong = load(dir / name, std::nullopt, "nope-nope");
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.error().message.find((dir / name).string()), std::string::npos) << wrong.error().message;
    EXPECT_NE(wrong.error().message.find("password is incorrect"), std::string::npos);
  }
  auto loaded_pem = load(dir / "k.pem", Format::pem, "", "pem-key");
  ASSERT_TRUE(loaded_pem.ok()) << loaded_pem.error().message;
  expect_entry_matches(loaded_pem->keys.at(0), LeafKind::rsa);
  auto pem_no_pass = load(dir / "k.pem", std::nullopt, "");
  ASSERT_FALSE(pem_no_pass.ok());
  EXPECT_NE(pem_no_pass.error().message.find("k.pem"), std::string::npos);

  // As Java's keystore.type.compat: a JKS file declared PKCS12 (and the reverse) still loads, because
  // keytool 17 writes PKCS12 into files named *.jks unless told otherwise.
  for (auto [name, declared] : {std::pair{"k.jks", Format::pkcs12}, std::pair{"k.p12", Format::jks}}) {
    auto swapped = load(dir / name, declared, kPassword);
    ASSERT_TRUE(swapped.ok()) << swapped.error().message;
    expect_entry_matches(swapped->keys.at(0), LeafKind::rsa);
  }
  auto binary_as_pem = load(dir / "k.jks", Format::pem, kPassword);
  ASSERT_FALSE(binary_as_pem.ok());
  EXPECT_NE(binary_as_pem.error().message.find("k.jks"), std::string::npos);

  testing::write_bytes(dir / "empty.jks", "");
  auto empty = load(dir / "empty.jks", std::nullopt, kPassword);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("is empty"), std::string::npos);
  EXPECT_NE(empty.error().message.find("empty.jks"), std::string::npos);

  testing::write_bytes(dir / "text.txt", "just some text\n");
  auto text = load(dir / "text.txt", std::nullopt, kPassword);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.error().message.find("not a JKS, PKCS12 or PEM keystore"), std::string::npos);

  testing::write_bytes(dir / "cut.jks", as_chars(ByteView(jks->data(), jks->size() / 2)));
  auto cut = load(dir / "cut.jks", std::nullopt, kPassword);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("truncated"), std::string::npos) << cut.error().message;

  auto missing = load(dir / "missing.jks", std::nullopt, kPassword);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing.jks"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::keystore
