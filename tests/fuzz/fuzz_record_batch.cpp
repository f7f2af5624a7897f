// libFuzzer target for the record batch decoders: everything a client or a peer broker can send us
// in a Produce request or Fetch response goes through split_batches, the header parser, the CRC check
// and, for batches that need their records, decode_records (with every compression codec).
#include <cstddef>
#include <cstdint>

#include "wire/compression.h"
#include "wire/record_batch.h"

using namespace bulwark;
using namespace bulwark::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView input(data, size);
  // Small limit: bombs must fail, and the fuzzer must not spend its time allocating.
  constexpr std::size_t kLimit = 1 << 20;

  auto split = split_batches(input);
  if (split.ok()) {
    for (ByteView batch : split->batches) {
      auto header = parse_batch_header(batch);
      if (!header.ok()) __builtin_trap();  // split_batches only returns parsable batches
      (void)batch_crc_ok(batch);
      auto records = decode_records(batch, kLimit);
      if (records.ok() && records->size() != static_cast<std::size_t>(header->record_count)) __builtin_trap();
    }
  }
  // The whole input as one batch too (without the split's guarantees), and the raw codecs.
  (void)batch_crc_ok(input);
  (void)decode_records(input, kLimit);
  if (size > 0) {
    auto codec = static_cast<Compression>(data[0] % 5);
    (void)decompress(codec, input.subspan(1), kLimit);
  }
  // The input as the records section of a well-formed header: reaches the record decoder and the
  // codecs without the fuzzer having to discover a consistent header first.
  if (size >= 2) {
    Bytes batch(kBatchHeaderSize, 0);
    batch.insert(batch.end(), data + 2, data + size);
    std::uint32_t length = static_cast<std::uint32_t>(batch.size() - kBatchLogOverhead);
    for (int i = 0; i < 4; ++i) batch[kBatchLengthOffset + i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
    batch[16] = 2;                                  // magic
    batch[kBatchAttributesOffset + 1] = data[0] % 5;  // codec
    batch[60] = data[1];                            // record count 0..255
    auto records = decode_records(ByteView(batch), kLimit);
    if (records.ok() && records->size() != data[1]) __builtin_trap();
  }
  return 0;
}
