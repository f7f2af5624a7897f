// Severities, the text report and the exit code of `bulwark doctor`.
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "doctor/doctor.h"

namespace bulwark::doctor {
namespace {

constexpr std::array<std::string_view, 5> kNames = {"info", "low", "medium", "high", "critical"};

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

std::string_view severity_name(Severity severity) { return kNames[static_cast<std::size_t>(severity)]; }

Result<Severity> parse_severity(std::string_view text) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (text == kNames[i] || upper(text) == upper(kNames[i])) return static_cast<Severity>(i);
  return make_error(ErrorKind::invalid_argument,
                    "'" + std::string(text) + "' is not a severity (info, low, medium, high, critical)");
}

std::string render_text(const std::vector<Finding>& findings) {
  std::vector<const Finding*> sorted;
  for (const auto& f : findings) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Finding* a, const Finding* b) { return a->severity > b->severity; });
  std::string out;
  std::array<int, 5> counts{};
  for (const Finding* f : sorted) {
    ++counts[static_cast<std::size_t>(f->severity)];
    out += fmt::format("{:<9} {}{}\n", upper(severity_name(f->severity)), f->check, f->where.empty() ? "" : "  " + f->where);
    out += fmt::format("          {}\n", f->message);
    if (!f->fix.empty()) out += fmt::format("          fix: {}\n", f->fix);
  }
  std::vector<std::string> parts;
  for (std::size_t i = kNames.size(); i-- > 0;)
    if (counts[i] > 0) parts.push_back(fmt::format("{} {}", counts[i], kNames[i]));
  out += findings.empty() ? "no findings\n" : fmt::format("{} finding(s): {}\n", findings.size(), fmt::join(parts, ", "));
  return out;
}

int exit_code(const std::vector<Finding>& findings, Severity fail_on) {
  return std::any_of(findings.begin(), findings.end(), [&](const Finding& f) { return f.severity >= fail_on; }) ? 1 : 0;
}

}  // namespace bulwark::doctor
