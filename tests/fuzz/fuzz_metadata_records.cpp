// libFuzzer target for the metadata record decoder and the image built from records.
// The input is tried two ways: as one framed record value, and as a sequence of records each preceded
// by a big-endian u16 length (so the fuzzer can build topics, then partitions of them, ...). Each
// decoded record must re-encode to bytes that decode to the same bytes again; each record is applied
// to a delta, where a failure must leave the image as it was; the final image must rebuild from its
// snapshot records. Chunks are also tried as control records (4-byte key, then the value).
#include <cstddef>
#include <cstdint>

#include "cluster/image.h"
#include "cluster/records.h"

using namespace bulwark;
using namespace bulwark::cluster;

namespace {

// Returns the decoded record after checking that its encoding is stable.
Result<AnyRecord> decode_checked(ByteView bytes) {
  auto record = decode_record(bytes);
  if (record.ok()) {
    const Bytes once = encode_record(*record);
    auto again = decode_record(once);
    if (!again.ok() || encode_record(*again) != once) __builtin_trap();
  }
  return record;
}

void check_control(ByteView chunk) {
  if (chunk.size() < 4) return;
  auto control = decode_control_record(chunk.first(4), chunk.subspan(4));
  if (control.ok()) {
    const Bytes value = encode_control_value(*control);
    auto again = decode_control_record(encode_control_key(control_record_type(*control)), value);
    if (!again.ok() || encode_control_value(*again) != value) __builtin_trap();
  }
}

void apply_checked(MetadataDelta& delta, const AnyRecord& record, std::int64_t offset) {
  ImagePtr before = delta.build(LogPosition{offset, 0});
  if (!delta.apply(record).ok() && !(*delta.build(LogPosition{offset, 0}) == *before)) __builtin_trap();
}

void check_snapshot(const ImagePtr& image) {
  auto rebuilt = image_from_snapshot(snapshot_records(*image), image->position());
  if (!rebuilt.ok() || !(**rebuilt == *image) || (*rebuilt)->digest() != image->digest()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);

  if (auto single = decode_checked(input); single.ok()) {
    MetadataDelta delta(MetadataImage::empty());
    apply_checked(delta, *single, 0);
    check_snapshot(delta.build(LogPosition{0, 0}));
  }
  check_control(input);

  MetadataDelta delta(MetadataImage::empty());
  ByteReader r(input);
  std::int64_t offset = 0;
  std::uint16_t length = 0;
  while (r.read_u16(length)) {
    ByteView chunk;
    if (!r.read_bytes(length, chunk)) break;
    if (auto record = decode_checked(chunk); record.ok()) apply_checked(delta, *record, offset++);
    check_control(chunk);
  }
  check_snapshot(delta.build(LogPosition{offset, 0}));
  return 0;
}
