// Interop with the real tools: Java 17's keytool must list what we write, and we must read what
// keytool and `openssl pkcs12 -export` write.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>

#include "security/keystore.h"
#include "security_test_keystore_fixtures.h"

namespace bulwark::keystore {
namespace {

using testing::expect_entry_matches;
using testing::keystore_with;
using testing::LeafKind;
using testing::pki;
using testing::TempDir;

constexpr const char* kStorePass = "storepass-17";

struct ToolRun {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command, stdout and stderr together. Paths and passwords here are ours, no quoting needed.
ToolRun run(const std::string& command) {
  ToolRun result;
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool have(const char* tool) { return run(std::string("command -v ") + tool).exit_code == 0; }

#define REQUIRE_TOOL(tool)                                              \
  do {                                                                  \
    if (!have(tool)) GTEST_SKIP() << tool << " is not installed";       \
  } while (0)

ToolRun keytool_list(const std::filesystem::path& store, const char* type) {
  return run(std::string("keytool -list -v -keystore ") + store.string() + " -storetype " + type + " -storepass " +
             kStorePass);
}

struct Written {
  std::string name;
  const char* keytool_type;
  std::function<Result<Bytes>(const KeyStore&)> encode;
};

std::vector<Written> writers() {
  return {
      {"store.jks", "JKS", [](const KeyStore& s) { return encode_jks(s, kStorePass); }},
      {"modern.p12", "PKCS12", [](const KeyStore& s) { return encode_pkcs12(s, kStorePass, Pkcs12Style::modern); }},
      {"legacy.p12", "PKCS12", [](const KeyStore& s) { return encode_pkcs12(s, kStorePass, Pkcs12Style::legacy); }},
  };
}

TEST(KeystoreKeytool, ListsOurKeystores) {
  REQUIRE_TOOL("keytool");
  TempDir dir;
  for (const auto& writer : writers()) {
    for (LeafKind kind : {LeafKind::rsa, LeafKind::ec}) {
      SCOPED_TRACE(writer.name + (kind == LeafKind::rsa ? " RSA" : " EC"));
      auto encoded = writer.encode(keystore_with(kind));
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      const auto path = dir / writer.name;
      testing::write_bytes(path, as_chars(*encoded));
      const ToolRun listed = keytool_list(path, writer.keytool_type);
      EXPECT_EQ(listed.exit_code, 0) << listed.output;
      EXPECT_NE(listed.output.find("Your keystore contains 1 entry"), std::string::npos) << listed.output;
      EXPECT_NE(listed.output.find("Alias name: broker"), std::string::npos) << listed.output;
      EXPECT_NE(listed.output.find("PrivateKeyEntry"), std::string::npos) << listed.output;
      EXPECT_NE(listed.output.find("Certificate chain length: 3"), std::string::npos) << listed.output;
      EXPECT_NE(listed.output.find(kind == LeafKind::rsa ? "CN=broker-rsa" : "CN=broker-ec"), std::string::npos);

      const ToolRun wrong = run("keytool -list -keystore " + path.string() + " -storepass not-the-pass");
      EXPECT_NE(wrong.exit_code, 0) << "keytool checks the integrity digest/MAC we wrote";
    }
  }
}

TEST(KeystoreKeytool, ListsOurTruststores) {
  REQUIRE_TOOL("keytool");
  TempDir dir;
  for (const auto& writer : writers()) {
    SCOPED_TRACE(writer.name);
    auto encoded = writer.encode(testing::truststore());
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    const auto path = dir / writer.name;
    testing::write_bytes(path, as_chars(*encoded));
    const ToolRun listed = keytool_list(path, writer.keytool_type);
    EXPECT_EQ(listed.exit_code, 0) << listed.output;
    EXPECT_NE(listed.output.find("Your keystore contains 1 entry"), std::string::npos) << listed.output;
    EXPECT_NE(listed.output.find("Alias name: ca-root"), std::string::npos) << listed.output;
    EXPECT_NE(listed.output.find("trustedCertEntry"), std::string::npos) << listed.output;
  }
}

TEST(KeystoreKeytool, JksWithSeparateKeyPasswordExportsThroughKeytool) {
  REQUIRE_TOOL("keytool");
  TempDir dir;
  auto encoded = encode_jks(keystore_with(LeafKind::ec), kStorePass, "keypass-99");
  ASSERT_TRUE(encoded.ok());
  testing::write_bytes(dir / "k.jks", as_chars(*encoded));
  // Converting to PKCS12 makes keytool decrypt the key with our KeyProtector output.
  const ToolRun converted =
      run("keytool -importkeystore -noprompt -srckeystore " + (dir / "k.jks").string() +
          " -srcstoretype JKS -srcstorepass " + kStorePass + " -srcalias broker -srckeypass keypass-99" +
          " -destkeystore " + (dir / "k.p12").string() + " -deststoretype PKCS12 -deststorepass " + kStorePass);
  ASSERT_EQ(converted.exit_code, 0) << converted.output;
  auto decoded = decode_pkcs12(as_bytes(testing::read_all(dir / "k.p12")), kStorePass);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_EQ(decoded->keys.size(), 1u);
  expect_entry_matches(decoded->keys[0], LeafKind::ec);
}

TEST(KeystoreKeytool, ReadsStoresKeytoolGenerates) {
  REQUIRE_TOOL("keytool");
  TempDir dir;
  struct Case {
    const char* type;
    const char* key_args;
    const char* key_pass;
  };
  int n = 0;
  for (const Case& c : {Case{"JKS", "-keyalg RSA -keysize 2048", "keypass-jks"}, Case{"JKS", "-keyalg EC", nullptr},
                        Case{"PKCS12", "-keyalg RSA -keysize 2048", nullptr}, Case{"PKCS12", "-keyalg EC", nullptr}}) {
    SCOPED_TRACE(std::string(c.type) + " " + c.key_args);
    const auto path = dir / (std::string("gen-") + std::to_string(n++) + ".store");
    const std::string key_pass = c.key_pass ? c.key_pass : kStorePass;
    const ToolRun made = run("keytool -genkeypair -alias Kafka-Node " + std::string(c.key_args) +
                         " -dname CN=kafka-node,O=Test -validity 30 -keystore " + path.string() + " -storetype " +
                         c.type + " -storepass " + kStorePass + " -keypass " + key_pass);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    const std::string contents = testing::read_all(path);
    const ByteView data = as_bytes(contents);
    auto decoded = std::string(c.type) == "JKS" ? decode_jks(data, kStorePass, c.key_pass ? c.key_pass : "")
                                                : decode_pkcs12(data, kStorePass);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    ASSERT_EQ(decoded->keys.size(), 1u);
    const auto& entry = decoded->keys[0];
    EXPECT_EQ(entry.alias, "kafka-node") << "keytool lower-cases aliases in both formats";
    ASSERT_EQ(entry.chain.size(), 1u);
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(entry.chain[0].get()), entry.key.get()), 1) << "key matches cert";
    EXPECT_EQ(testing::subject_cn(entry.chain[0].get()), "kafka-node");
    EXPECT_TRUE(decoded->trusted.empty());

    auto wrong = std::string(c.type) == "JKS" ? decode_jks(data, "wrong-pass-1") : decode_pkcs12(data, "wrong-pass-1");
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().kind, ErrorKind::unauthenticated);
  }
}

TEST(KeystoreKeytool, ReadsTruststoresKeytoolImports) {
  REQUIRE_TOOL("keytool");
  TempDir dir;
  testing::write_bytes(dir / "root.pem", testing::pem_of(pki().root.get()));
  for (const char* type : {"JKS", "PKCS12"}) {
    SCOPED_TRACE(type);
    const auto path = dir / (std::string("trust.") + type);
    const ToolRun made = run("keytool -importcert -noprompt -alias ca-root -file " + (dir / "root.pem").string() +
                         " -keystore " + path.string() + " -storetype " + type + " -storepass " + kStorePass);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    const std::string contents = testing::read_all(path);
    const ByteView data = as_bytes(contents);
    auto decoded = std::string(type) == "JKS" ? decode_jks(data, kStorePass) : decode_pkcs12(data, kStorePass);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_TRUE(decoded->keys.empty());
    ASSERT_EQ(decoded->trusted.size(), 1u);
    EXPECT_EQ(decoded->trusted[0].alias, "ca-root");
    EXPECT_EQ(X509_cmp(decoded->trusted[0].cert.get(), pki().root.get()), 0);
  }
}

// Kafka's Java PEM loader (DefaultSslEngineFactory.PemStore) decrypts keys exactly like this.
constexpr const char* kKafkaPemLoader = R"(
import java.nio.file.*; import java.security.*; import java.security.spec.*; import java.util.Base64;
import javax.crypto.*; import javax.crypto.spec.*;
public class KafkaPemLoader { public static void main(String[] args) throws Exception {
  String pem = Files.readString(Paths.get(args[0]));
  String body = pem.substring(pem.indexOf("-----BEGIN ENCRYPTED PRIVATE KEY-----") + 37,
                              pem.indexOf("-----END ENCRYPTED PRIVATE KEY-----")).replaceAll("\\s", "");
  EncryptedPrivateKeyInfo info = new EncryptedPrivateKeyInfo(Base64.getDecoder().decode(body));
  String algorithm = info.getAlgName();
  SecretKey key = SecretKeyFactory.getInstance(algorithm).generateSecret(new PBEKeySpec(args[1].toCharArray()));
  Cipher cipher = Cipher.getInstance(algorithm);
  cipher.init(Cipher.DECRYPT_MODE, key, info.getAlgParameters());
  PKCS8EncodedKeySpec spec = info.getKeySpec(cipher);
  PrivateKey privateKey = KeyFactory.getInstance(args[2]).generatePrivate(spec);
  System.out.println("loaded " + privateKey.getAlgorithm() + " key");
}})";

