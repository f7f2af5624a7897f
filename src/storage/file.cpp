#include "storage/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

namespace bulwark::storage {
namespace {

Error os_error(std::string_view what, const std::filesystem::path& path, int error) {
  return make_error(ErrorKind::io, std::string(what) + " " + path.string() + ": " + std::strerror(error));
}

}  // namespace

File::~File() { close(); }

File::File(File&& other) noexcept
    : env_(other.env_), fd_(other.fd_), last_error_(other.last_error_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close();
    env_ = other.env_;
    fd_ = other.fd_;
    last_error_ = other.last_error_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

Result<File> File::open(Env* env, const std::filesystem::path& path, Mode mode) {
  int flags = O_RDWR | O_CLOEXEC;
  if (mode == Mode::create_or_open) flags |= O_CREAT;
  if (mode == Mode::create_truncate) flags |= O_CREAT | O_TRUNC;
  int fd = env->open(path, flags, kDataFileMode);
  if (fd < 0) {
    if (fd == -ENOENT) return make_error(ErrorKind::not_found, "cannot open " + path.string() + ": no such file");
    return os_error("cannot open", path, -fd);
  }
  File file;
  file.env_ = env;
  file.fd_ = fd;
  file.path_ = path;
  return file;
}

Status File::read_exact(std::uint64_t offset, std::uint8_t* out, std::size_t n) const {
  std::size_t done = 0;
  while (done < n) {
    ssize_t got = env_->pread(fd_, out + done, n - done, offset + done);
    if (got < 0) return os_error("cannot read", path_, static_cast<int>(-got));
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
    ssize_t n = env_->pwrite(fd_, data.data() + done, data.size() - done, offset + done);
    if (n < 0) {
      last_error_ = static_cast<int>(-n);
      return os_error("cannot write", path_, last_error_);
    }
    if (n == 0) {  // pwrite makes no progress only when out of room
      last_error_ = ENOSPC;
      return os_error("cannot write", path_, last_error_);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::success();
}

Status File::truncate(std::uint64_t size) {
  if (int rc = env_->ftruncate(fd_, size); rc != 0) {
    last_error_ = -rc;
    return os_error("cannot truncate", path_, last_error_);
  }
  return Status::success();
}

Status File::datasync() {
  if (int rc = env_->fdatasync(fd_); rc != 0) {
    last_error_ = -rc;
    return os_error("cannot fdatasync", path_, last_error_);
  }
  return Status::success();
}

Result<std::uint64_t> File::size() const {
  std::int64_t size = env_->file_size(fd_);
  if (size < 0) return os_error("cannot stat", path_, static_cast<int>(-size));
  return static_cast<std::uint64_t>(size);
}

void File::close() {
  if (fd_ >= 0) env_->close(fd_);
  fd_ = -1;
}

Status sync_directory(Env* env, const std::filesystem::path& dir) {
  if (int rc = env->fsync_directory(dir); rc != 0) return os_error("cannot fsync directory", dir, -rc);
  return Status::success();
}

Status remove_file(Env* env, const std::filesystem::path& path) {
  if (int rc = env->unlink(path); rc != 0 && rc != -ENOENT) return os_error("cannot remove", path, -rc);
  return Status::success();
}

Status rename_file(Env* env, const std::filesystem::path& from, const std::filesystem::path& to) {
  if (int rc = env->rename(from, to); rc != 0) return os_error("cannot rename " + from.string() + " to", to, -rc);
  return Status::success();
}

Status make_data_directories(Env* env, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path partial;
  for (const auto& part : path) {
    partial /= part;
    if (partial.empty() || std::filesystem::is_directory(partial, ec)) continue;
    if (int rc = env->mkdir(partial, kDataDirMode); rc != 0 && rc != -EEXIST) {
      return os_error("cannot create directory", partial, -rc);
    }
  }
  return Status::success();
}

Status write_file_durably(Env* env, const std::filesystem::path& path, ByteView contents) {
  static std::atomic<std::uint64_t> counter{0};
  auto temp = path;
  temp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  {
    auto file = File::open(env, temp, File::Mode::create_truncate);
    if (!file.ok()) return file.error();
    Status written = file->write_all(0, contents);
    if (written.ok()) written = file->datasync();
    if (!written.ok()) {
      file->close();
      (void)env->unlink(temp);
      return written;
    }
  }
  if (auto renamed = rename_file(env, temp, path); !renamed.ok()) {
    (void)env->unlink(temp);
    return renamed;
  }
  return sync_directory(env, path.parent_path());
}

}  // namespace bulwark::storage
