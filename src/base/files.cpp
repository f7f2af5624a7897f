#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bulwark {
namespace {

Error os_error(std::string_view what, const std::filesystem::path& path) {
  return make_error(ErrorKind::io, std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return make_error(ErrorKind::not_found, "cannot read " + path.string() + ": no such file");
    return os_error("cannot read", path);
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return os_error("cannot read", path);
  return contents.str();
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view contents, unsigned mode,
                         Overwrite overwrite) {
  std::error_code ec;
  if (overwrite == Overwrite::refuse && std::filesystem::exists(path, ec)) {
    return make_error(ErrorKind::already_exists, path.string() + " already exists (use --force to replace it)");
  }
  // A name of its own per call, so two threads writing the same file never share a temp file.
  static std::atomic<std::uint64_t> counter{0};
  auto temp = path;
  temp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return os_error("cannot create", temp);
  ::fchmod(fd, mode);  // the umask may have narrowed it; never widen beyond what was asked
  std::size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto err = os_error("cannot write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return err;
    }
    written += static_cast<std::size_t>(n);
  }
  // 1. the contents reach the disk, 2. the rename replaces the old file atomically, 3. the directory
  // entry itself is made durable: a crash at any point leaves the old file or the new one, whole.
  if (::fsync(fd) != 0) {
    auto err = os_error("cannot fsync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return err;
  }
  if (::close(fd) != 0) {
    auto err = os_error("cannot close", temp);
    ::unlink(temp.c_str());
    return err;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    auto err = os_error("cannot rename into", path);
    ::unlink(temp.c_str());
    return err;
  }
  return sync_parent_directory(path);
}

Status sync_parent_directory(const std::filesystem::path& path) {
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return os_error("cannot open directory", dir);
  const int rc = ::fsync(dir_fd);
  auto err = rc != 0 ? os_error("cannot fsync directory", dir) : Error{};
  ::close(dir_fd);
  if (rc != 0) return err;
  return Status::success();
}

Status make_directories(const std::filesystem::path& path, unsigned mode) {
  std::error_code ec;
  std::filesystem::path partial;
  for (const auto& part : path) {
    partial /= part;
    if (partial.empty() || std::filesystem::is_directory(partial, ec)) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) return os_error("cannot create directory", partial);
  }
  return Status::success();
}

}  // namespace bulwark
