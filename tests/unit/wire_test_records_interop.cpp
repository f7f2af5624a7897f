// Interop with a real Kafka client's record batch code: kafka-python (Debian's python3-kafka, under
// /usr/bin/python3) builds batches with every codec it has libraries for and we decode them; we
// encode batches with every codec and kafka-python decodes and checks them.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "wire/compression.h"
#include "wire/record_batch.h"

namespace bulwark::wire {
namespace {

namespace fs = std::filesystem;

// Both sides generate the same records from the same rules.
constexpr int kRecordCount = 40;

const char* kScript = R"PY(
import os, sys
from kafka import codec
from kafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordBatch

CODECS = [("none", 0, lambda: True), ("gzip", 1, codec.has_gzip), ("snappy", 2, codec.has_snappy),
          ("lz4", 3, codec.has_lz4), ("zstd", 4, codec.has_zstd)]

def expected():
    out = []
    for i in range(40):
        ts = 1700000000000 + ((i * 37) % 11) * 1000
        key = None if i % 5 == 0 else b"key-%d" % i
        if i % 7 == 3:
            value = None
        elif i % 11 == 4:
            value = b""
        else:
            value = b"value-%d-" % i + b"x" * 100
        headers = [("h%d" % h, None if h == 1 else b"hv%d" % (i * h)) for h in range(i % 3)]
        out.append((i, ts, key, value, headers))
    return out

mode, directory = sys.argv[1], sys.argv[2]
if mode == "write":
    for name, cid, available in CODECS:
        if not available():
            print("unavailable", name)
            continue
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=cid, is_transactional=0,
                                            producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                            batch_size=1 << 20)
        for offset, ts, key, value, headers in expected():
            assert builder.append(offset, ts, key, value, headers) is not None
        with open(os.path.join(directory, "py-" + name + ".bin"), "wb") as f:
            f.write(bytes(builder.build()))
        print("wrote", name)
else:
    for name, cid, available in CODECS:
        path = os.path.join(directory, "cpp-" + name + ".bin")
        if not available() or not os.path.exists(path):
            print("unavailable", name)
            continue
        batch = DefaultRecordBatch(bytearray(open(path, "rb").read()))
        assert batch.validate_crc(), name + ": crc"
        assert batch.compression_type == cid, name + ": codec %d" % batch.compression_type
        want = expected()
        assert batch.max_timestamp == max(w[1] for w in want), name + ": max timestamp"
        assert batch.last_offset_delta == len(want) - 1, name + ": last offset delta"
        got = list(batch)
        assert len(got) == len(want), name + ": count %d" % len(got)
        for record, (offset, ts, key, value, headers) in zip(got, want):
            assert record.offset == offset, (name, record.offset, offset)
            assert record.timestamp == ts, (name, record.timestamp, ts)
            assert record.key == key, (name, record.key, key)
            assert record.value == value, (name, record.value, value)
            assert list(record.headers) == headers, (name, record.headers, headers)
        print("ok", name)
)PY";

std::vector<Record> expected_records() {
  std::vector<Record> out;
  for (int i = 0; i < kRecordCount; ++i) {
    Record r;
    r.offset = i;
    r.timestamp = 1'700'000'000'000LL + ((i * 37) % 11) * 1000;
    auto text = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
    if (i % 5 != 0) r.key = text("key-" + std::to_string(i));
    if (i % 7 == 3) {
      r.value = std::nullopt;
    } else if (i % 11 == 4) {
      r.value = Bytes{};
    } else {
      r.value = text("value-" + std::to_string(i) + "-" + std::string(100, 'x'));
    }
    for (int h = 0; h < i % 3; ++h) {
      RecordHeader header;
      header.key = "h" + std::to_string(h);
      if (h != 1) header.value = text("hv" + std::to_string(i * h));
      r.headers.push_back(std::move(header));
    }
    out.push_back(std::move(r));
  }
  return out;
}

struct RunResult {
  int status = -1;
  std::string output;
};

