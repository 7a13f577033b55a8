// Remote verifiers over real loopback sockets (vouch.proto "Remote verifiers"): a test plays the
// verifier service with raw frames, so that every rule of the protocol is checked from the wire.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

constexpr char kName[] = "sanctions";

Options Bank(PolicyMode mode = PolicyMode::kAsync, int64_t deadline_ns = 10'000'000'000) {
  Options engine = ServerTestBank();
  engine.policy.mode = mode;
  engine.policy.hold_amount_minor_min = 100'000;  // Hybrid: 1,000.00 and above are held.
  engine.fraud_rules.velocity_enabled = false;
  engine.fraud_rules.anomaly_enabled = false;
  engine.verification_deadline_ns = deadline_ns;
  engine.drain_timeout_ns = 500'000'000;  // Tests that leave requests unanswered stop sooner.
  return engine;
}

ServerOptions WithRemote(VerifierPolicy policy = VerifierPolicy::kRequired) {
  ServerOptions options;
  options.io_threads = 1;
  options.remote_verifiers.push_back({kName, policy, false});
  return options;
}

// A verifier service: says VerifierHello and reads VerifyBatch frames.
class FakeVerifier {
 public:
  explicit FakeVerifier(int port) : client_(port) {}

  bool Hello(const std::string& name = kName, uint32_t window = 0) {
    v1::ClientMessage message;
    message.mutable_verifier_hello()->set_verifier(name);
    message.mutable_verifier_hello()->set_window(window);
    message.mutable_verifier_hello()->set_worker_name("test");
    return client_.Send(message);
  }
  // Hello, then the VerifierWelcome (kept in welcome()); false if anything else came.
  bool Join(const std::string& name = kName, uint32_t window = 0) {
    v1::ServerMessage message;
    if (!Hello(name, window) || !client_.ReadAny(&message) || !message.has_verifier_welcome()) {
      return false;
    }
    welcome_ = message.verifier_welcome();
    return true;
  }
  const v1::VerifierWelcome& welcome() const { return welcome_; }
  // Reads requests until `count` have arrived or nothing came for `quiet_ms`.
  std::vector<v1::VerifyRequest> ReadRequests(size_t count, int quiet_ms = 5'000) {
    std::vector<v1::VerifyRequest> requests;
    v1::ServerMessage message;
    while (requests.size() < count && client_.ReadAny(&message, quiet_ms)) {
      if (message.has_error()) {
        ADD_FAILURE() << message.error().DebugString();
        break;
      }
      if (!message.has_verify_batch()) continue;
      for (const v1::VerifyRequest& request : message.verify_batch().requests()) {
        requests.push_back(request);
      }
    }
    return requests;
  }
  bool Answer(const std::vector<std::pair<uint64_t, uint32_t>>& verdicts) {
    v1::ClientMessage message;
    for (const auto& [seq, code] : verdicts) {
      v1::Verdict* verdict = message.mutable_verdicts()->add_verdicts();
      verdict->set_seq(seq);
      verdict->set_code(code);
    }
    return client_.Send(message);
  }
  TestClient& client() { return client_; }

 private:
  TestClient client_;
  v1::VerifierWelcome welcome_;
};

// Submits `count` transfers with ids from `first_id` and returns their seqs (all CONFIRMED).
std::vector<uint64_t> SubmitTransfers(TestClient& client, uint64_t first_id, int count,
                                      int64_t amount = 100) {
  std::vector<uint64_t> seqs;
  for (int i = 0; i < count; ++i) {
    v1::ClientMessage submit;
    *submit.mutable_submit()->add_transactions() =
        WireTransfer(first_id + i, 1 + i % 40, 41 + i % 40, amount);
    EXPECT_TRUE(client.Send(submit));
  }
  v1::ServerMessage message;
  while (static_cast<int>(seqs.size()) < count && client.Read(&message)) {
    if (!message.has_confirmation()) continue;
    EXPECT_EQ(message.confirmation().status(), v1::CONFIRM_STATUS_CONFIRMED)
        << message.confirmation().DebugString();
    seqs.push_back(message.confirmation().seq());
  }
  return seqs;
}

