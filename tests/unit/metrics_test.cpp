// The registry's exposition format, histogram quantiles, and the HTTP listener over a real socket.
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/endpoint.h"

namespace bulwark::metrics {
namespace {

TEST(Metrics, CountersHistogramsAndCollectorsRenderAsPrometheusText) {
  Registry registry;
  registry.counter("kafka_network_requestmetrics_requests_total", "Requests", {{"request", "Produce"}}).add(3);
  registry.counter("kafka_network_requestmetrics_requests_total", "Requests", {{"request", "Produce"}}).add();
  auto& h = registry.histogram("bulwark_request_total_time_ms", "Time", {{"request", "Fetch"}});
  h.observe_ms(0.2);
  h.observe_ms(3);
  h.observe_ms(99999);
  registry.add_collector([](Sample& out) {
    out.value("kafka_log_log_logendoffset", "End", {{"topic", "a\"b"}, {"partition", "0"}}, 42);
  });
  const auto text = registry.render();
  EXPECT_NE(text.find("# TYPE kafka_network_requestmetrics_requests_total counter\n"
                      "kafka_network_requestmetrics_requests_total{request=\"Produce\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bulwark_request_total_time_ms_bucket{request=\"Fetch\",le=\"0.25\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("bulwark_request_total_time_ms_bucket{request=\"Fetch\",le=\"5\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("bulwark_request_total_time_ms_bucket{request=\"Fetch\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("bulwark_request_total_time_ms_count{request=\"Fetch\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE kafka_log_log_logendoffset gauge\nkafka_log_log_logendoffset{topic=\"a\\\"b\",partition=\"0\"} 42\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, QuantilesInterpolateWithinBuckets) {
  Histogram h;
  EXPECT_EQ(h.quantile_ms(0.99), 0);
  for (int i = 0; i < 100; ++i) h.observe_ms(i < 90 ? 1.5 : 40);
  EXPECT_GT(h.quantile_ms(0.5), 1.0);
  EXPECT_LE(h.quantile_ms(0.5), 2.5);
  EXPECT_GT(h.quantile_ms(0.99), 25);
  EXPECT_LE(h.quantile_ms(0.99), 50);
}

TEST(MetricsEndpoint, ParsesTheListenerUrl) {
  auto ok = parse_listener("http://127.0.0.1:9404");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->host, "127.0.0.1");
  EXPECT_EQ(ok->port, 9404);
  EXPECT_EQ(parse_listener("http://[::1]:0/")->host, "::1");
  EXPECT_TRUE(parse_listener("https://127.0.0.1:9405")->https);
  EXPECT_FALSE(ok->https);
  EXPECT_NE(parse_listener("127.0.0.1:9404").error().message.find("must start with http://"), std::string::npos);
  EXPECT_NE(parse_listener("http://host:99999").error().message.find("port is not a number"), std::string::npos);
}

std::string get(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return answer;
}

TEST(MetricsEndpoint, ServesMetricsOverHttp) {
  Registry registry;
  registry.counter("up_total", "Scrapes").add(7);
  auto endpoint = Endpoint::start({"127.0.0.1", 0}, [&] { return registry.render(); });
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  const auto port = (*endpoint)->port();
  ASSERT_NE(port, 0);
  const auto ok = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(ok.find("up_total 7\n"), std::string::npos);
  EXPECT_EQ(get(port, "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(get(port, "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  // A second listener on the same port is refused with the reason.
  auto taken = Endpoint::start({"127.0.0.1", port}, [] { return std::string(); });
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.error().message.find("cannot listen on 127.0.0.1:"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::metrics
