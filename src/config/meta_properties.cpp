#include "config/meta_properties.h"

#include <openssl/rand.h>

#include <ctime>
#include <system_error>

#include "base/files.h"
#include "base/log.h"

namespace bulwark::config {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string trim(std::string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::string encode_uuid(const std::array<std::uint8_t, 16>& b) {
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= b.size(); i += 3) {
    std::uint32_t v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  std::uint32_t v = b[i] << 16;  // one byte left (16 = 5 * 3 + 1)
  out += kAlphabet[(v >> 18) & 63];
  out += kAlphabet[(v >> 12) & 63];
  return out;
}

Result<std::array<std::uint8_t, 16>> decode_uuid(std::string_view text) {
  std::string_view s = text;
  if (s.size() == 24 && s.ends_with("==")) s.remove_suffix(2);
  auto bad = [&](const std::string& why) {
    return make_error(ErrorKind::invalid_argument,
                      "'" + std::string(text) + "' is not a valid Kafka UUID (" + why +
                          "); make one with `bulwark storage random-uuid`");
  };
  if (s.size() != 22) return bad("it must be 22 characters of base64url, it has " + std::to_string(text.size()));
  std::array<std::uint8_t, 16> out{};
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t n = 0;
  for (char c : s) {
    int v = decode_char(c);
    if (v < 0) return bad(std::string("'") + c + "' is not a base64url character");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<std::uint8_t>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return bad("its last character carries bits beyond 16 bytes");
  return out;
}

std::string random_uuid() {
  while (true) {
    std::array<std::uint8_t, 16> b{};
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) continue;
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // java.util.UUID.randomUUID: version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // IETF variant
    std::string s = encode_uuid(b);
    // Kafka reserves the ids 0..99 (all zero but the last byte) and ids whose text starts with '-'.
    bool reserved = true;
    for (int i = 0; i < 15; ++i) reserved = reserved && b[i] == 0;
    reserved = reserved && b[15] < 100;
    if (!reserved && s[0] != '-') return s;
  }
}

std::string render_meta_properties(const MetaProperties& meta, std::chrono::system_clock::time_point now) {
  // Java's Properties.store with comment "": "#", then Date.toString(), e.g. "Mon Nov 23 20:06:16 UTC 2026".
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof(date), "%a %b %d %H:%M:%S UTC %Y", &tm);
  std::string out = "#\n#" + std::string(date) + "\n";
  out += "cluster.id=" + meta.cluster_id + "\n";
  if (!meta.directory_id.empty()) out += "directory.id=" + meta.directory_id + "\n";
  if (meta.node_id) out += "node.id=" + std::to_string(*meta.node_id) + "\n";
  out += "version=" + std::to_string(meta.version) + "\n";
  return out;
}

Result<MetaProperties> parse_meta_properties(std::string_view text, std::string source) {
  auto props = parse_properties(text, source);
  if (!props) return props.error();
  MetaProperties meta;
  auto version = props->get("version");
  if (!version) return make_error(ErrorKind::corrupt, source + ": no version");
  if (trim(*version) == "0") {
    return make_error(ErrorKind::unsupported, source + ": version=0 is a ZooKeeper-mode directory; Bulwark runs "
                                                       "in KRaft mode only (version=1)");
  }
  if (trim(*version) != "1") return make_error(ErrorKind::corrupt, source + ": unknown version '" + *version + "'");
  auto cluster = props->get("cluster.id");
  if (!cluster || trim(*cluster).empty()) return make_error(ErrorKind::corrupt, source + ": no cluster.id");
  meta.cluster_id = trim(*cluster);
  if (auto d = decode_uuid(meta.cluster_id); !d) {
    return make_error(ErrorKind::corrupt, source + ": cluster.id: " + d.error().message);
  }
  auto node = props->get("node.id");
  if (!node) return make_error(ErrorKind::corrupt, source + ": no node.id (required for version=1)");
  {
    std::string n = trim(*node);
    char* end = nullptr;
    long v = std::strtol(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || v < 0 || v > INT32_MAX) {
      return make_error(ErrorKind::corrupt, source + ": node.id '" + n + "' is not a node id");
    }
    meta.node_id = static_cast<std::int32_t>(v);
  }
  if (auto d = props->get("directory.id")) meta.directory_id = trim(*d);
  return meta;
}

DirectoryStatus inspect_directory(const std::filesystem::path& dir) {
  DirectoryStatus st;
  st.path = dir.string();
  std::error_code ec;
  auto status = std::filesystem::status(dir, ec);
  if (!std::filesystem::exists(status)) {
    st.state = DirectoryState::missing;
    return st;
  }
  if (!std::filesystem::is_directory(status)) {
    st.state = DirectoryState::broken;
    st.problem = st.path + " exists but is not a directory";
    return st;
  }
  auto file = dir / kMetaPropertiesFile;
  if (!std::filesystem::exists(file, ec)) {
    st.state = DirectoryState::not_formatted;
    return st;
  }
  auto text = read_file(file);
  if (!text) {
    st.state = DirectoryState::broken;
    st.problem = text.error().message;
    return st;
  }
  auto meta = parse_meta_properties(*text, file.string());
  if (!meta) {
    st.state = DirectoryState::broken;
    st.problem = meta.error().message;
    return st;
  }
  st.state = DirectoryState::formatted;
  st.meta = std::move(*meta);
  return st;
}

std::vector<std::string> storage_directories(const BrokerConfig& config) {
  std::vector<std::string> dirs = config.log_dirs;
  if (config.metadata_log_dir) {
    auto norm = std::filesystem::path(*config.metadata_log_dir).lexically_normal();
    bool present = false;
    for (const auto& d : dirs) present = present || std::filesystem::path(d).lexically_normal() == norm;
    if (!present) dirs.push_back(*config.metadata_log_dir);
  }
  return dirs;
}

Result<FormatOutcome> format_storage(const BrokerConfig& config, std::string_view cluster_id, bool ignore_formatted) {
  if (auto id = decode_uuid(cluster_id); !id) {
    return make_error(ErrorKind::invalid_argument, "cluster id: " + id.error().message);
  }
  if (config.node_id < 0) {
    return make_error(ErrorKind::invalid_argument, config.source + ": node.id must be set to format storage");
  }
  FormatOutcome outcome;
  std::vector<std::string> to_format;
  for (const auto& dir : storage_directories(config)) {
    auto st = inspect_directory(dir);
    switch (st.state) {
      case DirectoryState::missing:
      case DirectoryState::not_formatted:
        to_format.push_back(dir);
        break;
      case DirectoryState::broken:
        return make_error(ErrorKind::corrupt, "cannot format " + dir + ": " + st.problem);
      case DirectoryState::formatted:
        if (st.meta->cluster_id != cluster_id) {
          return make_error(ErrorKind::already_exists,
                            "Log directory " + dir + " is already formatted for another cluster: its cluster.id is " +
                                st.meta->cluster_id + ", not " + std::string(cluster_id));
        }
        if (st.meta->node_id != config.node_id) {
          return make_error(ErrorKind::already_exists,
                            "Log directory " + dir + " is already formatted for node.id " +
                                std::to_string(st.meta->node_id.value_or(-1)) + ", but this config has node.id " +
                                std::to_string(config.node_id));
        }
        if (!ignore_formatted) {
          return make_error(ErrorKind::already_exists,
                            "Log directory " + dir +
                                " is already formatted. Use --ignore-formatted to ignore this directory and format "
                                "the others.");
        }
        outcome.skipped.push_back(dir);
        break;
    }
  }
  auto now = std::chrono::system_clock::now();
  for (const auto& dir : to_format) {
    BULWARK_TRY(make_directories(dir, kDataDirMode));
    MetaProperties meta;
    meta.cluster_id = std::string(cluster_id);
    meta.node_id = config.node_id;
    meta.directory_id = random_uuid();
    BULWARK_TRY(write_file_atomic(std::filesystem::path(dir) / kMetaPropertiesFile, render_meta_properties(meta, now)));
    outcome.formatted.push_back(dir);
  }
  return outcome;
}

namespace {

// ZooKeeper-mode Kafka writes meta.properties on first start; a ZooKeeper-mode configuration run by
// Bulwark does the same, as `bulwark storage format` would (version 1, node.id, directory.id), so the
// directories stay valid if the configuration later moves to KRaft mode. New directories join the
// cluster of those already formatted; with none, the cluster gets a random id. A directory that is
// unreadable or belongs to another cluster or node stops this before anything is written.
Status format_on_first_start(const BrokerConfig& config) {
  std::string cluster_id;
  bool unformatted = false;
  for (const auto& dir : storage_directories(config)) {
    auto st = inspect_directory(dir);
    if (st.state == DirectoryState::missing || st.state == DirectoryState::not_formatted) unformatted = true;
    if (st.state == DirectoryState::formatted && cluster_id.empty()) cluster_id = st.meta->cluster_id;
  }
  if (!unformatted) return Status::success();
  if (cluster_id.empty()) cluster_id = random_uuid();
  auto outcome = format_storage(config, cluster_id, /*ignore_formatted=*/true);
  if (!outcome) return outcome.error();
  for (const auto& dir : outcome->formatted) {
    log::info("formatted {} for cluster {} (ZooKeeper-mode configuration: Kafka creates meta.properties on first "
              "start)",
              dir, cluster_id);
  }
  return Status::success();
}

}  // namespace

Result<MetaProperties> check_storage(const BrokerConfig& config) {
  if (config.zookeeper_mode) BULWARK_TRY(format_on_first_start(config));
  std::optional<MetaProperties> first;
  std::string first_dir;
  std::vector<std::string> seen_directory_ids;
  for (const auto& dir : storage_directories(config)) {
    auto st = inspect_directory(dir);
    if (st.state == DirectoryState::missing || st.state == DirectoryState::not_formatted) {
      return make_error(ErrorKind::not_found,
                        "log directory " + dir + " is not formatted (" +
                            (st.state == DirectoryState::missing ? "it does not exist" : "no meta.properties") +
                            "); run `bulwark storage format -t <cluster-id> -c " + config.source + "` first");
    }
    if (st.state == DirectoryState::broken) return make_error(ErrorKind::corrupt, st.problem);
    const auto& meta = *st.meta;
    if (meta.node_id != config.node_id) {
      return make_error(ErrorKind::invalid_argument,
                        dir + "/meta.properties has node.id " + std::to_string(meta.node_id.value_or(-1)) +
                            ", but " + config.source + " has node.id " + std::to_string(config.node_id));
    }
    if (!meta.directory_id.empty()) {
      for (const auto& id : seen_directory_ids) {
        if (id == meta.directory_id) {
          return make_error(ErrorKind::corrupt, dir + "/meta.properties has directory.id " + id +
                                                    ", the same as another log directory (copied directory?)");
        }
      }
      seen_directory_ids.push_back(meta.directory_id);
    }
    if (!first) {
      first = meta;
      first_dir = dir;
    } else if (first->cluster_id != meta.cluster_id) {
      return make_error(ErrorKind::invalid_argument, "log directories belong to different clusters: " + first_dir +
                                                         " has cluster.id " + first->cluster_id + ", " + dir +
                                                         " has " + meta.cluster_id);
    }
  }
  if (!first) return make_error(ErrorKind::invalid_argument, config.source + ": no log directory configured");
  return *first;
}

}  // namespace bulwark::config