// Reads `count` outcomes, by transaction id.
std::map<uint64_t, v1::Outcome> ReadOutcomes(TestClient& client, size_t count,
                                             int timeout_ms = 15'000) {
  std::map<uint64_t, v1::Outcome> outcomes;
  v1::ServerMessage message;
  while (outcomes.size() < count && client.Read(&message, timeout_ms)) {
    if (message.has_outcome()) outcomes[message.outcome().transaction_id()] = message.outcome();
  }
  return outcomes;
}

TEST_F(ServerTest, UnknownVerifierIsRefusedAndNamesTheKnownOnes) {
  StartServer(WithRemote(), Bank());
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Hello("nope"));
  v1::ServerMessage message;
  ASSERT_TRUE(verifier.client().ReadAny(&message));
  ASSERT_TRUE(message.has_error());
  EXPECT_EQ(message.error().code(), v1::ERROR_CODE_UNKNOWN_VERIFIER);
  EXPECT_NE(message.error().message().find(kName), std::string::npos) << message.error().message();
  EXPECT_TRUE(verifier.client().ClosedByPeer());
}

TEST_F(ServerTest, VerifierConnectionSendsOnlyVerdictsAndPing) {
  StartServer(WithRemote(), Bank());
  {
    FakeVerifier verifier(port());
    ASSERT_TRUE(verifier.Join());
    v1::ClientMessage submit;
    *submit.mutable_submit()->add_transactions() = WireTransfer(1, 1, 2, 100);
    ASSERT_TRUE(verifier.client().Send(submit));
    EXPECT_EQ(verifier.client().ReadError(), v1::ERROR_CODE_INVALID_MESSAGE);
  }
  {
    FakeVerifier verifier(port());
    ASSERT_TRUE(verifier.Join());
    ASSERT_TRUE(verifier.Answer({{1, 70'000}}));  // A code above 65535.
    EXPECT_EQ(verifier.client().ReadError(), v1::ERROR_CODE_INVALID_MESSAGE);
  }
  {
    TestClient client(port());  // Verdicts on a client connection.
    ASSERT_TRUE(client.Hello());
    v1::ClientMessage verdicts;
    verdicts.mutable_verdicts()->add_verdicts()->set_seq(1);
    ASSERT_TRUE(client.Send(verdicts));
    EXPECT_EQ(client.ReadError(), v1::ERROR_CODE_INVALID_MESSAGE);
  }
}

// The verifier's verdicts decide: a failure is LATE_FAILED (async) or the REJECTED answer
// (held), with the verifier's own code; a pass lets the outcome be VERIFIED.
class RemoteVerdictTest : public ServerTest, public ::testing::WithParamInterface<PolicyMode> {};

TEST_P(RemoteVerdictTest, VerdictsDecideWithTheVerifiersCode) {
  StartServer(WithRemote(), Bank(GetParam()));
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Join(kName, 64));
  EXPECT_EQ(verifier.welcome().verifier(), v1::VERIFIER_EMBEDDER_1);
  EXPECT_EQ(verifier.welcome().window(), 64u);
  EXPECT_EQ(verifier.welcome().epoch(), server_->epoch());
  EXPECT_GE(verifier.welcome().batch_max(), 1u);
  EXPECT_EQ(verifier.welcome().policy(), 1u);
  EXPECT_EQ(verifier.welcome().deadline_ns(), 10'000'000'000);

  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  constexpr int kCount = 20;
  // Sent, then judged, so that the server has all of them waiting (async: each is CONFIRMED at
  // once; the verifier answers after reading every request).
  const bool held = GetParam() != PolicyMode::kAsync;
  for (int i = 0; i < kCount; ++i) {
    v1::ClientMessage submit;
    *submit.mutable_submit()->add_transactions() =
        WireTransfer(100 + i, 1 + i, 41 + i, held ? 200'000 : 100);
    ASSERT_TRUE(client.Send(submit));
  }
  const std::vector<v1::VerifyRequest> requests = verifier.ReadRequests(kCount);
  ASSERT_EQ(requests.size(), static_cast<size_t>(kCount));
  std::vector<std::pair<uint64_t, uint32_t>> verdicts;
  uint64_t previous_seq = 0;
  for (const v1::VerifyRequest& request : requests) {
    EXPECT_GT(request.seq(), previous_seq) << "requests come in seq order";
    previous_seq = request.seq();
    EXPECT_FALSE(request.redelivered());
    EXPECT_EQ(request.deadline_unix_ns() - request.confirmed_unix_ns(), 10'000'000'000);
    EXPECT_EQ(request.transaction().currency(), "USD");
    verdicts.push_back({request.seq(), request.transaction().id() % 2 == 1 ? 7u : 0u});
  }
  ASSERT_TRUE(verifier.Answer(verdicts));

  if (!held) {
    const std::map<uint64_t, v1::Outcome> outcomes = ReadOutcomes(client, kCount);
    ASSERT_EQ(outcomes.size(), static_cast<size_t>(kCount));
    for (const auto& [id, outcome] : outcomes) {
      if (id % 2 == 1) {
        EXPECT_EQ(outcome.kind(), v1::OUTCOME_KIND_LATE_FAILED) << outcome.DebugString();
        EXPECT_EQ(outcome.reason(), v1::REASON_VERIFIER_REJECTED);
        EXPECT_EQ(outcome.verifier(), v1::VERIFIER_EMBEDDER_1);
        EXPECT_EQ(outcome.verifier_reason(), 7u);
      } else {
        EXPECT_EQ(outcome.kind(), v1::OUTCOME_KIND_VERIFIED) << outcome.DebugString();
      }
    }
  } else {
    int answers = 0;
    v1::ServerMessage message;
    while (answers < kCount && client.Read(&message, 15'000)) {
      if (!message.has_confirmation()) continue;
      const v1::Confirmation& answer = message.confirmation();
      ++answers;
      EXPECT_TRUE(answer.held());
      if (answer.transaction_id() % 2 == 1) {
        EXPECT_EQ(answer.status(), v1::CONFIRM_STATUS_REJECTED) << answer.DebugString();
        EXPECT_EQ(answer.reason(), v1::REASON_VERIFIER_REJECTED);
      } else {
        EXPECT_EQ(answer.status(), v1::CONFIRM_STATUS_CONFIRMED) << answer.DebugString();
      }
    }
    EXPECT_EQ(answers, kCount);
  }
  const RemoteVerifierStats stats = server_->Stats().remote_verifiers.at(0);
  EXPECT_EQ(stats.name, kName);
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.requests_sent, static_cast<uint64_t>(kCount));
  EXPECT_EQ(stats.verdicts, static_cast<uint64_t>(kCount));
  EXPECT_EQ(stats.round_trip.count, static_cast<uint64_t>(kCount));
}

INSTANTIATE_TEST_SUITE_P(Modes, RemoteVerdictTest,
                         ::testing::Values(PolicyMode::kAsync, PolicyMode::kHybrid,
                                           PolicyMode::kSync));

TEST_F(ServerTest, WindowBoundsWhatTheVerifierHolds) {
  StartServer(WithRemote(), Bank());
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Join(kName, 4));
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  ASSERT_EQ(SubmitTransfers(client, 1, 10).size(), 10u);
  std::vector<v1::VerifyRequest> first = verifier.ReadRequests(10, 500);
  ASSERT_EQ(first.size(), 4u) << "the window is 4";
  ASSERT_TRUE(verifier.Answer({{first[0].seq(), 0}, {first[1].seq(), 0}}));
  std::vector<v1::VerifyRequest> second = verifier.ReadRequests(10, 500);
  ASSERT_EQ(second.size(), 2u) << "two verdicts free two places";
  EXPECT_GT(second[0].seq(), first[3].seq());
}

// A connection that closes with requests unanswered hands them to the next connection of the
// same verifier, before newer ones, marked redelivered; their outcomes come from its verdicts.
TEST_F(ServerTest, UnansweredRequestsGoToTheNextConnection) {
  StartServer(WithRemote(), Bank());
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  std::set<uint64_t> held_by_first;
  {
    FakeVerifier first(port());
    ASSERT_TRUE(first.Join(kName, 5));
    ASSERT_EQ(SubmitTransfers(client, 1, 8).size(), 8u);
    for (const v1::VerifyRequest& request : first.ReadRequests(5)) {
      held_by_first.insert(request.seq());
    }
    ASSERT_EQ(held_by_first.size(), 5u);
  }  // Closed without a verdict.
  FakeVerifier second(port());
  ASSERT_TRUE(second.Join(kName, 64));
  const std::vector<v1::VerifyRequest> requests = second.ReadRequests(8);
  ASSERT_EQ(requests.size(), 8u);
  std::vector<std::pair<uint64_t, uint32_t>> verdicts;
  for (size_t i = 0; i < requests.size(); ++i) {
    const bool was_held = held_by_first.count(requests[i].seq()) == 1;
    EXPECT_EQ(requests[i].redelivered(), was_held) << requests[i].DebugString();
    EXPECT_EQ(was_held, i < 5) << "handed-back requests come first";
    verdicts.push_back({requests[i].seq(), 0});
  }
  ASSERT_TRUE(second.Answer(verdicts));
  const std::map<uint64_t, v1::Outcome> outcomes = ReadOutcomes(client, 8);
  ASSERT_EQ(outcomes.size(), 8u);
  for (const auto& [id, outcome] : outcomes) {
    EXPECT_EQ(outcome.kind(), v1::OUTCOME_KIND_VERIFIED) << outcome.DebugString();
  }
  const RemoteVerifierStats stats = server_->Stats().remote_verifiers.at(0);
  EXPECT_EQ(stats.redelivered, 5u);
  EXPECT_EQ(stats.requests_sent, 13u);
}

// Two connections of one verifier share the load: every request goes to exactly one of them.
TEST_F(ServerTest, ConnectionsOfOneVerifierShareTheLoad) {
  StartServer(WithRemote(), Bank());
  FakeVerifier a(port());
  FakeVerifier b(port());
  ASSERT_TRUE(a.Join(kName, 3));
  ASSERT_TRUE(b.Join(kName, 3));
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  ASSERT_EQ(SubmitTransfers(client, 1, 6).size(), 6u);
  const std::vector<v1::VerifyRequest> to_a = a.ReadRequests(3, 1'000);
  const std::vector<v1::VerifyRequest> to_b = b.ReadRequests(3, 1'000);
  ASSERT_EQ(to_a.size(), 3u);
  ASSERT_EQ(to_b.size(), 3u);
  std::set<uint64_t> seqs;
  for (const auto& request : to_a) seqs.insert(request.seq());
  for (const auto& request : to_b) seqs.insert(request.seq());
  EXPECT_EQ(seqs.size(), 6u) << "no request went to both";
}

// Without a verifier the deadline decides (never a wedge), and a verifier that connects after
// the deadline is not sent what was already decided. A verdict after the outcome changes nothing.
TEST_F(ServerTest, NoVerifierMeansTimeoutAndExpiredRequestsAreNotSent) {
  StartServer(WithRemote(), Bank(PolicyMode::kAsync, 200'000'000));
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  const std::vector<uint64_t> seqs = SubmitTransfers(client, 1, 5);
  ASSERT_EQ(seqs.size(), 5u);
  const std::map<uint64_t, v1::Outcome> outcomes = ReadOutcomes(client, 5);
  ASSERT_EQ(outcomes.size(), 5u);
  for (const auto& [id, outcome] : outcomes) {
    EXPECT_EQ(outcome.kind(), v1::OUTCOME_KIND_LATE_TIMEOUT) << outcome.DebugString();
    EXPECT_EQ(outcome.verifier(), v1::VERIFIER_EMBEDDER_1);
  }
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Join());
  EXPECT_TRUE(verifier.ReadRequests(5, 300).empty());
  EXPECT_EQ(server_->Stats().remote_verifiers.at(0).expired, 5u);
  // A late verdict: recorded, no second outcome.
  ASSERT_TRUE(verifier.Answer({{seqs[0], 3}}));
  EXPECT_TRUE(ReadOutcomes(client, 1, 300).empty());
  // New work still flows.
  const std::vector<uint64_t> more = SubmitTransfers(client, 100, 1);
  ASSERT_EQ(more.size(), 1u);
  const std::vector<v1::VerifyRequest> requests = verifier.ReadRequests(1);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].seq(), more[0]);
  ASSERT_TRUE(verifier.Answer({{more[0], 0}}));
  const std::map<uint64_t, v1::Outcome> last = ReadOutcomes(client, 1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last.begin()->second.kind(), v1::OUTCOME_KIND_VERIFIED);
}

// Transaction.attributes travel to the remote verifier and back in Query; too long is refused.
TEST_F(ServerTest, AttributesReachTheRemoteVerifierAndQuery) {
  StartServer(WithRemote(), Bank());
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Join());
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  v1::ClientMessage submit;
  v1::Transaction* tagged = submit.mutable_submit()->add_transactions();
  *tagged = WireTransfer(1, 1, 2, 100);
  tagged->set_attributes(std::string("ip\0\x0a\x00\x00\x01", 7));
  v1::Transaction* oversize = submit.mutable_submit()->add_transactions();
  *oversize = WireTransfer(2, 3, 4, 100);
  oversize->set_attributes(std::string(kAttributesBytesMax + 1, 'x'));
  ASSERT_TRUE(client.Send(submit));
  v1::ServerMessage message;
  std::vector<v1::Confirmation> answers;
  while (answers.size() < 2 && client.Read(&message)) {
    if (message.has_confirmation()) answers.push_back(message.confirmation());
  }
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].status(), v1::CONFIRM_STATUS_CONFIRMED);
  EXPECT_EQ(answers[1].status(), v1::CONFIRM_STATUS_REJECTED);
  EXPECT_EQ(answers[1].reason(), v1::REASON_MALFORMED_ATTRIBUTES);
  const std::vector<v1::VerifyRequest> requests = verifier.ReadRequests(1);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].transaction().attributes(), tagged->attributes());
  ASSERT_TRUE(verifier.Answer({{requests[0].seq(), 0}}));
  ASSERT_EQ(ReadOutcomes(client, 1).size(), 1u);
  v1::ClientMessage query;
  query.mutable_query()->set_transaction_id(1);
  ASSERT_TRUE(client.Send(query));
  while (client.Read(&message) && !message.has_status()) {}
  ASSERT_TRUE(message.has_status());
  EXPECT_EQ(message.status().attributes(), tagged->attributes());
}

