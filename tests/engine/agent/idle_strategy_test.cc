// Tests of IdleConfig, the backoff progression of IdleStrategy, and the Parker.
//
// Method: the backoff is checked step by step through IdleStrategy::phase() and park_ns() on one
// thread, with park times of microseconds. The Parker's protocol is checked on one thread (an
// Unpark() between PrepareToPark() and Park() must make Park() return at once) and across threads,
// with park timeouts of seconds and bounds of 200 ms, so that only a lost wakeup fails the test,
// not a slow or busy machine.
#include "engine/agent/idle_strategy.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "engine/agent/parker.h"
#include "gtest/gtest.h"

namespace vouch {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kLongParkNs = 5'000'000'000;  // Far longer than any bound below.
constexpr auto kWakeBound = milliseconds(200);

IdleConfig Backoff(int spins_max, int yields_max, int64_t park_min_ns, int64_t park_max_ns) {
  return IdleConfig{.kind = IdleKind::kBackoffPark,
                    .spins_max = spins_max,
                    .yields_max = yields_max,
                    .park_min_ns = park_min_ns,
                    .park_max_ns = park_max_ns};
}

TEST(IdleConfigTest, AcceptsDefaultsAndEdges) {
  EXPECT_TRUE(IdleConfig{}.Validate().ok());
  EXPECT_EQ(IdleConfig{}.kind, IdleKind::kBackoffPark);
  EXPECT_TRUE(Backoff(0, 0, 1, 1).Validate().ok());
}

TEST(IdleConfigTest, RefusesBadValues) {
  const IdleConfig bad[] = {
      Backoff(-1, 50, 1'000, 1'000'000),     // Negative spins.
      Backoff(100, -1, 1'000, 1'000'000),    // Negative yields.
      Backoff(100, 50, 0, 1'000'000),        // Park time not positive.
      Backoff(100, 50, -5, 1'000'000),       // Negative park time.
      Backoff(100, 50, 2'000'000, 1'000'000)  // min > max.
  };
  for (const IdleConfig& config : bad) {
    EXPECT_EQ(config.Validate().code(), absl::StatusCode::kInvalidArgument)
        << config.spins_max << " " << config.yields_max << " " << config.park_min_ns << " "
        << config.park_max_ns;
  }
}

TEST(IdleKindTest, NamesRoundTrip) {
  for (IdleKind kind : {IdleKind::kBusySpin, IdleKind::kYield, IdleKind::kBackoffPark}) {
    const absl::StatusOr<IdleKind> parsed = ParseIdleKind(IdleKindName(kind));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(IdleKindName(IdleKind::kBusySpin), "busy_spin");
  EXPECT_EQ(IdleKindName(IdleKind::kYield), "yield");
  EXPECT_EQ(IdleKindName(IdleKind::kBackoffPark), "backoff_park");
}

TEST(IdleKindTest, UnknownNameIsAnError) {
  for (std::string_view name : {"", "spin", "BUSY_SPIN", "backoff_park "}) {
    const absl::StatusOr<IdleKind> parsed = ParseIdleKind(name);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_NE(ParseIdleKind("nope").status().message().find("backoff_park"), std::string_view::npos);
}

TEST(IdleStrategyTest, BackoffGoesSpinYieldParkAndDoublesTheParkTime) {
  Parker parker;
  IdleStrategy idle(Backoff(3, 2, 1'000, 8'000), &parker);
  const IdlePhase expected[] = {IdlePhase::kSpin,  IdlePhase::kSpin,  IdlePhase::kSpin,
                                IdlePhase::kYield, IdlePhase::kYield, IdlePhase::kPark};
  for (IdlePhase phase : expected) {
    EXPECT_EQ(idle.phase(), phase);
    EXPECT_EQ(idle.park_ns(), 1'000);
    if (phase != IdlePhase::kPark) idle.Idle(0);
  }
  EXPECT_EQ(parker.park_count(), 0u);
  for (int64_t park_ns : {1'000, 2'000, 4'000, 8'000, 8'000}) {
    EXPECT_EQ(idle.phase(), IdlePhase::kPark);
    EXPECT_EQ(idle.park_ns(), park_ns);
    idle.Idle(0);
  }
  EXPECT_EQ(parker.park_count(), 5u);
}

TEST(IdleStrategyTest, WorkResetsTheBackoff) {
  Parker parker;
  IdleStrategy idle(Backoff(1, 1, 1'000, 8'000), &parker);
  for (int turn = 0; turn < 4; ++turn) idle.Idle(0);
  ASSERT_EQ(idle.phase(), IdlePhase::kPark);
  ASSERT_EQ(idle.park_ns(), 4'000);
  idle.Idle(7);
  EXPECT_EQ(idle.phase(), IdlePhase::kSpin);
  EXPECT_EQ(idle.park_ns(), 1'000);
  idle.Idle(0);
  idle.Idle(0);
  idle.Reset();
  EXPECT_EQ(idle.phase(), IdlePhase::kSpin);
}

TEST(IdleStrategyTest, FixedKindsNeverPark) {
  Parker parker;
  IdleConfig spin;
  spin.kind = IdleKind::kBusySpin;
  IdleConfig yield;
  yield.kind = IdleKind::kYield;
  IdleStrategy spinning(spin, &parker);
  IdleStrategy yielding(yield, &parker);
  for (int turn = 0; turn < 1'000; ++turn) {
    spinning.Idle(0);
    yielding.Idle(0);
  }
  EXPECT_EQ(spinning.phase(), IdlePhase::kSpin);
  EXPECT_EQ(yielding.phase(), IdlePhase::kYield);
  EXPECT_EQ(parker.park_count(), 0u);
}

TEST(IdleStrategyTest, ParksWithoutAParkerBySleeping) {
  IdleStrategy idle(Backoff(0, 0, 2'000'000, 2'000'000), nullptr);
  ASSERT_EQ(idle.phase(), IdlePhase::kPark);
  const auto start = SteadyClock::now();
  idle.Idle(0);
  EXPECT_GE(SteadyClock::now() - start, milliseconds(2));
}

TEST(ParkerTest, UnparkWithNobodyParkingDoesNothing) {
  Parker parker;
  for (int i = 0; i < 1'000; ++i) parker.Unpark();
  EXPECT_EQ(parker.wake_count(), 0u);
}

TEST(ParkerTest, ParkTimesOut) {
  Parker parker;
  parker.PrepareToPark();
  const auto start = SteadyClock::now();
  parker.Park(20'000'000);
  EXPECT_GE(SteadyClock::now() - start, milliseconds(19));  // Allow for clock granularity.
  EXPECT_EQ(parker.park_count(), 1u);
}

// The race the protocol exists for: the producer's Unpark() lands after PrepareToPark() but before
// Park(). Park() must not sleep.
TEST(ParkerTest, UnparkBetweenPrepareAndParkIsNotLost) {
  Parker parker;
  parker.PrepareToPark();
  parker.Unpark();
  EXPECT_EQ(parker.wake_count(), 1u);
  const auto start = SteadyClock::now();
  parker.Park(kLongParkNs);
  EXPECT_LT(SteadyClock::now() - start, kWakeBound);
}

TEST(ParkerTest, CancelledParkIsNotWoken) {
  Parker parker;
  parker.PrepareToPark();
  parker.CancelPark();
  parker.Unpark();
  EXPECT_EQ(parker.wake_count(), 0u);
}

TEST(ParkerTest, UnparkWakesASleepingThread) {
  Parker parker;
  std::atomic<bool> woke{false};
  std::thread agent([&] {
    parker.PrepareToPark();
    parker.Park(kLongParkNs);
    woke.store(true, std::memory_order_relaxed);  // relaxed: the join publishes it.
  });
  while (parker.park_count() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(20));  // Most likely asleep in the kernel by now.
  const auto start = SteadyClock::now();
  parker.Unpark();
  agent.join();
  EXPECT_LT(SteadyClock::now() - start, kWakeBound);
  EXPECT_TRUE(woke.load(std::memory_order_relaxed));
  EXPECT_EQ(parker.wake_count(), 1u);
}

TEST(ParkerTest, ConcurrentUnparksMakeOneSystemCall) {
  Parker parker;
  parker.PrepareToPark();
  std::thread producers[4];
  for (std::thread& producer : producers) {
    producer = std::thread([&] {
      for (int i = 0; i < 1'000; ++i) parker.Unpark();
    });
  }
  for (std::thread& producer : producers) producer.join();
  EXPECT_EQ(parker.wake_count(), 1u);
}

}  // namespace
}  // namespace vouch
