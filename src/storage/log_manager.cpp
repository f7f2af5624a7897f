#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>

#include "base/files.h"
#include "base/log.h"
#include "storage/env.h"
#include "storage/file.h"
#include "storage/log.h"
#include "storage/segment.h"

namespace bulwark::storage {
namespace {

constexpr const char* kLockFile = ".lock";
constexpr const char* kCleanShutdownFile = ".kafka_cleanshutdown";  // Kafka's name, so the layout stays Kafka's
constexpr const char* kRecoveryPointFile = "recovery-point-offset-checkpoint";
constexpr std::uint64_t kMinReservedDescriptors = 256;
constexpr std::int64_t kRecoveryPointIntervalMs = 60'000;  // Kafka's log.flush.offset.checkpoint.interval.ms
constexpr std::uint64_t kDescriptorsPerPartition = 3;  // the active segment's .log, .index and .timeindex

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string out;
  static const char* digits = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out.push_back(digits[v >> 4]);
    out.push_back(digits[v & 0xf]);
  }
  return out;
}

bool is_deleted_dir(const std::string& name) {
  // <topic>-<partition>.<uuid>-delete, as Kafka names partitions on their way out.
  return name.ends_with("-delete") && name.find('.') != std::string::npos;
}

}  // namespace

std::optional<TopicPartition> parse_partition_dir_name(const std::string& name) {
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  const std::string digits = name.substr(dash + 1);
  if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  TopicPartition tp;
  tp.topic = name.substr(0, dash);
  tp.partition = std::stoi(digits);
  return tp;
}

std::string partition_dir_name(const TopicPartition& tp) { return tp.topic + "-" + std::to_string(tp.partition); }

Result<DirectoryLock> DirectoryLock::acquire(const std::filesystem::path& dir) {
  if (auto made = make_data_directories(Env::posix(), dir); !made.ok()) {
    return make_error(ErrorKind::io, "log dir " + dir.string() + " is not usable: " + made.error().message);
  }
  const auto path = dir / kLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kDataFileMode);
  if (fd < 0) {
    return make_error(ErrorKind::io, "log dir " + dir.string() + " is not usable: cannot create " + path.string() +
                                         ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return make_error(ErrorKind::already_exists,
                        "log dir " + dir.string() + " is in use by another process (it holds the lock on " +
                            path.string() + "); two brokers must never share a log dir");
    }
    return make_error(ErrorKind::io, "cannot lock " + path.string() + ": " + std::strerror(error));
  }
  DirectoryLock lock;
  lock.fd_ = fd;
  return lock;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

namespace {

struct DescriptorBudget {
  std::uint64_t limit = 0;    // RLIMIT_NOFILE soft limit, after raising it
  std::uint64_t reserve = 0;  // kept for sockets, TLS files, metadata files
};

// Raises the soft limit to the hard one (what the process may use anyway) and sets the reserve.
DescriptorBudget descriptor_budget() {
  struct rlimit rl {};
  DescriptorBudget budget;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    budget.limit = 1024;
  } else {
    if (rl.rlim_cur != RLIM_INFINITY && (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur < rl.rlim_max)) {
      struct rlimit raised = rl;
      raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? std::max<rlim_t>(rl.rlim_cur, 1 << 20) : rl.rlim_max;
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        log::info("raised the open-file limit (RLIMIT_NOFILE) from {} to {}", rl.rlim_cur, raised.rlim_cur);
        rl = raised;
      }
    }
    budget.limit = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
  }
  budget.reserve = std::max<std::uint64_t>(kMinReservedDescriptors, budget.limit / 4);
  return budget;
}

std::size_t derived_cache_capacity(const DescriptorBudget& budget) {
  const std::uint64_t spare = budget.limit > budget.reserve ? budget.limit - budget.reserve : 0;
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(spare / 4, 16, 4096));
}

void check_descriptor_need(const DescriptorBudget& budget, std::size_t partitions, std::size_t cache) {
  const std::uint64_t need = kDescriptorsPerPartition * partitions + cache + budget.reserve;
  if (need <= budget.limit) return;
  log::warn("the open-file limit (ulimit -n, RLIMIT_NOFILE) is {}: {} partitions keep {} descriptors each open, up "
            "to {} more serve sealed segments and {} are kept for connections; raise it to at least {}",
            budget.limit, partitions, kDescriptorsPerPartition, cache, budget.reserve, need);
}

