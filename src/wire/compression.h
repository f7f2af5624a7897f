// The record batch compression codecs, as Kafka clients write them:
//   gzip   RFC 1952 gzip stream (zlib); decoding also accepts zlib/raw-header auto-detection and
//          concatenated members, as Java's GZIPInputStream does.
//   snappy written in the xerial framing (what the Java client and kafka-python write: magic 0x82
//          "SNAPPY" 0x00, version and compatible int32s, then [int32 length][raw snappy block]...);
//          decoding detects the framing and otherwise takes the input as one raw snappy block
//          (librdkafka writes raw).
//   lz4    LZ4 frame format, independent 64 KiB blocks, no content size or checksum (as Java writes);
//          decoding accepts whatever liblz4's LZ4F_decompress accepts, concatenated frames too.
//   zstd   zstd frames (concatenated and skippable frames accepted on decoding).
// Decoding is bounded: output beyond max_output bytes fails cleanly (decompression bombs), and
// malformed input fails with ErrorKind::corrupt, never a crash. All functions are thread safe
// (per-thread codec contexts are reused to keep the decode path cheap).
#pragma once

#include <cstddef>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "wire/record_batch.h"

namespace bulwark::wire {

std::string_view compression_name(Compression codec);

// Appends the compressed form of input to out. Compression::none appends input unchanged.
Status compress_to(Compression codec, ByteView input, Bytes& out);
Result<Bytes> compress(Compression codec, ByteView input);

// Appends the decompressed form of input to out, at most max_output bytes (counted for this call).
Status decompress_to(Compression codec, ByteView input, std::size_t max_output, Bytes& out);
Result<Bytes> decompress(Compression codec, ByteView input, std::size_t max_output);

// Snappy in either form, for tests and tools that need one explicitly.
Bytes snappy_compress_raw(ByteView input);
Bytes snappy_compress_xerial(ByteView input, std::size_t block_size = 32 * 1024);
bool is_xerial_snappy(ByteView input);

}  // namespace bulwark::wire
