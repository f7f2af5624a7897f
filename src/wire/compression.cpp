#include "wire/compression.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <string>

namespace bulwark::wire {
namespace {

constexpr std::array<std::uint8_t, 8> kXerialMagic = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0x00};
constexpr std::size_t kXerialHeaderSize = 16;
constexpr std::size_t kMinChunk = 64 * 1024;

Error corrupt(std::string what) { return make_error(ErrorKind::corrupt, std::move(what)); }

Error too_big(std::string_view codec, std::size_t max_output) {
  return corrupt(std::string(codec) + " data decompresses to more than " + std::to_string(max_output) +
                 " bytes (the limit)");
}

// Output buffer that grows geometrically but never beyond max_output + 1 bytes past start: one byte
// more than the limit is how a streaming decoder tells "exactly max_output" from "more".
class BoundedOutput {
 public:
  BoundedOutput(Bytes& out, std::size_t max_output, std::size_t hint)
      : out_(out), start_(out.size()), limit_(max_output >= SIZE_MAX - 1 ? SIZE_MAX - 1 : max_output + 1) {
    out_.reserve(start_ + std::min(limit_, std::max(hint, kMinChunk)));
  }
  ~BoundedOutput() { out_.resize(start_ + produced_); }

  std::size_t produced() const { return produced_; }
  bool over_limit() const { return produced_ >= limit_; }

  // Space for the next decoder call (empty when the limit is reached).
  std::span<std::uint8_t> next_space() {
    std::size_t room = limit_ - produced_;
    if (room == 0) return {};
    std::size_t chunk = std::min(room, std::max(kMinChunk, produced_));
    std::size_t have = out_.size() - start_ - produced_;
    if (have < chunk) out_.resize(start_ + produced_ + chunk);
    have = out_.size() - start_ - produced_;
    return {out_.data() + start_ + produced_, std::min(have, room)};
  }
  void commit(std::size_t n) { produced_ += n; }

 private:
  Bytes& out_;
  std::size_t start_;
  std::size_t limit_;
  std::size_t produced_ = 0;
};

// ---- gzip -------------------------------------------------------------------------------------

Status gzip_compress(ByteView input, Bytes& out) {
  z_stream zs{};
  // 15 + 16: gzip wrapper, as Java's GZIPOutputStream writes.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return make_error(ErrorKind::internal, "zlib deflateInit2 failed");
  std::size_t start = out.size();
  out.resize(start + deflateBound(&zs, static_cast<uLong>(std::min<std::size_t>(input.size(), ULONG_MAX))) + 64);
  std::size_t in_pos = 0, out_pos = start;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    std::size_t in_chunk = std::min<std::size_t>(input.size() - in_pos, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(input.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_chunk);
    if (out.size() - out_pos < 64) out.resize(out.size() * 2);
    std::size_t out_chunk = std::min<std::size_t>(out.size() - out_pos, UINT_MAX);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_chunk);
    bool last = in_pos + in_chunk == input.size();
    rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    out_pos += out_chunk - zs.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      deflateEnd(&zs);
      return make_error(ErrorKind::internal, "zlib deflate failed");
    }
  }
  deflateEnd(&zs);
  out.resize(out_pos);
  return Status::success();
}

struct InflateState {
  z_stream zs{};
  bool ready = false;
  InflateState() {
    // 15 + 32: accept gzip and zlib headers alike.
    ready = inflateInit2(&zs, 15 + 32) == Z_OK;
  }
  ~InflateState() {
    if (ready) inflateEnd(&zs);
  }
};