std::map<TopicPartition, std::int64_t> read_recovery_points(const std::filesystem::path& root) {
  auto text = read_file(root / kRecoveryPointFile);
  if (!text.ok()) return {};
  auto points = parse_offset_checkpoint(*text);
  if (!points) {
    log::warn("{}: unreadable recovery-point checkpoint; every segment will be CRC-checked",
              (root / kRecoveryPointFile).string());
    return {};
  }
  return *points;
}

}  // namespace

// Kafka's CheckpointFile reader: every line after the count is exactly "topic partition offset", and
// nothing follows the counted entries.
std::optional<std::map<TopicPartition, std::int64_t>> parse_offset_checkpoint(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  auto next_line = [&]() -> std::optional<std::istringstream> {
    if (!std::getline(in, line)) return std::nullopt;
    return std::istringstream(line);
  };
  auto version = next_line(), count_line = next_line();
  int v = -1;
  std::size_t count = 0;
  std::string rest;
  if (!version || !(*version >> v) || v != 0 || (*version >> rest)) return std::nullopt;
  if (!count_line || !(*count_line >> count) || (*count_line >> rest)) return std::nullopt;
  std::map<TopicPartition, std::int64_t> out;
  for (std::size_t i = 0; i < count; ++i) {
    auto entry = next_line();
    TopicPartition tp;
    std::int64_t offset = 0;
    if (!entry || !(*entry >> tp.topic >> tp.partition >> offset) || (*entry >> rest)) return std::nullopt;
    out[tp] = offset;
  }
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) return std::nullopt;
  if (out.size() != count) return std::nullopt;  // a partition listed twice
  return out;
}

std::string format_offset_checkpoint(const std::map<TopicPartition, std::int64_t>& offsets) {
  std::string text = "0\n" + std::to_string(offsets.size()) + "\n";
  for (const auto& [tp, offset] : offsets) text += tp.topic + " " + std::to_string(tp.partition) + " " + std::to_string(offset) + "\n";
  return text;
}

LogResult<std::unique_ptr<LogManager>> LogManager::open(std::vector<std::filesystem::path> log_dirs,
                                                        const LogConfig& default_config,
                                                        const LogManagerOptions& options) {
  if (log_dirs.empty()) return LogFailure(LogError::invalid_argument, "no log directories configured");
  Env* env = options.env ? options.env : Env::posix();
  const DescriptorBudget budget = descriptor_budget();
  auto cache = std::make_shared<FileCache>(options.max_open_segment_files ? options.max_open_segment_files
                                                                         : derived_cache_capacity(budget));
  std::unique_ptr<LogManager> manager(new LogManager(std::move(log_dirs), default_config));
  for (const auto& root : manager->log_dirs_) {
    auto lock = DirectoryLock::acquire(root);
    if (!lock.ok()) return LogFailure(lock.error());
    manager->locks_.push_back(std::move(*lock));
    auto context = std::make_shared<LogDirContext>(root, env, cache);
    manager->contexts_[root] = context;

    std::error_code ec;
    const bool clean = std::filesystem::exists(root / kCleanShutdownFile, ec);
    const auto recovery_points = clean ? std::map<TopicPartition, std::int64_t>{} : read_recovery_points(root);
    if (!clean) {
      log::info("log dir {}: no clean-shutdown marker; CRC-checking every segment above each partition's recovery "
                "point",
                root.string());
    }
    std::vector<std::filesystem::path> entries;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
      if (entry.is_directory()) entries.push_back(entry.path());
    }
    if (ec) return LogFailure(LogError::io, "log dir " + root.string() + " is not readable: " + ec.message());
    std::sort(entries.begin(), entries.end());
    for (const auto& path : entries) {
      const std::string name = path.filename().string();
      if (is_deleted_dir(name)) {
        log::info("removing {} left over from a partition deletion", path.string());
        std::filesystem::remove_all(path, ec);
        if (ec) log::warn("cannot remove {}: {}", path.string(), ec.message());
        continue;
      }
      auto tp = parse_partition_dir_name(name);
      if (!tp) continue;  // not a partition (lost+found, stray dirs)
      if (tp->topic == "__cluster_metadata") continue;  // the KRaft metadata log belongs to raft/
      if (manager->logs_.count(*tp)) {
        return LogFailure(LogError::already_exists,
                          "partition " + name + " exists in two log directories (second: " + root.string() + ")");
      }
      OpenOptions open_options;
      open_options.context = context;
      if (clean) {
        open_options.verify_crc_from = INT64_MAX;
      } else if (auto it = recovery_points.find(*tp); it != recovery_points.end()) {
        open_options.verify_crc_from = it->second;
      }
      auto log = PartitionLog::open(path, default_config, open_options);
      if (!log.ok()) return LogFailure(log.code(), "log dir " + root.string() + ": " + log.error().message);
      manager->logs_[*tp] = *log;
    }
    // From here on a crash is an unclean shutdown.
    if (clean) {
      if (auto removed = remove_file(env, root / kCleanShutdownFile); !removed.ok()) return LogFailure(removed.error());
      if (auto synced = sync_directory(env, root); !synced.ok()) return LogFailure(synced.error());
    }
  }
  check_descriptor_need(budget, manager->logs_.size(), cache->capacity());
  manager->budget_limit_ = budget.limit;
  manager->budget_reserve_ = budget.reserve;
  return manager;
}

