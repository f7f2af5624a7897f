// bulwark doctor: the config checks on properties in memory (no files), the cipher verdicts, severities
// and the exit code. The files, the certificates and a running broker are tested in
// tests/integration/test_doctor.py.
#include <gtest/gtest.h>

#include <algorithm>

#include "doctor/checks.h"
#include "doctor/doctor.h"

namespace bulwark::doctor {
namespace {

// A sound node: SSL everywhere with required client certificates, an authorizer, a super user its
// certificate maps to.
constexpr std::string_view kSound =
    "process.roles=broker,controller\n"
    "node.id=1\n"
    "controller.quorum.voters=1@127.0.0.1:9093\n"
    "controller.listener.names=CONTROLLER\n"
    "listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n"
    "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL\n"
    "inter.broker.listener.name=SSL\n"
    "ssl.keystore.type=PKCS12\n"
    "ssl.keystore.location=/nonexistent/kafka-1.keystore.p12\n"
    "ssl.client.auth=required\n"
    "ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT\n"
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
    "super.users=User:kafka-1;User:admin-1\n"
    "log.dirs=/tmp/doctor-test\n";

// kSound with `changes` (key=value lines) in place of the lines of the same keys.
std::vector<Finding> audit(std::string_view changes = {}) {
  std::string text(kSound);
  std::size_t start = 0;
  while (start < changes.size()) {
    auto end = changes.find('\n', start);
    std::string line(changes.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    start = end == std::string_view::npos ? changes.size() : end + 1;
    const std::string key = line.substr(0, line.find('='));
    if (auto at = text.find("\n" + key + "="); at != std::string::npos) {
      text.erase(at + 1, text.find('\n', at + 1) - at);
    } else if (text.starts_with(key + "=")) {
      text.erase(0, text.find('\n') + 1);
    }
    if (line.find('=') != std::string::npos) text += line + "\n";
  }
  auto props = config::parse_properties(text, "server.properties");
  EXPECT_TRUE(props.ok());
  ConfigAuditOptions options;
  options.check_files = false;
  options.extra_subjects = {"CN=kafka-1,OU=Ops,O=Example"};
  return audit_properties(*props, options);
}

std::vector<Finding> named(const std::vector<Finding>& findings, std::string_view check) {
  std::vector<Finding> out;
  std::copy_if(findings.begin(), findings.end(), std::back_inserter(out),
               [&](const Finding& f) { return f.check == check; });
  return out;
}

std::string text_of(const std::vector<Finding>& findings) { return render_text(findings); }

TEST(DoctorConfig, SoundConfigHasNothingAboveInfo) {
  auto findings = audit();
  EXPECT_EQ(exit_code(findings, Severity::low), 0) << text_of(findings);
}

TEST(DoctorConfig, PlaintextListenerBeyondLoopbackIsHigh) {
  auto findings = audit(
      "listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,PLAINTEXT://0.0.0.0:9094,LOCAL://127.0.0.1:9095,"
      "OPEN://:9096\n"
      "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL,PLAINTEXT:PLAINTEXT,LOCAL:PLAINTEXT,OPEN:SASL_PLAINTEXT\n"
      "advertised.listeners=SSL://127.0.0.1:9092");
  auto exposed = named(findings, "plaintext-listener");
  ASSERT_EQ(exposed.size(), 3u) << text_of(findings);
  EXPECT_EQ(exposed[0].severity, Severity::high);
  EXPECT_NE(exposed[0].message.find("every interface (0.0.0.0)"), std::string::npos);
  EXPECT_EQ(exposed[1].severity, Severity::info);  // loopback only
  EXPECT_EQ(exposed[2].severity, Severity::high);
  EXPECT_NE(exposed[2].message.find("empty host"), std::string::npos);
  EXPECT_TRUE(exposed[0].where.starts_with("server.properties:")) << exposed[0].where;
}

TEST(DoctorConfig, ClientAuthNotRequiredOnPeerListenerIsHigh) {
  auto findings = audit("ssl.client.auth=requested");
  auto auth = named(findings, "client-auth");
  ASSERT_EQ(auth.size(), 2u) << text_of(findings);
  EXPECT_EQ(auth[0].severity, Severity::high);
  EXPECT_NE(auth[0].message.find("inter-broker listener SSL"), std::string::npos);
  EXPECT_NE(auth[0].fix.find("listener.name.ssl.ssl.client.auth=required"), std::string::npos);
}

TEST(DoctorConfig, ClientListenerWithRequestedAuthIsMedium) {
  auto findings = audit(
      "listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,CLIENTS://127.0.0.1:9094\n"
      "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL,CLIENTS:SSL\n"
      "listener.name.clients.ssl.client.auth=requested");
  auto auth = named(findings, "client-auth");
  ASSERT_EQ(auth.size(), 1u) << text_of(findings);
  EXPECT_EQ(auth[0].severity, Severity::medium);
  EXPECT_NE(auth[0].where.find("server.properties:"), std::string::npos);
}

TEST(DoctorConfig, AuthorizationLeftOpen) {
  auto findings = audit("allow.everyone.if.no.acl.found=true\nsuper.users=User:kafka-1;User:*");
  ASSERT_EQ(named(findings, "allow-everyone").size(), 1u) << text_of(findings);
  EXPECT_EQ(named(findings, "allow-everyone")[0].severity, Severity::high);
  ASSERT_EQ(named(findings, "super-user-wildcard").size(), 1u);
  EXPECT_EQ(named(findings, "super-user-wildcard")[0].severity, Severity::critical);
  auto none = audit("authorizer.class.name=");
  ASSERT_EQ(named(none, "no-authorizer").size(), 1u) << text_of(none);
}

TEST(DoctorConfig, SuperUserNoCertificateCanBe) {
  // DEFAULT maps a certificate to its whole DN: "admin-1" is nobody.
  auto findings = audit("ssl.principal.mapping.rules=DEFAULT\nsuper.users=User:admin-1");
  auto mapping = named(findings, "super-user-mapping");
  ASSERT_EQ(mapping.size(), 1u) << text_of(findings);
  EXPECT_EQ(mapping[0].severity, Severity::medium);
  EXPECT_NE(mapping[0].message.find("User:CN=admin-1,OU=Ops,O=Example"), std::string::npos) << mapping[0].message;
  // Written as the DN, it can be.
  auto as_dn = audit("ssl.principal.mapping.rules=DEFAULT\nsuper.users=User:CN=admin-1,OU=Ops,O=Example");
  EXPECT_EQ(exit_code(named(as_dn, "super-user-mapping"), Severity::low), 0) << text_of(as_dn);
  // Under the CN rule a certificate the doctor cannot see may be it: only noted.
  auto noted = named(audit(), "super-user-mapping");
  ASSERT_EQ(noted.size(), 1u);
  EXPECT_EQ(noted[0].severity, Severity::info);
  EXPECT_NE(noted[0].message.find("User:admin-1"), std::string::npos);
}

TEST(DoctorConfig, LegacyTlsVersionsAreHighAndReportedOnce) {
  auto findings = audit("ssl.enabled.protocols=TLSv1.2,TLSv1.1");
  auto weak = named(findings, "weak-tls-version");
  ASSERT_EQ(weak.size(), 1u) << text_of(findings);
  EXPECT_EQ(weak[0].severity, Severity::high);
  EXPECT_NE(weak[0].message.find("TLSv1.1"), std::string::npos);
  EXPECT_TRUE(named(findings, "refused-value").empty()) << text_of(findings);
}

TEST(DoctorConfig, WeakCipherSuites) {
  auto findings = audit("ssl.cipher.suites=TLS_RSA_WITH_RC4_128_SHA,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,"
                        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  auto weak = named(findings, "weak-cipher");
  ASSERT_EQ(weak.size(), 2u) << text_of(findings);
  EXPECT_EQ(weak[0].severity, Severity::high);
  EXPECT_EQ(weak[1].severity, Severity::medium);
}

TEST(DoctorConfig, CipherVerdicts) {
  using detail::cipher_weakness;
  EXPECT_EQ(cipher_weakness("TLS_RSA_WITH_3DES_EDE_CBC_SHA")->severity, Severity::high);
  EXPECT_EQ(cipher_weakness("TLS_RSA_WITH_NULL_SHA256")->severity, Severity::high);
  EXPECT_EQ(cipher_weakness("TLS_DH_anon_WITH_AES_128_GCM_SHA256")->severity, Severity::high);
  EXPECT_EQ(cipher_weakness("TLS_RSA_EXPORT_WITH_RC4_40_MD5")->severity, Severity::high);
  EXPECT_EQ(cipher_weakness("ECDHE-RSA-AES128-SHA")->severity, Severity::medium);
  EXPECT_EQ(cipher_weakness("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA")->severity, Severity::medium);
  EXPECT_FALSE(cipher_weakness("TLS_AES_128_GCM_SHA256"));
  EXPECT_FALSE(cipher_weakness("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"));
  EXPECT_FALSE(cipher_weakness("ECDHE-ECDSA-AES128-GCM-SHA256"));
}

TEST(DoctorConfig, SaslPlainWithoutTls) {
  auto findings = audit(
      "listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SASL_PLAINTEXT://127.0.0.1:9094\n"
      "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT\n"
      "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512");
  auto plain = named(findings, "sasl-plain-cleartext");
  ASSERT_EQ(plain.size(), 1u) << text_of(findings);
  EXPECT_EQ(plain[0].severity, Severity::high);
}

TEST(DoctorConfig, UnknownKeysWithDidYouMean) {
  auto findings = audit("num.partition=3\nssl.client.auht=required");
  auto unknown = named(findings, "unknown-key");
  ASSERT_EQ(unknown.size(), 2u) << text_of(findings);
  // The misspelt security key stops the broker; the other is ignored.
  auto security = std::find_if(unknown.begin(), unknown.end(), [](const Finding& f) { return f.severity == Severity::high; });
  ASSERT_NE(security, unknown.end());
  EXPECT_NE(security->message.find("did you mean ssl.client.auth"), std::string::npos) << security->message;
  auto other = std::find_if(unknown.begin(), unknown.end(), [](const Finding& f) { return f.severity == Severity::low; });
  ASSERT_NE(other, unknown.end());
  EXPECT_NE(other->message.find("did you mean num.partitions"), std::string::npos) << other->message;
}

TEST(DoctorConfig, RefusedValueIsReportedAndTheRestStillChecked) {
  auto findings = audit("num.io.threads=lots\nallow.everyone.if.no.acl.found=true");
  EXPECT_EQ(named(findings, "refused-value").size(), 1u) << text_of(findings);
  EXPECT_EQ(named(findings, "allow-everyone").size(), 1u) << text_of(findings);
}

TEST(DoctorConfig, FragmentIsJudgedAsAnSslListener) {
  auto props = config::parse_properties(
      "ssl.keystore.location=/nonexistent/ks.jks\nssl.client.auth=none\n"
      "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n",
      "tls.properties");
  ConfigAuditOptions options;
  options.check_files = false;
  auto findings = audit_properties(*props, options);
  EXPECT_EQ(named(findings, "fragment").size(), 1u) << text_of(findings);
  EXPECT_TRUE(named(findings, "plaintext-listener").empty()) << text_of(findings);
  EXPECT_TRUE(named(findings, "invalid-config").empty()) << text_of(findings);
  EXPECT_EQ(named(findings, "client-auth").size(), 1u) << text_of(findings);
}

TEST(DoctorAcls, AllowForEverybodyOnTheClusterIsCritical) {
  security::AclBinding cluster{security::ResourceType::cluster, "kafka-cluster", security::PatternType::literal,
                               "User:*", "*", security::Operation::alter, security::Permission::allow};
  security::AclBinding topics{security::ResourceType::topic, "*", security::PatternType::literal,
                              "User:*", "*", security::Operation::write, security::Permission::allow};
  security::AclBinding alice{security::ResourceType::topic, "*", security::PatternType::literal,
                             "User:alice", "*", security::Operation::write, security::Permission::allow};
  security::AclBinding deny{security::ResourceType::cluster, "kafka-cluster", security::PatternType::literal,
                            "User:*", "*", security::Operation::alter, security::Permission::deny};
  std::vector<Finding> out;
  detail::audit_acls({cluster, topics, alice, deny}, "127.0.0.1:9092", out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].severity, Severity::critical);
  EXPECT_EQ(out[1].severity, Severity::high);
}

TEST(DoctorFindings, SeveritiesAndExitCode) {
  EXPECT_EQ(*parse_severity("medium"), Severity::medium);
  EXPECT_EQ(*parse_severity("HIGH"), Severity::high);
  EXPECT_FALSE(parse_severity("severe").ok());
  std::vector<Finding> findings = {{Severity::medium, "a", "", "m", "f"}, {Severity::info, "b", "", "i", ""}};
  EXPECT_EQ(exit_code(findings, Severity::high), 0);
  EXPECT_EQ(exit_code(findings, Severity::medium), 1);
  const std::string text = render_text(findings);
  EXPECT_NE(text.find("MEDIUM"), std::string::npos);
  EXPECT_NE(text.find("fix: f"), std::string::npos);
  EXPECT_NE(text.find("2 finding(s): 1 medium, 1 info"), std::string::npos) << text;
  EXPECT_EQ(render_text({}), "no findings\n");
}

}  // namespace
}  // namespace bulwark::doctor
