// The Kafka request/response framing around the generated message codecs: request header decoding
// (whatever the API), response header encoding, and which header version goes with which API version.
// Message bodies are the structs in wire/generated/ (namespace bulwark::wire::msg); the API table
// (keys, names, version ranges) is wire/generated/api_table.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "wire/generated/api_table.h"

namespace bulwark::wire {

struct RequestHeader {
  std::int16_t api_key = 0;
  std::int16_t api_version = 0;
  std::int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

// Request header v2 for flexible request versions, v1 otherwise, v0 only for ControlledShutdown v0.
// Versions outside the supported range follow the same rule (flexibility is open-ended), so the
// header of a too-new request still parses; unknown API keys get v1.
std::int16_t request_header_version(std::int16_t api_key, std::int16_t api_version);
// Response header v1 for flexible response versions, except ApiVersions (always v0: a client that
// does not yet know the broker's versions must be able to read it). Unknown keys get v0.
std::int16_t response_header_version(std::int16_t api_key, std::int16_t api_version);

// Reads api key and version, then the rest of the header in the version they imply. Unknown API keys
// and unsupported versions still yield the header, so the broker can answer with an error; only
// truncated or malformed bytes fail (corrupt). Afterwards the reader is at the request body.
Result<RequestHeader> decode_request_header(ByteReader& r);
// ClientId is always a classic int16-length nullable string, even in header v2.
void encode_request_header(ByteWriter& w, const RequestHeader& h);

void encode_response_header(ByteWriter& w, std::int16_t api_key, std::int16_t api_version,
                            std::int32_t correlation_id);
// Reads a response header (for the broker's own outgoing requests); returns the correlation id.
Result<std::int32_t> decode_response_header(ByteReader& r, std::int16_t api_key, std::int16_t api_version);

// True when the key is known and the version within its supported range.
bool api_version_supported(std::int16_t api_key, std::int16_t api_version);

// A generated message's body at `version` (no size prefix, no header).
template <class Message>
Bytes encode_message(const Message& message, std::int16_t version) {
  ByteWriter w;
  message.encode(w, version);
  return w.take();
}

// A generated message from a body at `version`; nullopt when the bytes do not decode, or (strict) leave
// bytes behind.
template <class Message>
std::optional<Message> decode_message(ByteView body, std::int16_t version, bool strict = false) {
  ByteReader r(body);
  Message message;
  if (!message.decode(r, version) || (strict && !r.at_end())) return std::nullopt;
  return message;
}

}  // namespace bulwark::wire
