// The pure parts of `bulwark probe`: the host-name judgement against real certificates, authorized
// operations, exit codes and the text and JSON renderings. The steps against real brokers are in
// tests/integration/test_probe.py.
#include <gtest/gtest.h>

#include "client/probe.h"
#include "tls_test_certs.h"

namespace bulwark::client {
namespace {

using testing::make_cert;
using testing::test_pki;

TEST(ProbeHostName, MatchesDnsAndIpSansAsTheTlsCheckDoes) {
  const X509* server = test_pki().server.get();  // SANs IP:127.0.0.1, DNS:localhost
  EXPECT_TRUE(certificate_names_host(server, "localhost"));
  EXPECT_TRUE(certificate_names_host(server, "127.0.0.1"));
  EXPECT_FALSE(certificate_names_host(server, "127.0.0.2"));
  EXPECT_FALSE(certificate_names_host(server, "kafka-1.example"));
  EXPECT_FALSE(certificate_names_host(nullptr, "localhost"));

  const auto ok = judge_host_name(server, "localhost", true);
  EXPECT_EQ(ok.status, ProbeStatus::ok);
  EXPECT_EQ(ok.message, "the certificate names localhost (SANs: IP:127.0.0.1, DNS:localhost)");
}

TEST(ProbeHostName, AMismatchListsTheSansAndHowToReissue) {
  const auto& pki = test_pki();
  auto elsewhere = make_cert({{"CN", "kafka-1"}}, pki.server_key.get(), pki.ca.get(), pki.ca_key.get(), false, 10,
                             "DNS:kafka-1.internal,DNS:*.kafka.internal");
  EXPECT_TRUE(certificate_names_host(elsewhere.get(), "b.kafka.internal"));
  EXPECT_FALSE(certificate_names_host(elsewhere.get(), "a.b.kafka.internal"));  // one label per wildcard

  const auto step = judge_host_name(elsewhere.get(), "10.0.0.7", true);
  EXPECT_EQ(step.status, ProbeStatus::fail);
  EXPECT_EQ(step.failure, ProbeFailure::tls);
  EXPECT_EQ(step.message,
            "the broker's certificate (CN=kafka-1) names DNS:kafka-1.internal, DNS:*.kafka.internal, "
            "not 10.0.0.7");
  EXPECT_NE(step.fix.find("bulwark pki issue broker NAME --ip 10.0.0.7"), std::string::npos) << step.fix;
}

TEST(ProbeHostName, ACertificateWithoutSansIsToldToGetSome) {
  const auto& pki = test_pki();
  auto bare = make_cert({{"CN", "kafka-1"}}, pki.server_key.get(), pki.ca.get(), pki.ca_key.get(), false, 11);
  const auto step = judge_host_name(bare.get(), "kafka-2", true);
  EXPECT_EQ(step.status, ProbeStatus::fail);
  EXPECT_NE(step.message.find("names no SAN at all"), std::string::npos) << step.message;
  EXPECT_NE(step.fix.find("clients ignore the CN"), std::string::npos) << step.fix;
  EXPECT_NE(step.fix.find("--dns kafka-2"), std::string::npos) << step.fix;
}

TEST(ProbeHostName, AnUncheckedNameIsAWarningNotAPass) {
  const auto step = judge_host_name(test_pki().server.get(), "kafka-1.example", false);
  EXPECT_EQ(step.status, ProbeStatus::warn);
  EXPECT_NE(step.message.find("ssl.endpoint.identification.algorithm is empty"), std::string::npos);
}

TEST(ProbeOperations, NamesTheBitsKafkaSets) {
  EXPECT_EQ(render_authorized_operations(0), "none");
  EXPECT_EQ(render_authorized_operations((1 << 8) | (1 << 7)), "ALTER, DESCRIBE");  // Kafka's codes 7 and 8
  // Bits 0..2 (UNKNOWN, ANY, ALL) are never operations one holds.
  EXPECT_EQ(render_authorized_operations(0b111), "none");
}

ProbeReport sample_report() {
  ProbeReport report;
  report.broker = "127.0.0.1:9093";
  report.steps.push_back({"TCP", ProbeStatus::ok, "127.0.0.1:9093 connected in 0.4 ms", "", ProbeFailure::none});
  report.steps.push_back({"host name", ProbeStatus::warn, "not checked", "set it", ProbeFailure::none});
  report.steps.push_back(
      {"client cert", ProbeStatus::fail, "refused \"ours\"\n", "renew it", ProbeFailure::client_certificate});
  report.steps.push_back({"SASL", ProbeStatus::fail, "bad password", "fix it", ProbeFailure::sasl});
  return report;
}

TEST(ProbeReport, ExitsWithTheFirstFailure) {
  auto report = sample_report();
  EXPECT_EQ(report.exit_code(), 5);
  report.steps[2].status = ProbeStatus::ok;
  EXPECT_EQ(report.exit_code(), 6);
  report.steps[3].status = ProbeStatus::skip;
  EXPECT_EQ(report.exit_code(), 0);  // warnings and skips do not fail a probe
}

TEST(ProbeReport, TextHasOneLinePerStepWithTheFix) {
  const std::string text = render_probe_text(sample_report());
  EXPECT_NE(text.find("ok    TCP          127.0.0.1:9093 connected in 0.4 ms\n"), std::string::npos) << text;
  EXPECT_NE(text.find("warn  host name    not checked -> set it\n"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL  SASL         bad password -> fix it\n"), std::string::npos) << text;
  EXPECT_NE(text.find("probe of 127.0.0.1:9093: 2 step(s) failed (exit code 5)"), std::string::npos) << text;
}

TEST(ProbeReport, JsonEscapesAndMarksMissingValuesNull) {
  const std::string json = render_probe_json(sample_report());
  EXPECT_NE(json.find("\"exit_code\": 5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"principal\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"message\": \"refused \\\"ours\\\"\\n\""), std::string::npos) << json;
  EXPECT_NE(json.find("{\"step\": \"TCP\", \"status\": \"ok\", \"message\": \"127.0.0.1:9093 connected in 0.4 ms\", "
                      "\"fix\": null}"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace bulwark::client
