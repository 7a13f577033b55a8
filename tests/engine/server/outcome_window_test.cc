// OutcomeWindow: readers see every outcome in order; the writer never waits for a reader (it
// overwrites, and a lapped reader sees the overwritten seq as gone, never a torn or wrong
// outcome); a reader about to sleep is woken by the next outcome (the eventfd is written), and
// not woken when it is awake.
#include "engine/server/outcome_window.h"

#include <sys/eventfd.h>
#include <unistd.h>

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
  }
  EXPECT_EQ(window.end(), 1501u);
  EXPECT_EQ(window.oldest_readable(), 1501u - 1024u);
  EXPECT_FALSE(window.Read(400).has_value()) << "overwritten by 1424";
  ASSERT_TRUE(window.Read(1000).has_value());
  EXPECT_EQ(window.Read(1000)->id, 10000u);
  EXPECT_FALSE(window.Read(1501).has_value()) << "not written yet";
}

// Issue 12 item 1: before, the writer (the reconciler) spun here until every reader had routed
// the slot it needed, so an I/O thread that waited on the reconciler deadlocked with it.
TEST(OutcomeWindowTest, WriterNeverWaitsForAReaderThatDoesNotRead) {
  OutcomeWindow window(1024, 2);  // Neither reader ever reads.
  std::thread writer([&] {
    for (Sequence seq = 1; seq <= 5000; ++seq) window.OnOutcome(At(seq));
  });
  writer.join();  // Before the fix: never returns.
  EXPECT_EQ(window.end(), 5001u);
  EXPECT_FALSE(window.Read(1).has_value()) << "lapped: gone, not wrong";
  ASSERT_TRUE(window.Read(5000).has_value());
  EXPECT_EQ(window.Read(5000)->id, 50000u);
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
