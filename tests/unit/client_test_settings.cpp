// Client settings from Kafka client properties files and flags; request framing; version choice.
#include <gtest/gtest.h>

#include <unistd.h>

#include "base/files.h"
#include "client/client.h"

namespace bulwark::client {
namespace {

Result<ClientSettings> from_text(std::string_view text, ClientSettings base = {}) {
  auto props = config::parse_properties(text, "admin.properties");
  EXPECT_TRUE(props.ok()) << (props.ok() ? "" : props.error().message);
  if (!props.ok()) return props.error();
  return apply_client_properties(*props, std::move(base));
}

TEST(ClientBootstrap, ParsesHostsPortsAndIpv6) {
  auto servers = parse_bootstrap_servers(" kafka-1:9093, 127.0.0.1:9092 ,[::1]:19092");
  ASSERT_TRUE(servers.ok()) << servers.error().message;
  ASSERT_EQ(servers->size(), 3u);
  EXPECT_EQ((*servers)[0], (HostPort{"kafka-1", 9093}));
  EXPECT_EQ((*servers)[1], (HostPort{"127.0.0.1", 9092}));
  EXPECT_EQ((*servers)[2], (HostPort{"::1", 19092}));
  EXPECT_EQ((*servers)[2].to_string(), "[::1]:19092");
}

TEST(ClientBootstrap, RejectsMissingOrBadPorts) {
  for (const char* bad : {"kafka-1", "kafka-1:", "kafka-1:0", "kafka-1:70000", "kafka-1:9x", "::1:9092", "[::1]9092", ""}) {
    auto servers = parse_bootstrap_servers(bad);
    EXPECT_FALSE(servers.ok()) << bad;
    if (!servers.ok()) {
      EXPECT_EQ(servers.error().kind, ErrorKind::invalid_argument);
    }
  }
}

TEST(ClientProperties, ReadsEverySslKey) {
  auto s = from_text(
      "bootstrap.servers=127.0.0.1:9093\n"
      "security.protocol=SSL\n"
      "client.id=ops\n"
      "request.timeout.ms=2500\n"
      "ssl.truststore.location=/etc/kafka/trust.jks\n"
      "ssl.truststore.password=trust-pw\n"
      "ssl.truststore.type=JKS\n"
      "ssl.keystore.location=/etc/kafka/admin.p12\n"
      "ssl.keystore.password=store-pw\n"
      "ssl.keystore.type=pkcs12\n"
      "ssl.key.password=key-pw\n"
      "ssl.endpoint.identification.algorithm=\n"
      "ssl.enabled.protocols=TLSv1.3\n"
      "ssl.protocol=TLSv1.3\n"
      "ssl.cipher.suites=TLS_AES_128_GCM_SHA256\n");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->bootstrap_servers.size(), 1u);
  EXPECT_EQ(s->bootstrap_servers[0].port, 9093);
  EXPECT_EQ(s->protocol, config::SecurityProtocol::ssl);
  EXPECT_EQ(s->client_id, "ops");
  EXPECT_EQ(s->timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(s->tls.truststore_location, "/etc/kafka/trust.jks");
  EXPECT_EQ(s->tls.truststore_password.reveal(), "trust-pw");
  EXPECT_EQ(s->tls.truststore_type, keystore::Format::jks);
  EXPECT_EQ(s->tls.keystore_location, "/etc/kafka/admin.p12");
  EXPECT_EQ(s->tls.keystore_password.reveal(), "store-pw");
  EXPECT_EQ(s->tls.keystore_type, keystore::Format::pkcs12);
  EXPECT_EQ(s->tls.key_password.reveal(), "key-pw");
  EXPECT_FALSE(s->tls.verify_hostname);
  EXPECT_EQ(s->tls.enabled_protocols, std::vector<std::string>{"TLSv1.3"});
  EXPECT_EQ(s->tls.cipher_suites, std::vector<std::string>{"TLS_AES_128_GCM_SHA256"});
  EXPECT_TRUE(s->notes.empty());
  EXPECT_TRUE(validate_settings(*s).ok());
}

TEST(ClientProperties, HostnameCheckIsOnByDefaultAndWithHttps) {
  auto unset = from_text("security.protocol=SSL\n");
  ASSERT_TRUE(unset.ok());
  EXPECT_TRUE(unset->tls.verify_hostname);
  auto https = from_text("ssl.endpoint.identification.algorithm=HTTPS\n");
  ASSERT_TRUE(https.ok());
  EXPECT_TRUE(https->tls.verify_hostname);
}

TEST(ClientProperties, ReadsPemTextKeys) {
  auto s = from_text(
      "security.protocol=SSL\n"
      "ssl.truststore.type=PEM\n"
      "ssl.truststore.certificates=-----BEGIN CERTIFICATE----- \\\n  MIIB -----END CERTIFICATE-----\n"
      "ssl.keystore.type=PEM\n"
      "ssl.keystore.key=-----BEGIN PRIVATE KEY----- abc -----END PRIVATE KEY-----\n"
      "ssl.keystore.certificate.chain=-----BEGIN CERTIFICATE----- def -----END CERTIFICATE-----\n");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->tls.truststore_type, keystore::Format::pem);
  EXPECT_NE(s->tls.truststore_certificates.reveal().find("MIIB"), std::string::npos);
  EXPECT_NE(s->tls.keystore_key.reveal().find("abc"), std::string::npos);
  EXPECT_NE(s->tls.keystore_certificate_chain.reveal().find("def"), std::string::npos);
}

TEST(ClientProperties, FlagBootstrapWinsOverTheFile) {
  ClientSettings base;
  base.bootstrap_servers = {{"127.0.0.1", 1111}};
  auto s = from_text("bootstrap.servers=10.0.0.1:9092\n", base);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->bootstrap_servers.size(), 1u);
  EXPECT_EQ(s->bootstrap_servers[0].port, 1111);
}

