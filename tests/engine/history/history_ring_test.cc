// HistoryRing: a reader racing the single writer never sees a torn record. The writer fills
// every word of a record from its sequence number; the reader checks that relation.
#include "engine/history/history_ring.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace vouch {
namespace {

HistoryRecord RecordFor(Sequence seq) {
  HistoryRecord record;
  record.seq = seq;
  record.id = seq * 3;
  record.resolved = true;
  record.outcome.seq = seq;
  record.outcome.id = seq * 3;
  record.outcome.decided_ns = static_cast<int64_t>(seq) * 7;
  record.compensated_ns = static_cast<int64_t>(seq) * 11;
  return record;
}

TEST(HistoryRingTest, ReadsBackTheRecordForItsSequenceOnly) {
  HistoryRing ring(4);
  ring.Write(RecordFor(5));
  auto read = ring.Read(5);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->id, 15u);
  EXPECT_FALSE(ring.Read(1).has_value()) << "same slot, other sequence";
  ring.Write(RecordFor(9));  // Overwrites slot 1.
  EXPECT_FALSE(ring.Read(5).has_value());
  EXPECT_TRUE(ring.Read(9).has_value());
}

TEST(HistoryRingTest, ConcurrentReaderNeverSeesATornRecord) {
  HistoryRing ring(8);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (Sequence seq = 1; seq <= 500'000; ++seq) ring.Write(RecordFor(seq));
    done = true;
  });
  uint64_t seen = 0;
  while (!done.load()) {
    for (Sequence seq = 1; seq <= 8; ++seq) {
      // Read any record currently in the slot by probing recent sequence numbers.
      for (Sequence probe = seq; probe <= 500'000; probe += 8 * 4096) {
        auto record = ring.Read(probe);
        if (!record) continue;
        ++seen;
        ASSERT_EQ(record->id, record->seq * 3);
        ASSERT_EQ(record->outcome.decided_ns, static_cast<int64_t>(record->seq) * 7);
        ASSERT_EQ(record->compensated_ns, static_cast<int64_t>(record->seq) * 11);
      }
    }
  }
  writer.join();
  auto last = ring.Read(500'000);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->id, 1'500'000u);
  (void)seen;
}

}  // namespace
}  // namespace vouch