TEST(KeystoreJava, KafkaPemLoaderDecryptsJavaCompatibleKeys) {
  REQUIRE_TOOL("java");
  TempDir dir;
  testing::write_bytes(dir / "KafkaPemLoader.java", kKafkaPemLoader);
  for (LeafKind kind : {LeafKind::rsa, LeafKind::ec}) {
    SCOPED_TRACE(kind == LeafKind::rsa ? "RSA" : "EC");
    auto text = encode_pem(keystore_with(kind), "pem-key-pass", PemKeyCipher::java_des3);
    ASSERT_TRUE(text.ok()) << text.error().message;
    auto decoded = decode_pem(*text, "pem-key-pass");
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    expect_entry_matches(decoded->keys.at(0), kind);
    testing::write_bytes(dir / "key.pem", *text);
    const char* algorithm = kind == LeafKind::rsa ? "RSA" : "EC";
    const ToolRun loaded = run("java " + (dir / "KafkaPemLoader.java").string() + " " + (dir / "key.pem").string() +
                               " pem-key-pass " + algorithm);
    EXPECT_EQ(loaded.exit_code, 0) << loaded.output;
    EXPECT_NE(loaded.output.find(std::string("loaded ") + algorithm + " key"), std::string::npos) << loaded.output;
  }
}