// An advisory remote verifier's failure is recorded and decides nothing.
TEST_F(ServerTest, AdvisoryRemoteFailureDoesNotDecide) {
  StartServer(WithRemote(VerifierPolicy::kAdvisory), Bank());
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Join());
  EXPECT_EQ(verifier.welcome().policy(), 2u);
  TestClient client(port());
  ASSERT_TRUE(client.Hello("payer"));
  ASSERT_EQ(SubmitTransfers(client, 1, 1).size(), 1u);
  const std::vector<v1::VerifyRequest> requests = verifier.ReadRequests(1);
  ASSERT_EQ(requests.size(), 1u);
  ASSERT_TRUE(verifier.Answer({{requests[0].seq(), 9}}));
  const std::map<uint64_t, v1::Outcome> outcomes = ReadOutcomes(client, 1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes.begin()->second.kind(), v1::OUTCOME_KIND_VERIFIED);
}

// After a restart the journal's undecided transactions are asked about again: the verifier
// gets the same seqs, and its verdicts decide them.
class RemoteRestartTest : public ServerTest, public ::testing::WithParamInterface<AckPolicy> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/remote-" + name;
    std::filesystem::remove_all(dir_);
  }
  Options Engine() const {
    Options engine = Bank();
    engine.durability.ack = GetParam();
    engine.durability.dir = dir_;
    engine.drain_timeout_ns = 200'000'000;  // Stop with the verifier's transactions undecided.
    return engine;
  }
  std::string dir_;
};

