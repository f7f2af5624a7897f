// The PKI library end to end in a temporary directory: init, issue, revoke, and the all-or-nothing
// file plan underneath.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <fstream>

#include "base/files.h"
#include "pki/crypto.h"
#include "pki/pki.h"
#include "pki/session.h"

namespace bulwark::pki {
namespace {

using test::TempDir;

unsigned mode_of(const fs::path& path) {
  struct stat st{};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(PkiFilePlan, RefusesConflictsBeforeWritingAnything) {
  TempDir temp;
  ASSERT_TRUE(write_file_atomic(temp.path() / "b", std::string("old")).ok());
  FilePlan plan;
  plan.write(temp.path() / "a", "new a", kPublicFileMode, false);
  plan.write(temp.path() / "b", "new b", kPublicFileMode, false);
  auto status = plan.commit();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("already exists"), std::string::npos);
  EXPECT_FALSE(fs::exists(temp.path() / "a"));
  EXPECT_EQ(*read_file(temp.path() / "b"), "old");
}

TEST(PkiFilePlan, RollsBackWhenAWriteFails) {
  TempDir temp;
  ASSERT_TRUE(write_file_atomic(temp.path() / "keep", std::string("before"), kPrivateFileMode).ok());
  ASSERT_TRUE(write_file_atomic(temp.path() / "blocker", std::string("a file, not a directory")).ok());
  FilePlan plan;
  plan.write(temp.path() / "new-dir" / "first", "1", kPublicFileMode, false);
  plan.write(temp.path() / "keep", "after", kPrivateFileMode, true);
  plan.write(temp.path() / "blocker" / "impossible", "x", kPublicFileMode, false);
  ASSERT_FALSE(plan.commit().ok());
  EXPECT_FALSE(fs::exists(temp.path() / "new-dir"));
  EXPECT_EQ(*read_file(temp.path() / "keep"), "before");
  EXPECT_EQ(mode_of(temp.path() / "keep"), kPrivateFileMode);
}

TEST(PkiFilePlan, WritesModesAsAsked) {
  TempDir temp;
  FilePlan plan;
  plan.write(temp.path() / "x" / "secret", "s", kPrivateFileMode, false);
  plan.write(temp.path() / "x" / "public", "p", kPublicFileMode, false);
  ASSERT_TRUE(plan.commit().ok());
  EXPECT_EQ(mode_of(temp.path() / "x" / "secret"), 0600u);
  EXPECT_EQ(mode_of(temp.path() / "x" / "public"), 0644u);
}

TEST(PkiLibrary, InitIssueRevokeRoundTrip) {
  TempDir temp;
  auto dir = temp.path() / "pki";
  InitOptions init_options;
  init_options.dir = dir;
  init_options.subject = *parse_subject("O=SLS,C=IR");
  ASSERT_TRUE(init(init_options).ok());
  EXPECT_EQ(mode_of(dir / "ca" / "root.key"), 0600u);
  EXPECT_EQ(mode_of(dir / "ca" / "intermediate.key"), 0600u);
  EXPECT_FALSE(init(init_options).ok()) << "a second init must refuse without force";

  IssueOptions issue_options;
  issue_options.dir = dir;
  issue_options.name = "kafka-1";
  issue_options.sans = *parse_sans({"kafka-1"}, {"127.0.0.1"});
  auto issued = issue(issue_options);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  auto again = issue(issue_options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::already_exists);

  auto cert = crypto::parse_certificate(*read_file(dir / "issued" / "kafka-1" / "cert.pem"), "cert.pem");
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(crypto::name_rfc2253(X509_get_subject_name(cert->get())), "CN=kafka-1,O=SLS,C=IR");
  auto sans = crypto::certificate_sans(cert->get());
  EXPECT_EQ(sans.dns, std::vector<std::string>{"kafka-1"});
  EXPECT_EQ(sans.ips, std::vector<std::string>{"127.0.0.1"});

  auto listed = list(dir);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].serial, crypto::serial_hex(cert->get()));
  EXPECT_EQ((*listed)[0].common_name, "kafka-1");
  EXPECT_FALSE((*listed)[0].revoked);

  RevokeOptions revoke_options;
  revoke_options.dir = dir;
  revoke_options.name = "kafka-1";
  revoke_options.reason = 1;
  ASSERT_TRUE(revoke(revoke_options).ok());
  listed = list(dir);
  EXPECT_TRUE((*listed)[0].revoked);
  EXPECT_EQ((*listed)[0].revocation_reason, "keyCompromise");
}

