// The one boundary between the storage layer and the operating system's file calls (LevelDB's Env):
// open, positioned read and write, truncate, fdatasync, rename, directory fsync, unlink, mkdir, lock.
// Env::posix() is the real one; FaultEnv (storage/fault_env.h) wraps it to inject failures in tests.
// Every call returns the errno it failed with (0 on success) so callers can tell ENOSPC from EIO.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>

#include "base/files.h"

namespace bulwark::storage {

// Data dirs 0750 and data files 0640 (kDataDirMode, kDataFileMode in base/files.h): no world access.

class Env {
 public:
  virtual ~Env() = default;

  // Returns a descriptor or -errno. flags as open(2).
  virtual int open(const std::filesystem::path& path, int flags, unsigned mode) = 0;
  virtual void close(int fd) = 0;
  // Bytes read (0 at end of file) or -errno; EINTR is retried inside.
  virtual ssize_t pread(int fd, void* out, std::size_t n, std::uint64_t offset) = 0;
  // Bytes written (possibly fewer than n) or -errno.
  virtual ssize_t pwrite(int fd, const void* data, std::size_t n, std::uint64_t offset) = 0;
  virtual int ftruncate(int fd, std::uint64_t size) = 0;
  virtual int fdatasync(int fd) = 0;
  virtual int fsync_directory(const std::filesystem::path& dir) = 0;
  // File size or -errno.
  virtual std::int64_t file_size(int fd) = 0;
  virtual int rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual int unlink(const std::filesystem::path& path) = 0;
  virtual int mkdir(const std::filesystem::path& path, unsigned mode) = 0;

  static Env* posix();
};

// True for the errors that mean "no room" rather than "the device failed": the write did not happen
// and can be tried again when space returns.
inline bool is_out_of_space(int error) {
  return error == ENOSPC || error == EDQUOT;
}

}  // namespace bulwark::storage