TEST_P(RemoteRestartTest, UndecidedTransactionsAreAskedAgainAfterARestart) {
  StartServer(WithRemote(), Engine());
  std::vector<uint64_t> seqs;
  {
    FakeVerifier verifier(port());
    ASSERT_TRUE(verifier.Join());
    TestClient client(port());
    ASSERT_TRUE(client.Hello("payer"));
    seqs = SubmitTransfers(client, 1, 3);
    ASSERT_EQ(seqs.size(), 3u);
    ASSERT_EQ(verifier.ReadRequests(3).size(), 3u);  // Received, never answered.
    EXPECT_FALSE(Shutdown().engine.drained);
  }
  server_.reset();
  report_.reset();
  StartServer(WithRemote(), Engine());
  FakeVerifier verifier(port());
  ASSERT_TRUE(verifier.Join());
  const std::vector<v1::VerifyRequest> requests = verifier.ReadRequests(3);
  ASSERT_EQ(requests.size(), 3u);
  std::vector<std::pair<uint64_t, uint32_t>> verdicts;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].seq(), seqs[i]);
    EXPECT_EQ(requests[i].transaction().id(), 1 + i);
    verdicts.push_back({requests[i].seq(), requests[i].transaction().id() == 2 ? 5u : 0u});
  }
  ASSERT_TRUE(verifier.Answer(verdicts));
  TestClient client(port());
  ASSERT_TRUE(client.Hello());
  for (uint64_t id = 1; id <= 3; ++id) {
    const v1::StateKind expected =
        id == 2 ? v1::STATE_KIND_LATE_FAILED : v1::STATE_KIND_VERIFIED;
    v1::StateKind last = v1::STATE_KIND_UNSPECIFIED;
    for (int attempt = 0; attempt < 200 && last != expected; ++attempt) {
      v1::ClientMessage query;
      query.mutable_query()->set_transaction_id(id);
      ASSERT_TRUE(client.Send(query));
      v1::ServerMessage message;
      while (client.Read(&message) && !message.has_status()) {}
      ASSERT_TRUE(message.has_status());
      for (const v1::StateChange& change : message.status().history()) {
        if (change.state() == v1::STATE_KIND_VERIFIED ||
            change.state() == v1::STATE_KIND_LATE_FAILED ||
            change.state() == v1::STATE_KIND_LATE_TIMEOUT) {
          last = change.state();
        }
      }
      if (last != expected) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(last, expected) << "transaction " << id;
  }
}