TEST(KeystoreOpenssl, AcceptsOurPkcs12) {
  REQUIRE_TOOL("openssl");
  TempDir dir;
  KeyStore store = keystore_with(LeafKind::rsa);
  store.trusted.push_back(testing::trusted_root());
  for (auto style : {Pkcs12Style::modern, Pkcs12Style::legacy}) {
    const bool modern = style == Pkcs12Style::modern;
    SCOPED_TRACE(modern ? "modern" : "legacy");
    auto encoded = encode_pkcs12(store, kStorePass, style);
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    const auto path = dir / "s.p12";
    testing::write_bytes(path, as_chars(*encoded));
    const ToolRun info = run(std::string("openssl pkcs12 ") + (modern ? "" : "-legacy ") + "-info -noout -in " +
                         path.string() + " -passin pass:" + kStorePass);
    EXPECT_EQ(info.exit_code, 0) << info.output;
    if (modern) {
      EXPECT_NE(info.output.find("MAC: sha256"), std::string::npos) << info.output;
      EXPECT_NE(info.output.find("PBKDF2, AES-256-CBC"), std::string::npos) << info.output;
      EXPECT_NE(info.output.find("Iteration 10000"), std::string::npos) << info.output;
    } else {
      EXPECT_NE(info.output.find("MAC: sha1"), std::string::npos) << info.output;
      EXPECT_NE(info.output.find("pbeWithSHA1And3-KeyTripleDES-CBC"), std::string::npos) << info.output;
      // RC2-40 for the certificates when OpenSSL's legacy provider is installed (3DES otherwise).
      const bool legacy_provider = run("openssl list -cipher-algorithms -provider legacy").output.find("RC2") !=
                                   std::string::npos;
      EXPECT_NE(info.output.find(legacy_provider ? "pbeWithSHA1And40BitRC2-CBC" : "Certificate bag"),
                std::string::npos)
          << info.output;
    }
    const ToolRun certs = run(std::string("openssl pkcs12 ") + (modern ? "" : "-legacy ") + "-nokeys -in " +
                          path.string() + " -passin pass:" + kStorePass);
    EXPECT_EQ(certs.exit_code, 0) << certs.output;
    EXPECT_NE(certs.output.find("friendlyName: broker"), std::string::npos) << certs.output;
    EXPECT_NE(certs.output.find("friendlyName: ca-root"), std::string::npos) << certs.output;
    EXPECT_NE(certs.output.find("2.16.840.1.113894.746875.1.1"), std::string::npos) << certs.output;
    EXPECT_NE(certs.output.find("localKeyID:"), std::string::npos) << certs.output;
    const ToolRun wrong = run(std::string("openssl pkcs12 ") + (modern ? "" : "-legacy ") + "-info -noout -in " +
                          path.string() + " -passin pass:wrong-one");
    EXPECT_NE(wrong.exit_code, 0);
  }
}

