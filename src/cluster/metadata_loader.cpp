#include "cluster/metadata_loader.h"

#include "base/log.h"

namespace bulwark::cluster {

Bytes encode_snapshot(const MetadataImage& image) {
  ByteWriter w;
  for (const auto& record : snapshot_records(image)) {
    auto framed = encode_record(record);
    w.write_unsigned_varint(framed.size());
    w.write_bytes(framed);
  }
  return w.take();
}

Result<ImagePtr> decode_snapshot(ByteView bytes, LogPosition position) {
  ByteReader r(bytes);
  std::vector<AnyRecord> records;
  while (r.remaining() > 0) {
    std::uint32_t size = 0;
    ByteView framed;
    if (!r.read_unsigned_varint(size) || !r.read_bytes(size, framed))
      return make_error(ErrorKind::corrupt, "metadata snapshot: truncated record " + std::to_string(records.size()));
    auto record = decode_record(framed);
    if (!record.ok()) return record.error();
    records.push_back(std::move(*record));
  }
  return image_from_snapshot(records, position);
}

void MetadataLoader::apply(const std::vector<raft::LogEntry>& entries) {
  if (entries.empty()) return;
  MetadataDelta delta(publisher_.current());
  LogPosition last = publisher_.current()->position();
  for (const auto& entry : entries) {
    applied_offset_ = entry.offset;
    last = {entry.offset, entry.epoch};
    if (entry.kind != raft::EntryKind::data) continue;
    auto record = decode_record(entry.payload);
    Status applied = record.ok() ? delta.apply(*record) : Status(record.error());
    if (!applied.ok()) {
      ++skipped_;
      log::error("metadata log offset {}: record skipped ({} so far): {}", entry.offset, skipped_,
                 applied.error().message);
    }
  }
  publish(delta.build(last));
}

Status MetadataLoader::load_snapshot(const raft::SnapshotId& id, ByteView bytes) {
  auto image = decode_snapshot(bytes, {id.end_offset - 1, id.epoch});
  if (!image.ok()) return image.error();
  applied_offset_ = id.end_offset - 1;
  publish(std::move(*image));
  return Status::success();
}

void MetadataLoader::publish(ImagePtr next) {
  auto before = publisher_.current();
  if (auto published = publisher_.publish(next); !published.ok()) {
    log::error("metadata image not published: {}", published.error().message);
    return;
  }
  for (const auto& listener : listeners_) listener(before, next);
}

}  // namespace bulwark::cluster