INSTANTIATE_TEST_SUITE_P(Acks, RemoteRestartTest,
                         ::testing::Values(AckPolicy::kWritten, AckPolicy::kDurable));

TEST(RemoteVerifierOptionsTest, ParsesTheFlag) {
  auto parsed = ParseRemoteVerifiers("sanctions,score:shadow,kyc:required:hold,aml:advisory");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 4u);
  EXPECT_EQ((*parsed)[0].name, "sanctions");
  EXPECT_EQ((*parsed)[0].policy, VerifierPolicy::kRequired);
  EXPECT_EQ((*parsed)[1].policy, VerifierPolicy::kShadow);
  EXPECT_TRUE((*parsed)[2].hold_account_on_failure);
  EXPECT_EQ((*parsed)[3].policy, VerifierPolicy::kAdvisory);
  EXPECT_TRUE(ParseRemoteVerifiers("")->empty());
  EXPECT_FALSE(ParseRemoteVerifiers("a:sometimes").ok());
  EXPECT_FALSE(ParseRemoteVerifiers("a,a").ok());
  EXPECT_FALSE(ParseRemoteVerifiers("a:required:hold:x").ok());
  EXPECT_FALSE(ParseRemoteVerifiers(":required").ok());
}

}  // namespace
}  // namespace vouch::server::testing
