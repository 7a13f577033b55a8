// /metrics end to end: a server and its metrics endpoint on ephemeral loopback ports, real
// transactions through the C++ client, and a scrape over a plain socket. The scrape is parsed
// strictly as the Prometheus text format (every sample line is `name{labels} value` with a
// numeric value, and its family's HELP and TYPE come before it), then specific samples are
// checked against what the test did. The pipeline is threaded, so the test waits until the
// engine has decided every outcome before it checks values that depend on them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "client/client.h"
#include "engine/server/metrics/metrics.h"
#include "engine/server/server.h"
#include "engine/testing/engine_test_peer.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace vouch::server {
namespace {

using vouch::testing::BankOptions;
using vouch::testing::kBlockedMerchant;

using LabelSet = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  LabelSet labels;
  double value = 0;
};

// GET `path` over HTTP/1.0 (the server closes after the answer); the body, or "" on failure.
std::string HttpGet(int port, const std::string& path, std::string* status_line) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
    }
  }
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos) return "";
  *status_line = response.substr(0, response.find("\r\n"));
  return response.substr(header_end + 4);
}

// The family a sample belongs to: histogram and summary samples carry a suffix. (prometheus-cpp
// adds its own exposer_* families, among them a summary.)
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      const auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) {
        return base;
      }
    }
  }
  return name;
}

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// Parses the text exposition format; fails the test at the first malformed line.
std::vector<Sample> Parse(const std::string& body) {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // Family -> type.
  std::map<std::string, bool> helped;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line.substr(1));
      std::string keyword, family, rest;
      words >> keyword >> family;
      if (keyword == "HELP") helped[family] = true;
      if (keyword == "TYPE") {
        words >> rest;
        EXPECT_TRUE(helped[family]) << "TYPE before HELP: " << line;
        EXPECT_TRUE(rest == "counter" || rest == "gauge" || rest == "histogram" ||
                    rest == "summary" || rest == "untyped")
            << line;
        EXPECT_EQ(types.count(family), 0u) << "family typed twice: " << line;
        types[family] = rest;
      }
      continue;
    }
    Sample sample;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    sample.name = line.substr(0, i);
    EXPECT_FALSE(sample.name.empty()) << line;
    if (i < line.size() && line[i] == '{') {
      const size_t close = line.find('}', i);
      EXPECT_NE(close, std::string::npos) << line;
      if (close == std::string::npos) return samples;
      std::string labels = line.substr(i + 1, close - i - 1);
      while (!labels.empty()) {
        const size_t eq = labels.find("=\"");
        const size_t end = labels.find('"', eq + 2);
        EXPECT_TRUE(eq != std::string::npos && end != std::string::npos) << line;
        if (eq == std::string::npos || end == std::string::npos) return samples;
        sample.labels[labels.substr(0, eq)] = labels.substr(eq + 2, end - eq - 2);
        labels.erase(0, end + 1);
        if (!labels.empty() && labels[0] == ',') labels.erase(0, 1);
      }
      i = close + 1;
    }
    EXPECT_TRUE(i < line.size() && line[i] == ' ') << line;
    const std::string value = line.substr(i + 1);
    char* end = nullptr;
    sample.value = std::strtod(value.c_str(), &end);
    EXPECT_TRUE(!value.empty() && *end == '\0') << "value not numeric: " << line;
    const std::string family = FamilyOf(sample.name, types);
    EXPECT_TRUE(helped[family] && types.count(family) == 1)
        << "sample before its HELP and TYPE: " << line;
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The value of the sample with exactly these labels; fails (and returns -1) if there is none.
double Value(const std::vector<Sample>& samples, const std::string& name,
             const LabelSet& labels = {}) {
  for (const Sample& sample : samples) {
    if (sample.name == name && sample.labels == labels) return sample.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options engine = BankOptions(100);
    engine.verification_deadline_ns = 10'000'000'000;  // Only the blocked merchant fails.
    // A candidate rule set in shadow that blocks nothing: it passes the blocked merchant that
    // the live rules fail (would_have_passed) and agrees on the rest.
    engine.shadow_fraud_rules = engine.fraud_rules;
    engine.shadow_fraud_rules->blocked_merchants.clear();
    ServerOptions options;
    options.port = 0;
    auto server = Server::Create(options, std::move(engine));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_TRUE(server_->Start().ok());
    auto endpoint = MetricsEndpoint::Start(
        "127.0.0.1", 0, std::make_shared<MetricsCollector>(&server_->engine(), server_.get()));
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    endpoint_ = *std::move(endpoint);
    ASSERT_GT(endpoint_->port(), 0);
    client::ClientOptions client_options;
    client_options.port = server_->port();
    auto client = client::Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  void TearDown() override {
    client_.reset();
    endpoint_.reset();  // Before the server it reads.
    if (server_) server_->Shutdown();
  }

  void Submit(uint64_t id, int64_t amount, uint64_t merchant = 1) {
    v1::Transaction txn;
    txn.set_id(id);
    txn.set_source_account(id % 50 + 1);
    txn.set_destination_account(id % 50 + 2);
    txn.set_amount(amount);
    txn.set_currency("USD");
    txn.set_merchant_id(merchant);
    txn.set_merchant_category(5411);
    txn.set_country("GB");
    txn.set_device_id(77);
    auto confirmation = client_->Submit(txn, absl::Seconds(5));
    ASSERT_TRUE(confirmation.ok()) << confirmation.status();
    ASSERT_EQ(confirmation->status(), v1::CONFIRM_STATUS_CONFIRMED);
  }
  // Waits until `n` outcomes are decided and their entries retired: an entry retires only once
  // both verdicts are in, so a verdict that arrives after its outcome (the ledger's, for a fraud
  // failure) is counted too before the test scrapes.
  void AwaitOutcomes(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto done = [&] {
      const EngineStats stats = server_->engine().Stats();
      return stats.outcomes_total() >= n && stats.retired >= n;
    };
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(server_->engine().Stats().outcomes_total(), n);
    ASSERT_EQ(server_->engine().Stats().retired, n);
  }
  std::vector<Sample> Scrape() {
    std::string status_line;
    const std::string body = HttpGet(endpoint_->port(), "/metrics", &status_line);
    EXPECT_NE(status_line.find(" 200 "), std::string::npos) << status_line;
    return Parse(body);
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(MetricsTest, ScrapeCountsConfirmationsOutcomesAndTheLateFailure) {
  Submit(1, 100);
  Submit(2, 200);
  Submit(3, 300, kBlockedMerchant);
  AwaitOutcomes(3);

  const std::vector<Sample> samples = Scrape();
  const LabelSet confirmed = {{"status", "CONFIRMED"}, {"reason", "none"}};
  EXPECT_EQ(Value(samples, "vouch_confirmations_total", confirmed), 3);
  EXPECT_EQ(Value(samples, "vouch_confirmations_total",
                  {{"status", "REJECTED"}, {"reason", "account_on_hold"}}),
            0);
  EXPECT_EQ(Value(samples, "vouch_confirmations_total",
                  {{"status", "BUSY"}, {"reason", "queue_full"}}),
            0);
  EXPECT_EQ(Value(samples, "vouch_outcomes_total", {{"kind", "VERIFIED"}, {"reason", "none"}}),
            2);
  EXPECT_EQ(Value(samples, "vouch_outcomes_total",
                  {{"kind", "LATE_FAILED"}, {"reason", "blocked_merchant"}}),
            1);
  EXPECT_EQ(Value(samples, "vouch_outcomes_total",
                  {{"kind", "LATE_TIMEOUT"}, {"reason", "deadline_exceeded"}}),
            0);
  EXPECT_EQ(Value(samples, "vouch_late_failures_total"), 1);
  EXPECT_EQ(Value(samples, "vouch_held_total"), 0);
  EXPECT_EQ(Value(samples, "vouch_duplicates_total"), 0);
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_transactions"), 0);
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_minor", {{"currency", "USD"}}), 0);
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_minor", {{"currency", "EUR"}}), 0);
  EXPECT_EQ(Value(samples, "vouch_in_flight_transactions"), 0);
  EXPECT_EQ(Value(samples, "vouch_account_holds"), 1);  // The fraud's source account.
  EXPECT_EQ(Value(samples, "vouch_account_holds_placed_total"), 1);
  EXPECT_EQ(Value(samples, "vouch_confirm_to_outcome_seconds_count"), 3);
  EXPECT_EQ(Value(samples, "vouch_confirm_to_outcome_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_GT(Value(samples, "vouch_confirm_to_outcome_seconds_sum"), 0);
  // The bucket bounds are part of the metric's contract (docs/OPERATIONS.md): 10 us to 1 s.
  const std::vector<double> expected_bounds_s = {1e-5,  2.5e-5, 5e-5, 1e-4,   2.5e-4,
                                                 5e-4,  1e-3,   2.5e-3, 5e-3, 1e-2,
                                                 2.5e-2, 5e-2,  0.1,  0.25,   1};
  std::vector<double> bounds_s;
  for (const Sample& sample : samples) {
    if (sample.name != "vouch_confirm_to_outcome_seconds_bucket") continue;
    if (sample.labels.at("le") != "+Inf") bounds_s.push_back(std::stod(sample.labels.at("le")));
  }
  ASSERT_EQ(bounds_s.size(), expected_bounds_s.size());
  for (size_t b = 0; b < bounds_s.size(); ++b) {
    EXPECT_NEAR(bounds_s[b], expected_bounds_s[b], expected_bounds_s[b] * 1e-9) << b;
  }
  EXPECT_EQ(Value(samples, "vouch_confirm_to_verdict_seconds_count", {{"verifier", "fraud"}}), 3);
  EXPECT_EQ(Value(samples, "vouch_confirm_to_verdict_seconds_count", {{"verifier", "ledger"}}), 3);
  EXPECT_EQ(
      Value(samples, "vouch_confirm_to_verdict_seconds_count", {{"verifier", "fraud_shadow"}}), 3);
  EXPECT_EQ(Value(samples, "vouch_verifier_failures_total", {{"verifier", "fraud"}}), 1);
  EXPECT_EQ(Value(samples, "vouch_verifier_failures_total", {{"verifier", "fraud_shadow"}}), 0);
  EXPECT_EQ(Value(samples, "vouch_shadow_verdicts_total",
                  {{"verifier", "fraud_shadow"}, {"comparison", "agreed"}}),
            2);
  EXPECT_EQ(Value(samples, "vouch_shadow_verdicts_total",
                  {{"verifier", "fraud_shadow"}, {"comparison", "would_have_passed"}}),
            1);
  EXPECT_EQ(Value(samples, "vouch_shadow_verdicts_total",
                  {{"verifier", "fraud_shadow"}, {"comparison", "would_have_failed"}}),
            0);
  EXPECT_EQ(Value(samples, "vouch_verdict_queue_depth", {{"verifier", "fraud_shadow"}}), 0);
  EXPECT_EQ(Value(samples, "vouch_queue_depth", {{"queue", "fraud_verdicts"}}), 0);
  EXPECT_EQ(Value(samples, "vouch_risk_holds_total"), 0);
  EXPECT_EQ(Value(samples, "vouch_server_connections_open"), 1);
  EXPECT_EQ(Value(samples, "vouch_server_transactions_in_total"), 3);
  EXPECT_GE(Value(samples, "vouch_agent_duty_cycle_max_seconds", {{"agent", "vouch-reconcile"}}),
            0);
  EXPECT_EQ(Value(samples, "vouch_server_outcomes_lost_total"), 0);
  EXPECT_EQ(Value(samples, "vouch_held_results_total", {{"kind", "LATE_FAILED"}}), 0);
}

TEST_F(MetricsTest, ValueAtRiskRisesWhileAVerifierStallsAndFallsWhenItCatchesUp) {
  EngineTestPeer::StallVerifier(server_->engine(), VerifierId::kFraud, 2'000'000'000);
  Submit(1, 1'234);
  Submit(2, 66);
  std::vector<Sample> samples = Scrape();
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_transactions"), 2);
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_minor", {{"currency", "USD"}}), 1'300);
  EXPECT_EQ(Value(samples, "vouch_in_flight_transactions"), 2);

  AwaitOutcomes(2);
  samples = Scrape();
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_transactions"), 0);
  EXPECT_EQ(Value(samples, "vouch_value_at_risk_minor", {{"currency", "USD"}}), 0);
  EXPECT_EQ(Value(samples, "vouch_outcomes_total", {{"kind", "VERIFIED"}, {"reason", "none"}}),
            2);
  EXPECT_EQ(Value(samples, "vouch_late_failures_total"), 0);
}

TEST_F(MetricsTest, OtherPathsAreNotFound) {
  std::string status_line;
  HttpGet(endpoint_->port(), "/", &status_line);
  EXPECT_NE(status_line.find(" 404 "), std::string::npos) << status_line;
}

TEST(MetricsEndpointTest, PortInUseIsAnOperatingError) {
  Options engine_options = BankOptions(4);
  engine_options.inline_mode = true;
  auto engine = Engine::Create(std::move(engine_options));
  ASSERT_TRUE(engine.ok());
  auto collector = std::make_shared<MetricsCollector>(engine->get());
  auto first = MetricsEndpoint::Start("127.0.0.1", 0, collector);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsEndpoint::Start("127.0.0.1", (*first)->port(), collector);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

}  // namespace
}  // namespace vouch::server
