// File access used everywhere outside the hot path. Writes are atomic and durable (temporary file,
// fsync, rename, fsync of the directory) so a crash never leaves a half-written keystore or config, and each file gets its mode at creation
// (private keys: 0600) rather than after, so a secret is never briefly world-readable.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace bulwark {

constexpr unsigned kPrivateFileMode = 0600;
constexpr unsigned kPublicFileMode = 0644;
constexpr unsigned kDataFileMode = 0640;  // broker data and metadata files: no world access
constexpr unsigned kDataDirMode = 0750;

enum class Overwrite { refuse, allow };

Result<std::string> read_file(const std::filesystem::path& path);
Status write_file_atomic(const std::filesystem::path& path, std::string_view contents,
                         unsigned mode = kPublicFileMode, Overwrite overwrite = Overwrite::refuse);
inline Status write_file_atomic(const std::filesystem::path& path, ByteView contents,
                                unsigned mode = kPublicFileMode, Overwrite overwrite = Overwrite::refuse) {
  return write_file_atomic(path, as_chars(contents), mode, overwrite);
}
// fsync of the directory holding path, so a created or renamed entry survives power loss.
Status sync_parent_directory(const std::filesystem::path& path);
// mkdir -p with the given mode for directories it creates.
Status make_directories(const std::filesystem::path& path, unsigned mode = 0755);

}  // namespace bulwark
