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

Result<std::unique_ptr<TopicRegistry>> TopicRegistry::open(const std::filesystem::path& file) {
  std::unique_ptr<TopicRegistry> registry(new TopicRegistry(file));
  auto text = read_file(file);
  if (!text.ok()) {
    if (text.error().kind == ErrorKind::not_found) return registry;
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
    registry->topics_[info.name] = std::move(info);
  }
  return registry;
}

Status TopicRegistry::save_locked() const {
  nlohmann::json topics = nlohmann::json::array();
  for (const auto& [name, info] : topics_) {
    topics.push_back({{"name", name},
                      {"id", topic_id_to_string(info.id)},
                      {"partitions", info.partitions},
                      {"replication_factor", info.replication_factor},
                      {"configs", info.configs}});
  }
  nlohmann::json doc = {{"version", 1}, {"topics", topics}};
  return write_file_atomic(file_, doc.dump(2) + "\n", kDataFileMode, Overwrite::allow);
}

std::optional<TopicInfo> TopicRegistry::find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return std::nullopt;
  return it->second;
}

std::optional<TopicInfo> TopicRegistry::find(const TopicId& id) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, info] : topics_)
    if (info.id == id) return info;
  return std::nullopt;
}

std::vector<TopicInfo> TopicRegistry::list() const {
  std::lock_guard lock(mu_);
  std::vector<TopicInfo> out;
  for (const auto& [name, info] : topics_) out.push_back(info);
  return out;
}

Result<TopicInfo> TopicRegistry::create(const std::string& name, std::int32_t partitions,
                                        std::int16_t replication_factor, std::map<std::string, std::string> configs) {
  std::lock_guard lock(mu_);
  if (topics_.count(name)) return make_error(ErrorKind::already_exists, "topic '" + name + "' already exists");
  TopicInfo info{name, random_topic_id(), partitions, replication_factor, std::move(configs)};
  topics_[name] = info;
  if (auto saved = save_locked(); !saved.ok()) {
    topics_.erase(name);
    return saved.error();
  }
  return info;
}

Status TopicRegistry::remove(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return make_error(ErrorKind::not_found, "topic '" + name + "' does not exist");
  auto removed = it->second;
  topics_.erase(it);
  if (auto saved = save_locked(); !saved.ok()) {
    topics_[name] = removed;
    return saved;
  }
  return Status::success();
}

Status TopicRegistry::set_partitions(const std::string& name, std::int32_t partitions) {
  std::lock_guard lock(mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return make_error(ErrorKind::not_found, "topic '" + name + "' does not exist");
  auto before = it->second.partitions;
  it->second.partitions = partitions;
  if (auto saved = save_locked(); !saved.ok()) {
    it->second.partitions = before;
    return saved;
  }
  return Status::success();
}

}  // namespace bulwark::broker
