#include <gtest/gtest.h>

#include <cstring>

#include "pki/parse.h"

namespace bulwark::pki {
namespace {

TEST(PkiKeyType, ParsesEveryDocumentedType) {
  EXPECT_EQ(*parse_key_type("rsa:2048"), KeyType::rsa_2048);
  EXPECT_EQ(*parse_key_type("RSA:4096"), KeyType::rsa_4096);
  EXPECT_EQ(*parse_key_type("ec:p256"), KeyType::ec_p256);
  EXPECT_EQ(*parse_key_type("ec:prime256v1"), KeyType::ec_p256);
  EXPECT_EQ(*parse_key_type("ec:p384"), KeyType::ec_p384);
  EXPECT_EQ(*parse_key_type("ed25519"), KeyType::ed25519);
  for (auto type : {KeyType::rsa_2048, KeyType::rsa_4096, KeyType::ec_p256, KeyType::ec_p384, KeyType::ed25519})
    EXPECT_EQ(*parse_key_type(key_type_name(type)), type);
}

TEST(PkiKeyType, RefusesUnknownTypesNamingThem) {
  for (const char* bad : {"dsa:1024", "rsa:1024", "ec:p521", "", "ed448", "rsa:"}) {
    auto result = parse_key_type(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_NE(result.error().message.find("unknown key type \"" + std::string(bad) + "\""), std::string::npos);
    EXPECT_NE(result.error().message.find("ec:p256"), std::string::npos);
  }
}

TEST(PkiSubject, ReadsCommaFormMostSpecificFirst) {
  auto fields = parse_subject("O=SLS,OU=DevOps,L=Tehran,C=IR");
  ASSERT_TRUE(fields.ok()) << fields.error().message;
  std::vector<SubjectField> expected{{"O", "SLS"}, {"OU", "DevOps"}, {"L", "Tehran"}, {"C", "IR"}};
  EXPECT_EQ(*fields, expected);
}

TEST(PkiSubject, ReadsSlashFormAndSpacesAndCase) {
  auto fields = parse_subject("/C=IR/st=Tehran/O=SLS Co/OU=DevOps");
  ASSERT_TRUE(fields.ok()) << fields.error().message;
  std::vector<SubjectField> expected{{"OU", "DevOps"}, {"O", "SLS Co"}, {"ST", "Tehran"}, {"C", "IR"}};
  EXPECT_EQ(*fields, expected);
  auto spaced = parse_subject(" OU = Ops , o=Acme ");
  ASSERT_TRUE(spaced.ok());
  std::vector<SubjectField> expected2{{"OU", "Ops"}, {"O", "Acme"}};
  EXPECT_EQ(*spaced, expected2);
}

TEST(PkiSubject, EscapedCommaStaysInValueAndRoundTrips) {
  auto fields = parse_subject("O=SLS\\, Inc.,C=IR");
  ASSERT_TRUE(fields.ok());
  ASSERT_EQ(fields->size(), 2u);
  EXPECT_EQ((*fields)[0].value, "SLS, Inc.");
  auto again = parse_subject(format_subject(*fields));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *fields);
}

TEST(PkiSubject, EmptyIsNoFields) {
  auto fields = parse_subject("");
  ASSERT_TRUE(fields.ok());
  EXPECT_TRUE(fields->empty());
}

TEST(PkiSubject, RefusesBadParts) {
  EXPECT_NE(parse_subject("O=SLS,XX=1").error().message.find("unknown subject field \"XX\""), std::string::npos);
  EXPECT_NE(parse_subject("O=SLS,DevOps").error().message.find("has no '='"), std::string::npos);
  EXPECT_NE(parse_subject("C=Iran").error().message.find("two-letter country code"), std::string::npos);
  EXPECT_NE(parse_subject("O=").error().message.find("empty value"), std::string::npos);
  EXPECT_NE(parse_subject("O=" + std::string(65, 'x')).error().message.find("longer than 64"), std::string::npos);
}

TEST(PkiSans, DnsNamesThatAreValid) {
  for (const char* ok : {"kafka-1", "localhost", "kafka-1.example.com", "*.kafka.example.com", "a", "xn--bcher-kva.de",
                         "1kafka.example", "k8s-node-01.internal"})
    EXPECT_TRUE(validate_dns_name(ok).ok()) << ok << ": " << validate_dns_name(ok).error().message;
}

TEST(PkiSans, DnsNamesThatAreNot) {
  for (const char* bad : {"", "bad_name.example", "-kafka", "kafka-", "a..b", ".kafka", "kafka.", "*", "a.*.b",
                          "kafka 1", "kafka/1", "10.0.0", "1.2.3.4.5"})
    EXPECT_FALSE(validate_dns_name(bad).ok()) << bad;
  EXPECT_FALSE(validate_dns_name(std::string(64, 'a')).ok());
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  long_name += "com";
  EXPECT_FALSE(validate_dns_name(long_name).ok());
}

TEST(PkiSans, IpAddressGivenAsDnsGetsTheHint) {
  auto status = validate_dns_name("10.0.0.1");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "10.0.0.1 is an IP address; pass it with --ip so it is an IP SAN");
  EXPECT_NE(validate_dns_name("::1").error().message.find("pass it with --ip"), std::string::npos);
}

TEST(PkiSans, IpAddressesAreNormalised) {
  EXPECT_EQ(*normalize_ip("192.168.9.194"), "192.168.9.194");
  EXPECT_EQ(*normalize_ip("::0001"), "::1");
  EXPECT_EQ(*normalize_ip("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  for (const char* bad : {"300.1.1.1", "1.2.3", "kafka-1", "", "1.2.3.4/24", "::g"})
    EXPECT_FALSE(normalize_ip(bad).ok()) << bad;
}

TEST(PkiSans, ParseSansSplitsCommasAndDeduplicates) {
  auto sans = parse_sans({"kafka-1,Localhost", "localhost"}, {"127.0.0.1", "::1,127.0.0.1"});
  ASSERT_TRUE(sans.ok()) << sans.error().message;
  EXPECT_EQ(sans->dns, (std::vector<std::string>{"kafka-1", "localhost"}));
  EXPECT_EQ(sans->ips, (std::vector<std::string>{"127.0.0.1", "::1"}));
  auto bad_ip = parse_sans({}, {"300.1.1.1"});
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_EQ(bad_ip.error().message, "--ip 300.1.1.1: not an IPv4 or IPv6 address");
  EXPECT_FALSE(parse_sans({"10.0.0.1"}, {}).ok());
}

TEST(PkiSans, ClassifySendsIpsToIpSans) {
  auto sans = classify_sans("kafka-1,192.168.9.194,localhost,::1");
  ASSERT_TRUE(sans.ok());
  EXPECT_EQ(sans->dns, (std::vector<std::string>{"kafka-1", "localhost"}));
  EXPECT_EQ(sans->ips, (std::vector<std::string>{"192.168.9.194", "::1"}));
  EXPECT_FALSE(classify_sans("kafka_1").ok());
}

TEST(PkiBrokerSpec, NameEqualsSans) {
  auto spec = parse_broker_spec("kafka-2=localhost,127.0.0.1");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->name, "kafka-2");
  EXPECT_EQ(spec->sans.dns, std::vector<std::string>{"localhost"});
  EXPECT_EQ(spec->sans.ips, std::vector<std::string>{"127.0.0.1"});
  auto bare = parse_broker_spec("kafka-3");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->sans.dns, std::vector<std::string>{"kafka-3"});
  EXPECT_FALSE(parse_broker_spec("=localhost").ok());
  EXPECT_FALSE(parse_broker_spec("../x=localhost").ok());
  auto bad = parse_broker_spec("kafka-1=bad_host");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("--broker kafka-1=bad_host"), std::string::npos);
}

