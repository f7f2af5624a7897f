// A file descriptor of the storage layer, every call going through an Env: positioned reads and
// writes, truncation and fdatasync, every failure an Error naming the file. Private to storage/.
#pragma once

#include <cstdint>
#include <filesystem>

#include "base/bytes.h"
#include "base/result.h"
#include "storage/env.h"

namespace bulwark::storage {

class File {
 public:
  enum class Mode { open_existing, create_or_open, create_truncate };

  File() = default;
  ~File();
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  static Result<File> open(Env* env, const std::filesystem::path& path, Mode mode);

  bool is_open() const { return fd_ >= 0; }
  const std::filesystem::path& path() const { return path_; }
  // Exactly n bytes at offset, or an error (a short read is corrupt: the file ended early).
  Status read_exact(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  Status write_all(std::uint64_t offset, ByteView data);
  Status truncate(std::uint64_t size);
  Status datasync();
  Result<std::uint64_t> size() const;
  void close();
  // errno of the last failed write_all, truncate or datasync (callers hold the writer's lock).
  int last_error() const { return last_error_; }

 private:
  Env* env_ = nullptr;
  int fd_ = -1;
  int last_error_ = 0;
  std::filesystem::path path_;
};

// fsync of a directory, so a created, renamed or removed entry survives power loss.
Status sync_directory(Env* env, const std::filesystem::path& dir);
// unlink that treats a missing file as success.
Status remove_file(Env* env, const std::filesystem::path& path);
Status rename_file(Env* env, const std::filesystem::path& from, const std::filesystem::path& to);
// mkdir -p with kDataDirMode for what it creates.
Status make_data_directories(Env* env, const std::filesystem::path& path);
// Writes a small file crash-safely: temp file, write, fdatasync, rename, fsync of the directory.
Status write_file_durably(Env* env, const std::filesystem::path& path, ByteView contents);

}  // namespace bulwark::storage
