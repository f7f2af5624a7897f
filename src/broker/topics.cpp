#include "broker/topics.h"

#include <openssl/rand.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "base/files.h"

namespace bulwark::broker {
namespace {

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::optional<TopicId> topic_id_from_string(const std::string& text) {
  if (text.size() != 22) return std::nullopt;
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const char* p = std::strchr(kBase64Url, c);
    if (!p || c == '\0') return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(p - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  if (out.size() != 16) return std::nullopt;
  TopicId id;
  std::copy(out.begin(), out.end(), id.begin());
  return id;
}

}  // namespace

TopicId random_topic_id() {
  TopicId id{};
  do {
    RAND_bytes(id.data(), static_cast<int>(id.size()));
  } while (id == TopicId{});  // the all-zero id means "no id" on the wire
  return id;
}

std::string topic_id_to_string(const TopicId& id) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (auto byte : id) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> invalid_topic_name_reason(const std::string& name) {
  if (name.empty()) return "the topic name is empty";
  if (name == "." || name == "..") return "the topic name cannot be '.' or '..'";
  if (name.size() > 249) return "the topic name is longer than 249 characters";
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return "the topic name may contain only ASCII letters, digits, '.', '_' and '-'";
  }
  return std::nullopt;
}

Result<std::vector<TopicInfo>> read_legacy_topic_registry(const std::filesystem::path& file) {
  std::vector<TopicInfo> topics;
  auto text = read_file(file);
  if (!text.ok()) {
    if (text.error().kind == ErrorKind::not_found) return topics;
    return text.error();
  }
  auto json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("topics") || !json["topics"].is_array())
    return make_error(ErrorKind::corrupt, file.string() + " is not a valid topic registry");
  for (const auto& t : json["topics"]) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("id") ||
        !t["id"].is_string() || !t.contains("partitions") || !t["partitions"].is_number_integer())
      return make_error(ErrorKind::corrupt, file.string() + " has a malformed topic entry");
    TopicInfo info;
    info.name = t["name"].get<std::string>();
    auto id = topic_id_from_string(t["id"].get<std::string>());
    if (!id) return make_error(ErrorKind::corrupt, file.string() + ": bad topic id for " + info.name);
    info.id = *id;
    info.partitions = t["partitions"].get<std::int32_t>();
    info.replication_factor = static_cast<std::int16_t>(t.value("replication_factor", 1));
    if (t.contains("configs") && t["configs"].is_object())
      for (const auto& [k, v] : t["configs"].items())
        if (v.is_string()) info.configs[k] = v.get<std::string>();
    topics.push_back(std::move(info));
  }
  return topics;
}

TopicInfo topic_info(const cluster::MetadataImage& image, const cluster::TopicImage& topic) {
  TopicInfo info;
  info.name = topic.name;
  info.id = topic.id;
  info.partitions = static_cast<std::int32_t>(topic.partitions.size());
  if (!topic.partitions.empty())
    info.replication_factor = static_cast<std::int16_t>(topic.partitions.begin()->second.replicas.size());
  if (const auto* configs = image.configs({cluster::ConfigResourceType::topic, topic.name}))
    for (const auto& [key, value] : *configs) info.configs[key] = value;
  return info;
}

std::optional<TopicInfo> TopicRegistry::find(const std::string& name) const {
  auto image = images_.current();
  if (const auto* topic = image->topic(name)) return topic_info(*image, *topic);
  return std::nullopt;
}

std::optional<TopicInfo> TopicRegistry::find(const TopicId& id) const {
  auto image = images_.current();
  if (const auto* topic = image->topic(id)) return topic_info(*image, *topic);
  return std::nullopt;
}

std::vector<TopicInfo> TopicRegistry::list() const {
  auto image = images_.current();
  std::vector<TopicInfo> out;
  for (const auto* topic : image->topics()) out.push_back(topic_info(*image, *topic));
  return out;
}

}  // namespace bulwark::broker