TEST(ClientProperties, ReadsSaslPlainAndScramLogins) {
  auto plain = from_text(
      "security.protocol=SASL_SSL\n"
      "sasl.mechanism=PLAIN\n"
      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
      "username=\"alice\" password=\"alice-secret\";\n");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  ASSERT_TRUE(plain->sasl.has_value());
  EXPECT_EQ(plain->sasl->mechanism, security::sasl::Mechanism::plain);
  EXPECT_EQ(plain->sasl->username, "alice");
  EXPECT_EQ(plain->sasl->password.reveal(), "alice-secret");

  auto scram = from_text(
      "security.protocol=SASL_PLAINTEXT\n"
      "sasl.mechanism=SCRAM-SHA-512\n"
      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=bob "
      "password=\"b=b;secret\";\n");
  ASSERT_TRUE(scram.ok()) << scram.error().message;
  EXPECT_EQ(scram->sasl->mechanism, security::sasl::Mechanism::scram_sha_512);
  EXPECT_EQ(scram->sasl->username, "bob");
  EXPECT_EQ(scram->sasl->password.reveal(), "b=b;secret");
  ClientSettings with_server = *scram;
  with_server.bootstrap_servers = {{"127.0.0.1", 9092}};
  EXPECT_TRUE(validate_settings(with_server).ok());
}