LogManager::~LogManager() { close(); }

void LogManager::close() {
  std::map<TopicPartition, std::shared_ptr<PartitionLog>> logs;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    logs = logs_;
  }
  for (const auto& [_, log] : logs) log->close();
  if (auto written = write_recovery_points(); !written.ok()) log::warn("{}", written.error().message);
  for (const auto& [root, context] : contexts_) {
    if (context->offline()) continue;  // the next start recovers it fully
    if (auto marked = write_file_durably(context->env(), root / kCleanShutdownFile, ByteView()); !marked.ok()) {
      log::warn("cannot write the clean-shutdown marker: {}", marked.error().message);
    }
  }
}

LogStatus LogManager::write_recovery_points() {
  std::map<std::filesystem::path, std::vector<std::pair<TopicPartition, std::int64_t>>> by_dir;
  {
    std::lock_guard lock(mu_);
    for (const auto& [root, _] : contexts_) by_dir[root];
    for (const auto& [tp, log] : logs_) by_dir[log->dir().parent_path()].emplace_back(tp, log->recovery_point());
  }
  std::lock_guard lock(checkpoint_mu_);
  LogStatus result = LogDone{};
  for (const auto& [root, points] : by_dir) {
    auto context = contexts_.find(root);
    if (context == contexts_.end() || context->second->offline()) continue;
    const std::string text = format_offset_checkpoint({points.begin(), points.end()});
    if (last_checkpoint_[root] == text) continue;
    if (auto written = write_file_durably(context->second->env(), root / kRecoveryPointFile, as_bytes(text));
        !written.ok()) {
      if (result.ok()) result = LogFailure(written.error());
      continue;
    }
    last_checkpoint_[root] = text;
  }
  return result;
}

std::shared_ptr<LogDirContext> LogManager::context_for(const std::filesystem::path& root) const {
  auto it = contexts_.find(root);
  return it == contexts_.end() ? nullptr : it->second;
}

std::vector<std::filesystem::path> LogManager::offline_dirs() const {
  std::vector<std::filesystem::path> out;
  for (const auto& [root, context] : contexts_) {
    if (context->offline()) out.push_back(root);
  }
  return out;
}

std::size_t LogManager::max_open_segment_files() const {
  return contexts_.empty() ? 0 : contexts_.begin()->second->files()->capacity();
}

std::shared_ptr<PartitionLog> LogManager::get(const TopicPartition& tp) const {
  std::lock_guard lock(mu_);
  auto it = logs_.find(tp);
  return it == logs_.end() ? nullptr : it->second;
}

