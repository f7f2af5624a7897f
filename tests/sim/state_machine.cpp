#include "sim/state_machine.h"

namespace bulwark::sim {
namespace {

uint64_t mix(uint64_t hash, uint64_t value) {
  hash ^= value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
  hash *= 0xff51afd7ed558ccdULL;
  return hash ^ (hash >> 33);
}

void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

bool get64(const std::vector<uint8_t>& in, size_t& pos, uint64_t& v) {
  if (pos > in.size() || in.size() - pos < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[pos++];
  return true;
}

uint32_t read32(const std::vector<uint8_t>& in, size_t pos) {
  return (uint32_t{in[pos]} << 24) | (uint32_t{in[pos + 1]} << 16) | (uint32_t{in[pos + 2]} << 8) | in[pos + 3];
}

}  // namespace

std::vector<uint8_t> HashChainMachine::make_payload(uint32_t key, uint32_t value) {
  std::vector<uint8_t> out;
  for (uint32_t v : {key, value})
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
  return out;
}

bool HashChainMachine::apply(const raft::LogEntry& entry) {
  if (entry.offset != next_offset_) return false;
  uint64_t hash = mix(chain_, static_cast<uint64_t>(entry.offset));
  hash = mix(hash, static_cast<uint64_t>(entry.epoch));
  hash = mix(hash, static_cast<uint64_t>(entry.kind));
  for (uint8_t byte : entry.payload) hash = mix(hash, byte);
  chain_ = hash;
  if (entry.kind == raft::EntryKind::data && entry.payload.size() == 8) values_[read32(entry.payload, 0)] = read32(entry.payload, 4);
  ++next_offset_;
  return true;
}

std::vector<uint8_t> HashChainMachine::snapshot() const {
  std::vector<uint8_t> out;
  put64(out, static_cast<uint64_t>(next_offset_));
  put64(out, chain_);
  put64(out, values_.size());
  for (auto& [key, value] : values_) put64(out, (uint64_t{key} << 32) | value);
  return out;
}

bool HashChainMachine::load(const std::vector<uint8_t>& bytes) {
  size_t pos = 0;
  uint64_t offset = 0, chain = 0, count = 0;
  if (!get64(bytes, pos, offset) || !get64(bytes, pos, chain) || !get64(bytes, pos, count)) return false;
  if (count > (bytes.size() - pos) / 8) return false;
  std::map<uint32_t, uint32_t> values;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t packed = 0;
    if (!get64(bytes, pos, packed)) return false;
    values[static_cast<uint32_t>(packed >> 32)] = static_cast<uint32_t>(packed);
  }
  if (pos != bytes.size()) return false;
  next_offset_ = static_cast<int64_t>(offset);
  chain_ = chain;
  values_ = std::move(values);
  return true;
}

}  // namespace bulwark::sim
