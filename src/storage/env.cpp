#include "storage/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace bulwark::storage {
namespace {

class PosixEnv final : public Env {
 public:
  int open(const std::filesystem::path& path, int flags, unsigned mode) override {
    for (;;) {
      int fd = ::open(path.c_str(), flags, mode);
      if (fd >= 0) return fd;
      if (errno != EINTR) return -errno;
    }
  }
  void close(int fd) override { ::close(fd); }
  ssize_t pread(int fd, void* out, std::size_t n, std::uint64_t offset) override {
    for (;;) {
      ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
      if (got >= 0) return got;
      if (errno != EINTR) return -errno;
    }
  }
  ssize_t pwrite(int fd, const void* data, std::size_t n, std::uint64_t offset) override {
    for (;;) {
      ssize_t done = ::pwrite(fd, data, n, static_cast<off_t>(offset));
      if (done >= 0) return done;
      if (errno != EINTR) return -errno;
    }
  }
  int ftruncate(int fd, std::uint64_t size) override {
    return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : -errno;
  }
  // Never retried: after a failed fdatasync the kernel may have dropped the dirty pages and a second
  // call can succeed without the data being on disk (PostgreSQL's "fsyncgate").
  int fdatasync(int fd) override { return ::fdatasync(fd) == 0 ? 0 : -errno; }
  int fsync_directory(const std::filesystem::path& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = ::fsync(fd) == 0 ? 0 : -errno;
    ::close(fd);
    return rc;
  }
  std::int64_t file_size(int fd) override {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return -errno;
    return static_cast<std::int64_t>(st.st_size);
  }
  int rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : -errno;
  }
  int unlink(const std::filesystem::path& path) override { return ::unlink(path.c_str()) == 0 ? 0 : -errno; }
  int mkdir(const std::filesystem::path& path, unsigned mode) override {
    return ::mkdir(path.c_str(), mode) == 0 ? 0 : -errno;
  }
};

}  // namespace

Env* Env::posix() {
  static PosixEnv env;
  return &env;
}

}  // namespace bulwark::storage
