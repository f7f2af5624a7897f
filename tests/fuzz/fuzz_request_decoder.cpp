// libFuzzer target for what the broker reads off the network: a request header, then the body as the
// request of that API and version, and the same bytes as its response (replication and controller
// traffic decode responses). Whatever decodes must re-encode to bytes that decode again and re-encode
// identically: the codecs are stable on any input they accept.
#include <cstdint>
#include <cstdlib>

#include "wire/generated/messages.h"
#include "wire/protocol.h"

namespace {

using namespace bulwark;
using namespace bulwark::wire;

template <class M>
void check(ByteView body, std::int16_t version) {
  ByteReader r(body);
  M first;
  if (!first.decode(r, version)) return;
  ByteWriter w1;
  first.encode(w1, version);
  const Bytes once = w1.take();
  ByteReader r2(once);
  M second;
  if (!second.decode(r2, version) || !r2.at_end()) std::abort();  // our own encoding must decode fully
  ByteWriter w2;
  second.encode(w2, version);
  if (w2.take() != once) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteReader r(ByteView(data, size));
  auto header = decode_request_header(r);
  if (!header.ok()) return 0;
  ByteWriter hw;
  encode_request_header(hw, *header);  // must not crash on anything decoded
  if (!api_version_supported(header->api_key, header->api_version)) return 0;
  const ByteView body = r.rest();
  switch (header->api_key) {
#define FUZZ_API(key, Name, Req, Resp)                    \
  case key:                                               \
    check<msg::Req>(body, header->api_version);           \
    check<msg::Resp>(body, header->api_version);          \
    break;
    BULWARK_WIRE_FOR_EACH_API(FUZZ_API)
#undef FUZZ_API
    default:
      break;
  }
  return 0;
}
