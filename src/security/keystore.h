// Keystores and truststores as Kafka and Java use them: JKS, PKCS12 (keytool 17's PBES2 form and the
// legacy 3DES/RC2 form) and PEM (KIP-651). One in-memory model for all three, so the PKI writes every
// format from the same entries and the broker reads every format into the same entries.
//
// Passwords are never logged or put into error messages.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/openssl.h"
#include "base/result.h"

namespace bulwark::keystore {

// A private key with its certificate chain, leaf first (leaf, intermediate, ..., root).
struct PrivateKeyEntry {
  std::string alias;
  EvpPkeyPtr key;
  std::vector<X509Ptr> chain;
};

// A certificate trusted as an anchor (Java's trustedCertEntry).
struct TrustedCertEntry {
  std::string alias;
  X509Ptr cert;
};

struct KeyStore {
  std::vector<PrivateKeyEntry> keys;
  std::vector<TrustedCertEntry> trusted;
};

enum class Format { jks, pkcs12, pem };
enum class Pkcs12Style {
  modern,  // keytool 17: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC, 10000 iterations), HMAC-SHA256 MAC
  legacy,  // pbeWithSHAAnd3-KeyTripleDES-CBC keys, RC2-40 certificates, HMAC-SHA1 MAC
};

// Parses "JKS", "PKCS12", "PEM" (case-insensitive, Kafka's ssl.keystore.type values).
Result<Format> parse_format(std::string_view name);
// Guesses the format from the first bytes (JKS magic, DER SEQUENCE, "-----BEGIN").
std::optional<Format> detect_format(ByteView data);

// key_password protects private keys inside the store; when empty, store_password is used (as keytool
// does by default and as Kafka does when ssl.key.password is unset).
Result<Bytes> encode_jks(const KeyStore& store, std::string_view store_password, std::string_view key_password = {});
// An empty store_password skips the integrity check, as Kafka does for a truststore without
// ssl.truststore.password. Aliases come back lower-cased, as JavaKeyStore stores them.
Result<KeyStore> decode_jks(ByteView data, std::string_view store_password, std::string_view key_password = {});

Result<Bytes> encode_pkcs12(const KeyStore& store, std::string_view password, Pkcs12Style style = Pkcs12Style::modern);
// Reads both styles and stores from keytool and `openssl pkcs12 -export`; chains come back leaf first
// in issuer order. Trusted entries are the bags with Java's trusted-key-usage attribute, or, in a
// store without any such attribute (OpenSSL-made), the certificates that are in no key's chain.
Result<KeyStore> decode_pkcs12(ByteView data, std::string_view password);

// PEM: private key (PKCS#8; encrypted with key_password when it is not empty) followed by the chain for
// each key entry, then the trusted certificates. decode_pem accepts any order, encrypted or plain keys.
Result<std::string> encode_pem(const KeyStore& store, std::string_view key_password = {});
// How encode_pem encrypts keys. Java 17 (and so Kafka's Java PEM loader, which asks SecretKeyFactory
// for the EncryptedPrivateKeyInfo's algorithm name) cannot decrypt PBES2 keys ("PBES2 SecretKeyFactory
// not available"); it can decrypt pbeWithSHAAnd3-KeyTripleDES-CBC. OpenSSL-based clients read both.
enum class PemKeyCipher {
  aes256_pbes2,   // PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC: the default
  java_des3,      // pbeWithSHAAnd3-KeyTripleDES-CBC, for Java clients
};
Result<std::string> encode_pem(const KeyStore& store, std::string_view key_password, PemKeyCipher cipher);
Result<KeyStore> decode_pem(std::string_view text, std::string_view key_password = {});

// Reads a keystore or truststore file in the given format (detected when nullopt). Errors name the
// file and say in plain words what is wrong (wrong password, not a keystore, no private key, ...).
Result<KeyStore> load(const std::filesystem::path& path, std::optional<Format> format, std::string_view store_password,
                      std::string_view key_password = {});

}  // namespace bulwark::keystore
