// Metrics in Prometheus' text format, named as the JMX exporter names Kafka's (kafka_server_...,
// kafka_network_..., kafka_controller_...) so that existing dashboards and alerts apply.
//
// Counters and histograms are made once and then updated lock-free on hot paths (keep the reference);
// values that are cheaper to read than to track (partition counts, log end offsets, lag, certificate
// expiry) come from collectors that run at scrape time. Thread safety: everything may be called from
// any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bulwark::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;  // in the order they are printed

class Counter {
 public:
  void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Cumulative buckets of milliseconds, as Prometheus histograms (_bucket{le}, _sum, _count).
class Histogram {
 public:
  static const std::vector<double>& bounds_ms();
  Histogram();
  void observe_ms(double ms);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum_ms() const { return static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1000.0; }
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  // The value below which `q` of the observations fall, interpolated within its bucket.
  double quantile_ms(double q) const;

 private:
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

// What a collector reports at scrape time.
class Sample {
 public:
  // A gauge (or a counter kept elsewhere: type "counter").
  void value(const std::string& name, const std::string& help, const Labels& labels, double value,
             const char* type = "gauge");
  const std::string& text() const { return text_; }

 private:
  friend class Registry;
  std::string text_;
  std::map<std::string, bool> described_;  // families whose HELP/TYPE are out
};

class Registry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {});
  void add_collector(std::function<void(Sample&)> collector);
  // The whole exposition (text format 0.0.4).
  std::string render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(Sample&)>> collectors_;
};

// `name{a="x",b="y"}` with Prometheus' escaping of label values.
std::string series(const std::string& name, const Labels& labels);

}  // namespace bulwark::metrics