TEST(ClientProperties, ErrorsNameFileLineAndKeyButNeverThePassword) {
  auto s = from_text(
      "# admin client\n"
      "security.protocol=SASL_SSH\n"
      "ssl.keystore.type=BCFKS\n"
      "sasl.mechanism=GSSAPI\n"
      "ssl.endpoint.identification.algorithm=ldap\n"
      "ssl.enabled.protocols=TLSv1.1\n"
      "request.timeout.ms=soon\n"
      "sasl.client.callback.handler.class=com.example.Handler\n"
      "sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required password=\"topsecret\";\n");
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  EXPECT_EQ(s.error().kind, ErrorKind::invalid_argument);
  EXPECT_NE(m.find("admin.properties:2: security.protocol: 'SASL_SSH'"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:3: ssl.keystore.type: 'BCFKS'"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:4: sasl.mechanism: 'GSSAPI' is not supported"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:5: ssl.endpoint.identification.algorithm: 'ldap'"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:6: ssl.enabled.protocols"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:7: request.timeout.ms"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:8: sasl.client.callback.handler.class"), std::string::npos) << m;
  EXPECT_NE(m.find("admin.properties:9: sasl.jaas.config: login module com.sun.security.auth.module.Krb5LoginModule"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("topsecret"), std::string::npos) << m;
}

TEST(ClientProperties, MismatchedLoginModuleAndMechanismIsAnError) {
  auto s = from_text(
      "sasl.mechanism=SCRAM-SHA-256\n"
      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=a password=b;\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("admin.properties:2: sasl.jaas.config: sasl.mechanism is SCRAM-SHA-256"),
            std::string::npos)
      << s.error().message;
  auto no_password = from_text(
      "sasl.mechanism=PLAIN\n"
      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=a;\n");
  ASSERT_FALSE(no_password.ok());
  EXPECT_NE(no_password.error().message.find("has no password"), std::string::npos) << no_password.error().message;
}

TEST(ClientProperties, UnknownKeysAreIgnoredWithANote) {
  auto s = from_text("retries=5\nlinger.ms=3\n");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->notes.size(), 2u);
  EXPECT_NE(s->notes[0].find("admin.properties:1: retries: not needed"), std::string::npos) << s->notes[0];
  EXPECT_NE(s->notes[1].find("admin.properties:2: linger.ms: unknown key, ignored"), std::string::npos) << s->notes[1];
}

TEST(ClientProperties, PlainLoginWithoutMechanismIsPlainWithANote) {
  auto s = from_text(
      "security.protocol=SASL_PLAINTEXT\n"
      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=a password=b;\n");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->sasl->mechanism, security::sasl::Mechanism::plain);
  ASSERT_EQ(s->notes.size(), 1u);
  EXPECT_NE(s->notes[0].find("admin.properties:2: sasl.jaas.config: sasl.mechanism is not set; using PLAIN"),
            std::string::npos)
      << s->notes[0];
}

TEST(ClientTlsMaterial, ErrorsNameTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("client_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  TlsMaterial missing;
  missing.ca_file = dir / "no-such-ca.pem";
  auto r = load_tls_material(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no-such-ca.pem"), std::string::npos) << r.error().message;

  TlsMaterial garbage;
  garbage.ca_file = dir / "garbage.pem";
  ASSERT_TRUE(write_file_atomic(garbage.ca_file, std::string_view("not a certificate\n"), 0644, Overwrite::allow).ok());
  r = load_tls_material(garbage);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("garbage.pem"), std::string::npos) << r.error().message;

  TlsMaterial store;
  store.truststore_location = dir / "missing.p12";
  store.truststore_type = keystore::Format::pkcs12;
  store.truststore_password = config::Password("secret-pw");
  r = load_tls_material(store);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing.p12"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("secret-pw"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ClientSettingsValidation, ExplainsMissingPieces) {
  ClientSettings s;
  EXPECT_NE(validate_settings(s).error().message.find("no bootstrap server"), std::string::npos);
  s.bootstrap_servers = {{"127.0.0.1", 9093}};
  EXPECT_TRUE(validate_settings(s).ok());

  s.tls.ca_file = "ca.pem";
  EXPECT_NE(validate_settings(s).error().message.find("security.protocol is PLAINTEXT"), std::string::npos);
  s.protocol = config::SecurityProtocol::ssl;
  EXPECT_TRUE(validate_settings(s).ok());
  s.tls.cert_file = "admin.pem";
  EXPECT_NE(validate_settings(s).error().message.find("--cert and --key go together"), std::string::npos);
  s.tls.key_file = "admin.key";
  EXPECT_TRUE(validate_settings(s).ok());
  s.tls.truststore_location = "trust.p12";
  EXPECT_NE(validate_settings(s).error().message.find("only one of --ca"), std::string::npos);
  s.tls.truststore_location.clear();
  s.tls.ca_file.clear();
  EXPECT_NE(validate_settings(s).error().message.find("trust anchors"), std::string::npos);

  ClientSettings sasl;
  sasl.bootstrap_servers = {{"127.0.0.1", 9092}};
  sasl.protocol = config::SecurityProtocol::sasl_plaintext;
  EXPECT_NE(validate_settings(sasl).error().message.find("needs sasl.mechanism"), std::string::npos);
  sasl.sasl = SaslLogin{security::sasl::Mechanism::plain, "alice", config::Password("pw")};
  EXPECT_TRUE(validate_settings(sasl).ok());
  sasl.protocol = config::SecurityProtocol::plaintext;
  EXPECT_NE(validate_settings(sasl).error().message.find("use SASL_PLAINTEXT or SASL_SSL"), std::string::npos);
}

TEST(ClientFraming, RequestHeaderV1ForClassicVersions) {
  const std::uint8_t body[] = {0xAB};
  Bytes frame = frame_request(29, 1, 7, std::string("ab"), body);  // DescribeAcls v1: not flexible
  const Bytes expected = {0, 0, 0, 13,           // size
                          0, 29, 0, 1,           // api key, version
                          0, 0, 0, 7,            // correlation id
                          0, 2, 'a', 'b',        // client id
                          0xAB};
  EXPECT_EQ(frame, expected);
}

TEST(ClientFraming, RequestHeaderV2AddsTaggedFieldsAndKeepsClassicClientId) {
  const std::uint8_t body[] = {0x01, 0x02};
  Bytes frame = frame_request(30, 2, 0x01020304, std::string("x"), body);  // CreateAcls v2: flexible
  const Bytes expected = {0, 0, 0, 14, 0, 30, 0, 2, 1, 2, 3, 4, 0, 1, 'x', 0 /* no tagged fields */, 0x01, 0x02};
  EXPECT_EQ(frame, expected);
  Bytes null_id = frame_request(18, 3, 1, std::nullopt, {});  // ApiVersions v3, null client id
  const Bytes expected_null = {0, 0, 0, 11, 0, 18, 0, 3, 0, 0, 0, 1, 0xFF, 0xFF, 0};
  EXPECT_EQ(null_id, expected_null);
}

TEST(ClientVersions, PicksTheHighestCommonVersion) {
  BrokerVersions broker{{30, {0, 3}}, {29, {1, 2}}, {50, {0, 0}}, {36, {3, 5}}};
  EXPECT_EQ(choose_version(broker, 30, 0, 3), 3);
  EXPECT_EQ(choose_version(broker, 29, 0, 3), 2);   // broker's max
  EXPECT_EQ(choose_version(broker, 29, 2, 3), 2);
  EXPECT_EQ(choose_version(broker, 50, 0, 0), 0);
  EXPECT_EQ(choose_version(broker, 36, 0, 2), std::nullopt);  // ranges do not meet
  EXPECT_EQ(choose_version(broker, 51, 0, 0), std::nullopt);  // not offered
  EXPECT_EQ(choose_version(broker, 29, 3, 3), std::nullopt);
}

TEST(ClientErrors, KafkaNames) {
  EXPECT_EQ(error_name(31), "CLUSTER_AUTHORIZATION_FAILED");
  EXPECT_EQ(error_name(54), "SECURITY_DISABLED");
  EXPECT_EQ(error_name(58), "SASL_AUTHENTICATION_FAILED");
  EXPECT_EQ(error_name(-1), "UNKNOWN_SERVER_ERROR");
  EXPECT_EQ(error_name(4242), "error code 4242");
}

}  // namespace
}  // namespace bulwark::client