RunResult run_python(const fs::path& script, const std::string& mode, const fs::path& dir) {
  std::string command = "/usr/bin/python3 '" + script.string() + "' " + mode + " '" + dir.string() + "' 2>&1";
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer;
  std::size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int raw = pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

class KafkaPythonInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 missing";
    if (std::system("/usr/bin/python3 -c 'import kafka.record.default_records' >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "kafka-python (python3-kafka) not importable";
    char tmpl[] = "/tmp/bulwark-records-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    script_ = dir_ / "interop.py";
    std::ofstream(script_) << kScript;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  fs::path script_;
};

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const std::pair<const char*, Compression> kCodecs[] = {{"none", Compression::none},
                                                        {"gzip", Compression::gzip},
                                                        {"snappy", Compression::snappy},
                                                        {"lz4", Compression::lz4},
                                                        {"zstd", Compression::zstd}};

TEST_F(KafkaPythonInterop, WeDecodeWhatKafkaPythonBuilds) {
  RunResult run = run_python(script_, "write", dir_);
  ASSERT_EQ(run.status, 0) << run.output;
  auto want = expected_records();
  int decoded_codecs = 0;
  for (const auto& [name, codec] : kCodecs) {
    fs::path path = dir_ / (std::string("py-") + name + ".bin");
    if (!fs::exists(path)) {
      std::cout << "kafka-python cannot write " << name << " here: skipped\n";
      continue;
    }
    SCOPED_TRACE(name);
    Bytes batch = read_file(path);
    auto header = parse_batch_header(ByteView(batch));
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header->compression(), codec);  // it really used the codec (values are compressible)
    EXPECT_EQ(header->total_size(), batch.size());
    EXPECT_TRUE(batch_crc_ok(ByteView(batch)));
    auto split = split_batches(ByteView(batch));
    ASSERT_TRUE(split.ok());
    EXPECT_EQ(split->batches.size(), 1u);
    auto records = decode_records(ByteView(batch));
    ASSERT_TRUE(records.ok()) << records.error().message;
    ASSERT_EQ(records->size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const Record& got = (*records)[i];
      EXPECT_EQ(got.offset, want[i].offset);
      EXPECT_EQ(got.timestamp, want[i].timestamp);
      EXPECT_EQ(got.key, want[i].key);
      EXPECT_EQ(got.value, want[i].value);
      ASSERT_EQ(got.headers.size(), want[i].headers.size());
      for (std::size_t h = 0; h < got.headers.size(); ++h) {
        EXPECT_EQ(got.headers[h].key, want[i].headers[h].key);
        EXPECT_EQ(got.headers[h].value, want[i].headers[h].value);
      }
    }
    // Re-encoding what we decoded gives a batch with the same records section for 'none'
    // (kafka-python and we follow the same layout).
    if (codec == Compression::none) {
      auto ours = encode_batch(want, BatchOptions{.partition_leader_epoch = 0});
      ASSERT_TRUE(ours.ok());
      EXPECT_EQ(*ours, batch);
    }
    ++decoded_codecs;
  }
  EXPECT_GE(decoded_codecs, 2);  // none and gzip need no optional Python modules
}

TEST_F(KafkaPythonInterop, KafkaPythonDecodesWhatWeBuild) {
  auto records = expected_records();
  for (const auto& [name, codec] : kCodecs) {
    auto batch = encode_batch(records, BatchOptions{.compression = codec});
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    std::ofstream(dir_ / (std::string("cpp-") + name + ".bin"), std::ios::binary)
        .write(reinterpret_cast<const char*>(batch->data()), static_cast<std::streamsize>(batch->size()));
  }
  RunResult run = run_python(script_, "read", dir_);
  ASSERT_EQ(run.status, 0) << run.output;
  std::set<std::string> ok;
  std::istringstream lines(run.output);
  std::string word, name;
  while (lines >> word >> name) {
    if (word == "ok") ok.insert(name);
  }
  for (const auto& [codec_name, codec] : kCodecs) {
    (void)codec;
    if (run.output.find(std::string("unavailable ") + codec_name) != std::string::npos) {
      std::cout << "kafka-python cannot read " << codec_name << " here: skipped\n";
      continue;
    }
    EXPECT_TRUE(ok.count(codec_name)) << codec_name << "\n" << run.output;
  }
  EXPECT_TRUE(ok.count("none") && ok.count("gzip")) << run.output;
}

}  // namespace
}  // namespace bulwark::wire
