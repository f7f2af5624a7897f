#include "wire/protocol.h"

#include "wire/generated/codec_support.h"

namespace bulwark::wire {

namespace {

constexpr std::int16_t kControlledShutdown = static_cast<std::int16_t>(ApiKey::controlled_shutdown);
constexpr std::int16_t kApiVersions = static_cast<std::int16_t>(ApiKey::api_versions);

bool flexible(std::int16_t api_key, std::int16_t api_version) {
  const ApiInfo* api = find_api(api_key);
  return api != nullptr && api->first_flexible_version >= 0 && api_version >= api->first_flexible_version;
}

Error truncated(const char* what) { return make_error(ErrorKind::corrupt, std::string("truncated or malformed ") + what); }

}  // namespace

std::int16_t request_header_version(std::int16_t api_key, std::int16_t api_version) {
  if (api_key == kControlledShutdown && api_version == 0) return 0;
  return flexible(api_key, api_version) ? 2 : 1;
}

std::int16_t response_header_version(std::int16_t api_key, std::int16_t api_version) {
  if (api_key == kApiVersions) return 0;
  return flexible(api_key, api_version) ? 1 : 0;
}

Result<RequestHeader> decode_request_header(ByteReader& r) {
  RequestHeader h;
  if (!r.read_i16(h.api_key) || !r.read_i16(h.api_version) || !r.read_i32(h.correlation_id)) {
    return truncated("request header");
  }
  const std::int16_t hv = request_header_version(h.api_key, h.api_version);
  if (hv >= 1 && !codec::read_nullable_string(r, false, true, h.client_id)) return truncated("request header client id");
  if (hv >= 2) {
    TaggedFields ignored;  // no request header tag is defined yet
    if (!codec::read_unknown_tagged_fields(r, ignored)) return truncated("request header tagged fields");
  }
  return h;
}

void encode_request_header(ByteWriter& w, const RequestHeader& h) {
  w.write_i16(h.api_key);
  w.write_i16(h.api_version);
  w.write_i32(h.correlation_id);
  const std::int16_t hv = request_header_version(h.api_key, h.api_version);
  if (hv >= 1) codec::write_nullable_string(w, false, true, h.client_id);
  if (hv >= 2) w.write_unsigned_varint(0);
}

void encode_response_header(ByteWriter& w, std::int16_t api_key, std::int16_t api_version,
                            std::int32_t correlation_id) {
  w.write_i32(correlation_id);
  if (response_header_version(api_key, api_version) >= 1) w.write_unsigned_varint(0);  // no tagged fields
}

Result<std::int32_t> decode_response_header(ByteReader& r, std::int16_t api_key, std::int16_t api_version) {
  std::int32_t correlation_id = 0;
  if (!r.read_i32(correlation_id)) return truncated("response header");
  if (response_header_version(api_key, api_version) >= 1) {
    TaggedFields ignored;
    if (!codec::read_unknown_tagged_fields(r, ignored)) return truncated("response header tagged fields");
  }
  return correlation_id;
}

bool api_version_supported(std::int16_t api_key, std::int16_t api_version) {
  const ApiInfo* api = find_api(api_key);
  return api != nullptr && api_version >= api->min_version && api_version <= api->max_version;
}

}  // namespace bulwark::wire
