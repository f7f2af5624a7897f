#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace bulwark::metrics {
namespace {

std::string escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

void describe(std::string& out, const std::string& name, const std::string& help, const std::string& type) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string series(const std::string& name, const Labels& labels) {
  if (labels.empty()) return name;
  std::string out = name + "{";
  for (std::size_t i = 0; i < labels.size(); ++i)
    out += (i ? "," : "") + labels[i].first + "=\"" + escape(labels[i].second) + "\"";
  return out + "}";
}

const std::vector<double>& Histogram::bounds_ms() {
  static const std::vector<double> bounds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
  return bounds;
}

Histogram::Histogram() : buckets_(new std::atomic<std::uint64_t>[bounds_ms().size() + 1]) {
  for (std::size_t i = 0; i <= bounds_ms().size(); ++i) buckets_[i].store(0);
}

void Histogram::observe_ms(double ms) {
  const auto& bounds = bounds_ms();
  const auto at = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), ms) - bounds.begin());
  buckets_[at].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(std::max(ms, 0.0) * 1000.0), std::memory_order_relaxed);
}

double Histogram::quantile_ms(double q) const {
  const auto& bounds = bounds_ms();
  const std::uint64_t total = count();
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    const std::uint64_t here = bucket(i);
    if (static_cast<double>(below + here) >= rank && here > 0) {
      const double low = i == 0 ? 0 : bounds[i - 1];
      const double high = i < bounds.size() ? bounds[i] : bounds.back();
      return low + (high - low) * (rank - static_cast<double>(below)) / static_cast<double>(here);
    }
    below += here;
  }
  return bounds.back();
}

void Sample::value(const std::string& name, const std::string& help, const Labels& labels, double value,
                   const char* type) {
  if (!described_[name]) {
    describe(text_, name, help, type);
    described_[name] = true;
  }
  text_ += series(name, labels) + " " + number(value) + "\n";
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& family = families_[name];
  if (family.type.empty()) {
    family.help = help;
    family.type = "counter";
  }
  auto& slot = family.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& family = families_[name];
  if (family.type.empty()) {
    family.help = help;
    family.type = "histogram";
  }
  auto& slot = family.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>();
  return *slot;
}

void Registry::add_collector(std::function<void(Sample&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::render() const {
  std::string out;
  std::vector<std::function<void(Sample&)>> collectors;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, family] : families_) {
      describe(out, name, family.help, family.type);
      for (const auto& [labels, counter] : family.counters) out += series(name, labels) + " " + number(static_cast<double>(counter->value())) + "\n";
      for (const auto& [labels, histogram] : family.histograms) {
        const auto& bounds = Histogram::bounds_ms();
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          cumulative += histogram->bucket(i);
          Labels with_le = labels;
          with_le.emplace_back("le", i < bounds.size() ? number(bounds[i]) : "+Inf");
          out += series(name + "_bucket", with_le) + " " + number(static_cast<double>(cumulative)) + "\n";
        }
        out += series(name + "_sum", labels) + " " + number(histogram->sum_ms()) + "\n";
        out += series(name + "_count", labels) + " " + number(static_cast<double>(histogram->count())) + "\n";
      }
    }
    collectors = collectors_;
  }
  Sample sample;
  for (const auto& collect : collectors) collect(sample);
  return out + sample.text();
}

}  // namespace bulwark::metrics