Status gzip_decompress(ByteView input, std::size_t max_output, Bytes& out) {
  thread_local InflateState state;
  if (!state.ready) return make_error(ErrorKind::internal, "zlib inflateInit2 failed");
  z_stream& zs = state.zs;
  inflateReset(&zs);
  BoundedOutput output(out, max_output, input.size() * 4);
  std::size_t in_pos = 0;
  bool any_member = false;
  while (true) {
    std::size_t in_chunk = std::min<std::size_t>(input.size() - in_pos, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(input.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_chunk);
    auto space = output.next_space();
    if (space.empty()) return too_big("gzip", max_output);
    std::size_t out_chunk = std::min<std::size_t>(space.size(), UINT_MAX);
    zs.next_out = space.data();
    zs.avail_out = static_cast<uInt>(out_chunk);
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    output.commit(out_chunk - zs.avail_out);
    if (output.over_limit()) return too_big("gzip", max_output);
    if (rc == Z_STREAM_END) {
      any_member = true;
      // Another gzip member may follow (Java's GZIPInputStream reads them all); anything else
      // after the end is ignored, as Java does.
      if (input.size() - in_pos >= 2 && input[in_pos] == 0x1f && input[in_pos + 1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      return Status::success();
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;  // needs more output space only
    if (rc == Z_BUF_ERROR)
      return corrupt(any_member ? "gzip member truncated" : "gzip data truncated");
    std::string why = zs.msg ? zs.msg : "error " + std::to_string(rc);
    return corrupt("gzip data invalid: " + why);
  }
}

// ---- snappy -----------------------------------------------------------------------------------

Status snappy_raw_decompress(ByteView input, std::size_t& budget, std::size_t max_output, Bytes& out) {
  std::size_t length = 0;
  if (snappy_uncompressed_length(reinterpret_cast<const char*>(input.data()), input.size(), &length) != SNAPPY_OK)
    return corrupt("snappy data invalid (no length prefix)");
  if (length > budget) return too_big("snappy", max_output);
  std::size_t start = out.size();
  out.resize(start + length);
  std::size_t produced = length;
  if (snappy_uncompress(reinterpret_cast<const char*>(input.data()), input.size(),
                        reinterpret_cast<char*>(out.data() + start), &produced) != SNAPPY_OK ||
      produced != length) {
    out.resize(start);
    return corrupt("snappy data invalid");
  }
  budget -= length;
  return Status::success();
}

Status snappy_decompress(ByteView input, std::size_t max_output, Bytes& out) {
  std::size_t budget = max_output;
  std::size_t start = out.size();
  if (!is_xerial_snappy(input)) return snappy_raw_decompress(input, budget, max_output, out);
  // Xerial framing: header (magic, version, compatible version), then length-prefixed blocks.
  ByteReader reader(input.subspan(kXerialHeaderSize));
  while (!reader.at_end()) {
    std::int32_t block_length = 0;
    ByteView block;
    if (!reader.read_i32(block_length) || block_length < 0 ||
        !reader.read_bytes(static_cast<std::size_t>(block_length), block)) {
      out.resize(start);
      return corrupt("xerial snappy block length runs past the end of the data");
    }
    Status status = snappy_raw_decompress(block, budget, max_output, out);
    if (!status.ok()) {
      out.resize(start);
      return status;
    }
  }
  return Status::success();
}

// ---- lz4 --------------------------------------------------------------------------------------

Status lz4_compress(ByteView input, Bytes& out) {
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof prefs);
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;  // Java's reader does not take linked blocks
  prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
  std::size_t bound = LZ4F_compressFrameBound(input.size(), &prefs);
  std::size_t start = out.size();
  out.resize(start + bound);
  std::size_t n = LZ4F_compressFrame(out.data() + start, bound, input.data(), input.size(), &prefs);
  if (LZ4F_isError(n)) {
    out.resize(start);
    return make_error(ErrorKind::internal, std::string("lz4 compression failed: ") + LZ4F_getErrorName(n));
  }
  out.resize(start + n);
  return Status::success();
}

struct Lz4Context {
  LZ4F_dctx* dctx = nullptr;
  Lz4Context() {
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) dctx = nullptr;
  }
  ~Lz4Context() {
    if (dctx) LZ4F_freeDecompressionContext(dctx);
  }
};

Status lz4_decompress(ByteView input, std::size_t max_output, Bytes& out) {
  thread_local Lz4Context context;
  if (!context.dctx) return make_error(ErrorKind::internal, "lz4 decompression context unavailable");
  LZ4F_dctx* dctx = context.dctx;
  LZ4F_resetDecompressionContext(dctx);
  if (input.empty()) return corrupt("lz4 data empty");
  BoundedOutput output(out, max_output, input.size() * 4);
  std::size_t in_pos = 0;
  std::size_t hint = 1;
  while (true) {
    auto space = output.next_space();
    if (space.empty()) {
      LZ4F_resetDecompressionContext(dctx);
      return too_big("lz4", max_output);
    }
    std::size_t src_size = input.size() - in_pos;
    std::size_t dst_size = space.size();
    hint = LZ4F_decompress(dctx, space.data(), &dst_size, input.data() + in_pos, &src_size, nullptr);
    if (LZ4F_isError(hint)) {
      LZ4F_resetDecompressionContext(dctx);
      return corrupt(std::string("lz4 data invalid: ") + LZ4F_getErrorName(hint));
    }
    in_pos += src_size;
    output.commit(dst_size);
    if (output.over_limit()) {
      LZ4F_resetDecompressionContext(dctx);
      return too_big("lz4", max_output);
    }
    if (hint == 0) {
      // A frame ended; another may follow.
      if (in_pos == input.size()) return Status::success();
      continue;
    }
    // Output space left over and all input consumed: the decoder wants input we do not have.
    if (in_pos == input.size() && dst_size < space.size()) {
      LZ4F_resetDecompressionContext(dctx);
      return corrupt("lz4 frame truncated");
    }
    if (src_size == 0 && dst_size == 0) {  // no progress possible
      LZ4F_resetDecompressionContext(dctx);
      return corrupt("lz4 frame truncated");
    }
  }
}

// ---- zstd -------------------------------------------------------------------------------------

Status zstd_compress(ByteView input, Bytes& out) {
  struct Ctx {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ~Ctx() { ZSTD_freeCCtx(cctx); }
  };
  thread_local Ctx ctx;
  if (!ctx.cctx) return make_error(ErrorKind::internal, "zstd compression context unavailable");
  std::size_t bound = ZSTD_compressBound(input.size());
  std::size_t start = out.size();
  out.resize(start + bound);
  std::size_t n = ZSTD_compressCCtx(ctx.cctx, out.data() + start, bound, input.data(), input.size(), 3);
  if (ZSTD_isError(n)) {
    out.resize(start);
    return make_error(ErrorKind::internal, std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  }
  out.resize(start + n);
  return Status::success();
}

Status zstd_decompress(ByteView input, std::size_t max_output, Bytes& out) {
  struct Ctx {
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    ~Ctx() { ZSTD_freeDCtx(dctx); }
  };
  thread_local Ctx ctx;
  if (!ctx.dctx) return make_error(ErrorKind::internal, "zstd decompression context unavailable");
  ZSTD_DCtx_reset(ctx.dctx, ZSTD_reset_session_only);
  if (input.empty()) return corrupt("zstd data empty");
  std::size_t hint = input.size() * 4;
  unsigned long long declared = ZSTD_getFrameContentSize(input.data(), input.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR)
    hint = static_cast<std::size_t>(std::min<unsigned long long>(declared, max_output));
  BoundedOutput output(out, max_output, hint);
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  while (true) {
    auto space = output.next_space();
    if (space.empty()) return too_big("zstd", max_output);
    ZSTD_outBuffer o{space.data(), space.size(), 0};
    std::size_t rc = ZSTD_decompressStream(ctx.dctx, &o, &in);
    output.commit(o.pos);
    if (ZSTD_isError(rc)) {
      ZSTD_DCtx_reset(ctx.dctx, ZSTD_reset_session_only);
      return corrupt(std::string("zstd data invalid: ") + ZSTD_getErrorName(rc));
    }
    if (output.over_limit()) {
      ZSTD_DCtx_reset(ctx.dctx, ZSTD_reset_session_only);
      return too_big("zstd", max_output);
    }
    if (in.pos == in.size) {
      if (rc == 0) return Status::success();
      if (o.pos < o.size) {  // flushed all it could and still wants input
        ZSTD_DCtx_reset(ctx.dctx, ZSTD_reset_session_only);
        return corrupt("zstd frame truncated");
      }
    }
  }
}

}  // namespace

std::string_view compression_name(Compression codec) {
  switch (codec) {
    case Compression::none: return "none";
    case Compression::gzip: return "gzip";
    case Compression::snappy: return "snappy";
    case Compression::lz4: return "lz4";
    case Compression::zstd: return "zstd";
  }
  return "unknown";
}

bool is_xerial_snappy(ByteView input) {
  return input.size() >= kXerialHeaderSize && std::memcmp(input.data(), kXerialMagic.data(), kXerialMagic.size()) == 0;
}

Bytes snappy_compress_raw(ByteView input) {
  Bytes out(snappy_max_compressed_length(input.size()));
  std::size_t n = out.size();
  // snappy_compress only fails when the output buffer is too small, which max_compressed_length rules out.
  snappy_compress(reinterpret_cast<const char*>(input.data()), input.size(), reinterpret_cast<char*>(out.data()), &n);
  out.resize(n);
  return out;
}

Bytes snappy_compress_xerial(ByteView input, std::size_t block_size) {
  if (block_size == 0) block_size = 32 * 1024;
  ByteWriter writer;
  writer.write_bytes(ByteView(kXerialMagic));
  writer.write_i32(1);  // version
  writer.write_i32(1);  // minimum compatible version
  Bytes& out = writer.buffer();
  std::size_t blocks = (input.size() + block_size - 1) / block_size;
  out.reserve(kXerialHeaderSize + blocks * 4 + snappy_max_compressed_length(input.size()) + 64);
  for (std::size_t pos = 0; pos < input.size(); pos += block_size) {
    std::size_t n = std::min(block_size, input.size() - pos);
    std::size_t at = out.size();
    std::size_t cap = snappy_max_compressed_length(n);
    out.resize(at + 4 + cap);
    std::size_t written = cap;
    snappy_compress(reinterpret_cast<const char*>(input.data() + pos), n, reinterpret_cast<char*>(out.data() + at + 4),
                    &written);
    out.resize(at + 4 + written);
    writer.patch_u32(at, static_cast<std::uint32_t>(written));
  }
  return writer.take();
}

Status compress_to(Compression codec, ByteView input, Bytes& out) {
  switch (codec) {
    case Compression::none:
      out.insert(out.end(), input.begin(), input.end());
      return Status::success();
    case Compression::gzip: return gzip_compress(input, out);
    case Compression::snappy: {
      Bytes framed = snappy_compress_xerial(input);
      out.insert(out.end(), framed.begin(), framed.end());
      return Status::success();
    }
    case Compression::lz4: return lz4_compress(input, out);
    case Compression::zstd: return zstd_compress(input, out);
  }
  return make_error(ErrorKind::unsupported, "unknown compression codec " + std::to_string(static_cast<int>(codec)));
}

Result<Bytes> compress(Compression codec, ByteView input) {
  Bytes out;
  BULWARK_TRY(compress_to(codec, input, out));
  return out;
}

namespace {
Status decompress_dispatch(Compression codec, ByteView input, std::size_t max_output, Bytes& out) {
  switch (codec) {
    case Compression::none:
      if (input.size() > max_output) return too_big("uncompressed", max_output);
      out.insert(out.end(), input.begin(), input.end());
      return Status::success();
    case Compression::gzip: return gzip_decompress(input, max_output, out);
    case Compression::snappy: return snappy_decompress(input, max_output, out);
    case Compression::lz4: return lz4_decompress(input, max_output, out);
    case Compression::zstd: return zstd_decompress(input, max_output, out);
  }
  return corrupt("unknown compression codec " + std::to_string(static_cast<int>(codec)));
}
}  // namespace

Status decompress_to(Compression codec, ByteView input, std::size_t max_output, Bytes& out) {
  std::size_t start = out.size();
  Status status = decompress_dispatch(codec, input, max_output, out);
  if (!status.ok()) out.resize(start);  // no partial output on failure
  return status;
}

Result<Bytes> decompress(Compression codec, ByteView input, std::size_t max_output) {
  Bytes out;
  BULWARK_TRY(decompress_to(codec, input, max_output, out));
  return out;
}

}  // namespace bulwark::wire