// The serials a CRL lists, in upper-case hex.
std::set<std::string> crl_serials(const fs::path& crl_file) {
  std::set<std::string> out;
  auto text = read_file(crl_file);
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    BignumPtr bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), nullptr));
    char* hex = BN_bn2hex(bn.get());
    out.insert(hex);
    OPENSSL_free(hex);
  }
  return out;
}

TEST(PkiLibrary, RevokeTakesTheSupersededOneSerialOrEverySerial) {
  TempDir temp;
  auto dir = temp.path() / "pki";
  InitOptions init_options;
  init_options.dir = dir;
  ASSERT_TRUE(init(init_options).ok());
  IssueOptions issue_options;
  issue_options.dir = dir;
  issue_options.name = "kafka-1";
  ASSERT_TRUE(issue(issue_options).ok());
  auto serial_now = [&] { return (*list(dir))[0].serial; };
  const std::string first = serial_now();
  RevokeOptions options;
  options.dir = dir;
  options.name = "kafka-1";
  options.which = RevokeWhich::superseded;
  auto nothing = revoke(options);
  ASSERT_FALSE(nothing.ok());
  EXPECT_NE(nothing.error().message.find("no superseded serial"), std::string::npos);

  RenewOptions renew_options;
  renew_options.dir = dir;
  renew_options.name = "kafka-1";
  ASSERT_TRUE(renew(renew_options).ok());
  const std::string second = serial_now();
  ASSERT_TRUE(renew(renew_options).ok());
  const std::string third = serial_now();

  auto superseded = revoke(options);
  ASSERT_TRUE(superseded.ok()) << superseded.error().message;
  EXPECT_NE(superseded->messages[0].find(first + " (superseded), " + second + " (superseded)"), std::string::npos)
      << superseded->messages[0];
  EXPECT_EQ(crl_serials(dir / "crl.pem"), (std::set<std::string>{first, second}));
  EXPECT_FALSE((*list(dir))[0].revoked);  // the current certificate still works

  options.which = RevokeWhich::serial;
  options.serial = "0x" + third;
  options.serial.insert(4, ":");
  std::transform(options.serial.begin(), options.serial.end(), options.serial.begin(), ::tolower);
  ASSERT_TRUE(revoke(options).ok());
  EXPECT_EQ(crl_serials(dir / "crl.pem"), (std::set<std::string>{first, second, third}));
  EXPECT_TRUE((*list(dir))[0].revoked);
  options.serial = "ABCDEF";
  auto unknown = revoke(options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("is not one of kafka-1's"), std::string::npos);

  options.which = RevokeWhich::all;
  auto again = revoke(options);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already revoked"), std::string::npos);
  // After one more renewal, revoking the name takes only what is not revoked yet.
  ASSERT_TRUE(renew(renew_options).ok());
  auto all = revoke(options);
  ASSERT_TRUE(all.ok());
  EXPECT_NE(all->messages[0].find(serial_now() + " (current)"), std::string::npos) << all->messages[0];
  EXPECT_EQ(all->messages[0].find(first), std::string::npos) << all->messages[0];
  EXPECT_EQ(crl_serials(dir / "crl.pem").size(), 4u);
}

TEST(PkiLibrary, MissingDirectoryIsExplained) {
  auto result = list("/nonexistent/pki");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "no PKI in /nonexistent/pki: run `bulwark pki init --dir /nonexistent/pki` first");
}

TEST(PkiCrypto, EveryKeyTypeSignsAVerifiableCertificate) {
  for (auto type : {KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa_2048, KeyType::ed25519}) {
    auto key = crypto::generate_key(type);
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(*crypto::key_type_of(key->get()), type);
    crypto::CertSpec spec;
    spec.subject = {{"CN", "test"}};
    spec.serial_hex = "0102030405060708090A0B0C0D0E0F10";
    spec.not_before = std::time(nullptr);
    spec.not_after = spec.not_before + 86400;
    spec.is_ca = true;
    spec.path_len = 0;
    auto cert = crypto::make_certificate(spec, key->get(), nullptr, key->get());
    ASSERT_TRUE(cert.ok()) << cert.error().message;
    EXPECT_EQ(X509_verify(cert->get(), key->get()), 1);
    EXPECT_EQ(crypto::serial_hex(cert->get()), spec.serial_hex);
  }
}

}  // namespace
}  // namespace bulwark::pki
