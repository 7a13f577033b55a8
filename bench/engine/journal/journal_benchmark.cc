// SegmentWriter throughput: the cost of Add + Write per record (what a process-crash-safe ack
// costs), and of Add + Write + Sync per batch (what a power-loss-safe ack costs, amortised over
// a group commit of 1..512 records). Records are confirmed-transaction sized (91-byte payload).
//
// Files go to $TEST_TMPDIR if set, else /tmp; fsync latency depends entirely on that device.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "engine/journal/records.h"
#include "engine/journal/segment.h"

namespace vouch::journal {
namespace {

std::string MakeBenchDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string pattern = std::string(root != nullptr ? root : "/tmp") + "/journal_bench_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

void RemoveDir(const std::string& dir) {
  const std::string command = "rm -rf '" + dir + "'";
  if (std::system(command.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
}

std::unique_ptr<SegmentWriter> OpenWriter(benchmark::State& state, const std::string& dir) {
  JournalOptions options;
  options.dir = dir;
  absl::StatusOr<std::unique_ptr<SegmentWriter>> writer = SegmentWriter::Open(options, 0);
  if (!writer.ok()) {
    state.SkipWithError(writer.status().ToString().c_str());
    return nullptr;
  }
  return *std::move(writer);
}

size_t SamplePayload(char* out) {
  ConfirmedRecord record;
  record.seq = 1;
  record.txn.id = 123456789;
  record.txn.source_account = 1;
  record.txn.destination_account = 2;
  record.txn.amount_minor = 1999;
  record.confirmed_unix_ns = 1700000000000000000;
  return EncodeConfirmedRecord(record, out);
}

void SetRates(benchmark::State& state, uint64_t records, uint64_t bytes) {
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

// One record, one write(2): the "written" ack policy without batching.
void BM_AddWritePerRecord(benchmark::State& state) {
  const std::string dir = MakeBenchDir();
  std::unique_ptr<SegmentWriter> writer = OpenWriter(state, dir);
  char payload[kConfirmedRecordBytes];
  const size_t size = SamplePayload(payload);
  uint64_t seq = 0;
  for (auto _ : state) {
    if (writer == nullptr) break;
    if (!writer->Add(RecordType::kConfirmed, ++seq, payload, size) || !writer->Write().ok()) {
      state.SkipWithError("add or write failed");
      break;
    }
  }
  if (writer != nullptr) SetRates(state, writer->counters().records, writer->counters().bytes);
  writer.reset();
  RemoveDir(dir);
}
BENCHMARK(BM_AddWritePerRecord);

// A batch of range(0) records, one write(2) and one fdatasync: the "durable" ack policy with
// group commit. fsync_us is the mean Sync() time.
void BM_WriteSyncPerBatch(benchmark::State& state) {
  const std::string dir = MakeBenchDir();
  std::unique_ptr<SegmentWriter> writer = OpenWriter(state, dir);
  const int64_t batch = state.range(0);
  char payload[kConfirmedRecordBytes];
  const size_t size = SamplePayload(payload);
  uint64_t seq = 0;
  std::chrono::nanoseconds sync_time{0};
  for (auto _ : state) {
    if (writer == nullptr) break;
    for (int64_t i = 0; i < batch; ++i) {
      ++seq;
      // A full segment refuses Adds until Write() rotates it, as in the journal stage.
      if (!writer->Add(RecordType::kConfirmed, seq, payload, size) &&
          (!writer->Write().ok() || !writer->Add(RecordType::kConfirmed, seq, payload, size))) {
        state.SkipWithError("add failed");
        break;
      }
    }
    if (!writer->Write().ok()) {
      state.SkipWithError("write failed");
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    if (!writer->Sync().ok()) {
      state.SkipWithError("sync failed");
      break;
    }
    sync_time += std::chrono::steady_clock::now() - start;
  }
  if (writer != nullptr) {
    SetRates(state, writer->counters().records, writer->counters().bytes);
    const uint64_t syncs = writer->counters().syncs;
    state.counters["fsync_us"] =
        syncs == 0 ? 0.0 : static_cast<double>(sync_time.count()) / 1e3 / static_cast<double>(syncs);
  }
  writer.reset();
  RemoveDir(dir);
}
BENCHMARK(BM_WriteSyncPerBatch)->Arg(1)->Arg(8)->Arg(64)->Arg(512)->UseRealTime();

}  // namespace
}  // namespace vouch::journal
