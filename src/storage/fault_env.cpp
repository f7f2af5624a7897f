#include "storage/fault_env.h"

#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace bulwark::storage {

void FaultEnv::fail_sync(int nth, int error) {
  std::lock_guard lock(mu_);
  sync_countdown_ = nth;
  sync_error_ = error;
}

void FaultEnv::fail_write(int nth, int error, bool persistent) {
  std::lock_guard lock(mu_);
  write_countdown_ = nth;
  write_error_ = error;
  write_persistent_ = persistent;
  write_failing_ = false;
}

void FaultEnv::clear() {
  std::lock_guard lock(mu_);
  sync_countdown_ = write_countdown_ = 0;
  write_persistent_ = write_failing_ = false;
  dead_ = false;
}

void FaultEnv::power_loss() {
  std::lock_guard lock(mu_);
  for (const auto& [path, size] : synced_) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > size) {
      std::filesystem::resize_file(path, size, ec);
    }
  }
  dead_ = true;
}

int FaultEnv::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

int FaultEnv::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

int FaultEnv::open(const std::filesystem::path& path, int flags, unsigned mode) {
  std::lock_guard lock(mu_);
  if (dead_) return -EIO;
  const bool existed = std::filesystem::exists(path);
  int fd = base_->open(path, flags, mode);
  if (fd < 0) return fd;
  open_[fd] = path;
  if (!existed || (flags & O_TRUNC)) {
    synced_[path] = 0;
  } else if (!synced_.count(path)) {
    synced_[path] = static_cast<std::uint64_t>(std::max<std::int64_t>(base_->file_size(fd), 0));
  }
  return fd;
}

void FaultEnv::close(int fd) {
  std::lock_guard lock(mu_);
  open_.erase(fd);
  base_->close(fd);
}

ssize_t FaultEnv::pread(int fd, void* out, std::size_t n, std::uint64_t offset) {
  {
    std::lock_guard lock(mu_);
    if (dead_) return -EIO;
  }
  return base_->pread(fd, out, n, offset);
}

ssize_t FaultEnv::pwrite(int fd, const void* data, std::size_t n, std::uint64_t offset) {
  {
    std::lock_guard lock(mu_);
    if (dead_) return -EIO;
    ++writes_;
    if (write_failing_) return -write_error_;
    if (write_countdown_ > 0 && --write_countdown_ == 0) {
      write_failing_ = write_persistent_;
      return -write_error_;
    }
  }
  return base_->pwrite(fd, data, n, offset);
}

int FaultEnv::ftruncate(int fd, std::uint64_t size) {
  std::lock_guard lock(mu_);
  if (dead_) return -EIO;
  int rc = base_->ftruncate(fd, size);
  if (rc == 0) {
    auto it = open_.find(fd);
    if (it != open_.end()) synced_[it->second] = std::min(synced_[it->second], size);
  }
  return rc;
}

void FaultEnv::slow_syncs(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  sync_delay_ = delay;
}

int FaultEnv::fdatasync(int fd) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    delay = sync_delay_;
  }
  std::this_thread::sleep_for(delay);
  std::lock_guard lock(mu_);
  if (dead_) return -EIO;
  if (sync_countdown_ > 0 && --sync_countdown_ == 0) return -sync_error_;
  int rc = base_->fdatasync(fd);
  if (rc == 0) {
    ++syncs_;
    auto it = open_.find(fd);
    if (it != open_.end()) synced_[it->second] = static_cast<std::uint64_t>(std::max<std::int64_t>(base_->file_size(fd), 0));
  }
  return rc;
}

int FaultEnv::fsync_directory(const std::filesystem::path& dir) {
  {
    std::lock_guard lock(mu_);
    if (dead_) return -EIO;
  }
  return base_->fsync_directory(dir);
}

std::int64_t FaultEnv::file_size(int fd) {
  {
    std::lock_guard lock(mu_);
    if (dead_) return -EIO;
  }
  return base_->file_size(fd);
}

int FaultEnv::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::lock_guard lock(mu_);
  if (dead_) return -EIO;
  int rc = base_->rename(from, to);
  if (rc == 0) {
    auto it = synced_.find(from);
    if (it != synced_.end()) {
      synced_[to] = it->second;
      synced_.erase(from);
    }
  }
  return rc;
}

int FaultEnv::unlink(const std::filesystem::path& path) {
  std::lock_guard lock(mu_);
  if (dead_) return -EIO;
  synced_.erase(path);
  return base_->unlink(path);
}

int FaultEnv::mkdir(const std::filesystem::path& path, unsigned mode) {
  std::lock_guard lock(mu_);
  if (dead_) return -EIO;
  return base_->mkdir(path, mode);
}

}  // namespace bulwark::storage
