// An Env for tests that wraps a real one and injects the failures disks have: the Nth fdatasync or
// write failing with an errno (EIO, ENOSPC, EDQUOT, EROFS), writes failing until space returns, and
// power loss, which cuts every file back to what its last successful fdatasync made durable.
#pragma once

#include <chrono>
#include <map>
#include <mutex>

#include "storage/env.h"

namespace bulwark::storage {

class FaultEnv final : public Env {
 public:
  explicit FaultEnv(Env* base = Env::posix()) : base_(base) {}

  // The nth fdatasync from now (1 = the next one) fails with error; later ones succeed again.
  void fail_sync(int nth, int error);
  // The nth pwrite from now fails with error; persistent: that one and every later one, until clear().
  void fail_write(int nth, int error, bool persistent = false);
  void clear();
  // Every fdatasync from now takes at least this long (a slow disk), outside the Env's lock.
  void slow_syncs(std::chrono::milliseconds delay);
  // Power loss: every file written through this Env is cut back to its size at its last successful
  // fdatasync (never synced: empty), and every later call fails with EIO until clear().
  void power_loss();

  int syncs() const;   // successful fdatasync calls so far
  int writes() const;  // pwrite calls so far

  int open(const std::filesystem::path& path, int flags, unsigned mode) override;
  void close(int fd) override;
  ssize_t pread(int fd, void* out, std::size_t n, std::uint64_t offset) override;
  ssize_t pwrite(int fd, const void* data, std::size_t n, std::uint64_t offset) override;
  int ftruncate(int fd, std::uint64_t size) override;
  int fdatasync(int fd) override;
  int fsync_directory(const std::filesystem::path& dir) override;
  std::int64_t file_size(int fd) override;
  int rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  int unlink(const std::filesystem::path& path) override;
  int mkdir(const std::filesystem::path& path, unsigned mode) override;

 private:
  Env* base_;
  mutable std::mutex mu_;
  std::map<int, std::filesystem::path> open_;             // fd -> path
  std::map<std::filesystem::path, std::uint64_t> synced_;  // path -> durable size
  std::chrono::milliseconds sync_delay_{0};
  int sync_countdown_ = 0, sync_error_ = 0;
  int write_countdown_ = 0, write_error_ = 0;
  bool write_persistent_ = false, write_failing_ = false;
  bool dead_ = false;
  int syncs_ = 0, writes_ = 0;
};

}  // namespace bulwark::storage
