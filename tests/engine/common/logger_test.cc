// The library's messages go to the installed log sink, and nowhere else; without one they go to
// standard error exactly as before ("vouch: <message>\n").
//
// Method: a capturing sink (a mutex-guarded list, since the snapshot thread logs from its own
// thread) is installed for each test and removed after it, once the test's engine is destroyed.
// Standard error is captured around each real failure (gtest's CaptureStderr redirects fd 2), so
// "nothing reached stderr" is checked, not assumed. The real failures are provoked as in
// tests/engine/engine_journal_failure_test.cc: a journal whose segment writes to /dev/full, and
// snapshots whose every temporary name is taken by a directory. A failed VOUCH_CHECK is a death
// test: its sink echoes to stderr under a prefix of its own, so both lines can be matched.
#include "engine/common/logger.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/common/check.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/journal_fault.h"

namespace vouch {
namespace {

namespace fs = std::filesystem;

struct Message {
  LogSeverity severity;
  std::string text;
};

class CapturingSink {
 public:
  static void Write(LogSeverity severity, std::string_view message, void* context) {
    auto* self = static_cast<CapturingSink*>(context);
    absl::MutexLock lock(&self->mu_);
    self->messages_.push_back({severity, std::string(message)});
  }
  std::vector<Message> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  // The first message that starts with `prefix`, or nullopt.
  std::optional<Message> Find(std::string_view prefix) {
    absl::MutexLock lock(&mu_);
    for (const Message& message : messages_) {
      if (message.text.rfind(prefix, 0) == 0) return message;
    }
    return std::nullopt;
  }

 private:
  absl::Mutex mu_;
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
};

class LoggerTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogSink(&sink_); }
  void TearDown() override { SetLogSink(nullptr); }

  CapturingSink capture_;
  const LogSink sink_{&CapturingSink::Write, &capture_};
};

TEST(DefaultLogTest, WritesToStderrAsBefore) {
  ASSERT_TRUE(internal::LogSinkIsDefault());
  ::testing::internal::CaptureStderr();
  Log(LogSeverity::kWarning, "snapshot failed");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "vouch: snapshot failed\n");
}

TEST_F(LoggerTest, LogReachesTheSinkWithItsSeverityAndNotStderr) {
  EXPECT_FALSE(internal::LogSinkIsDefault());
  ::testing::internal::CaptureStderr();
  Log(LogSeverity::kError, "the journal stopped");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  const std::vector<Message> messages = capture_.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].severity, LogSeverity::kError);
  EXPECT_EQ(messages[0].text, "the journal stopped") << "no prefix, no newline";
}

TEST_F(LoggerTest, RemovingTheSinkRestoresStderr) {
  SetLogSink(nullptr);
  ::testing::internal::CaptureStderr();
  Log(LogSeverity::kInfo, "back to stderr");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "vouch: back to stderr\n");
  EXPECT_TRUE(capture_.messages().empty());
}

Options JournaledOptions(const std::string& dir, bool inline_mode) {
  Options options = testing::BankOptions(20);
  options.fraud_rules.velocity_enabled = false;
  options.inline_mode = inline_mode;
  options.durability.ack = AckPolicy::kWritten;
  options.durability.dir = dir;
  return options;
}

// engine/journal/stage/journal_stage.cc, JournalStage::Fail.
TEST_F(LoggerTest, AJournalFailureIsToldToTheSinkNotStderr) {
  const std::string dir = testing::EmptyTestDir("logger-journal");
  ManualClock clock;
  Options options = JournaledOptions(dir, /*inline_mode=*/true);
  options.clock = &clock;
  auto engine = Engine::Create(std::move(options));
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE((*engine)->Start().ok());
  ASSERT_EQ((*engine)->Submit(testing::Transfer(1, 1, 2, 100)).status, ConfirmStatus::kConfirmed);
  ASSERT_GE(testing::FillDiskUnderJournal(dir), 1);

  ::testing::internal::CaptureStderr();
  EXPECT_EQ((*engine)->Submit(testing::Transfer(2, 3, 4, 100)).reason, Reason::kJournalFailed);
  (void)(*engine)->Stop();
  engine->reset();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  const std::optional<Message> told = capture_.Find("journal I/O failed");
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->severity, LogSeverity::kError);
  EXPECT_NE(told->text.find("No space left"), std::string::npos) << told->text;
}

// engine/internal/engine_impl.cc, EngineImpl::RunSnapshots: a failed snapshot, tried again.
TEST_F(LoggerTest, AFailedSnapshotIsToldToTheSinkNotStderr) {
  const std::string dir = testing::EmptyTestDir("logger-snapshot");
  Options options = JournaledOptions(dir, /*inline_mode=*/false);
  options.durability.segment_bytes_max = 64 * 1024;  // ~600 records: closed segments.
  options.durability.snapshot_interval_records = 500;
  constexpr uint64_t kTransactions = 1'500;
  // Every name a snapshot's temporary file can take (records <= 2 per transaction) is a
  // directory that cannot be opened for writing or removed.
  fs::create_directories(dir);
  for (uint64_t index = 0; index <= 2 * kTransactions + 1; ++index) {
    const fs::path blocker =
        fs::path(dir) / absl::StrCat("snapshot-", std::string(20 - std::to_string(index).size(), '0'),
                                     index, ".snap.tmp");
    fs::create_directory(blocker);
    std::ofstream(blocker / "keep") << "x";
  }
  ::testing::internal::CaptureStderr();
  {
    auto engine = Engine::Create(std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    ASSERT_TRUE((*engine)->Start().ok());
    Sequence last = 0;
    for (uint64_t id = 1; id <= kTransactions; ++id) {
      const Confirmation c = (*engine)->Submit(
          testing::Transfer(id, 1 + id % 19, 2 + id % 19, 100), 0, AckWait::kCaller);
      ASSERT_EQ(c.status, ConfirmStatus::kConfirmed);
      last = c.seq;
    }
    ASSERT_TRUE((*engine)->AwaitAck({last, 0}));
    for (int i = 0; i < 3'000 && !capture_.Find("snapshot failed").has_value(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE((*engine)->Stats().snapshot_failures, 1u);
    EXPECT_TRUE((*engine)->Stop().drained);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  const std::optional<Message> told = capture_.Find("snapshot failed, trying again in ");
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->severity, LogSeverity::kWarning);
}

// engine/common/check.cc: a failed check reaches stderr itself, then the sink at kFatal.
void EchoToStderr(LogSeverity severity, std::string_view message, void*) {
  std::fprintf(stderr, "sink got %s: %.*s\n", severity == LogSeverity::kFatal ? "fatal" : "other",
               static_cast<int>(message.size()), message.data());
}

TEST(LoggerDeathTest, AFailedCheckReachesStderrAndTheSinkThenAborts) {
  static const LogSink kEcho{&EchoToStderr, nullptr};
  EXPECT_DEATH(
      {
        SetLogSink(&kEcho);
        VOUCH_CHECK(1 + 1 == 3, "arithmetic");
      },
      "vouch: check failed at .*logger_test.cc:[0-9]+: 1 \\+ 1 == 3 \\(arithmetic\\)\n"
      "sink got fatal: check failed at .*logger_test.cc:[0-9]+: 1 \\+ 1 == 3 \\(arithmetic\\)");
}

}  // namespace
}  // namespace vouch
