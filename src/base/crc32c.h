// CRC-32C (Castagnoli), as Kafka's record batch v2 uses it. Uses the SSE4.2 crc32 instruction when the
// CPU has it (checked once at start-up), a slicing-by-8 table otherwise.
#pragma once

#include <cstdint>

#include "base/bytes.h"

namespace bulwark {

std::uint32_t crc32c(ByteView data, std::uint32_t crc = 0);
// The portable path, exposed so tests and benchmarks can compare it with the hardware one.
std::uint32_t crc32c_software(ByteView data, std::uint32_t crc = 0);
bool crc32c_has_hardware();

}  // namespace bulwark
