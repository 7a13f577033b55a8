// EventLog: every line is one JSON object whose strings are escaped by the shared JsonWriter.
// Method: write through a real log (its own thread, a temporary file), stop it, and compare the
// lines with the timestamp cut out. An event name or detail holding a quote, a backslash or a
// control character must come out escaped, so a line still parses as one object.
#include "engine/server/event_log.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "engine/types/transaction.h"
#include "gtest/gtest.h"

namespace vouch::server {
namespace {

// The lines of `path`, each with its "ts" value removed ({"ts":"...", -> {).
std::vector<std::string> LinesWithoutTs(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    const std::string prefix = "{\"ts\":\"";
    EXPECT_EQ(line.rfind(prefix, 0), 0u) << line;
    const size_t end = line.find("\",", prefix.size());
    EXPECT_NE(end, std::string::npos) << line;
    lines.push_back("{" + line.substr(end + 2));
  }
  return lines;
}

TEST(EventLogTest, LinesAreJsonWithEveryStringEscaped) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/events.jsonl";
  std::remove(path.c_str());
  OutcomeWindow window(16, 1);
  window.StartAt(1);
  auto log = EventLog::Open(path, &window, 0, 0);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Start();

  Outcome failed;
  failed.seq = 1;
  failed.id = 7;
  failed.kind = OutcomeKind::kLateFailed;
  failed.verifier = VerifierId::kFraud;
  failed.reason = Reason::kVelocityCount;
  failed.source_account = 42;
  failed.amount_minor = -1250;
  failed.currency = PackCurrency("USD");
  failed.compensation = kCompensationReversed | kCompensationAccountHeld;
  window.OnOutcome(failed);
  (*log)->Event("odd\"name\\", std::string("say \"hi\"\\ \n\t\x01", 14));
  (*log)->HoldReleased(42);
  (*log)->AccountChanged(42, "ACCOUNT_ACTION_FREEZE");
  (*log)->Event("start", "");
  (*log)->Stop();

  const std::vector<std::string> lines = LinesWithoutTs(path);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0],
            "{\"event\":\"late_failure\",\"seq\":1,\"id\":7,\"kind\":\"LATE_FAILED\","
            "\"verifier\":\"fraud\",\"reason\":\"velocity_count\",\"account\":42,"
            "\"amount\":-1250,\"currency\":\"USD\",\"reversed\":true,\"account_held\":true}");
  EXPECT_EQ(lines[1], "{\"event\":\"hold\",\"account\":42,\"seq\":1}");
  EXPECT_EQ(lines[2],
            "{\"event\":\"odd\\\"name\\\\\","
            "\"detail\":\"say \\\"hi\\\"\\\\ \\u000a\\u0009\\u0001\"}");
  EXPECT_EQ(lines[3], "{\"event\":\"hold_released\",\"account\":42}");
  EXPECT_EQ(lines[4],
            "{\"event\":\"account_changed\",\"account\":42,\"action\":\"ACCOUNT_ACTION_FREEZE\"}");
  EXPECT_EQ(lines[5], "{\"event\":\"start\",\"detail\":\"\"}");
  EXPECT_EQ((*log)->lines(), 6u);
}

}  // namespace
}  // namespace vouch::server
