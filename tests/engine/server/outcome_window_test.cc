// OutcomeWindow: readers see every outcome in order; the writer waits for the slowest reader
// instead of overwriting what it has not routed; a reader about to sleep is woken by the next
// outcome (the eventfd is written), and not woken when it is awake.
#include "engine/server/outcome_window.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace vouch::server {
namespace {

Outcome At(Sequence seq) {
  Outcome outcome;
  outcome.seq = seq;
  outcome.id = seq * 10;
  outcome.origin = seq % 3;
  return outcome;
}

TEST(OutcomeWindowTest, ReadsBackWhatWasWrittenUntilOverwritten) {
  OutcomeWindow window(1024, 1);
  for (Sequence seq = 1; seq <= 1500; ++seq) {
    window.OnOutcome(At(seq));
    window.Advance(0, seq + 1);  // The reader keeps up.
  }
  EXPECT_EQ(window.end(), 1501u);
  EXPECT_EQ(window.oldest_readable(), 1501u - 1024u);
  EXPECT_FALSE(window.Read(400).has_value()) << "overwritten by 1424";
  ASSERT_TRUE(window.Read(1000).has_value());
  EXPECT_EQ(window.Read(1000)->id, 10000u);
  EXPECT_FALSE(window.Read(1501).has_value()) << "not written yet";
}

TEST(OutcomeWindowTest, WriterWaitsForTheSlowestReader) {
  OutcomeWindow window(1024, 2);
  window.Advance(1, 100);  // Reader 1 holds back at 100; reader 0 routes everything at once.
  std::atomic<Sequence> written{0};
  std::thread writer([&] {
    for (Sequence seq = 1; seq <= 3000; ++seq) {
      window.OnOutcome(At(seq));
      written.store(seq, std::memory_order_relaxed);
    }
  });
  Sequence fast = 1;
  while (written.load(std::memory_order_relaxed) < 1024 + 99) {
    for (; fast < window.end(); ++fast) {
      ASSERT_EQ(window.Read(fast)->seq, fast);
    }
    window.Advance(0, fast);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(written.load(), 1024u + 99u) << "the slot of seq 100 is still unrouted by reader 1";
  EXPECT_GE(window.writer_waits(), 1u);
  window.Advance(1, 3001);
  for (; fast <= 3000; fast = window.end()) window.Advance(0, window.end());
  writer.join();
  EXPECT_EQ(window.end(), 3001u);
}

TEST(OutcomeWindowTest, SleepingReaderIsWokenAndAnAwakeOneIsNot) {
  OutcomeWindow window(1024, 1);
  const int fd = eventfd(0, EFD_NONBLOCK);
  window.SetWakeFd(0, fd);
  uint64_t count = 0;

  window.OnOutcome(At(1));
  EXPECT_EQ(read(fd, &count, sizeof(count)), -1) << "not sleeping: no system call";
  EXPECT_FALSE(window.PrepareToSleep(0, 1)) << "seq 1 is waiting to be routed";
  window.Awake(0);

  ASSERT_TRUE(window.PrepareToSleep(0, 2));
  window.OnOutcome(At(2));
  EXPECT_EQ(read(fd, &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
  window.Awake(0);
  window.OnOutcome(At(3));
  EXPECT_EQ(read(fd, &count, sizeof(count)), -1) << "woken once, then awake";
  close(fd);
}

}  // namespace
}  // namespace vouch::server
