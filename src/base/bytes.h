// Big-endian byte reading and writing with the varint forms Kafka uses. ByteReader never reads past
// its end: every read reports failure instead, so decoders of network input stay memory safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
inline std::string_view as_chars(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}

  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool at_end() const { return pos_ == data_.size(); }
  // False once any read went past the end; all later reads fail too.
  bool ok() const { return ok_; }

  bool read_u8(std::uint8_t& v) { return read_be(v); }
  bool read_i8(std::int8_t& v) { return read_be(v); }
  bool read_u16(std::uint16_t& v) { return read_be(v); }
  bool read_i16(std::int16_t& v) { return read_be(v); }
  bool read_u32(std::uint32_t& v) { return read_be(v); }
  bool read_i32(std::int32_t& v) { return read_be(v); }
  bool read_u64(std::uint64_t& v) { return read_be(v); }
  bool read_i64(std::int64_t& v) { return read_be(v); }

  bool read_unsigned_varint(std::uint32_t& v) {
    std::uint64_t wide = 0;
    if (!read_varint_raw(wide, 5) || wide > 0xffffffffu) return fail();
    v = static_cast<std::uint32_t>(wide);
    return true;
  }
  bool read_varint(std::int32_t& v) {  // zigzag
    std::uint32_t raw = 0;
    if (!read_unsigned_varint(raw)) return false;
    v = static_cast<std::int32_t>((raw >> 1) ^ (~(raw & 1) + 1));
    return true;
  }
  bool read_varlong(std::int64_t& v) {  // zigzag
    std::uint64_t raw = 0;
    if (!read_varint_raw(raw, 10)) return fail();
    v = static_cast<std::int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
    return true;
  }

  // A view of the next n bytes (valid while the underlying buffer lives).
  bool read_bytes(std::size_t n, ByteView& out) {
    if (!ok_ || remaining() < n) return fail();
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::size_t n) {
    ByteView ignored;
    return read_bytes(n, ignored);
  }
  ByteView rest() const { return data_.subspan(pos_); }

 private:
  template <class T>
  bool read_be(T& v) {
    if (!ok_ || remaining() < sizeof(T)) return fail();
    std::make_unsigned_t<T> u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) u = static_cast<decltype(u)>((u << 8) | data_[pos_ + i]);
    pos_ += sizeof(T);
    v = static_cast<T>(u);
    return true;
  }
  bool read_varint_raw(std::uint64_t& v, int max_bytes) {
    v = 0;
    for (int i = 0; i < max_bytes; ++i) {
      std::uint8_t b = 0;
      if (!read_u8(b)) return false;
      v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool fail() {
    ok_ = false;
    return false;
  }

  ByteView data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  ByteWriter() = default;
  explicit ByteWriter(Bytes& out) : external_(&out) {}

  Bytes& buffer() { return external_ ? *external_ : own_; }
  std::size_t size() { return buffer().size(); }
  Bytes take() { return std::move(buffer()); }

  void write_u8(std::uint8_t v) { buffer().push_back(v); }
  void write_i8(std::int8_t v) { write_be(v); }
  void write_u16(std::uint16_t v) { write_be(v); }
  void write_i16(std::int16_t v) { write_be(v); }
  void write_u32(std::uint32_t v) { write_be(v); }
  void write_i32(std::int32_t v) { write_be(v); }
  void write_u64(std::uint64_t v) { write_be(v); }
  void write_i64(std::int64_t v) { write_be(v); }

  void write_unsigned_varint(std::uint64_t v) {
    while (v >= 0x80) {
      write_u8(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    write_u8(static_cast<std::uint8_t>(v));
  }
  void write_varint(std::int32_t v) {
    write_unsigned_varint((static_cast<std::uint32_t>(v) << 1) ^ static_cast<std::uint32_t>(v >> 31));
  }
  void write_varlong(std::int64_t v) {
    write_unsigned_varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void write_bytes(ByteView b) { buffer().insert(buffer().end(), b.begin(), b.end()); }
  void write_bytes(std::string_view s) { write_bytes(as_bytes(s)); }

  // Overwrite a big-endian value written earlier (lengths and CRCs known only afterwards).
  void patch_u32(std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) buffer()[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
  }

 private:
  template <class T>
  void write_be(T v) {
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    for (int i = sizeof(T) - 1; i >= 0; --i) buffer().push_back(static_cast<std::uint8_t>(u >> (8 * i)));
  }

  Bytes own_;
  Bytes* external_ = nullptr;
};

}  // namespace bulwark
