// libFuzzer target for the group coordinator's byte readers: the consumer-protocol subscription a
// member sends in JoinGroup (subscribed_topics), and the __consumer_offsets records (offset commits
// and group metadata with every member's subscription and assignment bytes) read back from disk.
// Byte 0 picks the reader.
#include <cstddef>
#include <cstdint>

#include "groups/coordinator.h"
#include "groups/records.h"

using namespace bulwark;
using namespace bulwark::groups;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ByteView input(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)subscribed_topics(input);
      break;
    case 1:
      (void)decode_key(input);
      break;
    case 2:
      (void)decode_offset_value(input);
      break;
    default: {
      auto group = decode_group_value(input);
      if (group.ok()) {
        // Re-encoded (as version 3) it decodes to the same members, subscriptions and assignments.
        auto again = decode_group_value(encode_group_value(*group));
        if (!again.ok() || again->members.size() != group->members.size()) __builtin_trap();
        for (std::size_t i = 0; i < group->members.size(); ++i)
          if (again->members[i].subscription != group->members[i].subscription ||
              again->members[i].assignment != group->members[i].assignment)
            __builtin_trap();
      }
      break;
    }
  }
  return 0;
}
