#include "storage/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace bulwark::storage {
namespace {

Error os_error(std::string_view what, const std::filesystem::path& path) {
  return make_error(ErrorKind::io, std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

File::~File() { close(); }

File::File(File&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.fd_ = -1; }

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

Result<File> File::open(const std::filesystem::path& path, Mode mode) {
  int flags = O_RDWR | O_CLOEXEC;
  if (mode == Mode::create_or_open) flags |= O_CREAT;
  if (mode == Mode::create_truncate) flags |= O_CREAT | O_TRUNC;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == ENOENT) return make_error(ErrorKind::not_found, "cannot open " + path.string() + ": no such file");
    return os_error("cannot open", path);
  }
  File file;
  file.fd_ = fd;
  file.path_ = path;
  return file;
}

Status File::read_exact(std::uint64_t offset, std::uint8_t* out, std::size_t n) const {
  std::size_t done = 0;
  while (done < n) {
    ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot read", path_);
    }
    if (got == 0) {
      return make_error(ErrorKind::corrupt, "unexpected end of " + path_.string() + " at byte " +
                                                std::to_string(offset + done));
    }
    done += static_cast<std::size_t>(got);
  }
  return Status::success();
}

Status File::write_all(std::uint64_t offset, ByteView data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot write", path_);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::success();
}

Status File::truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return os_error("cannot truncate", path_);
  return Status::success();
}

Status File::datasync() {
  if (::fdatasync(fd_) != 0) return os_error("cannot fdatasync", path_);
  return Status::success();
}

Result<std::uint64_t> File::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return os_error("cannot stat", path_);
  return static_cast<std::uint64_t>(st.st_size);
}

void File::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status sync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return os_error("cannot fsync directory", dir);
  return Status::success();
}

Status remove_file(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return os_error("cannot remove", path);
  return Status::success();
}

}  // namespace bulwark::storage
