// kafka-configs.sh's quota options (ConfigCommand's client-quota paths) and the quota round trips.
#include "client/quotas.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "wire/generated/alter_client_quotas.h"
#include "wire/generated/describe_client_quotas.h"

namespace bulwark::client {
namespace {

Error usage(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

// users -> user, clients -> client-id, ips -> ip (ConfigCommand's ConfigType to ClientQuotaEntity).
Result<std::string> protocol_type(const std::string& type) {
  if (type == "users" || type == "user") return std::string("user");
  if (type == "clients" || type == "client") return std::string("client-id");
  if (type == "ips" || type == "ip") return std::string("ip");
  return usage(fmt::format("--entity-type '{}' has no client quotas: use users, clients or ips (topics and brokers are "
                           "`bulwark configs`' business)",
                           type));
}

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, text.find_last_not_of(" \t") - begin + 1));
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find(',', start), text.size());
    if (auto part = trim(std::string_view(text).substr(start, end - start)); !part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

std::string shortest(double value, std::chars_format format) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, format);
  return ec == std::errc() ? std::string(buf, end) : fmt::format("{}", value);
}

// "Cluster authorization failed." as the tool says it, with the code's name.
Error broker_error(std::int16_t code, const std::optional<std::string>& message) {
  return make_error(ErrorKind::io, error_name(code) + (message && !message->empty() ? ": " + *message : ""));
}

}  // namespace

Result<QuotaEntity> quota_entity(const QuotaEntityArgs& args) {
  if (args.types.empty()) return usage("--entity-type is required (users, clients or ips)");
  if (args.names.size() != args.types.size())
    return usage("every --entity-type needs an --entity-name or --entity-default after it");
  QuotaEntity entity;
  for (std::size_t i = 0; i < args.types.size(); ++i) {
    auto type = protocol_type(args.types[i]);
    if (!type) return type.error();
    if (args.names[i] && args.names[i]->empty()) return usage("an --entity-name must not be empty (use --entity-default)");
    entity.emplace_back(*type, args.names[i]);
  }
  return entity;
}

Result<std::vector<QuotaFilterComponent>> quota_filter(const QuotaEntityArgs& args) {
  if (args.types.empty()) return usage("--entity-type is required (users, clients or ips)");
  if (args.names.size() > args.types.size()) return usage("more --entity-name/--entity-default than --entity-type");
  std::vector<QuotaFilterComponent> filter;
  for (std::size_t i = 0; i < args.types.size(); ++i) {
    auto type = protocol_type(args.types[i]);
    if (!type) return type.error();
    if (i >= args.names.size()) filter.push_back({*type, 2, std::nullopt});
    else if (!args.names[i]) filter.push_back({*type, 1, std::nullopt});
    else filter.push_back({*type, 0, args.names[i]});
  }
  return filter;
}

Result<std::vector<QuotaOp>> quota_ops(const std::string& add_config, const std::vector<std::string>& delete_config) {
  std::vector<QuotaOp> ops;
  for (const auto& pair : split_commas(add_config)) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) return usage(fmt::format("--add-config '{}' is not key=value", pair));
    const std::string key = trim(std::string_view(pair).substr(0, eq));
    const std::string text = trim(std::string_view(pair).substr(eq + 1));
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
      return usage(fmt::format("Cannot parse quota configuration value for {}: {}", key, text));
    ops.push_back({key, value});
  }
  for (const auto& list : delete_config)
    for (const auto& key : split_commas(list)) ops.push_back({key, std::nullopt});
  if (ops.empty()) return usage("--alter needs --add-config or --delete-config");
  return ops;
}

std::string java_double(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  const double magnitude = std::abs(value);
  if (value == 0 || (magnitude >= 1e-3 && magnitude < 1e7)) {
    auto text = shortest(value, std::chars_format::fixed);
    return text.find('.') == std::string::npos ? text + ".0" : text;
  }
  auto text = shortest(value, std::chars_format::scientific);  // "1e+07", "1.5e-05"
  const auto e = text.find('e');
  std::string mantissa = text.substr(0, e);
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  int exponent = std::stoi(text.substr(e + 1));
  return mantissa + "E" + std::to_string(exponent);
}

std::string render_quota_entity(const QuotaEntity& entity) {
  std::string out;
  // Kafka's order: user, client id, ip.
  for (const char* type : {"user", "client-id", "ip"}) {
    auto it = std::find_if(entity.begin(), entity.end(), [type](const auto& e) { return e.first == type; });
    if (it == entity.end()) continue;
    const std::string shown = it->first == "user" ? "user-principal" : it->first;
    if (!out.empty()) out += ", ";
    out += it->second ? fmt::format("{} '{}'", shown, *it->second) : "the default " + shown;
  }
  return out;
}

std::string render_quota_line(const QuotaEntity& entity, const std::vector<std::pair<std::string, double>>& values) {
  std::string entries;
  for (const auto& [key, value] : values) entries += (entries.empty() ? "" : ", ") + key + "=" + java_double(value);
  return fmt::format("Quota configs for {} are {}", render_quota_entity(entity), entries);
}

std::string render_alter_done(const QuotaEntityArgs& args) {
  const std::string& type = args.types.front();
  if (args.names.empty() || !args.names.front())
    return fmt::format("Completed updating default config for {} in the cluster.", type);
  const std::string singular = type.ends_with('s') ? type.substr(0, type.size() - 1) : type;
  return fmt::format("Completed updating config for {} {}.", singular, *args.names.front());
}

Status alter_client_quotas(AdminConnection& connection, const QuotaEntity& entity, const std::vector<QuotaOp>& ops) {
  wire::msg::AlterClientQuotasRequest request;
  auto& entry = request.entries.emplace_back();
  for (const auto& [type, name] : entity) entry.entity.push_back({type, name, {}});
  for (const auto& op : ops) entry.ops.push_back({op.key, op.value.value_or(0.0), !op.value.has_value(), {}});
  auto response = connection.call<wire::msg::AlterClientQuotasRequest, wire::msg::AlterClientQuotasResponse>(request);
  if (!response) return response.error();
  if (response->entries.size() != 1)
    return make_error(ErrorKind::corrupt, "the broker answered AlterClientQuotas for another number of entities");
  const auto& result = response->entries.front();
  if (result.error_code != 0) return broker_error(result.error_code, result.error_message);
  return Status::success();
}

Result<std::vector<QuotaEntry>> describe_client_quotas(AdminConnection& connection,
                                                       const std::vector<QuotaFilterComponent>& filter, bool strict) {
  wire::msg::DescribeClientQuotasRequest request;
  for (const auto& c : filter) request.components.push_back({c.entity_type, c.match_type, c.match, {}});
  request.strict = strict;
  auto response = connection.call<wire::msg::DescribeClientQuotasRequest, wire::msg::DescribeClientQuotasResponse>(request);
  if (!response) return response.error();
  if (response->error_code != 0) return broker_error(response->error_code, response->error_message);
  std::vector<QuotaEntry> out;
  for (const auto& e : response->entries.value_or(std::vector<wire::msg::DescribeClientQuotasResponse::EntryData>{})) {
    QuotaEntry entry;
    for (const auto& part : e.entity) entry.entity.emplace_back(part.entity_type, part.entity_name);
    for (const auto& v : e.values) entry.values.emplace_back(v.key, v.value);
    std::sort(entry.values.begin(), entry.values.end());
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace bulwark::client
