// libFuzzer target for the v0/v1 message set reader (Produce v0-v2): CRC checks, truncation, nested
// wrappers with every codec v0/v1 carry (and the v0 LZ4 checksum fix-up), and the conversion to a v2
// batch, which must then read back as the same number of records.
#include <cstddef>
#include <cstdint>

#include "wire/legacy_messages.h"
#include "wire/record_batch.h"

using namespace bulwark;
using namespace bulwark::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView input(data, size);
  // Small limit: bombs must fail, and the fuzzer must not spend its time allocating.
  constexpr std::size_t kLimit = 1 << 20;
  (void)first_entry_magic(input);
  auto decoded = decode_legacy_messages(input, kLimit);
  auto batch = convert_legacy_messages(input, kLimit);
  if (decoded.ok() != batch.ok()) __builtin_trap();
  if (batch.ok()) {
    if (!batch_crc_ok(*batch)) __builtin_trap();
    auto records = decode_records(*batch, 64u << 20);
    if (!records.ok() || records->size() != decoded->records.size()) __builtin_trap();
  }
  // The input as the value of a valid CRC'ed wrapper (byte 0: magic and codec), so the fuzzer reaches
  // the inner sets without having to find a matching CRC first.
  if (size >= 1) {
    LegacyMessage wrapper;
    wrapper.magic = static_cast<std::int8_t>(data[0] & 1);
    wrapper.attributes = static_cast<std::int8_t>((data[0] >> 1) & 0x0f);
    wrapper.value = Bytes(data + 1, data + size);
    Bytes set;
    append_legacy_message(wrapper, set);
    (void)convert_legacy_messages(set, kLimit);
  }
  return 0;
}