TEST(KeystoreOpenssl, ReadsOpensslExportWithChainInAnyOrder) {
  REQUIRE_TOOL("openssl");
  TempDir dir;
  for (LeafKind kind : {LeafKind::rsa, LeafKind::ec}) {
    SCOPED_TRACE(kind == LeafKind::rsa ? "RSA" : "EC");
    KeyStore key_only = keystore_with(kind);
    auto full = encode_pem(key_only);
    ASSERT_TRUE(full.ok());
    const std::string key_text = full->substr(0, full->find("-----END PRIVATE KEY-----") + 26);
    testing::write_bytes(dir / "key.pem", key_text);
    testing::write_bytes(dir / "leaf.pem", testing::pem_of(testing::leaf_of(kind)));
    // Root before intermediate: the reader must order by issuer, not by file position.
    testing::write_bytes(dir / "cas.pem", testing::pem_of(pki().root.get()) + testing::pem_of(pki().inter.get()));
    for (bool legacy : {false, true}) {
      SCOPED_TRACE(legacy ? "openssl -legacy" : "openssl default");
      const auto out = dir / "exported.p12";
      const ToolRun made = run(std::string("openssl pkcs12 -export ") + (legacy ? "-legacy " : "") + "-name my-alias -in " +
                           (dir / "leaf.pem").string() + " -inkey " + (dir / "key.pem").string() + " -certfile " +
                           (dir / "cas.pem").string() + " -out " + out.string() + " -passout pass:" + kStorePass);
      ASSERT_EQ(made.exit_code, 0) << made.output;
      auto decoded = decode_pkcs12(as_bytes(testing::read_all(out)), kStorePass);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      ASSERT_EQ(decoded->keys.size(), 1u);
      EXPECT_EQ(decoded->keys[0].alias, "my-alias");
      expect_entry_matches(decoded->keys[0], kind);
      EXPECT_TRUE(decoded->trusted.empty());
    }
  }
  // An OpenSSL truststore has no Java trust attribute; its certificates are still the anchors.
  const auto trust = dir / "trust.p12";
  const ToolRun made = run("openssl pkcs12 -export -nokeys -in " + (dir / "cas.pem").string() + " -out " +
                       trust.string() + " -passout pass:" + kStorePass);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto decoded = decode_pkcs12(as_bytes(testing::read_all(trust)), kStorePass);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->keys.empty());
  EXPECT_EQ(decoded->trusted.size(), 2u);
}

}  // namespace
}  // namespace bulwark::keystore