LogResult<std::shared_ptr<PartitionLog>> LogManager::get_or_create(const TopicPartition& tp, const LogConfig& config) {
  std::lock_guard lock(mu_);
  if (auto it = logs_.find(tp); it != logs_.end()) return it->second;
  if (tp.topic.empty() || tp.partition < 0 || tp.topic.find('/') != std::string::npos || tp.topic == "." ||
      tp.topic == "..") {
    return LogFailure(LogError::invalid_argument, "invalid topic partition '" + tp.topic + "' " +
                                                      std::to_string(tp.partition));
  }
  // The online log dir with the fewest partitions, as Kafka places new ones.
  std::map<std::filesystem::path, std::size_t> counts;
  for (const auto& dir : log_dirs_) counts[dir] = 0;
  for (const auto& [_, log] : logs_) ++counts[log->dir().parent_path()];
  const std::filesystem::path* best = nullptr;
  for (const auto& dir : log_dirs_) {
    auto context = context_for(dir);
    if (context && context->offline()) continue;
    if (!best || counts[dir] < counts[*best]) best = &dir;
  }
  if (!best) return LogFailure(LogError::io, "every log dir is offline");
  auto context = context_for(*best);
  OpenOptions options;
  options.context = context;
  auto log = PartitionLog::open(*best / partition_dir_name(tp), config, options);
  if (!log.ok()) return log.error();
  if (auto synced = sync_directory(context->env(), *best); !synced.ok()) {
    context->mark_offline(synced.error().message);
    return LogFailure(synced.error());
  }
  logs_[tp] = *log;
  if (!warned_descriptors_ &&
      kDescriptorsPerPartition * logs_.size() + context->files()->capacity() + budget_reserve_ > budget_limit_) {
    warned_descriptors_ = true;
    check_descriptor_need({budget_limit_, budget_reserve_}, logs_.size(), context->files()->capacity());
  }
  return *log;
}

LogStatus LogManager::remove(const TopicPartition& tp) {
  std::shared_ptr<PartitionLog> log;
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(tp);
    if (it == logs_.end()) {
      return LogFailure(LogError::not_found, "no partition " + partition_dir_name(tp) + " in the log dirs");
    }
    log = it->second;
    logs_.erase(it);
  }
  log->close();
  const auto dir = log->dir();
  auto doomed = dir;
  doomed += "." + random_hex(16) + "-delete";
  std::error_code ec;
  std::filesystem::rename(dir, doomed, ec);
  if (ec) return LogFailure(LogError::io, "cannot rename " + dir.string() + ": " + ec.message());
  if (auto context = context_for(dir.parent_path())) BULWARK_TRY(sync_directory(context->env(), dir.parent_path()));
  std::filesystem::remove_all(doomed, ec);
  if (ec) return LogFailure(LogError::io, "cannot remove " + doomed.string() + ": " + ec.message());
  return LogDone{};
}

std::vector<TopicPartition> LogManager::list() const {
  std::lock_guard lock(mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, _] : logs_) out.push_back(tp);
  return out;
}

LogStatus LogManager::maybe_flush_all(std::int64_t now_ms) {
  const auto logs = open_logs();
  LogStatus result = LogDone{};
  for (const auto& log : logs) {
    auto flushed = log->maybe_flush(now_ms);
    if (!flushed.ok() && result.ok()) result = flushed;
  }
  bool checkpoint_due = false;
  {
    std::lock_guard lock(checkpoint_mu_);
    checkpoint_due = last_checkpoint_ms_ < 0 || now_ms - last_checkpoint_ms_ >= kRecoveryPointIntervalMs;
    if (checkpoint_due) last_checkpoint_ms_ = now_ms;
  }
  if (checkpoint_due) {
    if (auto written = write_recovery_points(); !written.ok() && result.ok()) result = written;
  }
  return result;
}

std::vector<std::shared_ptr<PartitionLog>> LogManager::open_logs() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<PartitionLog>> logs;
  logs.reserve(logs_.size());
  for (const auto& [_, log] : logs_) logs.push_back(log);
  return logs;
}

std::size_t LogManager::expire_producers_all(std::int64_t now_ms, std::int64_t expiration_ms) {
  const auto logs = open_logs();
  std::size_t expired = 0;
  for (const auto& log : logs) expired += log->expire_producers(now_ms, expiration_ms);
  return expired;
}

LogStatus LogManager::enforce_retention_all(std::int64_t now_ms) {
  const auto logs = open_logs();
  LogStatus result = LogDone{};
  for (const auto& log : logs) {
    auto deleted = log->enforce_retention(now_ms);
    if (!deleted.ok() && result.ok()) result = deleted.error();
  }
  return result;
}

}  // namespace bulwark::storage
