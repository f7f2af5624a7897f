// Turns the committed metadata log into published images: the quorum driver hands it committed
// entries in log order (and snapshots from the leader), it decodes each data entry's framed record,
// applies it with MetadataDelta and publishes the image, then tells its listeners. A record that does
// not decode or does not fit the image is logged and skipped (a log written by this code never has
// one; skipping keeps the node serving the rest instead of stopping on one bad record).
//
// Single-threaded: the driver thread calls apply and load_snapshot. Readers use publisher().
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "cluster/image.h"
#include "raft/messages.h"

namespace bulwark::cluster {

// A snapshot's bytes: each record of snapshot_records(image) as uvarint length + framed record.
Bytes encode_snapshot(const MetadataImage& image);
Result<ImagePtr> decode_snapshot(ByteView bytes, LogPosition position);

class MetadataLoader {
 public:
  // Runs after every publish on the driver thread, with the image before and after.
  using Listener = std::function<void(const ImagePtr& before, const ImagePtr& after)>;

  explicit MetadataLoader(ImagePublisher& publisher) : publisher_(publisher) {}
  void add_listener(Listener listener) { listeners_.push_back(std::move(listener)); }

  // Committed entries, ascending. Publishes one image for the whole run.
  void apply(const std::vector<raft::LogEntry>& entries);
  Status load_snapshot(const raft::SnapshotId& id, ByteView bytes);

  // The offset of the last entry applied (any kind), -1 before the first.
  std::int64_t applied_offset() const { return applied_offset_; }
  ImagePtr image() const { return publisher_.current(); }

 private:
  void publish(ImagePtr next);

  ImagePublisher& publisher_;
  std::vector<Listener> listeners_;
  std::int64_t applied_offset_ = -1;
  std::uint64_t skipped_ = 0;
};

}  // namespace bulwark::cluster
