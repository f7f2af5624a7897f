#include "cluster/client_quotas.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace bulwark::cluster {
namespace {

namespace msg = wire::msg;

constexpr std::int16_t kInvalidRequest = 42;
constexpr std::int16_t kUnsupportedVersion = 35;

// Kafka's QuotaConfigs: the keys per entity kind, and which of them are LONG (whole numbers).
struct QuotaKey {
  const char* name;
  bool whole;
};
constexpr QuotaKey kUserClientKeys[] = {
    {"producer_byte_rate", true},
    {"consumer_byte_rate", true},
    {"request_percentage", false},
    {"controller_mutation_rate", false},
};
constexpr QuotaKey kIpKeys[] = {{"connection_creation_rate", true}};

struct Refusal {
  std::int16_t code = 0;
  std::string message;
};

template <class EntityData>
Result<ClientQuotaEntity> validated_entity(const std::vector<EntityData>& entity) {
  if (entity.empty()) return make_error(ErrorKind::invalid_argument, "Invalid empty client quota entity");
  ClientQuotaEntity out;
  std::set<std::string> types;
  for (const auto& e : entity) {
    if (!types.insert(e.entity_type).second)
      return make_error(ErrorKind::invalid_argument,
                        "Invalid empty client quota entity, duplicate entity entry " + e.entity_type);
    if (e.entity_type != "user" && e.entity_type != "client-id" && e.entity_type != "ip")
      return make_error(ErrorKind::unsupported, "Unhandled client quota entity type: " + e.entity_type);
    if (e.entity_name && e.entity_name->empty())
      return make_error(ErrorKind::invalid_argument, "Empty " + e.entity_type + " not supported");
    out.emplace_back(e.entity_type, e.entity_name);
  }
  if (types.contains("ip") && types.size() > 1)
    return make_error(ErrorKind::invalid_argument,
                      "Invalid quota entity combination, IP quota entities cannot be combined with any other entity types");
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> invalid_op(const ClientQuotaEntity& entity, const msg::AlterClientQuotasRequest::OpData& op) {
  const bool ip = entity.front().first == "ip";
  const QuotaKey* found = nullptr;
  auto look = [&](const auto& keys) {
    for (const auto& k : keys)
      if (op.key == k.name) found = &k;
  };
  if (ip) look(kIpKeys);
  else look(kUserClientKeys);
  if (!found) return "Invalid configuration key " + op.key;
  if (op.remove) return std::nullopt;
  if (!std::isfinite(op.value)) return "Configuration " + op.key + " must be a finite number";
  constexpr double kEpsilon = 1e-6;
  if (found->whole && std::abs(std::floor(op.value + kEpsilon) - op.value) > kEpsilon)
    return "Configuration " + op.key + " must be a Long value";
  return std::nullopt;
}

std::vector<rec::ClientQuotaRecord::EntityData> record_entity(const ClientQuotaEntity& entity) {
  std::vector<rec::ClientQuotaRecord::EntityData> out;
  for (const auto& [type, name] : entity) out.push_back({type, name, {}});
  return out;
}

bool matches(const ClientQuotaEntity& entity, const msg::DescribeClientQuotasRequest& request) {
  for (const auto& c : request.components) {
    auto it = std::find_if(entity.begin(), entity.end(), [&c](const auto& e) { return e.first == c.entity_type; });
    if (it == entity.end()) return false;
    if (c.match_type == 0 && it->second != c.match) return false;
    if (c.match_type == 1 && it->second.has_value()) return false;
  }
  return !request.strict || entity.size() == request.components.size();
}

}  // namespace

Decision<msg::AlterClientQuotasResponse> alter_client_quotas(const MetadataImage& image,
                                                             const msg::AlterClientQuotasRequest& request) {
  Decision<msg::AlterClientQuotasResponse> out;
  const auto& current = image.client_quotas();
  for (const auto& entry : request.entries) {
    auto& result = out.response.entries.emplace_back();
    for (const auto& e : entry.entity) result.entity.push_back({e.entity_type, e.entity_name, {}});
    result.error_message = std::nullopt;
    auto entity = validated_entity(entry.entity);
    std::optional<std::string> why;
    if (!entity.ok()) {
      result.error_code = entity.error().kind == ErrorKind::unsupported ? kUnsupportedVersion : kInvalidRequest;
      result.error_message = entity.error().message;
      continue;
    }
    for (const auto& op : entry.ops)
      if (!why) why = invalid_op(*entity, op);
    if (why) {
      result.error_code = kInvalidRequest;
      result.error_message = *why;
      continue;
    }
    if (request.validate_only) continue;
    const auto existing = current.find(*entity);
    for (const auto& op : entry.ops) {
      const bool present = existing != current.end() && existing->second.contains(op.key);
      if (op.remove && !present) continue;  // nothing to remove
      rec::ClientQuotaRecord r;
      r.entity = record_entity(*entity);
      r.key = op.key;
      r.value = op.remove ? 0.0 : op.value;
      r.remove = op.remove;
      out.records.push_back(make_record(std::move(r)));
    }
  }
  return out;
}

msg::DescribeClientQuotasResponse describe_client_quotas(const MetadataImage& image,
                                                         const msg::DescribeClientQuotasRequest& request) {
  msg::DescribeClientQuotasResponse response;
  response.error_message = std::nullopt;
  std::set<std::string> types;
  auto refuse = [&response](std::string message) {
    response.error_code = kInvalidRequest;
    response.error_message = std::move(message);
    response.entries = std::nullopt;
    return response;
  };
  for (const auto& c : request.components) {
    if (c.match_type < 0 || c.match_type > 2) return refuse("Unknown match type " + std::to_string(c.match_type));
    if (!types.insert(c.entity_type).second) return refuse("Duplicate " + c.entity_type + " filter component entity type");
  }
  auto& entries = response.entries.emplace();
  for (const auto& [entity, values] : image.client_quotas()) {
    if (!matches(entity, request)) continue;
    auto& entry = entries.emplace_back();
    for (const auto& [type, name] : entity) entry.entity.push_back({type, name, {}});
    for (const auto& [key, value] : values) entry.values.push_back({key, value, {}});
  }
  return response;
}

bool image_has_client_quotas(const MetadataImage& image, const msg::AlterClientQuotasRequest& request,
                             const msg::AlterClientQuotasResponse& response) {
  if (request.validate_only) return true;
  const auto& quotas = image.client_quotas();
  for (std::size_t i = 0; i < request.entries.size() && i < response.entries.size(); ++i) {
    if (response.entries[i].error_code != 0) continue;
    auto entity = validated_entity(request.entries[i].entity);
    if (!entity.ok()) continue;
    const auto found = quotas.find(*entity);
    for (const auto& op : request.entries[i].ops) {
      const bool present = found != quotas.end() && found->second.contains(op.key);
      if (op.remove ? present : (!present || found->second.at(op.key) != op.value)) return false;
    }
  }
  return true;
}

}  // namespace bulwark::cluster