TEST(PkiNames, CertificateNamesAreSafeFileNames) {
  for (const char* ok : {"kafka-1", "admin_1", "client.one", "A9"}) EXPECT_TRUE(validate_cert_name(ok).ok()) << ok;
  for (const char* bad : {"", "../etc", "a/b", ".hidden", "-x", "a b", "a=b"}) EXPECT_FALSE(validate_cert_name(bad).ok()) << bad;
  EXPECT_FALSE(validate_cert_name(std::string(65, 'a')).ok());
}

TEST(PkiSerial, SixteenBytePositiveHex) {
  std::set<std::string> taken;
  for (int i = 0; i < 2000; ++i) {
    auto serial = new_serial(taken);
    ASSERT_TRUE(serial.ok());
    ASSERT_EQ(serial->size(), 32u);
    int first = std::stoi(serial->substr(0, 2), nullptr, 16);
    EXPECT_GE(first, 1);
    EXPECT_LE(first, 0x7f);
    EXPECT_TRUE(taken.insert(*serial).second) << "duplicate serial " << *serial;
  }
}

TEST(PkiSerial, SkipsSerialsAlreadyTaken) {
  // A source that repeats itself: the first draw collides with a taken serial, the second does not.
  int calls = 0;
  RandomBytes source = [&](std::uint8_t* out, std::size_t size) {
    std::memset(out, calls++ < 2 ? 0x11 : 0x22, size);
    return true;
  };
  std::set<std::string> taken{std::string(32, '1')};
  auto serial = new_serial(taken, source);
  ASSERT_TRUE(serial.ok());
  EXPECT_EQ(*serial, std::string(32, '2'));
  EXPECT_EQ(calls, 3);
}

TEST(PkiSerial, FixesTopBitsAndFailsOnABrokenSource) {
  RandomBytes all_ones = [](std::uint8_t* out, std::size_t size) {
    std::memset(out, 0xff, size);
    return true;
  };
  EXPECT_EQ(*new_serial({}, all_ones), "7F" + std::string(30, 'F'));
  RandomBytes zeros = [](std::uint8_t* out, std::size_t size) {
    std::memset(out, 0, size);
    return true;
  };
  EXPECT_EQ(*new_serial({}, zeros), "01" + std::string(30, '0'));
  // Always the same value, already taken: gives up with an error instead of looping forever.
  EXPECT_FALSE(new_serial({"01" + std::string(30, '0')}, zeros).ok());
  RandomBytes failing = [](std::uint8_t*, std::size_t) { return false; };
  EXPECT_FALSE(new_serial({}, failing).ok());
}

TEST(PkiRevocation, ReasonsByName) {
  EXPECT_EQ(*parse_revocation_reason("keyCompromise"), 1);
  EXPECT_EQ(*parse_revocation_reason("key-compromise"), 1);
  EXPECT_EQ(*parse_revocation_reason("SUPERSEDED"), 4);
  EXPECT_EQ(*parse_revocation_reason("cessation_of_operation"), 5);
  EXPECT_EQ(revocation_reason_name(9), "privilegeWithdrawn");
  EXPECT_FALSE(parse_revocation_reason("because").ok());
}

}  // namespace
}  // namespace bulwark::pki
